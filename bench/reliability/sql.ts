/*
 * Reliability: hostile SQL against `agentforge sql` (issue 19, item 3). Each attack is held when the statement is
 * refused (SqlRefused) and left nothing behind (no file written, no committed byte changed); the session must
 * still answer a plain query afterwards. About a second. `run()` is called by the reliability suite.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { dag } from '../../runtime/engine/dag.ts';
import { operator, table } from '../../runtime/engine/operator.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly, SqlRefused } from '../../storage/sql.ts';
import { hashFileSync } from '../../storage/store.ts';

export interface Metric { metric: string; held: number; total: number; detail?: string }

const Row = z.object({ i: z.number().int() });
const rows = operator({
  name: 'bench-sql-rows', version: 1, params: z.object({ n: z.number().int() }), inputs: {}, output: table(Row, 'Row'),
  async run({ params, out }) { await out.write(Array.from({ length: params.n }, (_, i) => ({ i }))); },
});

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;

export async function run(): Promise<Metric[]> {
  const store = mkdtempSync(join(tmpdir(), 'af-rel-sql-'));
  const outside = mkdtempSync(join(tmpdir(), 'af-rel-sql-outside-'));
  try {
    writeFileSync(join(outside, 'secret.csv'), 'password\nhunter2\n');
    await runDag(dag('relsql', (b) => { b.node('t', rows, { n: 10 }); }), { storeDir: store });
    const session = await openSqlSession(store);
    try {
      const [{ path }] = (await runReadOnly(session, "SELECT path FROM artifacts WHERE node_id = 't'")).rows as { path: string }[];
      const parquet = join(store, path, 'data.parquet');
      const committed = hashFileSync(parquet);
      const secret = join(outside, 'secret.csv');
      const o = (name: string) => join(outside, name);
      // [name, SQL, paths that must not exist afterwards]
      const attacks: [string, string, string[]][] = [
        ['read_csv /etc/passwd', "SELECT * FROM read_csv('/etc/passwd')", []],
        ['read_csv outside file', `SELECT * FROM read_csv(${q(secret)})`, []],
        ['read_text', `SELECT * FROM read_text(${q(secret)})`, []],
        ['read_blob', `SELECT * FROM read_blob(${q(secret)})`, []],
        ['read_json_auto', "SELECT * FROM read_json_auto('/etc/hostname')", []],
        ['sniff_csv', "SELECT * FROM sniff_csv('/etc/passwd')", []],
        ['parquet_metadata', "SELECT * FROM parquet_metadata('/etc/passwd')", []],
        ['glob /root', "SELECT * FROM glob('/root/*')", []],
        ['replacement scan of a path', `SELECT * FROM ${q(secret)}`, []],
        ['path traversal from the store', `SELECT * FROM read_text(${q(join(store, 'artifacts', '..', '..', outside.split('/').pop()!, 'secret.csv'))})`, []],
        ['store file that is not a table', `SELECT * FROM read_text(${q(join(store, 'committed.keys'))})`, []],
        ['query() wrapping read_csv', `SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')`, []],
        ['EXPLAIN ANALYZE COPY outside', `EXPLAIN ANALYZE COPY (SELECT 1) TO ${q(o('e1.csv'))}`, [o('e1.csv')]],
        ['EXPLAIN (ANALYZE) COPY outside', `EXPLAIN (ANALYZE) COPY (SELECT 1) TO ${q(o('e2.csv'))}`, [o('e2.csv')]],
        ['EXPLAIN ANALYZE COPY over a committed file', `EXPLAIN ANALYZE COPY (SELECT 1 AS i) TO ${q(parquet)} (FORMAT parquet)`, []],
        ['comment hides the EXPLAIN from a splitter', `SELECT 1 -- ; SELECT 3\n; EXPLAIN ANALYZE COPY (SELECT 1 AS i) TO ${q(parquet)} (FORMAT parquet)`, []],
        ['COPY TO outside', `COPY (SELECT 1) TO ${q(o('c.csv'))}`, [o('c.csv')]],
        ['COPY over a committed file', `COPY (SELECT 1 AS i) TO ${q(parquet)} (FORMAT parquet)`, []],
        ['EXPORT DATABASE', `EXPORT DATABASE ${q(o('exported'))}`, [o('exported')]],
        ['ATTACH a new database', `ATTACH ${q(o('x.duckdb'))} AS x`, [o('x.duckdb')]],
        ['URL in FROM (extension autoinstall)', "SELECT * FROM 'https://127.0.0.1:9/x.parquet'", []],
        ['s3 URL', "SELECT * FROM read_parquet('s3://bucket/x.parquet')", []],
        ['INSTALL httpfs', 'INSTALL httpfs', []],
        ['LOAD httpfs', 'LOAD httpfs', []],
        ['SET enable_external_access', 'SET enable_external_access = true', []],
        ['SET allowed_directories', "SET allowed_directories = ['/']", []],
        ['RESET lock_configuration', 'RESET lock_configuration', []],
        ['PRAGMA profiling_output', `PRAGMA profiling_output = ${q(o('prof.json'))}`, [o('prof.json')]],
        ['CREATE TABLE', 'CREATE TABLE x AS SELECT 1', []],
        ['INSERT into the ledger view', 'INSERT INTO runs SELECT * FROM runs', []],
        ['DROP a view', 'DROP VIEW t', []],
        ['CALL', 'CALL pragma_version()', []],
        ['duckdb_secrets (reads ~/.duckdb)', 'SELECT * FROM duckdb_secrets()', []],
      ];
      let held = 0;
      const leaks: string[] = [];
      for (const [name, sql, mustNotExist] of attacks) {
        const err = await runReadOnly(session, sql).then(() => undefined, (e: unknown) => e);
        const ok = err instanceof SqlRefused && mustNotExist.every((p) => !existsSync(p)) && hashFileSync(parquet) === committed;
        if (ok) held++; else leaks.push(`${name}: ${err ? (err as Error).message.split('\n')[0] : 'ran'}`);
      }
      // The guarantees are DuckDB's, not the classifier's: straight on the connection they hold too.
      const direct: [string, string][] = [
        ['direct SET enable_external_access', 'SET enable_external_access = true'],
        ['direct COPY outside', `COPY (SELECT 1) TO ${q(o('direct.csv'))}`],
        ['direct read_csv', `SELECT * FROM read_csv(${q(secret)})`],
        ['direct LOAD', 'LOAD httpfs'],
      ];
      for (const [name, sql] of direct) {
        const failed = await session.conn.run(sql).then(() => false, () => true);
        if (failed && !existsSync(o('direct.csv'))) held++; else leaks.push(`${name}: ran`);
      }
      const still = (await runReadOnly(session, 'SELECT count(*) AS n FROM t')).rows[0].n === 10;
      return [
        { metric: 'sql_escapes_refused', held, total: attacks.length + direct.length, detail: leaks.length ? leaks.join('; ') : undefined },
        { metric: 'sql_session_usable_after_attacks', held: still ? 1 : 0, total: 1 },
      ];
    } finally { session.close(); }
  } finally {
    rmSync(store, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const m of await run()) console.log(JSON.stringify({ bench: 'reliability', ...m }));
}
