/*
 * pass@k and pass^k curves for k = 1…N per (model, world) from evaluation rollouts with N samples per task: the
 * unbiased estimators of passk.ts averaged over tasks. pass@k is what best-of-k with a perfect verifier reaches;
 * pass^k is τ-bench's reliability (all k samples pass).
 */
import { z } from 'zod';
import type { EvalRollout } from '../../schemas/eval.ts';
import { groupBy } from '../engine/collections.ts';
import { meanOverTasks, passAtK, passHatK } from './passk.ts';

export const PassCurveRow = z.object({
  model: z.string(),
  world: z.string(),
  metric: z.enum(['pass@k', 'pass^k']),
  k: z.number().int(),
  tasks: z.number().int(),
  value: z.number(),
});
export type PassCurveRow = z.infer<typeof PassCurveRow>;

export function passCurves(rows: EvalRollout[]): PassCurveRow[] {
  const out: PassCurveRow[] = [];
  for (const [model, byModel] of groupBy(rows, (r) => r.model)) {
    for (const [world, rs] of [...groupBy(byModel, (r) => r.world)].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const counts = [...groupBy(rs, (r) => r.task_id).values()].map((g) => ({ n: g.length, c: g.filter((r) => r.success).length }));
      const n = Math.min(...counts.map((c) => c.n));
      for (const [metric, f] of [['pass@k', passAtK], ['pass^k', passHatK]] as const) {
        for (let k = 1; k <= n; k++) out.push({ model, world, metric, k, tasks: counts.length, value: meanOverTasks(counts, k, f) });
      }
    }
  }
  return out;
}
