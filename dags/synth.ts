import { dag } from '../runtime/engine/dag.ts';
import { makeTasks } from '../operators/make-tasks.ts';
import { synthesize } from '../operators/synthesize.ts';
import { verify } from '../operators/verify.ts';
import { filter } from '../operators/filter.ts';

/**
 * Offline synthesis: worlds → tasks → synthesize (scripted teacher with 30% labelled noise) → verify → filter.
 * 3 worlds × 170 tasks × 4 samples = 2,040 trajectories. SYNTH_TASKS / SYNTH_PER_TASK shrink it for tests.
 */
export default dag('synth', (d) => {
  const n = Number(process.env.SYNTH_TASKS ?? 170);
  const perTask = Number(process.env.SYNTH_PER_TASK ?? 4);
  const tasks = d.node('tasks', makeTasks, { n, seed: 7 });
  const raw = d.node('synth', synthesize, { per_task: perTask, seed: 1, noise: 0.3, concurrency: 8 }, { tasks });
  const verdicts = d.node('verify', verify, {}, { trajectories: raw, tasks });
  const curation = { max_per_task: 2, dedup: 'task' as const };
  d.node('curated', filter, { ...curation, emit: 'kept' }, { trajectories: raw, verdicts });
  d.node('rejected', filter, { ...curation, emit: 'rejected' }, { trajectories: raw, verdicts });
});
