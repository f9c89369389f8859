/*
 * rollout: G rollouts per task of a policy (an ONNX export) with the multi-turn agent loop, scored with the mixed
 * reward. Groups are written in durable batches, so a killed run resumes without losing or repeating a group.
 */
import { z } from 'zod';
import { files, operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { Rollout } from '../schemas/rollout.ts';
import { RewardParams } from '../runtime/rewards/mix.ts';
import { DEFAULT_ENGINE, describePolicy, EngineParams, LimitParams, loadPolicy, toLimits } from '../runtime/agent/local.ts';
import { rolloutTasks } from '../runtime/rl/rollouts.ts';
import { rolloutMetrics } from '../runtime/rl/metrics.ts';

export const RolloutParams = z.object({
  split: z.enum(['train', 'heldout']).default('train'),
  /** Tasks to use (first n by id; null = all). */
  n_tasks: z.number().int().min(1).nullable().default(null),
  group_size: z.number().int().min(1).default(4),
  temperature: z.number().min(0).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  seed: z.number().int().default(0),
  concurrency: z.number().int().min(1).default(32),
  batch_groups: z.number().int().min(1).default(32),
  limits: LimitParams.default(LimitParams.parse({})),
  engine: EngineParams.default(DEFAULT_ENGINE),
  rewards: RewardParams.default(RewardParams.parse({})),
  /** Jinja source replacing the model's own chat template (a tools-aware one where the model's drops tools). */
  chat_template: z.string().min(1).nullable().default(null),
  /** How the model writes tool calls (runtime/agent/tool-formats.ts: hermes, llama3-json, mistral); null = the one its chat template renders. */
  tool_call_format: z.string().min(1).nullable().default(null),
});

export const rollout = operator({
  name: 'rollout',
  version: 5, // 5: the repo world's submit ends the episode; 4: context defaults to the model's own (limits.max_context null); engine params
  description: 'multi-turn rollouts of an ONNX policy on tasks (G per task), scored with the mixed reward',
  params: RolloutParams,
  inputs: { tasks: table(Task, 'Task'), policy: files() },
  output: table(Rollout, 'Rollout'),
  async run({ params: p, inputs, out, ctx }) {
    const all = (await inputs.tasks.all()).filter((t) => t.split === p.split).sort((a, b) => (a.id < b.id ? -1 : 1));
    const tasks = p.n_tasks === null ? all : all.slice(0, p.n_tasks);
    if (!tasks.length) throw new Error(`rollout: input tasks (node ${inputs.tasks.node}) have no ${p.split} task`);
    const policy = await loadPolicy(inputs.policy.dir, { maxBatch: p.concurrency, maxContext: p.limits.max_context, engine: p.engine, signal: ctx.signal, chatTemplate: p.chat_template, toolCallFormat: p.tool_call_format });
    ctx.log(`rollout: ${describePolicy(inputs.policy.dir, policy)}`);
    ctx.progress.total(tasks.length * p.group_size, 'rollouts');
    try {
      for (let b = 0; b * p.batch_groups < tasks.length; b++) {
        const id = `b${String(b).padStart(5, '0')}`;
        const chunk = tasks.slice(b * p.batch_groups, (b + 1) * p.batch_groups);
        if (out.hasBatch(id)) { ctx.progress.tick(chunk.length * p.group_size); continue; }
        const groups = await rolloutTasks(chunk, { policy, limits: toLimits(p.limits, policy.maxContext), sampling: { temperature: p.temperature, topP: p.top_p },
          rewards: p.rewards, groupSize: p.group_size, concurrency: p.concurrency, step: -1, seed: p.seed, signal: ctx.signal });
        await out.writeBatch(id, groups.flat());
        for (const [k, v] of Object.entries(rolloutMetrics(groups.flat()))) ctx.metric(`rollout/${k}`, v, b);
        ctx.progress.tick(chunk.length * p.group_size);
      }
    } finally {
      await policy.engine.close();
    }
  },
});
