import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag, UsageError } from '../../runtime/engine/scheduler.ts';
import { dagStatus } from '../../runtime/engine/status.ts';
import { gc } from '../../runtime/engine/gc.ts';
import { markRetry } from '../../runtime/engine/retry.ts';
import { badRows, calls, double, failing, numbers, tempStore, total } from './fixtures.ts';

let store: ReturnType<typeof tempStore>;
beforeEach(() => { store = tempStore(); for (const k of Object.keys(calls)) delete calls[k]; });
afterEach(() => store.cleanup());

const chain = (n = 5) => dag('chain', (b) => {
  const a = b.node('a', numbers, { n });
  const d = b.node('d', double, {}, { xs: a });
  b.node('t', total, {}, { xs: d });
});
const statuses = (r: Awaited<ReturnType<typeof runDag>>) => Object.fromEntries([...r.nodes].map(([k, v]) => [k, v.status]));

describe('incremental runs', () => {
  it('runs once, then skips every committed key', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    expect(statuses(first)).toEqual({ a: 'committed', d: 'committed', t: 'committed' });
    const second = await runDag(chain(), { storeDir: store.dir });
    expect(statuses(second)).toEqual({ a: 'cached', d: 'cached', t: 'cached' });
    expect(calls).toEqual({ numbers: 1, double: 1, total: 1 });
  });

  it('recomputes a changed node and its dependents only', async () => {
    await runDag(chain(5), { storeDir: store.dir });
    const r = await runDag(chain(6), { storeDir: store.dir });
    expect(statuses(r)).toEqual({ a: 'committed', d: 'committed', t: 'committed' });
    const back = await runDag(chain(5), { storeDir: store.dir });
    expect(statuses(back)).toEqual({ a: 'cached', d: 'cached', t: 'cached' });
  });

  it('--force, --from and --only', async () => {
    await runDag(chain(), { storeDir: store.dir });
    expect(statuses(await runDag(chain(), { storeDir: store.dir, force: ['d'] }))).toEqual({ a: 'cached', d: 'committed', t: 'cached' });
    expect(statuses(await runDag(chain(), { storeDir: store.dir, from: ['d'] }))).toEqual({ a: 'cached', d: 'committed', t: 'committed' });
    expect(statuses(await runDag(chain(), { storeDir: store.dir, only: ['t'] }))).toEqual({ a: 'cached', d: 'cached', t: 'committed' });
  });

  it('--only refuses when an input is not committed, and unknown nodes are usage errors', async () => {
    await expect(runDag(chain(), { storeDir: store.dir, only: ['t'] })).rejects.toThrow(/input node 'd' has no committed artifact/);
    await expect(runDag(chain(), { storeDir: store.dir, from: ['nope'] })).rejects.toThrow(UsageError);
    await expect(runDag(chain(), { storeDir: store.dir, from: ['nope'] })).rejects.toThrow(/--from nope: DAG 'chain' has no node 'nope'; its nodes are: a, d, t/);
  });

  it('a failed node blocks its dependents, commits nothing, and records the error', async () => {
    const d = dag('fail', (b) => { const f = b.node('f', failing, {}, { xs: b.node('a', numbers, { n: 2 }) }); b.node('after', double, {}, { xs: f }); });
    const r = await runDag(d, { storeDir: store.dir });
    expect(r.ok).toBe(false);
    expect(statuses(r)).toEqual({ a: 'committed', f: 'failed', after: 'blocked' });
    expect(r.nodes.get('f')!.error).toContain('boom on purpose');
    expect(readdirSync(join(store.dir, 'artifacts'))).toHaveLength(1);
  });

  it('a row that fails its schema fails the node with the row index and field; nothing is committed', async () => {
    const r = await runDag(dag('bad', (b) => { b.node('bad', badRows); }), { storeDir: store.dir });
    expect(r.nodes.get('bad')!.status).toBe('failed');
    expect(r.nodes.get('bad')!.error).toMatch(/node bad: output row 2 fails the schema at v: .*expected number/);
    expect(readdirSync(join(store.dir, 'artifacts'))).toHaveLength(0);
  });

  it('a cancelled run commits nothing for the interrupted node', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await runDag(chain(), { storeDir: store.dir, signal: ac.signal });
    expect(r.cancelled).toBe(true);
    expect(readdirSync(join(store.dir, 'artifacts'))).toHaveLength(0);
  });
});

describe('code changes invalidate keys (the operator and the helpers it imports)', () => {
  it('a helper edit makes the node stale and status says which file', async () => {
    const dir = join(import.meta.dirname, `.gen-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      writeFileSync(join(dir, 'helper.ts'), 'export const factor = 3;\n');
      writeFileSync(join(dir, 'op.ts'), `import { z } from 'zod';
import { operator, table } from '../../../runtime/engine/operator.ts';
import { factor } from './helper.ts';
export const tripled = operator({ name: 'test-tripled', version: 1, params: z.object({}), inputs: {},
  output: table(z.object({ v: z.number() })), async run({ out }) { await out.write([{ v: factor }]); } });
`);
      const { tripled } = await import(pathToFileURL(join(dir, 'op.ts')).href);
      const d = () => dag('gen', (b) => { b.node('x', tripled); });
      expect(statuses(await runDag(d(), { storeDir: store.dir }))).toEqual({ x: 'committed' });
      expect((await dagStatus(d(), store.dir))[0].state).toBe('fresh');
      appendFileSync(join(dir, 'helper.ts'), 'export const unused = 1;\n');
      const st = await dagStatus(d(), store.dir);
      expect(st[0].state).toBe('stale');
      expect(st[0].why).toEqual([`code: test/engine/.gen-${process.pid}/helper.ts changed`]);
      appendFileSync(join(dir, 'op.ts'), '// a comment is a code change too\n');
      expect((await dagStatus(d(), store.dir))[0].why).toHaveLength(2);
      expect(statuses(await runDag(d(), { storeDir: store.dir }))).toEqual({ x: 'committed' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('status marks a node that asked to run again, and its consumers, stale — the nodes the next run executes', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    const dKey = first.nodes.get('d')!.key;
    mkdirSync(join(store.dir, 'checkpoints', dKey), { recursive: true });
    markRetry(join(store.dir, 'checkpoints', dKey), '2 of 5 rows failed on a flaky endpoint');
    const st = await dagStatus(chain(), store.dir);
    expect(st.map((s) => [s.node, s.state, s.why])).toEqual([
      ['a', 'fresh', []],
      ['d', 'stale', ['asked to run again: 2 of 5 rows failed on a flaky endpoint']],
      ['t', 'stale', ["upstream 'd' runs again"]],
    ]);
    // what status calls stale is exactly what the next run executes
    expect(statuses(await runDag(chain(), { storeDir: store.dir }))).toEqual({ a: 'cached', d: 'committed', t: 'committed' });
    expect((await dagStatus(chain(), store.dir)).map((s) => s.state)).toEqual(['fresh', 'fresh', 'fresh']);
  });

  it('status names the changed param and the stale upstream', async () => {
    await runDag(chain(5), { storeDir: store.dir });
    const st = await dagStatus(chain(7), store.dir);
    expect(st.map((s) => s.state)).toEqual(['stale', 'stale', 'stale']);
    expect(st[0].why).toEqual(['param n: 5 → 7']);
    expect(st[1].why).toEqual(["input xs changed (upstream 'a' stale; reused as is if that reproduces its last output)"]);
  });
});

describe('external fingerprints', () => {
  it('a change outside the store that the operator fingerprints makes the node stale', async () => {
    const { z } = await import('zod');
    const { operator, table } = await import('../../runtime/engine/operator.ts');
    const { readFileSync } = await import('node:fs');
    const src = join(store.dir, 'outside.txt');
    writeFileSync(src, 'one');
    const copyIn = operator({
      name: 'test-copy-in', version: 1, params: z.object({ path: z.string() }), inputs: {},
      output: table(z.object({ s: z.string() })),
      fingerprint: (p) => readFileSync(p.path, 'utf8').length,
      async run({ params, out }) { await out.write([{ s: readFileSync(params.path, 'utf8') }]); },
    });
    const d = () => dag('ext', (b) => { b.node('x', copyIn, { path: src }); });
    expect(statuses(await runDag(d(), { storeDir: store.dir }))).toEqual({ x: 'committed' });
    expect(statuses(await runDag(d(), { storeDir: store.dir }))).toEqual({ x: 'cached' });
    writeFileSync(src, 'three');
    expect((await dagStatus(d(), store.dir))[0].why[0]).toMatch(/external files changed/);
    expect(statuses(await runDag(d(), { storeDir: store.dir }))).toEqual({ x: 'committed' });
  });
});

describe('store integrity', () => {
  it('an altered Parquet file fails the consumer with the artifact and the gc --repair remedy; repair recomputes', async () => {
    await runDag(chain(), { storeDir: store.dir });
    const aKey = (await runDag(chain(), { storeDir: store.dir })).nodes.get('a')!.key;
    // Flipped in place (same size, frame intact): only the consumer's sha256 check can see it. A change the cheap
    // checks see (size, footer) is refused before anything runs (damage-run.test.ts).
    const file = join(store.dir, 'artifacts', aKey, 'data.parquet');
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x5a;
    writeFileSync(file, bytes);
    const r = await runDag(chain(), { storeDir: store.dir, force: ['d'] });
    expect(r.nodes.get('d')!.status).toBe('failed');
    expect(r.nodes.get('d')!.error).toMatch(new RegExp(`artifact ${aKey} \\(node a\\): checksum mismatch .*agentforge gc --repair`));
    const g = await gc(store.dir, { repair: true, dryRun: false });
    expect(g.repaired).toBe(1);
    expect(existsSync(join(store.dir, 'artifacts', aKey))).toBe(false);
    const again = await runDag(chain(), { storeDir: store.dir });
    // a deterministic recompute restores the same key, so its consumers stay valid
    expect(statuses(again)).toEqual({ a: 'committed', d: 'cached', t: 'cached' });
  });

  it('a second run on the same store refuses clearly while the first holds the lock, or waits with --wait', async () => {
    const slow = dag('slow', (b) => { b.node('a', numbers, { n: 1 }); });
    const { RunLock, Store } = await import('../../storage/store.ts');
    const held = await RunLock.acquire(new Store(store.dir));
    await expect(runDag(slow, { storeDir: store.dir })).rejects.toThrow(/is locked by a running agentforge \(pid \d+.*--wait/);
    setTimeout(() => held.release(), 300);
    const r = await runDag(slow, { storeDir: store.dir, waitLockMs: 5000 });
    expect(r.ok).toBe(true);
  });

  it('a stale lock of a dead process is taken over', async () => {
    writeFileSync(join(store.dir, 'lock'), JSON.stringify({ pid: 999999, started: 'x', argv: 'dead' }));
    expect((await runDag(chain(), { storeDir: store.dir })).ok).toBe(true);
  });
});
