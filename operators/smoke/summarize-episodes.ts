import { z } from 'zod';
import { operator, report, table } from '../../runtime/engine/operator.ts';
import { ScoredEpisode, SmokeSummary } from '../../schemas/smoke.ts';

/** Aggregates in DuckDB over the input's Parquet, without materialising rows in JS. */
export const summarizeEpisodes = operator({
  name: 'summarize-episodes',
  version: 1,
  params: z.object({}),
  inputs: { episodes: table(ScoredEpisode, 'ScoredEpisode') },
  output: report(SmokeSummary, 'SmokeSummary'),
  async run({ inputs }) {
    const by_world = await inputs.episodes.query<{ world: string; n: number; mean_score: number }>(
      'SELECT world, count(*)::INTEGER AS n, avg(score) AS mean_score FROM {table} GROUP BY world ORDER BY world',
    );
    return { rows: await inputs.episodes.count(), by_world };
  },
});
