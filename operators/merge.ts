import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { many, model, operator, optional } from '../runtime/engine/operator.ts';
import { MergeRequest } from '../runtime/node/requests.ts';
export { MergeRequest };
import { runNode } from '../runtime/node/client.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';

/*
 * Model merging, executed by the runtime node (runtime/node/agentforge_node/merge): linear, task arithmetic, TIES,
 * DARE (+ linear or TIES) and SLERP, streamed tensor by tensor from sharded safetensors into a complete HF
 * directory (config, tokenizer and chat template of the base, or of the first expert when there is no base).
 * Parameter mistakes are zod refinements, so `agentforge validate` reports them before anything runs; checks that
 * need the wiring (how many experts) run first thing in run(), before the node process starts.
 */

const Method = z.enum(['linear', 'task_arithmetic', 'ties', 'dare', 'slerp']);
const weights = z.array(z.number().finite()).min(1);
const density = z.number().gt(0, 'density must be in (0, 1]').lte(1, 'density must be in (0, 1]');
const dropRate = z.number().gte(0, 'dropRate must be in [0, 1)').lt(1, 'dropRate must be in [0, 1)');
const t = z.number().gte(0, 't must be in [0, 1]').lte(1, 't must be in [0, 1]');

export const MergeOverride = z.object({
  /** Shell glob over tensor names, e.g. '*embed_tokens*' or '*norm*'; the first matching override wins. */
  pattern: z.string().min(1),
  weights: weights.optional(),
  lambda: z.number().finite().optional(),
  density: density.optional(),
  dropRate: dropRate.optional(),
  t: t.optional(),
}).strict();

export const MergeParams = z.object({
  method: Method,
  /** One per expert. linear: must sum to 1 (default equal); task_arithmetic/ties/dare: scale each task vector (default 1). */
  weights: weights.optional(),
  /** λ: scale of the merged task vector (task_arithmetic, ties, dare). */
  lambda: z.number().finite().default(1),
  /** TIES: fraction of each task vector kept, by magnitude. */
  density: density.default(1),
  /** DARE: drop probability p; survivors are rescaled by 1/(1−p). 0.9 is the paper's setting. */
  dropRate: dropRate.default(0.9),
  /** DARE: what follows the drop, task arithmetic ('linear') or TIES sign election ('ties'). */
  dareCombine: z.enum(['linear', 'ties']).default('linear'),
  seed: z.number().int().default(0),
  /** SLERP factor: 0 = first model (the base when there is one), 1 = second. */
  t: t.default(0.5),
  overrides: z.array(MergeOverride).default([]),
  /** Output dtype; unset = each tensor in its input dtype. Computation is always fp32. */
  dtype: z.enum(['float32', 'bfloat16', 'float16']).optional(),
  maxShardBytes: z.number().int().positive().default(2_000_000_000),
}).strict().superRefine((p, ctx) => {
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

export function toRequest(p: MergeParams, base: string | undefined, experts: string[], out: string): MergeRequest {
  return {
    method: p.method, experts, out, base: base ?? null, weights: p.weights ?? null, lam: p.lambda, density: p.density,
    drop_rate: p.dropRate, dare_combine: p.dareCombine, seed: p.seed, t: p.t, dtype: p.dtype ?? null,
    max_shard_bytes: p.maxShardBytes,
    overrides: p.overrides.map((o) => ({
      pattern: o.pattern, weights: o.weights ?? null, lam: o.lambda ?? null, density: o.density ?? null,
      drop_rate: o.dropRate ?? null, t: o.t ?? null,
    })),
  };
}

/** What the node returns (the fields this operator reads; the rest is kept verbatim in merge.json). */
const NodeRecord = z.object({
  inputs: z.array(z.object({ label: z.string(), path: z.string(), fingerprint: z.string() })),
  tensors: z.number(), bytes_in: z.number(), bytes_out: z.number(), seconds: z.number(), seconds_statistics: z.number(),
}).passthrough();

export const merge = operator({
  name: 'merge',
  version: 3, // 2: compiled kernels; DARE coins from a counter-based hash (different masks than v1); 3: statistics-pass seconds in merge.json
  description: 'Merges fine-tuned models (linear, task arithmetic, TIES, DARE, SLERP) into one HF model directory.',
  params: MergeParams,
  inputs: { base: optional(model()), experts: many(model()) },
  output: model(),
  resources: ['gpu'],
  codeDeps: nodeCode('commands/merge.py'),
  async run({ params, inputs, out, ctx }) {
    const problems = arityProblems(params, inputs.experts.length, !!inputs.base);
    if (problems.length) throw new Error(`merge node '${ctx.nodeId}':\n  - ${problems.join('\n  - ')}`);
    const request = toRequest(params, inputs.base?.dir, inputs.experts.map((e) => e.dir), out.dir);
    const record = await runNode('merge', MergeRequest.parse(request), { signal: ctx.signal, onEvent: forwardEvents(ctx), result: NodeRecord });
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
    };
    writeFileSync(join(out.dir, 'merge.json'), JSON.stringify(mergeRecord, null, 2));
  },
});
