/**
 * Built-in tool-use worlds: the registry the synthesis pipeline, the RL rollout loop and the evaluators share.
 *
 * World API (synchronous and cheap: no I/O, a few microseconds per call):
 *   const w = getWorld('retail');           // a fresh instance; instances are independent, reuse one per worker
 *   w.reset(task);                          // database from task.seed; offers distractor tools if tagged
 *   w.toolSpecs();                          // OpenAI tool specs (JSON Schema from the zod args)
 *   observeUserTurn(w, userText);           // a user "yes ..." authorises the next confirmation-gated call
 *   const r = w.call(name, args);           // { ok: true, result } | { ok: false, kind, message } — never throws
 *   renderToolResult(r);                    // the exact text the model sees (the verifier compares it on replay)
 *   w.stateHash();                          // 16 hex chars over the canonical JSON state
 * Error kinds: unknown_tool, invalid_args (message names the zod path), precondition, policy, not_found, internal.
 *
 * Tasks: makeTasks(world, { seed, n, split }) → Task[] with ids like `retail-train-00042`; the split is a hash of
 * the instruction, so no held-out instruction is ever a train instruction. difficulty = number of gold tool calls.
 * Tags: kind:<name>, refusal (policy requires refusing), ask_user (a fact is in task.hidden_facts only),
 * distractors (extra irrelevant tools are offered).
 *
 * Outcome check: verifyTrajectory(trajectory, task) → Verdict, in runtime/worlds/verify.ts.
 */
import type { Task } from '../../schemas/task.ts';
import { BaseWorld, type WorldDef } from './base.ts';
import { bankWorld } from './bank/index.ts';
import { retailWorld } from './retail/index.ts';
import { makeTasksFor, type MakeTasksOptions } from './tasks.ts';
import { travelWorld } from './travel/index.ts';

export { BaseWorld, isConfirmation, isRefusal, observeUserTurn, renderToolResult, ToolFailure } from './base.ts';
export type { Action, WorldDef, WorldTool } from './base.ts';
export { splitOf, taskId, type MakeTasksOptions } from './tasks.ts';
export { hashValue, canonicalJson } from './hash.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const DEFS: Record<string, WorldDef<any>> = { retail: retailWorld, travel: travelWorld, bank: bankWorld };
export const WORLD_NAMES = Object.keys(DEFS) as readonly string[];

export function worldDef(name: string): WorldDef<unknown> {
  const d = Object.hasOwn(DEFS, name) ? DEFS[name] : undefined;
  if (!d) throw new Error(`unknown world "${name}"; known worlds: ${WORLD_NAMES.join(', ')}`);
  return d;
}

/** A fresh world instance (call reset(task) before use). */
export function getWorld(name: string): BaseWorld<unknown> {
  return new BaseWorld(worldDef(name));
}

/** Deterministic tasks of one world and split (see the header). */
export function makeTasks(world: string, opts: MakeTasksOptions): Task[] {
  return makeTasksFor(worldDef(world), opts);
}
