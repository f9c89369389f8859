/*
 * The row of every benchmark table (BFCL verdicts, τ-bench trials, code samples) and the one results table computed
 * over them. The eval operators write these rows and eval-results reads them, so the schemas live here, below both:
 * an operator never imports another operator.
 */
import { z } from 'zod';
import { meanOverTasks, passAtK, passHatK } from './passk.ts';

/** One scored BFCL entry; query per-category accuracy with `select category, avg(valid::int) from {table} group by 1`. */
export const BfclVerdictRow = z.object({
  id: z.string(), category: z.string(), valid: z.boolean(), error_type: z.string(), error: z.string(), decoded: z.string(),
});

/** One sample of one code task; pass@k comes from the per-task (n, passed) counts. */
export const CodeSampleRow = z.object({
  task_id: z.string(), benchmark: z.string(), sample: z.number().int(), passed: z.boolean(), outcome: z.string(), reason: z.string(),
});

/** One τ-bench trial; pass^k per domain comes from the per-task success counts (see benchmark-results). */
export const TauTrialRow = z.object({
  task_id: z.string(), domain: z.string(), split: z.string(), task_index: z.number().int(), trial: z.number().int(),
  reward: z.number(), hash_match: z.boolean(), missing_outputs: z.array(z.string()), ended: z.string(), steps: z.number().int(), error: z.string(),
});

/**
 * `errored` of `attempts` (trials, entries or samples of the subset) failed to run at all (a request error, a fatal
 * episode error): they count as failures in `value`, so a score of 0 with errored = attempts means "never ran", not
 * "the model failed".
 */
export const ResultRow = z.object({
  agent: z.string(), benchmark: z.string(), subset: z.string(), metric: z.string(), value: z.number(), n: z.number().int(),
  errored: z.number().int().default(0), attempts: z.number().int().default(0),
});
export type Result = Omit<z.infer<typeof ResultRow>, 'agent'>;

/** Errored / total attempts per group, for the `errored` and `attempts` columns. */
function erroredBy<T>(rows: T[], group: (r: T) => string, errored: (r: T) => boolean): (g: string) => { errored: number; attempts: number } {
  const by = new Map<string, { errored: number; attempts: number }>();
  for (const r of rows) {
    const s = by.get(group(r)) ?? { errored: 0, attempts: 0 };
    s.attempts++;
    if (errored(r)) s.errored++;
    by.set(group(r), s);
  }
  return (g) => by.get(g) ?? { errored: 0, attempts: 0 };
}
const sum = (xs: { errored: number; attempts: number }[]) => xs.reduce((a, b) => ({ errored: a.errored + b.errored, attempts: a.attempts + b.attempts }), { errored: 0, attempts: 0 });

/** Human line for results where trials errored ('' when none did): the score is not the model's. */
export function erroredSummary(rows: Result[]): string {
  return rows.filter((r) => r.errored > 0).map((r) => `${r.benchmark}/${r.subset} ${r.metric}=${r.value.toFixed(3)} with ${r.errored}/${r.attempts} errored`).join('; ');
}

/**
 * BFCL: accuracy per category plus upstream's non-live (unweighted mean of simple/multiple/parallel/parallel_multiple),
 * live (entry-weighted mean of the live AST categories) and irrelevance (mean of irrelevance and live_irrelevance)
 * summaries, when all their parts are present.
 */
export function bfclResults(verdicts: z.infer<typeof BfclVerdictRow>[]): Result[] {
  const by = new Map<string, { n: number; c: number }>();
  for (const v of verdicts) { const s = by.get(v.category) ?? { n: 0, c: 0 }; s.n++; if (v.valid) s.c++; by.set(v.category, s); }
  const acc = (c: string) => by.get(c)!.c / by.get(c)!.n;
  const err = erroredBy(verdicts, (v) => v.category, (v) => v.error_type === 'request_error');
  const errs = (cs: string[]) => sum(cs.map(err));
  const rows: Result[] = [...by].map(([c, s]) => ({ benchmark: 'bfcl', subset: c, metric: 'accuracy', value: s.c / s.n, n: s.n, ...err(c) }));
  const have = (cs: string[]) => cs.every((c) => by.has(c));
  const nonLive = ['simple', 'multiple', 'parallel', 'parallel_multiple'];
  if (have(nonLive)) rows.push({ benchmark: 'bfcl', subset: 'non_live_ast', metric: 'accuracy', value: nonLive.reduce((s, c) => s + acc(c), 0) / 4, n: nonLive.reduce((s, c) => s + by.get(c)!.n, 0), ...errs(nonLive) });
  const live = ['live_simple', 'live_multiple', 'live_parallel', 'live_parallel_multiple'];
  if (have(live)) {
    const n = live.reduce((s, c) => s + by.get(c)!.n, 0);
    rows.push({ benchmark: 'bfcl', subset: 'live_ast', metric: 'accuracy', value: live.reduce((s, c) => s + by.get(c)!.c, 0) / n, n, ...errs(live) });
  }
  if (have(['irrelevance', 'live_irrelevance'])) rows.push({ benchmark: 'bfcl', subset: 'irrelevance_summary', metric: 'accuracy', value: (acc('irrelevance') + acc('live_irrelevance')) / 2, n: by.get('irrelevance')!.n + by.get('live_irrelevance')!.n, ...errs(['irrelevance', 'live_irrelevance']) });
  return rows;
}

/** τ-bench: pass^k for k = 1 … trials, per domain/split. */
export function tauResults(trials: z.infer<typeof TauTrialRow>[]): Result[] {
  const rows: Result[] = [];
  const err = erroredBy(trials, (r) => `${r.domain}-${r.split}`, (r) => r.error !== '' || r.ended === 'error');
  for (const [subset, tasks] of counts(trials, (r) => `${r.domain}-${r.split}`, (r) => r.task_id, (r) => r.reward === 1)) {
    const per = [...tasks.values()], kmax = Math.min(...per.map((t) => t.n));
    for (let k = 1; k <= kmax; k++) rows.push({ benchmark: 'tau-bench', subset, metric: `pass^${k}`, value: meanOverTasks(per, k, passHatK), n: per.length, ...err(subset) });
  }
  return rows;
}

/** Code: pass@k for k in 1, 10, 100 up to the sample count. */
export function codeResults(samples: z.infer<typeof CodeSampleRow>[]): Result[] {
  const rows: Result[] = [];
  const err = erroredBy(samples, (r) => r.benchmark, (r) => r.outcome === 'request_error');
  for (const [bench, tasks] of counts(samples, (r) => r.benchmark, (r) => r.task_id, (r) => r.passed)) {
    const per = [...tasks.values()], nmin = Math.min(...per.map((t) => t.n));
    for (const k of [1, 10, 100].filter((k) => k <= nmin)) rows.push({ benchmark: bench, subset: 'all', metric: `pass@${k}`, value: meanOverTasks(per, k, passAtK), n: per.length, ...err(bench) });
  }
  return rows;
}

/** Per-task (n, c) counts within each group. */
function counts<T>(rows: T[], group: (r: T) => string, task: (r: T) => string, ok: (r: T) => boolean): Map<string, Map<string, { n: number; c: number }>> {
  const out = new Map<string, Map<string, { n: number; c: number }>>();
  for (const r of rows) {
    const g = out.get(group(r)) ?? new Map();
    const s = g.get(task(r)) ?? { n: 0, c: 0 };
    s.n++; if (ok(r)) s.c++;
    g.set(task(r), s); out.set(group(r), g);
  }
  return out;
}
