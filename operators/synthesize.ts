import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { Trajectory } from '../schemas/trajectory.ts';
import type { ChatPolicy } from '../runtime/agent/policy.ts';
import { openAIChatPolicy, openAIOptionsFromEnv } from '../runtime/agent/engines/openai-chat.ts';
import { scriptedTeacher, scriptedUser } from '../runtime/agent/scripted.ts';
import { llmUser } from '../runtime/synth/llm-user.ts';
import { NOISE_KINDS } from '../runtime/agent/plan.ts';
import { synthesize as synthesizeAll } from '../runtime/synth/synthesize.ts';

/*
 * Multi-turn synthesis: per task, N episodes of teacher ↔ user ↔ world. The teacher and the user are either the
 * scripted players (offline; noise yields labelled failures) or an OpenAI-compatible endpoint configured by
 * AGENTFORGE_OPENAI_BASE_URL / AGENTFORGE_OPENAI_MODEL (part of the cache key) and AGENTFORGE_OPENAI_API_KEY (not).
 * Episodes are written in durable batches: a killed node that is rerun resumes without losing or duplicating.
 */
export const synthesize = operator({
  name: 'synthesize',
  version: 3, // 3: the repo world's submit ends the episode (the teacher no longer closes with a sentence)
  params: z.object({
    per_task: z.number().int().min(1).default(4),
    seed: z.number().int().default(0),
    teacher: z.enum(['scripted', 'openai']).default('scripted'),
    user: z.enum(['scripted', 'openai']).default('scripted'),
    noise: z.number().min(0).max(1).default(0).describe('scripted teacher: share of trajectories with one mistake'),
    noise_kinds: z.array(z.enum(NOISE_KINDS)).default([...NOISE_KINDS]),
    /** Held-out tasks are never synthesized unless asked for explicitly. */
    split: z.enum(['train', 'heldout']).default('train'),
    concurrency: z.number().int().min(1).default(16),
    max_error_rate: z.number().min(0).max(1).default(0.2)
      .describe('share of episodes that may fail on the endpoint; past it the node fails, naming the endpoint, and commits nothing'),
    batch_size: z.number().int().min(1).default(256),
    max_turns: z.number().int().min(1).default(16),
    max_tokens: z.number().int().min(64).default(4096),
    openai: z.object({
      timeout_ms: z.number().int().min(1).default(60_000),
      max_retries: z.number().int().min(0).default(6),
      backoff_ms: z.number().int().min(0).default(500),
      temperature: z.number().min(0).optional(),
      max_tokens: z.number().int().min(1).optional(),
    }).default({ timeout_ms: 60_000, max_retries: 6, backoff_ms: 500 }),
  }),
  inputs: { tasks: table(Task, 'Task') },
  output: table(Trajectory, 'Trajectory'),
  env: ['AGENTFORGE_OPENAI_BASE_URL', 'AGENTFORGE_OPENAI_MODEL'],
  async run({ params: p, inputs, out, ctx }) {
    const tasks = (await inputs.tasks.all()).filter((t) => t.split === p.split).sort((a, b) => (a.id < b.id ? -1 : 1));
    const endpointOptions = p.teacher === 'openai' || p.user === 'openai' ? openAIOptionsFromEnv({ ...process.env, ...ctx.env }) : null;
    const remote = endpointOptions
      ? openAIChatPolicy({ ...endpointOptions, timeoutMs: p.openai.timeout_ms, maxRetries: p.openai.max_retries,
        backoffMs: p.openai.backoff_ms, temperature: p.openai.temperature, maxTokens: p.openai.max_tokens })
      : null;
    const teacher = (t: Task, seed: number): ChatPolicy => remote && p.teacher === 'openai' ? remote : scriptedTeacher(t, seed, { rate: p.noise, kinds: p.noise_kinds });
    const user = (t: Task): ChatPolicy => (remote && p.user === 'openai' ? llmUser(remote, t) : scriptedUser(t));
    ctx.progress.total(tasks.length * p.per_task, 'trajectories');
    const r = await synthesizeAll({
      tasks, perTask: p.per_task, seed: p.seed, batchSize: p.batch_size, concurrency: p.concurrency, teacher, user,
      maxTurns: p.max_turns, maxTokens: p.max_tokens, signal: ctx.signal, maxErrorRate: p.max_error_rate,
      endpoint: endpointOptions ? `${endpointOptions.baseURL} (model ${endpointOptions.model})` : 'scripted players',
      sink: { has: (id) => out.hasBatch(id), write: (id, rows) => out.writeBatch(id, rows), writeProvisional: (rows) => out.write(rows) },
      onEpisode: () => ctx.progress.tick(),
    });
    ctx.progress.tick(r.skipped);
    ctx.log(`synthesized ${r.written} trajectories in ${r.batches} batches (${r.skipped} resumed from checkpoints)`);
    if (r.endpointErrors) {
      ctx.metric('endpoint_errors', r.endpointErrors);
      // queryable now (finish_reason 'error', errors teacher_error/user_error); their batches are redone next run
      ctx.retryNextRun?.(`${r.endpointErrors} trajectories failed on the endpoint (within max_error_rate ${p.max_error_rate}); their batches are retried`);
    }
    if (remote) for (const [cause, n] of Object.entries(remote.stats.byCause)) ctx.metric(`retries/${cause}`, n);
  },
});
