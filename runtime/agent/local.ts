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
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LIMITS, type Generator, type RolloutLimits } from './loop.ts';

export const LimitParams = z.object({
  max_turns: z.number().int().min(1).default(DEFAULT_LIMITS.maxTurns),
  max_new_tokens: z.number().int().min(1).default(DEFAULT_LIMITS.maxNewTokens),
  max_context: z.number().int().min(16).default(DEFAULT_LIMITS.maxContext),
  max_repeats: z.number().int().min(2).default(DEFAULT_LIMITS.maxRepeats),
});
export type LimitParams = z.infer<typeof LimitParams>;
export const toLimits = (p: LimitParams): RolloutLimits =>
  ({ maxTurns: p.max_turns, maxNewTokens: p.max_new_tokens, maxContext: p.max_context, maxRepeats: p.max_repeats });

export interface Policy { engine: InferenceEngine; ct: ChatTokenizer; gen: Generator }

export interface PolicyOptions {
  maxBatch?: number;
  maxContext?: number;
  signal?: AbortSignal;
  chatTemplate?: string | null;
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
  if (o.servers?.length) {
    const vocab = Number(JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')).vocab_size);
    const version = exportVersion(dir);
    const engine = new RolloutServers({ servers: o.servers, vocabSize: vocab, policyVersion: version, timeoutMs: o.serverTimeoutMs, hfDir: o.hfDir });
    await engine.reload(dir, version);
    // each request goes out on its own: the servers batch across clients, and a batcher here would hold every
    // request back until the slowest of the previous batch is answered
    const gen = { get policyVersion() { return engine.policyVersion; }, generate: async (req: GenerateRequest) => (await engine.generate([req], { signal: o.signal }))[0] };
    return { engine, ct: loadChatTokenizer(dir, { chatTemplate: o.chatTemplate ?? undefined }), gen };
  }
  const engine = await OrtEngine.load(dir, { maxBatch: o.maxBatch ?? 32, maxContext: o.maxContext ?? DEFAULT_LIMITS.maxContext });
  return { engine, ct: loadChatTokenizer(dir, { chatTemplate: o.chatTemplate ?? undefined }), gen: new BatchingGenerator(engine, o.maxBatch ?? 32, o.signal) };
}

/** A world factory that hands each concurrent rollout its own instance (worlds are stateful). */
export function worldPool(): { get(name: string): World; put(w: World): void } {
  const free = new Map<string, World[]>();
  return {
    get: (name) => free.get(name)?.pop() ?? openWorld(name),
    put: (w) => { if (!free.has(w.name)) free.set(w.name, []); free.get(w.name)!.push(w); },
  };
}

