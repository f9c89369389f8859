import { existsSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Ledger, type Manifest } from '../../storage/ledger.ts';
import { retryPending } from './retry.ts';
import { LEDGER_FIX, LedgerLost, MANIFEST, RunLock, Store, StoreError, writeFileAtomic } from '../../storage/store.ts';

/** An artifact folder's manifest if it is well-formed and names this folder's key, else why not. */
function readManifest(store: Store, key: string): Manifest | string {
  const p = join(store.artifactDir(key), MANIFEST);
  if (!existsSync(p)) return 'it has no manifest (committed before manifests were written)';
  let m: Manifest;
  try { m = JSON.parse(readFileSync(p, 'utf8')) as Manifest; } catch (e) { return `its manifest is not JSON (${(e as Error).message})`; }
  if (m?.format !== 1 || m.artifact?.key !== key || !Array.isArray(m.artifact.files) || !Array.isArray(m.lineage)) return 'its manifest is malformed';
  return m;
}

/**
 * Removes what is provably garbage: artifact folders that a crash left between publishing and the ledger commit
 * (their manifest names a run the ledger knows, and neither the ledger nor committed.keys has their key), scratch
 * of dead processes, and checkpoints of committed keys. A folder that cannot be proven unreferenced is kept and
 * reported. A lost or damaged ledger stops a plain gc before it deletes anything.
 *
 * With repair: a lost ledger is moved aside (never deleted) and rebuilt from the artifacts' manifests, as is any
 * manifest-bearing folder the ledger lacks; every checksum is verified and damaged artifacts are dropped (ledger
 * row and folder) so the next run recomputes them.
 */
export async function gc(storeDir: string, opts: { repair: boolean; dryRun: boolean }) {
  const store = new Store(storeDir);
  const log: string[] = [];
  let removed = 0;
  let repaired = 0;
  let kept = 0;
  const drop = (p: string, why: string) => { log.push(`${opts.dryRun ? 'would remove' : 'removed'} ${p} (${why})`); if (!opts.dryRun) rmSync(p, { recursive: true, force: true }); removed++; };
  let lock: RunLock | undefined;
  let ledger: Ledger | undefined;
  try {
    lock = await RunLock.acquire(store, 0);
    let problem = store.ledgerProblem();
    if (problem && !opts.repair) throw new LedgerLost(`${problem}. gc deleted nothing. ${LEDGER_FIX}`);
    if (!problem) {
      try { ledger = await Ledger.open(store.ledgerPath); } catch (e) {
        if (!(e instanceof LedgerLost) || !opts.repair) throw e;
        problem = e.message.split('. ')[0];
      }
    }
    const rebuilding = !!problem;
    if (rebuilding) {
      log.push(`ledger lost: ${problem}`);
      if (!opts.dryRun) {
        const stamp = new Date().toISOString().replace(/[-:.]/g, '');
        for (const suffix of ['', '.wal']) {
          const p = `${store.ledgerPath}${suffix}`;
          if (existsSync(p)) { renameSync(p, `${store.ledgerPath}.lost-${stamp}${suffix}`); log.push(`moved ${p} aside to ${store.ledgerPath}.lost-${stamp}${suffix}`); }
        }
      }
      ledger = await Ledger.open(opts.dryRun ? ':memory:' : store.ledgerPath);
    }
    const led = ledger!;
    await led.markKilled();
    const index = store.committedIndex();
    const missing = rebuilding ? [] : await led.missingKeys(index.keys);
    if (missing.length && !opts.repair) {
      throw new LedgerLost(`ledger ${store.ledgerPath} lacks ${missing.length} artifact(s) that committed.keys records as committed (e.g. ${missing[0]}). gc deleted nothing. ${LEDGER_FIX}`);
    }
    let rows = await led.all<{ key: string; node_id: string; files: string }>('SELECT key, node_id, files FROM artifacts');
    const known = new Set(rows.map((r) => r.key));
    const runs = await led.runIds();
    const adopted: Manifest[] = [];
    for (const key of store.artifactFolders()) {
      if (known.has(key)) continue;
      const m = readManifest(store, key);
      if (typeof m !== 'string' && opts.repair) {
        try { store.verify(key, m.artifact.files, m.artifact.node_id); } catch (e) {
          log.push(`kept artifacts/${key}: its files do not match its manifest (${(e as Error).message.split(';')[0]}); not adopted`);
          kept++;
          continue;
        }
        adopted.push(m);
        continue;
      }
      if (typeof m !== 'string' && runs.has(m.artifact.run_id) && !index.keys.has(key)) {
        drop(store.artifactDir(key), `run ${m.artifact.run_id} published it but never committed it`);
        continue;
      }
      const why = typeof m === 'string' ? m : `its run ${m.artifact.run_id} is not in the ledger`;
      log.push(`kept artifacts/${key}: not in the ledger, and ${why}, so it cannot be proven unreferenced${typeof m === 'string' ? ' (remove it by hand if you know it is garbage)' : '; `gc --repair` adopts it'}`);
      kept++;
    }
    // Upstream before downstream is not needed (rows only), but committed order keeps same_as chains readable.
    adopted.sort((a, b) => (a.committed_at < b.committed_at ? -1 : 1));
    for (const m of adopted) {
      log.push(`${opts.dryRun ? 'would rebuild' : 'rebuilt'} the ledger row of artifacts/${m.artifact.key} (node ${m.artifact.node_id}, DAG ${m.artifact.dag}) from its manifest`);
      await led.adoptArtifact(m);
      known.add(m.artifact.key);
      repaired++;
    }
    if (adopted.length) rows = await led.all('SELECT key, node_id, files FROM artifacts');
    // Artifacts committed before manifests existed get one from their ledger row, so a later ledger loss can be
    // repaired for them too.
    let backfilled = 0;
    for (const r of rows) {
      const dir = store.artifactDir(r.key);
      if (!existsSync(dir) || existsSync(join(dir, MANIFEST))) continue;
      if (!opts.dryRun) {
        const a = await led.artifact(r.key);
        if (!a) continue;
        const lineage = (await led.all<{ input: string; parent_key: string }>(`SELECT input, parent_key FROM lineage WHERE key = '${r.key}'`)).map((l) => ({ input: l.input, parent: l.parent_key }));
        const { committed_at, ...artifact } = a;
        const when = new Date(`${String(committed_at).replace(' ', 'T')}${/[zZ]|[+-]\d\d:?\d\d$/.test(String(committed_at)) ? '' : 'Z'}`);
        const m: Manifest = { format: 1, artifact, lineage, committed_at: Number.isNaN(when.getTime()) ? String(committed_at) : when.toISOString() };
        writeFileAtomic(join(dir, MANIFEST), JSON.stringify(m));
      }
      backfilled++;
    }
    if (backfilled) log.push(`${opts.dryRun ? 'would write' : 'wrote'} a manifest for ${backfilled} artifact(s) committed before manifests existed (from their ledger rows)`);
    for (const name of readdirSync(join(store.dir, 'checkpoints'))) if (known.has(name) && retryPending(store, name) === null) drop(store.checkpointDir(name), 'its key is committed');
    if (!opts.dryRun) removed += store.sweepTemp();
    if (opts.repair) {
      for (const r of rows) {
        try {
          if (!existsSync(store.artifactDir(r.key))) throw new StoreError('folder missing');
          store.verify(r.key, JSON.parse(r.files), r.node_id);
        } catch (e) {
          log.push(`${opts.dryRun ? 'would drop' : 'dropped'} damaged artifact ${r.key} of node ${r.node_id}: ${(e as Error).message.split(';')[0]}`);
          if (!opts.dryRun) { store.unmarkCommitted([r.key]); await led.deleteArtifact(r.key); rmSync(store.artifactDir(r.key), { recursive: true, force: true }); }
          known.delete(r.key);
          repaired++;
        }
      }
      // committed.keys names exactly what the ledger holds (after a rebuild, a rollback, or drops above).
      const same = new Map((await led.all<{ key: string; same_as: string | null }>('SELECT key, same_as FROM artifacts')).map((r) => [r.key, r.same_as]));
      const stale = [...index.keys].filter((k) => !same.has(k));
      for (const k of stale) log.push(`${opts.dryRun ? 'would forget' : 'forgot'} ${k} from committed.keys: no artifact to rebuild it from (the next run recomputes it)`);
      if (!opts.dryRun && (rebuilding || stale.length || adopted.length)) {
        writeFileAtomic(store.indexPath, [...same].map(([k, s]) => (s ? `${k} ${s}\n` : `${k}\n`)).join(''));
      }
    }
    if (rebuilding && !opts.dryRun) log.push(`ledger rebuilt with ${known.size} artifact(s); run history (runs, executions, metrics) stays in the moved-aside file`);
    return { removed, repaired, kept, log };
  } finally {
    try { await ledger?.close(); } finally { lock?.release(); }
  }
}
