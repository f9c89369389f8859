/*
 * The RL loop: rollouts of policy v-1 → rewards → trajectory table (step file) → GRPO step v in the Python trainer
 * (runtime/node/rl-session.ts) → ONNX export → weight hand-off to the rollout engine (in-process OrtEngine, or
 * rollout servers: agentforge serve, vLLM, SGLang — runtime/agent/engines/rollout-servers.ts).
 *
 * Synchronous (max_staleness 0): each step's rollouts are generated, then trained on. Asynchronous (max_staleness
 * k >= 1) is the same loop plus one change: the rollouts of steps s+1..s+k are started before step s is trained, so
 * the rollout side never waits for the trainer and the trainer waits only for rollouts still running. One bound: a
 * sample is trained on only if every token of it came from a policy at most k versions older than the trainer's
 * (the trainer is at s-1 when it trains step s); others are dropped, counted as rl/stale_dropped. An episode in
 * flight when new weights arrive continues on them (a partial rollout): each turn keeps the version that generated
 * it, the sample's policy_version is its oldest, and every token's behaviour logprob is the one its engine reported.
 * The trainer corrects per token with AReaL's decoupled objective (grpo.py): the PPO ratio is taken against the
 * proximal policy, the trainer's own weights before the step (its previous version), and the behaviour → proximal
 * mismatch is weighted by min(pi_prox / pi_behaviour, tis_cap) (truncated importance sampling).
 * Resume: the trainer restarts from its newest checkpoint (step c) and the servers reload version c; steps c+1..
 * whose rollouts are on disk are replayed from them, later ones are generated.
 */
import { z } from 'zod';
import type { Task } from '../../schemas/task.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import type { RlSession } from '../node/rl-session.ts';
import type { RlStepRequest, RlStepResult } from '../node/protocol.ts';
import { RewardParams } from '../rewards/mix.ts';
import { groupOptions } from './rollouts.ts';
import { DEFAULT_ENGINE, EngineParams, LimitParams, loadPolicy, toLimits, type Policy } from '../agent/local.ts';
import { LatencyParams, toolLatency } from '../worlds/latency.ts';
import { RolloutServers } from '../agent/engines/rollout-servers.ts';
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
  /**
   * 0 = synchronous. k >= 1: the rollouts of the next k steps run while a step trains, and a sample is trained on
   * only if its oldest token came from a policy at most k versions behind the trainer.
   */
  max_staleness: z.number().int().min(0).default(0),
  /** Rollout servers to generate on (empty: an in-process OrtEngine). `reload` is each server's weight-reload path. */
  rollout_servers: z.array(z.object({
    url: z.string().url(),
    reload: z.enum(['agentforge', 'sglang', 'lora']).default('agentforge'),
    /** What the server loads: the ONNX export (agentforge serve) or the HF dir the trainer then saves every step (SGLang, vLLM). */
    weights: z.enum(['onnx', 'hf']).default('onnx'),
  })).default([]),
  /** Per-request timeout on a rollout server (ms); a server that hangs longer is set aside and the request retried. */
  server_timeout_ms: z.number().int().min(1).default(120_000),
  /** Simulated tool latency per call (runtime/worlds/latency.ts). */
  tool_latency: LatencyParams.default(LatencyParams.parse({})),
  limits: LimitParams.default(LimitParams.parse({})),
  /** The in-process engine's threads and prefix cache (runtime/agent/local.ts). */
  engine: EngineParams.default(DEFAULT_ENGINE),
  /** How the model writes tool calls (runtime/agent/tool-formats.ts: hermes, llama3-json, mistral); null = the one its chat template renders. */
  tool_call_format: z.string().min(1).nullable().default(null),
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

/** What the loop knows about rollouts beyond the step file: the version of each turn (for metrics). */
interface Tracker {
  turns: Map<string, Array<{ version: number; tokens: number }>>;
  /** Steps whose rollouts are being generated now, and when the rollout side last had none (its idle time). */
  active: number;
  idleSince: number | null;
  idleS: number;
}

function busy(t: Tracker, delta: 1 | -1): void {
  const now = performance.now();
  if (delta > 0 && t.active === 0 && t.idleSince !== null) t.idleS += (now - t.idleSince) / 1000;
  t.active += delta;
  if (t.active === 0) t.idleSince = now;
}

async function generateStep(step: number, policy: Policy, o: RlLoopOptions, solved: Set<string>, tracker?: Tracker): Promise<StepRecord> {
  const p = o.params;
  const stream = taskStream(openTasks(o.tasks, solved), derive('rl-tasks', p.seed, step));
  const times = { generate_s: 0, env_s: 0, reward_s: 0, rollout_wall_s: 0 };
  const base = groupOptions({ policy, limits: toLimits(p.limits, policy.maxContext), sampling: { temperature: p.temperature, topP: p.top_p },
    rewards: p.rewards, groupSize: p.group_size, concurrency: p.concurrency, step, seed: p.seed, signal: o.signal,
    latency: toolLatency(p.tool_latency), onVersions: tracker ? (id, turns) => tracker.turns.set(id, turns) : undefined });
  const score = (r: Rollout, t: Task) => {
    const t0 = performance.now();
    const s = base.score(r, t);
    times.reward_s += (performance.now() - t0) / 1000;
    times.generate_s += r.timings.reduce((a, x) => a + x.generate_ms, 0) / 1000;
    times.env_s += r.timings.reduce((a, x) => a + x.env_ms, 0) / 1000;
    return s;
  };
  const t0 = performance.now();
  if (tracker) busy(tracker, 1);
  try {
    const b = await sampleBatch(stream.next, p.groups, Math.max(p.max_groups, p.groups), p.dynamic_sampling, { ...base, score },
      p.screen, p.keep_groups);
    times.rollout_wall_s = (performance.now() - t0) / 1000;
    const kept = new Set(b.kept.flat().map((r) => r.id));
    const all = b.all.flat();
    const versions = tracker ? Object.fromEntries(all.map((r) => [r.id, (tracker.turns.get(r.id) ?? []).map((t) => t.version)])) : undefined;
    if (tracker) for (const r of all) tracker.turns.delete(r.id);
    return { step, train: all.filter((r) => kept.has(r.id)), dropped: all.filter((r) => !kept.has(r.id)),
      droppedSolved: b.droppedSolved, droppedFailed: b.droppedFailed, times, ...(versions ? { versions } : {}) };
  } finally {
    if (tracker) busy(tracker, -1);
  }
}

/** Staleness of a sample trained at step s: versions between the trainer's (s - 1) and the sample's oldest token. */
export const staleness = (r: Pick<Rollout, 'policy_version'>, step: number): number => step - 1 - r.policy_version;

/**
 * The step's record with samples older than max_staleness moved out of `train` (to `dropped`, as not trainable);
 * with max_staleness 0 (synchronous) nothing is ever stale, so the record is returned as it is.
 */
export function withinStaleness(rec: StepRecord, maxStaleness: number): { rec: StepRecord; stale: number } {
  if (maxStaleness <= 0) return { rec, stale: 0 };
  const stale = rec.train.filter((r) => staleness(r, rec.step) > maxStaleness);
  if (!stale.length) return { rec, stale: 0 };
  const ids = new Set(stale.map((r) => r.id));
  return { rec: { ...rec, train: rec.train.filter((r) => !ids.has(r.id)), dropped: [...rec.dropped, ...stale.map((r) => ({ ...r, trainable: false }))] }, stale: stale.length };
}

/**
 * Rows the trainer sees: trainable rollouts (an environment failure is not the policy's to learn from). When no
 * group qualifies the step still happens (every advantage is then 0, so the weights do not move), which keeps
 * step numbers and policy versions aligned.
 */
export function trainerRows(rec: StepRecord): Array<Rollout & { reward: number }> {
  // a rollout whose first request failed (no rollout server answered) has no generated token to train on
  const generated = (rs: Rollout[]) => rs.filter((r) => r.loss_mask.includes(1));
  const pool = generated(rec.train.length ? rec.train : rec.dropped);
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

interface StepExtras {
  /** Seconds the trainer waited for this step's rollouts (its idle time). */
  waitS: number;
  /** Seconds the rollout engines took to load the new weights. */
  reloadS: number;
  stale: number;
  /** Steps whose rollouts were running ahead when this step was trained (the rollout queue). */
  ahead: number;
  tracker: Tracker;
  policy?: Policy;
  stepWallS: number;
}

function report(rec: StepRecord, res: RlStepResult, x: StepExtras, o: RlLoopOptions): void {
  const all = [...rec.train, ...rec.dropped];
  const m: Record<string, number> = { ...rolloutMetrics(all), groups_trained: rec.train.length / Math.max(1, o.params.group_size),
    groups_dropped_solved: rec.droppedSolved, groups_dropped_failed: rec.droppedFailed };
  if (o.params.max_staleness > 0 || x.policy?.engine instanceof RolloutServers) {
    const st = rec.train.map((r) => staleness(r, rec.step));
    const turns = all.map((r) => rec.versions?.[r.id]).filter((t): t is number[] => !!t?.length);
    Object.assign(m, {
      staleness_mean: st.length ? st.reduce((a, b) => a + b, 0) / st.length : 0, staleness_max: st.length ? Math.max(...st) : 0,
      stale_dropped: x.stale, queue_steps_ahead: x.ahead,
      versions_per_sample: turns.length ? turns.reduce((a, t) => a + new Set(t).size, 0) / turns.length : 1,
      partial_rollouts: turns.filter((t) => new Set(t).size > 1).length,
    });
  }
  const eng = x.policy?.engine;
  if (eng instanceof RolloutServers) {
    m.queue_inflight_requests = eng.inflight.reduce((a, b) => a + b, 0);
    for (const [k, v] of Object.entries(eng.drops)) m[`server_dropped_${k}`] = v;
    m.server_failed_requests = eng.failed;
  }
  for (const [k, v] of Object.entries(m)) o.metric(`rl/${k}`, v, rec.step);
  for (const [k, v] of Object.entries({ ...res.metrics, ...batchMetrics(trainerRows(rec)) })) o.metric(`train/${k}`, v, rec.step);
  const exportS = res.export?.seconds ?? 0;
  const rolloutIdle = x.tracker.idleS;
  x.tracker.idleS = 0;
  // per role: the trainer's idle is waiting for rollouts, the rollout side's is time with no step generating
  const t = { ...rec.times, train_s: res.timings.train_s ?? 0, sync_s: x.reloadS + exportS, export_s: exportS, reload_s: x.reloadS,
    trainer_idle_s: x.waitS, rollout_idle_s: rolloutIdle, step_wall_s: x.stepWallS };
  for (const [k, v] of Object.entries(t)) o.metric(`time/${k}`, v, rec.step);
  o.log(`step ${rec.step}: reward ${m.reward.toFixed(3)}, success ${(m.success * 100).toFixed(1)}%, ` +
    `mismatch kl ${(res.metrics.mismatch_kl ?? 0).toFixed(4)}, clip ${(res.metrics.clip_frac ?? 0).toFixed(3)}, ${all.length} rollouts` +
    (o.params.max_staleness > 0 ? `, staleness max ${m.staleness_max}, ${x.stale} stale dropped` : ''));
}

export async function rlLoop(o: RlLoopOptions): Promise<RlLoopResult> {
  const p = o.params;
  // servers that load HF weights (SGLang, vLLM) get the trainer's HF save of every version
  const hfDir = p.rollout_servers.some((x) => x.weights === 'hf') ? `${o.exportDir}-hf` : undefined;
  const save = hfDir ? { save_dir: hfDir } : {};
  const st = await o.session.state({ ...o.trainer, export_dir: o.exportDir, ...save });
  if (!st.export) throw new Error('train-rl: the trainer did not export the starting policy');
  const out: RlLoopResult = { resumedFrom: st.step, generated: [], replayed: [], finalStep: st.step };
  const k = p.max_staleness;
  let policy: Policy | undefined;
  const loading = (): Promise<Policy> => (policyP ??= loadPolicy(o.exportDir, { maxBatch: p.concurrency, maxContext: p.limits.max_context, engine: p.engine, toolCallFormat: p.tool_call_format, signal: o.signal,
    servers: p.rollout_servers.length ? p.rollout_servers : undefined, serverTimeoutMs: p.server_timeout_ms, hfDir }).then((x) => (policy = x)));
  let policyP: Promise<Policy> | undefined;
  const solved = p.skip_solved ? solvedTasks(o.store.steps().filter((s) => s <= st.step).map((s) => o.store.read(s))) : new Set<string>();
  const tracker: Tracker = { turns: new Map(), active: 0, idleSince: null, idleS: 0 };
  // steps whose rollouts are on their way (generated or read back), in order
  const pending = new Map<number, Promise<StepRecord>>();
  const replaying = new Set<number>();
  const start = (s: number) => {
    if (s > p.steps || pending.has(s)) return;
    if (o.store.has(s)) {
      out.replayed.push(s);
      replaying.add(s);
      pending.set(s, Promise.resolve(o.store.read(s)));
      return;
    }
    // skip_solved needs the previous steps' outcomes, so with it a step starts only once those are in
    const job = (async () => {
      const rec = await generateStep(s, await loading(), o, solved, tracker);
      o.store.write(rec);
      out.generated.push(s);
      return rec;
    })();
    job.catch(() => {}); // awaited in order below; a failure ahead must not be an unhandled rejection meanwhile
    pending.set(s, job);
  };
  try {
    // rollout servers serve the trainer's version from the start (after a resume, the checkpoint's), even when the
    // next steps are replayed from disk
    if (p.rollout_servers.length) await loading();
    for (let s = st.step + 1; s <= p.steps; s++) {
      o.signal?.throwIfAborted();
      const stepT0 = performance.now();
      // the asynchronous part: the next k steps' rollouts start before this one is trained
      for (let j = 0; j <= (p.skip_solved ? 0 : k); j++) start(s + j);
      const w0 = performance.now();
      const full = await pending.get(s)!;
      const waitS = (performance.now() - w0) / 1000;
      pending.delete(s);
      if (p.skip_solved) for (const id of solvedTasks([full])) solved.add(id);
      const { rec, stale } = withinStaleness(full, k);
      await o.beforeTrain?.(s);
      const res = await o.session.step({ ...o.trainer, step: s, samples: withAdvantages(trainerRows(rec), p), export_dir: o.exportDir, ...save });
      const t0 = performance.now();
      // rollouts still to generate need this step's policy; those running now continue on it (partial rollouts)
      const more = Array.from({ length: p.steps - s }, (_, i) => s + 1 + i).some((x) => (pending.has(x) ? !replaying.has(x) : !o.store.has(x)));
      if (res.export && more) {
        if (policy) await policy.engine.reload(res.export.dir, res.step);
        else if (policyP) await (await policyP).engine.reload(res.export.dir, res.step);
      }
      const reloadS = (performance.now() - t0) / 1000;
      report(rec, res, { waitS, reloadS, stale, ahead: pending.size, tracker, policy, stepWallS: (performance.now() - stepT0) / 1000 }, o);
      out.finalStep = res.step;
      await o.afterStep?.(s);
    }
  } finally {
    await Promise.allSettled(pending.values());
    await (policy ?? (policyP ? await policyP.catch(() => undefined) : undefined))?.engine.close();
  }
  return out;
}
