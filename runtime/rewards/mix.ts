/*
 * The mixed reward: a weighted sum of the components, with weights per world (a world not listed uses the
 * defaults). Outcome dominates; the shaping terms are small so they never outrank success. The scored rollout
 * carries every component, the total, success (= outcome) and the failure counts that training metrics sum up.
 */
import { z } from 'zod';
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { COMPONENTS, type RewardFn } from './components.ts';

export const RewardWeights = z.object({
  outcome: z.number().default(1),
  format: z.number().default(0.1),
  validity: z.number().default(0.1),
  efficiency: z.number().default(0.05),
  /** Partial credit for near-miss answers (components.ts `answer`); off unless a recipe asks for it. */
  answer: z.number().default(0),
});
export type RewardWeights = z.infer<typeof RewardWeights>;

export const RewardParams = z.object({
  default: RewardWeights.default(RewardWeights.parse({})),
  /** world → weights overriding the default ones. */
  worlds: z.record(z.string(), RewardWeights.partial()).default({}),
});
export type RewardParams = z.infer<typeof RewardParams>;

export function weightsFor(p: RewardParams, world: string): RewardWeights {
  return { ...p.default, ...(p.worlds[world] ?? {}) };
}

/** Scores a rollout with the given components (default: the four built-ins); pure. */
export function scoreRollout(r: Rollout, task: Task, p: RewardParams, components: Record<string, RewardFn> = COMPONENTS): Rollout {
  const w = weightsFor(p, task.world) as Record<string, number>;
  const values: Record<string, number> = {};
  let total = 0;
  for (const [name, fn] of Object.entries(components)) {
    const v = r.trainable ? fn(r, task) : 0;
    values[name] = v;
    total += (w[name] ?? 0) * v;
  }
  return { ...r, reward: total, reward_components: values, success: values.outcome === 1 };
}
