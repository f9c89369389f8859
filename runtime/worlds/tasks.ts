import type { Goal, Split, Task } from '../../schemas/task.ts';
import { BaseWorld, renderToolResult, type Action, type TaskDraft, type WorldDef } from './base.ts';
import { derive, derive31, Rng } from '../engine/rng.ts';

/*
 * Task generation. Task i of (world, seed) draws its own database seed, picks a kind and lets the kind propose a
 * draft; the draft's gold actions are executed on a fresh world to derive the goal (final state hash, required
 * outputs). The split is a hash of the world and the instruction text, so an instruction can never be in both
 * splits, and ids count tasks within a split: `retail-train-00042` is the 43rd train task of that seed, whatever n.
 */

export interface MakeTasksOptions {
  seed: number;
  n: number;
  split?: Split;
  /** Share of instruction texts assigned to held-out (default 0.2). */
  heldoutFraction?: number;
  /** Task kinds to draw from (default: all of the world's). */
  kinds?: string[];
  /** Keep only tasks whose difficulty (gold tool calls) is in [min, max]. */
  minDifficulty?: number;
  maxDifficulty?: number;
  /** Share of tasks that also offer the world's distractor tools (default 0.3). */
  distractorRate?: number;
}

export function splitOf(world: string, instruction: string, heldoutFraction = 0.2): Split {
  return derive('split', world, instruction) % 10_000 < heldoutFraction * 10_000 ? 'heldout' : 'train';
}

export const taskId = (world: string, split: Split, i: number): string => `${world}-${split}-${String(i).padStart(5, '0')}`;

/** Runs the gold actions with every confirmation granted; throws if the draft is not executable (a generator bug). */
export function materialize<S>(def: WorldDef<S>, draft: TaskDraft, seed: number, tags: string[]): Goal {
  const w = new BaseWorld(def);
  w.reset({ seed, tags });
  const results: unknown[] = [];
  const run = (a: Action) => {
    w.episode.confirmed = true;
    return w.call(a.name, a.arguments);
  };
  for (const a of draft.actions) {
    const r = run(a);
    if (!r.ok) throw new Error(`${def.name}: gold action ${a.name} failed: ${renderToolResult(r)}`);
    results.push(r.result);
  }
  const hash = w.stateHash();
  if (draft.forbidden) {
    const r = run(draft.forbidden);
    if (r.ok || r.kind !== 'policy') throw new Error(`${def.name}: forbidden ${draft.forbidden.name} is not a policy violation: ${renderToolResult(r)}`);
  }
  const { text, outputs } = draft.answer(results);
  return { final_state_hash: hash, required_outputs: outputs, gold_actions: draft.actions, must_refuse: !!draft.forbidden, reference_answer: text };
}

/** Deterministic draft of one task seed: picks a kind with the task's rng and asks it for a draft. */
function draftFor<S>(def: WorldDef<S>, taskSeed: number, kinds?: string[]) {
  const rng = new Rng(taskSeed);
  const pool = kinds?.length ? def.kinds.filter((k) => kinds.includes(k.name)) : def.kinds;
  if (!pool.length) throw new Error(`${def.name}: no task kind among ${JSON.stringify(kinds)}; have ${def.kinds.map((k) => k.name).join(', ')}`);
  const kind = rng.pick(pool);
  const withDistractors = rng.next();
  return { kind: kind.name, draft: kind.make(def.init(taskSeed), rng), withDistractors };
}

export function makeTasksFor<S>(def: WorldDef<S>, opts: MakeTasksOptions): Task[] {
  const { seed, n, split = 'train', heldoutFraction = 0.2, minDifficulty = 1, maxDifficulty = 99, distractorRate = 0.3 } = opts;
  const out: Task[] = [];
  for (let i = 0, misses = 0; out.length < n; i++) {
    if (misses > 1000 + 50 * n) throw new Error(`${def.name}: cannot make ${n} ${split} tasks with difficulty ${minDifficulty}..${maxDifficulty}`);
    const taskSeed = derive31(def.name, seed, i); // stored as a signed 32-bit column
    const { kind, draft, withDistractors } = draftFor(def, taskSeed, opts.kinds);
    const difficulty = Math.max(1, draft?.actions.length ?? 0);
    if (!draft || difficulty < minDifficulty || difficulty > maxDifficulty || splitOf(def.name, draft.instruction, heldoutFraction) !== split) {
      misses++;
      continue;
    }
    const tags = [`kind:${kind}`, ...(draft.tags ?? []), ...(draft.hidden ? ['ask_user'] : []), ...(withDistractors < distractorRate ? ['distractors'] : [])];
    out.push({
      id: taskId(def.name, split, out.length), world: def.name, instruction: draft.instruction, hidden_facts: draft.hidden ?? {},
      seed: taskSeed, goal: materialize(def, draft, taskSeed, tags), difficulty, split, tags,
    });
  }
  return out;
}
