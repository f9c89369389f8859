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
 * distractors (extra irrelevant tools are offered). task.template names the instruction template; held-out splits
 * mix in a probe of templates no train split contains and longer tasks (template_seen = false; see tasks.ts).
 *
 * Outcome check: verifyTrajectory(trajectory, task) → Verdict, in runtime/worlds/verify.ts.
 */
import type { Task } from '../../schemas/task.ts';
import { BaseWorld, type WorldDef } from './base.ts';
import { bankWorld } from './bank/index.ts';
import { retailWorld } from './retail/index.ts';
import { makeTasksFor, type MakeTasksOptions } from './tasks.ts';
import { travelWorld } from './travel/index.ts';
import type { World } from './world.ts';
import { ExecWorld, type ExecTaskOptions, type ExecWorldDef } from './code/exec.ts';
import { codeWorld } from './code/index.ts';
import { repoWorld } from './repo/index.ts';

export { BaseWorld, isConfirmation, isRefusal, observeUserTurn, renderToolResult, ToolFailure } from './base.ts';
export type { Action, WorldDef, WorldTool } from './base.ts';
export { HELDOUT_PROBE, PROBE_MAX_DIFFICULTY, splitOf, taskId, templateOf, type MakeTasksOptions } from './tasks.ts';
export { hashValue, canonicalJson } from './hash.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const DEFS: Record<string, WorldDef<any>> = { retail: retailWorld, travel: travelWorld, bank: bankWorld };
export const WORLD_NAMES = Object.keys(DEFS) as readonly string[];

/*
 * Worlds whose tools run programs in the sandbox (code, repo-repair): same operators, by name, but their tools and
 * verdicts are asynchronous (World.callAsync, verifyTrajectoryAsync) and they are not in WORLD_NAMES, so recipes
 * that take "all worlds" by default keep meaning the tool-use worlds.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const EXEC: Record<string, ExecWorldDef<any>> = { code: codeWorld, repo: repoWorld };
export const EXEC_WORLD_NAMES = Object.keys(EXEC) as readonly string[];
export const ALL_WORLD_NAMES: readonly string[] = [...WORLD_NAMES, ...EXEC_WORLD_NAMES];

/** The record of a program-running world, or undefined for a tool-use world. */
export function execWorldDef(name: string): ExecWorldDef<unknown> | undefined {
  return Object.hasOwn(EXEC, name) ? EXEC[name] : undefined;
}

/** A fresh instance of any world (tool-use or program-running); call reset(task) before use. */
export function openWorld(name: string): World {
  const e = execWorldDef(name);
  return e ? new ExecWorld(e) : getWorld(name);
}

/** Tasks of any world (the program-running ones check their tasks in the sandbox, hence async). */
export async function generateTasks(world: string, opts: MakeTasksOptions & Pick<ExecTaskOptions, 'onReject'>): Promise<Task[]> {
  const e = execWorldDef(world);
  if (!e) return makeTasks(world, opts);
  const o: ExecTaskOptions = { seed: opts.seed, n: opts.n, split: opts.split, heldoutFraction: opts.heldoutFraction, onReject: opts.onReject };
  return e.makeTasks(o);
}

export function worldDef(name: string): WorldDef<unknown> {
  const d = Object.hasOwn(DEFS, name) ? DEFS[name] : undefined;
  if (!d) throw new Error(`unknown world "${name}"; known worlds: ${ALL_WORLD_NAMES.join(', ')}${execWorldDef(name) ? ` (${name} runs programs: use openWorld/generateTasks)` : ''}`);
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
