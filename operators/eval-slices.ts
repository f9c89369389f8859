/*
 * eval-slices: held-out success by slice — difficulty (gold tool calls) and whether training contains the task's
 * template (the held-out probe's unseen templates and longer tasks, see runtime/worlds/tasks.ts) — per model and
 * world (and "*", all worlds), each with the paired gain over the baseline model and its bootstrap interval:
 *   agentforge sql "select model, world, success, gain, gain_lo, gain_hi from eval_slices where slice = 'template:unseen'"
 */
import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { EvalRollout, EvalSliceRow } from '../schemas/eval.ts';
import { Task } from '../schemas/task.ts';
import { sliceTable } from '../runtime/eval/summarize.ts';
import { groupBy } from '../runtime/engine/collections.ts';

export const evalSlices = operator({
  name: 'eval-slices',
  version: 1,
  description: 'held-out success by difficulty and seen/unseen template, with paired bootstrap gains over a baseline model',
  params: z.object({
    /** The model every other one is compared with, task by task (no gains when no model has this label). */
    baseline: z.string().min(1).default('sft'),
    level: z.number().gt(0).lt(1).default(0.95),
    resamples: z.number().int().min(100).default(10_000),
  }),
  inputs: { rollouts: table(EvalRollout, 'EvalRollout'), tasks: table(Task, 'Task') },
  output: table(EvalSliceRow, 'EvalSliceRow'),
  async run({ params: p, inputs, out, ctx }) {
    const rollouts = await inputs.rollouts.all();
    if (!rollouts.length) throw new Error(`eval-slices: input rollouts (node ${inputs.rollouts.node}) are empty`);
    const tasks = new Map((await inputs.tasks.all()).map((t) => [t.id, t]));
    const missing = rollouts.find((r) => !tasks.has(r.task_id));
    if (missing) throw new Error(`eval-slices: rollout of task ${missing.task_id} (model ${missing.model}) has no row in tasks (node ${inputs.tasks.node}); wire in the tasks the rollouts were evaluated on`);
    const byModel = groupBy(rollouts, (r) => r.model);
    if (!byModel.has(p.baseline)) ctx.log(`eval-slices: no model labelled '${p.baseline}'; gains are null`);
    const rows = sliceTable(byModel, p.baseline, (id) => tasks.get(id), { level: p.level, resamples: p.resamples });
    await out.write(rows);
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;
    for (const r of rows.filter((x) => x.world === '*' && x.slice.startsWith('template:'))) {
      ctx.metric(`eval/${r.model}/${r.slice}/success`, r.success);
      const gain = r.gain === null ? '' : `, ${pct(r.gain)} points over ${r.baseline} [${pct(r.gain_lo!)}, ${pct(r.gain_hi!)}]`;
      ctx.log(`${r.model} ${r.slice}: ${(r.success * 100).toFixed(1)}% of ${r.tasks} tasks${gain}`);
    }
  },
});
