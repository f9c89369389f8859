import { z } from 'zod';
import { Rollout } from './rollout.ts';

/** One row per (model, world) of an evaluation on held-out tasks. */
export const EvalRow = z.object({
  model: z.string(),
  world: z.string(),
  split: z.string(),
  tasks: z.number().int(),
  samples_per_task: z.number().int(),
  temperature: z.number(),
  /** Mean over tasks of the share of successful samples. */
  success: z.number(),
  /** k → pass^k (τ-bench: all k samples succeed), for k = 1..samples_per_task. */
  pass_hat_k: z.record(z.string(), z.number()),
  mean_reward: z.number(),
  mean_turns: z.number(),
  mean_completion_tokens: z.number(),
  /** finish reason → count. */
  finish_reasons: z.record(z.string(), z.number()),
  /** error kind → count. */
  errors: z.record(z.string(), z.number()),
});
export type EvalRow = z.infer<typeof EvalRow>;

/**
 * One evaluation rollout: the model's full trajectory on a held-out task, labelled with the model, plus the
 * outcome verifier's reasons (empty when it passed), so failures are a GROUP BY away:
 *   agentforge sql "select model, split_part(r, ':', 1) reason, count(*) from (select model, unnest(verdict) r from eval_rollouts) group by all"
 */
export const EvalRollout = Rollout.extend({
  model: z.string(),
  temperature: z.number(),
  verdict: z.array(z.string()),
});
export type EvalRollout = z.infer<typeof EvalRollout>;
