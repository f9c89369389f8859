import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, openSync, closeSync, fsyncSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/*
 * The store is a folder (default ./.agentforge, else --store or AGENTFORGE_STORE):
 *   ledger.duckdb          runs, executions, artifacts, lineage, metrics
 *   artifacts/<key>/       committed artifacts, addressed by the node key that produced them
 *   checkpoints/<key>/     partial work of a node that has not committed yet (survives a kill)
 *   tmp/<pid>-<uuid>/      scratch and staging; anything here belongs to a run that is alive or is garbage
 *   lock                   the run lock (pid of the holder)
 */

export interface FileEntry { name: string; sha256: string; size: number }

/** Identity of an artifact's content: its files' names and checksums (what equal outputs share). */
export function contentId(files: FileEntry[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) h.update(`${f.name}\0${f.sha256}\n`);
  return h.digest('hex');
}

export interface CommittedIndex { keys: Set<string>; sameAs: Map<string, string> }

/** Parses a store's committed.keys (see Store.committedIndex); an absent file is an empty store. */
export function readCommittedIndex(path: string): CommittedIndex {
  const keys = new Set<string>();
  const sameAs = new Map<string, string>();
  if (!existsSync(path)) return { keys, sameAs };
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([0-9a-f]{32})(?: ([0-9a-f]{32}))?$/.exec(line);
    if (!m) continue;
    keys.add(m[1]);
    if (m[2]) sameAs.set(m[1], m[2]);
  }
  return { keys, sameAs };
}

export class StoreError extends Error {
  constructor(message: string) { super(message); this.name = 'StoreError'; }
}

export function resolveStoreDir(flag?: string): string {
  return resolve(flag ?? process.env.AGENTFORGE_STORE ?? '.agentforge');
}

export class Store {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
    for (const d of ['artifacts', 'checkpoints', 'tmp']) mkdirSync(join(this.dir, d), { recursive: true });
    this.restoreReplaced();
  }

  /**
   * A run killed inside publish() between moving a committed artifact aside and renaming its replacement in leaves
   * the artifact only under tmp/<pid>-replaced-<key>: put it back, so the ledger's row points at its files again.
   */
  private restoreReplaced(): void {
    for (const name of readdirSync(join(this.dir, 'tmp'))) {
      const m = /^(\d+)-replaced-([0-9a-f]{32})$/.exec(name);
      if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1])) && !existsSync(this.artifactDir(m[2]))) {
        renameSync(join(this.dir, 'tmp', name), this.artifactDir(m[2]));
      }
    }
  }
  get ledgerPath() { return join(this.dir, 'ledger.duckdb'); }
  get indexPath() { return join(this.dir, 'committed.keys'); }

  /**
   * Keys committed in the ledger, mirrored one per line in a sidecar written after each ledger commit (so the
   * index is never ahead of the ledger). A no-op rerun reads only this file and never loads DuckDB. A line
   * `KEY SAME` says KEY's files are byte-identical to those of the earlier artifact SAME of the same node (its
   * output did not change), which is what consumers key on: early cutoff (runtime/engine/keys.ts).
   */
  committedIndex(): CommittedIndex { return readCommittedIndex(this.indexPath); }
  committedKeys(): Set<string> { return this.committedIndex().keys; }
  markCommitted(key: string, sameAs?: string | null) { appendFileSync(this.indexPath, sameAs ? `${key} ${sameAs}\n` : `${key}\n`); }
  /** Called before the ledger row goes, so the index never names a key the ledger lacks. */
  unmarkCommitted(keys: string[]) {
    const drop = new Set(keys);
    const { keys: all, sameAs } = this.committedIndex();
    const keep = [...all].filter((k) => !drop.has(k));
    writeFileAtomic(this.indexPath, keep.map((k) => (sameAs.has(k) ? `${k} ${sameAs.get(k)}\n` : `${k}\n`)).join(''));
  }
  artifactDir(key: string) { return join(this.dir, 'artifacts', key); }
  checkpointDir(key: string) { return join(this.dir, 'checkpoints', key); }

  /** A fresh scratch dir tagged with our pid so a later run can tell whose garbage it is. */
  tempDir(label = 'tmp'): string {
    const d = join(this.dir, 'tmp', `${process.pid}-${label}-${randomUUID().slice(0, 8)}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Removes scratch dirs of processes that are gone (a killed run leaves them behind). */
  sweepTemp(): number {
    let n = 0;
    for (const name of readdirSync(join(this.dir, 'tmp'))) {
      const pid = Number(name.split('-')[0]);
      if (pid && pid !== process.pid && !processAlive(pid)) {
        rmSync(join(this.dir, 'tmp', name), { recursive: true, force: true });
        n++;
      }
    }
    return n;
  }

  /**
   * Atomically publishes a staged folder as the artifact of `key`: fsync every file, then rename into place.
   * The ledger row is written by the caller afterwards; a crash in between leaves an unreferenced folder that the
   * next run replaces and `gc` removes. A committed artifact being recomputed (--force, --from) is moved aside, not
   * deleted, until its replacement is in place: deleting it file by file first left a kill in between with a
   * ledger row and no files (the constructor restores one moved aside).
   */
  publish(staged: string, key: string): FileEntry[] {
    const entries = checksumDir(staged, true);
    const final = this.artifactDir(key);
    const aside = join(this.dir, 'tmp', `${process.pid}-replaced-${key}`);
    const replacing = existsSync(final);
    if (replacing) renameSync(final, aside);
    renameSync(staged, final);
    fsyncPath(join(this.dir, 'artifacts'));
    if (replacing) rmSync(aside, { recursive: true, force: true });
    return entries;
  }

  /** Verifies an artifact's files against the checksums recorded at commit. */
  verify(key: string, files: FileEntry[], nodeHint: string): void {
    const dir = this.artifactDir(key);
    for (const f of files) {
      const p = join(dir, f.name);
      const fix = `run \`agentforge gc --repair\` to drop the damaged artifact so the next run recomputes it`;
      if (!existsSync(p)) throw new StoreError(`artifact ${key} (node ${nodeHint}): file ${f.name} is missing from ${dir}; ${fix}`);
      const st = statSync(p);
      if (st.size !== f.size || hashFileSync(p) !== f.sha256) {
        throw new StoreError(`artifact ${key} (node ${nodeHint}): checksum mismatch in ${p} (the file was altered after commit); ${fix}`);
      }
    }
  }
}

export function processAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

function fsyncPath(p: string) {
  try { const fd = openSync(p, 'r'); try { fsyncSync(fd); } finally { closeSync(fd); } } catch { /* some filesystems refuse fsync on dirs */ }
}

export function hashFileSync(p: string): string {
  const h = createHash('sha256');
  const fd = openSync(p, 'r');
  const buf = Buffer.allocUnsafe(1 << 20);
  try {
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) h.update(buf.subarray(0, n));
  } finally { closeSync(fd); }
  return h.digest('hex');
}

function walk(dir: string, base = dir): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, base));
    else out.push(p);
  }
  return out;
}

export function checksumDir(dir: string, sync = false): FileEntry[] {
  return walk(dir).map((p) => {
    if (sync) fsyncPath(p);
    return { name: relative(dir, p), sha256: hashFileSync(p), size: statSync(p).size };
  });
}

/* ---- the run lock ---- */

export interface LockInfo { pid: number; started: string; argv: string }

export class RunLock {
  private constructor(private path: string) {}

  /** Takes the store's run lock, waiting up to `waitMs` for a live holder; a dead holder's lock is taken over. */
  static async acquire(store: Store, waitMs = 0): Promise<RunLock> {
    const path = join(store.dir, 'lock');
    const deadline = Date.now() + waitMs;
    for (;;) {
      try {
        const fd = openSync(path, 'wx');
        writeFileSync(fd, JSON.stringify({ pid: process.pid, started: new Date().toISOString(), argv: process.argv.slice(1).join(' ') }));
        fsyncSync(fd);
        closeSync(fd);
        return new RunLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readLock(path);
      if (!holder || !processAlive(holder.pid)) {
        try { unlinkSync(path); } catch { /* another process took it over first */ }
        continue;
      }
      if (Date.now() >= deadline) {
        throw new StoreError(
          `store ${store.dir} is locked by a running agentforge (pid ${holder.pid}, started ${holder.started}: ${holder.argv}); ` +
          `wait for it, or pass --wait SECONDS to queue behind it`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  release() { try { unlinkSync(this.path); } catch { /* already gone */ } }
}

export function readLock(path: string): LockInfo | undefined {
  try { return JSON.parse(readFileSync(path, 'utf8')) as LockInfo; } catch { return undefined; }
}

/** Writes a file atomically (temp + fsync + rename). */
export function writeFileAtomic(path: string, data: string | Buffer) {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try { writeFileSync(fd, data); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
}
