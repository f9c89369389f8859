import { expect } from 'vitest';
import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import type { ChatPolicy } from '../../runtime/agent/policy.ts';
import { runEpisode } from '../../runtime/agent/loop.ts';
import { scriptedUser } from '../../runtime/agent/scripted.ts';
import { getWorld, openWorld } from '../../runtime/worlds/index.ts';
import type { ToolResult } from '../../runtime/worlds/world.ts';

/** A world reset to a fixed database; `state` is typed by the caller. */
export function fresh<S>(name: string, seed = 7, tags: string[] = []) {
  const w = getWorld(name);
  w.reset({ seed, tags });
  return { w, s: w.state() as S };
}

/** Calls a confirmation-gated tool as if the user had just said yes. */
export function confirmed(w: ReturnType<typeof getWorld>, name: string, args: unknown): ToolResult {
  w.episode.confirmed = true;
  return w.call(name, args);
}

export function expectOk(r: ToolResult): any {
  if (!r.ok) throw new Error(`expected ok, got ${r.kind}: ${r.message}`);
  return r.result;
}

/** Asserts an error of `kind` whose message matches, and that the failed call left the state untouched. */
export function expectError(w: ReturnType<typeof getWorld>, run: () => ToolResult, kind: string, msg?: RegExp): void {
  const before = w.stateHash();
  const r = run();
  expect(r.ok).toBe(false);
  if (r.ok) return;
  expect(r.kind).toBe(kind);
  if (msg) expect(r.message).toMatch(msg);
  expect(w.stateHash()).toBe(before);
}

/** An assistant message with tool calls given as [name, arguments] pairs (ids c0, c1, …). */
export const sayCalls = (content: string, calls: Array<[string, Record<string, unknown>]> = []): Message => ({
  role: 'assistant', content, tool_call_id: null, name: null,
  tool_calls: calls.map(([name, args], i) => ({ id: `c${i}`, name, arguments: args, raw: JSON.stringify(args) })),
});

/** One episode in a world opened by name (the program-running worlds need openWorld, not getWorld). */
export const worldEpisode = (task: Task, teacher: ChatPolicy, seed = 0) =>
  runEpisode({ task, world: openWorld(task.world), teacher, user: scriptedUser(task), seed, trajectoryId: `${task.id}:s${seed}` });
