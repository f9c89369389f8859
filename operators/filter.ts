import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Trajectory, Verdict } from '../schemas/trajectory.ts';
import { Curated, curate, FilterParams } from '../runtime/synth/filter.ts';

/*
 * Keeps verified trajectories within bounds, deduplicated, capped per task and mixed by world and difficulty.
 * `emit: 'kept'` (default) outputs only kept rows, so downstream nodes read clean data; a second node with
 * `emit: 'rejected'` (same params) keeps every rejected row with its reasons, queryable with `agentforge sql`.
 */
export const filter = operator({
  name: 'filter',
  version: 1,
  params: FilterParams.extend({ emit: z.enum(['kept', 'rejected', 'all']).default('kept') }),
  inputs: { trajectories: table(Trajectory, 'Trajectory'), verdicts: table(Verdict, 'Verdict') },
  output: table(Curated, 'Curated'),
  async run({ params, inputs, out, ctx }) {
    const verdicts = new Map((await inputs.verdicts.all()).map((v) => [v.trajectory_id, v]));
    const rows = curate(await inputs.trajectories.all(), verdicts, params);
    const kept = rows.filter((r) => r.kept).length;
    ctx.metric('kept', kept);
    ctx.metric('rejected', rows.length - kept);
    await out.write(rows.filter((r) => params.emit === 'all' || r.kept === (params.emit === 'kept')));
  },
});
