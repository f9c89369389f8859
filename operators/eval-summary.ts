/*
 * eval-summary: success rate and pass^k per (model, world) from evaluate's rollouts, one eval table; models keep
 * the order they were evaluated in, so a DAG compares base, SFT, RL, experts and merges in one table:
 *   agentforge sql "select model, world, success, pass_hat_k from eval"
 * v2: success by difficulty and each model's paired gain over the baseline model with a bootstrap 95 % interval,
 * on all tasks and per difficulty:
 *   agentforge sql "select model, world, g.slice, g.diff, g.lo, g.hi from eval, unnest(gains) as u(g)"
 * Slices by seen/unseen template need the task table: eval-slices (operators/eval-slices.ts).
 */
import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { EvalRollout, EvalRow } from '../schemas/eval.ts';
import { pairedGains, summarize } from '../runtime/eval/summarize.ts';
import { groupBy } from '../runtime/engine/collections.ts';

export const evalSummary = operator({
  name: 'eval-summary',
  version: 2,
  description: 'success rate and pass^k per (model, world) of evaluation rollouts, by slice, with paired gains over a baseline model',
  params: z.object({
    /** The model every other one is compared with, task by task (skipped when no model has this label). */
    baseline: z.string().min(1).default('sft'),
    level: z.number().gt(0).lt(1).default(0.95),
    resamples: z.number().int().min(100).default(10_000),
  }),
  inputs: { rollouts: table(EvalRollout, 'EvalRollout') },
  output: table(EvalRow, 'EvalRow'),
  async run({ params: p, inputs, out, ctx }) {
    const byModel = groupBy(await inputs.rollouts.all(), (r) => r.model);
    if (!byModel.size) throw new Error(`eval-summary: input rollouts (node ${inputs.rollouts.node}) are empty`);
    const base = byModel.get(p.baseline);
    if (!base) ctx.log(`eval-summary: no model labelled '${p.baseline}'; gains are not computed`);
    for (const [model, rows] of byModel) {
      const temps = new Set(rows.map((r) => r.temperature));
      if (temps.size > 1) throw new Error(`eval-summary: model ${model} was evaluated at several temperatures (${[...temps].join(', ')}); evaluate them as separate labels`);
      const gains = base && model !== p.baseline ? pairedGains(rows, base, p.baseline, undefined, { level: p.level, resamples: p.resamples }) : undefined;
      const summary = summarize(model, rows, rows[0].temperature).map((s) => (gains?.has(s.world) ? { ...s, gains: gains.get(s.world) } : s));
      await out.write(summary);
      for (const s of summary) {
        ctx.metric(`eval/${s.model}/${s.world}/success`, s.success);
        for (const sl of s.slices ?? []) ctx.metric(`eval/${s.model}/${s.world}/${sl.slice}/success`, sl.success);
        for (const g of s.gains ?? []) for (const [k, v] of [['diff', g.diff], ['lo', g.lo], ['hi', g.hi]] as const) ctx.metric(`eval/${s.model}/${s.world}/${g.slice}/gain_${k}`, v);
      }
      // episodes that errored count as failures: say so beside the score, so 0 % from a broken setup is not silent
      const errored = (s: (typeof summary)[number]) => (s.finish_reasons.error ?? 0) + (s.finish_reasons.context_overflow ?? 0);
      const episodes = (s: (typeof summary)[number]) => Object.values(s.finish_reasons).reduce((a, b) => a + b, 0);
      for (const s of summary) if (errored(s)) ctx.metric(`eval/${s.model}/${s.world}/errored`, errored(s) / episodes(s));
      ctx.log(`${model}: ${summary.map((s) => `${s.world} ${(s.success * 100).toFixed(1)}%${errored(s) ? ` (${errored(s)}/${episodes(s)} episodes errored or overflowed the context)` : ''}`).join(', ')}`);
      const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;
      for (const s of summary) {
        const all = s.gains?.find((g) => g.slice === 'all');
        if (all) ctx.log(`  ${s.world}: ${model} − ${p.baseline} ${pct(all.diff)} points [${pct(all.lo)}, ${pct(all.hi)}] over ${all.tasks} tasks`);
      }
    }
  },
});
