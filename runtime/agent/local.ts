/*
 * A local policy: an inference engine over an ONNX export (model.onnx + meta.json + tokenizer files, as
 * export-onnx writes them), the tokenizer that renders its prompts, and the batcher that serves concurrent
 * episodes from one engine. Also the episode limits every operator that runs episodes takes as params.
 */
import { z } from 'zod';
import { loadChatTokenizer, type ChatTokenizer } from './tokenize.ts';
import { OrtEngine } from './engines/ort.ts';
import type { GenerateRequest, InferenceEngine } from './engines/engine.ts';
import { openWorld } from '../worlds/index.ts';
import type { World } from '../worlds/world.ts';
import { BatchingGenerator } from './batcher.ts';
import { RolloutServers, type RolloutServerSpec } from './engines/rollout-servers.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LIMITS, type Generator, type RolloutLimits } from './loop.ts';

export const LimitParams = z.object({
  max_turns: z.number().int().min(1).default(DEFAULT_LIMITS.maxTurns),
  max_new_tokens: z.number().int().min(1).default(DEFAULT_LIMITS.maxNewTokens),
  /** Prompt + generation tokens; null = the model's own context (modelContext), a number caps it. */
  max_context: z.number().int().min(16).nullable().default(null),
  max_repeats: z.number().int().min(2).default(DEFAULT_LIMITS.maxRepeats),
});
export type LimitParams = z.infer<typeof LimitParams>;
/** The rollout limits; `modelContext` is what a null max_context means (the loaded policy's `maxContext`). */
export const toLimits = (p: LimitParams, modelContext: number = DEFAULT_LIMITS.maxContext): RolloutLimits =>
  ({ maxTurns: p.max_turns, maxNewTokens: p.max_new_tokens, maxContext: p.max_context ?? modelContext, maxRepeats: p.max_repeats });

/**
 * How the in-process engine (OrtEngine) runs, as `engine` params of every operator that runs a local policy.
 * Neither changes what is generated, only how fast.
 */
export const EngineParams = z.object({
  /**
   * onnxruntime intra-op threads; 0 = onnxruntime's default (one per core). On a machine other processes share, 1
   * can be faster than 2 (issue 20: 2 threads ran slower than 1 on a busy 2-core machine).
   */
  threads: z.number().int().min(0).default(0),
  /**
   * Prefix cache (finished sequences' KV, reused by the next turn of a rollout) in tokens, turned into bytes with
   * the model's KV size per token (engines/ort.ts kvBytesPerToken); 0 = no cache; null = a default that scales with
   * the model and the batch (engines/ort.ts defaultPrefixCacheTokens).
   */
  prefix_cache_tokens: z.number().int().min(0).nullable().default(null),
});
export type EngineParams = z.infer<typeof EngineParams>;
export const DEFAULT_ENGINE: EngineParams = EngineParams.parse({});

export interface Policy {
  engine: InferenceEngine; ct: ChatTokenizer; gen: Generator;
  /** The context the policy runs with: the cap asked for, else the model's own (modelContext), else 2,048. */
  maxContext: number;
}

export interface PolicyOptions {
  maxBatch?: number;
  /** Prompt + generation tokens; absent or null: the model's own context (modelContext). */
  maxContext?: number | null;
  engine?: EngineParams;
  signal?: AbortSignal;
  chatTemplate?: string | null;
  /** How the model writes tool calls (tool-formats.ts); absent or null: the one its chat template renders. */
  toolCallFormat?: string | null;
  /**
   * Rollout servers (agentforge serve, vLLM, SGLang) to generate on instead of an in-process OrtEngine. They are
   * told to load `dir` first, so every server starts from the same version.
   */
  servers?: RolloutServerSpec[];
  /** Per-request timeout on a rollout server (ms). */
  serverTimeoutMs?: number;
  /** HF directory of the policy, for rollout servers that load HF weights (SGLang, vLLM). */
  hfDir?: string;
}

/** Config keys that hold a model's context length, by architecture family (the first present wins). */
const CONTEXT_KEYS = ['max_position_embeddings', 'n_positions', 'max_sequence_length', 'seq_length', 'n_ctx'];

/**
 * The context length a model was built for: meta.json's `max_position_embeddings` when the export records it,
 * else config.json's (also a multimodal config's `text_config`), else null. Where the number comes from is named,
 * for error messages.
 */
export function modelContext(dir: string): { tokens: number; from: string } | null {
  for (const file of ['meta.json', 'config.json']) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    let cfg: Record<string, unknown>;
    try { cfg = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>; } catch (e) {
      throw new Error(`cannot read ${path}: ${(e as Error).message}`);
    }
    for (const c of [cfg, cfg.text_config as Record<string, unknown> | undefined]) {
      if (!c || typeof c !== 'object') continue;
      const key = CONTEXT_KEYS.find((k) => c[k] !== undefined && c[k] !== null);
      if (key === undefined) continue;
      const v = c[key];
      if (!Number.isInteger(v) || (v as number) < 16) throw new Error(`${path}: ${key} must be an integer >= 16, got ${JSON.stringify(v)}`);
      return { tokens: v as number, from: `${file} ${c === cfg ? '' : 'text_config.'}${key}` };
    }
  }
  return null;
}

/** The context a policy from `dir` runs with: `cap` when given, else the model's own, else DEFAULT_LIMITS' 2,048. */
export function policyContext(dir: string, cap?: number | null): number {
  return cap ?? modelContext(dir)?.tokens ?? DEFAULT_LIMITS.maxContext;
}

/** The policy version an export records in meta.json (export-onnx and the RL trainer write it). */
export function exportVersion(dir: string): number {
  let v: unknown;
  try { v = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).policy_version; } catch (e) {
    throw new Error(`cannot read ${join(dir, 'meta.json')} (is ${dir} an ONNX export?): ${(e as Error).message}`);
  }
  if (!Number.isInteger(v)) throw new Error(`${join(dir, 'meta.json')}: policy_version must be an integer, got ${JSON.stringify(v)}`);
  return v as number;
}

export async function loadPolicy(dir: string, o: PolicyOptions = {}): Promise<Policy> {
  const maxContext = policyContext(dir, o.maxContext);
  if (o.servers?.length) {
    const vocab = Number(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).vocab_size);
    const version = exportVersion(dir);
    const engine = new RolloutServers({ servers: o.servers, vocabSize: vocab, policyVersion: version, timeoutMs: o.serverTimeoutMs, hfDir: o.hfDir });
    await engine.reload(dir, version);
    // each request goes out on its own: the servers batch across clients, and a batcher here would hold every
    // request back until the slowest of the previous batch is answered
    const gen = { get policyVersion() { return engine.policyVersion; }, generate: async (req: GenerateRequest) => (await engine.generate([req], { signal: o.signal }))[0] };
    return { engine, ct: loadChatTokenizer(dir, { chatTemplate: o.chatTemplate ?? undefined, toolCallFormat: o.toolCallFormat }), gen, maxContext };
  }
  const ct = loadChatTokenizer(dir, { chatTemplate: o.chatTemplate ?? undefined, toolCallFormat: o.toolCallFormat });
  const e = o.engine ?? DEFAULT_ENGINE;
  const engine = await OrtEngine.load(dir, { maxBatch: o.maxBatch ?? 32, maxContext, intraOpThreads: e.threads, prefixCacheTokens: e.prefix_cache_tokens });
  return { engine, ct, gen: new BatchingGenerator(engine, o.maxBatch ?? 32, o.signal), maxContext };
}

/** One line for an operator's log: what a loaded policy runs with. */
export function describePolicy(dir: string, p: Policy): string {
  const from = modelContext(dir);
  const ctx = `context ${p.maxContext}${from ? ` (model: ${from.tokens}, ${from.from})` : ''}`;
  const head = `policy ${dir}: ${ctx}, tool calls as ${p.ct.toolCallFormat}`;
  if (!(p.engine instanceof OrtEngine)) return `${head}, on ${p.engine.name}`;
  const s = p.engine.settings;
  return `${head}, threads ${s.intraOpThreads || 'onnxruntime default'}, prefix cache ${s.prefixCacheTokens} tokens (${(s.prefixCacheBytes / 2 ** 20).toFixed(0)} MiB)`;
}

/** A world factory that hands each concurrent rollout its own instance (worlds are stateful). */
export function worldPool(): { get(name: string): World; put(w: World): void } {
  const free = new Map<string, World[]>();
  return {
    get: (name) => free.get(name)?.pop() ?? openWorld(name),
    put: (w) => { if (!free.has(w.name)) free.set(w.name, []); free.get(w.name)!.push(w); },
  };
}

