/*
 * The synchronous RL loop: rollouts of policy v-1 → rewards → trajectory table (step file) → GRPO step v in the
 * Python trainer (runtime/node/rl-session.ts) → ONNX export → engine reload. Rollouts and training meet only at
 * the step files, so letting rollouts run ahead (the async version) is a scheduling change here, nothing more.
 * Resume: the trainer restarts from its newest checkpoint (step c); steps c+1.. whose rollouts are on disk are
 * replayed from them, later ones are generated.
 */
import { z } from 'zod';
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import type { RlSession } from '../node/rl-session.ts';
import type { RlStepRequest, RlStepResult } from '../node/protocol.ts';
import { RewardParams } from '../rewards/mix.ts';
import { groupOptions } from './rollouts.ts';
import { LimitParams, loadPolicy, toLimits, type Policy } from '../agent/local.ts';
import { sampleBatch, taskStream } from './groups.ts';
import { StepStore, type StepRecord } from './steps.ts';
import { rolloutMetrics } from './metrics.ts';
import { AdvantageParams, withAdvantages } from './advantages.ts';
import { derive } from '../engine/rng.ts';
import { groupBy } from '../engine/collections.ts';

/** The loop's own params (train-rl adds the trainer's, runtime/node/protocol.ts RlTrainerParams). */
export const RlLoopParams = AdvantageParams.extend({
  steps: z.number().int().min(1).default(20),
  /** Groups (tasks) per step and rollouts per group (G). */
  groups: z.number().int().min(1).default(16),
  group_size: z.number().int().min(2).default(8),
  /** Dynamic sampling (DAPO): keep drawing until `groups` informative groups (at most max_groups tried). */
  dynamic_sampling: z.boolean().default(true),
  /** Dynamic sampling gives up after this many groups per step (then trains on what it has). */
  max_groups: z.number().int().min(1).default(48),
  /**
   * Later steps skip tasks an earlier step solved in all G rollouts (see solvedTasks). Off by default:
   * on the embedded default (train success ~90% after SFT) it left rollouts per step unchanged (352–384 of 384).
   */
  skip_solved: z.boolean().default(false),
  /**
   * With dynamic sampling: try each task on this many rollouts first and complete the group only when their rewards
   * differ (0 = off). Tasks the policy always solves then cost `screen` rollouts instead of `group_size`.
   */
  screen: z.number().int().min(0).default(0),
  /**
   * Which groups dynamic sampling keeps: 'reward_varies' (any reward difference) or 'outcome_varies' (successes and
   * failures both, DAPO's filter): with the latter a group of failures that differ only in the shaping terms is
   * left out, where GRPO's std scaling would give those small differences the weight of a success.
   */
  keep_groups: z.enum(['reward_varies', 'outcome_varies']).default('reward_varies'),
  temperature: z.number().gt(0).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  seed: z.number().int().default(0),
  concurrency: z.number().int().min(1).default(64),
  limits: LimitParams.default(LimitParams.parse({})),
  rewards: RewardParams.default(RewardParams.parse({})),
});
export type RlLoopParams = z.output<typeof RlLoopParams>;

export interface RlLoopOptions {
  tasks: Task[];
  params: RlLoopParams;
  session: RlSession;
  /** Sent with every request: the trainer's params, model_dir and checkpoint_dir. */
  trainer: Omit<RlStepRequest, 'op' | 'step' | 'samples' | 'export_dir' | 'save_dir'>;
  exportDir: string;
  store: StepStore;
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
  const p = o.params;
  const stream = taskStream(openTasks(o.tasks, solved), derive('rl-tasks', p.seed, step));
  const times = { generate_s: 0, env_s: 0, reward_s: 0, rollout_wall_s: 0 };
  const base = groupOptions({ policy, limits: toLimits(p.limits), sampling: { temperature: p.temperature, topP: p.top_p },
    rewards: p.rewards, groupSize: p.group_size, concurrency: p.concurrency, step, seed: p.seed, signal: o.signal });
  const score = (r: Rollout, t: Task) => {
    const t0 = performance.now();
    const s = base.score(r, t);
    times.reward_s += (performance.now() - t0) / 1000;
    times.generate_s += r.timings.reduce((a, x) => a + x.generate_ms, 0) / 1000;
    times.env_s += r.timings.reduce((a, x) => a + x.env_ms, 0) / 1000;
    return s;
  };
  const t0 = performance.now();
  const b = await sampleBatch(stream.next, p.groups, Math.max(p.max_groups, p.groups), p.dynamic_sampling, { ...base, score },
    p.screen, p.keep_groups);
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
export function trainerRows(rec: StepRecord): Array<Rollout & { reward: number }> {
  const pool = rec.train.length ? rec.train : rec.dropped;
  const trainable = pool.filter((r) => r.trainable);
  return trainable.length ? trainable.map((r) => ({ ...r, reward: r.reward ?? 0 })) : pool.map((r) => ({ ...r, reward: 0 }));
}

/** The batch the trainer was given: its groups and the rewards behind the advantages. */
function batchMetrics(rows: Array<{ group_id: string; reward: number }>): Record<string, number> {
  const rs = rows.map((r) => r.reward);
  const mean = rs.reduce((a, b) => a + b, 0) / Math.max(1, rs.length);
  const std = rs.length > 1 ? Math.sqrt(rs.reduce((a, r) => a + (r - mean) ** 2, 0) / (rs.length - 1)) : 0;
  return { groups: groupBy(rows, (r) => r.group_id).size, reward_mean: mean, reward_std: std };
}

function report(rec: StepRecord, res: RlStepResult, syncS: number, o: RlLoopOptions): void {
  const all = [...rec.train, ...rec.dropped];
  const m: Record<string, number> = { ...rolloutMetrics(all), groups_trained: rec.train.length / Math.max(1, o.params.group_size),
    groups_dropped_solved: rec.droppedSolved, groups_dropped_failed: rec.droppedFailed };
  for (const [k, v] of Object.entries(m)) o.metric(`rl/${k}`, v, rec.step);
  for (const [k, v] of Object.entries({ ...res.metrics, ...batchMetrics(trainerRows(rec)) })) o.metric(`train/${k}`, v, rec.step);
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
  const p = o.params;
  const solved = p.skip_solved ? solvedTasks(o.store.steps().filter((s) => s <= st.step).map((s) => o.store.read(s))) : new Set<string>();
  try {
    for (let s = st.step + 1; s <= p.steps; s++) {
      o.signal?.throwIfAborted();
      let rec: StepRecord;
      if (o.store.has(s)) {
        rec = o.store.read(s);
        out.replayed.push(s);
      } else {
        policy ??= await loadPolicy(o.exportDir, { maxBatch: p.concurrency, maxContext: p.limits.max_context, signal: o.signal });
        rec = await generateStep(s, policy, o, solved);
        o.store.write(rec);
        out.generated.push(s);
      }
      if (p.skip_solved) for (const id of solvedTasks([rec])) solved.add(id);
      await o.beforeTrain?.(s);
      const res = await o.session.step({ ...o.trainer, step: s, samples: withAdvantages(trainerRows(rec), p), export_dir: o.exportDir });
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
