/*
 * The one episode loop, used by synthesis (runEpisode), RL rollouts and evaluation (runRollout) and τ-bench
 * (runtime/eval/tau/episode.ts): the user opens, the assistant answers with text or tool calls, the world runs
 * the calls, the user answers questions, until the assistant gives a final answer or a limit is hit.
 *
 * Where the assistant's turns come from is a TurnSource: `chatTurns` asks a ChatPolicy for whole messages (the
 * scripted teacher, an OpenAI-compatible endpoint, a τ-bench agent); `TokenTurns` generates token ids from a
 * local engine and keeps the conversation as ids, loss mask and behaviour logprobs. The user is a UserSource
 * (`policyUser` for a ChatPolicy; τ-bench adapts its simulator).
 *
 * The loop never throws for a model's, a user's or a world's mistake (only an abort does): each becomes a TurnError
 * (counted by kind) and, where it must, ends the episode with its reason:
 *   answered / refused / user_stop — the conversation ended normally (a τ-bench hand-off to a human, and a call that
 *                       ends the world's episode such as the repo world's submit, are `answered`)
 *   max_tokens        — a turn hit the per-turn token limit without stopping, or the conversation its budget
 *   context_overflow  — the next prompt would not fit the context
 *   tool_loop         — the same call (name + arguments) repeated `maxRepeats` times in a row
 *   max_turns         — the turn limit
 *   error             — the engine, the user or the world failed, the turn was empty, or the output could not be
 *                       rendered (kind `internal_error`: one bad output fails its own episode, never its siblings)
 */
import type { Message, ToolCall } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { ToolSpec } from '../../schemas/tool.ts';
import type { FinishReason, Trajectory, TurnError } from '../../schemas/trajectory.ts';
import type { Rollout, TurnTiming } from '../../schemas/rollout.ts';
import type { ChatPolicy } from './policy.ts';
import { ChatTokens, decodeIds, type ChatTokenizer } from './tokenize.ts';
import { parseTurn } from './tool-formats.ts';
import type { GenerateRequest, GenerateResult } from './engines/engine.ts';
import { isRefusal, observeUserTurn, renderToolResult } from '../worlds/base.ts';
import type { World } from '../worlds/world.ts';
import { USER_STOP } from './scripted.ts';
import { hasInvalidText, isWellFormed, toWellFormed } from './text.ts';
import { turnSeed } from '../engine/rng.ts';
import type { ToolLatency } from '../worlds/latency.ts';

export const msg = (role: Message['role'], content: string, extra: Partial<Message> = {}): Message =>
  ({ role, content, tool_calls: [], tool_call_id: null, name: null, ...extra });

export const isQuestion = (text: string): boolean => /\?\s*$/.test(text.trim()) || text.includes('(yes/no)');

export const systemPrompt = (world: World): string =>
  `${world.policy}\nUse the tools to look things up and act. When done, give a short final answer.`;

const errorText = (e: unknown): string => (e as Error)?.message ?? String(e);

const sleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  if (signal?.aborted) return reject(signal.reason);
  const t = setTimeout(() => { signal?.removeEventListener('abort', stop); resolve(); }, ms);
  const stop = () => { clearTimeout(t); reject(signal!.reason); };
  signal?.addEventListener('abort', stop, { once: true });
});

/* ------------------------------------------------ the loop ------------------------------------------------ */

/** What a turn source sees of the episode. */
export interface TurnContext {
  readonly id: string;
  readonly seed: number | undefined;
  readonly tools: ToolSpec[];
  readonly signal?: AbortSignal;
  readonly errors: readonly TurnError[];
  error(turn: number, kind: string, message: string): void;
  /** Keeps text valid UTF-16/UTF-8 and within `limit`; records what it had to fix. */
  clean(turn: number, text: unknown, limit: number, what: string): string;
}

/** An assistant turn, already recorded in the source's transcript. */
export interface AssistantTurn {
  message: Message;
  /** Ends the episode before the turn's calls run (an engine error, a turn cut off by its token limit). */
  end?: FinishReason;
  /** Ends the episode when the turn has no calls (a message too large to act on). */
  endIfText?: FinishReason;
  /** The source parsed the calls itself and already recorded why unparsed ones are malformed. */
  parsed?: boolean;
  timing?: Omit<TurnTiming, 'turn' | 'env_ms'>;
}

/** Where the assistant's turns come from, and the transcript the conversation is recorded in. */
export interface TurnSource {
  readonly messages: readonly Message[];
  /** Records a system, user or tool message. */
  append(m: Message): void;
  /** Produces and records the next assistant turn, or says why the episode ends instead. */
  next(turn: number, ctx: TurnContext): Promise<AssistantTurn | FinishReason>;
}

/** The user's text for `turn` (0 = the opening request). */
export type UserSource = (turn: number, messages: readonly Message[], ctx: TurnContext) => Promise<string>;

export interface LoopOptions {
  /** The episode's id (also the prefix of every request's idempotency key). */
  id: string;
  seed?: number;
  /** Already reset for the task. */
  world: World;
  system: string;
  assistant: TurnSource;
  user: UserSource;
  maxTurns: number;
  /** Identical consecutive tool calls that end the episode as a loop (off when absent). */
  maxRepeats?: number;
  maxMessageChars?: number;
  maxToolResultChars?: number;
  maxErrorChars?: number;
  /**
   * 'agentforge': a text turn goes to the user only when it asks something, an empty turn is an error.
   * 'tau-bench': upstream's tool-calling agent — every text turn goes to the user (empty ones too), the user's
   * ###STOP### message stays in the transcript, and a call to transfer_to_human_agents ends the episode.
   */
  protocol?: 'agentforge' | 'tau-bench';
  /** The text the assistant sees for a call (τ-bench reads arguments as Python would); default: the world's result. */
  observe?(call: ToolCall): string;
  /** True when the world says the conversation is over after a call (τ-bench's hand-off). */
  handedOff?(): boolean;
  /** Simulated tool latency (runtime/worlds/latency.ts): each call waits this long before it runs. */
  latency?: ToolLatency;
  signal?: AbortSignal;
}

export interface LoopResult {
  messages: Message[];
  errors: TurnError[];
  turns: number;
  finish: FinishReason;
  timings: TurnTiming[];
}

class Loop implements TurnContext {
  readonly errors: TurnError[] = [];
  readonly timings: TurnTiming[] = [];
  readonly tools: ToolSpec[];
  private lastCalls: string[] = [];

  constructor(private readonly o: LoopOptions) {
    this.tools = o.world.toolSpecs();
  }
  get id(): string { return this.o.id; }
  get seed(): number | undefined { return this.o.seed; }
  get signal(): AbortSignal | undefined { return this.o.signal; }

  error(turn: number, kind: string, message: string): void {
    this.errors.push({ turn, kind, message: message.slice(0, this.o.maxErrorChars ?? 500) });
  }

  clean(turn: number, text: unknown, limit: number, what: string): string {
    let s = typeof text === 'string' ? text : text == null ? '' : JSON.stringify(text);
    if (!isWellFormed(s)) {
      this.error(turn, 'invalid_utf8', `${what} contains invalid UTF-8 (lone surrogates); replaced with U+FFFD`);
      s = toWellFormed(s);
    }
    if (s.length > limit) {
      this.error(turn, `${what.replace(/ /g, '_')}_too_large`, `${what} has ${s.length} characters (limit ${limit}); truncated`);
      s = s.slice(0, limit);
    }
    return s;
  }

  private rethrowIfAborted(e: unknown): void {
    if (this.o.signal?.aborted) throw e;
  }

  async userTurn(turn: number): Promise<FinishReason | null> {
    let said: string;
    try {
      said = await this.o.user(turn, this.o.assistant.messages, this);
    } catch (e) {
      this.rethrowIfAborted(e);
      this.error(turn, 'user_error', errorText(e));
      return 'error';
    }
    const content = this.clean(turn, said, this.o.maxMessageChars ?? Infinity, 'user message');
    const tau = this.o.protocol === 'tau-bench';
    if (content.includes(USER_STOP)) {
      if (tau) this.o.assistant.append(msg('user', content));
      return 'user_stop';
    }
    if (!tau && !content.trim()) {
      this.error(turn, 'empty_message', 'the user simulator sent an empty message');
      return 'error';
    }
    this.o.assistant.append(msg('user', content));
    observeUserTurn(this.o.world, content);
    return null;
  }

  /** Runs one call; a world that throws ends the episode (it is not the assistant's fault). */
  private async runCall(turn: number, call: ToolCall, parsed: boolean): Promise<'ok' | 'world_error'> {
    let text: string;
    try {
      text = this.o.observe ? this.o.observe(call) : await this.toolResult(turn, call, parsed);
    } catch (e) {
      this.error(turn, 'world_error', `${call.name}: the world threw: ${errorText(e)}`);
      return 'world_error';
    }
    text = this.clean(turn, text, this.o.maxToolResultChars ?? Infinity, 'tool result');
    this.o.assistant.append(msg('tool', text, { tool_call_id: call.id, name: call.name }));
    return 'ok';
  }

  private async toolResult(turn: number, call: ToolCall, parsed: boolean): Promise<string> {
    if (call.arguments === null) {
      // a parsing source has already recorded why; a message-level one reports it here
      if (parsed) return JSON.stringify({ error: 'invalid_tool_call', message: `could not parse the tool call: ${call.raw.slice(0, 80)}` });
      const message = `arguments of ${call.name} are not valid JSON: ${call.raw.slice(0, 80)}`;
      this.error(turn, 'invalid_json_args', message);
      return JSON.stringify({ error: 'invalid_args', message });
    }
    const w = this.o.world;
    if (this.o.latency) await sleep(this.o.latency(`${this.o.id}:${turn}:${call.id}`), this.o.signal);
    const r = w.callAsync ? await w.callAsync(call.name, call.arguments, this.o.signal) : w.call(call.name, call.arguments);
    if (!r.ok) this.error(turn, `tool_${r.kind}`, `${call.name}: ${r.message}`);
    if (r.ok && hasInvalidText(r.result)) this.error(turn, 'invalid_utf8', `${call.name} returned text with invalid UTF-8 (lone surrogates)`);
    return renderToolResult(r);
  }

  /** True when the same call has now been made maxRepeats times in a row. */
  private looping(calls: ToolCall[]): boolean {
    if (this.o.maxRepeats === undefined) return false;
    for (const c of calls) {
      const sig = `${c.name}:${c.arguments === null ? c.raw : JSON.stringify(c.arguments)}`;
      this.lastCalls = this.lastCalls.length && this.lastCalls[0] === sig ? [...this.lastCalls, sig] : [sig];
    }
    return this.lastCalls.length >= this.o.maxRepeats;
  }

  async assistantTurn(turn: number): Promise<FinishReason | null> {
    const t = await this.o.assistant.next(turn, this);
    if (typeof t === 'string') return t;
    const t1 = performance.now();
    const finish = await this.act(turn, t);
    if (t.timing) {
      const { generate_ms, prompt_tokens, generated_tokens } = t.timing;
      this.timings.push({ turn, generate_ms, env_ms: performance.now() - t1, prompt_tokens, generated_tokens });
    }
    return finish;
  }

  private async act(turn: number, t: AssistantTurn): Promise<FinishReason | null> {
    if (t.end) return t.end;
    const { content, tool_calls: calls } = t.message;
    if (calls.length) {
      for (const c of calls) if ((await this.runCall(turn, c, t.parsed ?? false)) === 'world_error') return 'error';
      if (this.o.handedOff?.() || this.o.world.done?.()) return 'answered';
      if (this.looping(calls)) {
        this.error(turn, 'tool_loop', `${calls[0].name} repeated ${this.o.maxRepeats} times`);
        return 'tool_loop';
      }
      return null;
    }
    this.lastCalls = [];
    if (this.o.protocol === 'tau-bench') return this.userTurn(turn + 1);
    if (!content.trim()) {
      this.error(turn, 'empty_message', 'the assistant sent neither text nor tool calls');
      return 'error';
    }
    if (t.endIfText) return t.endIfText;
    if (isQuestion(content)) return this.userTurn(turn + 1);
    return isRefusal(content) ? 'refused' : 'answered';
  }
}

export async function runLoop(o: LoopOptions): Promise<LoopResult> {
  const loop = new Loop(o);
  // e.g. an output nested too deeply to render: this episode fails with the reason, its batch mates go on
  const guarded = async (turn: number, step: () => Promise<FinishReason | null>): Promise<FinishReason | null> => {
    try {
      return await step();
    } catch (e) {
      if (o.signal?.aborted) throw e;
      loop.error(turn, 'internal_error', `turn ${turn} could not be processed: ${errorText(e)}`);
      return 'error';
    }
  };
  let finish = await guarded(0, async () => {
    o.assistant.append(msg('system', o.system));
    return loop.userTurn(0);
  });
  let turns = 0;
  for (; finish === null && turns < o.maxTurns; turns++) finish = await guarded(turns, () => loop.assistantTurn(turns));
  return { messages: o.assistant.messages as Message[], errors: loop.errors, turns, finish: finish ?? 'max_turns', timings: loop.timings };
}

/* -------------------------------------- users and message-level turns -------------------------------------- */

/** A ChatPolicy as the user (the scripted user, an LLM user simulator). */
export const policyUser = (policy: ChatPolicy, idempotent = true): UserSource => async (turn, messages, ctx) =>
  (await policy.respond({ messages: messages as Message[], tools: [], seed: ctx.seed, idempotencyKey: idempotent ? `${ctx.id}:u${turn}` : undefined, signal: ctx.signal })).content;

export interface ChatTurnOptions {
  /** Rough budget over the whole conversation (4 characters ≈ 1 token). */
  maxTokens?: number;
  maxMessageChars?: number;
  /** Calls kept per turn (τ-bench keeps the first). */
  maxCalls?: number;
  /** The error kind of a failed request. */
  errorKind?: string;
}

/** Message-level turns from a ChatPolicy. */
export function chatTurns(policy: ChatPolicy, o: ChatTurnOptions = {}): TurnSource {
  const messages: Message[] = [];
  let chars = 0;
  const append = (m: Message): void => {
    messages.push(m);
    chars += m.content.length + m.tool_calls.reduce((s, c) => s + c.raw.length + c.name.length, 0);
  };
  return {
    messages,
    append,
    async next(turn, ctx) {
      if (chars / 4 > (o.maxTokens ?? Infinity)) return 'max_tokens';
      let a: Message;
      try {
        a = await policy.respond({ messages, tools: ctx.tools, seed: ctx.seed, idempotencyKey: `${ctx.id}:a${turn}`, signal: ctx.signal });
      } catch (e) {
        if (ctx.signal?.aborted) throw e;
        ctx.error(turn, o.errorKind ?? 'teacher_error', errorText(e));
        return 'error';
      }
      const calls = Array.isArray(a.tool_calls) ? a.tool_calls.slice(0, o.maxCalls ?? Infinity) : [];
      const content = ctx.clean(turn, a.content, o.maxMessageChars ?? Infinity, 'assistant message');
      const message = msg('assistant', content, { tool_calls: calls });
      append(message);
      const tooLarge = ctx.errors.some((e) => e.turn === turn && e.kind === 'assistant_message_too_large');
      return { message, endIfText: tooLarge ? 'error' : undefined };
    },
  };
}

/* ----------------------------------------- synthesis: one episode ----------------------------------------- */

export interface EpisodeOptions {
  task: Task;
  world: World;
  teacher: ChatPolicy;
  user: ChatPolicy;
  seed: number;
  /** Also the prefix of every request's idempotency key. */
  trajectoryId: string;
  maxTurns?: number;
  /** Rough budget over the whole conversation (4 characters ≈ 1 token). */
  maxTokens?: number;
  maxMessageChars?: number;
  maxToolResultChars?: number;
  source?: string;
  signal?: AbortSignal;
}

/** One synthesized episode: teacher ↔ user ↔ world, as a Trajectory. */
export async function runEpisode(opts: EpisodeOptions): Promise<Trajectory> {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as EpisodeOptions;
  const o = { maxTurns: 16, maxTokens: 4096, maxMessageChars: 8000, maxToolResultChars: 4000, source: 'synth', ...given };
  const { task, world } = o;
  world.reset(task);
  const r = await runLoop({
    id: o.trajectoryId, seed: o.seed, world, system: systemPrompt(world), user: policyUser(o.user),
    assistant: chatTurns(o.teacher, { maxTokens: o.maxTokens, maxMessageChars: o.maxMessageChars }),
    maxTurns: o.maxTurns, maxMessageChars: o.maxMessageChars, maxToolResultChars: o.maxToolResultChars, signal: o.signal,
  });
  return {
    id: o.trajectoryId, task_id: task.id, world: task.world, messages: r.messages, tools: world.toolSpecs(), source: o.source,
    teacher: o.teacher.name, seed: o.seed, policy_version: 0, reward: null, reward_components: {}, turns: r.turns,
    finish_reason: r.finish, errors: r.errors, difficulty: task.difficulty, split: task.split,
    ...(world.patch ? { patch: world.patch() } : {}),
  };
}

/* ------------------------------------- rollouts: token-level turns ------------------------------------- */

export interface Generator {
  readonly policyVersion: number;
  generate(req: GenerateRequest): Promise<GenerateResult>;
}

export interface RolloutLimits {
  maxTurns: number;
  /** New tokens per assistant turn. */
  maxNewTokens: number;
  /** Prompt + generation, in tokens (the model's context). */
  maxContext: number;
  /** Identical consecutive tool calls that count as a loop. */
  maxRepeats: number;
}
export const DEFAULT_LIMITS: RolloutLimits = { maxTurns: 8, maxNewTokens: 128, maxContext: 2048, maxRepeats: 3 };

export interface Sampling { temperature: number; topP: number }

export interface RolloutJob {
  task: Task;
  id: string;
  groupId: string;
  sample: number;
  seed: number;
  step: number;
}

export interface RolloutDeps {
  world: World;
  user: ChatPolicy;
  gen: Generator;
  ct: ChatTokenizer;
  limits: RolloutLimits;
  sampling: Sampling;
  latency?: ToolLatency;
  signal?: AbortSignal;
}

/**
 * Token-level turns: the conversation is rendered incrementally (ChatTokens), the engine generates one assistant
 * turn at a time, and tool results and user turns are appended as loss-masked tokens.
 */
export class TokenTurns implements TurnSource {
  readonly tokens: ChatTokens;
  readonly logprobs: number[] = [];
  policyVersion = -1;

  constructor(private readonly d: Pick<RolloutDeps, 'gen' | 'ct' | 'limits' | 'sampling'>, tools: ToolSpec[]) {
    this.tokens = new ChatTokens(d.ct, tools);
  }
  get messages(): readonly Message[] { return this.tokens.messages as Message[]; }

  append(m: Message): void {
    this.tokens.appendMessage(m);
    this.pad();
  }
  private pad(): void {
    while (this.logprobs.length < this.tokens.ids.length) this.logprobs.push(0);
  }

  private async generate(turn: number, prompt: number[], ctx: TurnContext): Promise<GenerateResult | FinishReason> {
    const { limits, sampling } = this.d;
    const room = limits.maxContext - prompt.length;
    if (room < 1) {
      ctx.error(turn, 'context_overflow', `prompt of ${prompt.length} tokens leaves no room in a context of ${limits.maxContext}`);
      return 'context_overflow';
    }
    const req: GenerateRequest = { prompt, maxTokens: Math.min(limits.maxNewTokens, room), stop: [this.d.ct.endOfTurnId],
      temperature: sampling.temperature, topP: sampling.topP, seed: turnSeed(ctx.seed ?? 0, turn) };
    try {
      return await this.d.gen.generate(req);
    } catch (e) {
      if (ctx.signal?.aborted) throw e;
      ctx.error(turn, 'engine_error', errorText(e));
      return 'error';
    }
  }

  async next(turn: number, ctx: TurnContext): Promise<AssistantTurn | FinishReason> {
    const prompt = this.tokens.generationPrompt();
    const t0 = performance.now();
    const g = await this.generate(turn, prompt, ctx);
    const generate_ms = performance.now() - t0;
    if (typeof g === 'string') return g;
    // a failed request (e.g. no rollout server answered) has no tokens to decode
    if (g.finish === 'error' && !g.tokens.length) { ctx.error(turn, 'engine_error', g.error ?? 'engine error'); return 'error'; }
    this.policyVersion = this.policyVersion < 0 ? g.policyVersion : Math.min(this.policyVersion, g.policyVersion);
    const parsed = parseTurn(this.d.ct, decodeIds(this.d.ct, g.tokens), `call_${turn}_`);
    for (const e of parsed.errors) ctx.error(turn, `parse_${e.kind}`, e.message);
    const message = msg('assistant', parsed.content, { tool_calls: parsed.tool_calls });
    const before = this.tokens.ids.length;
    this.tokens.appendGenerated(g.tokens, message);
    this.pad();
    let k = 0;
    for (let i = before; i < this.tokens.ids.length; i++) if (this.tokens.mask[i] === 1) this.logprobs[i] = g.logprobs[k++] ?? 0;
    return { message, end: this.stopped(turn, g, ctx), parsed: true, timing: { generate_ms, prompt_tokens: prompt.length, generated_tokens: g.tokens.length } };
  }

  /** Why a generation that did not end on its stop token ends the episode. */
  private stopped(turn: number, g: GenerateResult, ctx: TurnContext): FinishReason | undefined {
    const { maxNewTokens, maxContext } = this.d.limits;
    if (g.finish === 'error') { ctx.error(turn, 'engine_error', g.error ?? 'engine error'); return 'error'; }
    if (g.finish === 'length' && g.tokens.length < maxNewTokens) {
      ctx.error(turn, 'context_overflow', `generation filled the context of ${maxContext} tokens`);
      return 'context_overflow';
    }
    if (g.finish === 'length') { ctx.error(turn, 'no_stop', `the turn did not end within ${g.tokens.length} tokens`); return 'max_tokens'; }
    if (g.finish === 'context') { ctx.error(turn, 'context_overflow', 'generation reached the context limit'); return 'context_overflow'; }
    return undefined;
  }
}

/** Errors that are not the policy's doing: the rollout is kept for metrics but not trained on. */
const UNTRAINABLE = new Set(['world_error', 'user_error', 'engine_error', 'internal_error']);

/** One rollout of a local policy; never throws for a bad output (only for an abort). */
export async function runRollout(job: RolloutJob, d: RolloutDeps): Promise<Rollout> {
  d.world.reset(job.task);
  const turnsFrom = new TokenTurns(d, d.world.toolSpecs());
  const r = await runLoop({
    id: job.id, seed: job.seed, world: d.world, system: systemPrompt(d.world), assistant: turnsFrom, user: policyUser(d.user, false),
    maxTurns: d.limits.maxTurns, maxRepeats: d.limits.maxRepeats, maxErrorChars: 300, latency: d.latency, signal: d.signal,
  });
  const { ids, mask } = turnsFrom.tokens.result();
  const errorCounts: Record<string, number> = {};
  for (const e of r.errors) errorCounts[e.kind] = (errorCounts[e.kind] ?? 0) + 1;
  const completion = mask.reduce((s, m) => s + m, 0);
  return {
    id: job.id, task_id: job.task.id, world: job.task.world, messages: r.messages, tools: d.world.toolSpecs(),
    source: 'rollout', teacher: 'policy', seed: job.seed, policy_version: turnsFrom.policyVersion < 0 ? d.gen.policyVersion : turnsFrom.policyVersion,
    reward: null, reward_components: {}, turns: r.turns, finish_reason: r.finish, errors: r.errors,
    difficulty: job.task.difficulty, split: job.task.split, ...(d.world.patch ? { patch: d.world.patch() } : {}), group_id: job.groupId, sample: job.sample, step: job.step,
    input_ids: ids, loss_mask: mask, behaviour_logprobs: turnsFrom.logprobs.slice(0, ids.length), prompt_tokens: ids.length - completion,
    completion_tokens: completion, timings: r.timings, error_counts: errorCounts, success: null,
    trainable: !r.errors.some((e) => UNTRAINABLE.has(e.kind)),
  };
}
