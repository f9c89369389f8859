/*
 * ORT engine against real PyTorch on the same weights: greedy decoding equals transformers `generate`
 * (do_sample=False, each prompt alone, no padding) token for token, while the engine batches left-padded prompts
 * of different lengths across several batches. Plus seeded sampling, stop/length handling and hot reload.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { GenerateRequest } from '../../runtime/agent/engines/engine.ts';
import { OrtEngine } from '../../runtime/agent/engines/ort.ts';
import { pythonBin, runProcess, tinyOnnxModel } from '../fixtures/python.ts';
import { rng } from '../fixtures/conversations.ts';

const MAX = 40;

function prompts(n: number, seed: number, vocab: number): number[][] {
  const r = rng(seed);
  // ids 7.. skip the special tokens, so a prompt never contains eos
  return Array.from({ length: n }, () => Array.from({ length: 1 + Math.floor(r() * 30) }, () => 7 + Math.floor(r() * (vocab - 100))));
}

async function torchGreedy(dir: string, ps: number[][], eos: number): Promise<number[][]> {
  const r = await runProcess(await pythonBin(), ['test/fixtures/torch_generate.py'], {
    input: JSON.stringify({ model_dir: dir, prompts: ps, max_new_tokens: MAX, eos_token_id: eos, batched: false }),
  });
  if (r.code !== 0) throw new Error(`torch_generate.py failed: ${r.stderr.slice(-2000)}`);
  return (JSON.parse(r.stdout) as { tokens: number[][] }).tokens;
}

const greedy = (prompt: number[], stop: number[], maxTokens = MAX): GenerateRequest =>
  ({ prompt, maxTokens, stop, temperature: 0, topP: 1, seed: 0 });

describe('OrtEngine', () => {
  let dir: string;
  let dir2: string;
  let engine: OrtEngine;
  let eos: number;

  beforeAll(async () => {
    [dir, dir2] = await Promise.all([tinyOnnxModel(0), tinyOnnxModel(1)]);
    engine = await OrtEngine.load(dir, { maxBatch: 3 });
    eos = engine.meta.eos_token_ids[0];
  }, 900_000);

  it('greedy decoding equals torch generate token for token', async () => {
    const ps = prompts(8, 7, engine.meta.vocab_size);
    const ref = await torchGreedy(dir, ps, eos);
    const ort = await engine.generate(ps.map((p) => greedy(p, [eos])));
    ort.forEach((r, i) => {
      expect(r.tokens, `prompt ${i}`).toEqual(ref[i]);
      expect(r.finish).toBe(r.tokens.at(-1) === eos ? 'stop' : 'length');
    });
    expect(ort.flatMap((r) => r.tokens).length).toBeGreaterThan(8 * 20);
  }, 120_000);

  it('stops on a stop id (included) and at maxTokens', async () => {
    const p = prompts(1, 3, engine.meta.vocab_size)[0];
    const [full] = await engine.generate([greedy(p, [])]);
    const stopId = full.tokens[5];
    const cut = full.tokens.indexOf(stopId);
    const [stopped, short] = await engine.generate([greedy(p, [stopId]), greedy(p, [], 3)]);
    expect(stopped).toMatchObject({ tokens: full.tokens.slice(0, cut + 1), finish: 'stop' });
    expect(short).toMatchObject({ tokens: full.tokens.slice(0, 3), finish: 'length' });
    expect(full.logprobs.every((l) => l <= 0 && Number.isFinite(l))).toBe(true);
  });

  it('seeded sampling is reproducible and independent of batch mates', async () => {
    const ps = prompts(4, 11, engine.meta.vocab_size);
    const req = (p: number[], seed: number): GenerateRequest => ({ prompt: p, maxTokens: 20, stop: [], temperature: 1, topP: 0.9, seed });
    const alone = await engine.generate([req(ps[0], 42)]);
    const batch = await engine.generate([req(ps[1], 1), req(ps[0], 42), req(ps[2], 2)]);
    const other = await engine.generate([req(ps[0], 43)]);
    expect(batch[1].tokens).toEqual(alone[0].tokens);
    expect(other[0].tokens).not.toEqual(alone[0].tokens);
    // logprobs are under softmax(logits / T) — sampling at T=1 must score the greedy path like greedy does
    const [g] = await engine.generate([greedy(ps[0], [], 20)]);
    const [forced] = await engine.generate([{ prompt: ps[0], maxTokens: 1, stop: [], temperature: 1, topP: 1e-9, seed: 0 }]);
    expect(forced.tokens[0]).toBe(g.tokens[0]);
    expect(forced.logprobs[0]).toBeCloseTo(g.logprobs[0], 5);
  });

  it('hot-reloads weights by policy version; a running batch finishes on its weights', async () => {
    const e = await OrtEngine.load(dir, { maxBatch: 2 });
    const ps = prompts(6, 5, e.meta.vocab_size);
    const before = await e.generate(ps.map((p) => greedy(p, [])));
    const running = e.generate(ps.map((p) => greedy(p, [])));
    await e.reload(dir2); // version from meta.json: 1
    const during = await running;
    const after = await e.generate(ps.map((p) => greedy(p, [])));
    expect(e.policyVersion).toBe(1);
    expect(during.map((r) => r.tokens)).toEqual(before.map((r) => r.tokens));
    expect(during.every((r) => r.policyVersion === 0)).toBe(true);
    expect(after.every((r) => r.policyVersion === 1)).toBe(true);
    expect(after.map((r) => r.tokens)).not.toEqual(before.map((r) => r.tokens));
    await e.close();
  });

  it('stops at the context limit', async () => {
    const e = await OrtEngine.load(dir, { maxContext: 12 });
    const [a, b] = await e.generate([greedy([10, 11, 12, 13, 14, 15, 16, 17, 18, 19], []), greedy(Array(12).fill(10), [])]);
    expect([a.tokens.length, a.finish]).toEqual([2, 'context']);
    expect([b.tokens.length, b.finish]).toEqual([0, 'context']);
    await e.close();
  });

  it('rejects bad requests with the request index', async () => {
    await expect(engine.generate([greedy([1, 2], []), greedy([1, 999999], [])])).rejects.toThrow(/request 1: prompt\[1\]/);
    await expect(engine.generate([{ ...greedy([1], []), topP: 0 }])).rejects.toThrow(/request 0: topP/);
  });
});
