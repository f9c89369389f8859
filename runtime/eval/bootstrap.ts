/*
 * Is model B better than model A on the same held-out tasks? The paired difference: per task, B's success minus
 * A's (each a share of that task's samples), averaged; its uncertainty from a percentile bootstrap over tasks
 * (resample tasks with replacement, recompute the mean difference, take the central `level` of those means).
 * Pairing removes the variance that comes from which tasks happen to be drawn, which an unpaired comparison of
 * two success rates carries twice. Seeded: the same inputs and seed give the same interval.
 */
import { Rng } from '../engine/rng.ts';

export interface PairedDiff {
  /** Tasks compared. */
  n: number;
  mean_a: number;
  mean_b: number;
  /** mean(b − a) over tasks. */
  diff: number;
  /** Bootstrap interval of diff at `level`. */
  lo: number;
  hi: number;
  level: number;
  resamples: number;
}

export interface BootstrapOptions {
  /** Bootstrap resamples (default 10,000: the 2.5 % tails then rest on 250 resamples each). */
  resamples?: number;
  /** Central coverage of the interval (default 0.95). */
  level?: number;
  seed?: number;
}

const mean = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length ? s / xs.length : 0;
};

/** The q-quantile of sorted values, interpolated between the two nearest order statistics. */
function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const i = Math.floor(pos);
  return i + 1 < sorted.length ? sorted[i] + (sorted[i + 1] - sorted[i]) * (pos - i) : sorted[i];
}

/** Paired difference b − a over tasks (a[i] and b[i] are the same task) with a percentile-bootstrap interval. */
export function pairedBootstrap(a: readonly number[], b: readonly number[], opts: BootstrapOptions = {}): PairedDiff {
  const { resamples = 10_000, level = 0.95, seed = 0 } = opts;
  if (a.length !== b.length) throw new Error(`pairedBootstrap: ${a.length} scores for A but ${b.length} for B; pass one score per task for both, in the same task order`);
  if (!a.length) throw new Error('pairedBootstrap: no tasks to compare');
  if (!(level > 0 && level < 1)) throw new Error(`pairedBootstrap: level must be in (0, 1), got ${level}`);
  if (!Number.isInteger(resamples) || resamples < 1) throw new Error(`pairedBootstrap: resamples must be a positive integer, got ${resamples}`);
  const d = a.map((x, i) => {
    if (!Number.isFinite(x) || !Number.isFinite(b[i])) throw new Error(`pairedBootstrap: task ${i} has a non-finite score (a=${x}, b=${b[i]})`);
    return b[i] - x;
  });
  const rng = Rng.derive('paired-bootstrap', seed);
  const n = d.length;
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[Math.floor(rng.next() * n)];
    means[r] = s / n;
  }
  means.sort();
  const tail = (1 - level) / 2;
  return { n, mean_a: mean(a), mean_b: mean(b), diff: mean(d), lo: quantile(means, tail), hi: quantile(means, 1 - tail), level, resamples };
}
