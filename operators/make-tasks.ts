import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { ALL_WORLD_NAMES, generateTasks as generate, HELDOUT_PROBE, PROBE_MAX_DIFFICULTY, WORLD_NAMES } from '../runtime/worlds/index.ts';

/**
 * Deterministic tasks for the built-in worlds (ids like retail-train-00042; split by hashing the instruction).
 * v2: the held-out split's probe (templates never in training, tasks longer than max_difficulty) and every task's
 * template and template_seen; train rows unchanged. Slice evaluations in SQL with
 *   select t.template_seen, t.difficulty, avg(r.success::int) from eval_rollouts r join heldout_tasks t on t.id = r.task_id group by all
 */
export const makeTasks = operator({
  name: 'make-tasks',
  version: 2,
  description: 'Seeded tasks with verifiable goals at graded difficulty for the built-in worlds (tool use; code and repo repair by name).',
  params: z.object({
    worlds: z.array(z.enum(ALL_WORLD_NAMES as [string, ...string[]])).min(1).default([...WORLD_NAMES]),
    n: z.number().int().min(1).default(200).describe('tasks per world'),
    seed: z.number().int().default(0),
    split: z.enum(['train', 'heldout']).default('train'),
    heldout_fraction: z.number().min(0).max(0.9).default(0.2),
    min_difficulty: z.number().int().min(1).default(1),
    max_difficulty: z.number().int().min(1).default(99),
    distractor_rate: z.number().min(0).max(1).default(0.3),
    heldout_probe: z.number().min(0).max(1).default(HELDOUT_PROBE)
      .describe('held-out split: share of tasks from templates never in training and tasks longer than max_difficulty (worlds with held-out-only templates: retail, bank)'),
    probe_max_difficulty: z.number().int().min(1).default(PROBE_MAX_DIFFICULTY).describe('held-out probe: longest task in gold tool calls'),
  }),
  inputs: {},
  output: table(Task, 'Task'),
  async run({ params: p, out, ctx }) {
    ctx.progress.total(p.n * p.worlds.length, 'tasks');
    let rejected = 0;
    // the repo world checks each generated repository in the sandbox; a rejected one is logged with its reason
    const onReject = (why: string) => { rejected++; if (rejected <= 20) ctx.log(`rejected: ${why}`); };
    for (const w of p.worlds) {
      const tasks = await generate(w, { seed: p.seed, n: p.n, split: p.split, heldoutFraction: p.heldout_fraction,
        minDifficulty: p.min_difficulty, maxDifficulty: p.max_difficulty, distractorRate: p.distractor_rate,
        probe: p.heldout_probe, probeMaxDifficulty: p.probe_max_difficulty, onReject });
      await out.write(tasks);
      ctx.progress.tick(tasks.length);
    }
    if (rejected) ctx.metric('rejected_drafts', rejected);
  },
});
