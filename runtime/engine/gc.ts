import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Ledger } from '../../storage/ledger.ts';
import { RunLock, Store, StoreError } from '../../storage/store.ts';

/**
 * Removes artifact folders the ledger does not reference (left by a crash between rename and ledger commit),
 * scratch of dead processes, and checkpoints of keys that are committed. With repair, verifies every checksum
 * and drops damaged artifacts (ledger row and folder) so the next run recomputes them.
 */
export async function gc(storeDir: string, opts: { repair: boolean; dryRun: boolean }) {
  const store = new Store(storeDir);
  const lock = await RunLock.acquire(store, 0);
  const ledger = await Ledger.open(store.ledgerPath);
  const log: string[] = [];
  let removed = 0;
  let repaired = 0;
  const drop = (p: string, why: string) => { log.push(`${opts.dryRun ? 'would remove' : 'removed'} ${p} (${why})`); if (!opts.dryRun) rmSync(p, { recursive: true, force: true }); removed++; };
  try {
    const rows = await ledger.all<{ key: string; node_id: string; files: string }>('SELECT key, node_id, files FROM artifacts');
    const known = new Set(rows.map((r) => r.key));
    for (const name of readdirSync(join(store.dir, 'artifacts'))) if (!known.has(name)) drop(store.artifactDir(name), 'not in the ledger');
    for (const name of readdirSync(join(store.dir, 'checkpoints'))) if (known.has(name)) drop(store.checkpointDir(name), 'its key is committed');
    if (!opts.dryRun) removed += store.sweepTemp();
    if (opts.repair) {
      for (const r of rows) {
        try {
          if (!existsSync(store.artifactDir(r.key))) throw new StoreError('folder missing');
          store.verify(r.key, JSON.parse(r.files), r.node_id);
        } catch (e) {
          log.push(`${opts.dryRun ? 'would drop' : 'dropped'} damaged artifact ${r.key} of node ${r.node_id}: ${(e as Error).message.split(';')[0]}`);
          if (!opts.dryRun) { store.unmarkCommitted([r.key]); await ledger.deleteArtifact(r.key); rmSync(store.artifactDir(r.key), { recursive: true, force: true }); }
          repaired++;
        }
      }
    }
    return { removed, repaired, log };
  } finally {
    await ledger.close();
    lock.release();
  }
}
