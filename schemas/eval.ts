import { z } from 'zod';
import { Rollout } from './rollout.ts';

/** Success on a subset of a (model, world)'s tasks: "difficulty:3", "template:unseen", … */
export const EvalSlice = z.object({ slice: z.string(), tasks: z.number().int(), success: z.number() });
export type EvalSlice = z.infer<typeof EvalSlice>;

/**
 * This model's success minus the baseline's on the same tasks (paired per task), with a seeded percentile-
 * bootstrap interval (runtime/eval/bootstrap.ts), over all of a world's tasks ("all") or a slice.
 */
export const PairedGain = z.object({
  baseline: z.string(), slice: z.string(), tasks: z.number().int(), diff: z.number(), lo: z.number(), hi: z.number(), level: z.number(),
});
export type PairedGain = z.infer<typeof PairedGain>;

/**
 * Long form of the same, one row per (model, world, slice) — world "*" is all worlds together; slice "all",
 * "difficulty:<gold calls>", "template:seen" / "template:unseen" — with the paired gain over the baseline model
 * (null on the baseline's own rows), written by eval-slices:
 *   agentforge sql "select model, world, tasks, success, gain, gain_lo, gain_hi from eval_slices where slice = 'template:unseen'"
 */
export const EvalSliceRow = z.object({
  model: z.string(), world: z.string(), slice: z.string(), tasks: z.number().int(), success: z.number(),
  baseline: z.string().nullable(), gain: z.number().nullable(), gain_lo: z.number().nullable(), gain_hi: z.number().nullable(), level: z.number(),
});
export type EvalSliceRow = z.infer<typeof EvalSliceRow>;

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
  /**
   * Success by difficulty (gold tool calls) and, where the tasks were given, by whether training contains the
   * task's template ("template:seen" / "template:unseen"):
   *   agentforge sql "select model, world, s.slice, s.tasks, s.success from eval, unnest(slices) as u(s)"
   */
  slices: z.array(EvalSlice).optional(),
  /** Gain over the baseline model (eval-summary's `baseline`, 'sft' by default), on all tasks and on each slice. */
  gains: z.array(PairedGain).optional(),
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
