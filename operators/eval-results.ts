import { z } from 'zod';
import { many, operator, optional, table } from '../runtime/engine/operator.ts';
import { BfclVerdictRow, CodeSampleRow, ResultRow, TauTrialRow, bfclResults, codeResults, erroredSummary, tauResults, type Result } from '../runtime/eval/results.ts';

/*
 * eval-results: one results table over every benchmark node wired in (BFCL accuracy and upstream's summaries,
 * τ-bench pass^k, code pass@k; the rules are in runtime/eval/results.ts).
 */
export const evalResults = operator({
  name: 'eval-results',
  version: 2,
  params: z.object({ agent: z.string().default('') }),
  inputs: { bfcl: optional(table(BfclVerdictRow)), tau: many(table(TauTrialRow)), code: many(table(CodeSampleRow)) },
  output: table(ResultRow, 'BenchmarkResult'),
  async run({ params, inputs, out, ctx }) {
    const rows: Result[] = [];
    if (inputs.bfcl) rows.push(...bfclResults(await inputs.bfcl.all()));
    for (const t of inputs.tau) rows.push(...tauResults(await t.all()));
    for (const c of inputs.code) rows.push(...codeResults(await c.all()));
    await out.write(rows.map((r) => ({ agent: params.agent, ...r })));
    const errored = erroredSummary(rows);
    if (errored) ctx.log(`eval-results: trials errored (scored as failures; the score is not the model's): ${errored}`);
    for (const r of rows) if (r.errored) ctx.metric(`results/${r.benchmark}/${r.subset}/errored`, r.errored / r.attempts);
  },
});
