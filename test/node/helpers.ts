/* Shared bits of the runtime-node tests: the interpreter and a tiny model built by the real init-model command. */
import { mkdtempSync, readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePythonEnv } from '../../runtime/node/env.ts';
import { runNode } from '../../runtime/node/client.ts';
import { InitModelResult } from '../../runtime/node/protocol.ts';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';

export const python = async (): Promise<string> => (await ensurePythonEnv()).python;

export const TINY = { vocab_size: 300, hidden_size: 64, num_layers: 2, num_heads: 4, num_kv_heads: 2, head_dim: 16,
  intermediate_size: 128, max_position_embeddings: 256 };

export const CORPUS = Array.from({ length: 40 }, (_, i) =>
  `<|im_start|>user\nadd ${i} and ${(i * 7) % 13}<|im_end|>\n<|im_start|>assistant\n<tool_call>\n` +
  `{"name": "add", "arguments": {"a": ${i}, "b": ${(i * 7) % 13}}}\n</tool_call><|im_end|>\n`);

export async function tinyModel(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), 'af-gpu-')), 'model');
  await runNode('init-model', { out_dir: dir, chat_template: CHAT_TEMPLATE, texts: CORPUS, ...TINY },
    { python: await python(), result: InitModelResult });
  return dir;
}

const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

/** An ONNX export's logits for whole rows (empty KV cache), straight from onnxruntime. */
export async function ortLogits(dir: string, ids: number[][]): Promise<Float32Array> {
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  const sess = await ort.InferenceSession.create(join(dir, 'model.onnx'));
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(ids.map((r) => r.map(() => 1))),
    position_ids: i64(ids.map((r) => r.map((_, j) => j))) };
  for (let l = 0; l < meta.num_layers; l++) for (const kv of ['key', 'value']) {
    feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [ids.length, meta.num_kv_heads, 0, meta.head_dim]);
  }
  const out = await sess.run(feeds);
  await sess.release();
  return out.logits.data as Float32Array;
}
