import { z } from 'zod';
import { operator, table } from '../../runtime/engine/operator.ts';
import { ScoredEpisode } from '../../schemas/smoke.ts';

export const filterEpisodes = operator({
  name: 'filter-episodes',
  version: 1,
  params: z.object({ minScore: z.number().default(0), maxTurns: z.number().int().min(1).default(6) }),
  inputs: { episodes: table(ScoredEpisode, 'ScoredEpisode') },
  output: table(ScoredEpisode, 'ScoredEpisode'),
  async run({ params, inputs, out, ctx }) {
    let kept = 0;
    for await (const batch of inputs.episodes.batches(1000)) {
      const keep = batch.filter((e) => e.score >= params.minScore && e.turns <= params.maxTurns);
      kept += keep.length;
      await out.write(keep);
      ctx.progress.tick(batch.length);
    }
    ctx.metric('kept', kept);
  },
});
