/*
 * A local policy runs with the model's own context (its config's max_position_embeddings) and the engine params
 * operators pass (threads, a prefix cache sized in tokens), on a real tiny ONNX export: a copy whose config says
 * 4,096 answers a prompt longer than the old fixed 2,048; a prompt longer than the context is an error that names
 * both lengths (it used to surface as "token_ids must be a non-empty array").
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../runtime/agent/loop.ts';
import { describePolicy, EngineParams, LimitParams, loadPolicy, modelContext, toLimits } from '../../runtime/agent/local.ts';
import { localModelPolicy } from '../../runtime/agent/local-policy.ts';
import { defaultPrefixCacheTokens, kvBytesPerToken, OrtEngine, weightBytes } from '../../runtime/agent/engines/ort.ts';
import { PrefixCache } from '../../runtime/agent/engines/prefix-cache.ts';
import { AgentParams, chooseAgent } from '../../runtime/eval/agent.ts';
import { serve } from '../../runtime/agent/serve/server.ts';
import { EvaluateParams } from '../../operators/evaluate.ts';
import { RolloutParams } from '../../operators/rollout.ts';
import { TrainRlParams } from '../../operators/train-rl.ts';
import type { ChatRequest } from '../../runtime/agent/policy.ts';
import type { Message } from '../../schemas/message.ts';
import { tinyOnnxModel } from '../fixtures/python.ts';

let root: string;
let long: string; // config says 4,096 positions
let noConfig: string; // no config.json: the 2,048 default
let meta: { num_layers: number; num_kv_heads: number; head_dim: number };

beforeAll(async () => {
  const src = await tinyOnnxModel(5);
  root = mkdtempSync(join(tmpdir(), 'af-ctx-'));
  long = join(root, 'long');
  noConfig = join(root, 'none');
  cpSync(src, long, { recursive: true });
  cpSync(src, noConfig, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(long, 'config.json'), 'utf8'));
  expect(cfg.max_position_embeddings).toBe(2048);
  writeFileSync(join(long, 'config.json'), JSON.stringify({ ...cfg, max_position_embeddings: 4096 }));
  rmSync(join(noConfig, 'config.json'));
  meta = JSON.parse(readFileSync(join(long, 'meta.json'), 'utf8'));
}, 900_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const m = (role: Message['role'], content: string): Message => ({ role, content, tool_calls: [], tool_call_id: null, name: null });
/** A user turn of about 4 × `words` tokens of the tiny BPE (w, then the digits one by one). */
const request = (words: number): ChatRequest => ({ messages: [m('system', 'Be brief.'), m('user', Array.from({ length: words }, (_, i) => `w${i % 97}`).join(' '))], tools: [] });

describe('the model\'s context', () => {
  it('comes from meta.json, else config.json (text_config too), else none', () => {
    expect(modelContext(long)).toEqual({ tokens: 4096, from: 'config.json max_position_embeddings' });
    expect(modelContext(noConfig)).toBeNull();
    const dir = join(root, 'cfgs');
    cpSync(noConfig, dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ text_config: { max_position_embeddings: 32768 } }));
    expect(modelContext(dir)).toEqual({ tokens: 32768, from: 'config.json text_config.max_position_embeddings' });
    const m2 = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ ...m2, max_position_embeddings: 8192 }));
    expect(modelContext(dir)?.tokens).toBe(8192);
    writeFileSync(join(dir, 'meta.json'), JSON.stringify({ ...m2, max_position_embeddings: 'lots' }));
    expect(() => modelContext(dir)).toThrow(/meta\.json: max_position_embeddings must be an integer >= 16, got "lots"/);
  });

  it('is what a loaded policy and the rollout limits use unless a param caps it', async () => {
    const own = await loadPolicy(long, { maxBatch: 4 });
    const capped = await loadPolicy(long, { maxBatch: 4, maxContext: 1024 });
    const fallback = await loadPolicy(noConfig, { maxBatch: 4 });
    try {
      expect([own.maxContext, capped.maxContext, fallback.maxContext]).toEqual([4096, 1024, DEFAULT_LIMITS.maxContext]);
      expect((own.engine as OrtEngine).settings.maxContext).toBe(4096);
      expect(toLimits(LimitParams.parse({}), own.maxContext).maxContext).toBe(4096);
      expect(toLimits(LimitParams.parse({ max_context: 512 }), own.maxContext).maxContext).toBe(512);
      expect(describePolicy(long, own)).toMatch(/context 4096 \(model: 4096, config\.json max_position_embeddings\), tool calls as hermes/);
    } finally {
      await Promise.all([own, capped, fallback].map((p) => p.engine.close()));
    }
  });

  it('lets a local ChatPolicy answer a prompt longer than 2,048 tokens, and names both lengths when one does not fit', async () => {
    const policy = await localModelPolicy(long, { maxTokens: 4 });
    const small = await localModelPolicy(noConfig, { maxTokens: 4 });
    try {
      const a = await policy.respond(request(750)); // ~2,900 tokens
      expect(a.role).toBe('assistant');
      await expect(small.respond(request(750))).rejects.toThrow(/the prompt is \d{4} tokens, which leaves no room in the model's context of 2048 tokens \(its config gives none: the default\)/);
      await expect(policy.respond(request(1200))).rejects.toThrow(/the prompt is \d{4} tokens, which leaves no room in the model's context of 4096 tokens \(config\.json max_position_embeddings\); shorten the conversation or raise max_context/);
    } finally {
      await Promise.all([policy.close(), small.close()]);
    }
  });

  it('is a benchmark agent\'s default, with max_context to cap it', async () => {
    const agent = await chooseAgent(AgentParams.parse({ agent: 'model', max_tokens: 2, max_context: 1500 }), long, {}, 'eval-tau');
    try {
      if (agent === 'oracle') throw new Error('expected a policy');
      await expect(agent.respond(request(750))).rejects.toThrow(/leaves no room in the context of 1500 tokens \(max_context\)/);
    } finally {
      await (agent as unknown as { close(): Promise<void> }).close();
    }
  });
});

describe('agentforge serve', () => {
  it('serves with the model\'s context and the params it is given; an unknown tool-call format fails before loading', async () => {
    const lines: string[] = [];
    const server = await serve({ dir: long, port: 0, threads: 1, prefixCacheTokens: 2000, log: (l) => lines.push(l) });
    try {
      expect(lines[0]).toMatch(/context 4096, tool calls as hermes, prefix cache 2000 tokens/);
      const r = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: request(750).messages, max_tokens: 2, temperature: 0 }) });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens).toBeGreaterThan(2048);
    } finally {
      await server.close();
    }
    await expect(serve({ dir: long, port: 0, toolCallFormat: 'bogus' })).rejects.toThrow(/unknown tool-call format 'bogus'; known formats: hermes/);
  });
});

describe('engine params', () => {
  it('are one object every operator that runs a local policy takes, defaulting to the model\'s context', () => {
    for (const P of [EvaluateParams, RolloutParams, TrainRlParams, AgentParams]) {
      const p = (P as { parse(v: unknown): Record<string, unknown> }).parse(P === EvaluateParams ? { labels: ['a'] } : {});
      expect(p.engine).toEqual({ threads: 0, prefix_cache_tokens: null });
      expect(p.tool_call_format).toBeNull();
      if ('limits' in p) expect((p.limits as LimitParams).max_context).toBeNull();
    }
    expect(() => EngineParams.parse({ threads: -1 })).toThrow();
  });

  it('size the prefix cache in tokens of the model\'s KV', async () => {
    const perToken = kvBytesPerToken(meta);
    expect(perToken).toBe(meta.num_layers * meta.num_kv_heads * meta.head_dim * 2 * 4);
    // SmolLM2-135M: 30 layers, 3 KV heads of 64
    expect(kvBytesPerToken({ num_layers: 30, num_kv_heads: 3, head_dim: 64 })).toBe(46_080);
    expect(defaultPrefixCacheTokens({ num_layers: 30, num_kv_heads: 3, head_dim: 64 }, 400e6, 32, 8192)).toBe(Math.floor((1 << 30) / 46_080));
    expect(defaultPrefixCacheTokens({ num_layers: 30, num_kv_heads: 3, head_dim: 64 }, 2e9, 32, 8192)).toBe(Math.floor(4e9 / 46_080));
    // the weights: the graph and its external data files
    const ext = join(root, 'ext');
    cpSync(noConfig, ext, { recursive: true });
    writeFileSync(join(ext, 'model.onnx.data'), Buffer.alloc(1000));
    expect(weightBytes(ext)).toBe(statSync(join(ext, 'model.onnx')).size + 1000);
    const sized = await loadPolicy(long, { maxBatch: 4, engine: EngineParams.parse({ threads: 1, prefix_cache_tokens: 1000 }) });
    const dflt = await loadPolicy(long, { maxBatch: 4 });
    const off = await loadPolicy(long, { maxBatch: 4, engine: EngineParams.parse({ prefix_cache_tokens: 0 }) });
    try {
      expect((sized.engine as OrtEngine).settings).toMatchObject({ intraOpThreads: 1, prefixCacheTokens: 1000, prefixCacheBytes: 1000 * perToken });
      expect((dflt.engine as OrtEngine).settings.prefixCacheTokens).toBe(4 * 4096); // the tiny model: every batch row's whole context
      expect((off.engine as OrtEngine).prefixCacheStats).toBeNull();
      expect(describePolicy(long, sized)).toMatch(/threads 1, prefix cache 1000 tokens/);
    } finally {
      await Promise.all([sized, dflt, off].map((p) => p.engine.close()));
    }
  });

  it('a cache in tokens holds one sequence per conversation: a turn that extends the previous one replaces it', () => {
    const layout = { layers: 1, kvHeads: 1, headDim: 1 };
    const kv = (n: number) => [new Float32Array(n), new Float32Array(n)];
    const seq = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
    const c = new PrefixCache(layout, 100 * 8);
    c.insert(seq(20), kv(20));
    c.insert(seq(40), kv(40)); // the next turn of the same conversation
    expect(c.stats).toMatchObject({ sequences: 1, bytes: 40 * 8, superseded: 1, evicted: 0 });
    c.insert(seq(16).concat(seq(20, 900)), kv(36)); // shares 16 tokens, then differs: both stay reachable
    expect(c.stats).toMatchObject({ sequences: 2, superseded: 1 });
    expect(c.lookup(seq(41))?.length).toBe(40);
    expect(c.lookup(seq(16).concat(seq(21, 900)))?.length).toBe(36);
  });
});
