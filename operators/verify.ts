import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { Trajectory, Verdict } from '../schemas/trajectory.ts';
import { verdictWithoutTask, verifyTrajectory } from '../runtime/worlds/verify.ts';

/** Replays each trajectory on a fresh world and checks it against its task's goal: one Verdict with reasons each. */
export const verify = operator({
  name: 'verify',
  version: 1,
  params: z.object({}),
  inputs: { trajectories: table(Trajectory, 'Trajectory'), tasks: table(Task, 'Task') },
  output: table(Verdict, 'Verdict'),
  async run({ inputs, out, ctx }) {
    const tasks = new Map((await inputs.tasks.all()).map((t) => [t.id, t]));
    ctx.progress.total(await inputs.trajectories.count(), 'trajectories');
    let passed = 0;
    let n = 0;
    for await (const batch of inputs.trajectories.batches(1024)) {
      const verdicts = batch.map((t) => {
        const task = tasks.get(t.task_id);
        return task ? verifyTrajectory(t, task) : verdictWithoutTask(t);
      });
      passed += verdicts.filter((v) => v.pass).length;
      n += verdicts.length;
      await out.write(verdicts);
      ctx.progress.tick(batch.length);
    }
    ctx.metric('pass_rate', n ? passed / n : 0);
  },
});
