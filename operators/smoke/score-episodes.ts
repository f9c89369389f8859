import { z } from 'zod';
import { operator, table } from '../../runtime/engine/operator.ts';
import { Episode, ScoredEpisode } from '../../schemas/smoke.ts';

/** Adds a score: success minus a length penalty and a penalty per failed call. */
export const scoreEpisodes = operator({
  name: 'score-episodes',
  version: 1,
  params: z.object({ lengthPenalty: z.number().min(0).default(0.001), failPenalty: z.number().min(0).default(0.2) }),
  inputs: { episodes: table(Episode, 'Episode') },
  output: table(ScoredEpisode, 'ScoredEpisode'),
  async run({ params, inputs, out, ctx }) {
    ctx.progress.total(await inputs.episodes.count(), 'episodes');
    for await (const batch of inputs.episodes.batches(1000)) {
      await out.write(batch.map((e) => ({
        ...e,
        score: (e.success ? 1 : 0) - params.lengthPenalty * e.tokens - params.failPenalty * e.calls.filter((c) => !c.ok).length,
      })));
      ctx.progress.tick(batch.length);
    }
    ctx.metric('rows', await inputs.episodes.count());
  },
});
