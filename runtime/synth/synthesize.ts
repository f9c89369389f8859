import PQueue from 'p-queue';
import { setMaxListeners } from 'node:events';
import type { Task } from '../../schemas/task.ts';
import type { Trajectory } from '../../schemas/trajectory.ts';
import type { ChatPolicy } from '../agent/policy.ts';
import { openWorld } from '../worlds/index.ts';
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
  /** Rows a rerun must redo (a batch with failed episodes): kept in this output but not as a durable batch. */
  writeProvisional?(rows: Trajectory[]): Promise<void>;
}

/** Episodes that failed because a model endpoint did (its request failed after the client's retries). */
export const ENDPOINT_ERRORS: ReadonlySet<string> = new Set(['teacher_error', 'user_error']);
const endpointError = (t: Trajectory) => t.errors.find((e) => ENDPOINT_ERRORS.has(e.kind));

/** Too many episodes failed on the endpoint: nothing is committed, and a rerun retries exactly those episodes. */
export class EndpointFailure extends Error {
  constructor(message: string) { super(message); this.name = 'EndpointFailure'; }
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
  /**
   * Share of this attempt's episodes that may fail on the endpoint (default 1: never fail). Past it the run stops
   * at once and throws EndpointFailure. Below it, batches with failed episodes are written last, provisionally.
   */
  maxErrorRate?: number;
  /** Names the endpoint in the failure message (e.g. its base URL and model). */
  endpoint?: string;
}

export const batchId = (i: number): string => `b${String(i).padStart(6, '0')}`;

export interface SynthesizeResult { written: number; skipped: number; batches: number; endpointErrors: number }

export async function synthesize(o: SynthesizeOptions): Promise<SynthesizeResult> {
  const jobs = synthJobs(o.tasks, o.perTask, o.seed);
  const queue = new PQueue({ concurrency: o.concurrency });
  // stops the attempt once too many episodes failed on the endpoint (or when the caller aborts)
  const stop = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  // every in-flight HTTP request listens on the signal; with high concurrency that is legitimately > 10 listeners
  setMaxListeners(Math.max(10, 4 * o.concurrency), signal);
  let written = 0;
  let skipped = 0;
  const nBatches = Math.ceil(jobs.length / o.batchSize);
  const todo: Array<{ id: string; batch: SynthJob[] }> = [];
  for (let b = 0; b < nBatches; b++) {
    const id = batchId(b);
    const batch = jobs.slice(b * o.batchSize, (b + 1) * o.batchSize);
    if (o.sink.has(id)) skipped += batch.length;
    else todo.push({ id, batch });
  }
  const attempted = todo.reduce((n, t) => n + t.batch.length, 0);
  // more than this many failed episodes and the attempt can no longer end below the threshold
  const allowed = Math.floor((o.maxErrorRate ?? 1) * attempted + 1e-9);
  const failures: Trajectory[] = [];
  let finished = 0;
  const held: Array<{ id: string; rows: Trajectory[] }> = [];
  const pending = todo.map(({ id, batch }) => Promise.all(batch.map((j) => queue.add(async () => {
    signal.throwIfAborted(); // queued jobs of a stopped run settle at once instead of running
    const t = await runEpisode({
      task: j.task, world: openWorld(j.task.world), teacher: o.teacher(j.task, j.seed), user: o.user(j.task, j.seed), seed: j.seed,
      trajectoryId: j.id, maxTurns: o.maxTurns, maxTokens: o.maxTokens, signal,
    });
    finished++;
    if (endpointError(t)) {
      failures.push(t);
      // certain (the rest cannot bring the rate back under) or, from the 20th episode on, already over the rate:
      // a dead endpoint is reported within a couple of waves, not after every episode has used up its retries
      const over = failures.length > allowed || (finished >= Math.min(attempted, EARLY_SAMPLE) && failures.length / finished > (o.maxErrorRate ?? 1));
      if (over) stop.abort(new EndpointFailure(failureMessage(o, failures, finished, attempted)));
    }
    o.onEpisode?.(t);
    return t;
  }) as Promise<Trajectory>)).then(async (rows) => {
    // a batch with failed episodes is never made durable before we know the attempt stays below the threshold:
    // a durable batch is skipped on resume, and its failed episodes would never be retried
    if (rows.some(endpointError)) { held.push({ id, rows }); return; }
    await o.sink.write(id, rows);
    written += rows.length;
  }));
  // allSettled first so one failure does not leave other batches writing after we return
  const settled = await Promise.allSettled(pending);
  if (stop.signal.aborted && !o.signal?.aborted) throw stop.signal.reason;
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  for (const h of held.sort((a, b) => (a.id < b.id ? -1 : 1))) {
    await (o.sink.writeProvisional ? o.sink.writeProvisional(h.rows) : o.sink.write(h.id, h.rows));
    written += h.rows.length;
  }
  return { written, skipped, batches: nBatches, endpointErrors: failures.length };
}

/** Episodes finished before the running error rate alone can stop an attempt. */
const EARLY_SAMPLE = 20;

function failureMessage(o: SynthesizeOptions, failures: Trajectory[], finished: number, attempted: number): string {
  const rate = o.maxErrorRate ?? 1;
  const first = failures.slice(0, 3).map((t) => `${t.id}: ${endpointError(t)!.message}`).join('; ');
  return `${failures.length} of ${finished} finished episodes (of ${attempted}) failed on the endpoint ${o.endpoint ?? '(unnamed)'} — more than max_error_rate ` +
    `${Math.round(rate * 1000) / 10}%; stopped, nothing committed (a rerun retries them; good batches resume). First errors: ${first}`;
}
