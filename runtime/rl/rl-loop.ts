/*
 * The synchronous RL loop: rollouts of policy v-1 → rewards → trajectory table (step file) → GRPO step v in the
 * Python trainer (runtime/node/rl-session.ts) → ONNX export → engine reload. Rollouts and training meet only at
 * the step files, so letting rollouts run ahead (the async version) is a scheduling change here, nothing more.
 * Resume: the trainer restarts from its newest checkpoint (step c); steps c+1.. whose rollouts are on disk are
 * replayed from them, later ones are generated.
 */
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import type { RlSession } from '../node/rl-session.ts';
import type { RlStepRequest, RlStepResult } from '../node/rl-requests.ts';
import type { RewardParams } from '../rewards/mix.ts';
import type { RolloutLimits, Sampling } from '../agent/loop.ts';
import { groupOptions } from './rollouts.ts';
import { loadPolicy, type Policy } from '../agent/local.ts';
import { sampleBatch, taskStream, type KeepGroups } from './groups.ts';
import { StepStore, type StepRecord } from './steps.ts';
import { rolloutMetrics } from './metrics.ts';
import { derive } from '../engine/rng.ts';
import { groupBy } from '../engine/collections.ts';

export interface RlLoopOptions {
  tasks: Task[];
  session: RlSession;
  /** Trainer settings sent with every request (model_dir, checkpoint_dir, lr, …). */
  trainer: Omit<RlStepRequest, 'op' | 'step' | 'rollouts' | 'samples' | 'export_dir' | 'save_dir'>;
  exportDir: string;
  store: StepStore;
  steps: number;
  groups: number;
  groupSize: number;
  /** Dynamic sampling: keep drawing until `groups` groups with reward variance (at most maxGroups tried). */
  dynamic: boolean;
  maxGroups: number;
  /** Screen each task with this many rollouts before completing its group (0 = off; see groups.ts sampleBatch). */
  screen?: number;
  /** Which groups dynamic sampling keeps (groups.ts KeepGroups); default 'reward_varies'. */
  keep?: KeepGroups;
  /** Leave out of later steps the tasks whose whole group succeeded (they carry no GRPO signal any more). */
  skipSolved?: boolean;
  seed: number;
  concurrency: number;
  limits: RolloutLimits;
  sampling: Sampling;
  rewards: RewardParams;
  signal?: AbortSignal;
  metric(name: string, value: number, step: number): void;
  log(message: string): void;
  /** Runs after step s is trained (progress; tests simulate a kill here). */
  afterStep?(step: number): void | Promise<void>;
  /** Runs once step s's rollouts are durable, before the trainer sees them (tests simulate a kill here). */
  beforeTrain?(step: number): void | Promise<void>;
}

export interface RlLoopResult { resumedFrom: number; generated: number[]; replayed: number[]; finalStep: number }

/**
 * Tasks solved in every rollout of their group at some stored step: with skipSolved, later steps leave them out,
 * so rollouts go to tasks that can still vary. (On the embedded default it changed nothing: most unsolved tasks
 * are all-successful groups too.) The set depends only on the stored steps, so a resumed run draws the same tasks.
 */
export function solvedTasks(records: Iterable<StepRecord>): Set<string> {
  const solved = new Set<string>();
  for (const rec of records) {
    for (const [, group] of groupBy([...rec.train, ...rec.dropped], (r) => r.group_id)) {
      if (group.length >= 2 && group.every((r) => r.success === true)) solved.add(group[0].task_id);
    }
  }
  return solved;
}

/** The tasks a step draws from: those not solved yet, or all when none is left. */
export function openTasks(tasks: Task[], solved: ReadonlySet<string>): Task[] {
  const open = tasks.filter((t) => !solved.has(t.id));
  return open.length ? open : tasks;
}

async function generateStep(step: number, policy: Policy, o: RlLoopOptions, solved: Set<string>): Promise<StepRecord> {
  const stream = taskStream(openTasks(o.tasks, solved), derive('rl-tasks', o.seed, step));
  const times = { generate_s: 0, env_s: 0, reward_s: 0, rollout_wall_s: 0 };
  const base = groupOptions({ policy, limits: o.limits, sampling: o.sampling, rewards: o.rewards, groupSize: o.groupSize,
    concurrency: o.concurrency, step, seed: o.seed, signal: o.signal });
  const score = (r: Rollout, t: Task) => {
    const t0 = performance.now();
    const s = base.score(r, t);
    times.reward_s += (performance.now() - t0) / 1000;
    times.generate_s += r.timings.reduce((a, x) => a + x.generate_ms, 0) / 1000;
    times.env_s += r.timings.reduce((a, x) => a + x.env_ms, 0) / 1000;
    return s;
  };
  const t0 = performance.now();
  const b = await sampleBatch(stream.next, o.groups, o.maxGroups, o.dynamic, { ...base, score }, o.screen ?? 0, o.keep);
  times.rollout_wall_s = (performance.now() - t0) / 1000;
  const kept = new Set(b.kept.flat().map((r) => r.id));
  const all = b.all.flat();
  return { step, train: all.filter((r) => kept.has(r.id)), dropped: all.filter((r) => !kept.has(r.id)),
    droppedSolved: b.droppedSolved, droppedFailed: b.droppedFailed, times };
}

/**
 * Rows the trainer sees: trainable rollouts (an environment failure is not the policy's to learn from). When no
 * group qualifies the step still happens (every advantage is then 0, so the weights do not move), which keeps
 * step numbers and policy versions aligned.
 */
export function trainerSamples(rec: StepRecord): NonNullable<RlStepRequest['samples']> {
  const pool = rec.train.length ? rec.train : rec.dropped;
  const trainable = pool.filter((r) => r.trainable);
  const rows = trainable.length ? trainable : pool.map((r) => ({ ...r, reward: 0 }));
  return rows.map((r) => ({ input_ids: r.input_ids, loss_mask: r.loss_mask, behaviour_logprobs: r.behaviour_logprobs,
    group_id: r.group_id, reward: r.reward ?? 0, policy_version: r.policy_version }));
}

function report(rec: StepRecord, res: RlStepResult, syncS: number, o: RlLoopOptions): void {
  const all = [...rec.train, ...rec.dropped];
  const m: Record<string, number> = { ...rolloutMetrics(all), groups_trained: rec.train.length / Math.max(1, o.groupSize),
    groups_dropped_solved: rec.droppedSolved, groups_dropped_failed: rec.droppedFailed };
  for (const [k, v] of Object.entries(m)) o.metric(`rl/${k}`, v, rec.step);
  for (const [k, v] of Object.entries(res.metrics)) o.metric(`train/${k}`, v, rec.step);
  const t = { ...rec.times, train_s: res.timings.train_s ?? 0, sync_s: syncS + (res.export?.seconds ?? 0) };
  for (const [k, v] of Object.entries(t)) o.metric(`time/${k}`, v, rec.step);
  o.log(`step ${rec.step}: reward ${m.reward.toFixed(3)}, success ${(m.success * 100).toFixed(1)}%, ` +
    `mismatch kl ${(res.metrics.mismatch_kl ?? 0).toFixed(4)}, clip ${(res.metrics.clip_frac ?? 0).toFixed(3)}, ${all.length} rollouts`);
}

export async function rlLoop(o: RlLoopOptions): Promise<RlLoopResult> {
  const st = await o.session.state({ ...o.trainer, export_dir: o.exportDir });
  if (!st.export) throw new Error('train-rl: the trainer did not export the starting policy');
  const out: RlLoopResult = { resumedFrom: st.step, generated: [], replayed: [], finalStep: st.step };
  let policy: Policy | undefined;
  const solved = o.skipSolved ? solvedTasks(o.store.steps().filter((s) => s <= st.step).map((s) => o.store.read(s))) : new Set<string>();
  try {
    for (let s = st.step + 1; s <= o.steps; s++) {
      o.signal?.throwIfAborted();
      let rec: StepRecord;
      if (o.store.has(s)) {
        rec = o.store.read(s);
        out.replayed.push(s);
      } else {
        policy ??= await loadPolicy(o.exportDir, { maxBatch: o.concurrency, maxContext: o.limits.maxContext, signal: o.signal });
        rec = await generateStep(s, policy, o, solved);
        o.store.write(rec);
        out.generated.push(s);
      }
      if (o.skipSolved) for (const id of solvedTasks([rec])) solved.add(id);
      await o.beforeTrain?.(s);
      const res = await o.session.step({ ...o.trainer, step: s, samples: trainerSamples(rec), export_dir: o.exportDir });
      const t0 = performance.now();
      // the next step's rollouts need this step's policy unless they are on disk already
      if (policy && !o.store.has(s + 1) && res.export) await policy.engine.reload(res.export.dir, res.step);
      report(rec, res, (performance.now() - t0) / 1000, o);
      out.finalStep = res.step;
      await o.afterStep?.(s);
    }
  } finally {
    await policy?.engine.close();
  }
  return out;
}
