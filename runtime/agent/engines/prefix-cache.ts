/*
 * KV of finished sequences, kept so that a later prompt that starts with one of them prefills only the rest.
 * A multi-turn rollout's next prompt is its previous prompt + the generated tokens + the tool result, and every
 * prompt of a world opens with the same system prompt, so most of a turn's prefill is KV the engine already had
 * (on the klear default a prefill of the whole prompt was ~60 % of a turn's generate time).
 *
 * Sequences are found by chained hashes of their BLOCK-token blocks: a prompt's longest run of known blocks names
 * the newest sequence sharing that prefix, and the usable length is then the exact common prefix with it (any
 * prefix of a causal model's KV is the KV of that prefix). Least recently used sequences go first past `maxBytes`.
 * One cache per set of weights: a reload starts an empty one.
 */

export interface KvLayout { layers: number; kvHeads: number; headDim: number }

/** One sequence: its tokens and, per layer, key then value as [kvHeads, tokens, headDim]. */
export interface CachedSeq { tokens: Int32Array; kv: Float32Array[]; bytes: number; keys: number[] }

export interface PrefixHit { seq: CachedSeq; length: number }

/** `evicted`: dropped for room (least recently used); `superseded`: dropped because a newer sequence extends it. */
export interface PrefixCacheStats { lookups: number; hits: number; reusedTokens: number; promptTokens: number; sequences: number; bytes: number; evicted: number; superseded: number }

const BLOCK = 8;

/** How many leading tokens a and b share, at most `max`. */
export function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>, max: number): number {
  let n = 0;
  while (n < max && a[n] === b[n]) n++;
  return n;
}

function blockHashes(tokens: ArrayLike<number>, upTo: number): number[] {
  const out: number[] = [];
  let h = 0x811c9dc5;
  for (let b = 0; (b + 1) * BLOCK <= upTo; b++) {
    for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
      h = Math.imul(h ^ tokens[i], 0x01000193);
      h ^= h >>> 15;
    }
    out.push(h >>> 0);
  }
  return out;
}

export class PrefixCache {
  private byBlock = new Map<number, CachedSeq>();
  /** Insertion order = recency (a hit moves a sequence to the end). */
  private seqs = new Set<CachedSeq>();
  private bytes = 0;
  private counts = { lookups: 0, hits: 0, reusedTokens: 0, promptTokens: 0, evicted: 0, superseded: 0 };

  constructor(readonly layout: KvLayout, readonly maxBytes: number, readonly minReuse = BLOCK) {}

  get stats(): PrefixCacheStats { return { ...this.counts, sequences: this.seqs.size, bytes: this.bytes }; }

  /**
   * The longest cached prefix of `prompt` that still leaves one token to prefill (the logits come from it).
   * `use: false` only looks (no counters, no recency).
   */
  lookup(prompt: readonly number[], use = true): PrefixHit | null {
    if (use) {
      this.counts.lookups++;
      this.counts.promptTokens += prompt.length;
    }
    const limit = prompt.length - 1;
    let seq: CachedSeq | undefined;
    for (const h of blockHashes(prompt, limit)) {
      const s = this.byBlock.get(h);
      if (!s) break;
      seq = s;
    }
    if (!seq) return null;
    const n = commonPrefix(seq.tokens, prompt, Math.min(limit, seq.tokens.length));
    if (n < this.minReuse) return null;
    if (!use) return { seq, length: n };
    this.seqs.delete(seq);
    this.seqs.add(seq);
    this.counts.hits++;
    this.counts.reusedTokens += n;
    return { seq, length: n };
  }

  /** Keeps a sequence's KV (`kv` per layer key, value as [kvHeads, tokens.length, headDim]; taken, not copied). */
  insert(tokens: readonly number[], kv: Float32Array[]): void {
    const { layers, kvHeads, headDim } = this.layout;
    if (kv.length !== 2 * layers || kv.some((a) => a.length !== kvHeads * tokens.length * headDim)) {
      throw new Error(`PrefixCache.insert: KV of ${tokens.length} tokens must be ${2 * layers} arrays of ${kvHeads * tokens.length * headDim} floats`);
    }
    const bytes = kv.reduce((s, a) => s + a.byteLength, 0);
    if (tokens.length < this.minReuse + 1 || bytes > this.maxBytes) return;
    const seq: CachedSeq = { tokens: Int32Array.from(tokens), kv, bytes, keys: blockHashes(tokens, tokens.length) };
    const before = new Set<CachedSeq>();
    for (const h of seq.keys) {
      const prev = this.byBlock.get(h);
      if (prev) before.add(prev);
      this.byBlock.set(h, seq);
    }
    this.seqs.add(seq);
    this.bytes += bytes;
    // a sequence none of whose blocks names it any more can never be found again (the next turn of a rollout
    // extends its previous turn): dropping it now keeps the budget for sequences that can still hit, so a cache
    // sized in tokens holds about one sequence per live episode instead of one per turn
    for (const prev of before) if (!prev.keys.some((h) => this.byBlock.get(h) === prev)) this.evict(prev, 'superseded');
    for (const old of this.seqs) {
      if (this.bytes <= this.maxBytes) break;
      this.evict(old, 'evicted');
    }
  }

  private evict(seq: CachedSeq, why: 'evicted' | 'superseded') {
    this.seqs.delete(seq);
    this.bytes -= seq.bytes;
    this.counts[why]++;
    for (const h of seq.keys) if (this.byBlock.get(h) === seq) this.byBlock.delete(h);
  }

  /**
   * Writes `length` cached tokens of `seq` right-aligned into row `row` of a past tensor [B, kvHeads, width,
   * headDim] (`dst`: one layer's key or value, index `t` of the 2·layers arrays).
   */
  static copyInto(dst: Float32Array, t: number, row: number, width: number, hit: PrefixHit, layout: KvLayout): void {
    const { kvHeads: H, headDim: D } = layout;
    const src = hit.seq.kv[t], L = hit.seq.tokens.length, n = hit.length;
    for (let h = 0; h < H; h++) {
      dst.set(src.subarray(h * L * D, (h * L + n) * D), ((row * H + h) * width + width - n) * D);
    }
  }

  /**
   * Gathers one row's KV out of a present tensor [B, kvHeads, cols, headDim] from column segments [start, length]
   * (in order), as this cache stores it.
   */
  static gather(src: Float32Array, row: number, cols: number, segments: [number, number][], layout: KvLayout): Float32Array {
    const { kvHeads: H, headDim: D } = layout;
    const L = segments.reduce((s, [, n]) => s + n, 0);
    const out = new Float32Array(H * L * D);
    for (let h = 0; h < H; h++) {
      let at = h * L * D;
      for (const [start, n] of segments) {
        const from = ((row * H + h) * cols + start) * D;
        out.set(src.subarray(from, from + n * D), at);
        at += n * D;
      }
    }
    return out;
  }
}
