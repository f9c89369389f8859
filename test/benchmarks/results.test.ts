import { describe, expect, it } from 'vitest';
import { bfclResults, codeResults, erroredSummary, tauResults } from '../../runtime/eval/results.ts';

const v = (category: string, valid: boolean) => ({ id: `${category}-${Math.random()}`, category, valid, error_type: '', error: '', decoded: '' });
const of = (rows: { subset: string; metric: string; value: number; n: number }[], subset: string, metric = 'accuracy') => rows.find((r) => r.subset === subset && r.metric === metric);

describe('benchmark results (runtime/eval/results.ts)', () => {
  it("BFCL: non-live is the unweighted mean of its four categories, live the entry-weighted one, as upstream's summary", () => {
    const rows = bfclResults([
      v('simple', true), v('simple', true), v('simple', true), v('simple', false), // 0.75 over 4
      v('multiple', true), v('parallel', false), v('parallel_multiple', true), // 1, 0, 1
      v('live_simple', true), v('live_simple', true), v('live_simple', true), v('live_multiple', false), // 3/4 weighted
      v('live_parallel', false), v('live_parallel_multiple', true),
      v('irrelevance', true), v('live_irrelevance', false),
    ]);
    expect(of(rows, 'simple')).toMatchObject({ value: 0.75, n: 4 });
    expect(of(rows, 'non_live_ast')).toMatchObject({ value: (0.75 + 1 + 0 + 1) / 4, n: 7 });
    expect(of(rows, 'live_ast')).toMatchObject({ value: 4 / 6, n: 6 });
    expect(of(rows, 'irrelevance_summary')).toMatchObject({ value: 0.5, n: 2 });
    expect(of(bfclResults([v('simple', true)]), 'non_live_ast')).toBeUndefined(); // parts missing: no summary
  });

  it('τ-bench: pass^k per domain/split up to the fewest trials of any task', () => {
    const t = (task_id: string, trial: number, reward: number) => ({ task_id, domain: 'retail', split: 'test', task_index: 0, trial, reward, hash_match: true, missing_outputs: [], ended: '', steps: 1, error: '' });
    const rows = tauResults([t('a', 0, 1), t('a', 1, 1), t('b', 0, 1), t('b', 1, 0)]);
    expect(rows.map((r) => [r.subset, r.metric, r.value])).toEqual([['retail-test', 'pass^1', 0.75], ['retail-test', 'pass^2', 0.5]]);
  });

  it('trials that errored are reported beside the score (errored of attempts), never a silent 0', () => {
    const t = (task_id: string, trial: number, error: string) => ({ task_id, domain: 'retail', split: 'test', task_index: 0, trial, reward: 0, hash_match: false, missing_outputs: [], ended: error ? 'error' : 'max_steps', steps: 1, error });
    const tau = tauResults([t('a', 0, 'token_ids must be a non-empty array'), t('a', 1, 'token_ids must be a non-empty array'), t('b', 0, 'boom'), t('b', 1, '')]);
    expect(tau.map((r) => [r.metric, r.value, r.n, r.errored, r.attempts])).toEqual([['pass^1', 0, 2, 3, 4], ['pass^2', 0, 2, 3, 4]]);
    expect(erroredSummary(tau)).toBe('tau-bench/retail-test pass^1=0.000 with 3/4 errored; tau-bench/retail-test pass^2=0.000 with 3/4 errored');
    const bf = bfclResults([{ ...v('simple', false), error_type: 'request_error' }, v('simple', true)]);
    expect(of(bf, 'simple')).toMatchObject({ value: 0.5, n: 2, errored: 1, attempts: 2 });
    const s = (sample: number, outcome: string) => ({ task_id: 'x', benchmark: 'humaneval', sample, passed: false, outcome, reason: '' });
    expect(codeResults([s(0, 'request_error'), s(1, 'failed')])[0]).toMatchObject({ errored: 1, attempts: 2 });
    expect(erroredSummary(bfclResults([v('simple', true)]))).toBe('');
  });

  it('code: pass@k for k in 1, 10, 100 only where every task has k samples', () => {
    const s = (task_id: string, sample: number, passed: boolean) => ({ task_id, benchmark: 'humaneval', sample, passed, outcome: '', reason: '' });
    const rows = codeResults(Array.from({ length: 10 }, (_, i) => [s('a', i, i === 0), s('b', i, false)]).flat());
    expect(rows.map((r) => r.metric)).toEqual(['pass@1', 'pass@10']);
    expect(rows[0].value).toBeCloseTo(0.05);
    expect(rows[1].value).toBeCloseTo(0.5);
  });
});
