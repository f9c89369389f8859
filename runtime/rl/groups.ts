/*
 * Group sampling: G rollouts per task (a group), many groups at once through a p-queue, and dynamic sampling
 * (DAPO, Yu et al. 2025): a group whose rewards are all equal carries no GRPO advantage, so it is set aside and
 * more tasks are drawn until the batch has `groups` informative groups or `maxGroups` have been tried.
 */
import { setMaxListeners } from 'node:events';
import PQueue from 'p-queue';
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { derive } from '../engine/rng.ts';

export const groupId = (step: number, taskId: string): string => `s${step}:${taskId}`;
export const rolloutId = (step: number, taskId: string, sample: number): string => `s${step}:${taskId}:g${sample}`;

/** Seed of one sample: a function of (base seed, step, task, sample), so a rerun samples the same (31 bits: an INTEGER column). */
export const sampleSeed = (seed: number, step: number, taskId: string, sample: number): number =>
  derive('rollout', seed, step, taskId, sample) >>> 1;

export type RunOne = (job: { task: Task; id: string; groupId: string; sample: number; seed: number; step: number }) => Promise<Rollout>;
export type Score = (rollout: Rollout, task: Task) => Rollout;

export interface GroupOptions {
  step: number;
  seed: number;
  groupSize: number;
  concurrency: number;
  run: RunOne;
  score: Score;
  signal?: AbortSignal;
}

/** G scored rollouts of each task (or samples [from, to) of each), run concurrently; groups come back in task order. */
export async function runGroups(tasks: Task[], o: GroupOptions, from = 0, to = o.groupSize): Promise<Rollout[][]> {
  const queue = new PQueue({ concurrency: o.concurrency });
  // p-queue adds one abort listener per queued job (and removes it when the job ends); a wave queues hundreds.
  if (o.signal) setMaxListeners(0, o.signal);
  const groups = tasks.map((task) => Promise.all(Array.from({ length: to - from }, (_, i) => queue.add(async () => {
    const k = from + i;
    const r = await o.run({ task, id: rolloutId(o.step, task.id, k), groupId: groupId(o.step, task.id), sample: k,
      seed: sampleSeed(o.seed, o.step, task.id, k), step: o.step });
    return o.score(r, task);
  }, { signal: o.signal }) as Promise<Rollout>)));
  return Promise.all(groups);
}

/**
 * What makes a group worth training: 'reward_varies', any difference in its trainable rewards (GRPO gets a non-zero
 * advantage from it), or 'outcome_varies', successes and failures both (DAPO's filter on accuracy 0 or 1): a group
 * that only varies in the shaping terms (format, validity, efficiency, partial answers) is then left out.
 */
export type KeepGroups = 'reward_varies' | 'outcome_varies';

export function isInformative(group: Rollout[], keep: KeepGroups = 'reward_varies', eps = 1e-9): boolean {
  const t = group.filter((r) => r.trainable);
  if (keep === 'outcome_varies') return t.some((r) => r.success === true) && t.some((r) => r.success !== true);
  const rs = t.map((r) => r.reward ?? 0);
  return rs.length >= 2 && Math.max(...rs) - Math.min(...rs) > eps;
}

export interface DynamicBatch {
  kept: Rollout[][];
  /** Every group run, kept or not, in order. */
  all: Rollout[][];
  /** Groups set aside as uninformative (all rewards equal), by whether they all succeeded. */
  droppedSolved: number;
  droppedFailed: number;
  tried: number;
}

/**
 * Draws tasks from `next` in waves of `groups` until `groups` informative groups are kept or `maxGroups` were
 * tried. With `dynamic` off every group is kept. Task order (and so the result) depends only on `next`.
 * With `screen` = s (2 ≤ s < G) a task first gets samples 0..s-1 only; if their rewards are all equal it is set
 * aside on those s rollouts, else it gets samples s..G-1 and is judged as a whole group. After SFT most tasks are
 * solved every time, and screening spends s instead of G rollouts on each of them (the prompt screening of
 * Speed-RL, Zhang et al. 2025); a group that would only have varied in samples s..G-1 is lost. Sample k has the
 * same id and seed either way.
 */
export async function sampleBatch(next: (n: number) => Task[], groups: number, maxGroups: number, dynamic: boolean, o: GroupOptions, screen = 0,
  keep: KeepGroups = 'reward_varies'): Promise<DynamicBatch> {
  const out: DynamicBatch = { kept: [], all: [], droppedSolved: 0, droppedFailed: 0, tried: 0 };
  const screening = dynamic && screen >= 2 && screen < o.groupSize;
  while (out.kept.length < groups && out.tried < maxGroups) {
    const want = Math.min(groups - out.kept.length, maxGroups - out.tried);
    const tasks = next(want);
    if (!tasks.length) break;
    out.tried += tasks.length;
    const wave = await runGroups(tasks, o, 0, screening ? screen : o.groupSize);
    if (screening) {
      const varied = tasks.map((_, i) => i).filter((i) => isInformative(wave[i], keep));
      const more = await runGroups(varied.map((i) => tasks[i]), o, screen, o.groupSize);
      varied.forEach((i, j) => wave[i].push(...more[j]));
    }
    for (const g of wave) {
      out.all.push(g);
      if ((!dynamic || isInformative(g, keep)) && out.kept.length < groups) out.kept.push(g);
      else if (g.every((r) => r.success)) out.droppedSolved++;
      else out.droppedFailed++;
    }
  }
  return out;
}

/** An endless, seeded stream over a task list: a fresh shuffle per pass. */
export function taskStream(tasks: Task[], seed: number, start = 0): { next(n: number): Task[]; position(): number } {
  if (!tasks.length) throw new Error('taskStream: no tasks to sample from');
  let pos = start;
  const order = new Map<number, Task[]>();
  const passOf = (p: number): Task[] => {
    let o = order.get(p);
    if (!o) {
      const keyed = tasks.map((t) => [derive('order', seed, p, t.id), t] as const).sort((a, b) => a[0] - b[0] || (a[1].id < b[1].id ? -1 : 1));
      order.set(p, (o = keyed.map(([, t]) => t)));
    }
    return o;
  };
  return {
    next(n) {
      const out: Task[] = [];
      for (let i = 0; i < n; i++, pos++) out.push(passOf(Math.floor(pos / tasks.length))[pos % tasks.length]);
      return out;
    },
    position: () => pos,
  };
}
