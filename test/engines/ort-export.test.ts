/*
 * The ORT engine on the pipeline's own artifacts: init-model → export-onnx (runtime node commands), then greedy
 * decoding through OrtEngine equals transformers `generate` on the exported model's weights, token for token.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadChatTokenizer, tokenizeConversation } from '../../runtime/agent/tokenize.ts';
import { OrtEngine } from '../../runtime/agent/engines/ort.ts';
import { runNode } from '../../runtime/node/client.ts';
import { randomConversation } from '../fixtures/conversations.ts';
import { pythonBin, runProcess } from '../fixtures/python.ts';
import { tinyModel } from '../node/helpers.ts';

describe('OrtEngine on export-onnx output', () => {
  it('greedy decoding equals torch generate on the init-model weights', async () => {
    const modelDir = await tinyModel();
    const onnxDir = join(mkdtempSync(join(tmpdir(), 'af-onnx-')), 'onnx');
    await runNode('export-onnx', { model_dir: modelDir, out_dir: onnxDir, policy_version: 3 }, { python: await pythonBin() });
    const engine = await OrtEngine.load(onnxDir, { maxBatch: 4 });
    expect(engine.policyVersion).toBe(3);
    // real chat prompts from the exported tokenizer and chat template, cut to a few hundred tokens
    const ct = loadChatTokenizer(onnxDir);
    const prompts = Array.from({ length: 6 }, (_, i) => {
      const { messages, tools } = randomConversation(300 + i);
      return tokenizeConversation(ct, messages.slice(0, 2), tools).ids.slice(-(20 + 17 * i));
    });
    const eos = engine.meta.eos_token_ids[0];
    const out = await engine.generate(prompts.map((prompt) => ({ prompt, maxTokens: 24, stop: [eos], temperature: 0, topP: 1, seed: 0 })));
    const r = await runProcess(await pythonBin(), ['test/fixtures/torch_generate.py'], {
      input: JSON.stringify({ model_dir: modelDir, prompts, max_new_tokens: 24, eos_token_id: eos, batched: false }),
    });
    expect(r.code, r.stderr.slice(-2000)).toBe(0);
    const ref = (JSON.parse(r.stdout) as { tokens: number[][] }).tokens;
    expect(out.map((o) => o.tokens)).toEqual(ref);
    await engine.close();
  }, 900_000);
});
