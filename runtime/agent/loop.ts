/*
 * The multi-turn agent loop, token-in/token-out: the conversation is rendered incrementally (ChatTokens), the
 * policy generates one assistant turn at a time, tool calls are parsed and executed on the World, and tool
 * results and user turns are appended as loss-masked tokens. The loop never throws for a model's or a world's
 * mistake; each becomes a TurnError (counted by kind) and, where it must, ends the episode with its reason:
 *   answered / refused / user_stop — the conversation ended normally
 *   max_tokens        — a turn hit the per-turn token limit without stopping (a model that never stops)
 *   context_overflow  — the next prompt would not fit the context
 *   tool_loop         — the same call (name + arguments) repeated `maxRepeats` times in a row
 *   max_turns         — the turn limit
 *   error             — the engine failed, the world threw, or the turn was empty
 * Messages mirror runtime/agent/episode.ts (same system prompt, same tool result text), so verifyTrajectory
 * judges rollouts exactly as it judges synthesized data.
 */
import type { Message, ToolCall } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { FinishReason, TurnError } from '../../schemas/trajectory.ts';
import type { Rollout, TurnTiming } from '../../schemas/rollout.ts';
import type { ChatPolicy } from './policy.ts';
import { ChatTokens, decodeIds, type ChatTokenizer } from './tokenize.ts';
import { parseAssistant } from './parse.ts';
import type { GenerateRequest, GenerateResult } from './engines/engine.ts';
import { isRefusal, observeUserTurn, renderToolResult } from '../worlds/base.ts';
import type { World } from '../worlds/world.ts';
import { systemPrompt } from './episode.ts';
import { USER_STOP } from './scripted.ts';

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
  signal?: AbortSignal;
}

const msg = (role: Message['role'], content: string, extra: Partial<Message> = {}): Message =>
  ({ role, content, tool_calls: [], tool_call_id: null, name: null, ...extra });
const isQuestion = (text: string): boolean => /\?\s*$/.test(text.trim()) || text.includes('(yes/no)');

class Episode {
  readonly tokens: ChatTokens;
  readonly logprobs: number[] = [];
  readonly errors: TurnError[] = [];
  readonly timings: TurnTiming[] = [];
  lastCalls: string[] = [];
  policyVersion = -1;

  constructor(readonly job: RolloutJob, readonly d: RolloutDeps) {
    this.tokens = new ChatTokens(d.ct, d.world.toolSpecs());
  }
  error(turn: number, kind: string, message: string): void {
    this.errors.push({ turn, kind, message: message.slice(0, 300) });
  }
  append(m: Message): void {
    this.tokens.appendMessage(m);
    this.pad();
  }
  private pad(): void {
    while (this.logprobs.length < this.tokens.ids.length) this.logprobs.push(0);
  }

  /** The user's turn; null to continue, else why the episode ends. */
  async userTurn(turn: number): Promise<FinishReason | null> {
    let u: Message;
    try {
      u = await this.d.user.respond({ messages: this.tokens.messages as Message[], tools: [], seed: this.job.seed, signal: this.d.signal });
    } catch (e) {
      if (this.d.signal?.aborted) throw e;
      this.error(turn, 'user_error', (e as Error)?.message ?? String(e));
      return 'error';
    }
    if (u.content.includes(USER_STOP)) return 'user_stop';
    this.append(msg('user', u.content));
    observeUserTurn(this.d.world, u.content);
    return null;
  }

  /** Runs one call on the world; a world that throws ends the episode (it is not the policy's fault). */
  runCall(turn: number, call: ToolCall): 'ok' | 'world_error' {
    let text: string;
    if (call.arguments === null) {
      text = JSON.stringify({ error: 'invalid_tool_call', message: `could not parse the tool call: ${call.raw.slice(0, 80)}` });
    } else {
      try {
        const r = this.d.world.call(call.name, call.arguments);
        if (!r.ok) this.error(turn, `tool_${r.kind}`, `${call.name}: ${r.message}`);
        text = renderToolResult(r);
      } catch (e) {
        this.error(turn, 'world_error', `${call.name}: the world threw: ${(e as Error)?.message ?? String(e)}`);
        return 'world_error';
      }
    }
    this.append(msg('tool', text, { tool_call_id: call.id, name: call.name }));
    return 'ok';
  }

  /** True when the same call has now been made maxRepeats times in a row. */
  looping(calls: ToolCall[]): boolean {
    for (const c of calls) {
      const sig = `${c.name}:${c.arguments === null ? c.raw : JSON.stringify(c.arguments)}`;
      this.lastCalls = this.lastCalls.length && this.lastCalls[0] === sig ? [...this.lastCalls, sig] : [sig];
    }
    return this.lastCalls.length >= this.d.limits.maxRepeats;
  }

  async generate(turn: number, prompt: number[]): Promise<GenerateResult | FinishReason> {
    const { limits, sampling } = this.d;
    const room = limits.maxContext - prompt.length;
    if (room < 1) {
      this.error(turn, 'context_overflow', `prompt of ${prompt.length} tokens leaves no room in a context of ${limits.maxContext}`);
      return 'context_overflow';
    }
    const req: GenerateRequest = { prompt, maxTokens: Math.min(limits.maxNewTokens, room), stop: [this.d.ct.endOfTurnId],
      temperature: sampling.temperature, topP: sampling.topP, seed: (this.job.seed * 1009 + turn) >>> 0 };
    try {
      return await this.d.gen.generate(req);
    } catch (e) {
      if (this.d.signal?.aborted) throw e;
      this.error(turn, 'engine_error', (e as Error)?.message ?? String(e));
      return 'error';
    }
  }

  /** One assistant turn: generate, parse, act. Null to continue. */
  async assistantTurn(turn: number): Promise<FinishReason | null> {
    const prompt = this.tokens.generationPrompt();
    const t0 = performance.now();
    const g = await this.generate(turn, prompt);
    const t1 = performance.now();
    if (typeof g === 'string') return g;
    this.policyVersion = this.policyVersion < 0 ? g.policyVersion : Math.min(this.policyVersion, g.policyVersion);
    const parsed = parseAssistant(decodeIds(this.d.ct, g.tokens), `call_${turn}_`);
    for (const e of parsed.errors) this.error(turn, `parse_${e.kind}`, e.message);
    const before = this.tokens.ids.length;
    this.tokens.appendGenerated(g.tokens, msg('assistant', parsed.content, { tool_calls: parsed.tool_calls }));
    this.pad();
    let k = 0;
    for (let i = before; i < this.tokens.ids.length; i++) if (this.tokens.mask[i] === 1) this.logprobs[i] = g.logprobs[k++] ?? 0;
    const finish = await this.act(turn, g, parsed.content, parsed.tool_calls);
    this.timings.push({ turn, generate_ms: t1 - t0, env_ms: performance.now() - t1, prompt_tokens: prompt.length, generated_tokens: g.tokens.length });
    return finish;
  }

  private async act(turn: number, g: GenerateResult, content: string, calls: ToolCall[]): Promise<FinishReason | null> {
    if (g.finish === 'error') { this.error(turn, 'engine_error', g.error ?? 'engine error'); return 'error'; }
    if (g.finish === 'length' && g.tokens.length < this.d.limits.maxNewTokens) {
      this.error(turn, 'context_overflow', `generation filled the context of ${this.d.limits.maxContext} tokens`);
      return 'context_overflow';
    }
    if (g.finish === 'length') { this.error(turn, 'no_stop', `the turn did not end within ${g.tokens.length} tokens`); return 'max_tokens'; }
    if (g.finish === 'context') { this.error(turn, 'context_overflow', 'generation reached the context limit'); return 'context_overflow'; }
    if (calls.length) {
      for (const c of calls) if (this.runCall(turn, c) === 'world_error') return 'error';
      if (this.looping(calls)) { this.error(turn, 'tool_loop', `${calls[0].name} repeated ${this.d.limits.maxRepeats} times`); return 'tool_loop'; }
      return null;
    }
    this.lastCalls = [];
    if (!content.trim()) { this.error(turn, 'empty_message', 'the assistant sent neither text nor tool calls'); return 'error'; }
    if (isQuestion(content)) return this.userTurn(turn + 1);
    return isRefusal(content) ? 'refused' : 'answered';
  }
}

export async function runRollout(job: RolloutJob, d: RolloutDeps): Promise<Rollout> {
  d.world.reset(job.task);
  const ep = new Episode(job, d);
  ep.append(msg('system', systemPrompt(d.world)));
  let finish: FinishReason | null = await ep.userTurn(0);
  let turns = 0;
  for (; finish === null && turns < d.limits.maxTurns; turns++) finish = await ep.assistantTurn(turns);
  const { ids, mask } = ep.tokens.result();
  const errorCounts: Record<string, number> = {};
  for (const e of ep.errors) errorCounts[e.kind] = (errorCounts[e.kind] ?? 0) + 1;
  const completion = mask.reduce((s, m) => s + m, 0);
  return {
    id: job.id, task_id: job.task.id, world: job.task.world, messages: ep.tokens.messages as Message[], tools: d.world.toolSpecs(),
    source: 'rollout', teacher: 'policy', seed: job.seed, policy_version: ep.policyVersion < 0 ? d.gen.policyVersion : ep.policyVersion,
    reward: null, reward_components: {}, turns, finish_reason: finish ?? 'max_turns', errors: ep.errors,
    difficulty: job.task.difficulty, split: job.task.split, group_id: job.groupId, sample: job.sample, step: job.step,
    input_ids: ids, loss_mask: mask, behaviour_logprobs: ep.logprobs.slice(0, ids.length), prompt_tokens: ids.length - completion,
    completion_tokens: completion, timings: ep.timings, error_counts: errorCounts, success: null,
    trainable: !ep.errors.some((e) => e.kind === 'world_error' || e.kind === 'user_error' || e.kind === 'engine_error'),
  };
}
