import { dag } from '../runtime/engine/dag.ts';
import { makeTasks } from '../operators/make-tasks.ts';
import { synthesize } from '../operators/synthesize.ts';
import { verify } from '../operators/verify.ts';
import { filter } from '../operators/filter.ts';

/**
 * Offline synthesis for the program-running worlds: code (MBPP train/validation/prompt + generated functions) and
 * repo repair (generated repositories with a seeded bug) → tasks → synthesize (the scripted teacher's solution
 * paths, 20% labelled noise) → verify (hidden tests in the sandbox) → filter, keeping up to CODE_KEEP distinct
 * trajectories per task. Small by default: CODE_TASKS (12) tasks per world × CODE_PER_TASK (4) samples.
 */
export default dag('code', (d) => {
  const n = Number(process.env.CODE_TASKS ?? 12);
  const perTask = Number(process.env.CODE_PER_TASK ?? 4);
  const keep = Number(process.env.CODE_KEEP ?? perTask);
  const tasks = d.node('tasks', makeTasks, { worlds: ['code', 'repo'], n, seed: 11 });
  const raw = d.node('synth', synthesize, { per_task: perTask, seed: 0, noise: 0.2, concurrency: 4 }, { tasks });
  const verdicts = d.node('verify', verify, {}, { trajectories: raw, tasks });
  const curation = { trajectories_per_task: keep, dedup: 'task' as const };
  d.node('curated', filter, { ...curation, emit: 'kept' }, { trajectories: raw, verdicts });
  d.node('rejected', filter, { ...curation, emit: 'rejected' }, { trajectories: raw, verdicts });
});
