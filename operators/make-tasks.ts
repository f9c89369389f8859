import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Task } from '../schemas/task.ts';
import { makeTasks as generate, WORLD_NAMES } from '../runtime/worlds/index.ts';

/** Deterministic tasks for the built-in worlds (ids like retail-train-00042; split by hashing the instruction). */
export const makeTasks = operator({
  name: 'make-tasks',
  version: 1,
  description: 'Seeded tasks with verifiable goals at graded difficulty for the built-in tool-use worlds.',
  params: z.object({
    worlds: z.array(z.enum(WORLD_NAMES as [string, ...string[]])).min(1).default([...WORLD_NAMES]),
    n: z.number().int().min(1).default(200).describe('tasks per world'),
    seed: z.number().int().default(0),
    split: z.enum(['train', 'heldout']).default('train'),
    heldout_fraction: z.number().min(0).max(0.9).default(0.2),
    min_difficulty: z.number().int().min(1).default(1),
    max_difficulty: z.number().int().min(1).default(99),
    distractor_rate: z.number().min(0).max(1).default(0.3),
  }),
  inputs: {},
  output: table(Task, 'Task'),
  async run({ params: p, out, ctx }) {
    ctx.progress.total(p.n * p.worlds.length, 'tasks');
    for (const w of p.worlds) {
      const tasks = generate(w, { seed: p.seed, n: p.n, split: p.split, heldoutFraction: p.heldout_fraction,
        minDifficulty: p.min_difficulty, maxDifficulty: p.max_difficulty, distractorRate: p.distractor_rate });
      await out.write(tasks);
      ctx.progress.tick(tasks.length);
    }
  },
});
