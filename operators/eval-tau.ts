import PQueue from 'p-queue';
import { setMaxListeners } from 'node:events';
import { z } from 'zod';
import { files, operator, optional, table } from '../runtime/engine/operator.ts';
import { AGENT_ENV, AgentParams, chooseAgent, endpointPolicy } from '../runtime/eval/agent.ts';
import { TAU_SPLITS, type TauDomain } from '../runtime/worlds/tau/data.ts';
import { runTauEpisode } from '../runtime/eval/tau/episode.ts';
import { GoldPolicy } from '../runtime/eval/tau/gold-policy.ts';
import { LlmUser, ScriptedUser, type TauUser } from '../runtime/eval/tau/user.ts';
import { TauWorld, toTask } from '../runtime/worlds/tau/world.ts';
import { TauTrialRow } from '../runtime/eval/results.ts';

/*
 * eval-tau: τ-bench retail/airline episodes (runtime/worlds/tau), `trials` per task for pass^k. The user simulator
 * is an OpenAI-compatible endpoint with upstream's prompt (user: 'endpoint') or the scripted user. One durable batch
 * per task (all its trials), so a rerun resumes. A failed request ends that trial with reward 0 and the error.
 */
export const evalTau = operator({
  name: 'eval-tau',
  version: 3, // 3: agent 'model' runs with the model's own context (max_context), engine params, tool_call_format
  params: AgentParams.extend({
    domain: z.enum(['retail', 'airline']).default('retail'),
    split: z.enum(['test', 'train', 'dev']).default('test'),
    trials: z.number().int().min(1).default(1),
    limit: z.number().int().min(1).optional(),
    max_steps: z.number().int().min(1).default(30),
    concurrency: z.number().int().min(1).default(4),
    user: z.enum(['scripted', 'endpoint']).default('endpoint'),
    user_base_url: z.string().optional(),
    user_model: z.string().optional(),
  }),
  inputs: { model: optional(files()) },
  output: table(TauTrialRow, 'TauTrial'),
  env: AGENT_ENV,
  async run({ params: p, inputs, out, ctx }) {
    if (!TAU_SPLITS[p.domain].includes(p.split)) throw new Error(`eval-tau: τ-bench ${p.domain} has no ${p.split} split (have: ${TAU_SPLITS[p.domain].join(', ')})`);
    const agent = await chooseAgent(p, inputs.model?.dir, ctx.env, 'eval-tau');
    const userPolicy = p.user === 'endpoint' ? endpointPolicy({ ...p, base_url: p.user_base_url ?? p.base_url, model: p.user_model ?? p.model, temperature: undefined }, ctx.env, 'eval-tau user simulator') : null;
    const probe = new TauWorld(p.domain as TauDomain);
    const tasks = probe.data.tasks(p.split).slice(0, p.limit);
    ctx.progress.total(tasks.length * p.trials, 'episodes');
    setMaxListeners(0, ctx.signal); // every in-flight request / sandbox listens for the node's abort
    const queue = new PQueue({ concurrency: p.concurrency });
    await Promise.all(tasks.map((task) => queue.add(async () => {
      const batch = `task-${String(task.index).padStart(5, '0')}`;
      if (out.hasBatch(batch)) { ctx.progress.tick(p.trials); return; }
      const world = new TauWorld(p.domain as TauDomain);
      const goal = toTask(world, task);
      const rows = [];
      for (let trial = 0; trial < p.trials; trial++) {
        const user: TauUser = userPolicy ? new LlmUser(userPolicy) : new ScriptedUser();
        const r = await runTauEpisode({ world, instruction: task.instruction, goalHash: goal.goal.final_state_hash, requiredOutputs: task.outputs,
          agent: agent === 'oracle' ? new GoldPolicy(task) : agent, user, maxSteps: agent === 'oracle' ? task.actions.length + 4 : p.max_steps, seed: trial, signal: ctx.signal });
        rows.push({ task_id: goal.id, domain: p.domain, split: p.split, task_index: task.index, trial, reward: r.reward, hash_match: r.hashMatch,
          missing_outputs: r.missingOutputs, ended: r.ended, steps: r.steps, error: r.error ?? '' });
        ctx.progress.tick();
      }
      await out.writeBatch(batch, rows);
    })));
  },
});
