import { describe, expect, it } from 'vitest';
import type { Trajectory, Verdict } from '../../schemas/trajectory.ts';
import { makeTasks } from '../../runtime/worlds/index.ts';
import { actionSignature, curate, FilterParams } from '../../runtime/synth/filter.ts';
import { verifyTrajectory } from '../../runtime/worlds/verify.ts';
import { episode } from './helpers.ts';

const tasks = [...makeTasks('retail', { seed: 6, n: 30 }), ...makeTasks('bank', { seed: 6, n: 30 })];
const trajs: Trajectory[] = [];
const verdicts = new Map<string, Verdict>();
for (const t of tasks) {
  for (const seed of [1, 2, 3]) {
    const tr = await episode(t, seed, { rate: 0.3 });
    trajs.push(tr);
    verdicts.set(tr.id, verifyTrajectory(tr, t));
  }
}
const run = (p: Partial<FilterParams>) => curate(trajs, verdicts, FilterParams.parse(p));
const kept = (rows: ReturnType<typeof run>) => rows.filter((r) => r.kept);

describe('filter', () => {
  it('keeps every row with a reason, rejects failed verdicts, dedups per task', () => {
    const rows = run({});
    expect(rows.map((r) => r.id)).toEqual(trajs.map((t) => t.id).sort());
    for (const r of rows) expect(r.kept).toBe(r.filter_reasons.length === 0);
    for (const r of kept(rows)) expect(verdicts.get(r.id)!.pass).toBe(true);
    expect(rows.some((r) => r.filter_reasons[0]?.startsWith('verify: '))).toBe(true);
    const sigs = kept(rows).map((r) => `${r.task_id}|${actionSignature(r)}`);
    expect(new Set(sigs).size).toBe(sigs.length);
    expect(rows.some((r) => r.filter_reasons[0]?.startsWith('duplicate_of: '))).toBe(true);
    expect(kept(run({ dedup: 'off' })).length).toBeGreaterThan(kept(rows).length);
  });

  it('is independent of input order and applies turn bounds and per-task caps', () => {
    expect(curate([...trajs].reverse(), verdicts, FilterParams.parse({}))).toEqual(run({}));
    const bounded = run({ dedup: 'off', min_turns: 3, max_turns: 5 });
    for (const r of kept(bounded)) expect(r.turns >= 3 && r.turns <= 5).toBe(true);
    expect(bounded.some((r) => /too_few_turns: \d+ < 3/.test(r.filter_reasons.join()))).toBe(true);
    const capped = kept(run({ dedup: 'off', max_per_task: 1 }));
    expect(new Set(capped.map((r) => r.task_id)).size).toBe(capped.length);
    expect(run({ max_chars: 50 }).every((r) => !r.kept && r.filter_reasons.some((x) => x.startsWith('too_long')))).toBe(true);
  });

  it('hits a target mix by world and difficulty', () => {
    const rows = run({ dedup: 'off', mix_world: { retail: 1, bank: 1 }, mix_difficulty: { 1: 1, 2: 1 } });
    const counts: Record<string, number> = {};
    for (const r of kept(rows)) counts[`${r.world}/${r.difficulty}`] = (counts[`${r.world}/${r.difficulty}`] ?? 0) + 1;
    const vals = Object.values(counts);
    expect(Object.keys(counts).sort()).toEqual(['bank/1', 'bank/2', 'retail/1', 'retail/2']);
    expect(Math.max(...vals) - Math.min(...vals)).toBeLessThanOrEqual(1);
    expect(rows.some((r) => r.filter_reasons.some((x) => x.startsWith('mix_excluded: ')))).toBe(true);
    expect(kept(run({ dedup: 'off', mix_world: { retail: 3, bank: 1 }, target: 8 })).map((r) => r.world).sort()).toEqual(['bank', 'bank', ...Array(6).fill('retail')]);
  });
});
