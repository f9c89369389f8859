/*
 * rl-rollouts: the trajectory table of a train-rl run (every rollout of every step, trained or set aside by dynamic
 * sampling, with reward components, finish reasons and error counts) as a table node, so `agentforge sql` can
 * chart it, e.g.
 *   select step, avg(reward), avg(success::int) from rl_rollouts group by step order by step
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { model, operator, table } from '../runtime/engine/operator.ts';
import { Rollout } from '../schemas/rollout.ts';
import { RUN_STEPS_DIR, StepStore } from '../runtime/rl/steps.ts';

export const rlRollouts = operator({
  name: 'rl-rollouts',
  version: 2, // 2: read from the run's step files (train-rl v4 writes no table of its own)
  description: 'the rollouts stored inside a train-rl output, as a table',
  params: z.object({}),
  inputs: { run: model() },
  output: table(Rollout, 'Rollout'),
  async run({ inputs, out }) {
    const dir = join(inputs.run.dir, RUN_STEPS_DIR);
    if (!existsSync(dir)) throw new Error(`rl-rollouts: ${dir} is missing; is node ${inputs.run.node} a train-rl output (version 4 or later)?`);
    const store = new StepStore(dir);
    for (const s of store.steps()) {
      const rec = store.read(s);
      await out.write([...rec.train, ...rec.dropped]);
    }
  },
});
