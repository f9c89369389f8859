/* GRPO advantages on the TS side (runtime/rl/advantages.ts), against values worked out by hand. */
import { describe, expect, it } from 'vitest';
import { groupAdvantages, withAdvantages, type ScoredSample } from '../../runtime/rl/advantages.ts';

const p = { scale_rewards: true, adv_eps: 0 };

describe('GRPO advantages', () => {
  it('normalise inside a group with the unbiased std; a flat group gets exactly 0', () => {
    // 1,0,0,1: mean 0.5, std sqrt(4 * 0.25 / 3) = 0.57735 -> ±0.866025
    groupAdvantages([1, 0, 0, 1], p).forEach((a, i) => expect(a).toBeCloseTo([0.866025, -0.866025, -0.866025, 0.866025][i], 5));
    // 3,1,2,2: mean 2, std sqrt(2 / 3) = 0.816497 -> 1.224745, -1.224745, 0, 0
    groupAdvantages([3, 1, 2, 2], p).forEach((a, i) => expect(a).toBeCloseTo([1.224745, -1.224745, 0, 0][i], 5));
    expect(groupAdvantages([2, 2, 2, 2], { scale_rewards: true, adv_eps: 1e-6 })).toEqual([0, 0, 0, 0]);
    expect(groupAdvantages([5], p)).toEqual([0]);
  });

  it('Dr. GRPO (scale_rewards false) only centres', () => {
    expect(groupAdvantages([3, 1, 2, 2], { ...p, scale_rewards: false })).toEqual([1, -1, 0, 0]);
  });

  it('groups by group_id wherever the samples sit, and keeps their order and fields', () => {
    const row = (g: string, reward: number, id: number): ScoredSample =>
      ({ input_ids: [id, id], loss_mask: [0, 1], behaviour_logprobs: [0, -1], group_id: g, reward, policy_version: 3 });
    const out = withAdvantages([row('a', 1, 1), row('b', 4, 2), row('a', 0, 3), row('b', 4, 4)], { ...p, scale_rewards: false });
    expect(out.map((s) => [s.input_ids[0], s.advantage])).toEqual([[1, 0.5], [2, 0], [3, -0.5], [4, 0]]);
    expect(out[0]).toEqual({ input_ids: [1, 1], loss_mask: [0, 1], behaviour_logprobs: [0, -1], policy_version: 3, advantage: 0.5 });
  });
});
