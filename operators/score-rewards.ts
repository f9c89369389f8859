/*
 * score-rewards: (re)scores rollouts with the mixed reward (runtime/rewards), e.g. to compare weightings on the
 * same rollouts without generating again. Every component is stored per rollout:
 *   agentforge sql "select world, avg(reward_components.outcome), avg(reward) from <node> group by world"
 */
import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { Rollout } from '../schemas/rollout.ts';
import { RewardParams, scoreRollout } from '../runtime/rewards/mix.ts';
import { rolloutMetrics } from '../runtime/rl/metrics.ts';

export const scoreRewards = operator({
  name: 'score-rewards',
  version: 1,
  description: 'mixed reward (outcome, format, validity, efficiency; weights per world) for each rollout',
  params: z.object({ rewards: RewardParams.default(RewardParams.parse({})) }),
  inputs: { rollouts: table(Rollout, 'Rollout'), tasks: table(Task, 'Task') },
  output: table(Rollout, 'Rollout'),
  async run({ params, inputs, out, ctx }) {
    const tasks = new Map((await inputs.tasks.all()).map((t) => [t.id, t]));
    ctx.progress.total(await inputs.rollouts.count(), 'rollouts');
    const scored = [];
    for await (const batch of inputs.rollouts.batches(512)) {
      const rows = batch.map((r, i) => {
        const task = tasks.get(r.task_id);
        if (!task) throw new Error(`score-rewards: rollout ${r.id} (row ${i} of a batch) names task ${r.task_id}, which is not in node ${inputs.tasks.node}`);
        return scoreRollout(r, task, params.rewards);
      });
      scored.push(...rows);
      await out.write(rows);
      ctx.progress.tick(rows.length);
    }
    for (const [k, v] of Object.entries(rolloutMetrics(scored))) ctx.metric(k, v);
  },
});
