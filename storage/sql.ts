import { BOOLEAN, DuckDBInstance, DuckDBScalarFunction, DuckDBTypeId, StatementType, type DuckDBConnection, type DuckDBResultReader } from '@duckdb/node-api';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sqlIdent, sqlString } from './codec.ts';
import { damageMessage, fileEntries, fullCheck, quickCheck } from './integrity.ts';
import { snapshotLedger } from './ledger.ts';
import { LEDGER_FIX, LedgerLost, StoreError } from './store.ts';

/*
 * `agentforge sql`: an in-memory DuckDB with a snapshot of the ledger attached read-only and one view per table artifact:
 *   <node>          the latest committed table of that node id
 *   <dag>__<node>   the same, qualified by DAG when ids repeat across DAGs
 *   <node>_all      every committed version of that node's table, with run_id and key columns
 *   runs, executions, artifacts, lineage, metrics   the ledger itself
 *
 * What a statement can reach is enforced by DuckDB, not by reading the SQL: once the views exist the session runs
 * with enable_external_access = false, allowed_paths = the committed Parquet files, extensions neither installed
 * nor loaded, and lock_configuration = true (no statement can undo any of it). On top, only statements that DuckDB's
 * parser types as SELECT are run (EXPLAIN only of a single SELECT), because an allowed path is writable too.
 *
 * Damage: every Parquet file gets the cheap checks (size, magic, footer) when the session opens, and its sha256 is
 * verified the first time a statement binds a view that reads it (a per-artifact scalar function in the view whose
 * bind callback runs the check). A damaged artifact makes only the views over it fail, naming it and the repair.
 */

export class SqlRefused extends Error {
  constructor(message: string) { super(message); this.name = 'SqlRefused'; }
}
/** The statement itself is wrong (DuckDB's parser or binder says so): bad usage, not a failed node. */
export class SqlError extends Error {
  constructor(message: string) { super(message); this.name = 'SqlError'; }
}

export interface SqlSession { conn: DuckDBConnection; views: string[]; close(): void }

interface TableRow { key: string; node_id: string; dag: string; run_id: string; path: string; files: unknown }

export async function openSqlSession(storeDir: string): Promise<SqlSession> {
  const inst = await DuckDBInstance.create(':memory:', {
    autoinstall_known_extensions: 'false', autoload_known_extensions: 'false', allow_community_extensions: 'false',
  });
  const conn = await inst.connect();
  const ledgerPath = join(storeDir, 'ledger.duckdb');
  let snapshot: string | undefined;
  const views: string[] = [];
  const allowed: string[] = [];
  const checks = new Checks(conn);
  try {
    if (existsSync(ledgerPath)) {
      // A private copy: a session never holds the live file's lock, so it never stops a run or gc from opening it.
      const snap = snapshotLedger(ledgerPath);
      snapshot = snap.dir;
      try {
        await conn.run(`ATTACH ${sqlString(snap.path)} AS ledger (READ_ONLY)`);
      } catch (e) {
        throw new LedgerLost(`ledger ${ledgerPath} cannot be read: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}. ${LEDGER_FIX}`);
      }
      for (const t of ['runs', 'executions', 'artifacts', 'lineage', 'metrics']) {
        await conn.run(`CREATE VIEW ${t} AS SELECT * FROM ledger.main.${t}`);
        views.push(t);
      }
      views.push(...await createArtifactViews(conn, storeDir, checks, allowed));
    }
    // From here on nothing outside the committed Parquet files can be read or written, and no setting can change.
    if (allowed.length) await conn.run(`SET allowed_paths = [${allowed.map(sqlString).join(', ')}]`);
    await conn.run('SET enable_external_access = false');
    await conn.run('SET lock_configuration = true');
    checks.armed = true;
  } catch (e) {
    conn.closeSync(); inst.closeSync();
    if (snapshot) rmSync(snapshot, { recursive: true, force: true });
    throw e;
  }
  return {
    conn, views,
    close() { conn.closeSync(); inst.closeSync(); if (snapshot) rmSync(snapshot, { recursive: true, force: true }); },
  };
}

/**
 * One scalar function per artifact, `af_ok_<n>()`, placed in the views over its file. DuckDB calls its bind
 * callback whenever a statement binds such a view (directly, through another view, query_table(), DESCRIBE …),
 * so the sha256 check runs only for artifacts a statement reads, once per session.
 */
class Checks {
  armed = false;
  private n = 0;
  constructor(private conn: DuckDBConnection) {}

  add(row: TableRow, dir: string, known?: string): string {
    const name = `af_ok_${this.n++}`;
    const files = fileEntries(row.files);
    let problem = known;
    let verified = false;
    this.conn.registerScalarFunction(DuckDBScalarFunction.create({
      name, returnType: BOOLEAN,
      bindFunction: (info) => {
        if (!this.armed) return; // the views are bound once while being created: no need to hash then
        if (!problem && !verified) { problem = fullCheck(dir, files); verified = !problem; }
        if (problem) info.setError(damageMessage(row, problem));
      },
      mainFunction: (_info, input, out) => {
        for (let i = 0; i < input.rowCount; i++) out.setItem(i, true);
        out.flush();
      },
    }));
    return `${name}()`;
  }
}

async function createArtifactViews(conn: DuckDBConnection, storeDir: string, checks: Checks, allowed: string[]): Promise<string[]> {
  const rows = (await conn.runAndReadAll(
    `SELECT key, node_id, dag, run_id, path, files FROM ledger.main.artifacts WHERE kind = 'table' ORDER BY committed_at DESC`,
  )).getRowObjectsJS() as unknown as TableRow[];
  // Per artifact, a SELECT that reads its rows after the check, or (damaged) one that only fails at bind.
  const source = new Map<string, string>();
  for (const r of rows) {
    const dir = join(storeDir, r.path);
    const file = join(dir, 'data.parquet');
    const recorded = fileEntries(r.files).filter((f) => f.name === 'data.parquet');
    let problem = recorded.length ? quickCheck(dir, recorded) : existsSync(file) ? undefined : `file ${file} is missing`;
    if (!problem) {
      // Binding reads the footer; a footer that passes the frame checks but does not parse is damage too.
      try { await conn.run(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`); } catch (e) {
        problem = fullCheck(dir, recorded) ?? `${file} cannot be read as Parquet (${String(e).split('\n')[0]})`;
      }
    }
    const ok = checks.add(r, dir, problem);
    if (problem) source.set(r.key, `SELECT NULL AS damaged WHERE ${ok}`);
    else {
      allowed.push(file);
      source.set(r.key, `SELECT * FROM read_parquet(${sqlString(file)}) WHERE ${ok}`);
    }
  }
  const made: string[] = [];
  const byNode = new Map<string, TableRow[]>();
  for (const r of rows) byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), r]);
  const seenQualified = new Set<string>();
  for (const [node, list] of byNode) {
    await conn.run(`CREATE VIEW ${sqlIdent(node)} AS ${source.get(list[0].key)}`);
    const all = list.map((r) => `SELECT ${sqlString(r.run_id)} AS run_id, ${sqlString(r.key)} AS key, * FROM (${source.get(r.key)})`);
    await conn.run(`CREATE VIEW ${sqlIdent(`${node}_all`)} AS ${all.join(' UNION ALL BY NAME ')}`);
    made.push(node, `${node}_all`);
    for (const r of list) {
      const q = `${r.dag}__${node}`;
      if (seenQualified.has(q)) continue;
      seenQualified.add(q);
      await conn.run(`CREATE VIEW ${sqlIdent(q)} AS ${source.get(r.key)}`);
      made.push(q);
    }
  }
  return made;
}

/** Best-effort i-th statement of a script (split on semicolons outside quotes), for error messages only. */
function statementText(sql: string, i: number): string {
  return (sql.match(/(?:[^;'"]|'[^']*'|"[^"]*")+/g) ?? [])[i] ?? '';
}
const WRITE_VERB = /^\s*(insert|update|delete|create|drop|alter|copy|attach|detach|set|pragma|install|load|export|import|call|vacuum|checkpoint|merge|truncate|use)\b/i;
/** EXPLAIN's own words; what follows must parse, by itself, as one SELECT. No comment or quote can hide in here. */
const EXPLAIN_HEAD = /^\s*EXPLAIN(?:\s+(?:ANALY[SZ]E|VERBOSE))*\s*(?:\([A-Za-z_,\s]*\))?\s*/i;

type Rows = { columns: string[]; rows: Record<string, unknown>[] };

/** Runs read-only statements; anything DuckDB's parser does not type as SELECT is refused before it runs. */
export async function runReadOnly(session: SqlSession, sql: string): Promise<Rows> {
  const conn = session.conn;
  const extracted = await guard(-1, () => conn.extractStatements(sql));
  if (extracted.count === 0) throw new SqlRefused('no SQL statement given');
  let last: Rows = { columns: [], rows: [] };
  const refuse = (i: number, kind: string) => new SqlRefused(`statement ${i + 1} is a ${kind} statement; agentforge sql is read-only (SELECT/EXPLAIN only) — export with \`--csv\`/\`--json\` instead of COPY`);
  for (let i = 0; i < extracted.count; i++) {
    let prepared;
    try {
      prepared = await guard(i, () => extracted.prepare(i));
    } catch (e) {
      // A write against a view fails to bind before its type is known: still say it is refused, not why it failed.
      const verb = !(e instanceof StoreError) ? WRITE_VERB.exec(statementText(sql, i))?.[1]?.toUpperCase() : undefined;
      if (verb) throw refuse(i, verb);
      throw e;
    }
    const type = prepared.statementType;
    if (type === StatementType.EXPLAIN) {
      // EXPLAIN ANALYZE runs its statement: classify that statement by parsing it alone.
      const head = extracted.count === 1 ? EXPLAIN_HEAD.exec(sql) : null;
      const inner = head ? await guard(i, () => conn.extractStatements(sql.slice(head[0].length))).catch(() => undefined) : undefined;
      const innerType = inner?.count === 1 ? (await guard(i, () => inner.prepare(0)).catch(() => undefined))?.statementType : undefined;
      if (innerType !== StatementType.SELECT) {
        throw new SqlRefused(`statement ${i + 1} is an EXPLAIN of something other than a single SELECT; agentforge sql runs EXPLAIN only as the one statement given, of a SELECT`);
      }
    } else if (type !== StatementType.SELECT) {
      const err = refuse(i, StatementType[type] ?? String(type));
      // DuckDB runs a PIVOT whose values are not listed as CREATE TYPE (an enum of the distinct values) + SELECT.
      if (/^\s*(?:WITH\b[\s\S]*)?PIVOT\b/i.test(statementText(sql, i))) {
        err.message += ". A PIVOT without an IN list makes DuckDB create an enum type first: list the values, e.g. PIVOT (…) ON name IN ('a', 'b') USING first(v)";
      }
      throw err;
    }
    const reader = await guard(i, () => prepared.runAndReadAll());
    last = { columns: reader.columnNames(), rows: jsonRows(reader) };
  }
  return last;
}

/** DuckDB's errors, sorted: a damaged artifact (StoreError), a reach outside the store (SqlRefused), bad SQL (SqlError). */
async function guard<T>(i: number, fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (e) {
    if (e instanceof SqlRefused || e instanceof SqlError || e instanceof StoreError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    const damaged = /artifact [0-9a-f]+ of node '[^']*' is damaged: [\s\S]*/.exec(msg);
    if (damaged) throw new StoreError(damaged[0].split('\n')[0]);
    const at = i < 0 ? 'the SQL' : `statement ${i + 1}`;
    const outside = /Permission Error: Cannot access (?:file|directory) "([^"]*)"/.exec(msg);
    if (outside) throw new SqlRefused(`${at} reaches ${outside[1]}, outside the store's tables; agentforge sql reads only the ledger and the committed tables, through its views (list them with --views)`);
    if (/Permission Error/.test(msg)) throw new SqlRefused(`${at} was refused: ${msg.split('\n')[0]}; agentforge sql loads no extensions and changes no settings`);
    throw new SqlError(msg.replace(/^Failed to extract statements: /, ''));
  }
}

const BIG = new Set<number>([DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT]);

/** JSON-safe rows; 64/128-bit integers (counts, sums) become numbers where that loses nothing, else stay strings. */
function jsonRows(reader: DuckDBResultReader): Record<string, unknown>[] {
  const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
  const names = reader.columnNames();
  const big = reader.columnTypes().map((t, c) => (BIG.has(t.typeId) ? names[c] : undefined)).filter((n): n is string => !!n);
  if (!big.length) return rows;
  for (const row of rows) {
    for (const c of big) {
      const v = row[c];
      if (typeof v === 'string' && Number.isSafeInteger(Number(v))) row[c] = Number(v);
    }
  }
  return rows;
}
