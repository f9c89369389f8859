import type { Rollout } from '../../schemas/rollout.ts';

/** A scored rollout row with everything but world, task and success defaulted (for pure table logic). */
export function rolloutRow(world: string, task: string, success: boolean | null, o: Partial<Rollout> = {}): Rollout {
  return {
    id: `${task}-${Math.random()}`, task_id: task, world, messages: [], tools: [], source: 'rollout', teacher: 'policy', seed: 0,
    policy_version: 0, reward: success ? 1 : 0, reward_components: {}, turns: 2, finish_reason: 'answered', errors: [],
    difficulty: 1, split: 'heldout', group_id: task, sample: 0, step: -1, input_ids: [], loss_mask: [], behaviour_logprobs: [],
    prompt_tokens: 10, completion_tokens: 20, timings: [], error_counts: {}, success, trainable: true, ...o,
  };
}
