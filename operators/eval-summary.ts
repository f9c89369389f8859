/*
 * eval-summary: success rate and pass^k per (model, world) from evaluate's rollouts, one eval table; models keep
 * the order they were evaluated in, so a DAG compares base, SFT, RL, experts and merges in one table:
 *   agentforge sql "select model, world, success, pass_hat_k from eval"
 */
import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { EvalRollout, EvalRow } from '../schemas/eval.ts';
import { summarize } from '../runtime/eval/summarize.ts';
import { groupBy } from '../runtime/engine/collections.ts';

export const evalSummary = operator({
  name: 'eval-summary',
  version: 1,
  description: 'success rate and pass^k per (model, world) of evaluation rollouts',
  params: z.object({}),
  inputs: { rollouts: table(EvalRollout, 'EvalRollout') },
  output: table(EvalRow, 'EvalRow'),
  async run({ inputs, out, ctx }) {
    const byModel = groupBy(await inputs.rollouts.all(), (r) => r.model);
    if (!byModel.size) throw new Error(`eval-summary: input rollouts (node ${inputs.rollouts.node}) are empty`);
    for (const [model, rows] of byModel) {
      const temps = new Set(rows.map((r) => r.temperature));
      if (temps.size > 1) throw new Error(`eval-summary: model ${model} was evaluated at several temperatures (${[...temps].join(', ')}); evaluate them as separate labels`);
      const summary = summarize(model, rows, rows[0].temperature);
      await out.write(summary);
      for (const s of summary) ctx.metric(`eval/${s.model}/${s.world}/success`, s.success);
      // episodes that errored count as failures: say so beside the score, so 0 % from a broken setup is not silent
      const errored = (s: (typeof summary)[number]) => (s.finish_reasons.error ?? 0) + (s.finish_reasons.context_overflow ?? 0);
      const episodes = (s: (typeof summary)[number]) => Object.values(s.finish_reasons).reduce((a, b) => a + b, 0);
      for (const s of summary) if (errored(s)) ctx.metric(`eval/${s.model}/${s.world}/errored`, errored(s) / episodes(s));
      ctx.log(`${model}: ${summary.map((s) => `${s.world} ${(s.success * 100).toFixed(1)}%${errored(s) ? ` (${errored(s)}/${episodes(s)} episodes errored or overflowed the context)` : ''}`).join(', ')}`);
    }
  },
});
