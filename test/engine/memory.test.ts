/*
 * Every node's memory lands in the metrics table: the runner's RSS high-water mark while the node ran
 * (runner_peak_rss_bytes), also for a node that fails, so an out-of-memory hunt can start from SQL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { Num, numbers, tempStore } from './fixtures.ts';

const MiB = 2 ** 20;
const before: Record<string, number> = {};
// kept to the end of the file, so no collection between nodes moves the baseline of the next one
const kept: Buffer[] = [];

/** Holds `mb` MiB of touched memory for a moment, then writes one row (or fails, when asked). */
const hog = operator({
  name: 'test-memory-hog', version: 1, params: z.object({ mb: z.number().int(), fail: z.boolean().default(false) }),
  inputs: {}, output: table(Num, 'Num'),
  async run({ params, out, ctx }) {
    before[ctx.nodeId] = process.memoryUsage.rss();
    const held = Buffer.alloc(params.mb * MiB, 1);  // alloc fills, so every page is resident
    kept.push(held);
    await new Promise((r) => setTimeout(r, 600));
    if (params.fail) throw new Error('hog: asked to fail');
    await out.write([{ i: 0, v: held[held.length - 1] }]);
  },
});

const store = tempStore();
afterAll(() => { kept.length = 0; store.cleanup(); });

describe('runner_peak_rss_bytes', () => {
  it('is recorded for every node, holds what the node allocated, and is kept for a node that failed', async () => {
    const d = dag('memory', (b) => {
      b.node('small', numbers, { n: 3 });
      b.node('big', hog, { mb: 256 });
      b.node('broken', hog, { mb: 128, fail: true });
    });
    const res = await runDag(d, { storeDir: store.dir, concurrency: 1 });
    expect(res.nodes.get('broken')?.error).toMatch(/asked to fail/);
    const session = await openSqlSession(store.dir);
    try {
      const rows = (await runReadOnly(session, `SELECT node_id, value FROM metrics WHERE name = 'runner_peak_rss_bytes' ORDER BY node_id`)).rows as { node_id: string; value: number }[];
      const peak = new Map(rows.map((r) => [r.node_id, Number(r.value)]));
      expect([...peak.keys()]).toEqual(['big', 'broken', 'small']);
      expect(peak.get('small')!).toBeGreaterThan(20 * MiB);
      expect(peak.get('big')! - before.big).toBeGreaterThan(240 * MiB);
      expect(peak.get('broken')! - before.broken).toBeGreaterThan(110 * MiB);
    } finally {
      session.close();
    }
  });
});
