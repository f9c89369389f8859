/*
 * One interface for every inference engine: token ids in, sampled ids + per-token logprobs out.
 * Engines never see text; the agent loop (runtime/agent/tokenize.ts ChatTokens) owns tokenization, so what the
 * trainer later scores is exactly what the engine produced (token-in/token-out).
 *
 * Logprob convention (all engines): log-probability of the sampled token under the temperature-scaled
 * distribution softmax(logits / T) over the full vocabulary, before top-p truncation; with T = 0 (greedy) it is
 * the untempered softmax(logits). This is the distribution an RL trainer recomputes from the same logits, so
 * importance ratios need no knowledge of top-p.
 */

import { samplingStream } from '../../engine/rng.ts';

export interface GenerateRequest {
  prompt: number[];
  maxTokens: number;
  /** Generation ends after emitting any of these ids (the stop id is included in `tokens`). */
  stop: number[];
  /** 0 = greedy. */
  temperature: number;
  topP: number;
  seed: number;
  /** Requests with the same affinity (an episode's id) go to the same rollout server, so its prefix cache hits. */
  affinity?: string;
}

/** stop: emitted a stop id · length: hit maxTokens · context: hit the engine's context limit · error: see `error`. */
export type EngineFinish = 'stop' | 'length' | 'context' | 'error';

export interface GenerateResult {
  tokens: number[];
  logprobs: number[];
  finish: EngineFinish;
  /** The policy version whose weights produced these tokens. */
  policyVersion: number;
  error?: string;
  /** True when the server returned text only and `tokens` were re-derived by tokenizing it (not token-exact). */
  retokenized?: boolean;
}

export interface InferenceEngine {
  readonly name: string;
  readonly policyVersion: number;
  generate(reqs: GenerateRequest[], opts?: { signal?: AbortSignal }): Promise<GenerateResult[]>;
  /** Swaps in new weights; requests already running finish on the old ones. */
  reload(dir: string, version?: number): Promise<void>;
  close(): Promise<void>;
}

export function validateRequest(r: GenerateRequest, i: number, vocabSize?: number): void {
  const where = `generate request ${i}`;
  if (!Array.isArray(r.prompt) || r.prompt.length === 0) throw new Error(`${where}: prompt must be a non-empty array of token ids`);
  if (vocabSize !== undefined) {
    const bad = r.prompt.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocabSize);
    if (bad >= 0) throw new Error(`${where}: prompt[${bad}] = ${r.prompt[bad]} is not a token id in [0, ${vocabSize})`);
  }
  if (!Number.isInteger(r.maxTokens) || r.maxTokens < 1) throw new Error(`${where}: maxTokens must be a positive integer`);
  if (!(r.temperature >= 0)) throw new Error(`${where}: temperature must be >= 0`);
  if (!(r.topP > 0 && r.topP <= 1)) throw new Error(`${where}: topP must be in (0, 1]`);
}

/** Seeded uniform [0,1) generator (mulberry32): one per sequence, so a request's samples ignore batch mates. */
export const seededRandom = samplingStream;

/**
 * Samples one token from logits[offset, offset + vocab). Greedy when temperature is 0 (ties → lowest id, as
 * torch.argmax). Top-p keeps the smallest set of most likely tokens whose mass reaches topP.
 */
export function sampleToken(
  logits: Float32Array, offset: number, vocab: number, temperature: number, topP: number, rand: () => number,
): { token: number; logprob: number } {
  const t = temperature > 0 ? temperature : 1;
  let max = -Infinity;
  let argmax = 0;
  for (let v = 0; v < vocab; v++) {
    const x = logits[offset + v];
    if (x > max) { max = x; argmax = v; }
  }
  // each exp once: sampling walks the same values the normaliser summed (half the time of a decode step's sampling)
  const e = expScratch(vocab);
  let z = 0;
  for (let v = 0; v < vocab; v++) z += (e[v] = Math.exp((logits[offset + v] - max) / t));
  const logZ = Math.log(z);
  const logprobOf = (tok: number) => (logits[offset + tok] - max) / t - logZ;
  if (temperature <= 0) return { token: argmax, logprob: logprobOf(argmax) };
  const token = topP < 1 ? sampleTopP(e, vocab, z, topP, rand) : sampleFull(e, vocab, z, rand);
  return { token, logprob: logprobOf(token) };
}

let scratch = new Float64Array(0);
function expScratch(n: number): Float64Array {
  if (scratch.length < n) scratch = new Float64Array(n);
  return scratch;
}

function sampleFull(e: Float64Array, vocab: number, z: number, rand: () => number): number {
  let u = rand() * z;
  for (let v = 0; v < vocab; v++) {
    u -= e[v];
    if (u <= 0) return v;
  }
  return vocab - 1;
}

function sampleTopP(e: Float64Array, vocab: number, z: number, topP: number, rand: () => number): number {
  const probs = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) probs[v] = e[v] / z;
  const order = Array.from({ length: vocab }, (_, v) => v).sort((a, b) => probs[b] - probs[a] || a - b);
  let mass = 0;
  let k = 0;
  while (k < vocab && mass < topP) mass += probs[order[k++]];
  let u = rand() * mass;
  for (let i = 0; i < k; i++) {
    u -= probs[order[i]];
    if (u <= 0) return order[i];
  }
  return order[k - 1];
}
