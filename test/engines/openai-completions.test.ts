/*
 * OpenAI completions engine against a real loopback HTTP server (test/fixtures/completions-server.ts) that
 * decodes with the ORT engine: token ids and logprobs come back exactly as the ORT engine produces them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeIds, loadChatTokenizer, type ChatTokenizer } from '../../runtime/agent/tokenize.ts';
import type { GenerateRequest } from '../../runtime/agent/engines/engine.ts';
import { OpenAICompletionsEngine } from '../../runtime/agent/engines/openai-completions.ts';
import { OrtEngine } from '../../runtime/agent/engines/ort.ts';
import { startCompletionsServer, type LoopbackServer } from '../fixtures/completions-server.ts';
import { tinyOnnxModel } from '../fixtures/python.ts';

const reqs = (n: number, temperature: number): GenerateRequest[] =>
  Array.from({ length: n }, (_, i) => ({
    prompt: Array.from({ length: 3 + i }, (_, j) => 10 + ((i * 7 + j * 13) % 400)),
    maxTokens: 12, stop: [2], temperature, topP: 0.95, seed: 100 + i,
  }));

describe('OpenAICompletionsEngine', () => {
  let ortEngine: OrtEngine;
  let tk: ChatTokenizer;
  const servers: LoopbackServer[] = [];

  beforeAll(async () => {
    const dir = await tinyOnnxModel(0);
    ortEngine = await OrtEngine.load(dir);
    tk = loadChatTokenizer(dir);
  }, 900_000);
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await ortEngine?.close();
  });
  const start = async (mode: 'vllm' | 'text' | 'flaky') => {
    const s = await startCompletionsServer(ortEngine, tk, mode);
    servers.push(s);
    return s;
  };

  it('sends token prompts and reads back token ids and logprobs (vLLM style)', async () => {
    const server = await start('vllm');
    const engine = new OpenAICompletionsEngine({ baseURL: server.url, model: 'tiny', maxConcurrency: 3 });
    for (const t of [0, 0.8]) {
      const rs = reqs(5, t);
      const [viaHttp, direct] = [await engine.generate(rs), await ortEngine.generate(rs)];
      expect(viaHttp.map((r) => [r.tokens, r.finish])).toEqual(direct.map((r) => [r.tokens, r.finish]));
      viaHttp.forEach((r, i) => r.logprobs.forEach((l, k) => expect(l).toBeCloseTo(direct[i].logprobs[k], 4))); // batch of 1 vs 5: float noise
      expect(viaHttp.some((r) => r.retokenized)).toBe(false);
    }
    expect(server.requests[0]).toMatchObject({ prompt: reqs(1, 0)[0].prompt, stop_token_ids: [2], return_tokens_as_token_ids: true, max_tokens: 12 });
  });

  it('re-tokenizes text from servers without token ids, and says so', async () => {
    const server = await start('text');
    const noTok = new OpenAICompletionsEngine({ baseURL: server.url, model: 'tiny' });
    await expect(noTok.generate(reqs(1, 0))).rejects.toThrow(/no token ids.*no tokenizer/);
    const engine = new OpenAICompletionsEngine({ baseURL: server.url, model: 'tiny', tokenizer: tk });
    const [viaHttp, direct] = [await engine.generate(reqs(3, 0)), await ortEngine.generate(reqs(3, 0))];
    viaHttp.forEach((r, i) => {
      expect(r.retokenized).toBe(true);
      expect(decodeIds(tk, r.tokens)).toBe(decodeIds(tk, direct[i].tokens));
      expect(r.logprobs).toHaveLength(r.tokens.length);
    });
  });

  it('retries 5xx answers and reports unreachable servers with the URL', async () => {
    const server = await start('flaky');
    const engine = new OpenAICompletionsEngine({ baseURL: server.url, model: 'tiny', maxConcurrency: 1 });
    const out = await engine.generate(reqs(2, 0));
    expect(out.map((r) => r.tokens)).toEqual((await ortEngine.generate(reqs(2, 0))).map((r) => r.tokens));
    const dead = new OpenAICompletionsEngine({ baseURL: 'http://127.0.0.1:9/v1', model: 'x', retries: 0 });
    await expect(dead.generate(reqs(1, 0))).rejects.toThrow(/request 0: POST http:\/\/127\.0\.0\.1:9\/v1\/completions failed/);
  });

  it('reload bumps the policy version through the hook', async () => {
    const seen: [string, number][] = [];
    const engine = new OpenAICompletionsEngine({ baseURL: 'http://127.0.0.1:9/v1', model: 'x', onReload: async (d, v) => void seen.push([d, v]) });
    await engine.reload('/weights/v3', 3);
    await engine.reload('/weights/v4');
    expect(engine.policyVersion).toBe(4);
    expect(seen).toEqual([['/weights/v3', 3], ['/weights/v4', 4]]);
  });
});
