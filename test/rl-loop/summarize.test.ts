import { describe, expect, it } from 'vitest';
import { summarize } from '../../runtime/eval/summarize.ts';
import { rolloutRow as row } from './rows.ts';

describe('summarize (eval table rows)', () => {
  it('success is the mean over tasks of each task\'s success share; pass^k needs all k samples', () => {
    // bank: t1 2/2, t2 1/2 → success 0.75, pass^2 = (1 + 0) / 2; retail: r1 0/2 with an error count.
    const rows = [
      row('retail', 'r1', false, { error_counts: { tool_unknown_tool: 1 }, finish_reason: 'max_turns' }), row('bank', 't1', true),
      row('bank', 't2', true), row('bank', 't1', true), row('bank', 't2', false), row('retail', 'r1', false),
    ];
    const [bank, retail] = summarize('sft', rows, 0);
    expect(bank).toMatchObject({ model: 'sft', world: 'bank', tasks: 2, samples_per_task: 2, success: 0.75, mean_reward: 0.75 });
    expect(bank.pass_hat_k).toEqual({ 1: 0.75, 2: 0.5 });
    expect(retail).toMatchObject({ world: 'retail', tasks: 1, success: 0, finish_reasons: { answered: 1, max_turns: 1 }, errors: { tool_unknown_tool: 1 } });
  });

  it('uneven sample counts: pass^k stops at the smallest group', () => {
    const [s] = summarize('m', [row('bank', 'a', true), row('bank', 'a', true), row('bank', 'a', false), row('bank', 'b', true)], 1);
    expect(s.samples_per_task).toBe(1);
    expect(Object.keys(s.pass_hat_k)).toEqual(['1']);
    expect(s.success).toBeCloseTo((2 / 3 + 1) / 2, 12);
  });

  it('scales to 200k rollouts of one world (grouping is linear, no spread of a huge array)', () => {
    const rows = Array.from({ length: 200_000 }, (_, i) => row('bank', `t${i}`, i % 4 !== 0));
    const [s] = summarize('big', rows, 0);
    expect(s.tasks).toBe(200_000);
    expect(s.success).toBeCloseTo(0.75, 12);
  });
});
