import { describe, expect, it } from 'vitest';
import { pairedBootstrap } from '../../runtime/eval/bootstrap.ts';
import { Rng } from '../../runtime/engine/rng.ts';

describe('paired bootstrap of a success difference over tasks', () => {
  it('identical models: difference 0 and an interval that is exactly [0, 0]', () => {
    const a = Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    const r = pairedBootstrap(a, a.slice());
    expect(r).toMatchObject({ n: 200, diff: 0, lo: 0, hi: 0, level: 0.95 });
    expect(r.mean_a).toBeCloseTo(67 / 200, 12);
  });

  it('B better on every task: the interval is above 0 (the difference itself when it is constant)', () => {
    const a = Array.from({ length: 50 }, () => 0), b = a.map(() => 1);
    expect(pairedBootstrap(a, b)).toMatchObject({ diff: 1, lo: 1, hi: 1 });
    const mixed = pairedBootstrap(a, b.map((x, i) => (i < 10 ? 0 : x)));
    expect(mixed.diff).toBeCloseTo(0.8, 12);
    expect(mixed.lo).toBeGreaterThan(0.6);
    expect(mixed.hi).toBeLessThanOrEqual(1);
  });

  it('matches the binomial interval it estimates: k of n tasks gained, none lost', () => {
    // d is 1 on k tasks and 0 elsewhere, so the resampled mean is Binomial(n, k/n)/n: p ± 1.96·sqrt(p(1−p)/n)
    const n = 400, k = 100, p = k / n;
    const a = Array.from({ length: n }, () => 0), b = a.map((_, i) => (i < k ? 1 : 0));
    const r = pairedBootstrap(a, b, { seed: 3 });
    const half = 1.96 * Math.sqrt((p * (1 - p)) / n);
    expect(r.diff).toBeCloseTo(p, 12);
    expect(r.lo).toBeCloseTo(p - half, 2);
    expect(r.hi).toBeCloseTo(p + half, 2);
  });

  it('gains and losses that cancel: an interval around 0 that contains it', () => {
    const rng = new Rng(9);
    const a = Array.from({ length: 300 }, () => (rng.chance(0.5) ? 1 : 0));
    const b = a.map((x, i) => (i % 10 === 0 ? 1 - x : x)); // 30 flips, in both directions
    const r = pairedBootstrap(a, b);
    expect(Math.abs(r.diff)).toBeLessThan(0.03);
    expect(r.lo).toBeLessThan(0);
    expect(r.hi).toBeGreaterThan(0);
  });

  it('is seeded: same seed, same interval; another seed, a close one', () => {
    const rng = new Rng(1);
    const a = Array.from({ length: 100 }, () => (rng.chance(0.6) ? 1 : 0)), b = Array.from({ length: 100 }, () => (rng.chance(0.7) ? 1 : 0));
    expect(pairedBootstrap(a, b, { seed: 5 })).toEqual(pairedBootstrap(a, b, { seed: 5 }));
    const other = pairedBootstrap(a, b, { seed: 6 });
    expect(other.lo).not.toBe(pairedBootstrap(a, b, { seed: 5 }).lo);
    expect(Math.abs(other.lo - pairedBootstrap(a, b, { seed: 5 }).lo)).toBeLessThan(0.02);
  });

  it('refuses unpaired, empty or non-finite input, naming the fix', () => {
    expect(() => pairedBootstrap([1, 0], [1])).toThrow(/2 scores for A but 1 for B; pass one score per task for both/);
    expect(() => pairedBootstrap([], [])).toThrow(/no tasks/);
    expect(() => pairedBootstrap([0, Number.NaN], [0, 1])).toThrow(/task 1 has a non-finite score/);
    expect(() => pairedBootstrap([0], [1], { level: 1 })).toThrow(/level must be in \(0, 1\)/);
  });
});
