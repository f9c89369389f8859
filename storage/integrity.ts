import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { hashFileSync, type FileEntry } from './store.ts';

/*
 * Damage checks for committed artifacts, against the sizes and sha256 the ledger recorded at commit.
 *   quickCheck  existence, size, and for Parquet the magic at both ends and a footer length that fits: a stat and
 *               12 bytes a file, cheap enough for every status and no-op run.
 *   fullCheck   quickCheck, then sha256 of every file: what a reader runs, lazily, before it trusts the rows.
 * Both return what is wrong, or undefined; damageMessage turns that into the error every reader prints.
 */

export const REPAIR_HINT = 'run `agentforge gc --repair` to drop the damaged artifact so the next run recomputes it';

export function damageMessage(a: { key: string; node_id: string }, problem: string): string {
  return `artifact ${a.key} of node '${a.node_id}' is damaged: ${problem}; ${REPAIR_HINT}`;
}

const MAGIC = 0x31524150; // "PAR1" read as a little-endian uint32

/** What is wrong with a Parquet file's frame (magic at both ends, footer length within the file), or undefined. */
export function parquetFrameProblem(path: string, size: number): string | undefined {
  if (size < 12) return `${path} is ${size} bytes, too short for Parquet`;
  const head = Buffer.alloc(4);
  const tail = Buffer.alloc(8);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
    readSync(fd, tail, 0, 8, size - 8);
  } finally { closeSync(fd); }
  if (head.readUInt32LE(0) !== MAGIC || tail.readUInt32LE(4) !== MAGIC) return `${path} lacks the Parquet magic bytes (truncated or overwritten)`;
  const footer = tail.readUInt32LE(0);
  if (footer === 0 || footer + 12 > size) return `${path} has a footer length (${footer} bytes) that does not fit the file (${size} bytes)`;
  return undefined;
}

export function quickCheck(dir: string, files: FileEntry[]): string | undefined {
  for (const f of files) {
    const p = join(dir, f.name);
    if (!existsSync(p)) return `file ${p} is missing`;
    const size = statSync(p).size;
    if (size !== f.size) return `${p} is ${size} bytes, ${f.size} were committed`;
    if (f.name.endsWith('.parquet')) {
      const bad = parquetFrameProblem(p, size);
      if (bad) return bad;
    }
  }
  return undefined;
}

export function fullCheck(dir: string, files: FileEntry[]): string | undefined {
  const quick = quickCheck(dir, files);
  if (quick) return quick;
  for (const f of files) {
    const p = join(dir, f.name);
    if (hashFileSync(p) !== f.sha256) return `${p} does not match the sha256 recorded at commit (the file was altered after commit)`;
  }
  return undefined;
}

/** The ledger stores `files` as JSON; rows read through DuckDB may hand it over as a string. */
export function fileEntries(files: unknown): FileEntry[] {
  const v = typeof files === 'string' ? JSON.parse(files) : files;
  return Array.isArray(v) ? (v as FileEntry[]) : [];
}

/**
 * Cheap checks for readers with no ledger row at hand (the no-op fast path reads only committed.keys): the sizes
 * the folder's own manifest recorded (when it has one), the required files, and the frame of every Parquet file.
 */
export function folderProblem(dir: string, required: string[] = [], manifest?: string): string | undefined {
  let names: string[];
  try { names = readdirSync(dir); } catch { return `folder ${dir} cannot be read`; }
  for (const r of required) if (!names.includes(r)) return `file ${join(dir, r)} is missing`;
  if (manifest && names.includes(manifest)) {
    let files: FileEntry[] | undefined;
    try { files = fileEntries((JSON.parse(readFileSync(join(dir, manifest), 'utf8')) as { artifact?: { files?: unknown } }).artifact?.files); } catch {
      return `its manifest ${join(dir, manifest)} is not valid JSON`;
    }
    const bad = quickCheck(dir, files);
    if (bad) return bad;
  }
  for (const n of names) {
    if (!n.endsWith('.parquet')) continue;
    const p = join(dir, n);
    const bad = parquetFrameProblem(p, statSync(p).size);
    if (bad) return bad;
  }
  return undefined;
}

/** quickCheck over committed rows whose folder exists (a missing folder is the scheduler's "recompute" case). */
export function damagedArtifacts(storeDir: string, rows: Iterable<{ key: string; node_id: string; path: string; files: unknown }>): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const dir = join(storeDir, r.path);
    if (!existsSync(dir)) continue;
    const problem = quickCheck(dir, fileEntries(r.files));
    if (problem) out.push(damageMessage(r, problem));
  }
  return out;
}
