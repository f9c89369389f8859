import { z } from 'zod';

/** A compact episode summary used by the smoke DAG (seconds to run; exercises every engine path). */
export const Episode = z.object({
  id: z.string(),
  world: z.string(),
  turns: z.number().int(),
  calls: z.array(z.object({ name: z.string(), ok: z.boolean(), args: z.record(z.string(), z.unknown()) })),
  success: z.boolean(),
  tokens: z.number().int(),
});
export type Episode = z.infer<typeof Episode>;

export const ScoredEpisode = Episode.extend({ score: z.number() });
export type ScoredEpisode = z.infer<typeof ScoredEpisode>;

export const SmokeSummary = z.object({
  rows: z.number().int(),
  by_world: z.array(z.object({ world: z.string(), n: z.number().int(), mean_score: z.number() })),
});
