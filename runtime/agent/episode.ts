import type { Message, ToolCall } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { FinishReason, Trajectory, TurnError } from '../../schemas/trajectory.ts';
import type { ChatPolicy } from './policy.ts';
import { isRefusal, observeUserTurn, renderToolResult } from '../worlds/base.ts';
import type { World } from '../worlds/world.ts';
import { USER_STOP } from './scripted.ts';
import { hasInvalidText, isWellFormed, toWellFormed } from './text.ts';

/*
 * One episode: the user opens with the task, the teacher answers (text or tool calls), the world executes tool
 * calls, the user answers questions, until the teacher gives a final answer or a limit is hit. Nothing a player
 * or a tool does can throw out of here: every problem becomes a TurnError in the trajectory (and so fails
 * verification) — only an abort signal ends the episode with an exception.
 */

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

export const systemPrompt = (world: World): string =>
  `${world.policy}\nUse the tools to look things up and act. When done, give a short final answer.`;

const msg = (role: Message['role'], content: string, extra: Partial<Message> = {}): Message =>
  ({ role, content, tool_calls: [], tool_call_id: null, name: null, ...extra });

const isQuestion = (text: string): boolean => /\?\s*$/.test(text.trim()) || text.includes('(yes/no)');

class Episode {
  messages: Message[] = [];
  errors: TurnError[] = [];
  chars = 0;
  constructor(readonly o: Required<Omit<EpisodeOptions, 'signal'>> & { signal?: AbortSignal }) {}

  push(m: Message): void {
    this.messages.push(m);
    this.chars += m.content.length + m.tool_calls.reduce((s, c) => s + c.raw.length + c.name.length, 0);
  }
  error(turn: number, kind: string, message: string): void {
    this.errors.push({ turn, kind, message: message.slice(0, 500) });
  }
  /** Keeps text valid UTF-16/UTF-8 and bounded; records what it had to fix. */
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

  runCall(turn: number, call: ToolCall): void {
    let text: string;
    if (call.arguments === null) {
      const message = `arguments of ${call.name} are not valid JSON: ${call.raw.slice(0, 80)}`;
      this.error(turn, 'invalid_json_args', message);
      text = JSON.stringify({ error: 'invalid_args', message });
    } else {
      const r = this.o.world.call(call.name, call.arguments);
      if (!r.ok) this.error(turn, `tool_${r.kind}`, `${call.name}: ${r.message}`);
      if (r.ok && hasInvalidText(r.result)) this.error(turn, 'invalid_utf8', `${call.name} returned text with invalid UTF-8 (lone surrogates)`);
      text = renderToolResult(r);
    }
    this.push(msg('tool', this.clean(turn, text, this.o.maxToolResultChars, 'tool result'), { tool_call_id: call.id, name: call.name }));
  }

  async ask(player: ChatPolicy, key: string, tools = this.o.world.toolSpecs()): Promise<Message> {
    return player.respond({ messages: this.messages, tools, seed: this.o.seed, idempotencyKey: `${this.o.trajectoryId}:${key}`, signal: this.o.signal });
  }

  /** Returns a finish reason, or null to continue. */
  async userTurn(turn: number): Promise<FinishReason | null> {
    let u: Message;
    try {
      u = await this.ask(this.o.user, `u${turn}`, []);
    } catch (e) {
      if (this.o.signal?.aborted) throw e;
      this.error(turn, 'user_error', (e as Error)?.message ?? String(e));
      return 'error';
    }
    const content = this.clean(turn, u.content, this.o.maxMessageChars, 'user message');
    if (content.includes(USER_STOP)) return 'user_stop';
    if (!content.trim()) {
      this.error(turn, 'empty_message', 'the user simulator sent an empty message');
      return 'error';
    }
    this.push(msg('user', content));
    observeUserTurn(this.o.world, content);
    return null;
  }

  async assistantTurn(turn: number): Promise<FinishReason | null> {
    if (this.chars / 4 > this.o.maxTokens) return 'max_tokens';
    let a: Message;
    try {
      a = await this.ask(this.o.teacher, `a${turn}`);
    } catch (e) {
      if (this.o.signal?.aborted) throw e;
      this.error(turn, 'teacher_error', (e as Error)?.message ?? String(e));
      return 'error';
    }
    const calls = Array.isArray(a.tool_calls) ? a.tool_calls : [];
    const content = this.clean(turn, a.content, this.o.maxMessageChars, 'assistant message');
    this.push(msg('assistant', content, { tool_calls: calls }));
    if (calls.length) {
      for (const c of calls) this.runCall(turn, c);
      return null;
    }
    if (!content.trim()) {
      this.error(turn, 'empty_message', 'the assistant sent neither text nor tool calls');
      return 'error';
    }
    if (this.errors.some((e) => e.turn === turn && e.kind === 'assistant_message_too_large')) return 'error';
    if (isQuestion(content)) return this.userTurn(turn + 1);
    return isRefusal(content) ? 'refused' : 'answered';
  }
}

export async function runEpisode(opts: EpisodeOptions): Promise<Trajectory> {
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as EpisodeOptions;
  const o = { maxTurns: 16, maxTokens: 4096, maxMessageChars: 8000, maxToolResultChars: 4000, source: 'synth', ...given };
  const { task, world } = o;
  world.reset(task);
  const ep = new Episode(o);
  ep.push(msg('system', systemPrompt(world)));
  let finish: FinishReason | null = await ep.userTurn(0);
  let turns = 0;
  for (; finish === null && turns < o.maxTurns; turns++) finish = await ep.assistantTurn(turns);
  return {
    id: o.trajectoryId, task_id: task.id, world: task.world, messages: ep.messages, tools: world.toolSpecs(), source: o.source,
    teacher: o.teacher.name, seed: o.seed, policy_version: 0, reward: null, reward_components: {}, turns,
    finish_reason: finish ?? 'max_turns', errors: ep.errors, difficulty: task.difficulty, split: task.split,
  };
}
