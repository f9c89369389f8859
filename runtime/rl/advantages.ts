/*
 * GRPO advantages (Shao et al. 2024, DeepSeekMath, arXiv:2402.03300), computed where the rewards are: a sample's
 * advantage is its reward normalised inside its group (the G samples of one prompt),
 *   A_i = (r_i − mean(r)) / (std(r) + eps)      with the unbiased (n − 1) std, as TRL does,
 * shared by every trained token of the sample. A group whose rewards are all equal gets exactly 0 (not 0 / eps).
 * `scale_rewards: false` keeps only the centring (Dr. GRPO, Liu et al. 2025, arXiv:2503.20783), so reward weights
 * keep their proportions. Which groups train at all (DAPO's dynamic sampling) is decided before, in groups.ts; the
 * trainer (runtime/node, grpo.py) receives the advantages and only computes the loss.
 */
import { z } from 'zod';
import type { RlSample } from '../node/protocol.ts';
import { groupBy } from '../engine/collections.ts';

export const AdvantageParams = z.object({
  /** GRPO's (r − mean) / std advantages; false = Dr. GRPO's r − mean, so reward weights keep their proportions. */
  scale_rewards: z.boolean().default(true),
  /** eps in (r − mean) / (std + eps). */
  adv_eps: z.number().positive().default(1e-6),
});
export type AdvantageParams = z.output<typeof AdvantageParams>;

/** Advantages of one group's rewards, in order. */
export function groupAdvantages(rewards: readonly number[], p: AdvantageParams): number[] {
  const n = rewards.length;
  if (n < 2 || Math.max(...rewards) - Math.min(...rewards) <= 0) return rewards.map(() => 0);
  const mean = rewards.reduce((a, b) => a + b, 0) / n;
  const centred = rewards.map((r) => r - mean);
  if (!p.scale_rewards) return centred;
  const std = Math.sqrt(centred.reduce((a, c) => a + c * c, 0) / (n - 1));
  return centred.map((c) => c / (std + p.adv_eps));
}

/** A trained sequence before its advantage: what the rollout side knows about it. */
export interface ScoredSample extends Omit<RlSample, 'advantage'> { group_id: string; reward: number }

/** The trainer's samples: each scored sample with its group's advantage, in the order given. */
export function withAdvantages(rows: readonly ScoredSample[], p: AdvantageParams): RlSample[] {
  const adv = new Map<ScoredSample, number>();
  for (const [, group] of groupBy(rows, (r) => r.group_id)) {
    groupAdvantages(group.map((r) => r.reward), p).forEach((a, i) => adv.set(group[i], a));
  }
  return rows.map((r) => ({ input_ids: r.input_ids, loss_mask: r.loss_mask, behaviour_logprobs: r.behaviour_logprobs,
    policy_version: r.policy_version, advantage: adv.get(r)! }));
}
