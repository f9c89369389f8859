import { DuckDBInstance, StatementType, type DuckDBConnection } from '@duckdb/node-api';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sqlIdent, sqlString } from './codec.ts';

/*
 * `agentforge sql`: an in-memory DuckDB with the ledger attached read-only and one view per table artifact:
 *   <node>          the latest committed table of that node id
 *   <dag>__<node>   the same, qualified by DAG when ids repeat across DAGs
 *   <node>_all      every committed version of that node's table, with run_id and key columns
 *   runs, executions, artifacts, lineage, metrics   the ledger itself
 * Only SELECT and EXPLAIN statements are accepted.
 */

const READ_ONLY = new Set<number>([StatementType.SELECT, StatementType.EXPLAIN]);
const WRITE_VERB = /^\s*(insert|update|delete|create|drop|alter|copy|attach|detach|set|pragma|install|load|export|import|call|vacuum|checkpoint|merge|truncate|use)\b/i;
/** Best-effort i-th statement of a script (split on semicolons outside quotes), for error messages only. */
function statementText(sql: string, i: number): string {
  return (sql.match(/(?:[^;'"]|'[^']*'|"[^"]*")+/g) ?? [])[i] ?? '';
}

export class SqlRefused extends Error {
  constructor(message: string) { super(message); this.name = 'SqlRefused'; }
}

export interface SqlSession { conn: DuckDBConnection; views: string[]; close(): void }

export async function openSqlSession(storeDir: string): Promise<SqlSession> {
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  const ledgerPath = join(storeDir, 'ledger.duckdb');
  let snapshot: string | undefined;
  const views: string[] = [];
  if (existsSync(ledgerPath)) {
    try {
      await conn.run(`ATTACH ${sqlString(ledgerPath)} AS ledger (READ_ONLY)`);
    } catch (e) {
      if (!/lock/i.test(String(e))) throw e;
      // A run holds the file lock: read a snapshot of what it has committed so far.
      snapshot = mkdtempSync(join(tmpdir(), 'agentforge-sql-'));
      copyFileSync(ledgerPath, join(snapshot, 'ledger.duckdb'));
      if (existsSync(`${ledgerPath}.wal`)) copyFileSync(`${ledgerPath}.wal`, join(snapshot, 'ledger.duckdb.wal'));
      await conn.run(`ATTACH ${sqlString(join(snapshot, 'ledger.duckdb'))} AS ledger`);
    }
    for (const t of ['runs', 'executions', 'artifacts', 'lineage', 'metrics']) {
      await conn.run(`CREATE VIEW ${t} AS SELECT * FROM ledger.main.${t}`);
      views.push(t);
    }
    views.push(...await createArtifactViews(conn, storeDir));
  }
  return {
    conn, views,
    close() { conn.closeSync(); inst.closeSync(); if (snapshot) rmSync(snapshot, { recursive: true, force: true }); },
  };
}

async function createArtifactViews(conn: DuckDBConnection, storeDir: string): Promise<string[]> {
  const rows = (await conn.runAndReadAll(
    `SELECT node_id, dag, key, run_id, path FROM ledger.main.artifacts WHERE kind = 'table' ORDER BY committed_at DESC`,
  )).getRowObjectsJS() as { node_id: string; dag: string; key: string; run_id: string; path: string }[];
  const parquet = (r: { path: string }) => `read_parquet(${sqlString(join(storeDir, r.path, 'data.parquet'))})`;
  const present = rows.filter((r) => existsSync(join(storeDir, r.path, 'data.parquet')));
  const made: string[] = [];
  const byNode = new Map<string, typeof present>();
  for (const r of present) byNode.set(r.node_id, [...(byNode.get(r.node_id) ?? []), r]);
  const seenQualified = new Set<string>();
  for (const [node, list] of byNode) {
    await conn.run(`CREATE VIEW ${sqlIdent(node)} AS SELECT * FROM ${parquet(list[0])}`);
    const all = list.map((r) => `SELECT ${sqlString(r.run_id)} AS run_id, ${sqlString(r.key)} AS key, * FROM ${parquet(r)}`);
    await conn.run(`CREATE VIEW ${sqlIdent(`${node}_all`)} AS ${all.join(' UNION ALL BY NAME ')}`);
    made.push(node, `${node}_all`);
    for (const r of list) {
      const q = `${r.dag}__${node}`;
      if (seenQualified.has(q)) continue;
      seenQualified.add(q);
      await conn.run(`CREATE VIEW ${sqlIdent(q)} AS SELECT * FROM ${parquet(r)}`);
      made.push(q);
    }
  }
  return made;
}

/** Runs read-only statements; anything that could write (INSERT, COPY, ATTACH, SET, …) is refused before it runs. */
export async function runReadOnly(session: SqlSession, sql: string): Promise<{ columns: string[]; rows: Record<string, unknown>[] }> {
  const extracted = await session.conn.extractStatements(sql);
  if (extracted.count === 0) throw new SqlRefused('no SQL statement given');
  let last: { columns: string[]; rows: Record<string, unknown>[] } = { columns: [], rows: [] };
  const refuse = (i: number, kind: string) => new SqlRefused(`statement ${i + 1} is a ${kind} statement; agentforge sql is read-only (SELECT/EXPLAIN only) — export with \`--csv\`/\`--json\` instead of COPY`);
  for (let i = 0; i < extracted.count; i++) {
    let prepared;
    try {
      prepared = await extracted.prepare(i);
    } catch (e) {
      // A write against a view fails to bind before its type is known: still say it is refused, not why it failed.
      const verb = WRITE_VERB.exec(statementText(sql, i))?.[1]?.toUpperCase();
      if (verb) throw refuse(i, verb);
      throw e;
    }
    if (!READ_ONLY.has(prepared.statementType)) {
      const err = refuse(i, StatementType[prepared.statementType] ?? String(prepared.statementType));
      // DuckDB runs a PIVOT whose values are not listed as CREATE TYPE (an enum of the distinct values) + SELECT.
      if (/^\s*(?:WITH\b[\s\S]*)?PIVOT\b/i.test(statementText(sql, i))) {
        err.message += ". A PIVOT without an IN list makes DuckDB create an enum type first: list the values, e.g. PIVOT (…) ON name IN ('a', 'b') USING first(v)";
      }
      throw err;
    }
    const reader = await prepared.runAndReadAll();
    last = { columns: reader.columnNames(), rows: reader.getRowObjectsJson() as Record<string, unknown>[] };
  }
  return last;
}
