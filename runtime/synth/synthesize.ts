import PQueue from 'p-queue';
import { setMaxListeners } from 'node:events';
import type { Task } from '../../schemas/task.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import type { ChatPolicy } from '../agent/policy.ts';
import { getWorld } from '../worlds/index.ts';
import { runEpisode } from '../agent/loop.ts';

/*
 * Many episodes, resumably. Jobs are (task, sample k) in a fixed order with seed = baseSeed + k and the id
 * `${task.id}:s${seed}` (also the idempotency-key prefix of every model request). Jobs are grouped into numbered
 * batches; a batch is written once, when all its episodes are done, and batches already in the sink are skipped —
 * so a killed run that is rerun neither loses nor duplicates a trajectory.
 */

export interface SynthJob { task: Task; seed: number; id: string }

export const trajectoryId = (taskId: string, seed: number): string => `${taskId}:s${seed}`;

export function synthJobs(tasks: Task[], perTask: number, baseSeed: number): SynthJob[] {
  return tasks.flatMap((task) => Array.from({ length: perTask }, (_, k) => ({ task, seed: baseSeed + k, id: trajectoryId(task.id, baseSeed + k) })));
}

export interface BatchSink {
  has(batchId: string): boolean;
  write(batchId: string, rows: Trajectory[]): Promise<void>;
}

export interface SynthesizeOptions {
  tasks: Task[];
  perTask: number;
  seed: number;
  batchSize: number;
  concurrency: number;
  teacher(task: Task, seed: number): ChatPolicy;
  user(task: Task, seed: number): ChatPolicy;
  sink: BatchSink;
  maxTurns?: number;
  maxTokens?: number;
  signal?: AbortSignal;
  /** Called after each episode (for progress). */
  onEpisode?(t: Trajectory): void;
}

export const batchId = (i: number): string => `b${String(i).padStart(6, '0')}`;

export async function synthesize(o: SynthesizeOptions): Promise<{ written: number; skipped: number; batches: number }> {
  const jobs = synthJobs(o.tasks, o.perTask, o.seed);
  const queue = new PQueue({ concurrency: o.concurrency });
  // every in-flight HTTP request listens on the signal; with high concurrency that is legitimately > 10 listeners
  if (o.signal) setMaxListeners(Math.max(10, 4 * o.concurrency), o.signal);
  let written = 0;
  let skipped = 0;
  const nBatches = Math.ceil(jobs.length / o.batchSize);
  const pending: Promise<void>[] = [];
  for (let b = 0; b < nBatches; b++) {
    const id = batchId(b);
    const batch = jobs.slice(b * o.batchSize, (b + 1) * o.batchSize);
    if (o.sink.has(id)) {
      skipped += batch.length;
      continue;
    }
    const episodes = batch.map((j) => queue.add(async () => {
      o.signal?.throwIfAborted(); // queued jobs of an aborted run settle at once instead of running
      const t = await runEpisode({
        task: j.task, world: getWorld(j.task.world), teacher: o.teacher(j.task, j.seed), user: o.user(j.task, j.seed), seed: j.seed,
        trajectoryId: j.id, maxTurns: o.maxTurns, maxTokens: o.maxTokens, signal: o.signal,
      });
      o.onEpisode?.(t);
      return t;
    }) as Promise<Trajectory>);
    pending.push(Promise.all(episodes).then(async (rows) => {
      await o.sink.write(id, rows);
      written += rows.length;
    }));
  }
  // allSettled first so one failure does not leave other batches writing after we return
  const settled = await Promise.allSettled(pending);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return { written, skipped, batches: nBatches };
}
