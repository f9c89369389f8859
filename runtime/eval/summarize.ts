/*
 * Held-out evaluation as a pure summary: per (model, world), success = mean over tasks of the share of
 * successful samples, and pass^k for k = 1..samples (τ-bench's reliability measure: all k samples succeed).
 * Slices split the tasks by difficulty and, when the tasks are known, by whether training contains their template;
 * gains compare a model with a baseline on the same tasks (paired, with a bootstrap interval).
 */
import type { Rollout } from '../../schemas/rollout.ts';
import type { EvalRow, EvalSlice, EvalSliceRow, PairedGain } from '../../schemas/eval.ts';
import type { Task } from '../../schemas/task.ts';
import { passHatK } from './passk.ts';
import { pairedBootstrap } from './bootstrap.ts';
import { countBy } from '../rl/metrics.ts';
import { groupBy, pushTo } from '../engine/collections.ts';

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** What a summary may know about a task beyond its rollouts (from the task table). */
export type TaskFacts = Pick<Task, 'template_seen'>;
export type FactsOf = (taskId: string) => TaskFacts | undefined;

/** The slices one task belongs to: its difficulty and, where known, whether its template is seen in training. */
export function taskSlices(r: Pick<Rollout, 'task_id' | 'difficulty'>, facts?: FactsOf): string[] {
  const seen = facts?.(r.task_id)?.template_seen;
  return [`difficulty:${r.difficulty}`, ...(seen === undefined ? [] : [`template:${seen ? 'seen' : 'unseen'}`])];
}

/** "difficulty:2" before "difficulty:10", then the template slices. */
const sliceOrder = (a: string, b: string) => {
  const [ka, va] = a.split(':'), [kb, vb] = b.split(':');
  if (ka !== kb) return ka < kb ? -1 : 1;
  const na = Number(va), nb = Number(vb);
  return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : va < vb ? -1 : va > vb ? 1 : 0;
};

/** Per task of one (model, world): share of successful samples, sample counts and slices. */
function perTask(rs: Rollout[], facts?: FactsOf) {
  return new Map([...groupBy(rs, (r) => r.task_id)].map(([id, g]) => {
    const c = g.filter((r) => r.success).length;
    return [id, { n: g.length, c, success: c / g.length, slices: taskSlices(g[0], facts) }];
  }));
}

function slicesOf(tasks: ReturnType<typeof perTask>): EvalSlice[] {
  const by = new Map<string, number[]>();
  for (const t of tasks.values()) for (const s of t.slices) pushTo(by, s, t.success);
  return [...by].sort(([a], [b]) => sliceOrder(a, b)).map(([slice, xs]) => ({ slice, tasks: xs.length, success: mean(xs) }));
}

export function summarize(model: string, rows: Rollout[], temperature: number, facts?: FactsOf): EvalRow[] {
  return [...groupBy(rows, (r) => r.world)].sort(([a], [b]) => (a < b ? -1 : 1)).map(([world, rs]) => {
    const tasks = perTask(rs, facts);
    const counts = [...tasks.values()];
    const n = counts.reduce((m, c) => Math.min(m, c.n), Infinity);
    const pass: Record<string, number> = {};
    for (let k = 1; k <= n; k++) pass[String(k)] = mean(counts.map((c) => passHatK(c.n, c.c, k)));
    return {
      model, world, split: rs[0].split, tasks: tasks.size, samples_per_task: n, temperature,
      success: mean(counts.map((c) => c.success)), pass_hat_k: pass,
      mean_reward: mean(rs.map((r) => r.reward ?? 0)), mean_turns: mean(rs.map((r) => r.turns)),
      mean_completion_tokens: mean(rs.map((r) => r.completion_tokens)),
      finish_reasons: countBy(rs, (r) => ({ [r.finish_reason]: 1 })), errors: countBy(rs, (r) => r.error_counts),
      slices: slicesOf(tasks),
    };
  });
}

/**
 * `model` minus `baseline` per world, paired over the tasks both were evaluated on: on all of them and on each
 * slice, each with its bootstrap interval (seeded, so a rerun reports the same interval).
 */
export function pairedGains(model: Rollout[], baseline: Rollout[], baselineName: string, facts?: FactsOf, opts: { level?: number; resamples?: number; seed?: number } = {}): Map<string, PairedGain[]> {
  const base = groupBy(baseline, (r) => r.world);
  const out = new Map<string, PairedGain[]>();
  for (const [world, rs] of groupBy(model, (r) => r.world)) {
    const mine = perTask(rs, facts), theirs = perTask(base.get(world) ?? [], facts);
    const shared = [...mine.keys()].filter((id) => theirs.has(id)).sort();
    if (!shared.length) continue;
    const slices = new Map<string, string[]>([['all', shared]]);
    for (const id of shared) for (const s of mine.get(id)!.slices) pushTo(slices, s, id);
    out.set(world, [...slices].sort(([a], [b]) => (a === 'all' ? -1 : b === 'all' ? 1 : sliceOrder(a, b))).map(([slice, ids]) => {
      const r = pairedBootstrap(ids.map((id) => theirs.get(id)!.success), ids.map((id) => mine.get(id)!.success), opts);
      return { baseline: baselineName, slice, tasks: r.n, diff: r.diff, lo: r.lo, hi: r.hi, level: r.level };
    }));
  }
  return out;
}

/**
 * Every (model, world, slice) of an evaluation, world "*" pooling the worlds, each with the paired gain over
 * `baseline` on the tasks both were evaluated on (null for the baseline itself, or when it is absent).
 */
export function sliceTable(byModel: Map<string, Rollout[]>, baseline: string, facts?: FactsOf, opts: { level?: number; resamples?: number; seed?: number } = {}): EvalSliceRow[] {
  const level = opts.level ?? 0.95;
  const tasksOf = (rows: Rollout[]) => new Map([...groupBy(rows, (r) => r.world)].map(([w, rs]) => [w, perTask(rs, facts)]));
  const base = byModel.has(baseline) ? tasksOf(byModel.get(baseline)!) : undefined;
  const out: EvalSliceRow[] = [];
  for (const [model, rows] of byModel) {
    const mine = tasksOf(rows);
    const worlds = [...mine.keys()].sort();
    for (const world of [...worlds, '*']) {
      // task ids name their world, so pooling worlds keeps them distinct
      const pick = (m: Map<string, ReturnType<typeof perTask>>) => new Map((world === '*' ? worlds : [world]).flatMap((w) => [...(m.get(w) ?? new Map())]));
      const tasks = pick(mine), theirs = base && model !== baseline ? pick(base) : undefined;
      const slices = new Map<string, string[]>([['all', [...tasks.keys()].sort()]]);
      for (const [id, t] of [...tasks].sort(([a], [b]) => (a < b ? -1 : 1))) for (const s of t.slices) pushTo(slices, s, id);
      for (const [slice, ids] of [...slices].sort(([a], [b]) => (a === 'all' ? -1 : b === 'all' ? 1 : sliceOrder(a, b)))) {
        const shared = theirs ? ids.filter((id) => theirs.has(id)) : [];
        const g = shared.length ? pairedBootstrap(shared.map((id) => theirs!.get(id)!.success), shared.map((id) => tasks.get(id)!.success), opts) : null;
        out.push({ model, world, slice, tasks: ids.length, success: mean(ids.map((id) => tasks.get(id)!.success)),
          baseline: g ? baseline : null, gain: g?.diff ?? null, gain_lo: g?.lo ?? null, gain_hi: g?.hi ?? null, level });
      }
    }
  }
  return out;
}
