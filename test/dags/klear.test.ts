import { describe, expect, it } from 'vitest';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { DEFAULT_CONFIG, klearRecipe, type KlearConfig } from '../../dags/klear.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';

const build = (c: Partial<KlearConfig>) => dag('klear-test', (d) => klearRecipe(d, { ...DEFAULT_CONFIG, ...c }));
const tasksOf = (d: ReturnType<typeof build>, id: string) => (d.nodes.find((n) => n.id === id)!.inputs.tasks as { id: string }).id;

describe('dags/klear: where RL draws its tasks', () => {
  it('validates with either pool; by default the experts train on the SFT tasks', () => {
    const sft = build({});
    const fresh = build({ rlPool: 'fresh' });
    expect(validateDag(sft)).toEqual([]);
    expect(validateDag(fresh)).toEqual([]);
    expect(tasksOf(sft, 'rl_retail')).toBe('tasks');
    expect(sft.nodes.some((n) => n.id === 'rl_tasks')).toBe(false);
    expect(tasksOf(fresh, 'rl_retail')).toBe('rl_tasks');
    expect(tasksOf(fresh, 'rl_bank')).toBe('rl_tasks');
    expect(tasksOf(fresh, 'eval_rollouts')).toBe('heldout_tasks');
  });

  it("the fresh pool is new train tasks: none held out, few of SFT's", () => {
    const fresh = build({ rlPool: 'fresh' });
    const p = fresh.nodes.find((n) => n.id === 'rl_tasks')!.params as { seed: number; n: number; max_difficulty: number };
    expect(p.seed).not.toBe(DEFAULT_CONFIG.seed);
    const opts = { n: 300, maxDifficulty: p.max_difficulty, distractorRate: 0 };
    for (const w of DEFAULT_CONFIG.worlds) {
      const pool = makeTasks(w, { ...opts, seed: p.seed, split: 'train' }).map((t) => t.instruction);
      const sftTasks = new Set(makeTasks(w, { ...opts, seed: DEFAULT_CONFIG.seed, split: 'train' }).map((t) => t.instruction));
      const heldout = new Set(makeTasks(w, { ...opts, seed: DEFAULT_CONFIG.seed, split: 'heldout' }).map((t) => t.instruction));
      expect(pool.filter((s) => heldout.has(s))).toEqual([]);
      expect(pool.filter((s) => sftTasks.has(s)).length).toBeLessThan(pool.length / 2);
    }
  });
});
