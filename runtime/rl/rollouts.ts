/*
 * `rolloutTasks` is the one place where tasks become scored rollout groups, shared by the rollout, evaluate and
 * train-rl operators.
 */
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { scriptedUser } from '../agent/scripted.ts';
import type { World } from '../worlds/world.ts';
import { runRollout, type Generator, type RolloutLimits, type Sampling } from '../agent/loop.ts';
import type { ToolLatency } from '../worlds/latency.ts';
import { worldPool, type Policy } from '../agent/local.ts';
import { runGroups, type GroupOptions } from './groups.ts';
import { scoreRollout, RewardParams } from '../rewards/mix.ts';
import { withExecOutcome } from '../rewards/components.ts';

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
  latency?: ToolLatency;
  /**
   * Called once per finished rollout with the policy version of each of its turns (a partial rollout, one that
   * crossed a weight reload, has several) and how many tokens each turn generated.
   */
  onVersions?: (rolloutId: string, turns: Array<{ version: number; tokens: number }>) => void;
}

/** The policy's generator for one rollout: its requests stick to one rollout server, and each turn's version is kept. */
function recording(gen: Generator, affinity: string, turns: Array<{ version: number; tokens: number }>): Generator {
  return {
    get policyVersion() { return gen.policyVersion; },
    async generate(req) {
      const r = await gen.generate({ ...req, affinity });
      turns.push({ version: r.policyVersion, tokens: r.tokens.length });
      return r;
    },
  };
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
        const turns: Array<{ version: number; tokens: number }> = [];
        const gen = o.onVersions ? recording(o.policy.gen, job.id, turns) : o.policy.gen;
        const r = await runRollout(job, { world, user: scriptedUser(job.task), gen, ct: o.policy.ct, limits: o.limits, sampling: o.sampling, latency: o.latency, signal: o.signal });
        o.onVersions?.(job.id, turns);
        return await withExecOutcome(r, job.task, o.signal); // code/repo: hidden tests in the sandbox
      } finally {
        if (!o.world) pool.put(world);
      }
    },
  };
}

export function rolloutTasks(tasks: Task[], o: RolloutTasksOptions): Promise<Rollout[][]> {
  return runGroups(tasks, groupOptions(o));
}
