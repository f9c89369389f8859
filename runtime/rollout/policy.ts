/*
 * A policy to roll out: an inference engine over an ONNX export (model.onnx + meta.json + tokenizer files, as
 * export-onnx writes them) and the tokenizer that renders its prompts. `rolloutTasks` is the one place where
 * tasks become scored rollout groups, shared by the rollout, evaluate and train-rl operators.
 */
import { z } from 'zod';
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { loadChatTokenizer, type ChatTokenizer } from '../agent/tokenize.ts';
import { OrtEngine } from '../engines/ort.ts';
import type { InferenceEngine } from '../engines/engine.ts';
import { getWorld } from '../worlds/index.ts';
import { scriptedUser } from '../synth/scripted.ts';
import type { World } from '../worlds/world.ts';
import { BatchingGenerator } from './batcher.ts';
import { DEFAULT_LIMITS, runRollout, type RolloutLimits, type Sampling } from './agent-loop.ts';
import { runGroups, type GroupOptions } from './groups.ts';
import { scoreRollout, RewardParams } from '../rewards/mix.ts';

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

export async function loadPolicy(dir: string, o: { maxBatch?: number; maxContext?: number; signal?: AbortSignal } = {}): Promise<Policy> {
  const engine = await OrtEngine.load(dir, { maxBatch: o.maxBatch ?? 32, maxContext: o.maxContext ?? DEFAULT_LIMITS.maxContext });
  return { engine, ct: loadChatTokenizer(dir), gen: new BatchingGenerator(engine, o.maxBatch ?? 32, o.signal) };
}

/** A world factory that hands each concurrent rollout its own instance (worlds are stateful). */
export function worldPool(): { get(name: string): World; put(w: World): void } {
  const free = new Map<string, World[]>();
  return {
    get: (name) => free.get(name)?.pop() ?? getWorld(name),
    put: (w) => { if (!free.has(w.name)) free.set(w.name, []); free.get(w.name)!.push(w); },
  };
}

export interface RolloutTasksOptions {
  policy: Pick<Policy, 'ct' | 'gen'>;
  limits: RolloutLimits;
  sampling: Sampling;
  rewards: RewardParams;
  groupSize: number;
  concurrency: number;
  step: number;
  seed: number;
  signal?: AbortSignal;
  /** Wraps the world a rollout gets (tests inject failing worlds). */
  world?: (task: Task) => World;
}

/** GroupOptions that run one agent loop per job and score it with the mixed reward. */
export function groupOptions(o: RolloutTasksOptions): GroupOptions {
  const pool = worldPool();
  return {
    step: o.step, seed: o.seed, groupSize: o.groupSize, concurrency: o.concurrency, signal: o.signal,
    score: (r, task) => scoreRollout(r, task, o.rewards),
    run: async (job) => {
      const world = o.world ? o.world(job.task) : pool.get(job.task.world);
      try {
        return await runRollout(job, { world, user: scriptedUser(job.task), gen: o.policy.gen, ct: o.policy.ct, limits: o.limits, sampling: o.sampling, signal: o.signal });
      } finally {
        if (!o.world) pool.put(world);
      }
    },
  };
}

export function rolloutTasks(tasks: Task[], o: RolloutTasksOptions): Promise<Rollout[][]> {
  return runGroups(tasks, groupOptions(o));
}
