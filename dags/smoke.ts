import { dag } from '../runtime/engine/dag.ts';
import { generateEpisodes } from '../operators/smoke/generate-episodes.ts';
import { scoreEpisodes } from '../operators/smoke/score-episodes.ts';
import { filterEpisodes } from '../operators/smoke/filter-episodes.ts';
import { summarizeEpisodes } from '../operators/smoke/summarize-episodes.ts';

/** Seconds to run: generate → score → filter → summarize. Used by tests, the crash test and the README. */
export default dag('smoke', (d) => {
  const n = Number(process.env.SMOKE_N ?? 5000);
  const episodes = d.node('episodes', generateEpisodes, { n, seed: 7, delayMs: Number(process.env.SMOKE_DELAY_MS ?? 0) });
  const scored = d.node('scored', scoreEpisodes, {}, { episodes });
  const kept = d.node('kept', filterEpisodes, { minScore: 0.5 }, { episodes: scored });
  d.node('summary', summarizeEpisodes, {}, { episodes: kept });
});
