/*
 * The prefix cache alone (lookups, eviction, KV layout) and inside the ORT engine on a real exported model:
 * a second turn that extends the first decodes the same greedy tokens, with logprobs within float noise, whether
 * its prefix comes from the cache or is prefilled again.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { GenerateRequest } from '../../runtime/agent/engines/engine.ts';
import { OrtEngine } from '../../runtime/agent/engines/ort.ts';
import { PrefixCache, type KvLayout } from '../../runtime/agent/engines/prefix-cache.ts';
import { tinyOnnxModel } from '../fixtures/python.ts';
import { rng } from '../fixtures/conversations.ts';

const layout: KvLayout = { layers: 1, kvHeads: 2, headDim: 3 };
/** KV whose every float names its (array, head, position, dim), so copies can be checked exactly. */
const kvOf = (n: number, tag: number) => Array.from({ length: 2 }, (_, t) =>
  Float32Array.from({ length: 2 * n * 3 }, (_, i) => tag * 1e4 + t * 1e3 + Math.floor(i / (n * 3)) * 100 + Math.floor((i % (n * 3)) / 3) * 10 + (i % 3)));
const seq = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('PrefixCache', () => {
  it('finds the longest cached prefix, leaving at least one prompt token to prefill', () => {
    const c = new PrefixCache(layout, 1 << 20);
    c.insert(seq(20), kvOf(20, 1));
    expect(c.lookup(seq(30))?.length).toBe(20);
    expect(c.lookup(seq(20))?.length).toBe(19);
    expect(c.lookup(seq(13).concat([99, 98, 97]))?.length).toBe(13); // any prefix of a sequence's KV is usable
    expect(c.lookup(seq(5).concat(seq(20, 500)))).toBeNull(); // under the minimum reuse
    expect(c.lookup([1].concat(seq(30)))).toBeNull();
    c.insert(seq(40), kvOf(40, 2));
    const hit = c.lookup(seq(50))!;
    expect([hit.length, hit.seq.tokens.length]).toEqual([40, 40]);
    expect(c.stats).toMatchObject({ lookups: 6, hits: 4, reusedTokens: 20 + 19 + 13 + 40 });
    expect(c.lookup(seq(50), false)?.length).toBe(40);
    expect(c.stats.lookups).toBe(6);
  });

  it('evicts the least recently used sequences past its byte budget', () => {
    const bytesPer = 2 * 2 * 20 * 3 * 4;
    const c = new PrefixCache(layout, 2 * bytesPer);
    c.insert(seq(20, 0), kvOf(20, 1));
    c.insert(seq(20, 100), kvOf(20, 2));
    expect(c.lookup(seq(21, 0))).not.toBeNull(); // the first is now the most recent
    c.insert(seq(20, 200), kvOf(20, 3));
    expect(c.stats).toMatchObject({ sequences: 2, evicted: 1, bytes: 2 * bytesPer });
    expect(c.lookup(seq(21, 100))).toBeNull();
    expect(c.lookup(seq(21, 0))).not.toBeNull();
    expect(c.lookup(seq(21, 200))).not.toBeNull();
  });

  it('copies a prefix right-aligned into a past row and gathers a row back from column segments', () => {
    const c = new PrefixCache(layout, 1 << 20);
    c.insert(seq(10), kvOf(10, 1));
    const hit = c.lookup(seq(8).concat([77, 78]))!;
    expect(hit.length).toBe(8);
    const width = 12, B = 2;
    const past = new Float32Array(B * 2 * width * 3);
    PrefixCache.copyInto(past, 1, 1, width, hit, layout);
    const at = (b: number, h: number, col: number, d: number) => past[((b * 2 + h) * width + col) * 3 + d];
    expect(at(1, 1, 4, 2)).toBe(1e4 + 1e3 + 100 + 0 * 10 + 2); // position 0 of head 1 lands in column 12 − 8
    expect(at(1, 0, 11, 0)).toBe(1e4 + 1e3 + 7 * 10);
    expect(at(1, 0, 3, 0)).toBe(0);
    expect(at(0, 0, 11, 0)).toBe(0);
    const row = PrefixCache.gather(past, 1, width, [[4, 3], [9, 3]], layout);
    expect(Array.from(row.subarray(0, 9))).toEqual(Array.from(kvOf(10, 1)[1].subarray(0, 9)));
    expect(row[3 * 3]).toBe(1e4 + 1e3 + 5 * 10); // the second segment starts at position 5
    expect(row[6 * 3]).toBe(1e4 + 1e3 + 100); // head 1 follows all 6 positions of head 0
  });

  it('refuses KV of the wrong size', () => {
    const c = new PrefixCache(layout, 1 << 20);
    expect(() => c.insert(seq(10), kvOf(9, 1))).toThrow(/KV of 10 tokens must be 2 arrays of 60 floats/);
  });
});

describe('OrtEngine with a prefix cache', () => {
  let dir: string;
  beforeAll(async () => { dir = await tinyOnnxModel(0); }, 900_000);

  const greedy = (prompt: number[], maxTokens = 12): GenerateRequest => ({ prompt, maxTokens, stop: [], temperature: 0, topP: 1, seed: 0 });

  it('continues a conversation from cached KV with the tokens and logprobs of a full prefill', async () => {
    const r = rng(3);
    const system = Array.from({ length: 24 }, () => 7 + Math.floor(r() * 200));
    const users = Array.from({ length: 5 }, () => Array.from({ length: 3 + Math.floor(r() * 9) }, () => 7 + Math.floor(r() * 200)));
    const cached = await OrtEngine.load(dir, { maxBatch: 3 });
    const plain = await OrtEngine.load(dir, { maxBatch: 3, prefixCacheBytes: 0 });
    const turn1 = users.map((u) => greedy(system.concat(u)));
    const [a1, b1] = [await cached.generate(turn1), await plain.generate(turn1)];
    expect(a1.map((x) => x.tokens)).toEqual(b1.map((x) => x.tokens));
    // the five prompts share the system prompt: one warm-up row prefilled it, and every prompt started from it
    expect(cached.prefixCacheStats).toMatchObject({ lookups: 5, hits: 5, reusedTokens: 5 * 24 });
    const turn2 = users.map((u, i) => greedy(system.concat(u, a1[i].tokens, [9, 10, 11 + i])));
    const [a2, b2] = [await cached.generate(turn2), await plain.generate(turn2)];
    expect(a2.map((x) => x.tokens)).toEqual(b2.map((x) => x.tokens));
    a2.forEach((x, i) => x.logprobs.forEach((l, j) => expect(Math.abs(l - b2[i].logprobs[j]), `row ${i} token ${j}`).toBeLessThan(1e-4)));
    // turn 2 reused all of turn 1 but its last sampled token (never fed to the model) and prefilled 4 tokens
    const reused2 = turn2.reduce((n, q) => n + q.prompt.length - 4, 0);
    expect(cached.prefixCacheStats).toMatchObject({ lookups: 10, hits: 10, reusedTokens: 5 * 24 + reused2 });
    expect(plain.prefixCacheStats).toBeNull();
    await Promise.all([cached.close(), plain.close()]);
  }, 120_000);

  it('prefills a prompt with far more new tokens than its batch mates on its own, then decodes it with them', async () => {
    const r = rng(4);
    const words = (n: number) => Array.from({ length: n }, () => 7 + Math.floor(r() * 200));
    const cached = await OrtEngine.load(dir, { maxBatch: 8 });
    const plain = await OrtEngine.load(dir, { maxBatch: 8, prefixCacheBytes: 0 });
    const firsts = Array.from({ length: 4 }, () => words(30));
    const t1 = await cached.generate(firsts.map((p) => greedy(p, 6)));
    const next = firsts.map((p, i) => p.concat(t1[i].tokens, words(3))).concat([words(70)]);
    const before = cached.prefixCacheStats!;
    const [a, b] = [await cached.generate(next.map((p) => greedy(p, 6))), await plain.generate(next.map((p) => greedy(p, 6)))];
    expect(a.map((x) => x.tokens)).toEqual(b.map((x) => x.tokens));
    const after = cached.prefixCacheStats!;
    // every prompt, the new 70-token one too, started from the cache: the batch prefilled a few tokens per row
    expect(after.hits - before.hits).toBe(5);
    expect(after.reusedTokens - before.reusedTokens).toBe(next.reduce((n, p) => n + p.length, 0) - 4 * 4 - 1);
    await Promise.all([cached.close(), plain.close()]);
  }, 120_000);

  it('starts an empty cache when new weights are loaded', async () => {
    const e = await OrtEngine.load(dir, { maxBatch: 4 });
    const p = Array.from({ length: 30 }, (_, i) => 7 + i);
    await e.generate([greedy(p, 4)]);
    await e.generate([greedy(p.concat([50, 51]), 4)]);
    expect(e.prefixCacheStats).toMatchObject({ lookups: 2, hits: 1 });
    await e.reload(await tinyOnnxModel(1));
    await e.generate([greedy(p.concat([50, 51]), 4)]);
    expect(e.prefixCacheStats).toMatchObject({ lookups: 1, hits: 0 });
    await e.close();
  }, 120_000);
});
