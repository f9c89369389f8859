import { describe, expect, it } from 'vitest';
import { openTasks, solvedTasks } from '../../runtime/rl/rl-loop.ts';
import type { StepRecord } from '../../runtime/rl/steps.ts';
import { statusTasks } from '../rollout/helpers.ts';
import { rolloutRow } from './rows.ts';

const group = (step: number, task: string, outcomes: Array<boolean | null>) =>
  outcomes.map((success, k) => rolloutRow('retail', task, success, { group_id: `s${step}:${task}`, sample: k, step }));

function record(step: number, train: ReturnType<typeof group>[], dropped: ReturnType<typeof group>[]): StepRecord {
  return { step, train: train.flat(), dropped: dropped.flat(), droppedSolved: 0, droppedFailed: 0, times: {} };
}

describe('skipping solved tasks in RL', () => {
  it('a task is solved once some step succeeded in every rollout of its group', () => {
    const steps = [
      record(1, [group(1, 'a', [true, false])], [group(1, 'b', [true, true]), group(1, 'c', [false, false])]),
      record(2, [group(2, 'c', [true, null])], [group(2, 'd', [true])]),  // unscored and single-rollout groups do not count
      record(3, [], [group(3, 'a', [true, true])]),
    ];
    expect([...solvedTasks(steps)].sort()).toEqual(['a', 'b']);
    expect([...solvedTasks(steps.slice(0, 2))]).toEqual(['b']);
  });

  it('steps draw from the unsolved tasks, or from all once every task is solved', () => {
    const tasks = statusTasks(4);
    const ids = tasks.map((t) => t.id);
    expect(openTasks(tasks, new Set([ids[1], ids[3]])).map((t) => t.id)).toEqual([ids[0], ids[2]]);
    expect(openTasks(tasks, new Set(ids))).toEqual(tasks);
  });
});

describe('train-rl screen param', () => {
  it('is checked with the DAG, before anything runs', async () => {
    const { dag, validateDag } = await import('../../runtime/engine/dag.ts');
    const { makeTasks } = await import('../../operators/make-tasks.ts');
    const { loadModel } = await import('../../operators/load-model.ts');
    const { trainRl } = await import('../../operators/train-rl.ts');
    const problems = (screen: number, group_size: number) => validateDag(dag('screen', (d) => {
      const tasks = d.node('tasks', makeTasks, { worlds: ['retail'], n: 2 });
      const model = d.node('base', loadModel, { source: '/nonexistent' });
      d.node('rl', trainRl, { screen, group_size }, { tasks, model });
    })).join('\n');
    expect(problems(8, 8)).toMatch(/rl.*screen.*2 <= screen < group_size \(8\)/s);
    expect(problems(1, 8)).toMatch(/screen/);
    expect(problems(4, 8)).toBe('');
    expect(problems(0, 8)).toBe('');
  });
});
