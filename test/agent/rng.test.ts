/*
 * The one seeded RNG: derive(...) must give the numbers the hand-written sub-seed recipes gave (stored tasks,
 * splits, noise plans and rollout seeds depend on them), and the generator must keep its sequence.
 */
import { describe, expect, it } from 'vitest';
import { derive, derive31, mulberry32, Rng, turnSeed } from '../../runtime/engine/rng.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { sampleSeed } from '../../runtime/rl/groups.ts';

/** FNV-1a written out independently, over the exact strings the old recipes built. */
function fnv(s: string): number {
  let h = 2166136261;
  for (const ch of s) for (const unit of ch.length === 1 ? [ch.charCodeAt(0)] : [ch.charCodeAt(0), ch.charCodeAt(1)]) {
    h = Number((BigInt(h ^ unit) * 16777619n) % 4294967296n);
  }
  return h >>> 0;
}

describe('derive', () => {
  it('joins its labels with ":" exactly as the old template strings did', () => {
    expect(derive('noise', 'retail-train-00042', 3)).toBe(fnv('noise:retail-train-00042:3'));
    expect(derive('split', 'bank', 'Pay Anna 12.50 (é)')).toBe(fnv('split:bank:Pay Anna 12.50 (é)'));
    expect(derive('rl-tasks', 7, 12)).toBe(fnv('rl-tasks:7:12'));
    expect(derive('filter', -1)).toBe(fnv('filter:-1'));
    expect(derive31('retail', 7, 0)).toBe(fnv('retail:7:0') >>> 1);
    expect(sampleSeed(1, 2, 'bank-train-00001', 3)).toBe(fnv('rollout:1:2:bank-train-00001:3') >>> 1);
  });

  it('task seeds are the stored ones (makeTasks: world:seed:index, int31)', () => {
    const tasks = makeTasks('retail', { seed: 7, n: 3, split: 'train' });
    // values printed by the pre-derive code (runtime/worlds/rng.ts hash32 + makeTasks) at commit 3e49309
    expect(tasks.map((t) => [t.id, t.seed])).toEqual([['retail-train-00000', 1521497935], ['retail-train-00001', 1513109126], ['retail-train-00002', 1538275554]]);
  });

  it('keeps the mulberry32 sequence and the arithmetic turn seed', () => {
    const r = mulberry32(1);
    expect([r(), r(), r()].map((x) => Math.round(x * 1e9))).toEqual([627073941, 2735721, 527447040]);
    const g = new Rng(1);
    expect(Math.round(g.next() * 1e9)).toBe(627073941);
    const noise = Rng.derive('noise', 'retail-train-00001', 2);
    expect([noise.next(), noise.int(0, 100)]).toEqual([0.06334382365457714, 53]);
    expect(Rng.derive('filter', 0).next()).toBe(new Rng(fnv('filter:0')).next());
    expect(turnSeed(4_000_000_000, 3)).toBe((4_000_000_000 * 1009 + 3) >>> 0);
  });
});
