/*
 * RolloutServers, the one client for agentforge serve / vLLM / SGLang: token-exact against the in-process engine,
 * weight reload through each documented path, sticky routing, and replies it must not accept (garbage, ids outside
 * the vocab, a hang, HTTP 500, another policy version): the request moves to another server and the reason is
 * counted; with no good server left the request fails with the reasons, and the episode is then untrainable.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type RunningServer } from '../../runtime/agent/serve/server.ts';
import { OrtEngine } from '../../runtime/agent/engines/ort.ts';
import { RolloutServers, type ReloadMode } from '../../runtime/agent/engines/rollout-servers.ts';
import type { GenerateRequest } from '../../runtime/agent/engines/engine.ts';
import { tinyOnnxModel } from '../fixtures/python.ts';
import { badServer, type Misbehaviour } from './servers.ts';

let dir0: string;
let dir1: string;
let a: RunningServer;
let b: RunningServer;
let ref: OrtEngine;
let vocab: number;

beforeAll(async () => {
  [dir0, dir1] = await Promise.all([tinyOnnxModel(0), tinyOnnxModel(1)]);
  [a, b] = await Promise.all([serve({ dir: dir0, version: 0 }), serve({ dir: dir0, version: 0 })]);
  ref = await OrtEngine.load(dir1);
  vocab = ref.meta.vocab_size;
}, 900_000);
afterAll(async () => { await a?.close(); await b?.close(); await ref?.close(); });

const req = (seed: number, affinity?: string): GenerateRequest => ({ prompt: [5, 9, 20 + seed, 40, 41], maxTokens: 6, stop: [], temperature: 1, topP: 1, seed, affinity });

describe('RolloutServers', () => {
  it.each<ReloadMode>(['agentforge', 'sglang', 'lora'])('reloads through %s and then answers token-exact with the new version', async (mode) => {
    const rs = new RolloutServers({ servers: [{ url: `${a.url}/v1`, reload: mode }, { url: `${b.url}/v1`, reload: mode }], vocabSize: vocab });
    await rs.reload(dir1, 3);
    expect([a.policyVersion, b.policyVersion, rs.policyVersion]).toEqual([3, 3, 3]);
    const out = await rs.generate([req(1), req(2), req(3)]);
    const want = await ref.generate([req(1), req(2), req(3)]);
    out.forEach((g, i) => expect([g.tokens, g.policyVersion, g.finish]).toEqual([want[i].tokens, 3, want[i].finish]));
    out.forEach((g, i) => expect(g.logprobs).toEqual(want[i].logprobs.map((x) => expect.closeTo(x, 5))));
    expect(rs.handoffs).toEqual([{ version: 3, seconds: expect.any(Number) }]);
    expect(rs.drops).toEqual({});
  }, 60_000);

  it("'lora' reload with HF weights sends the LoRA trainer's adapter dir (peft format), else the save dir itself", async () => {
    // a vLLM-like endpoint on loopback: it refuses a path without adapter_config.json, as vLLM does
    const seen: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const { lora_path: path } = JSON.parse(body) as { lora_path: string };
        seen.push(path);
        const ok = req.url === '/v1/load_lora_adapter' && existsSync(join(path, 'adapter_config.json'));
        res.writeHead(ok ? 200 : 400).end(ok ? 'Success' : `No adapter found for ${path}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    const save = mkdtempSync(join(tmpdir(), 'af-lora-save-'));
    try {
      const rs = new RolloutServers({ servers: [{ url, reload: 'lora', weights: 'hf' }], vocabSize: vocab, hfDir: save });
      await expect(rs.reload(dir1, 1)).rejects.toThrow(/answered 400: No adapter found/); // a full fine-tune's save: no adapter
      mkdirSync(join(save, 'adapter'));
      writeFileSync(join(save, 'adapter', 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 16, lora_alpha: 32 }));
      await rs.reload(dir1, 2);
      expect(seen).toEqual([save, join(save, 'adapter')]);
      expect(rs.policyVersion).toBe(2);
    } finally {
      server.close();
      rmSync(save, { recursive: true, force: true });
    }
  });

  it('keeps an episode on one server (prefix cache) and spreads new ones', async () => {
    const rs = new RolloutServers({ servers: [{ url: `${a.url}/v1` }, { url: `${b.url}/v1` }], vocabSize: vocab });
    await rs.reload(dir1, 4);
    await Promise.all(Array.from({ length: 4 }, (_, i) => rs.generate([req(i, `ep${i}`)])));
    const before = [...rs.served];
    for (let k = 0; k < 3; k++) await rs.generate([req(k, 'ep0')]);
    const moved = rs.served.map((n, i) => n - before[i]);
    expect(moved.sort()).toEqual([0, 3]);
    expect(before.every((n) => n > 0)).toBe(true);
  }, 60_000);

  it.each<[Misbehaviour, string]>([['garbage', 'garbage'], ['bad_ids', 'garbage'], ['hang', 'timeout'], ['http_500', 'http_error'], ['wrong_version', 'wrong_version']])(
    'a server that answers %s: the request moves to a good server, the reason is counted; alone, the request fails', async (kind, reason) => {
      const bad = await badServer(kind, `${a.url}/v1`);
      try {
        await fetch(`${a.url}/v1/reload`, { method: 'POST', body: JSON.stringify({ dir: dir1, version: 5 }) });
        const rs = new RolloutServers({ servers: [{ url: bad.url }, { url: `${b.url}/v1` }], vocabSize: vocab, timeoutMs: 1500, cooldownMs: 60_000, policyVersion: 5 });
        await rs.reload(dir1, 5);
        const [g] = await rs.generate([req(7)]);
        const [want] = await ref.generate([req(7)]);
        expect([g.finish, g.tokens, g.policyVersion]).toEqual([want.finish, want.tokens, 5]);
        expect(bad.hits).toBe(1); // the least-loaded pick tried the bad server first
        expect(rs.drops).toEqual({ [reason]: 1 });

        const alone = new RolloutServers({ servers: [{ url: bad.url }], vocabSize: vocab, timeoutMs: 1500, policyVersion: 5 });
        const [f] = await alone.generate([req(7)]);
        expect(f.finish).toBe('error');
        expect(f.error).toContain(reason);
        expect(alone.failed).toBe(1);
      } finally {
        await bad.close();
      }
    }, 60_000);
});
