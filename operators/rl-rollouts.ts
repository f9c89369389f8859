/*
 * rl-rollouts: the trajectory table of a train-rl run (every rollout of every step, with reward components,
 * finish reasons and error counts) as a table node, so `agentforge sql` can chart it, e.g.
 *   select step, avg(reward), avg(success::int) from rl_rollouts group by step order by step
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { model, operator, table } from '../runtime/engine/operator.ts';
import { Rollout } from '../schemas/rollout.ts';
import { TableReader } from '../storage/table.ts';

export const rlRollouts = operator({
  name: 'rl-rollouts',
  version: 1,
  description: 'the rollouts stored inside a train-rl output, as a table',
  params: z.object({}),
  inputs: { run: model() },
  output: table(Rollout, 'Rollout'),
  async run({ inputs, out }) {
    const file = join(inputs.run.dir, 'rollouts', 'data.parquet');
    if (!existsSync(file)) throw new Error(`rl-rollouts: ${file} is missing; is node ${inputs.run.node} a train-rl output?`);
    const reader = new TableReader<Rollout>(inputs.run.node, inputs.run.key, [file], Rollout);
    for await (const rows of reader.batches(512)) await out.write(rows);
  },
});
