import { describe, expect, it } from 'vitest';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { TRAJ_CONFIG, trajPerTask, type TrajConfig } from '../../dags/traj-per-task.ts';

const build = (c: Partial<TrajConfig> = {}) => dag('traj-test', (d) => trajPerTask(d, { ...TRAJ_CONFIG, ...c }));
const node = (d: ReturnType<typeof build>, id: string) => d.nodes.find((n) => n.id === id)!;
const input = (d: ReturnType<typeof build>, id: string, name: string) => (node(d, id).inputs[name] as { id: string }).id;

describe('dags/traj-per-task: Figure 3 (1 vs k trajectories per task)', () => {
  it('validates; the k arm has k times fewer tasks and keeps k distinct paths per task, the 1 arm one path each', () => {
    const d = build({ tasks: 400, k: 4 });
    expect(validateDag(d)).toEqual([]);
    expect(node(d, 'tasks_k1').params).toMatchObject({ n: 400, worlds: ['code', 'repo'], split: 'train' });
    expect(node(d, 'tasks_k4').params).toMatchObject({ n: 100, split: 'train' });
    expect(node(d, 'synth_k1').params).toMatchObject({ per_task: 1 });
    expect(node(d, 'synth_k4').params).toMatchObject({ per_task: 4 });
    expect(node(d, 'data_k1').params).toMatchObject({ trajectories_per_task: 1, dedup: 'task' });
    expect(node(d, 'data_k4').params).toMatchObject({ trajectories_per_task: 4, dedup: 'task' });
  });

  it('an equal token budget: both arms fine-tune one base model with the same steps, batch and sequence length', () => {
    const d = build();
    expect(input(d, 'sft_k1', 'model')).toBe('base');
    expect(input(d, 'sft_k4', 'model')).toBe('base');
    expect(node(d, 'sft_k1').params).toEqual(node(d, 'sft_k4').params);
    expect(node(d, 'sft_shards_k1').params).toEqual(node(d, 'sft_shards_k4').params);
    expect(input(d, 'sft_shards_k4', 'trajectories')).toBe('data_k4');
    expect(node(d, 'eval_rollouts').params).toMatchObject({ labels: ['k1', 'k4'] });
    expect(input(d, 'eval_rollouts', 'tasks')).toBe('heldout_tasks');
  });

  it('refuses k < 2, naming it', () => {
    expect(() => build({ k: 1 })).toThrow(/k must be ≥ 2/);
  });
});
