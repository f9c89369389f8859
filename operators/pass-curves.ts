/*
 * pass-curves: pass@k and pass^k for k = 1…N per (model, world) from evaluation rollouts with N samples per task
 * (unbiased estimators, runtime/eval/passk.ts), one row per point, for the report's curves.
 */
import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { EvalRollout } from '../schemas/eval.ts';
import { PassCurveRow, passCurves } from '../runtime/eval/tts-curves.ts';

export const passCurvesOp = operator({
  name: 'pass-curves',
  version: 1,
  description: 'pass@k and pass^k for k = 1…N per model × world',
  params: z.object({}),
  inputs: { rollouts: table(EvalRollout, 'EvalRollout') },
  output: table(PassCurveRow, 'PassCurveRow'),
  async run({ inputs, out, ctx }) {
    const rows = await inputs.rollouts.all();
    if (!rows.length) throw new Error(`pass-curves node '${ctx.nodeId}': input rollouts (node ${inputs.rollouts.node}) are empty`);
    const result = passCurves(rows);
    await out.write(result);
    for (const r of result) ctx.metric(`${r.metric}/${r.model}/${r.world}`, r.value, r.k);
  },
});
