/*
 * evaluate: success rate and pass^k of one or more policies (ONNX exports) on held-out tasks, into one eval
 * table: a row per (model, world). Models are named by `labels` (same order as the `models` input), so a DAG
 * compares base, SFT, RL (and later experts or merges) in one table:
 *   agentforge sql "select model, world, success, pass_hat_k from eval order by model"
 */
import { z } from 'zod';
import { files, many, operator, table } from '../runtime/operator.ts';
import { Task } from '../schemas/task.ts';
import { EvalRow } from '../schemas/eval.ts';
import { RewardParams } from '../runtime/rewards/mix.ts';
import { LimitParams, loadPolicy, rolloutTasks, toLimits } from '../runtime/rollout/policy.ts';
import { summarize } from '../runtime/rollout/evaluate.ts';

export const EvaluateParams = z.object({
  labels: z.array(z.string().min(1)).min(1),
  split: z.enum(['train', 'heldout']).default('heldout'),
  n_tasks: z.number().int().min(1).nullable().default(null),
  /** Samples per task (k of pass^k). With temperature 0 (greedy) every sample is the same, so 1 is enough. */
  samples: z.number().int().min(1).default(1),
  temperature: z.number().min(0).default(0),
  seed: z.number().int().default(0),
  concurrency: z.number().int().min(1).default(32),
  limits: LimitParams.default(LimitParams.parse({})),
  rewards: RewardParams.default(RewardParams.parse({})),
});

export const evaluate = operator({
  name: 'evaluate',
  version: 1,
  description: 'held-out success rate and pass^k of policies (ONNX exports), one eval table',
  params: EvaluateParams,
  inputs: { tasks: table(Task, 'Task'), models: many(files()) },
  output: table(EvalRow, 'EvalRow'),
  async run({ params: p, inputs, out, ctx }) {
    if (p.labels.length !== inputs.models.length) {
      throw new Error(`evaluate: ${inputs.models.length} models but ${p.labels.length} labels (${p.labels.join(', ')}); give one label per model`);
    }
    const all = (await inputs.tasks.all()).filter((t) => t.split === p.split).sort((a, b) => (a.id < b.id ? -1 : 1));
    const tasks = p.n_tasks === null ? all : all.slice(0, p.n_tasks);
    if (!tasks.length) throw new Error(`evaluate: input tasks (node ${inputs.tasks.node}) have no ${p.split} task`);
    ctx.progress.total(tasks.length * p.samples * p.labels.length, 'rollouts');
    for (const [i, m] of inputs.models.entries()) {
      const policy = await loadPolicy(m.dir, { maxBatch: p.concurrency, maxContext: p.limits.max_context, signal: ctx.signal });
      try {
        const groups = await rolloutTasks(tasks, { policy, limits: toLimits(p.limits), sampling: { temperature: p.temperature, topP: 1 },
          rewards: p.rewards, groupSize: p.samples, concurrency: p.concurrency, step: -1, seed: p.seed, signal: ctx.signal });
        const rows = summarize(p.labels[i], groups.flat(), p.temperature);
        await out.write(rows);
        for (const r of rows) ctx.metric(`eval/${r.model}/${r.world}/success`, r.success);
        ctx.log(`evaluate ${p.labels[i]}: ${rows.map((r) => `${r.world} ${(r.success * 100).toFixed(1)}%`).join(', ')}`);
        ctx.progress.tick(tasks.length * p.samples);
      } finally {
        await policy.engine.close();
      }
    }
  },
});
