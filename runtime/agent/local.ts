/*
 * A local policy: an inference engine over an ONNX export (model.onnx + meta.json + tokenizer files, as
 * export-onnx writes them), the tokenizer that renders its prompts, and the batcher that serves concurrent
 * episodes from one engine. Also the episode limits every operator that runs episodes takes as params.
 */
import { z } from 'zod';
import { loadChatTokenizer, type ChatTokenizer } from './tokenize.ts';
import { OrtEngine } from './engines/ort.ts';
import type { InferenceEngine } from './engines/engine.ts';
import { openWorld } from '../worlds/index.ts';
import type { World } from '../worlds/world.ts';
import { BatchingGenerator } from './batcher.ts';
import { DEFAULT_LIMITS, type RolloutLimits } from './loop.ts';

export const LimitParams = z.object({
  max_turns: z.number().int().min(1).default(DEFAULT_LIMITS.maxTurns),
  max_new_tokens: z.number().int().min(1).default(DEFAULT_LIMITS.maxNewTokens),
  max_context: z.number().int().min(16).default(DEFAULT_LIMITS.maxContext),
  max_repeats: z.number().int().min(2).default(DEFAULT_LIMITS.maxRepeats),
});
export type LimitParams = z.infer<typeof LimitParams>;
export const toLimits = (p: LimitParams): RolloutLimits =>
  ({ maxTurns: p.max_turns, maxNewTokens: p.max_new_tokens, maxContext: p.max_context, maxRepeats: p.max_repeats });

export interface Policy { engine: InferenceEngine; ct: ChatTokenizer; gen: BatchingGenerator }

export async function loadPolicy(dir: string, o: { maxBatch?: number; maxContext?: number; signal?: AbortSignal; chatTemplate?: string | null } = {}): Promise<Policy> {
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

