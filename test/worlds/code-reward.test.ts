import { describe, expect, it } from 'vitest';
import { Rollout } from '../../schemas/rollout.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import { runEpisode } from '../../runtime/agent/loop.ts';
import { scriptedTeacher, scriptedUser } from '../../runtime/agent/scripted.ts';
import { execPlan } from '../../runtime/agent/code-teacher.ts';
import { generateTasks, openWorld } from '../../runtime/worlds/index.ts';
import { withExecOutcome } from '../../runtime/rewards/components.ts';
import { RewardParams, scoreRollout } from '../../runtime/rewards/mix.ts';

const asRollout = (t: Trajectory) => Rollout.parse({ ...t, group_id: 'g', sample: 0, input_ids: [], loss_mask: [], behaviour_logprobs: [],
  prompt_tokens: 0, completion_tokens: 40, timings: [], error_counts: {} });

describe('rewards of the program-running worlds', () => {
  it('outcome = share of hidden tests passed (proven in the sandbox), plus the usual format terms; success only at 1', async () => {
    const [task] = (await generateTasks('code', { seed: 21, n: 12 })).filter((t) => t.tags.includes('kind:generated'));
    const run = (seed: number, rate: number) => runEpisode({ task, world: openWorld('code'), teacher: scriptedTeacher(task, seed, { rate }), user: scriptedUser(task), seed, trajectoryId: `r${seed}` });
    const wrongSeed = Array.from({ length: 60 }, (_, i) => i).find((s) => execPlan(task, s, 1).noise === 'no_test_wrong')!;
    const p = RewardParams.parse({});
    const good = scoreRollout(await withExecOutcome(asRollout(await run(0, 0)), task), task, p);
    const bad = scoreRollout(await withExecOutcome(asRollout(await run(wrongSeed, 1)), task), task, p);
    expect(good.reward_components.outcome).toBe(1);
    expect(good.success).toBe(true);
    expect(good.reward).toBeGreaterThan(1);
    expect(bad.success).toBe(false);
    expect(bad.reward_components.outcome).toBeLessThan(1);
    expect(bad.reward_components.outcome * 5).toBe(Math.round(bad.reward_components.outcome * 5)); // k of 5 hidden tests
    expect(bad.reward_components.format).toBe(1);
    // without the sandbox score a code rollout earns no outcome (never a pass by default)
    expect(scoreRollout(asRollout(await run(0, 0)), task, p).reward_components.outcome).toBe(0);
  }, 30_000);
});
