import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { dagStatus } from '../../runtime/engine/status.ts';
import { gc } from '../../runtime/engine/gc.ts';
import { Ledger } from '../../storage/ledger.ts';
import { LedgerLost, MANIFEST } from '../../storage/store.ts';
import { TableReader } from '../../storage/table.ts';
import { double, Num, numbers, tempStore, total } from './fixtures.ts';

let store: ReturnType<typeof tempStore>;
beforeEach(() => { store = tempStore(); });
afterEach(() => store.cleanup());

const chain = () => dag('chain', (b) => {
  const a = b.node('a', numbers, { n: 50 });
  const d = b.node('d', double, {}, { xs: a });
  b.node('t', total, {}, { xs: d });
});
const statuses = (r: Awaited<ReturnType<typeof runDag>>) => Object.fromEntries([...r.nodes].map(([k, v]) => [k, v.status]));
const folders = () => readdirSync(join(store.dir, 'artifacts')).sort();
const ledgerPath = () => join(store.dir, 'ledger.duckdb');

async function expectLostEverywhere() {
  const before = folders();
  await expect(runDag(chain(), { storeDir: store.dir })).rejects.toThrow(LedgerLost);
  await expect(runDag(chain(), { storeDir: store.dir })).rejects.toThrow(/gc --repair/);
  await expect(dagStatus(chain(), store.dir)).rejects.toThrow(LedgerLost);
  await expect(gc(store.dir, { repair: false, dryRun: false })).rejects.toThrow(/gc deleted nothing/);
  expect(folders()).toEqual(before);
  expect(existsSync(join(store.dir, 'lock'))).toBe(false);
}

async function expectRepaired(first: Awaited<ReturnType<typeof runDag>>) {
  const g = await gc(store.dir, { repair: true, dryRun: false });
  expect(g.log.join('\n')).toMatch(/rebuilt the ledger row of artifacts\/[0-9a-f]{32} \(node d, DAG chain\) from its manifest/);
  expect(g.repaired).toBe(3);
  const again = await runDag(chain(), { storeDir: store.dir });
  expect(statuses(again)).toEqual({ a: 'cached', d: 'cached', t: 'cached' });
  for (const [id, r] of first.nodes) expect(again.nodes.get(id)!.key).toBe(r.key);
  expect((await dagStatus(chain(), store.dir)).map((s) => s.state)).toEqual(['fresh', 'fresh', 'fresh']);
  const dKey = first.nodes.get('d')!.key;
  const rows = await new TableReader('d', dKey, [join(store.dir, 'artifacts', dKey, 'data.parquet')], Num).all();
  expect(rows).toHaveLength(50);
  // The rebuilt ledger serves a plain gc again, and it deletes nothing that is committed.
  const plain = await gc(store.dir, { repair: false, dryRun: false });
  expect(plain.removed).toBe(0);
  expect(folders()).toHaveLength(3);
}

describe('a lost ledger is detected before any claim, and gc --repair rebuilds it from the manifests', () => {
  it('deleted: run, status and gc refuse (no "noop", no "never run", nothing deleted); repair restores every row', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    rmSync(ledgerPath());
    rmSync(`${ledgerPath()}.wal`, { force: true });
    await expectLostEverywhere();
    await expectRepaired(first);
    expect(readdirSync(store.dir).some((n) => n.startsWith('ledger.duckdb.lost-'))).toBe(false); // nothing to move aside
  });

  it('truncated to half, or emptied: detected from the file alone; the damaged file is moved aside, not deleted', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    truncateSync(ledgerPath(), Math.floor(statSync(ledgerPath()).size / 2) + 123);
    await expectLostEverywhere();
    await expectRepaired(first);
    expect(readdirSync(store.dir).filter((n) => n.startsWith('ledger.duckdb.lost-'))).toHaveLength(1);
    truncateSync(ledgerPath(), 0);
    await expectLostEverywhere();
  });

  it('replaced by an empty ledger (a backup from before the runs): the keys committed.keys names are missing', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    rmSync(ledgerPath());
    await (await Ledger.open(ledgerPath())).close();
    await expect(runDag(chain(), { storeDir: store.dir })).rejects.toThrow(/lacks 3 artifact\(s\) that committed.keys records/);
    await expect(dagStatus(chain(), store.dir)).rejects.toThrow(LedgerLost);
    await expect(gc(store.dir, { repair: false, dryRun: false })).rejects.toThrow(/gc deleted nothing/);
    expect(folders()).toHaveLength(3);
    await expectRepaired(first);
  });

  it('gc removes only what it can prove unreferenced: a crash orphan of a known run goes, a folder it cannot place stays', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    const aKey = first.nodes.get('a')!.key;
    // A crash between publishing and the ledger commit: the folder and its manifest, no row, no committed.keys line.
    const orphan = '0123456789abcdef0123456789abcdef';
    cpSync(join(store.dir, 'artifacts', aKey), join(store.dir, 'artifacts', orphan), { recursive: true });
    const m = JSON.parse(readFileSync(join(store.dir, 'artifacts', orphan, MANIFEST), 'utf8'));
    m.artifact.key = orphan;
    writeFileSync(join(store.dir, 'artifacts', orphan, MANIFEST), JSON.stringify(m));
    // A folder without a manifest, and one whose run the ledger has never seen: neither can be proven garbage.
    const bare = 'fedcba9876543210fedcba9876543210';
    mkdirSync(join(store.dir, 'artifacts', bare));
    writeFileSync(join(store.dir, 'artifacts', bare, 'data.parquet'), 'x');
    const alien = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    cpSync(join(store.dir, 'artifacts', aKey), join(store.dir, 'artifacts', alien), { recursive: true });
    writeFileSync(join(store.dir, 'artifacts', alien, MANIFEST), JSON.stringify({ ...m, artifact: { ...m.artifact, key: alien, run_id: 'from-another-ledger' } }));
    const g = await gc(store.dir, { repair: false, dryRun: false });
    expect(g.log.join('\n')).toMatch(new RegExp(`removed .*${orphan} \\(run .* published it but never committed it\\)`));
    expect(g.kept).toBe(2);
    expect(folders()).toEqual([aKey, bare, alien, first.nodes.get('d')!.key, first.nodes.get('t')!.key].sort());
    // --repair adopts the one whose manifest verifies, and still deletes neither.
    const r = await gc(store.dir, { repair: true, dryRun: false });
    expect(r.log.join('\n')).toContain(`rebuilt the ledger row of artifacts/${alien}`);
    expect(existsSync(join(store.dir, 'artifacts', bare))).toBe(true);
    const ledger = await Ledger.openReadOnly(ledgerPath());
    try { expect((await ledger.artifact(alien))?.node_id).toBe('a'); } finally { await ledger.close(); }
  });

  it('artifacts committed before manifests existed get one from gc, and are then recoverable like the rest', async () => {
    const first = await runDag(chain(), { storeDir: store.dir });
    for (const r of first.nodes.values()) rmSync(join(store.dir, 'artifacts', r.key, MANIFEST));
    const g = await gc(store.dir, { repair: false, dryRun: false });
    expect(g.log.join('\n')).toContain('wrote a manifest for 3 artifact(s) committed before manifests existed');
    for (const r of first.nodes.values()) expect(existsSync(join(store.dir, 'artifacts', r.key, MANIFEST))).toBe(true);
    rmSync(ledgerPath());
    rmSync(`${ledgerPath()}.wal`, { force: true });
    await expectLostEverywhere();
    await expectRepaired(first);
  });

  it('a ledger DuckDB cannot open fails the run with the fix and releases the run lock', async () => {
    await runDag(chain(), { storeDir: store.dir });
    // Header intact (passes the file-level check), every block zeroed: only DuckDB itself can tell.
    const size = statSync(ledgerPath()).size;
    const head = readFileSync(ledgerPath()).subarray(0, 12288);
    writeFileSync(ledgerPath(), Buffer.concat([head, Buffer.alloc(size - 12288)]));
    rmSync(`${ledgerPath()}.wal`, { force: true });
    const changed = dag('chain', (b) => { b.node('a', numbers, { n: 51 }); });
    await expect(runDag(changed, { storeDir: store.dir })).rejects.toThrow(/cannot be opened: .*gc --repair/s);
    expect(existsSync(join(store.dir, 'lock'))).toBe(false);
  });

  it('through the CLI: run, status, runs and gc exit non-zero naming the fix; gc --repair exits 0 and the rerun is all cached', () => {
    const root = resolve(import.meta.dirname, '../..');
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, 'bin/agentforge.mjs'), ...args, '--store', store.dir], { cwd: root, encoding: 'utf8', env: { ...process.env, SMOKE_N: '40' } });
    expect(cli('run', 'dags/smoke.ts', '--plain').status).toBe(0);
    rmSync(ledgerPath());
    for (const args of [['run', 'dags/smoke.ts', '--plain'], ['status', 'dags/smoke.ts'], ['runs'], ['gc']]) {
      const r = cli(...args);
      expect(r.status, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/^error: ledger .* is missing but the store holds 4 committed key\(s\).*gc --repair/m);
      expect(r.stdout).not.toMatch(/never run|noop/);
    }
    expect(cli('gc', '--repair').status).toBe(0);
    expect(cli('run', 'dags/smoke.ts', '--plain').stderr).toMatch(/: 4 cached$/m);
  }, 120_000);
});
