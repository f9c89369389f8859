/*
 * Llama, Qwen2 and Qwen3 through export-onnx and the TS OrtEngine: tiny random models of each architecture (made
 * by runtime/node/tests/gguf_fixtures.py with the init-model tokenizer) are exported, decoded greedily in one
 * left-padded batch with the KV cache, and every generated token's log-probability equals transformers' (the
 * node's `forward` over the whole sequence) within 1e-4, and is transformers' argmax. fp16 and int8 weights decode
 * too, close to fp32. The export carries the model's own chat_template.jinja, and an architecture the exporter does
 * not handle is refused, naming the model and the supported list.
 */
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_TEMPLATE } from '../../runtime/agent/chat-template.ts';
import { OrtEngine, weightBytes } from '../../runtime/agent/engines/ort.ts';
import { loadChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { runNode } from '../../runtime/node/client.ts';
import { ExportOnnxResult, ForwardResult, ONNX_MODEL_TYPES } from '../../runtime/node/protocol.ts';
import { REPO, runProcess } from '../fixtures/python.ts';
import { python, tinyModel } from './helpers.ts';

let root: string;
let tok: string;
const OWN_TEMPLATE = `{#- this model's own template #}\n${CHAT_TEMPLATE}`;

const ARCHS = [['llama', true], ['qwen2', false], ['qwen3', true]] as const;
const modelDir = (arch: string, tie: boolean) => join(root, `${arch}-${tie ? 'tied' : 'untied'}`);

const exportTo = async (model: string, dtype: 'fp32' | 'fp16' | 'int8') => {
  const out = `${model}-onnx-${dtype}`;
  return runNode('export-onnx', { model_dir: model, out_dir: out, dtype }, { python: await python(), result: ExportOnnxResult });
};

/**
 * Greedy batch on OrtEngine (prompts of different lengths: left padding, then cached decode steps); for each row,
 * transformers' log-probs of the tokens the engine chose, from one `forward` over the right-padded sequences.
 */
async function decode(onnxDir: string, model: string) {
  const engine = await OrtEngine.load(onnxDir, { maxBatch: 4, prefixCacheTokens: 0 });
  const V = engine.meta.vocab_size;
  const prompts = [5, 11, 8].map((n, i) => Array.from({ length: n }, (_, j) => 7 + ((i * 37 + j * 13) % (V - 7))));
  const out = await engine.generate(prompts.map((prompt) => ({ prompt, maxTokens: 8, stop: [], temperature: 0, topP: 1, seed: 0 })));
  await engine.close();
  const seqs = prompts.map((p, i) => [...p, ...out[i].tokens]);
  const width = Math.max(...seqs.map((q) => q.length));
  const { logits } = await runNode('forward', {
    model_dir: model, input_ids: seqs.map((q) => [...q, ...Array(width - q.length).fill(0)]),
    attention_mask: seqs.map((q) => q.map(() => 1).concat(Array(width - q.length).fill(0))),
  }, { python: await python(), result: ForwardResult });
  return prompts.map((p, i) => ({
    tokens: out[i].tokens, logprobs: out[i].logprobs,
    ref: out[i].tokens.map((t, k) => {
      const l = logits[i][p.length - 1 + k];
      const max = Math.max(...l);
      const lse = max + Math.log(l.reduce((s, x) => s + Math.exp(x - max), 0));
      return { logprob: l[t] - lse, isArgmax: l[t] >= max - 1e-5 };
    }),
  }));
}

const worstDiff = (rows: Awaited<ReturnType<typeof decode>>) =>
  Math.max(...rows.flatMap((r) => r.logprobs.map((lp, k) => Math.abs(lp - r.ref[k].logprob))));

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'af-archs-'));
  tok = await tinyModel();
  writeFileSync(join(tok, 'chat_template.jinja'), OWN_TEMPLATE);
  const r = await runProcess(await python(), ['gguf_fixtures.py', JSON.stringify({ hf: ARCHS.map(([a, t]) => [a, tok, modelDir(a, t), t]) })],
    { cwd: join(REPO, 'runtime/node/tests') });
  if (r.code !== 0) throw new Error(`tiny models failed: ${r.stderr.slice(-2000)}`);
}, 300_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(ARCHS)('%s (tied embedding: %s) on OrtEngine', (arch, tie) => {
  let model = '';
  let fp32 = '';
  beforeAll(async () => {
    model = modelDir(arch, tie);
    fp32 = (await exportTo(model, 'fp32')).out_dir;
  }, 300_000);

  it('greedy decode with the KV cache: each token is transformers\' argmax, log-probs equal within 1e-4', async () => {
    const rows = await decode(fp32, model);
    expect(rows.every((r) => r.tokens.length === 8)).toBe(true);
    expect(rows.flatMap((r) => r.ref.map((x) => x.isArgmax))).not.toContain(false);
    expect(worstDiff(rows)).toBeLessThan(1e-4);
  }, 300_000);

  it('the export carries the model\'s own chat_template.jinja', () => {
    expect(readFileSync(join(fp32, 'chat_template.jinja'), 'utf8')).toBe(OWN_TEMPLATE);
    const ct = loadChatTokenizer(fp32);
    expect([ct.templateOrigin, ct.templateSource]).toEqual(['chat_template.jinja', OWN_TEMPLATE]);
  });
});

describe('export dtypes', () => {
  it('fp16 and int8 weights decode on OrtEngine close to transformers\' fp32, in smaller files', async () => {
    const model = modelDir('llama', true);
    const sizes: Record<string, number> = {};
    const diffs: Record<string, number> = {};
    for (const dtype of ['fp16', 'int8'] as const) {
      const res = await exportTo(model, dtype);
      sizes[dtype] = res.bytes;
      diffs[dtype] = worstDiff(await decode(res.out_dir, model));
    }
    const fp32 = `${model}-onnx-fp32`; // exported above, unless only this test runs
    sizes.fp32 = existsSync(join(fp32, 'model.onnx')) ? weightBytes(fp32) : (await exportTo(model, 'fp32')).bytes;
    expect(sizes.fp16).toBeLessThan(0.65 * sizes.fp32);
    expect(sizes.int8).toBeLessThan(0.75 * sizes.fp32); // down_proj stays fp32
    expect(diffs.fp16).toBeLessThan(1e-2);
    expect(diffs.int8).toBeLessThan(1e-1);
  }, 600_000);
});

describe('an architecture the exporter does not handle', () => {
  it('is refused, naming the model and the supported list', async () => {
    const model = modelDir('llama', true);
    const mistral = `${model}-as-mistral`;
    cpSync(model, mistral, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(mistral, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(mistral, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mistral', architectures: ['MistralForCausalLM'] }));
    await expect(exportTo(mistral, 'fp32')).rejects.toThrow(new RegExp(`${mistral}: model_type 'mistral' \\(MistralForCausalLM\\) cannot be exported to ONNX; the exporter supports ${ONNX_MODEL_TYPES.join(', ')}`));
    expect(existsSync(join(`${mistral}-onnx-fp32`, 'model.onnx'))).toBe(false);
  }, 120_000);
});
