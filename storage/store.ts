import { createHash, randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, closeSync, fsyncSync, readFileSync, readSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';

/*
 * The store is a folder (default ./.agentforge, else --store or AGENTFORGE_STORE):
 *   ledger.duckdb          runs, executions, artifacts, lineage, metrics
 *   artifacts/<key>/       committed artifacts, addressed by the node key that produced them
 *   checkpoints/<key>/     partial work of a node that has not committed yet (survives a kill)
 *   tmp/<pid>-<uuid>/      scratch and staging; anything here belongs to a run that is alive or is garbage
 *   lock                   the run lock (host, boot id, pid and process start time of the holder)
 * Every artifact folder carries MANIFEST (its ledger row and lineage, written before the folder is published), so a
 * lost ledger can be rebuilt from the artifacts themselves (`agentforge gc --repair`).
 */

/** Name of the manifest inside each artifact folder; not one of the artifact's files (not checksummed, not content). */
export const MANIFEST = '.agentforge-manifest.json';

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

/**
 * Names `agentforge sql` gives the ledger's own tables. Node ids become view names too (`<node>`, `<node>_all`,
 * `<dag>__<node>`), so dag.ts rejects ids that would collide with these or with each other's derived views.
 */
export const LEDGER_TABLES = ['runs', 'executions', 'artifacts', 'lineage', 'metrics'] as const;

/** A UTF-16 surrogate without its pair: not encodable as UTF-8 (DuckDB refuses it, Parquet writers replace it). */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const wellFormed = (s: string) => s.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD');

export class StoreError extends Error {
  constructor(message: string) { super(message); this.name = 'StoreError'; }
}

/** The ledger is gone, damaged, or behind the artifacts: no claim about the store can be made from it. */
export class LedgerLost extends StoreError {
  constructor(message: string) { super(message); this.name = 'LedgerLost'; }
}

export const LEDGER_FIX = 'Run `agentforge gc --repair` to rebuild the ledger\'s artifact rows from the manifests in the artifact folders (the damaged ledger is kept aside, no artifact is deleted), or restore ledger.duckdb from a backup.';

/**
 * Structural check of a DuckDB file: magic bytes, then the active database header's block count against the
 * file size (a truncated file is shorter than the blocks its header names). Layout of DuckDB 1.x storage:
 * main header at 0 ("DUCK" at offset 8), two database headers at 4096 and 8192 (u64 checksum, iteration,
 * meta_block, free_list, block_count, block_alloc_size, …), blocks from 12288.
 */
export function duckdbFileProblem(path: string, size = statSync(path).size): string | undefined {
  if (size < 12288) return `is truncated (${size} bytes; a DuckDB file has at least 12288)`;
  const buf = Buffer.alloc(12288);
  const fd = openSync(path, 'r');
  try { readSync(fd, buf, 0, buf.length, 0); } finally { closeSync(fd); }
  if (buf.toString('latin1', 8, 12) !== 'DUCK') return 'is not a DuckDB file (bad magic bytes)';
  const header = (off: number) => ({ iteration: buf.readBigUInt64LE(off + 8), meta: buf.readBigUInt64LE(off + 16), blockSize: buf.readBigUInt64LE(off + 40) });
  const [a, b] = [header(4096), header(8192)];
  const active = a.iteration >= b.iteration ? a : b;
  // DuckDB drops free blocks at the end of the file, so the header's block count is no lower bound; but the file
  // is whole blocks, and the block holding the catalog (meta_block, low 56 bits) lies inside it.
  if (active.blockSize >= 4096n && active.blockSize <= 1n << 30n) {
    const body = BigInt(size) - 12288n;
    if (body % active.blockSize !== 0n) return `is truncated (${size} bytes is not a whole number of ${active.blockSize}-byte blocks)`;
    const meta = active.meta & ((1n << 56n) - 1n);
    if (active.meta !== 0xffffffffffffffffn && meta >= body / active.blockSize) return `is truncated (its catalog is in block ${meta}, the file holds ${body / active.blockSize})`;
  }
  return undefined;
}

/**
 * Why a store's ledger cannot be trusted, judged from files alone (a no-op rerun must stay DuckDB-free), or
 * undefined. A store that has committed something (committed.keys or an artifact folder) must have a ledger whose
 * size covers every block its header names: a deleted, emptied or truncated ledger would otherwise read as a store
 * that never ran, a run would report success, and `gc` would see every artifact as unreferenced.
 */
export function ledgerProblemAt(storeDir: string): string | undefined {
  const index = readCommittedIndex(join(storeDir, 'committed.keys')).keys.size;
  const artifacts = join(storeDir, 'artifacts');
  const folders = existsSync(artifacts) && statSync(artifacts).isDirectory() ? readdirSync(artifacts).filter((n) => /^[0-9a-f]{32}$/.test(n)).length : 0;
  const holds = index || folders ? `the store holds ${index} committed key(s) in committed.keys and ${folders} artifact folder(s)` : '';
  const p = join(storeDir, 'ledger.duckdb');
  if (!existsSync(p)) return holds ? `ledger ${p} is missing but ${holds}` : undefined;
  const size = statSync(p).size;
  if (size === 0 && !holds) return undefined;
  const bad = duckdbFileProblem(p, size);
  return bad ? `ledger ${p} ${bad}${holds ? `; ${holds}` : ''}` : undefined;
}

export function assertLedgerAt(storeDir: string): void {
  const why = ledgerProblemAt(storeDir);
  if (why) throw new LedgerLost(`${why}. Nothing was run or deleted. ${LEDGER_FIX}`);
}

export function resolveStoreDir(flag?: string): string {
  return resolve(flag ?? process.env.AGENTFORGE_STORE ?? '.agentforge');
}

export class Store {
  readonly dir: string;
  constructor(dir: string) {
    this.dir = resolve(dir);
    if (existsSync(this.dir) && !statSync(this.dir).isDirectory()) {
      throw new StoreError(`store ${this.dir} is a file, not a folder; pass --store DIR (or AGENTFORGE_STORE) naming a folder`);
    }
    for (const d of ['artifacts', 'checkpoints', 'tmp']) {
      const p = join(this.dir, d);
      if (existsSync(p) && !statSync(p).isDirectory()) {
        throw new StoreError(`store ${this.dir}: '${d}' is a file, but the store keeps a folder there; move ${p} away (the store recreates the folder)`);
      }
      mkdirSync(p, { recursive: true });
    }
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
  checkpointDir(key: string) { return Store.checkpointDirOf(this.dir, key); }
  /** Without opening the store (which creates its folders): for read-only callers such as `status`. */
  static checkpointDirOf(storeDir: string, key: string) { return join(resolve(storeDir), 'checkpoints', key); }

  /** A fresh scratch dir tagged with our pid so a later run can tell whose garbage it is. */
  tempDir(label = 'tmp'): string {
    const d = join(this.dir, 'tmp', `${process.pid}-${label}-${randomUUID().slice(0, 8)}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /**
   * Removes scratch of processes that are gone (a killed run leaves it behind). Called under the run lock, so an
   * entry not named `<pid>-…` belongs to nobody (tempDir always names its pid) and goes too.
   */
  sweepTemp(): number {
    let n = 0;
    for (const name of readdirSync(join(this.dir, 'tmp'))) {
      const m = /^(\d+)-/.exec(name);
      const pid = m ? Number(m[1]) : 0;
      if (pid === process.pid || (pid > 0 && processAlive(pid))) continue;
      rmSync(join(this.dir, 'tmp', name), { recursive: true, force: true });
      n++;
    }
    return n;
  }

  /** Keys of artifact folders present (entries that are not 32-hex key folders are not artifacts). */
  artifactFolders(): string[] {
    return readdirSync(join(this.dir, 'artifacts')).filter((n) => /^[0-9a-f]{32}$/.test(n));
  }

  /**
   * Identity of the ledger file as last seen healthy (ledger.checked): inode, birth time, size and the DuckDB
   * header's checkpoint iteration, recorded when a run closes a ledger it checked holds every key committed.keys
   * names. A ledger restored from a backup, recreated empty, or written by anything else since no longer matches,
   * and the no-op fast path then defers to the full check instead of trusting committed.keys.
   */
  ledgerStamp(): string | undefined {
    try {
      const st = statSync(this.ledgerPath);
      const buf = Buffer.alloc(8192 + 16);
      const fd = openSync(this.ledgerPath, 'r');
      try { readSync(fd, buf, 0, buf.length, 0); } finally { closeSync(fd); }
      const a = buf.readBigUInt64LE(4096 + 8);
      const b = buf.readBigUInt64LE(8192 + 8);
      return `${st.ino}:${st.birthtimeMs}:${st.size}:${a > b ? a : b}`;
    } catch { return undefined; }
  }
  ledgerVouched(): boolean {
    const now = this.ledgerStamp();
    try { return now !== undefined && readFileSync(join(this.dir, 'ledger.checked'), 'utf8') === now; } catch { return false; }
  }
  vouchLedger(): void {
    const now = this.ledgerStamp();
    if (now !== undefined) writeFileAtomic(join(this.dir, 'ledger.checked'), now);
  }

  /**
   * A lock left by a run that died: the no-op fast path then takes the full path, which takes the lock over and
   * marks that run killed (otherwise a store whose reruns are all no-ops would show it `running` forever).
   */
  deadLockLeft(): boolean {
    const p = join(this.dir, 'lock');
    if (!existsSync(p)) return false;
    const h = readLock(p);
    return !h || lockHolderAlive(h) === false;
  }

  /** See ledgerProblemAt. */
  ledgerProblem(): string | undefined { return ledgerProblemAt(this.dir); }

  /** Throws a LedgerLost naming the damage and the fix when ledgerProblem() finds one. */
  assertLedger(): void { assertLedgerAt(this.dir); }

  /**
   * Atomically publishes a staged folder as the artifact of `key`: fsync every file, then rename into place.
   * The ledger row is written by the caller afterwards; a crash in between leaves an unreferenced folder that the
   * next run replaces and `gc` removes. A committed artifact being recomputed (--force, --from) is moved aside, not
   * deleted, until its replacement is in place: deleting it file by file first left a kill in between with a
   * ledger row and no files (the constructor restores one moved aside).
   */
  publish(staged: string, key: string, entries: FileEntry[] = checksumDir(staged, true)): FileEntry[] {
    fsyncPath(join(staged, MANIFEST));
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
    if (dir === base && name === MANIFEST) continue;
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

/**
 * Who holds the lock. A pid alone cannot say whether the holder is alive: pids are reused (pid 1 is always alive
 * in a container), so liveness is host + boot id + pid + the process's start time, all of which must match.
 */
export interface LockInfo { pid: number; started: string; argv: string; host?: string; boot?: string; pidStart?: string; nonce?: string }

let bootIdCache: string | undefined;
export function bootId(): string {
  if (bootIdCache === undefined) {
    try { bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); } catch { bootIdCache = ''; }
  }
  return bootIdCache;
}

/** The start time of a process in clock ticks since boot (/proc/PID/stat field 22), or undefined where unknown. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch { return undefined; }
}

export function lockIdentity(): Omit<LockInfo, 'started' | 'argv'> {
  return { pid: process.pid, host: hostname(), boot: bootId(), pidStart: processStart(process.pid), nonce: randomUUID() };
}

/** Whether the process named by a lock may still be running: 'other-host' when it ran elsewhere (cannot be judged). */
export function lockHolderAlive(h: LockInfo): boolean | 'other-host' {
  if (!Number.isInteger(h.pid) || h.pid <= 0) return false;
  if (h.host !== undefined && h.host !== hostname()) return 'other-host';
  if (h.boot && bootId() && h.boot !== bootId()) return false;
  if (!processAlive(h.pid)) return false;
  if (h.pidStart !== undefined) {
    const now = processStart(h.pid);
    return now === undefined || now === h.pidStart;
  }
  // A lock written before start times were recorded: pid 1 is init (or a container's entry point), never a holder.
  return h.pid > 1;
}

const TAKEOVER_STALE_MS = 10_000;

export class RunLock {
  private constructor(private path: string, private content: string, readonly tookOver?: LockInfo) {}

  /**
   * Takes the store's run lock, waiting up to `waitMs` for a live holder. The lock file appears with its full
   * content at once (written aside, then hard-linked into place), so no reader ever sees a half-written lock.
   * A dead holder's lock is taken over under a mutex named after that exact lock file (inode + content): the
   * winner checks the lock is still the dead one before unlinking it, so two processes never both take it over,
   * and nobody ever unlinks a live lock.
   */
  static async acquire(store: Store, waitMs = 0): Promise<RunLock> {
    const path = join(store.dir, 'lock');
    const deadline = Date.now() + waitMs;
    const info: LockInfo = { ...lockIdentity(), started: new Date().toISOString(), argv: process.argv.slice(1).join(' ') };
    const content = JSON.stringify(info);
    let tookOver: LockInfo | undefined;
    for (;;) {
      const mine = join(store.dir, 'tmp', `${process.pid}-lock-${info.nonce}`);
      writeFileSync(mine, content);
      try {
        linkSync(mine, path);
        return new RunLock(path, content, tookOver);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally { rmSync(mine, { force: true }); }
      const seen = readLockFile(path);
      if (!seen) continue; // released meanwhile
      const holder = parseLock(seen.text);
      const alive = holder ? lockHolderAlive(holder) : false;
      if (alive === false) {
        if (takeOver(path, seen)) tookOver = holder ?? { pid: 0, started: '?', argv: '(unreadable lock)' };
        else await sleep(20);
        continue;
      }
      if (Date.now() >= deadline) {
        const where = alive === 'other-host' ? ` on host ${holder!.host} (its liveness cannot be checked from here; delete ${path} if that run is gone)` : '';
        throw new StoreError(
          `store ${store.dir} is locked by a running agentforge (pid ${holder!.pid}${where}, started ${holder!.started}: ${holder!.argv}); ` +
          `wait for it, or pass --wait SECONDS to queue behind it`,
        );
      }
      await sleep(100);
    }
  }

  /** Removes the lock only while it is still ours (a lock taken over from us after we were presumed dead is not). */
  release() {
    const seen = readLockFile(this.path);
    if (seen && seen.text === this.content) { try { unlinkSync(this.path); } catch { /* already gone */ } }
  }
}

function sleep(ms: number) { return new Promise((r) => setTimeout(r, ms)); }

function readLockFile(path: string): { ino: number; text: string } | undefined {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch { return undefined; }
  try { return { ino: fstatSync(fd).ino, text: readFileSync(fd, 'utf8') }; } finally { closeSync(fd); }
}

function parseLock(text: string): LockInfo | undefined {
  try { const v = JSON.parse(text) as LockInfo; return typeof v === 'object' && v !== null ? v : undefined; } catch { return undefined; }
}

/** Unlinks the dead lock `seen` if it is still in place; true when this process did so. */
function takeOver(path: string, seen: { ino: number; text: string }): boolean {
  const tag = createHash('sha256').update(`${seen.ino}\0${seen.text}`).digest('hex').slice(0, 16);
  const mutex = `${path}.takeover-${tag}`;
  try { mkdirSync(mutex); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // Holding the mutex takes microseconds: one this old belongs to a process killed inside it.
    try { if (Date.now() - statSync(mutex).mtimeMs > TAKEOVER_STALE_MS) rmdirSync(mutex); } catch { /* gone */ }
    return false;
  }
  try {
    const now = readLockFile(path);
    if (!now || now.ino !== seen.ino || now.text !== seen.text) return false;
    unlinkSync(path);
    return true;
  } finally { try { rmdirSync(mutex); } catch { /* gone */ } }
}

export function readLock(path: string): LockInfo | undefined {
  const seen = readLockFile(path);
  return seen ? parseLock(seen.text) : undefined;
}

/** Writes a file atomically (temp + fsync + rename). */
export function writeFileAtomic(path: string, data: string | Buffer) {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w');
  try { writeFileSync(fd, data); fsyncSync(fd); } finally { closeSync(fd); }
  renameSync(tmp, path);
}
