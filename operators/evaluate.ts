/*
 * evaluate: rolls out one or more policies (ONNX exports) on held-out tasks and keeps every rollout, labelled
 * with its model and the verifier's reasons, so a failure can be read turn by turn. `eval-summary` turns this
 * table into success rate and pass^k per (model, world):
 *   agentforge sql "select model, task_id, verdict from eval_rollouts where not success"
 */
import { z } from 'zod';
import { files, many, operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { EvalRollout } from '../schemas/eval.ts';
import { RewardParams } from '../runtime/rewards/mix.ts';
import { DEFAULT_ENGINE, describePolicy, EngineParams, LimitParams, loadPolicy, toLimits } from '../runtime/agent/local.ts';
import { rolloutTasks } from '../runtime/rl/rollouts.ts';
import { verifyMany } from '../runtime/worlds/verify.ts';

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
  engine: EngineParams.default(DEFAULT_ENGINE),
  rewards: RewardParams.default(RewardParams.parse({})),
  /** Jinja source replacing the model's own chat template (a tools-aware one where the model's drops tools). */
  chat_template: z.string().min(1).nullable().default(null),
  /** How the model writes tool calls (runtime/agent/tool-formats.ts: hermes, llama3-json, mistral); null = the one its chat template renders. */
  tool_call_format: z.string().min(1).nullable().default(null),
});

export const evaluate = operator({
  name: 'evaluate',
  version: 6, // 6: the repo world's submit ends the episode; 5: context defaults to the model's own (limits.max_context null); engine params
  description: 'held-out rollouts of policies (ONNX exports), each with its model label and verdict',
  params: EvaluateParams,
  inputs: { tasks: table(Task, 'Task'), models: many(files()) },
  output: table(EvalRollout, 'EvalRollout'),
  async run({ params: p, inputs, out, ctx }) {
    if (new Set(p.labels).size !== p.labels.length) throw new Error(`evaluate: labels must be distinct, got ${p.labels.join(', ')}`);
    if (p.labels.length !== inputs.models.length) {
      throw new Error(`evaluate: ${inputs.models.length} models but ${p.labels.length} labels (${p.labels.join(', ')}); give one label per model`);
    }
    const all = (await inputs.tasks.all()).filter((t) => t.split === p.split).sort((a, b) => (a.id < b.id ? -1 : 1));
    const tasks = p.n_tasks === null ? all : all.slice(0, p.n_tasks);
    if (!tasks.length) throw new Error(`evaluate: input tasks (node ${inputs.tasks.node}) have no ${p.split} task`);
    ctx.progress.total(tasks.length * p.samples * p.labels.length, 'rollouts');
    for (const [i, m] of inputs.models.entries()) {
      const model = p.labels[i];
      const policy = await loadPolicy(m.dir, { maxBatch: p.concurrency, maxContext: p.limits.max_context, engine: p.engine, signal: ctx.signal, chatTemplate: p.chat_template, toolCallFormat: p.tool_call_format });
      ctx.log(`evaluate ${model}: ${describePolicy(m.dir, policy)}`);
      try {
        const groups = await rolloutTasks(tasks, { policy, limits: toLimits(p.limits, policy.maxContext), sampling: { temperature: p.temperature, topP: 1 },
          rewards: p.rewards, groupSize: p.samples, concurrency: p.concurrency, step: -1, seed: p.seed, signal: ctx.signal });
        // the program-running worlds (code, repo) verify in the sandbox, hence async
        const pairs = groups.flatMap((g, t) => g.map((r) => [r, tasks[t]] as [typeof r, typeof tasks[number]]));
        const verdicts = await verifyMany(pairs, 4, ctx.signal);
        const rows = pairs.map(([r], i) => ({ ...r, model, temperature: p.temperature, verdict: verdicts[i].reasons }));
        await out.write(rows);
        const ok = rows.filter((r) => r.success).length;
        ctx.log(`evaluate ${model}: ${ok}/${rows.length} rollouts succeeded`);
        ctx.progress.tick(rows.length);
      } finally {
        await policy.engine.close();
      }
    }
  },
});
