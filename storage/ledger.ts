import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentId, wellFormed, LEDGER_FIX, LedgerLost, StoreError, type FileEntry } from './store.ts';

/*
 * The ledger is a DuckDB file in the store. Everything a no-op rerun, `status`, `runs` and `sql` need is here,
 * so none of them ever opens an artifact's payload.
 */

const DDL = `
CREATE TABLE IF NOT EXISTS runs (run_id VARCHAR PRIMARY KEY, dag VARCHAR, dag_file VARCHAR, started_at TIMESTAMP,
  finished_at TIMESTAMP, status VARCHAR, argv VARCHAR, pid INTEGER);
CREATE TABLE IF NOT EXISTS executions (run_id VARCHAR, node_id VARCHAR, dag VARCHAR, op VARCHAR, version INTEGER,
  key VARCHAR, status VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, seconds DOUBLE, params JSON, error VARCHAR);
CREATE TABLE IF NOT EXISTS artifacts (key VARCHAR PRIMARY KEY, node_id VARCHAR, dag VARCHAR, op VARCHAR, version INTEGER,
  kind VARCHAR, path VARCHAR, schema JSON, rows BIGINT, bytes BIGINT, files JSON, parts JSON, run_id VARCHAR,
  committed_at TIMESTAMP, same_as VARCHAR);
ALTER TABLE artifacts ADD COLUMN IF NOT EXISTS same_as VARCHAR;
CREATE TABLE IF NOT EXISTS lineage (key VARCHAR, input VARCHAR, parent_key VARCHAR);
CREATE TABLE IF NOT EXISTS metrics (run_id VARCHAR, node_id VARCHAR, key VARCHAR, step BIGINT, name VARCHAR,
  value DOUBLE, ts TIMESTAMP);
`;

export interface ArtifactRow {
  key: string; node_id: string; dag: string; op: string; version: number; kind: string; path: string;
  schema: unknown; rows: number | null; bytes: number; files: FileEntry[]; parts: unknown; run_id: string;
  committed_at: string;
  /** An earlier artifact of the same node with byte-identical files (consumers key on that one), else null. */
  same_as: string | null;
}
/**
 * What an artifact folder says about itself (store.ts MANIFEST): its ledger row and lineage, written into the
 * staged folder before it is published, so the two appear together.
 */
export interface Manifest {
  format: 1;
  artifact: Omit<ArtifactRow, 'committed_at'>;
  lineage: { input: string; parent: string }[];
  committed_at: string;
}
export interface MetricRow { runId: string; nodeId: string; key: string; step: number | null; name: string; value: number; ts: number }

const lit = (v: unknown): string => {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : 'NULL';
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  // A lone surrogate cannot be encoded as UTF-8 and DuckDB refuses the whole statement; params are validated up
  // front (dag.ts), so this only guards free text such as error messages quoting a bad row.
  return `'${wellFormed(String(v)).replace(/'/g, "''")}'`;
};

const LOCKED = /Could not set lock|Conflicting lock/i;
/** How long a writer waits for a reader (an `agentforge sql` session) holding the ledger file. */
const WRITER_WAIT_MS = Number(process.env.AGENTFORGE_LEDGER_WAIT_MS ?? 60_000);

/**
 * Copies the ledger (file + WAL) to a private folder and returns its path there: readers open the copy, so they
 * never hold a lock on the live file and never stop a run or gc from opening it. A copy taken while a writer
 * checkpointed is retaken (the file changed under the copy).
 */
export function snapshotLedger(path: string): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'agentforge-ledger-'));
  const copy = join(dir, 'ledger.duckdb');
  const stamp = () => { try { const s = statSync(path); const w = existsSync(`${path}.wal`) ? statSync(`${path}.wal`) : undefined; return `${s.size}:${s.mtimeMs}:${w?.size}:${w?.mtimeMs}`; } catch { return 'gone'; } };
  for (let i = 0; ; i++) {
    const before = stamp();
    rmSync(`${copy}.wal`, { force: true });
    copyFileSync(path, copy);
    if (existsSync(`${path}.wal`)) { try { copyFileSync(`${path}.wal`, `${copy}.wal`); } catch { /* checkpointed away meanwhile */ } }
    if (stamp() === before || i >= 20) return { path: copy, dir };
  }
}

export class Ledger {
  private queue: Promise<unknown> = Promise.resolve();
  private constructor(private inst: DuckDBInstance, readonly conn: DuckDBConnection, private snapshotDir?: string) {}

  /**
   * The writer's connection. A reader holding the file in place (agentforge's own readers use snapshotLedger, but
   * a DuckDB client opened on the file by hand takes a shared lock) makes DuckDB refuse the lock: wait for it (AGENTFORGE_LEDGER_WAIT_MS, default 60 s) rather than fail the run.
   * A file DuckDB cannot read is reported as a lost ledger with the fix, not as a raw DuckDB error.
   */
  static async open(path: string, waitMs = WRITER_WAIT_MS): Promise<Ledger> {
    const deadline = Date.now() + waitMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      try {
        const inst = await DuckDBInstance.create(path);
        const conn = await inst.connect();
        await conn.run(DDL);
        return new Ledger(inst, conn);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (!LOCKED.test(msg)) throw new LedgerLost(`ledger ${path} cannot be opened: ${msg.split('\n')[0]}. Nothing was run. If the file is damaged: ${LEDGER_FIX}`);
        if (Date.now() >= deadline) {
          const holder = /PID (\d+)/.exec(msg)?.[1];
          throw new StoreError(`ledger ${path} is held open by another process${holder ? ` (pid ${holder})` : ''}, e.g. a DuckDB client reading it in place, for more than ${Math.round(waitMs / 1000)} s; close it and rerun (nothing was run)`);
        }
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Read-only access for `status` and `runs`: a snapshot copy (file + WAL) with everything committed so far, so a
   * reader never holds the live file's lock (a reader must never make a run or gc fail).
   */
  static async openReadOnly(path: string): Promise<Ledger> {
    if (!existsSync(path)) return Ledger.open(':memory:');
    const snap = snapshotLedger(path);
    try {
      const inst = await DuckDBInstance.create(snap.path);
      const conn = await inst.connect();
      await conn.run(DDL);
      return new Ledger(inst, conn, snap.dir);
    } catch (e) {
      rmSync(snap.dir, { recursive: true, force: true });
      throw new LedgerLost(`ledger ${path} cannot be read: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}. ${LEDGER_FIX}`);
    }
  }

  /** Runs still marked `running` while the caller holds the run lock died without finishing: say so. */
  async markKilled(): Promise<number> {
    const rows = await this.all<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM runs WHERE status = 'running'`);
    if (rows[0]?.n) await this.run(`UPDATE runs SET status = 'killed', finished_at = coalesce(finished_at, now()) WHERE status = 'running'`);
    return rows[0]?.n ?? 0;
  }

  /** Keys named by committed.keys that the ledger has no artifact row for (a ledger replaced or rolled back). */
  async missingKeys(keys: Iterable<string>): Promise<string[]> {
    const list = [...keys];
    if (!list.length) return [];
    await this.run('CREATE OR REPLACE TEMP TABLE _index_keys (key VARCHAR)');
    for (let i = 0; i < list.length; i += 1000) await this.run(`INSERT INTO _index_keys VALUES ${list.slice(i, i + 1000).map((k) => `(${lit(k)})`).join(', ')}`);
    const rows = await this.all<{ key: string }>('SELECT i.key FROM _index_keys i ANTI JOIN artifacts a USING (key)');
    await this.run('DROP TABLE _index_keys');
    return rows.map((r) => r.key);
  }

  async runIds(): Promise<Set<string>> {
    return new Set((await this.all<{ run_id: string }>('SELECT run_id FROM runs')).map((r) => r.run_id));
  }

  /** Inserts an artifact row and its lineage from an artifact's manifest (gc --repair). */
  adoptArtifact(m: Manifest) {
    return this.commitRows(m.artifact, m.lineage, [`INSERT INTO artifacts VALUES (${lit(m.artifact.key)}, ${lit(m.artifact.node_id)}, ${lit(m.artifact.dag)}, ${lit(m.artifact.op)}, ${m.artifact.version}, ${lit(m.artifact.kind)}, ${lit(m.artifact.path)},
        ${lit(JSON.stringify(m.artifact.schema ?? null))}, ${lit(m.artifact.rows)}, ${lit(m.artifact.bytes)}, ${lit(JSON.stringify(m.artifact.files))}, ${lit(JSON.stringify(m.artifact.parts))},
        ${lit(m.artifact.run_id)}, ${lit(m.committed_at)}::TIMESTAMP, ${lit(m.artifact.same_as)})`]);
  }

  private commitRows(a: { key: string }, lineage: { input: string; parent: string }[], inserts: string[]) {
    const stmts = [
      'BEGIN TRANSACTION',
      `DELETE FROM artifacts WHERE key = ${lit(a.key)}`,
      `DELETE FROM lineage WHERE key = ${lit(a.key)}`,
      ...inserts,
      ...lineage.map((l) => `INSERT INTO lineage VALUES (${lit(a.key)}, ${lit(l.input)}, ${lit(l.parent)})`),
      'COMMIT',
    ];
    return this.exec(async () => {
      try { await this.conn.run(stmts.join(';\n')); } catch (e) { await this.conn.run('ROLLBACK').catch(() => undefined); throw e; }
    });
  }

  /** Serialises statements: one connection is shared by all concurrently running nodes. */
  private exec<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  run(sql: string): Promise<void> { return this.exec(async () => { await this.conn.run(sql); }); }

  all<T = Record<string, unknown>>(sql: string): Promise<T[]> {
    return this.exec(async () => (await this.conn.runAndReadAll(sql)).getRowObjectsJson() as T[]);
  }

  startRun(runId: string, dag: string, dagFile: string) {
    return this.run(`INSERT INTO runs VALUES (${lit(runId)}, ${lit(dag)}, ${lit(dagFile)}, now(), NULL, 'running', ${lit(process.argv.slice(1).join(' '))}, ${process.pid})`);
  }
  finishRun(runId: string, status: string) {
    return this.run(`UPDATE runs SET finished_at = now(), status = ${lit(status)} WHERE run_id = ${lit(runId)}`);
  }

  recordExecution(e: { runId: string; nodeId: string; dag: string; op: string; version: number; key: string; status: string; seconds?: number; params: unknown; error?: string }) {
    return this.run(`INSERT INTO executions VALUES (${lit(e.runId)}, ${lit(e.nodeId)}, ${lit(e.dag)}, ${lit(e.op)}, ${e.version}, ${lit(e.key)},
      ${lit(e.status)}, now() - to_seconds(${e.seconds ?? 0}), now(), ${lit(e.seconds ?? 0)}, ${lit(JSON.stringify(e.params ?? null))}, ${lit(e.error ?? null)})`);
  }

  /** The artifact row, its lineage and the execution's status land in one transaction. */
  commitArtifact(a: Omit<ArtifactRow, 'committed_at'>, lineage: { input: string; parent: string }[], exec: Parameters<Ledger['recordExecution']>[0]) {
    return this.commitRows(a, lineage, [
      `INSERT INTO artifacts VALUES (${lit(a.key)}, ${lit(a.node_id)}, ${lit(a.dag)}, ${lit(a.op)}, ${a.version}, ${lit(a.kind)}, ${lit(a.path)},
        ${lit(JSON.stringify(a.schema ?? null))}, ${lit(a.rows)}, ${lit(a.bytes)}, ${lit(JSON.stringify(a.files))}, ${lit(JSON.stringify(a.parts))},
        ${lit(a.run_id)}, now(), ${lit(a.same_as)})`,
      `INSERT INTO executions VALUES (${lit(exec.runId)}, ${lit(exec.nodeId)}, ${lit(exec.dag)}, ${lit(exec.op)}, ${exec.version}, ${lit(exec.key)},
        'committed', now() - to_seconds(${exec.seconds ?? 0}), now(), ${lit(exec.seconds ?? 0)}, ${lit(JSON.stringify(exec.params ?? null))}, NULL)`,
    ]);
  }

  async artifact(key: string): Promise<ArtifactRow | undefined> {
    const [row] = await this.all<ArtifactRow>(`SELECT * FROM artifacts WHERE key = ${lit(key)}`);
    return row ? parseArtifact(row) : undefined;
  }

  /** Committed artifacts for the given keys, in one query (a no-op rerun of a 50-node DAG is one round trip). */
  async artifacts(keys: string[]): Promise<Map<string, ArtifactRow>> {
    if (!keys.length) return new Map();
    const rows = await this.all<ArtifactRow>(`SELECT * FROM artifacts WHERE key IN (${keys.map(lit).join(', ')})`);
    return new Map(rows.map((r) => [r.key, parseArtifact(r)]));
  }

  /** The latest committed artifact of each node of a DAG: what `status` compares against. */
  async latestByNode(dag: string): Promise<Map<string, ArtifactRow>> {
    const rows = await this.all<ArtifactRow>(`SELECT * FROM artifacts WHERE dag = ${lit(dag)} QUALIFY row_number() OVER (PARTITION BY node_id ORDER BY committed_at DESC) = 1`);
    return new Map(rows.map((r) => [r.node_id, parseArtifact(r)]));
  }

  /**
   * The key consumers should see for a new artifact of `nodeId` with these files: the canonical key of an earlier
   * artifact of the node with the same content (a rerun whose output did not change), else null.
   */
  async sameContent(nodeId: string, key: string, files: FileEntry[]): Promise<string | null> {
    const id = contentId(files);
    const rows = await this.all<Pick<ArtifactRow, 'key' | 'files' | 'same_as'>>(`SELECT key, files, same_as FROM artifacts WHERE node_id = ${lit(nodeId)} AND key <> ${lit(key)} ORDER BY committed_at`);
    const hit = rows.find((r) => contentId(typeof r.files === 'string' ? JSON.parse(r.files) : r.files) === id);
    return hit ? (hit.same_as ?? hit.key) : null;
  }

  async deleteArtifact(key: string) {
    await this.run(`BEGIN TRANSACTION; DELETE FROM artifacts WHERE key = ${lit(key)}; DELETE FROM lineage WHERE key = ${lit(key)}; COMMIT`);
  }

  insertMetrics(rows: MetricRow[]) {
    if (!rows.length) return Promise.resolve();
    const values = rows.map((m) => `(${lit(m.runId)}, ${lit(m.nodeId)}, ${lit(m.key)}, ${lit(m.step)}, ${lit(m.name)}, ${lit(m.value)}, to_timestamp(${m.ts / 1000}))`);
    return this.run(`INSERT INTO metrics VALUES ${values.join(',\n')}`);
  }

  async close() {
    await this.queue.catch(() => undefined);
    try { await this.conn.run('CHECKPOINT'); } catch { /* read-only or snapshot */ }
    this.conn.closeSync();
    this.inst.closeSync();
    if (this.snapshotDir) rmSync(this.snapshotDir, { recursive: true, force: true });
  }
}

function parseArtifact(r: ArtifactRow): ArtifactRow {
  const parse = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);
  return { ...r, schema: parse(r.schema), files: parse(r.files), parts: parse(r.parts), rows: r.rows === null ? null : Number(r.rows), bytes: Number(r.bytes) };
}

