/*
 * Does each stage make the model better on held-out tasks? Runs the klear recipe (dags/klear.ts) for 3 seeds in
 * one DAG (node ids prefixed s<seed>_), then reads each seed's eval table and prints, as JSON lines:
 *  - heldout_success_sft: mean SFT success over seeds (baseline: the untrained base), goal ≥ 0.50;
 *  - heldout_success_rl:  mean RL success (baseline: SFT), goal ≥ SFT + 0.10 absolute;
 *  - merged_over_expert_own_domain: the merged model ÷ each expert on the expert's domain, worst expert, every seed ≥ 0.95;
 *  - recipe_wall_s: node time of the slowest seed's recipe (cached nodes at their committed seconds), goal ≤ 1200 s;
 * each with the per-seed values and the spread (sample standard deviation). On the held-out probe (templates no
 * train split contains and tasks longer than training's, template_seen = false; runtime/worlds/tasks.ts):
 *  - heldout_unseen_gain_rl: RL − SFT on the probe, paired per task (RL = the expert of the task's world), with a
 *    seeded bootstrap 95 % interval per seed; goal ≥ +0.05 averaged over seeds and every seed's interval above 0;
 *  - heldout_slice_<slice>: SFT and RL success on each slice (seen/unseen template, difficulty), informational.
 * With a code expert (--config DEFAULT_CONFIG, the two-domain recipe), per coding world (code, repo):
 *  - heldout_success_sft_<world>: goal ≥ 0.30; heldout_gain_rl_<world>: the code expert − SFT, paired, goal ≥ +0.05
 *    and every seed's interval above 0;
 *  - <humaneval|mbpp|quixbugs>_pass1_merged: the merged model's pass@1 vs the SFT model's (goal ≥; QuixBugs informational).
 * --coding-heldout N (default 100 with a code expert; 0 = the recipe's own held-out sample) evaluates SFT and every expert on
 * N more held-out tasks per coding world (nodes s<seed>_coding_tasks / s<seed>_coding_eval_rollouts): the coding lines
 * then come from that sample, since at the recipe's 25 a task moves success by 4 points and a +5-point gain cannot
 * clear its interval. heldout_control_<expert>_<world> is the same paired gain for an expert that never trained on the
 * world (informational): how far RL on other tasks alone moves it.
 *   npx tsx bench/learning.ts [--config NAME] [--store DIR] [--seeds 0,1,2] [--sft-steps N] [--rl-steps N] [--rl JSON] [--expert-rl JSON]
 *     [--rl-pool sft|fresh] [--coding-heldout N] [--report-only [--unprefixed]]
 * The store is kept (default .agentforge/bench-learning), so an interrupted bench resumes where it stopped;
 * --report-only runs nothing and reads each node's latest committed output in the store (code edited since the run
 * would otherwise make nodes recompute).
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { dag, type DagBuilder } from '../runtime/engine/dag.ts';
import { runDag } from '../runtime/engine/scheduler.ts';
import { TableReader } from '../storage/table.ts';
import { EvalRollout } from '../schemas/eval.ts';
import { CodeSampleRow } from '../runtime/eval/results.ts';
import { summarize } from '../runtime/eval/summarize.ts';
import { Task } from '../schemas/task.ts';
import { pairedBootstrap, type PairedDiff } from '../runtime/eval/bootstrap.ts';
import { Ledger } from '../storage/ledger.ts';
import * as klear from '../dags/klear.ts';
import { recipeNode } from '../dags/klear-config.ts';
import { emit } from './report.ts';
import { groupBy, pushTo } from '../runtime/engine/collections.ts';
import { TrainRlParams } from '../operators/train-rl.ts';
import { makeTasks } from '../operators/make-tasks.ts';
import { evaluate } from '../operators/evaluate.ts';

const { klearRecipe } = klear;
// The tool-use recipe (one expert per world) where dags/klear exports one, else its default: the probe is tool use.
const configs = klear as unknown as Record<string, klear.KlearConfig | undefined>;
const { values: a } = parseArgs({ options: {
  /** A KlearConfig exported by dags/klear.ts (default TOOLS_CONFIG where it exists, else DEFAULT_CONFIG). */
  config: { type: 'string', default: configs.TOOLS_CONFIG ? 'TOOLS_CONFIG' : 'DEFAULT_CONFIG' },
  store: { type: 'string', default: resolve(import.meta.dirname, '..', '.agentforge', 'bench-learning') },
  seeds: { type: 'string', default: '0,1,2' },
  'sft-steps': { type: 'string' },
  'rl-steps': { type: 'string' },
  /** JSON of train-rl params replacing the recipe's, e.g. --rl '{"lr":3e-4,"group_size":16}' */
  rl: { type: 'string' },
  /** JSON of expert id → train-rl params for that expert alone, e.g. --expert-rl '{"code":{"lr":5e-4}}' */
  'expert-rl': { type: 'string' },
  /** Held-out tasks per coding world for SFT and the experts beyond the recipe's evaluation (0 = none). */
  'coding-heldout': { type: 'string', default: '100' },
  /** 'sft' (RL on SFT's own tasks) or 'fresh' (new train-split tasks from another seed) */
  'rl-pool': { type: 'string' },
  /** Run nothing: read each node's latest committed output in the store. */
  'report-only': { type: 'boolean', default: false },
  /** With --report-only and one seed: the store of a plain `agentforge run dags/klear.ts` (node ids without s<seed>_). */
  unprefixed: { type: 'boolean', default: false },
} });
const BASE = configs[a.config];
if (!BASE?.experts) throw new Error(`bench/learning: --config ${a.config} is not a KlearConfig exported by dags/klear.ts (have ${Object.keys(klear).filter((k) => k.endsWith('_CONFIG')).join(', ')})`);
const seeds = a.seeds.split(',').map(Number);
if (a.unprefixed && (!a['report-only'] || seeds.length !== 1)) throw new Error('bench/learning: --unprefixed reads one recipe run: pass --report-only and a single --seeds value');
/** The recipe's node ids for a seed carry this prefix. */
const px = (seed: number) => (a.unprefixed ? '' : `s${seed}_`);
const rlPool = (a['rl-pool'] ?? BASE.rlPool) as klear.KlearConfig['rlPool'];
if (rlPool !== 'sft' && rlPool !== 'fresh') throw new Error(`bench/learning: --rl-pool must be 'sft' or 'fresh', got '${rlPool}'`);
console.error(`bench/learning: recipe dags/klear.ts with ${a.config}`);
const cfg = (seed: number): klear.KlearConfig => ({ ...BASE, seed, prefix: px(seed), sftSteps: Number(a['sft-steps'] ?? BASE.sftSteps), rlSteps: Number(a['rl-steps'] ?? BASE.rlSteps),
  rlPool, rl: a.rl ? rlOverrides(a.rl) : undefined, experts: expertOverrides(BASE.experts, a['expert-rl']) });

/** The given keys only (zod would fill in every default), checked against train-rl's schema. */
function rlOverrides(json: string | Record<string, unknown>): Record<string, unknown> {
  const raw = (typeof json === 'string' ? JSON.parse(json) : json) as Record<string, unknown>;
  const parsed = TrainRlParams.partial().strict().parse(raw) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(raw).map((k) => [k, parsed[k]]));
}

function expertOverrides(experts: klear.KlearConfig['experts'], json: string | undefined): klear.KlearConfig['experts'] {
  if (!json) return experts;
  const by = JSON.parse(json) as Record<string, Record<string, unknown>>;
  const unknown = Object.keys(by).filter((id) => !experts.some((e) => e.id === id));
  if (unknown.length) throw new Error(`bench/learning: --expert-rl names ${unknown.join(', ')}; ${a.config}'s experts are ${experts.map((e) => e.id).join(', ')}`);
  return experts.map((e) => (by[e.id] ? { ...e, rl: { ...e.rl, ...rlOverrides(by[e.id]) } } : e));
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const spread = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

const CODE_WORLDS = ['code', 'repo'];
const codingWorlds = (c: klear.KlearConfig) => CODE_WORLDS.filter((w) => c.experts.some((x) => x.worlds.includes(w)));
const codingN = Number(a['coding-heldout']);
if (!Number.isInteger(codingN) || codingN < 0) throw new Error(`bench/learning: --coding-heldout must be a whole number of tasks per world, got '${a['coding-heldout']}'`);
const expertLabels = (c: klear.KlearConfig) => (c.experts.length < 2 ? ['rl'] : c.experts.map((x) => `rl_${x.id}`));

/** SFT and every expert on codingN more held-out tasks of each coding world, their ONNX exports taken from the recipe. */
function codingEval(b: DagBuilder, c: klear.KlearConfig): void {
  const worlds = codingWorlds(c);
  if (!codingN || !worlds.length) return;
  const node = recipeNode(b, c);
  const tasks = node('coding_tasks', makeTasks, { ...klear.KLEAR.tasks, worlds, max_difficulty: c.maxDifficulty, n: codingN, split: 'heldout' });
  const labels = ['sft', ...expertLabels(c)];
  node('coding_eval_rollouts', evaluate, { ...klear.KLEAR.eval, ...c.eval, labels }, { tasks, models: labels.map((l) => b.ref(`${c.prefix}${l}_onnx`)) });
}

const d = dag('learning', (b) => seeds.forEach((s) => { const c = cfg(s); klearRecipe(b, c); codingEval(b, c); }));
const started = Date.now();
/** Per node id: the artifact key it produced and the seconds its execution took (cached nodes: when it committed). */
const nodes = new Map<string, { key: string; seconds: number }>();
let cachedNodes = 0;
const ledgerPath = join(a.store, 'ledger.duckdb');
if (!a['report-only']) {
  const res = await runDag(d, { storeDir: a.store, concurrency: 1, reporter: {
    nodeStart: (id) => console.error(`[${((Date.now() - started) / 1000).toFixed(0)}s] start ${id}`),
    nodeEnd: (id, st, detail) => console.error(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${st} ${id}${detail ? ` (${detail})` : ''}`),
    nodeProgress() {}, log: (id, m) => console.error(`  ${id}: ${m}`), close() {},
  } });
  const failed = [...res.nodes].filter(([, n]) => n.error);
  if (failed.length) throw new Error(`bench/learning: nodes failed:\n${failed.map(([id, n]) => `${id}: ${n.error}`).join('\n')}`);
  // A node cached from an earlier run counts with the seconds it took when it committed, so the recipe time is the
  // whole recipe's even when SFT comes from the store.
  const ledger = await Ledger.openReadOnly(ledgerPath);
  const cachedKeys = [...res.nodes.values()].filter((n) => n.status === 'cached').map((n) => `'${n.key}'`);
  cachedNodes = cachedKeys.length;
  const committedSeconds = new Map((cachedKeys.length ? await ledger.all<{ key: string; seconds: number }>(
    `SELECT key, arg_max(seconds, finished_at) AS seconds FROM executions WHERE status = 'committed' AND key IN (${cachedKeys.join(', ')}) GROUP BY key`) : [])
    .map((r) => [r.key, Number(r.seconds)]));
  await ledger.close();
  for (const [id, n] of res.nodes) nodes.set(id, { key: n.key, seconds: n.status === 'cached' ? committedSeconds.get(n.key) ?? 0 : n.seconds ?? 0 });
} else {
  const ledger = await Ledger.openReadOnly(ledgerPath);
  const ids = d.nodes.map((n) => `'${n.id}'`).join(', ');
  for (const r of await ledger.all<{ node_id: string; key: string; seconds: number }>(
    `SELECT a.node_id, arg_max(a.key, a.committed_at) AS key, arg_max(e.seconds, a.committed_at) AS seconds FROM artifacts a
     LEFT JOIN (SELECT key, arg_max(seconds, finished_at) AS seconds FROM executions WHERE status = 'committed' GROUP BY key) e ON e.key = a.key
     WHERE a.node_id IN (${ids}) GROUP BY a.node_id`)) nodes.set(r.node_id, { key: r.key, seconds: Number(r.seconds ?? 0) });
  await ledger.close();
  const missing = seeds.flatMap((s) => ['eval', 'eval_rollouts', 'heldout_tasks'].map((id) => `${px(s)}${id}`)).filter((id) => !nodes.has(id));
  if (missing.length) throw new Error(`bench/learning --report-only: no committed output in ${a.store} for ${missing.join(', ')}; run the bench without --report-only first`);
}
/** Per (model, task id): the mean success of its rollouts, or null where the model has none of that task. */
function successOf(rollouts: EvalRollout[]): (model: string, taskId: string) => number | null {
  const score = new Map<string, number[]>();
  for (const r of rollouts) pushTo(score, `${r.model}\t${r.task_id}`, r.success ? 1 : 0);
  return (model, taskId) => { const xs = score.get(`${model}\t${taskId}`); return xs ? mean(xs) : null; };
}
const tableOf = <T>(id: string, schema: ConstructorParameters<typeof TableReader>[3]) => {
  const n = nodes.get(id)!;
  return new TableReader<T>(id, n.key, [join(a.store, 'artifacts', n.key, 'data.parquet')], schema).all();
};

// Per seed: base and SFT over all held-out tasks; "rl" = each RL expert on its own domain (or the single RL run);
// "merged" = the merged model on each expert's domain, compared with that expert there.
const success: Record<string, number[]> = { base: [], sft: [], rl: [], merged: [], merged_vs_expert: [] };
const wall: number[] = [];
const c0 = cfg(seeds[0]);
/** The RL model that answers for a world: its domain's expert, or the single RL run. */
const rlLabel = (world: string) => (c0.experts.length < 2 ? 'rl' : `rl_${c0.experts.find((x) => x.worlds.includes(world))?.id ?? c0.experts[0].id}`);
/** Per seed, per slice: SFT vs RL paired over the slice's held-out tasks. */
const probe: Array<{ seed: number; slices: Record<string, PairedDiff & { merged: number | null }> }> = [];
for (const s of seeds) {
  // success per (model, world) from the rollouts (what eval-summary computes), so a store written before the eval
  // table gained columns still reports
  const rollouts = await tableOf<EvalRollout>(`${px(s)}eval_rollouts`, EvalRollout);
  const rows = [...groupBy(rollouts, (r) => r.model)].flatMap(([m, rs]) => summarize(m, rs, 0));
  const at = (model: string, worlds?: string[]) => mean(rows.filter((r) => r.model === model && (!worlds || worlds.includes(r.world))).map((r) => r.success));
  success.base.push(at('base'));
  success.sft.push(at('sft'));
  if (c0.experts.length < 2) { success.rl.push(at('rl')); } else {
    const own = c0.experts.map((x) => at(`rl_${x.id}`, x.worlds));
    const mergedOwn = c0.experts.map((x) => at('merged', x.worlds));
    success.rl.push(mean(own));
    success.merged.push(at('merged'));
    success.merged_vs_expert.push(Math.min(...mergedOwn.map((m, i) => (own[i] ? m / own[i] : m > 0 ? 1 : 1))));
  }
  wall.push([...nodes].filter(([id]) => id.startsWith(px(s))).reduce((t, [, n]) => t + n.seconds, 0));

  // the held-out tasks by slice, each task scored by SFT and by the RL model of its world (greedy: one sample each)
  const tasks = new Map((await tableOf<Task>(`${px(s)}heldout_tasks`, Task)).map((t) => [t.id, t]));
  const of = successOf(rollouts);
  const bySlice = new Map<string, string[]>();
  for (const t of [...tasks.values()].sort((x, y) => (x.id < y.id ? -1 : 1))) {
    if (of('sft', t.id) === null || of(rlLabel(t.world), t.id) === null) continue;
    const names = [`world:${t.world}`, `difficulty:${t.difficulty >= 3 ? '3+' : t.difficulty}`, ...(t.template_seen === undefined ? [] : [`template:${t.template_seen ? 'seen' : 'unseen'}`])];
    for (const k of ['all', ...names]) pushTo(bySlice, k, t.id);
  }
  probe.push({ seed: s, slices: Object.fromEntries([...bySlice].map(([k, ids]) => {
    const pd = pairedBootstrap(ids.map((id) => of('sft', id)!), ids.map((id) => of(rlLabel(tasks.get(id)!.world), id)!), { seed: s });
    const merged = ids.map((id) => of('merged', id));
    return [k, { ...pd, merged: merged.every((x) => x !== null) ? mean(merged as number[]) : null }];
  })) });
}
const line = (metric: string, value: number[], baseline: number[], goal: string, pass: boolean, unit = 'fraction') => emit({
  bench: 'learning', metric, value: mean(value), unit, baseline: mean(baseline), ratio: mean(baseline) ? mean(value) / mean(baseline) : null,
  goal, pass, per_seed: value, spread: spread(value), baseline_per_seed: baseline, seeds,
});
line('heldout_success_sft', success.sft, success.base, '>= 0.50', mean(success.sft) >= 0.5);
line('heldout_success_rl', success.rl, success.sft, '>= sft + 0.10 (experts on their own domain)', mean(success.rl) - mean(success.sft) >= 0.1);
if (success.merged.length) {
  line('heldout_success_merged', success.merged, success.sft, 'informational (all domains)', true);
  line('merged_over_expert_own_domain', success.merged_vs_expert, success.merged_vs_expert.map(() => 1), '>= 0.95 of each expert on its own domain (worst expert, every seed)', success.merged_vs_expert.every((r) => r >= 0.95), 'ratio');
}
emit({ bench: 'learning', metric: 'recipe_wall_s', value: Math.max(...wall), unit: 's', baseline: null, ratio: null, goal: '<= 1200 (2 CPU cores)',
  pass: wall.every((w) => w <= 1200), per_seed: wall, note: 'node seconds summed; cached nodes count with the seconds of their committed execution',
  cached_nodes: cachedNodes, report_only: a['report-only'] });

// The probe: RL's gain over SFT on templates and lengths training never showed, paired per task, per seed.
const r3 = (x: number) => Math.round(x * 1000) / 1000;
const perSeed = (slice: string) => probe.filter((p) => p.slices[slice]).map(({ seed, slices }) => {
  const x = slices[slice];
  return { seed, tasks: x.n, sft: r3(x.mean_a), rl: r3(x.mean_b), diff: r3(x.diff), lo: r3(x.lo), hi: r3(x.hi), merged: x.merged === null ? null : r3(x.merged) };
});
/** RL − SFT on a slice, paired per task: goal ≥ +0.05 over seeds and every seed's interval above 0 (3 seeds or more). */
const gainLine = (metric: string, xs: Array<{ diff: number; lo: number }>, what: string) => {
  if (!xs.length) return;
  const gain = mean(xs.map((x) => x.diff));
  emit({ bench: 'learning', metric, value: gain, unit: 'fraction', baseline: 0, ratio: null,
    goal: `>= +0.05 (${what}, mean over seeds) and every seed's 95 % CI above 0`,
    pass: seeds.length >= 3 ? gain >= 0.05 && xs.every((x) => x.lo > 0) : null, per_seed: xs, spread: spread(xs.map((x) => x.diff)), seeds,
    note: 'paired per held-out task (RL = the expert of the task\'s world), percentile bootstrap over tasks, 10,000 resamples seeded by the recipe seed; pass is null with fewer than 3 seeds' });
};
gainLine('heldout_unseen_gain_rl', perSeed('template:unseen'), 'RL − SFT on unseen templates and longer tasks');
for (const slice of ['all', 'template:seen', 'template:unseen', 'difficulty:1', 'difficulty:2', 'difficulty:3+']) {
  const xs = perSeed(slice);
  if (!xs.length) continue;
  emit({ bench: 'learning', metric: `heldout_slice_${slice.replace(':', '_')}`, value: mean(xs.map((x) => x.rl)), unit: 'fraction',
    baseline: mean(xs.map((x) => x.sft)), ratio: null, goal: 'informational (value = RL, baseline = SFT)', pass: null, per_seed: xs, seeds });
}

// The coding half (issue 22's goals), when the recipe has a code expert: per coding world, SFT's held-out success and
// the code expert's paired gain over SFT (from the larger coding sample when it ran), and the other experts' gain
// there as a control; the public code benchmarks' pass@1, merged vs SFT.
const codeWorlds = codingWorlds(c0);
/** Per seed and coding world, from s<seed>_coding_eval_rollouts: each expert − SFT, paired over that world's tasks. */
const coding = new Map<string, Array<{ seed: number; label: string; tasks: number; sft: number; rl: number; diff: number; lo: number; hi: number }>>();
for (const s of seeds) {
  const id = `${px(s)}coding_eval_rollouts`;
  if (!nodes.has(id)) continue;
  const rollouts = await tableOf<EvalRollout>(id, EvalRollout);
  const of = successOf(rollouts);
  for (const w of codeWorlds) {
    const ids = [...new Set(rollouts.filter((r) => r.world === w && r.model === 'sft').map((r) => r.task_id))].sort();
    // a task an expert has no rollout of is NaN, which pairedBootstrap refuses naming the task
    const scores = (m: string) => ids.map((t) => of(m, t) ?? Number.NaN);
    for (const label of expertLabels(c0)) {
      const pd = pairedBootstrap(scores('sft'), scores(label), { seed: s });
      pushTo(coding, `${label}\t${w}`, { seed: s, label, tasks: pd.n, sft: r3(pd.mean_a), rl: r3(pd.mean_b), diff: r3(pd.diff), lo: r3(pd.lo), hi: r3(pd.hi) });
    }
  }
}
for (const w of codeWorlds) {
  const own = coding.get(`${rlLabel(w)}\t${w}`);
  const larger = own?.length === seeds.length ? own : null;
  const xs = larger ?? perSeed(`world:${w}`);
  if (!xs.length) continue;
  const sample = larger ? `coding_eval_rollouts (${codingN} tasks)` : 'the recipe\'s eval';
  const sft = mean(xs.map((x) => x.sft));
  emit({ bench: 'learning', metric: `heldout_success_sft_${w}`, value: sft, unit: 'fraction', baseline: null, ratio: null,
    goal: '>= 0.30 (mean over seeds)', pass: sft >= 0.3, per_seed: xs, seeds, sample });
  gainLine(`heldout_gain_rl_${w}`, xs, `code expert − SFT, on ${sample}`);
  for (const [key, ys] of coding) {
    const [label, world] = key.split('\t');
    if (world !== w || label === rlLabel(w) || ys.length !== seeds.length) continue;
    emit({ bench: 'learning', metric: `heldout_control_${label}_${w}`, value: r3(mean(ys.map((y) => y.diff))), unit: 'fraction', baseline: 0, ratio: null,
      goal: `informational: ${label} never trained on ${w}; its gain is what RL elsewhere alone moves`, pass: null, per_seed: ys, seeds, sample });
  }
}
if (codeWorlds.length && c0.benchmarks) {
  for (const b of ['humaneval', 'mbpp', 'quixbugs']) {
    const pass1 = async (label: string) => {
      const out: number[] = [];
      for (const s of seeds) {
        const id = `${px(s)}bench_${label}_${b}`;
        if (!nodes.has(id)) return null;
        const rows = await tableOf<{ passed: boolean }>(id, CodeSampleRow);
        out.push(rows.length ? rows.filter((r) => r.passed).length / rows.length : 0);
      }
      return out;
    };
    const [merged, sft] = [await pass1('merged'), await pass1('sft')];
    if (!merged || !sft) continue;
    emit({ bench: 'learning', metric: `${b}_pass1_merged`, value: mean(merged), unit: 'fraction', baseline: mean(sft), ratio: mean(sft) ? mean(merged) / mean(sft) : null,
      goal: b === 'quixbugs' ? 'informational' : '>= the SFT model\'s pass@1 (mean over seeds)', pass: b === 'quixbugs' ? null : mean(merged) >= mean(sft),
      per_seed: merged, baseline_per_seed: sft, seeds, per_category_limit: c0.benchmarks.limit });
  }
}
