import type { Goal, Split, Task } from '../../schemas/task.ts';
import { BaseWorld, renderToolResult, type Action, type TaskDraft, type TaskKind, type WorldDef } from './base.ts';
import { derive, derive31, Rng } from '../engine/rng.ts';

/*
 * Task generation. Task i of (world, seed) draws its own database seed, picks a kind and lets the kind propose a
 * draft; the draft's gold actions are executed on a fresh world to derive the goal (final state hash, required
 * outputs). The split is a hash of the world and the instruction text, so an instruction can never be in both
 * splits, and ids count tasks within a split: `retail-train-00042` is the 43rd train task of that seed, whatever n.
 *
 * The held-out split is two streams, interleaved (every 1/probe-th position is a probe task, so any prefix mixes
 * them): the in-distribution stream is drawn exactly as the train split is (same kinds, same difficulty range, the
 * other side of the instruction hash), and the probe stream holds what training never shows: the world's held-out-
 * only kinds (templates never in any train split) and the train kinds' tasks longer than max difficulty, up to
 * probeMaxDifficulty. Every task records its template and whether training can contain it (template_seen). The
 * train split draws nothing new, so its rows are the same as before the probe existed.
 */

/** Share of held-out tasks drawn from the probe (unseen templates, longer tasks) when the world has held-out kinds. */
export const HELDOUT_PROBE = 0.5;
/** Longest probe task (gold calls): 4 calls with their confirmations and questions fit in 8 assistant turns. */
export const PROBE_MAX_DIFFICULTY = 4;

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
  /** Held-out split only: share of probe tasks (default HELDOUT_PROBE; 0 = in-distribution only). */
  probe?: number;
  /** Held-out split only: the probe's longest task in gold calls (default PROBE_MAX_DIFFICULTY). */
  probeMaxDifficulty?: number;
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
function draftFor<S>(def: WorldDef<S>, taskSeed: number, pool: TaskKind<S>[]) {
  const rng = new Rng(taskSeed);
  const kind = rng.pick(pool);
  const withDistractors = rng.next();
  return { kind: kind.name, draft: kind.make(def.init(taskSeed), rng), withDistractors };
}

/** The instruction template of a draft: world/kind[:variant]. */
export function templateOf(world: string, kind: string, draft: Pick<TaskDraft, 'variant' | 'hidden'>): string {
  const variant = draft.variant ?? (draft.hidden && Object.keys(draft.hidden).length ? 'ask' : '');
  return `${world}/${kind}${variant ? `:${variant}` : ''}`;
}

interface Stream<S> {
  /** Seed label of the stream ([] = the original train/held-out stream, so its task seeds never change). */
  label: string[];
  pool: TaskKind<S>[];
  /** Whether a draft of this kind at this difficulty belongs to the stream. */
  accepts(kind: string, difficulty: number, instruction: string): boolean;
  seen: boolean;
}

function drawStream<S>(def: WorldDef<S>, o: Required<Pick<MakeTasksOptions, 'seed' | 'distractorRate'>>, st: Stream<S>, n: number, what: string) {
  const out: Omit<Task, 'id'>[] = [];
  for (let i = 0, misses = 0; out.length < n; i++) {
    if (misses > 1000 + 50 * n) throw new Error(`${def.name}: cannot make ${n} ${what}`);
    const taskSeed = derive31(def.name, ...st.label, o.seed, i); // stored as a signed 32-bit column
    const { kind, draft, withDistractors } = draftFor(def, taskSeed, st.pool);
    const difficulty = Math.max(1, draft?.actions.length ?? 0);
    if (!draft || !st.accepts(kind, difficulty, draft.instruction)) {
      misses++;
      continue;
    }
    const tags = [`kind:${kind}`, ...(draft.tags ?? []), ...(draft.hidden ? ['ask_user'] : []), ...(withDistractors < o.distractorRate ? ['distractors'] : [])];
    out.push({
      world: def.name, instruction: draft.instruction, hidden_facts: draft.hidden ?? {}, seed: taskSeed,
      goal: materialize(def, draft, taskSeed, tags), difficulty, split: 'train', tags,
      template: templateOf(def.name, kind, draft), template_seen: st.seen,
    });
  }
  return out;
}

/** Position k of a held-out list is a probe task when the probe's running count steps there. */
export const isProbePosition = (k: number, share: number): boolean => Math.floor((k + 1) * share) > Math.floor(k * share);

export function makeTasksFor<S>(def: WorldDef<S>, opts: MakeTasksOptions): Task[] {
  const { seed, n, split = 'train', heldoutFraction = 0.2, minDifficulty = 1, maxDifficulty = 99, distractorRate = 0.3 } = opts;
  const probeMax = opts.probeMaxDifficulty ?? PROBE_MAX_DIFFICULTY;
  const wanted = (k: TaskKind<S>) => !opts.kinds?.length || opts.kinds.includes(k.name);
  const trainPool = def.kinds.filter(wanted);
  const unseenPool = (def.heldoutKinds ?? []).filter(wanted);
  const unseen = new Set(unseenPool.map((k) => k.name));
  if (!trainPool.length && !(split === 'heldout' && unseenPool.length)) {
    const only = def.heldoutKinds?.length ? ` (held-out only: ${def.heldoutKinds.map((k) => k.name).join(', ')})` : '';
    throw new Error(`${def.name}: no ${unseenPool.length ? 'train-split ' : ''}task kind among ${JSON.stringify(opts.kinds)}; have ${def.kinds.map((k) => k.name).join(', ')}${only}`);
  }
  // the probe exists where the world has held-out-only kinds (they always draw); all of it when only they were asked for
  const share = split !== 'heldout' || !unseenPool.length ? 0 : trainPool.length ? opts.probe ?? HELDOUT_PROBE : 1;
  if (!(share >= 0 && share <= 1)) throw new Error(`${def.name}: probe share must be in [0, 1], got ${share}`);
  const inRange = (d: number) => d >= minDifficulty && d <= maxDifficulty;
  const hashed = (instruction: string) => splitOf(def.name, instruction, heldoutFraction) === split;
  const positions = Array.from({ length: n }, (_, k) => isProbePosition(k, share));
  const nProbe = positions.filter(Boolean).length;
  const o = { seed, distractorRate };
  const main = drawStream(def, o, { label: [], pool: trainPool, seen: true, accepts: (_k, d, ins) => inRange(d) && hashed(ins) },
    n - nProbe, `${split} tasks with difficulty ${minDifficulty}..${maxDifficulty}`);
  const probe = drawStream(def, o, {
    label: ['probe'], pool: [...unseenPool, ...trainPool], seen: false,
    // held-out-only kinds never occur in training, so they skip the instruction hash; longer train kinds keep it
    accepts: (k, d, ins) => d >= minDifficulty && d <= probeMax && (unseen.has(k) || (d > maxDifficulty && hashed(ins))),
  }, nProbe, `held-out probe tasks with difficulty ${minDifficulty}..${probeMax}`);
  let m = 0, p = 0;
  return positions.map((isProbe, k) => ({ id: taskId(def.name, split, k), ...(isProbe ? probe[p++] : main[m++]), split }));
}
