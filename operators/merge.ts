import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { many, model, operator, optional } from '../runtime/engine/operator.ts';
import { MergeOptions, type MergeRequest } from '../runtime/node/protocol.ts';
import { runNode } from '../runtime/node/client.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';

/*
 * Model merging, executed by the runtime node (runtime/node/agentforge_node/merge): linear, task arithmetic, TIES,
 * DARE (+ linear or TIES) and SLERP, streamed tensor by tensor from sharded safetensors into a complete HF
 * directory (config, tokenizer and chat template of the base, or of the first expert when there is no base).
 * Parameter mistakes are zod refinements, so `agentforge validate` reports them before anything runs; checks that
 * need the wiring (how many experts) run first thing in run(), before the node process starts.
 */

/** The node's MergeOptions (runtime/node/protocol.ts) plus the checks that span fields. */
export const MergeParams = MergeOptions.superRefine((p, ctx) => {
  const check = (w: number[] | undefined, path: (string | number)[]) => {
    if (!w) return;
    const sum = w.reduce((a, b) => a + b, 0);
    if (p.method === 'linear' && Math.abs(sum - 1) > 1e-6) {
      ctx.addIssue({ code: 'custom', path, message: `weights of a linear merge must sum to 1 (got ${w.join(', ')}, sum ${sum})` });
    }
    if ((p.method === 'ties' || p.method === 'dare') && w.some((x) => x <= 0)) {
      ctx.addIssue({ code: 'custom', path, message: `weights of ${p.method} must be > 0 (the disjoint mean divides by them)` });
    }
  };
  check(p.weights, ['weights']);
  p.overrides.forEach((o, i) => check(o.weights, ['overrides', i, 'weights']));
  if (p.method === 'slerp' && p.weights) ctx.addIssue({ code: 'custom', path: ['weights'], message: 'slerp takes t, not weights' });
});
export type MergeParams = z.output<typeof MergeParams>;


/** Problems that depend on the wiring: how many experts, whether a base is connected. */
export function arityProblems(p: MergeParams, nExperts: number, hasBase: boolean): string[] {
  const out: string[] = [];
  const needsBase = p.method === 'task_arithmetic' || p.method === 'ties' || p.method === 'dare';
  if (needsBase && !hasBase) out.push(`${p.method} needs a base model: wire inputs.base`);
  if (p.method === 'slerp') {
    const n = nExperts + (hasBase ? 1 : 0);
    if (n !== 2) out.push(`slerp merges exactly 2 models (base + 1 expert, or 2 experts); got ${n}`);
  } else {
    const min = p.method === 'linear' || p.method === 'ties' || (p.method === 'dare' && p.dareCombine === 'ties') ? 2 : 1;
    if (nExperts < min) out.push(`${p.method} needs at least ${min} experts; got ${nExperts}`);
  }
  for (const [where, w] of [['weights', p.weights], ...p.overrides.map((o, i) => [`overrides[${i}].weights`, o.weights] as const)] as const) {
    if (w && p.method !== 'slerp' && w.length !== nExperts) out.push(`${where} has ${w.length} values for ${nExperts} experts`);
  }
  return out;
}

/** What the node returns (the fields this operator reads; the rest is kept verbatim in merge.json). */
const NodeRecord = z.object({
  inputs: z.array(z.object({ label: z.string(), path: z.string(), fingerprint: z.string() })),
  tensors: z.number(), bytes_in: z.number(), bytes_out: z.number(), seconds: z.number(), seconds_statistics: z.number(),
  // Per tensor, for TIES and DARE: the share of task-vector elements kept, and TIES's sign agreement; [] otherwise.
  diagnostics: z.array(z.object({ tensor: z.string(), kept_fraction: z.number(), sign_agreement: z.number().optional() })),
}).passthrough();

export const merge = operator({
  name: 'merge',
  version: 4, // 2: compiled kernels; DARE coins from a counter-based hash (different masks than v1); 3: statistics-pass seconds in merge.json; 4: per-tensor diagnostics in merge.json (weights unchanged)
  description: 'Merges fine-tuned models (linear, task arithmetic, TIES, DARE, SLERP) into one HF model directory.',
  params: MergeParams,
  inputs: { base: optional(model()), experts: many(model()) },
  output: model(),
  resources: ['gpu'],
  codeDeps: nodeCode('commands/merge.py'),
  async run({ params, inputs, out, ctx }) {
    const problems = arityProblems(params, inputs.experts.length, !!inputs.base);
    if (problems.length) throw new Error(`merge node '${ctx.nodeId}':\n  - ${problems.join('\n  - ')}`);
    const request: MergeRequest = { ...params, base: inputs.base?.dir ?? null, experts: inputs.experts.map((e) => e.dir), out: out.dir };
    const record = await runNode('merge', request, { signal: ctx.signal, onEvent: forwardEvents(ctx), result: NodeRecord });
    ctx.log(`merged ${record.tensors} tensors, ${(record.bytes_in / 1e6).toFixed(1)} MB in ${record.seconds.toFixed(1)} s`
      + (record.seconds_statistics > 0 ? ` (${record.seconds_statistics.toFixed(1)} s of it in the statistics pass)` : ''));
    // The merge record: which method and params made this model from which inputs (ledger keys + weight fingerprints).
    const mergeRecord = {
      method: params.method, params,
      inputs: {
        base: inputs.base ? { node: inputs.base.node, key: inputs.base.key } : null,
        experts: inputs.experts.map((e) => ({ node: e.node, key: e.key })),
      },
      fingerprints: record.inputs.map(({ label, fingerprint }) => ({ label, fingerprint })),
      tensors: record.tensors, bytesIn: record.bytes_in, bytesOut: record.bytes_out, seconds: record.seconds,
      secondsStatistics: record.seconds_statistics,
      // The report charts these per tensor (runtime/report/merge.ts); absent for methods that keep every element.
      ...(record.diagnostics.length ? { diagnostics: record.diagnostics } : {}),
    };
    writeFileSync(join(out.dir, 'merge.json'), JSON.stringify(mergeRecord, null, 2));
  },
});
