/*
 * self-consistency (Wang et al. 2022): per task, a majority vote over the final answers of the first n samples
 * (ties: the cluster the policy gives the higher mean logprob); `key: 'calls'` votes over tool-call sequences,
 * the agentic analogue. One row per (model, world, n), the same table as best-of-n's.
 */
import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { EvalRollout } from '../schemas/eval.ts';
import { TtsRow, scaleTestTime } from '../runtime/eval/tts.ts';

export const selfConsistency = operator({
  name: 'self-consistency',
  version: 1,
  description: 'majority vote over final answers (or tool-call sequences) per model × world × N',
  params: z.object({
    key: z.enum(['answer', 'calls']).default('answer'),
    n: z.array(z.number().int().min(1)).min(1).nullable().default(null),
  }),
  inputs: { rollouts: table(EvalRollout, 'EvalRollout') },
  output: table(TtsRow, 'TtsRow'),
  async run({ params, inputs, out, ctx }) {
    const rows = await inputs.rollouts.all();
    if (!rows.length) throw new Error(`self-consistency node '${ctx.nodeId}': input rollouts (node ${inputs.rollouts.node}) are empty`);
    const result = scaleTestTime(rows, [params.key === 'answer' ? 'vote-answer' : 'vote-calls'], params.n, 'self-consistency', `self-consistency node '${ctx.nodeId}'`);
    await out.write(result);
    for (const r of result) ctx.metric(`tts/${r.model}/${r.world}/${r.strategy}`, r.success, r.n);
  },
});
