import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dag, validateDag } from '../../runtime/engine/dag.ts';
import { DEFAULT_CONFIG, KLEAR, klearRecipe, TOOLS_CONFIG, type KlearConfig } from '../../dags/klear.ts';
import { makeTasks, WORLD_NAMES } from '../../runtime/worlds/index.ts';

const build = (c: Partial<KlearConfig>) => dag('klear-test', (d) => klearRecipe(d, { ...DEFAULT_CONFIG, ...c }));
const tasksOf = (d: ReturnType<typeof build>, id: string) => (d.nodes.find((n) => n.id === id)!.inputs.tasks as { id: string }).id;

describe('dags/klear: where RL draws its tasks', () => {
  it('validates with either pool; by default the experts train on the SFT tasks', () => {
    const sft = build({});
    const fresh = build({ rlPool: 'fresh' });
    expect(validateDag(sft)).toEqual([]);
    expect(validateDag(fresh)).toEqual([]);
    expect(tasksOf(sft, 'rl_tools')).toBe('tasks');
    expect(sft.nodes.some((n) => n.id === 'rl_tasks')).toBe(false);
    expect(tasksOf(fresh, 'rl_tools')).toBe('rl_tasks');
    expect(tasksOf(fresh, 'rl_code')).toBe('rl_tasks');
    expect(tasksOf(fresh, 'eval_rollouts')).toBe('heldout_tasks');
  });

  it("the fresh pool is new train tasks: none held out, few of SFT's", () => {
    const fresh = build({ rlPool: 'fresh' });
    const p = fresh.nodes.find((n) => n.id === 'rl_tasks')!.params as { seed: number; n: number; max_difficulty: number };
    expect(p.seed).not.toBe(DEFAULT_CONFIG.seed);
    const opts = { n: 300, maxDifficulty: p.max_difficulty, distractorRate: 0 };
    for (const w of DEFAULT_CONFIG.worlds.filter((x) => WORLD_NAMES.includes(x))) {
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
      rl_tools: 7, rl_code: 7, merge_ties: 0, merge_task_arithmetic: 0, merge_dare: 0, pick_tasks: 7 + KLEAR.pickSeedOffset,
      merge_pick_rollouts: 7, eval_rollouts: 7,
    });
  });

  it('every stage runs with its KLEAR hyperparameters, and cfg.rl overrides them for every RL run', () => {
    const d = build({ rl: { lr: 3e-4 } });
    const params = (id: string) => d.nodes.find((n) => n.id === id)!.params as Record<string, unknown>;
    expect(params('sft')).toMatchObject({ ...KLEAR.sft, max_steps: DEFAULT_CONFIG.sftSteps });
    expect(params('base')).toMatchObject(KLEAR.model);
    const codeSteps = DEFAULT_CONFIG.experts.find((e) => e.id === 'code')!.steps!;
    expect(codeSteps).toBeLessThan(DEFAULT_CONFIG.rlSteps);
    expect(params('rl_code')).toMatchObject({ ...KLEAR.rl, lr: 3e-4, steps: codeSteps, worlds: ['code', 'repo'] });
    expect(params('rl_tools')).toMatchObject({ worlds: ['retail', 'bank'], steps: DEFAULT_CONFIG.rlSteps });
    expect(params('rl_code_onnx')).toMatchObject({ policy_version: codeSteps });
    // cfg.rl.steps wins over every expert's own steps
    const all = build({ rl: { steps: 2 } });
    for (const id of ['rl_code', 'rl_tools']) expect(all.nodes.find((n) => n.id === id)!.params).toMatchObject({ steps: 2 });
    expect(params('eval_rollouts')).toMatchObject({ ...KLEAR.eval, labels: ['base', 'sft', 'rl_tools', 'rl_code', 'merged'] });
    expect(params('merge_dare')).toMatchObject(KLEAR.merges.dare);
  });

  it("an expert's own rl params apply to that expert alone, over cfg.rl", () => {
    const experts = DEFAULT_CONFIG.experts.map((e) => (e.id === 'code' ? { ...e, rl: { lr: 5e-4, group_size: 16 } } : e));
    const d = build({ rl: { lr: 3e-4, temperature: 0.9 }, experts });
    expect(validateDag(d)).toEqual([]);
    const params = (id: string) => d.nodes.find((n) => n.id === id)!.params as Record<string, unknown>;
    expect(params('rl_code')).toMatchObject({ lr: 5e-4, group_size: 16, temperature: 0.9 });
    expect(params('rl_tools')).toMatchObject({ lr: 3e-4, group_size: KLEAR.rl.group_size, temperature: 0.9 });
    // without an override the node's params are what they were, so a cached expert is reused
    expect(build({}).nodes.find((n) => n.id === 'rl_code')!.params).toEqual(
      dag('k', (b) => klearRecipe(b, DEFAULT_CONFIG)).nodes.find((n) => n.id === 'rl_code')!.params);
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

describe('dags/klear: two domains, merged by the method the held-out data picks', () => {
  const inputIds = (d: ReturnType<typeof build>, id: string, input: string) => {
    const ref = d.nodes.find((n) => n.id === id)!.inputs[input] as { id: string } | { id: string }[];
    return Array.isArray(ref) ? ref.map((r) => r.id) : ref.id;
  };

  it('SFT trains on the mix of tool use and code; one RL expert per domain starts from it', () => {
    const d = build({});
    expect(validateDag(d)).toEqual([]);
    expect(d.nodes.find((n) => n.id === 'tasks')!.params).toMatchObject({ worlds: ['retail', 'bank', 'code', 'repo'] });
    expect(inputIds(d, 'rl_tools', 'model')).toBe('sft');
    expect(inputIds(d, 'rl_code', 'model')).toBe('sft');
  });

  it('every merge method is a candidate over the SFT parent, scored on a held-out sample of its own, and pick-merge keeps one', () => {
    const d = build({});
    for (const m of DEFAULT_CONFIG.mergeMethods) {
      expect(inputIds(d, `merge_${m}`, 'base')).toBe('sft');
      expect(inputIds(d, `merge_${m}`, 'experts')).toEqual(['rl_tools', 'rl_code']);
    }
    const pickTasks = d.nodes.find((n) => n.id === 'pick_tasks')!.params as { split: string; seed: number };
    expect(pickTasks).toMatchObject({ split: 'heldout', seed: DEFAULT_CONFIG.seed + KLEAR.pickSeedOffset });
    expect(inputIds(d, 'merge_pick_rollouts', 'tasks')).toBe('pick_tasks');
    expect(inputIds(d, 'merge_pick_rollouts', 'models')).toEqual(DEFAULT_CONFIG.mergeMethods.map((m) => `merge_${m}_onnx`));
    const merged = d.nodes.find((n) => n.id === 'merged')!;
    expect(merged.op.name).toBe('pick-merge');
    expect(merged.params).toEqual({ labels: DEFAULT_CONFIG.mergeMethods });
    expect(inputIds(d, 'merged', 'summary')).toBe('merge_pick');
    expect(inputIds(d, 'merged', 'candidates')).toEqual(DEFAULT_CONFIG.mergeMethods.map((m) => `merge_${m}`));
    expect(inputIds(d, 'merged_onnx', 'model')).toBe('merged');
  });

  it('one merge method is the merged model itself (no pick)', () => {
    const d = build({ mergeMethods: ['ties'] });
    expect(d.nodes.find((n) => n.id === 'merged')!.op.name).toBe('merge');
    expect(d.nodes.some((n) => n.id.startsWith('merge_pick') || n.id === 'pick_tasks')).toBe(false);
  });

  it('every model runs the public benchmarks on its ONNX export, one results table each; null turns them off', () => {
    const d = build({});
    for (const label of ['base', 'sft', 'rl_tools', 'rl_code', 'merged']) {
      for (const b of ['bfcl', 'tau_retail', 'tau_airline', 'humaneval', 'mbpp', 'quixbugs']) {
        expect(inputIds(d, `bench_${label}_${b}`, 'model')).toBe(`${label}_onnx`);
        expect(d.nodes.find((n) => n.id === `bench_${label}_${b}`)!.params).toMatchObject({ agent: 'model', limit: DEFAULT_CONFIG.benchmarks!.limit });
      }
      expect(d.nodes.find((n) => n.id === `bench_${label}_results`)!.params).toEqual({ agent: label });
    }
    expect(build({ benchmarks: null }).nodes.some((n) => n.id.startsWith('bench_'))).toBe(false);
  });

  it("TOOLS_CONFIG is the earlier tool-use recipe, node for node (its tables' ids: one expert per world, TIES, no benchmarks)", () => {
    const d = build(TOOLS_CONFIG);
    expect(validateDag(d)).toEqual([]);
    expect(d.nodes.map((n) => n.id)).toEqual(['tasks', 'heldout_tasks', 'synth', 'verify', 'filter', 'base', 'sft_shards', 'sft', 'base_onnx',
      'sft_onnx', 'rl_retail', 'rl_retail_rollouts', 'rl_retail_onnx', 'rl_bank', 'rl_bank_rollouts', 'rl_bank_onnx', 'merged', 'merged_onnx',
      'eval_rollouts', 'eval', 'eval_slices']); // eval_slices: a report on the same rollouts, added since
    expect(d.nodes.find((n) => n.id === 'merged')!.params).toMatchObject(KLEAR.merges.ties);
  });
});
