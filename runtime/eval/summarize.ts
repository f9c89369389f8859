/*
 * Held-out evaluation as a pure summary: per (model, world), success = mean over tasks of the share of
 * successful samples, and pass^k for k = 1..samples (τ-bench's reliability measure: all k samples succeed).
 */
import type { Rollout } from '../../schemas/rollout.ts';
import type { EvalRow } from '../../schemas/eval.ts';
import { passHatK } from './passk.ts';
import { countBy } from '../rl/metrics.ts';
import { groupBy } from '../engine/collections.ts';

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export function summarize(model: string, rows: Rollout[], temperature: number): EvalRow[] {
  return [...groupBy(rows, (r) => r.world)].sort(([a], [b]) => (a < b ? -1 : 1)).map(([world, rs]) => {
    const byTask = groupBy(rs, (r) => r.task_id);
    const counts = [...byTask.values()].map((g) => ({ n: g.length, c: g.filter((r) => r.success).length }));
    const n = counts.reduce((m, c) => Math.min(m, c.n), Infinity);
    const pass: Record<string, number> = {};
    for (let k = 1; k <= n; k++) pass[String(k)] = mean(counts.map((c) => passHatK(c.n, c.c, k)));
    return {
      model, world, split: rs[0].split, tasks: byTask.size, samples_per_task: n, temperature,
      success: mean(counts.map((c) => c.c / c.n)), pass_hat_k: pass,
      mean_reward: mean(rs.map((r) => r.reward ?? 0)), mean_turns: mean(rs.map((r) => r.turns)),
      mean_completion_tokens: mean(rs.map((r) => r.completion_tokens)),
      finish_reasons: countBy(rs, (r) => ({ [r.finish_reason]: 1 })), errors: countBy(rs, (r) => r.error_counts),
    };
  });
}
