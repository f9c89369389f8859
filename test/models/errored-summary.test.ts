/*
 * eval-summary says when episodes errored: a 0 % success from episodes that never ran (the context overflowed,
 * the engine failed) is logged as such beside the score, and recorded as a metric.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { evalSummary } from '../../operators/eval-summary.ts';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { silentReporter } from '../../runtime/engine/progress.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { EvalRollout } from '../../schemas/eval.ts';

describe('eval-summary reports errored episodes beside the score', () => {
  it('4 episodes, 3 errored or overflowed: "0.0% (3/4 episodes errored …)"', async () => {
    const row = (i: number, finish_reason: string) => EvalRollout.parse({
      id: `r${i}`, task_id: `t${i % 2}`, world: 'retail', messages: [], tools: [], source: 'eval', teacher: 'local', seed: i, turns: 1,
      finish_reason, split: 'heldout', group_id: `g${i % 2}`, sample: i >> 1, input_ids: [], loss_mask: [], behaviour_logprobs: [],
      prompt_tokens: 0, completion_tokens: 0, timings: [], error_counts: {}, success: false, model: 'm', temperature: 0, verdict: [],
    });
    const rollouts = operator({
      name: 'test-errored-rollouts', version: 1, params: z.object({}), inputs: {}, output: table(EvalRollout),
      async run({ out }) { await out.write([row(0, 'error'), row(1, 'context_overflow'), row(2, 'error'), row(3, 'max_turns')]); },
    });
    const logs: string[] = [];
    const store = mkdtempSync(join(tmpdir(), 'af-errsum-'));
    try {
      const r = await runDag(dag('errsum', (b) => { b.node('eval', evalSummary, {}, { rollouts: b.node('rollouts', rollouts, {}) }); }),
        { storeDir: store, reporter: { ...silentReporter, log: (_id, m) => logs.push(m) } });
      expect(r.nodes.get('eval')?.error).toBeUndefined();
      expect(logs).toContain('m: retail 0.0% (3/4 episodes errored or overflowed the context)');
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });
});
