import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { DEFAULT_CONFIG, KLEAR, klearRecipe, type KlearConfig } from '../../dags/klear.ts';
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

describe('dags/klear: the recipe reads as the paper', () => {
  it('fits in 80 lines and gives no param a literal number (hyperparameters live in klear-config.ts)', () => {
    const src = readFileSync(new URL('../../dags/klear.ts', import.meta.url), 'utf8');
    expect(src.trimEnd().split('\n').length).toBeLessThanOrEqual(80);
    const body = src.slice(src.indexOf('export function klearRecipe'));
    expect(body.match(/\w+: -?[\d.]+/g) ?? []).toEqual([]);
  });

  it('the seed is given once: every node that draws takes the config seed, the fresh pool its offset, filter and merge 0', () => {
    const d = build({ seed: 7, rlPool: 'fresh' });
    const seeds = Object.fromEntries(d.nodes.filter((n) => 'seed' in (n.params as object)).map((n) => [n.id, (n.params as { seed: number }).seed]));
    expect(seeds).toEqual({
      tasks: 7, heldout_tasks: 7, rl_tasks: 7 + KLEAR.freshSeedOffset, synth: 7, filter: 0, base: 7, sft_shards: 7, sft: 7,
      rl_retail: 7, rl_bank: 7, merged: 0, eval_rollouts: 7,
    });
  });

  it('every stage runs with its KLEAR hyperparameters, and cfg.rl overrides them for every RL run', () => {
    const d = build({ rl: { lr: 3e-4 } });
    const params = (id: string) => d.nodes.find((n) => n.id === id)!.params as Record<string, unknown>;
    expect(params('sft')).toMatchObject({ ...KLEAR.sft, max_steps: DEFAULT_CONFIG.sftSteps });
    expect(params('base')).toMatchObject(KLEAR.model);
    expect(params('rl_bank')).toMatchObject({ ...KLEAR.rl, lr: 3e-4, steps: DEFAULT_CONFIG.rlSteps, worlds: ['bank'] });
    expect(params('eval_rollouts')).toMatchObject({ ...KLEAR.eval, labels: ['base', 'sft', 'rl_retail', 'rl_bank', 'merged'] });
  });
});

describe('dags/klear: the base model', () => {
  const base = (d: ReturnType<typeof build>) => d.nodes.find((n) => n.id === 'base')!;

  it("'init' (the default) trains a tokenizer on the curated corpus and initialises the tiny model", () => {
    const n = base(build({}));
    expect(n.op.name).toBe('init-model');
    expect((n.inputs.corpus as { id: string }).id).toBe('filter');
  });

  it.each([
    { kind: 'hub', repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', revision: 'main' },
    { kind: 'path', dir: '/models/smollm2' },
    { kind: 'gguf', file: '/models/smollm2.Q8_0.gguf' },
  ] as const)('$kind resolves an existing model (resolve-model, node id base) with the config chat template; SFT trains it', (spec) => {
    const d = build({ base: spec, chatTemplate: '{{ messages }}', sft: { lr: 1e-4 } });
    expect(validateDag(d)).toEqual([]);
    const n = base(d);
    expect(n.op.name).toBe('resolve-model');
    expect(n.params).toMatchObject({ base: spec, chat_template: '{{ messages }}' });
    expect(n.inputs).toEqual({});
    const sft = d.nodes.find((x) => x.id === 'sft')!;
    expect((sft.inputs.model as { id: string }).id).toBe('base');
    expect(sft.params).toMatchObject({ lr: 1e-4 });
  });

  it('a chat template with the init base is refused, naming the fix', () => {
    expect(() => build({ chatTemplate: '{{ messages }}' })).toThrow(/chatTemplate is for a resolved base model/);
  });
});
