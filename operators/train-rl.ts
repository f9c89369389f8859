/*
 * train-rl: multi-turn GRPO on the train tasks, synchronous: rollouts (ORT, the agent loop) → mixed reward →
 * trajectory table (one durable file per step) → GRPO step in the runtime node → ONNX export → engine reload.
 * Output: the RL policy (HF dir) with the run's trajectory table inside it at rollouts/data.parquet (exposed as a
 * table by the rl-rollouts operator). Killed and rerun, it resumes at the trainer's last checkpoint and replays
 * the stored rollouts after it, so no step is lost or counted twice.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { model, operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { Rollout } from '../schemas/rollout.ts';
import { RlSession } from '../runtime/node/rl-session.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { RewardParams } from '../runtime/rewards/mix.ts';
import { LimitParams, toLimits } from '../runtime/agent/local.ts';
import { rlLoop } from '../runtime/rl/rl-loop.ts';
import { StepStore } from '../runtime/rl/steps.ts';
import { TableWriter } from '../storage/table.ts';

export const TrainRlParams = z.object({
  /** Train only on these worlds' tasks (an RL expert per domain); null = every world in the input. */
  worlds: z.array(z.string()).min(1).nullable().default(null),
  steps: z.number().int().min(1).default(20),
  /** Groups (tasks) per step and rollouts per group (G). */
  groups: z.number().int().min(1).default(16),
  group_size: z.number().int().min(2).default(8),
  dynamic_sampling: z.boolean().default(true),
  /** Dynamic sampling gives up after this many groups per step (then trains on what it has). */
  max_groups: z.number().int().min(1).default(48),
  /**
   * Later steps skip tasks an earlier step solved in all G rollouts (see rl-loop.ts solvedTasks). Off by default:
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
  /** GRPO's (r − mean) / std advantages; false = Dr. GRPO's r − mean, so reward weights keep their proportions. */
  scale_rewards: z.boolean().default(true),
  temperature: z.number().gt(0).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  lr: z.number().positive().default(1e-5),
  eps_low: z.number().min(0).default(0.2),
  eps_high: z.number().min(0).default(0.28),
  beta_kl: z.number().min(0).default(0),
  tis_cap: z.number().positive().nullable().default(2),
  micro_batch_size: z.number().int().min(1).default(8),
  /** Optimizer steps per RL step, each on a slice of the batch, with ratios taken against the policy before the
   * first slice (PPO-style: from the second slice on the ratio differs from 1 and clipping engages). */
  mini_batches: z.number().int().min(1).default(1),
  checkpoint_every: z.number().int().min(1).default(1),
  seed: z.number().int().default(0),
  concurrency: z.number().int().min(1).default(64),
  device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  limits: LimitParams.default(LimitParams.parse({})),
  rewards: RewardParams.default(RewardParams.parse({})),
});

export const trainRl = operator({
  name: 'train-rl',
  version: 3,
  description: 'multi-turn GRPO: rollouts → rewards → trajectory table → train step → export → reload, resumable',
  params: TrainRlParams.superRefine((p, ctx) => {
    if (p.screen && (p.screen < 2 || p.screen >= p.group_size || !p.dynamic_sampling)) {
      ctx.addIssue({ code: 'custom', path: ['screen'], message: `screen ${p.screen} needs dynamic_sampling and 2 <= screen < group_size (${p.group_size}); 0 turns it off` });
    }
  }),
  inputs: { tasks: table(Task, 'Task'), model: model() },
  output: model(),
  resources: ['gpu'],
  codeDeps: nodeCode('rl_session.py'),
  async run({ params: p, inputs, out, ctx }) {
    const tasks = (await inputs.tasks.all()).filter((t) => t.split === 'train' && (p.worlds === null || p.worlds.includes(t.world)))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    if (!tasks.length) throw new Error(`train-rl: input tasks (node ${inputs.tasks.node}) have no train task${p.worlds ? ` of worlds ${p.worlds.join(', ')}` : ''}`);
    const trainer = { model_dir: inputs.model.dir, checkpoint_dir: join(ctx.checkpointDir, 'trainer'), temperature: p.temperature,
      eps_low: p.eps_low, eps_high: p.eps_high, beta_kl: p.beta_kl, tis_cap: p.tis_cap, lr: p.lr, micro_batch_size: p.micro_batch_size, mini_batches: p.mini_batches,
      checkpoint_every: p.checkpoint_every, seed: p.seed, device: p.device, dynamic_sampling: false, scale_rewards: p.scale_rewards };
    const store = new StepStore(join(ctx.checkpointDir, 'steps'));
    const session = await RlSession.start({ signal: ctx.signal, onEvent: forwardEvents(ctx) });
    ctx.progress.total(p.steps, 'steps');
    try {
      const r = await rlLoop({
        tasks, session, trainer, exportDir: join(ctx.checkpointDir, 'export'), store, steps: p.steps, groups: p.groups,
        groupSize: p.group_size, dynamic: p.dynamic_sampling, maxGroups: Math.max(p.max_groups, p.groups), screen: p.screen, keep: p.keep_groups, skipSolved: p.skip_solved, seed: p.seed,
        concurrency: p.concurrency, limits: toLimits(p.limits), sampling: { temperature: p.temperature, topP: p.top_p },
        rewards: p.rewards, signal: ctx.signal, metric: ctx.metric, log: ctx.log, afterStep: (s) => ctx.progress.set(s),
      });
      ctx.log(`train-rl: ${r.finalStep} steps (resumed at ${r.resumedFrom}; replayed ${r.replayed.length}, generated ${r.generated.length})`);
      await session.state({ ...trainer, save_dir: out.dir });
    } finally {
      await session.close().catch(() => session.kill());
    }
    // the trajectory table of the whole run, in step order
    mkdirSync(join(out.dir, 'rollouts'));
    const writer = new TableWriter(Rollout, ctx.nodeId, join(out.dir, 'rollouts'), join(ctx.tmpDir, 'rollout-table'));
    for (const s of store.steps()) {
      const rec = store.read(s);
      await writer.write([...rec.train, ...rec.dropped]);
    }
    await writer.finish();
  },
});
