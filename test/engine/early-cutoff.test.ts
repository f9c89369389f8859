import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { dagStatus } from '../../runtime/engine/status.ts';
import { Ledger } from '../../storage/ledger.ts';
import { calls, double, numbers, tempStore, total } from './fixtures.ts';

let store: ReturnType<typeof tempStore>;
beforeEach(() => { store = tempStore(); for (const k of Object.keys(calls)) delete calls[k]; });
afterEach(() => store.cleanup());

// With n = 1 the only row is { i: 0, v: 0 } whatever the scale: a new key for 'a', the same bytes out.
const chain = (n: number, scale: number) => dag('cutoff', (b) => {
  const a = b.node('a', numbers, { n, scale });
  const d = b.node('d', double, {}, { xs: a });
  b.node('t', total, {}, { xs: d });
});
const statuses = (r: Awaited<ReturnType<typeof runDag>>) => Object.fromEntries([...r.nodes].map(([k, v]) => [k, v.status]));

describe('early cutoff: a node that reproduces its earlier output does not invalidate its consumers', () => {
  it('consumers of a recomputed but byte-identical output keep their keys, do not run, and stay fresh', async () => {
    const first = await runDag(chain(1, 1), { storeDir: store.dir });
    const before = await dagStatus(chain(1, 2), store.dir);
    expect(before.find((s) => s.node === 'd')!.why.join(' ')).toMatch(/upstream 'a' stale; reused as is if that reproduces its last output/);

    const second = await runDag(chain(1, 2), { storeDir: store.dir });
    expect(statuses(second)).toEqual({ a: 'committed', d: 'cached', t: 'cached' });
    expect(second.nodes.get('a')!.key).not.toBe(first.nodes.get('a')!.key);
    expect(second.nodes.get('d')!.key).toBe(first.nodes.get('d')!.key);
    expect(calls).toEqual({ numbers: 2, double: 1, total: 1 });
    expect((await dagStatus(chain(1, 2), store.dir)).map((s) => s.state)).toEqual(['fresh', 'fresh', 'fresh']);

    // The ledger records which earlier artifact the new one reproduces; the index mirrors it for no-op reruns.
    const ledger = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
    const row = await ledger.artifact(second.nodes.get('a')!.key);
    await ledger.close();
    expect(row!.same_as).toBe(first.nodes.get('a')!.key);
    expect(readFileSync(join(store.dir, 'committed.keys'), 'utf8')).toContain(`${second.nodes.get('a')!.key} ${first.nodes.get('a')!.key}\n`);
    const again = await runDag(chain(1, 2), { storeDir: store.dir });
    expect(again.runId).toBe('noop');
  });

  it('a changed output still recomputes everything downstream', async () => {
    await runDag(chain(2, 1), { storeDir: store.dir });
    const r = await runDag(chain(2, 3), { storeDir: store.dir }); // row i = 1 now has v = 3
    expect(statuses(r)).toEqual({ a: 'committed', d: 'committed', t: 'committed' });
    expect(calls).toEqual({ numbers: 2, double: 2, total: 2 });
  });

  it('the cutoff survives an index lost in a crash: the ledger row restores it', async () => {
    await runDag(chain(1, 1), { storeDir: store.dir });
    await runDag(chain(1, 2), { storeDir: store.dir });
    rmSync(join(store.dir, 'committed.keys'));
    const r = await runDag(chain(1, 2), { storeDir: store.dir });
    expect(statuses(r)).toEqual({ a: 'cached', d: 'cached', t: 'cached' });
    expect(calls).toEqual({ numbers: 2, double: 1, total: 1 });
    expect((await runDag(chain(1, 2), { storeDir: store.dir })).runId).toBe('noop');
  });

  it('a forced rerun keeps its identity, and --from still recomputes downstream', async () => {
    await runDag(chain(1, 1), { storeDir: store.dir });
    expect(statuses(await runDag(chain(1, 1), { storeDir: store.dir, force: ['a'] }))).toEqual({ a: 'committed', d: 'cached', t: 'cached' });
    expect(statuses(await runDag(chain(1, 1), { storeDir: store.dir, from: ['a'] }))).toEqual({ a: 'committed', d: 'committed', t: 'committed' });
  });
});
