/*
 * onnxruntime-node engine over the exported model (model.onnx + meta.json, see test/fixtures/make_tiny_model.py
 * for the interface). Requests are decoded together in batches of up to `maxBatch`, left-padded: pad columns
 * get attention_mask 0, real tokens get position ids 0..len-1. Each step feeds the previous step's `present`
 * tensors back as `past`, so the KV cache is never copied; once more than half of a batch has finished, the
 * live rows are compacted (KV rows copied once) so finished sequences stop costing compute.
 * Finished sequences keep their KV in a prefix cache (prefix-cache.ts): a prompt that extends one (the next turn
 * of a rollout, or any prompt sharing a system prompt) starts from that KV as `past` and prefills only the rest.
 * A batch is then [past: left-padded cached prefixes | input: left-padded remainders | decoded tokens].
 * reload() builds a new session and swaps it in; a batch already running keeps the session it started with.
 */
import * as ort from 'onnxruntime-node';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sampleToken, seededRandom, validateRequest, type GenerateRequest, type GenerateResult, type InferenceEngine } from './engine.ts';
import { commonPrefix, PrefixCache, type KvLayout, type PrefixCacheStats, type PrefixHit } from './prefix-cache.ts';

export interface OnnxMeta {
  num_layers: number;
  num_kv_heads: number;
  head_dim: number;
  vocab_size: number;
  eos_token_ids: number[];
  pad_token_id: number;
  policy_version: number;
}

export interface OrtEngineOptions {
  maxBatch?: number;
  /** Prompt + generated tokens per sequence. */
  maxContext?: number;
  /** onnxruntime intra-op threads (0: onnxruntime's default, one per core). */
  intraOpThreads?: number;
  /**
   * Tokens of finished sequences' KV kept for prefix reuse (0: no cache; absent or null: defaultPrefixCacheTokens),
   * turned into bytes with the model's kvBytesPerToken.
   */
  prefixCacheTokens?: number | null;
  /** The cache's size in bytes instead (0: no cache); wins over prefixCacheTokens. */
  prefixCacheBytes?: number;
  /** 'cuda' runs the model on onnxruntime's CUDA execution provider (KV cache tensors stay in host memory). */
  device?: 'cpu' | 'cuda';
}

interface Loaded {
  session: ort.InferenceSession; meta: OnnxMeta; version: number; dir: string;
  /** generate() calls using this session; a replaced session is released when the last one ends. */
  active: number; retired: boolean;
  cache: PrefixCache | null;
}

/** One live sequence of a batch: `cached` prompt tokens came from the prefix cache, `fresh` were prefilled. */
interface Row { req: GenerateRequest; out: GenerateResult; rand: () => number; pos: number; done: boolean; index: number; cached: number; fresh: number }

/** Shortest prefix worth a warm-up prefill of its own (see OrtEngine.warm). */
const WARM_MIN = 16;

const layoutOf = (m: OnnxMeta): KvLayout => ({ layers: m.num_layers, kvHeads: m.num_kv_heads, headDim: m.head_dim });

/**
 * Bytes one token's KV takes in the prefix cache: layers × kv_heads × head_dim × 2 (key and value) × 4. The engine
 * feeds and keeps KV as float32 whatever the weights' dtype, so 4 bytes. SmolLM2-135M: 30 × 3 × 64 × 2 × 4 = 46,080.
 */
export const kvBytesPerToken = (m: Pick<OnnxMeta, 'num_layers' | 'num_kv_heads' | 'head_dim'>): number => m.num_layers * m.num_kv_heads * m.head_dim * 2 * 4;

/** Least memory the default prefix cache may take, whatever the model's size. */
const MIN_CACHE_BUDGET = 1 << 30;

/**
 * The default prefix-cache size in tokens: the whole conversation of every sequence a batch holds (maxBatch ×
 * maxContext), so each concurrent episode's next turn finds its previous one; but no more bytes than twice the
 * weights (at least 1 GiB): a machine that runs a model has memory on the order of its weights to spare, and the
 * bigger the model, the more KV per token. SmolLM2-135M (46 KB a token, a 652 MB fp32 export): about 28,000 tokens,
 * some 20 rollouts of 1,400 tokens where the old fixed 256 MB held 4; the 1M-parameter default model (512 bytes a
 * token): maxBatch × maxContext.
 */
export function defaultPrefixCacheTokens(meta: Pick<OnnxMeta, 'num_layers' | 'num_kv_heads' | 'head_dim'>, weightBytes: number, maxBatch: number, maxContext: number): number {
  const budget = Math.max(MIN_CACHE_BUDGET, 2 * weightBytes);
  return Math.min(maxBatch * maxContext, Math.floor(budget / kvBytesPerToken(meta)));
}

/** Bytes of an export's ONNX graph and its external weight files (model.onnx.data, model.onnx_data, *.data). */
export function weightBytes(dir: string): number {
  let n = 0;
  for (const f of readdirSync(dir)) if (/\.(onnx|onnx_data|data)$/.test(f)) n += statSync(join(dir, f)).size;
  return n;
}

/** What a loaded engine runs with, after defaults (for logs and tests). */
export interface OrtSettings { maxBatch: number; maxContext: number; intraOpThreads: number; prefixCacheTokens: number; prefixCacheBytes: number; device: 'cpu' | 'cuda' }

type ResolvedOptions = Omit<Required<OrtEngineOptions>, 'prefixCacheTokens' | 'prefixCacheBytes'> & { prefixCacheTokens: number | null | undefined; prefixCacheBytes: number | undefined };

export class OrtEngine implements InferenceEngine {
  readonly name = 'ort';
  private constructor(private loaded: Loaded, private readonly opts: ResolvedOptions) {}

  static async load(dir: string, opts: OrtEngineOptions = {}): Promise<OrtEngine> {
    const full: ResolvedOptions = { maxBatch: opts.maxBatch ?? 32, maxContext: opts.maxContext ?? 4096, intraOpThreads: opts.intraOpThreads ?? 0,
      prefixCacheTokens: opts.prefixCacheTokens, prefixCacheBytes: opts.prefixCacheBytes, device: opts.device ?? 'cpu' };
    return new OrtEngine(await loadDir(dir, undefined, full), full);
  }

  get policyVersion(): number { return this.loaded.version; }
  get meta(): OnnxMeta { return this.loaded.meta; }

  /** The settings of the current weights, after defaults. */
  get settings(): OrtSettings {
    const { maxBatch, maxContext, intraOpThreads, device } = this.opts;
    const bytes = this.loaded.cache?.maxBytes ?? 0;
    return { maxBatch, maxContext, intraOpThreads, device, prefixCacheBytes: bytes, prefixCacheTokens: Math.floor(bytes / kvBytesPerToken(this.loaded.meta)) };
  }

  /** Prefix-cache counters of the current weights (null without a cache). */
  get prefixCacheStats(): PrefixCacheStats | null { return this.loaded.cache?.stats ?? null; }

  async reload(dir: string, version?: number): Promise<void> {
    const next = await loadDir(dir, version, this.opts);
    const prev = this.loaded;
    this.loaded = next;
    prev.retired = true;
    if (prev.active === 0) await prev.session.release();
  }

  async close(): Promise<void> {
    this.loaded.retired = true;
    if (this.loaded.active === 0) await this.loaded.session.release();
  }

  async generate(reqs: GenerateRequest[], opts: { signal?: AbortSignal } = {}): Promise<GenerateResult[]> {
    const model = this.loaded;
    if (model.retired) throw new Error('OrtEngine: generate() after close()');
    reqs.forEach((r, i) => validateRequest(r, i, model.meta.vocab_size));
    const results: GenerateResult[] = new Array(reqs.length);
    // a prompt that already fills the context gets no tokens
    reqs.forEach((r, i) => {
      if (r.prompt.length >= this.opts.maxContext) results[i] = { tokens: [], logprobs: [], finish: 'context', policyVersion: model.version };
    });
    model.active++;
    try {
      if (model.cache) await this.warm(model, reqs.filter((_, i) => !results[i]).map((r) => r.prompt), opts.signal);
      const hits = reqs.map((r, i) => (results[i] || !model.cache ? null : model.cache.lookup(r.prompt)));
      const fresh = (i: number) => reqs[i].prompt.length - (hits[i]?.length ?? 0);
      // longest prefills together: less padding per batch
      const order = reqs.map((_, i) => i).filter((i) => !results[i]).sort((a, b) => fresh(b) - fresh(a));
      for (let s = 0; s < order.length; s += this.opts.maxBatch) {
        const idx = order.slice(s, s + this.opts.maxBatch);
        const outs = await this.runBatch(model, idx.map((i) => reqs[i]), idx.map((i) => hits[i]), opts.signal);
        idx.forEach((i, k) => (results[i] = outs[k]));
      }
    } finally {
      if (--model.active === 0 && model.retired) await model.session.release();
    }
    return results;
  }

  /**
   * Prompts that arrive together often share a prefix no finished sequence holds yet: a world's system prompt, or
   * a whole prompt (a GRPO group's samples). Prefilling such a prefix once, as its own row, lets the batch start
   * from it: first the prefixes shared by prompts that agree on their first WARM_MIN tokens, then whole prompts
   * asked for more than once. Last, a prompt with far more left to prefill than the others (a new world in a batch
   * of later turns) is prefilled alone, so the batch is not padded to its length.
   */
  private async warm(model: Loaded, prompts: number[][], signal?: AbortSignal): Promise<void> {
    const cache = model.cache!;
    const shared = (keyOf: (p: number[]) => string | null) => {
      const groups = new Map<string, number[][]>();
      for (const p of prompts) {
        const k = keyOf(p);
        if (k !== null) groups.set(k, [...(groups.get(k) ?? []), p]);
      }
      return [...groups.values()].filter((ps) => ps.length > 1).map((ps) => {
        const n = ps.reduce((m, p) => commonPrefix(p, ps[0], m), Math.min(...ps.map((p) => p.length)) - 1);
        return ps[0].slice(0, n);
      });
    };
    const outliers = () => {
      const fresh = prompts.map((p) => p.length - (cache.lookup(p, false)?.length ?? 0));
      const median = [...fresh].sort((a, b) => a - b)[fresh.length >> 1];
      return prompts.filter((_, i) => fresh[i] > 2 * median + WARM_MIN).map((p) => p.slice(0, -1));
    };
    const levels = [() => shared((p) => (p.length > WARM_MIN ? p.slice(0, WARM_MIN).join() : null)), () => shared((p) => p.join()), outliers];
    for (const level of levels) {
      const todo = level().map((prompt) => ({ prompt, hit: cache.lookup(prompt, false) })).filter((x) => x.prompt.length - (x.hit?.length ?? 0) >= WARM_MIN);
      for (let s = 0; s < todo.length; s += this.opts.maxBatch) {
        const batch = todo.slice(s, s + this.opts.maxBatch);
        await this.runBatch(model, batch.map(({ prompt }) => ({ prompt, maxTokens: 1, stop: [], temperature: 0, topP: 1, seed: 0 })), batch.map((x) => x.hit), signal);
      }
    }
  }

  private async runBatch(model: Loaded, reqs: GenerateRequest[], hits: (PrefixHit | null)[], signal?: AbortSignal): Promise<GenerateResult[]> {
    const { meta } = model;
    const layout = layoutOf(meta);
    const rows: Row[] = reqs.map((req, index) => {
      const cached = hits[index]?.length ?? 0;
      return { req, index, rand: seededRandom(req.seed), pos: req.prompt.length, done: false, cached, fresh: req.prompt.length - cached,
        out: { tokens: [], logprobs: [], finish: 'length', policyVersion: model.version } };
    });
    const pastW = Math.max(...rows.map((r) => r.cached));
    const width = Math.max(...rows.map((r) => r.fresh));
    // prefill: cached prefixes right-aligned in the past, the rest left-padded; pad columns are masked out
    const ids = new BigInt64Array(reqs.length * width).fill(BigInt(meta.pad_token_id));
    const pos = new BigInt64Array(reqs.length * width);
    let maskCols = pastW + width;
    const mask = new BigInt64Array(reqs.length * maskCols);
    rows.forEach((r, b) => {
      const pad = width - r.fresh;
      for (let j = 0; j < r.fresh; j++) {
        ids[b * width + pad + j] = BigInt(r.req.prompt[r.cached + j]);
        pos[b * width + pad + j] = BigInt(r.cached + j);
      }
      mask.fill(1n, b * maskCols + pastW - r.cached, b * maskCols + pastW);
      mask.fill(1n, b * maskCols + pastW + pad, (b + 1) * maskCols);
    });
    let live = rows;
    let maskData: BigInt64Array = mask;
    let past = pastW > 0 ? pastOf(hits, pastW, layout) : emptyPast(meta, reqs.length);
    let out = await model.session.run(feeds(ids, maskData, pos, live.length, width, maskCols, past, meta));
    // a row's own columns in the batch: its cached prefix, then its prefill and the tokens it was fed since
    const keep = (which: (r: Row) => boolean) => live.forEach((r, b) => {
      if (!model.cache || !which(r) || r.out.finish === 'context' || r.out.tokens.length === 0) return;
      const fed = r.out.tokens.length - 1;
      const segs: [number, number][] = [[pastW - r.cached, r.cached], [pastW + width - r.fresh, r.fresh + fed]];
      const kv = past.map((t) => PrefixCache.gather(t.data as Float32Array, b, t.dims[2], segs, layout));
      model.cache.insert(r.req.prompt.concat(r.out.tokens.slice(0, fed)), kv);
    });
    for (;;) {
      if (signal?.aborted) throw new Error('generate aborted');
      const logits = out.logits;
      const seqLen = logits.dims[1];
      this.sampleStep(logits.data as Float32Array, seqLen, meta, live);
      past = presentOf(out, meta);
      if (live.every((r) => r.done)) break;
      if (live.filter((r) => r.done).length * 2 > live.length) {
        keep((r) => r.done);
        ({ live, past, maskData } = compact(live, past, maskData, maskCols));
      }
      // decode step: one token per live row; finished rows (before compaction) feed pad and are ignored
      const n = live.length;
      const stepIds = new BigInt64Array(n);
      const stepPos = new BigInt64Array(n);
      const nextMask = new BigInt64Array(n * (maskCols + 1));
      live.forEach((r, b) => {
        stepIds[b] = BigInt(r.done ? meta.pad_token_id : r.out.tokens[r.out.tokens.length - 1]);
        stepPos[b] = BigInt(r.pos - 1);
        nextMask.set(maskData.subarray(b * maskCols, (b + 1) * maskCols), b * (maskCols + 1));
        nextMask[b * (maskCols + 1) + maskCols] = 1n;
      });
      maskCols += 1;
      maskData = nextMask;
      out = await model.session.run(feeds(stepIds, maskData, stepPos, n, 1, maskCols, past, meta));
    }
    keep(() => true);
    return rows.map((r) => r.out);
  }

  /** Samples the next token of every live row from the last logits position; marks finished rows. */
  private sampleStep(logits: Float32Array, seqLen: number, meta: OnnxMeta, live: Row[]): void {
    const V = meta.vocab_size;
    live.forEach((r, b) => {
      if (r.done) return;
      const { token, logprob } = sampleToken(logits, (b * seqLen + seqLen - 1) * V, V, r.req.temperature, r.req.topP, r.rand);
      r.out.tokens.push(token);
      r.out.logprobs.push(logprob);
      r.pos += 1;
      if (r.req.stop.includes(token)) { r.done = true; r.out.finish = 'stop'; }
      else if (r.out.tokens.length >= r.req.maxTokens) { r.done = true; r.out.finish = 'length'; }
      else if (r.pos >= this.opts.maxContext) { r.done = true; r.out.finish = 'context'; }
    });
  }
}

async function loadDir(dir: string, version: number | undefined, opts: ResolvedOptions): Promise<Loaded> {
  const threads = opts.intraOpThreads;
  let meta: OnnxMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as OnnxMeta;
  } catch (e) {
    throw new Error(`OrtEngine: cannot read ${join(dir, 'meta.json')} (is ${dir} an ONNX export?): ${(e as Error).message}`);
  }
  for (const k of ['num_layers', 'num_kv_heads', 'head_dim', 'vocab_size', 'pad_token_id'] as const) {
    if (!Number.isInteger(meta[k])) throw new Error(`OrtEngine: ${join(dir, 'meta.json')} field ${k} must be an integer`);
  }
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(join(dir, 'model.onnx'), {
      executionProviders: opts.device === 'cuda' ? ['cuda'] : ['cpu'], graphOptimizationLevel: 'all', ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
    });
  } catch (e) {
    if (opts.device !== 'cuda') throw e;
    throw new Error(`OrtEngine: cannot run ${join(dir, 'model.onnx')} on CUDA (${(e as Error).message.split('\n')[0]}); onnxruntime-node needs its CUDA ` +
      'build (npm install onnxruntime-node --onnxruntime-node-install-cuda, CUDA 12 + cuDNN 9 on the machine) and a GPU, or use device cpu');
  }
  const tokens = opts.prefixCacheTokens ?? defaultPrefixCacheTokens(meta, weightBytes(dir), opts.maxBatch, opts.maxContext);
  const cacheBytes = opts.prefixCacheBytes ?? tokens * kvBytesPerToken(meta);
  const cache = cacheBytes > 0 ? new PrefixCache(layoutOf(meta), cacheBytes) : null;
  return { session, meta, version: version ?? meta.policy_version ?? 0, dir, active: 0, retired: false, cache };
}

type Past = ort.Tensor[]; // [layer0.key, layer0.value, layer1.key, ...]

function emptyPast(meta: OnnxMeta, batch: number): Past {
  const dims = [batch, meta.num_kv_heads, 0, meta.head_dim];
  return Array.from({ length: 2 * meta.num_layers }, () => new ort.Tensor('float32', new Float32Array(0), dims));
}

/** Past tensors holding each row's cached prefix right-aligned in `width` columns (zeros where masked). */
function pastOf(hits: (PrefixHit | null)[], width: number, layout: KvLayout): Past {
  const { layers, kvHeads, headDim } = layout;
  const dims = [hits.length, kvHeads, width, headDim];
  return Array.from({ length: 2 * layers }, (_, t) => {
    const data = new Float32Array(hits.length * kvHeads * width * headDim);
    hits.forEach((h, b) => { if (h) PrefixCache.copyInto(data, t, b, width, h, layout); });
    return new ort.Tensor('float32', data, dims);
  });
}

function presentOf(out: ort.InferenceSession.OnnxValueMapType, meta: OnnxMeta): Past {
  const p: Past = [];
  for (let i = 0; i < meta.num_layers; i++) p.push(out[`present.${i}.key`] as ort.Tensor, out[`present.${i}.value`] as ort.Tensor);
  return p;
}

function feeds(ids: BigInt64Array, mask: BigInt64Array, pos: BigInt64Array, b: number, s: number, cols: number, past: Past, meta: OnnxMeta): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', ids, [b, s]),
    attention_mask: new ort.Tensor('int64', mask, [b, cols]),
    position_ids: new ort.Tensor('int64', pos, [b, s]),
  };
  for (let i = 0; i < meta.num_layers; i++) {
    f[`past_key_values.${i}.key`] = past[2 * i];
    f[`past_key_values.${i}.value`] = past[2 * i + 1];
  }
  return f;
}

/** Keeps only unfinished rows: copies their KV rows and mask rows into new, smaller tensors. */
function compact(live: Row[], past: Past, mask: BigInt64Array, cols: number): { live: Row[]; past: Past; maskData: BigInt64Array } {
  const keep = live.map((r, b) => (r.done ? -1 : b)).filter((b) => b >= 0);
  const newPast = past.map((t) => {
    const [, h, p, d] = t.dims;
    const stride = h * p * d;
    const src = t.data as Float32Array;
    const dst = new Float32Array(keep.length * stride);
    keep.forEach((b, k) => dst.set(src.subarray(b * stride, (b + 1) * stride), k * stride));
    return new ort.Tensor('float32', dst, [keep.length, h, p, d]);
  });
  const newMask = new BigInt64Array(keep.length * cols);
  keep.forEach((b, k) => newMask.set(mask.subarray(b * cols, (b + 1) * cols), k * cols));
  return { live: keep.map((b) => live[b]), past: newPast, maskData: newMask };
}
