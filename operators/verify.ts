import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { Trajectory, Verdict } from '../schemas/trajectory.ts';
import { verdictWithoutTask, verifyMany } from '../runtime/worlds/verify.ts';

/** Replays each trajectory on a fresh world and checks it against its task's goal: one Verdict with reasons each. */
export const verify = operator({
  name: 'verify',
  version: 2, // 2: a repo fix needs no closing message after submit (submit ends the episode)
  params: z.object({}),
  inputs: { trajectories: table(Trajectory, 'Trajectory'), tasks: table(Task, 'Task') },
  output: table(Verdict, 'Verdict'),
  async run({ inputs, out, ctx }) {
    const tasks = new Map((await inputs.tasks.all()).map((t) => [t.id, t]));
    ctx.progress.total(await inputs.trajectories.count(), 'trajectories');
    let passed = 0;
    let n = 0;
    for await (const batch of inputs.trajectories.batches(1024)) {
      // the program-running worlds verify in the sandbox; a few at a time keeps a batch's runs bounded
      const known = batch.filter((t) => tasks.has(t.task_id));
      const checked = new Map((await verifyMany(known.map((t) => [t, tasks.get(t.task_id)!]), 4, ctx.signal)).map(({ score: _score, ...v }) => [v.trajectory_id, v]));
      const verdicts = batch.map((t) => checked.get(t.id) ?? verdictWithoutTask(t));
      passed += verdicts.filter((v) => v.pass).length;
      n += verdicts.length;
      await out.write(verdicts);
      ctx.progress.tick(batch.length);
    }
    ctx.metric('pass_rate', n ? passed / n : 0);
  },
});
