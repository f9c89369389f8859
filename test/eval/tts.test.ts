/*
 * Test-time scaling rules on hand-built rollouts whose right answer is known: which sample each selector picks,
 * the nested first-n subsets, ties, pass@k / pass^k values against the closed forms, and the refusal of a
 * request for more samples than were drawn.
 */
import { describe, expect, it } from 'vitest';
import type { EvalRollout } from '../../schemas/eval.ts';
import { callSequence, finalAnswer, meanLogprob, powersUpTo, scaleTestTime, select } from '../../runtime/eval/tts.ts';
import { passCurves } from '../../runtime/eval/tts-curves.ts';
import { rolloutRow } from '../rl-loop/rows.ts';

function sample(task: string, i: number, o: { ok: boolean; answer: string; call?: Record<string, unknown>; lp: number; reward?: number; model?: string }): EvalRollout {
  const messages = [
    { role: 'user' as const, content: 'q', tool_calls: [], tool_call_id: null, name: null },
    ...(o.call ? [{ role: 'assistant' as const, content: '', tool_calls: [{ id: 'c', name: 'get', arguments: o.call, raw: '' }], tool_call_id: null, name: null }] : []),
    { role: 'assistant' as const, content: o.answer, tool_calls: [], tool_call_id: null, name: null },
  ];
  return { ...rolloutRow('retail', task, o.ok, { sample: i, messages, reward: o.reward ?? (o.ok ? 1 : 0), loss_mask: [0, 1, 1], behaviour_logprobs: [0, o.lp, o.lp] }),
    model: o.model ?? 'sft', temperature: 1, verdict: [] };
}

describe('test-time scaling selectors', () => {
  // Task t: samples 0 and 3 say "42" (wrong), 1 and 2 say "41" (right); sample 3 is the most confident.
  const t = [
    sample('t', 0, { ok: false, answer: '42', call: { id: 1 }, lp: -2 }),
    sample('t', 1, { ok: true, answer: '41.', call: { id: 2 }, lp: -1.5 }),
    sample('t', 2, { ok: true, answer: ' 41', call: { id: 2 }, lp: -1.2 }),
    sample('t', 3, { ok: false, answer: '42', call: { id: 1 }, lp: -0.1 }),
  ];

  it('the verifier picks a passing sample, logprob the most confident one', () => {
    expect(select(t, 'verifier').sample).toBe(1);
    expect(select(t, 'logprob').sample).toBe(3);
    expect(meanLogprob(t[2])).toBeCloseTo(-1.2);
  });

  it('votes cluster normalised answers and canonical call sequences; a tie goes to the more confident cluster', () => {
    expect(finalAnswer(t[1])).toBe(finalAnswer(t[2]));
    expect(callSequence(sample('x', 0, { ok: true, answer: '', call: { b: 1, a: 2 }, lp: 0 })))
      .toBe(callSequence(sample('x', 1, { ok: true, answer: '', call: { a: 2, b: 1 }, lp: 0 })));
    // 2 vs 2: cluster "42" has mean logprob −1.05, "41" −1.35 → "42", its most confident member.
    expect(select(t, 'vote-answer').sample).toBe(3);
    // With three samples "41" has the majority.
    expect(select(t.slice(0, 3), 'vote-answer').success).toBe(true);
    expect(select(t.slice(0, 3), 'vote-calls').success).toBe(true);
  });

  it('scores the first n samples per task for n = 1, 2, 4', () => {
    const u = [0, 1, 2, 3].map((i) => sample('u', i, { ok: i === 3, answer: String(i), lp: -1 }));
    const rows = scaleTestTime([...t, ...u], ['verifier', 'logprob'], null, 'best-of-n', 'test');
    const get = (s: string, n: number) => rows.find((r) => r.strategy === s && r.n === n)!.success;
    expect(powersUpTo(4)).toEqual([1, 2, 4]);
    expect(powersUpTo(6)).toEqual([1, 2, 4, 6]);
    expect(rows.map((r) => `${r.strategy}:${r.n}`)).toEqual(['best-of-n/verifier:1', 'best-of-n/verifier:2', 'best-of-n/verifier:4', 'best-of-n/logprob:1', 'best-of-n/logprob:2', 'best-of-n/logprob:4']);
    expect([get('best-of-n/verifier', 1), get('best-of-n/verifier', 2), get('best-of-n/verifier', 4)]).toEqual([0, 0.5, 1]);
    // logprob: t picks sample 1 at n = 2 (−1.5 > −2), sample 3 at n = 4; u ties everywhere → its first sample.
    expect([get('best-of-n/logprob', 2), get('best-of-n/logprob', 4)]).toEqual([0.5, 0]);
  });

  it('refuses N larger than the samples drawn, naming the task and the fix', () => {
    expect(() => scaleTestTime(t.slice(0, 2), ['verifier'], [4], 'best-of-n', "best-of-n node 'tts'"))
      .toThrow(/best-of-n node 'tts': task t of model sft has 2 samples but N = 4 was asked; evaluate with samples ≥ N/);
  });

  it('pass@k and pass^k curves match the closed forms', () => {
    const rows = passCurves(t); // n = 4, c = 2
    const v = (m: string, k: number) => rows.find((r) => r.metric === m && r.k === k)!.value;
    expect(v('pass@k', 1)).toBeCloseTo(0.5);
    expect(v('pass@k', 2)).toBeCloseTo(1 - 1 / 6);
    expect(v('pass@k', 3)).toBe(1);
    expect(v('pass^k', 2)).toBeCloseTo(1 / 6);
    expect(v('pass^k', 3)).toBe(0);
    expect(rows).toHaveLength(8);
  });
});
