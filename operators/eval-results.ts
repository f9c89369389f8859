import { z } from 'zod';
import { many, operator, optional, table } from '../runtime/engine/operator.ts';
import { meanOverTasks, passAtK, passHatK } from '../runtime/eval/passk.ts';
import { BfclVerdictRow } from './eval-bfcl.ts';
import { CodeSampleRow } from './eval-code.ts';
import { TauTrialRow } from './eval-tau.ts';

export const ResultRow = z.object({
  agent: z.string(), benchmark: z.string(), subset: z.string(), metric: z.string(), value: z.number(), n: z.number().int(),
});
type Result = z.infer<typeof ResultRow>;

/*
 * eval-results: one results table over every benchmark node wired in. BFCL: accuracy per category plus upstream's
 * non-live (unweighted mean of simple/multiple/parallel/parallel_multiple), live (entry-weighted mean of the live
 * AST categories) and irrelevance (mean of irrelevance and live_irrelevance) summaries, when all parts are present.
 * τ-bench: pass^k for k = 1 … trials per domain/split. Code: pass@k for k in 1, 10, 100 up to the sample count.
 */
export const evalResults = operator({
  name: 'eval-results',
  version: 1,
  params: z.object({ agent: z.string().default('') }),
  inputs: { bfcl: optional(table(BfclVerdictRow)), tau: many(table(TauTrialRow)), code: many(table(CodeSampleRow)) },
  output: table(ResultRow, 'BenchmarkResult'),
  async run({ params, inputs, out }) {
    const rows: Omit<Result, 'agent'>[] = [];
    if (inputs.bfcl) rows.push(...bfclRows(await inputs.bfcl.all()));
    for (const t of inputs.tau) rows.push(...tauRows(await t.all()));
    for (const c of inputs.code) rows.push(...codeRows(await c.all()));
    await out.write(rows.map((r) => ({ agent: params.agent, ...r })));
  },
});

function bfclRows(verdicts: z.infer<typeof BfclVerdictRow>[]): Omit<Result, 'agent'>[] {
  const by = new Map<string, { n: number; c: number }>();
  for (const v of verdicts) { const s = by.get(v.category) ?? { n: 0, c: 0 }; s.n++; if (v.valid) s.c++; by.set(v.category, s); }
  const acc = (c: string) => by.get(c)!.c / by.get(c)!.n;
  const rows = [...by].map(([c, s]) => ({ benchmark: 'bfcl', subset: c, metric: 'accuracy', value: s.c / s.n, n: s.n }));
  const have = (cs: string[]) => cs.every((c) => by.has(c));
  const nonLive = ['simple', 'multiple', 'parallel', 'parallel_multiple'];
  if (have(nonLive)) rows.push({ benchmark: 'bfcl', subset: 'non_live_ast', metric: 'accuracy', value: nonLive.reduce((s, c) => s + acc(c), 0) / 4, n: nonLive.reduce((s, c) => s + by.get(c)!.n, 0) });
  const live = ['live_simple', 'live_multiple', 'live_parallel', 'live_parallel_multiple'];
  if (have(live)) {
    const n = live.reduce((s, c) => s + by.get(c)!.n, 0);
    rows.push({ benchmark: 'bfcl', subset: 'live_ast', metric: 'accuracy', value: live.reduce((s, c) => s + by.get(c)!.c, 0) / n, n });
  }
  if (have(['irrelevance', 'live_irrelevance'])) rows.push({ benchmark: 'bfcl', subset: 'irrelevance_summary', metric: 'accuracy', value: (acc('irrelevance') + acc('live_irrelevance')) / 2, n: by.get('irrelevance')!.n + by.get('live_irrelevance')!.n });
  return rows;
}

/** Per-task (n, c) counts keyed by `key(row)`. */
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

function tauRows(trials: z.infer<typeof TauTrialRow>[]): Omit<Result, 'agent'>[] {
  const rows: Omit<Result, 'agent'>[] = [];
  for (const [subset, tasks] of counts(trials, (r) => `${r.domain}-${r.split}`, (r) => r.task_id, (r) => r.reward === 1)) {
    const per = [...tasks.values()], kmax = Math.min(...per.map((t) => t.n));
    for (let k = 1; k <= kmax; k++) rows.push({ benchmark: 'tau-bench', subset, metric: `pass^${k}`, value: meanOverTasks(per, k, passHatK), n: per.length });
  }
  return rows;
}

function codeRows(samples: z.infer<typeof CodeSampleRow>[]): Omit<Result, 'agent'>[] {
  const rows: Omit<Result, 'agent'>[] = [];
  for (const [bench, tasks] of counts(samples, (r) => r.benchmark, (r) => r.task_id, (r) => r.passed)) {
    const per = [...tasks.values()], nmin = Math.min(...per.map((t) => t.n));
    for (const k of [1, 10, 100].filter((k) => k <= nmin)) rows.push({ benchmark: bench, subset: 'all', metric: `pass@${k}`, value: meanOverTasks(per, k, passAtK), n: per.length });
  }
  return rows;
}
