import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Trajectory, Verdict } from '../schemas/trajectory.ts';
import { Curated, curate, FilterParams } from '../runtime/synth/filter.ts';

/*
 * Keeps verified trajectories within bounds, deduplicated, capped per task (`trajectories_per_task`: k distinct
 * solution paths first) and mixed by world and difficulty. v2: trajectories_per_task; distinct paths ranked first.
 * `emit: 'kept'` (default) outputs only kept rows, so downstream nodes read clean data; a second node with
 * `emit: 'rejected'` (same params) keeps every rejected row with its reasons, queryable with `agentforge sql`.
 */
export const filter = operator({
  name: 'filter',
  version: 2,
  params: FilterParams.extend({ emit: z.enum(['kept', 'rejected', 'all']).default('kept') }),
  inputs: { trajectories: table(Trajectory, 'Trajectory'), verdicts: table(Verdict, 'Verdict') },
  output: table(Curated, 'Curated'),
  async run({ params, inputs, out, ctx }) {
    const verdicts = new Map((await inputs.verdicts.all()).map((v) => [v.trajectory_id, v]));
    const rows = curate(await inputs.trajectories.all(), verdicts, params);
    const kept = rows.filter((r) => r.kept).length;
    ctx.metric('kept', kept);
    ctx.metric('rejected', rows.length - kept);
    const tasks = new Set(rows.filter((r) => r.kept).map((r) => r.task_id)).size;
    if (tasks) ctx.metric('kept_per_task', kept / tasks);
    await out.write(rows.filter((r) => params.emit === 'all' || r.kept === (params.emit === 'kept')));
  },
});
