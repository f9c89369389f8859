/*
 * ORT (onnxruntime-node) logits of the exported model equal torch logits (the node's `forward`) within 1e-4:
 * prefill without cache, then incremental decode feeding `present` back as past, batched with left and right
 * padding. The graph returns the logits of each call's last position only (all that sampling needs).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { runNode } from '../../runtime/node/client.ts';
import { ExportOnnxResult, ForwardResult, type OnnxMeta } from '../../runtime/node/protocol.ts';
import { python, tinyModel } from './helpers.ts';

type Feeds = Record<string, ort.Tensor>;
const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
const cols = (rows: number[][], a: number, b: number) => rows.map((r) => r.slice(a, b));

function padded(lengths: number[], side: 'left' | 'right', vocab: number) {
  const s = Math.max(...lengths);
  const ids: number[][] = [], mask: number[][] = [], pos: number[][] = [];
  lengths.forEach((n, i) => {
    const real = Array.from({ length: n }, (_, j) => 7 + ((i * 31 + j * 17) % (vocab - 7)));
    const pad = Array(s - n).fill(0);
    const m = side === 'left' ? [...pad, ...real.map(() => 1)] : [...real.map(() => 1), ...pad];
    ids.push(side === 'left' ? [...pad, ...real] : [...real, ...pad]);
    mask.push(m);
    let c = -1;
    pos.push(m.map((x) => Math.max(0, (c += x))));
  });
  return { ids, mask, pos };
}

async function step(sess: ort.InferenceSession, meta: OnnxMeta, ids: number[][], mask: number[][], pos: number[][], past?: ort.InferenceSession.OnnxValueMapType) {
  const feeds: Feeds = { input_ids: i64(ids), attention_mask: i64(mask), position_ids: i64(pos) };
  for (let l = 0; l < meta.num_layers; l++) {
    for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${l}.${kv}`] = (past?.[`present.${l}.${kv}`] as ort.Tensor | undefined) ??
        new ort.Tensor('float32', new Float32Array(0), [ids.length, meta.num_kv_heads, 0, meta.head_dim]);
    }
  }
  return sess.run(feeds);
}

describe('export-onnx parity (onnxruntime-node vs torch)', () => {
  let dir = '';
  let meta: OnnxMeta;
  let sess: ort.InferenceSession;
  beforeAll(async () => {
    const model = await tinyModel();
    dir = `${model}-onnx`;
    const res = await runNode('export-onnx', { model_dir: model, out_dir: dir, policy_version: 5 }, { python: await python(), result: ExportOnnxResult });
    meta = res.meta;
    sess = await ort.InferenceSession.create(join(dir, 'model.onnx'));
    (globalThis as { __model?: string }).__model = model;
  }, 180_000);

  it.each(['left', 'right'] as const)('%s padding: prefill and cached decode match torch within 1e-4', async (side) => {
    expect(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).policy_version).toBe(5);
    const { ids, mask, pos } = padded([8, 5, 3], side, meta.vocab_size);
    const ref = (await runNode('forward', { model_dir: (globalThis as { __model?: string }).__model!, input_ids: ids, attention_mask: mask, position_ids: pos },
      { python: await python(), result: ForwardResult })).logits;
    const V = meta.vocab_size;
    const check = (logits: ort.Tensor, last: number) => {
      const data = logits.data as Float32Array;
      const [b, s] = logits.dims as number[];
      expect(s).toBe(1);
      let worst = 0, rows = 0;
      for (let i = 0; i < b; i++) {
        if (!mask[i][last]) continue; // a padded position has no meaningful logits
        rows++;
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(data[i * V + v] - ref[i][last][v]));
      }
      expect(rows).toBeGreaterThan(0);
      return worst;
    };
    const full = await step(sess, meta, ids, mask, pos);
    expect(check(full.logits as ort.Tensor, 7)).toBeLessThan(1e-4);
    const bounds = [0, 4, 6, 7, 8];
    let past: ort.InferenceSession.OnnxValueMapType | undefined;
    for (let k = 0; k + 1 < bounds.length; k++) {
      const [a, b] = [bounds[k], bounds[k + 1]];
      const out = await step(sess, meta, cols(ids, a, b), cols(mask, 0, b), cols(pos, a, b), past);
      expect(check(out.logits as ort.Tensor, b - 1), `chunk ${a}..${b}`).toBeLessThan(1e-4);
      expect((out['present.0.key'] as ort.Tensor).dims).toEqual([3, meta.num_kv_heads, b, meta.head_dim]);
      past = out;
    }
  }, 120_000);
});
