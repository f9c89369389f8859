import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Trajectory, Verdict } from '../../schemas/trajectory.ts';
import { curate, FilterParams } from '../../runtime/synth/filter.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';

/** A passing trajectory of `task` whose calls are `calls` (the action sequence the filter dedups on). */
function traj(id: string, task: string, calls: string[]): Trajectory {
  return {
    id, task_id: task, world: 'code', tools: [], source: 'synth', teacher: 'scripted', seed: 0, policy_version: 0, reward: null, reward_components: {},
    turns: calls.length + 1, finish_reason: 'answered', errors: [], difficulty: 1, split: 'train',
    messages: [
      { role: 'user', content: 'write f', tool_calls: [], tool_call_id: null, name: null },
      ...calls.map((c, i) => ({ role: 'assistant' as const, content: '', tool_calls: [{ id: `c${i}`, name: c, arguments: { code: 'def f(): pass' }, raw: '{}' }], tool_call_id: null, name: null })),
      { role: 'assistant', content: '```python\ndef f(): pass\n```', tool_calls: [], tool_call_id: null, name: null },
    ],
  };
}
const pass = (rows: Trajectory[]) => new Map<string, Verdict>(rows.map((t) => [t.id, { trajectory_id: t.id, task_id: t.task_id, world: t.world, pass: true, reasons: [], final_state_hash: null }]));
const keptBy = (rows: ReturnType<typeof curate>) => rows.filter((r) => r.kept).map((r) => r.id).sort();

describe('filter: trajectories per task is a real knob', () => {
  // per task: four different solution paths and one duplicate of the first
  const rows = ['t1', 't2'].flatMap((t) => [
    traj(`${t}:a`, t, ['run_tests']), traj(`${t}:b`, t, ['run_python', 'run_tests']), traj(`${t}:c`, t, []),
    traj(`${t}:d`, t, ['run_tests', 'run_tests']), traj(`${t}:a2`, t, ['run_tests']),
  ]);

  it('keeps every distinct path by default and exactly k per task when asked', () => {
    const all = curate(rows, pass(rows), FilterParams.parse({}));
    expect(keptBy(all)).toHaveLength(8);
    for (const k of [1, 2, 3]) {
      const out = curate(rows, pass(rows), FilterParams.parse({ trajectories_per_task: k }));
      for (const t of ['t1', 't2']) expect(out.filter((r) => r.kept && r.task_id === t)).toHaveLength(k);
      expect(out.filter((r) => !r.kept).every((r) => /^(task_cap: \d|duplicate_of: )/.test(r.filter_reasons[0]))).toBe(true);
    }
  });

  it('takes distinct paths first even without dedup, whatever the seeded order', () => {
    const dup = [traj('x:1', 'x', ['run_tests']), traj('x:2', 'x', ['run_tests']), traj('x:3', 'x', ['run_tests']), traj('x:4', 'x', [])];
    for (let seed = 0; seed < 8; seed++) {
      const out = curate(dup, pass(dup), FilterParams.parse({ dedup: 'off', trajectories_per_task: 2, seed }));
      expect(keptBy(out)).toContain('x:4');
      expect(keptBy(out)).toHaveLength(2);
    }
  });
});

describe('dags/code.ts', () => {
  const store = mkdtempSync(join(tmpdir(), 'af-code-dag-'));
  afterAll(() => rmSync(store, { recursive: true, force: true }));

  it('tasks → synthesize → verify → filter for code and repo: several verified paths per task, patches queryable in SQL', async () => {
    process.env.CODE_TASKS = '3';
    process.env.CODE_PER_TASK = '4';
    const { default: d } = await import('../../dags/code.ts');
    const r = await runDag(d, { storeDir: store });
    expect(r.ok).toBe(true);
    const s = await openSqlSession(store);
    try {
      const q = async (sql: string) => (await runReadOnly(s, sql)).rows;
      expect(await q('select world, count(*)::int as n from synth group by world order by world')).toEqual([{ world: 'code', n: 12 }, { world: 'repo', n: 12 }]);
      const kept = await q('select world, task_id, count(*)::int as n from curated group by world, task_id');
      expect(kept.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...kept.map((x) => x.n as number))).toBeGreaterThanOrEqual(3);
      expect(await q('select count(*)::int as n from curated c join verify v on v.trajectory_id = c.id where not v.pass')).toEqual([{ n: 0 }]);
      const patches = await q("select id, patch from synth where world = 'repo' and patch like '--- a/%'");
      expect(patches.length).toBeGreaterThanOrEqual(6);
      expect(await q("select count(*)::int as n from synth where world = 'code' and patch is not null")).toEqual([{ n: 0 }]);
    } finally {
      s.close();
    }
  }, 120_000);
});
