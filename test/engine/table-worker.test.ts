import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { Trajectory } from '../../schemas/trajectory.ts';
import { TableWriter } from '../../storage/table.ts';
import { makeTrajectory } from '../../bench/fixtures.ts';

/*
 * Pages of a table that fills them are encoded on a worker thread (storage/page-worker.ts): the file must be the
 * one the writer's own thread would make, a failure there must name the node, and the thread must never outlive
 * the writer's use of it nor hold the process open.
 */

const ROOT = resolve(import.meta.dirname, '../..');
// Internals a test may look at: the encoder of the columnar sink and its worker handle.
const encOf = (w: TableWriter<typeof Trajectory>) => (w as unknown as { sink: { enc: { threaded: boolean; sink: { worker: Worker } | null } } }).sink.enc;

async function until(ok: () => boolean, ms = 5000) {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return ok();
}

describe('table pages on a worker thread', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'af-worker-')); });
  afterEach(() => { delete process.env.AGENTFORGE_TABLE_WORKER; rmSync(dir, { recursive: true, force: true }); });

  /** Several pages, a failed write that had filled pages, named batches: the paths that checkpoint and restore. */
  async function write(sub: string, threaded: boolean) {
    if (threaded) delete process.env.AGENTFORGE_TABLE_WORKER; else process.env.AGENTFORGE_TABLE_WORKER = '0';
    const stage = join(dir, sub);
    mkdirSync(stage, { recursive: true });
    const w = new TableWriter(Trajectory, 'n', stage, join(dir, `${sub}-ck`));
    await w.writeBatch('b2', Array.from({ length: 300 }, (_, i) => makeTrajectory(20_000 + i)));
    await w.write(Array.from({ length: 5 }, (_, i) => makeTrajectory(i)));
    const bad = Array.from({ length: 9000 }, (_, i) => makeTrajectory(10 + i));
    bad.push({ ...makeTrajectory(1), turns: 'x' } as never);
    await expect(w.write(bad)).rejects.toThrow(/output row 9305 fails the schema at turns/);
    await w.write(Array.from({ length: 12_000 }, (_, i) => makeTrajectory(30_000 + i)));
    expect(encOf(w).threaded).toBe(threaded);
    expect(await w.finish()).toBe(12_305);
    return readFileSync(join(stage, 'data.parquet'));
  }

  it('writes the same bytes as the writer thread alone', async () => {
    const a = await write('threaded', true);
    const b = await write('inline', false);
    expect(a.equals(b)).toBe(true);
  });

  it('a failure on the worker names the node, and the worker ends', async () => {
    const w = new TableWriter(Trajectory, 'n7', join(dir, 'gone'), join(dir, 'ck'));
    await w.write(Array.from({ length: 8000 }, (_, i) => makeTrajectory(i)));
    const enc = encOf(w);
    expect(enc.threaded).toBe(true);
    await expect(w.finish()).rejects.toThrow(/^node n7: the table's encoder thread failed: .*ENOENT/);
    expect(await until(() => enc.sink!.worker.threadId === -1)).toBe(true);
  });

  it('a finished writer ends its worker, and an abandoned one does not hold the process open', () => {
    const script = `
      import { TableWriter } from ${JSON.stringify(join(ROOT, 'storage/table.ts'))};
      import { Trajectory } from ${JSON.stringify(join(ROOT, 'schemas/trajectory.ts'))};
      import { makeTrajectory } from ${JSON.stringify(join(ROOT, 'bench/fixtures.ts'))};
      const rows = Array.from({ length: 8000 }, (_, i) => makeTrajectory(i));
      const done = new TableWriter(Trajectory, 'a', ${JSON.stringify(dir)}, ${JSON.stringify(join(dir, 'ck-a'))});
      await done.write(rows);
      await done.finish();
      const worker = done.sink.enc.sink.worker;
      const left = new TableWriter(Trajectory, 'b', ${JSON.stringify(dir)}, ${JSON.stringify(join(dir, 'ck-b'))});
      await left.write(rows); // an operator that fails here never calls finish
      console.log(JSON.stringify({ threaded: left.sink.enc.threaded, ended: worker.threadId === -1 }));
    `;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual({ threaded: true, ended: true });
  });
});
