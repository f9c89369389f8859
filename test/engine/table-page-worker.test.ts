import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { Trajectory } from '../../schemas/trajectory.ts';
import { TableWriter } from '../../storage/table.ts';
import { pageWorker } from '../../storage/page-worker.ts';
import { DELTA } from '../../storage/pages.mjs';
import { makeTrajectory } from '../../bench/fixtures.ts';

/*
 * The page worker (storage/page-worker.ts, storage/pages.mjs) against the in-thread encoder: the same file byte
 * for byte, the same undo of a failed write's pages, and a dead worker failing the table instead of hanging it.
 */

const ROOT = resolve(import.meta.dirname, '../..');

/** Trajectories with what changes the encoding: non-ASCII, lone surrogates, nulls, dictionary fallback mid-chunk. */
function rows(n: number, from = 0) {
  return Array.from({ length: n }, (_, k) => {
    const i = from + k;
    const t = makeTrajectory(i) as z.input<typeof Trajectory> & Record<string, unknown>;
    if (i % 7 === 0) t.messages[1].content += ' héllo 日本語 🙂';
    if (i % 11 === 0) t.reward = null;
    if (i % 13 === 0) t.errors = [{ turn: i % 5, kind: `k${i % 3}`, message: `m\ud800${i}` }];
    if (i % 17 === 0) t.tools = [{ function: { name: `f${i % 50}`, parameters: { type: 'object', n: i } } }];
    if (i > 9000) t.world = `w${i}`;
    return t;
  });
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('page worker', () => {
  let dir: string;
  const saved = process.env.AGENTFORGE_PAGE_WORKER;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'af-pw-')); });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.AGENTFORGE_PAGE_WORKER; else process.env.AGENTFORGE_PAGE_WORKER = saved;
  });

  async function write(mode: '0' | '1' | 'auto', calls: unknown[][], name = mode): Promise<string> {
    if (mode === 'auto') delete process.env.AGENTFORGE_PAGE_WORKER; else process.env.AGENTFORGE_PAGE_WORKER = mode;
    const stage = join(dir, name);
    const w = new TableWriter(Trajectory, 'n', stage, join(stage, 'ck'));
    for (const c of calls) await w.write(c as never[]);
    await w.write(rows(1, 99_999));
    await w.writeBatch('b', rows(700, 50_000));
    await w.finish();
    return sha(join(stage, 'data.parquet'));
  }

  it('writes the same file as the in-thread encoder', async () => {
    const all = rows(26_000);
    const calls = [all.slice(0, 5), all.slice(5, 17_000), all.slice(17_000, 17_333), all.slice(17_333)];
    const here = await write('0', calls);
    expect(await write('1', calls)).toBe(here);
    expect(await write('auto', calls)).toBe(here);
  });

  it('a page larger than a staging slab goes in a buffer of its own, with the same bytes', async () => {
    const big = rows(3_000);
    big[1_500].messages[1].content = '日本'.repeat(1_500_000); // 9 MB of UTF-8 in one page
    expect(await write('1', [big])).toBe(await write('0', [big]));
  });

  it('drops the pages of a write that fails several pages in, as the in-thread encoder does', async () => {
    const bad = [...rows(15_000, 10), { ...makeTrajectory(3), turns: 'x' }] as never[];
    const out: string[] = [];
    for (const mode of ['0', '1', 'clean'] as const) {
      process.env.AGENTFORGE_PAGE_WORKER = mode === 'clean' ? '1' : mode;
      const w = new TableWriter(Trajectory, 'n', join(dir, mode), join(dir, mode, 'ck'));
      await w.write(rows(9_000));
      if (mode !== 'clean') await expect(w.write(bad)).rejects.toThrow(/output row 24000 fails the schema at turns/);
      await w.write(rows(4_000, 30_000));
      expect(await w.finish()).toBe(13_000);
      out.push(sha(join(dir, mode, 'data.parquet')));
    }
    expect(out[1]).toBe(out[0]);
    expect(out[2]).toBe(out[0]);
  });

  it('a worker that dies fails the table with the reason, and the next table starts a new one', async () => {
    process.env.AGENTFORGE_PAGE_WORKER = '1';
    const w = new TableWriter(Trajectory, 'n', join(dir, 'a'), join(dir, 'a', 'ck'));
    await w.write(rows(6_000));
    (pageWorker() as unknown as { w: { postMessage(m: unknown): void } }).w.postMessage(null); // crashes the thread
    await w.write(rows(6_000, 6_000));
    await expect(w.finish()).rejects.toThrow(/table page worker failed: .*null/);
    const w2 = new TableWriter(Trajectory, 'n', join(dir, 'b'), join(dir, 'b', 'ck'));
    await w2.write(rows(6_000));
    expect(await w2.finish()).toBe(6_000);
  });

  it('a page the worker cannot encode fails with its error', async () => {
    // Lengths at an unaligned offset: the Int32Array view throws in the worker.
    await expect(pageWorker().encode(-1, Buffer.from(new ArrayBuffer(16)), 16, [4, 0, 1, -1, 0, DELTA, 2, 1, 0], false)).rejects.toThrow(/table page worker: RangeError/);
  });

  it('loads from the CLI bundle (no TypeScript loader) and writes what the in-thread encoder writes', () => {
    const hashes = (['1', '0'] as const).map((mode) => {
      const store = join(dir, `store${mode}`);
      const r = spawnSync(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', 'dags/smoke.ts', '--plain'], {
        cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, AGENTFORGE_STORE: store, AGENTFORGE_BUNDLE: '1', AGENTFORGE_PAGE_WORKER: mode },
      });
      expect(r.status, r.stderr).toBe(0);
      const files = readdirSync(store, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('data.parquet')).sort();
      return files.map((f) => sha(join(store, f)));
    });
    expect(hashes[0].length).toBeGreaterThan(0);
    expect(hashes[0]).toEqual(hashes[1]);
  });

  it('does not keep a process alive', () => {
    const script = join(dir, 'exit.mts');
    writeFileSync(script, `import { TableWriter } from '${ROOT}/storage/table.ts';
import { Trajectory } from '${ROOT}/schemas/trajectory.ts';
import { makeTrajectory } from '${ROOT}/bench/fixtures.ts';
const w = new TableWriter(Trajectory, 'n', '${dir}/s', '${dir}/s/ck');
await w.write(Array.from({ length: 20000 }, (_, i) => makeTrajectory(i)));
console.log(await w.finish());
`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect([r.status, r.stdout.trim(), r.stderr]).toEqual([0, '20000', '']);
  });
});
