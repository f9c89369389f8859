/* Summaries of a set of rollouts, for step metrics and eval rows: means, finish reasons and error counts. */
import type { Rollout } from '../../schemas/rollout.ts';

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export function countBy(rows: Rollout[], key: (r: Rollout) => Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) for (const [k, v] of Object.entries(key(r))) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Flat name → value map: reward and its components, success, lengths, finish reasons and errors as counts. */
export function rolloutMetrics(rows: Rollout[]): Record<string, number> {
  const m: Record<string, number> = {
    reward: mean(rows.map((r) => r.reward ?? 0)),
    success: mean(rows.map((r) => (r.success ? 1 : 0))),
    turns: mean(rows.map((r) => r.turns)),
    completion_tokens: mean(rows.map((r) => r.completion_tokens)),
    tokens: rows.reduce((s, r) => s + r.input_ids.length, 0),
    untrainable: rows.filter((r) => !r.trainable).length,
  };
  for (const [k, v] of Object.entries(countBy(rows, (r) => r.reward_components))) m[`reward_${k}`] = v / Math.max(1, rows.length);
  for (const [k, v] of Object.entries(countBy(rows, (r) => ({ [r.finish_reason]: 1 })))) m[`finish_${k}`] = v;
  for (const [k, v] of Object.entries(countBy(rows, (r) => r.error_counts))) m[`errors_${k}`] = v;
  return m;
}
