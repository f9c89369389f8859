import { z } from 'zod';
import { operator, table } from '../runtime/engine/operator.ts';
import { Trajectory } from '../schemas/trajectory.ts';
import { CALL_KINDS, callConversation, kindCounts } from '../runtime/synth/calls.ts';

/**
 * Single-turn function-calling conversations over everyday functions outside the built-in worlds, freshly named per
 * conversation (runtime/synth/calls.ts), for build-sft-shards' `extra` input. Fine-tuning on the worlds alone teaches
 * a model their tool names: on BFCL it then calls functions it was not given and calls on every request, even one no
 * offered tool serves. These rows keep it reading the tool list. Inspect them with
 *   select task_id, messages[1].content, messages[2].tool_calls from synth_calls
 */
export const synthesizeCalls = operator({
  name: 'synthesize-calls',
  version: 1,
  description: 'Seeded single-turn function-calling conversations (one/several tools, parallel calls, no fitting tool) for SFT.',
  params: z.object({
    n: z.number().int().min(1).default(300),
    seed: z.number().int().default(0),
    /** Relative weight per kind; kinds left out (or 0) are not generated. */
    kinds: z.partialRecord(z.enum(CALL_KINDS), z.number().min(0))
      .default({ simple: 3, multiple: 3, parallel: 1, parallel_multiple: 1, irrelevance: 2 }),
    max_tools: z.number().int().min(2).max(8).default(4).describe('most tools offered in one conversation'),
  }),
  inputs: {},
  output: table(Trajectory, 'Trajectory'),
  async run({ params: p, out, ctx }) {
    ctx.progress.total(p.n, 'conversations');
    let i = 0;
    for (const [kind, count] of kindCounts(p.n, p.kinds)) {
      const rows = Array.from({ length: count }, () => callConversation(p.seed, i++, kind, p.max_tools));
      await out.write(rows);
      ctx.metric(`calls/${kind}`, count);
      ctx.progress.tick(count);
    }
  },
});
