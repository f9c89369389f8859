/*
 * best-of-n: test-time scaling over any model's evaluation rollouts (evaluate with samples = N, temperature > 0):
 * per (model, world, selector, n) the share of tasks whose picked sample passes. Selectors: the world's verifier
 * (needs the gold: an upper bound), the policy's mean logprob and a majority vote over tool-call sequences (need
 * no gold). Rules in runtime/eval/tts.ts.
 *   agentforge sql "select model, world, strategy, n, success from tts order by all"
 */
import { z } from 'zod';
import { operator, optional, table } from '../runtime/engine/operator.ts';
import { EvalRollout } from '../schemas/eval.ts';
import { Selector, TtsRow, greedyRows, scaleTestTime } from '../runtime/eval/tts.ts';

export const bestOfN = operator({
  name: 'best-of-n',
  version: 1,
  description: 'best-of-N per model × world × selector × N over evaluation rollouts',
  params: z.object({
    selectors: z.array(Selector).min(1).default(['verifier', 'logprob', 'vote-calls']),
    /** Sample counts to report; null = 1, 2, 4 … up to the samples every task has. */
    n: z.array(z.number().int().min(1)).min(1).nullable().default(null),
  }),
  /** greedy: the same models evaluated at temperature 0, drawn as a flat 'greedy' line for comparison. */
  inputs: { rollouts: table(EvalRollout, 'EvalRollout'), greedy: optional(table(EvalRollout, 'EvalRollout')) },
  output: table(TtsRow, 'TtsRow'),
  async run({ params, inputs, out, ctx }) {
    const rows = await inputs.rollouts.all();
    if (!rows.length) throw new Error(`best-of-n node '${ctx.nodeId}': input rollouts (node ${inputs.rollouts.node}) are empty`);
    const sampled = scaleTestTime(rows, params.selectors, params.n, 'best-of-n', `best-of-n node '${ctx.nodeId}'`);
    const result = [...(inputs.greedy ? greedyRows(await inputs.greedy.all(), sampled) : []), ...sampled];
    await out.write(result);
    for (const r of result) ctx.metric(`tts/${r.model}/${r.world}/${r.strategy}`, r.success, r.n);
  },
});
