import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { TableReader } from '../../storage/table.ts';
import { Task } from '../../schemas/task.ts';
import { Trajectory, Verdict } from '../../schemas/trajectory.ts';
import { Curated } from '../../runtime/synth/filter.ts';
import { makeTasks as generate } from '../../runtime/worlds/index.ts';
import { synthesize } from '../../operators/synthesize.ts';
import { importData } from '../../operators/import-data.ts';
import { Ledger } from '../../storage/ledger.ts';
import type { Reporter } from '../../runtime/engine/progress.ts';

const store = mkdtempSync(join(tmpdir(), 'af-synth-dag-'));
afterAll(() => rmSync(store, { recursive: true, force: true }));
const rows = <T extends z.ZodObject>(key: string, schema: T) =>
  new TableReader('x', key, [join(store, 'artifacts', key, 'data.parquet')], schema).all() as Promise<z.output<T>[]>;

describe('dags/synth.ts', () => {
  it('runs tasks → synthesize → verify → filter; curated rows all pass, rejected rows keep reasons', async () => {
    process.env.SYNTH_TASKS = '12';
    process.env.SYNTH_PER_TASK = '3';
    const { default: synth } = await import('../../dags/synth.ts');
    const r = await runDag(synth, { storeDir: store });
    expect(r.ok).toBe(true);
    const key = (id: string) => r.nodes.get(id)!.key;
    const raw = await rows(key('synth'), Trajectory);
    const verdicts = new Map((await rows(key('verify'), Verdict)).map((v) => [v.trajectory_id, v]));
    const curated = await rows(key('curated'), Curated);
    const rejected = await rows(key('rejected'), Curated);
    expect(raw.length).toBe(3 * 12 * 3);
    expect(curated.length + rejected.length).toBe(raw.length);
    expect(curated.every((c) => c.kept && verdicts.get(c.id)!.pass)).toBe(true);
    expect(rejected.every((c) => !c.kept && c.filter_reasons.length > 0)).toBe(true);
    expect(rejected.some((c) => /^verify: /.test(c.filter_reasons[0]))).toBe(true);
    expect(raw.some((t) => t.teacher.startsWith('scripted+'))).toBe(true);
    expect(raw.every((t) => t.split === 'train' && t.task_id.includes('-train-'))).toBe(true);
    expect((await runDag(synth, { storeDir: store })).nodes.get('synth')!.status).toBe('cached');
  }, 60_000);

  it('never synthesizes held-out tasks into training data', async () => {
    const mixed = operator({
      name: 'test-mixed-tasks', version: 1, params: z.object({}), inputs: {}, output: table(Task, 'Task'),
      async run({ out }) { await out.write([...generate('bank', { seed: 2, n: 5 }), ...generate('bank', { seed: 2, n: 5, split: 'heldout' })]); },
    });
    const d = dag('heldout_guard', (b) => { b.node('synth', synthesize, { per_task: 2 }, { tasks: b.node('tasks', mixed, {}) }); });
    const r = await runDag(d, { storeDir: store });
    const out = await rows(r.nodes.get('synth')!.key, Trajectory);
    const held = new Set(generate('bank', { seed: 2, n: 5, split: 'heldout' }).map((t) => t.instruction));
    expect(out.length).toBe(10);
    expect(out.every((t) => t.split === 'train' && !t.task_id.includes('heldout'))).toBe(true);
    expect(out.filter((t) => held.has(t.messages[1].content))).toEqual([]);
  }, 60_000);

  it('imports open data through the operator, quarantining bad lines', async () => {
    const file = join(store, 'data.jsonl');
    writeFileSync(file, [JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }), 'not json'].join('\n'));
    const r = await runDag(dag('imp', (b) => { b.node('imported', importData, { paths: [file] }); }), { storeDir: store });
    const out = await rows(r.nodes.get('imported')!.key, Trajectory);
    expect(out.map((t) => [t.finish_reason, t.errors[0]?.message ?? ''])).toEqual([['answered', ''], ['error', `${file}:2: (line): invalid JSON: ${(() => { try { JSON.parse('not json'); } catch (e) { return (e as Error).message; } })()}`]]);
  }, 60_000);

  it('counts blank lines in the import report', async () => {
    const file = join(store, 'blanks.jsonl');
    const row = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] });
    writeFileSync(file, ['', row, '   ', '\r', row, ''].join('\n'));
    const logs: string[] = [];
    const reporter: Reporter = { nodeStart() {}, nodeProgress() {}, nodeEnd() {}, log(id, m) { logs.push(`${id}: ${m}`); }, close() {} };
    const r = await runDag(dag('imp_blank', (b) => { b.node('imported', importData, { paths: [file] }); }), { storeDir: store, reporter });
    expect(r.ok).toBe(true);
    expect(logs).toContain('imported: imported 2 rows from 1 file(s): 2 valid, 0 quarantined, 3 blank line(s) skipped');
    const l = await Ledger.openReadOnly(join(store, 'ledger.duckdb'));
    try {
      expect(await l.all(`SELECT value FROM metrics WHERE node_id = 'imported' AND name = 'blank_lines' AND key = '${r.nodes.get('imported')!.key}'`)).toEqual([{ value: 3 }]);
    } finally { await l.close(); }
  }, 60_000);
});
