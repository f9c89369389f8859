/*
 * Does each stage make the model better on held-out tasks? Runs the klear recipe (dags/klear.ts) for 3 seeds in
 * one DAG (node ids prefixed s<seed>_), then reads each seed's eval table and prints, as JSON lines:
 *  - heldout_success_sft: mean SFT success over seeds (baseline: the untrained base), goal ≥ 0.50;
 *  - heldout_success_rl:  mean RL success (baseline: SFT), goal ≥ SFT + 0.10 absolute;
 *  - merged_over_expert_own_domain: the merged model ÷ each expert on the expert's domain, worst expert, every seed ≥ 0.95;
 *  - recipe_wall_s: node time of the slowest seed's recipe (cached nodes at their committed seconds), goal ≤ 1200 s;
 * each with the per-seed values and the spread (sample standard deviation).
 *   npx tsx bench/learning.ts [--store DIR] [--seeds 0,1,2] [--sft-steps N] [--rl-steps N] [--rl JSON] [--rl-pool sft|fresh]
 * The store is kept (default .agentforge/bench-learning), so an interrupted bench resumes where it stopped.
 */
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { dag } from '../runtime/engine/dag.ts';
import { runDag } from '../runtime/engine/scheduler.ts';
import { TableReader } from '../storage/table.ts';
import { EvalRow } from '../schemas/eval.ts';
import { Ledger } from '../storage/ledger.ts';
import { DEFAULT_CONFIG, klearRecipe } from '../dags/klear.ts';
import { emit } from './report.ts';
import { TrainRlParams } from '../operators/train-rl.ts';

const { values: a } = parseArgs({ options: {
  store: { type: 'string', default: resolve(import.meta.dirname, '..', '.agentforge', 'bench-learning') },
  seeds: { type: 'string', default: '0,1,2' },
  'sft-steps': { type: 'string', default: String(DEFAULT_CONFIG.sftSteps) },
  'rl-steps': { type: 'string', default: String(DEFAULT_CONFIG.rlSteps) },
  /** JSON of train-rl params replacing the recipe's, e.g. --rl '{"lr":3e-4,"group_size":16}' */
  rl: { type: 'string' },
  /** 'sft' (RL on SFT's own tasks) or 'fresh' (new train-split tasks from another seed) */
  'rl-pool': { type: 'string', default: DEFAULT_CONFIG.rlPool },
} });
const seeds = a.seeds.split(',').map(Number);
if (a['rl-pool'] !== 'sft' && a['rl-pool'] !== 'fresh') throw new Error(`bench/learning: --rl-pool must be 'sft' or 'fresh', got '${a['rl-pool']}'`);
const rlPool: 'sft' | 'fresh' = a['rl-pool'];
const cfg = (seed: number) => ({ ...DEFAULT_CONFIG, seed, prefix: `s${seed}_`, sftSteps: Number(a['sft-steps']), rlSteps: Number(a['rl-steps']),
  rlPool, rl: a.rl ? rlOverrides(a.rl) : undefined });

/** The given keys only (zod would fill in every default), checked against train-rl's schema. */
function rlOverrides(json: string): Record<string, unknown> {
  const raw = JSON.parse(json) as Record<string, unknown>;
  const parsed = TrainRlParams.partial().strict().parse(raw) as Record<string, unknown>;
  return Object.fromEntries(Object.keys(raw).map((k) => [k, parsed[k]]));
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const spread = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

const d = dag('learning', (b) => seeds.forEach((s) => klearRecipe(b, cfg(s))));
const started = Date.now();
const res = await runDag(d, { storeDir: a.store, concurrency: 1, reporter: {
  nodeStart: (id) => console.error(`[${((Date.now() - started) / 1000).toFixed(0)}s] start ${id}`),
  nodeEnd: (id, st, detail) => console.error(`[${((Date.now() - started) / 1000).toFixed(0)}s] ${st} ${id}${detail ? ` (${detail})` : ''}`),
  nodeProgress() {}, log: (id, m) => console.error(`  ${id}: ${m}`), close() {},
} });
const failed = [...res.nodes].filter(([, n]) => n.error);
if (failed.length) throw new Error(`bench/learning: nodes failed:\n${failed.map(([id, n]) => `${id}: ${n.error}`).join('\n')}`);

// Per seed: base and SFT over all held-out tasks; "rl" = each RL expert on its own domain (or the single RL run);
// "merged" = the merged model on each expert's domain, compared with that expert there.
const success: Record<string, number[]> = { base: [], sft: [], rl: [], merged: [], merged_vs_expert: [] };
const wall: number[] = [];
const c0 = cfg(seeds[0]);
// A node cached from an earlier run counts with the seconds it took when it committed, so the recipe time is the
// whole recipe's even when SFT comes from the store.
const ledger = await Ledger.openReadOnly(join(a.store, 'ledger.duckdb'));
const cachedKeys = [...res.nodes.values()].filter((n) => n.status === 'cached').map((n) => `'${n.key}'`);
const committedSeconds = new Map((cachedKeys.length ? await ledger.all<{ key: string; seconds: number }>(
  `SELECT key, arg_max(seconds, finished_at) AS seconds FROM executions WHERE status = 'committed' AND key IN (${cachedKeys.join(', ')}) GROUP BY key`) : [])
  .map((r) => [r.key, Number(r.seconds)]));
await ledger.close();
const secondsOf = (n: { status: string; key: string; seconds?: number }) => (n.status === 'cached' ? committedSeconds.get(n.key) ?? 0 : n.seconds ?? 0);
for (const s of seeds) {
  const e = res.nodes.get(`s${s}_eval`)!;
  const rows = await new TableReader<EvalRow>('eval', e.key, [join(a.store, 'artifacts', e.key, 'data.parquet')], EvalRow).all();
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
  wall.push([...res.nodes].filter(([id]) => id.startsWith(`s${s}_`)).reduce((t, [, n]) => t + secondsOf(n), 0));
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
  cached_nodes: cachedKeys.length });
