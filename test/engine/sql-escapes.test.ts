import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly, SqlRefused, type SqlSession } from '../../storage/sql.ts';
import { hashFileSync } from '../../storage/store.ts';
import { numbers, tempStore } from './fixtures.ts';

// Every way out of the store found when `agentforge sql` was attacked (issue 19, item 3) stays shut.
const store = tempStore();
const outside = mkdtempSync(join(tmpdir(), 'af-sql-outside-'));
const secret = join(outside, 'secret.csv');
let session: SqlSession;
let parquet: string;

beforeAll(async () => {
  writeFileSync(secret, 'password\nhunter2\n');
  await runDag(dag('esc', (b) => { b.node('a', numbers, { n: 3 }); }), { storeDir: store.dir });
  session = await openSqlSession(store.dir);
  const [row] = (await runReadOnly(session, "SELECT path FROM artifacts WHERE node_id = 'a'")).rows as { path: string }[];
  parquet = join(store.dir, row.path, 'data.parquet');
});
afterAll(() => { session.close(); store.cleanup(); rmSync(outside, { recursive: true, force: true }); });

const refused = async (sql: string, re: RegExp = /outside the store's tables|is a \w+ statement|EXPLAIN of something other/) => {
  const err = await runReadOnly(session, sql).then(() => undefined, (e: unknown) => e);
  expect(err, sql).toBeInstanceOf(SqlRefused);
  expect((err as Error).message, sql).toMatch(re);
};

describe('agentforge sql reads the store and nothing else', () => {
  it('table functions and replacement scans cannot read files outside the store', async () => {
    for (const sql of [
      `SELECT * FROM read_csv(${q(secret)})`,
      "SELECT * FROM read_csv('/etc/passwd')",
      `SELECT * FROM read_text(${q(secret)})`,
      `SELECT * FROM read_blob(${q(secret)})`,
      "SELECT * FROM glob('/root/*')",
      `SELECT * FROM glob(${q(join(outside, '*'))})`,
      `SELECT * FROM ${q(secret)}`,
      `SELECT * FROM read_text(${q(join(store.dir, 'artifacts', '..', '..', outside.split('/').pop()!, 'secret.csv'))})`,
      `SELECT * FROM read_text(${q(join(store.dir, 'committed.keys'))})`,
    ]) await refused(sql, /outside the store's tables/);
  });

  it('EXPLAIN ANALYZE cannot run a COPY, outside the store or over a committed file', async () => {
    const target = join(outside, 'written.csv');
    const before = hashFileSync(parquet);
    for (const sql of [
      `EXPLAIN ANALYZE COPY (SELECT 1) TO ${q(target)}`,
      `EXPLAIN (ANALYZE) COPY (SELECT 1) TO ${q(target)}`,
      `EXPLAIN ANALYZE COPY (SELECT 1 AS i) TO ${q(parquet)} (FORMAT parquet)`,
      `EXPLAIN ANALYZE /* c */ COPY (SELECT 1 AS i) TO ${q(parquet)} (FORMAT parquet)`,
      // A comment that holds a semicolon must not make a naive splitter see a SELECT where the EXPLAIN is.
      `SELECT 1 -- ; SELECT 3\n; EXPLAIN ANALYZE COPY (SELECT 1 AS i) TO ${q(parquet)} (FORMAT parquet)`,
    ]) await refused(sql);
    expect(existsSync(target)).toBe(false);
    expect(hashFileSync(parquet)).toBe(before);
  });

  it('EXPORT DATABASE, COPY, ATTACH create nothing', async () => {
    const dir = join(outside, 'exported');
    await refused(`EXPORT DATABASE ${q(dir)}`);
    await refused(`COPY (SELECT 1) TO ${q(join(outside, 'c.csv'))}`);
    await refused(`ATTACH ${q(join(outside, 'x.duckdb'))} AS x`);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync(join(outside, 'c.csv'))).toBe(false);
    expect(existsSync(join(outside, 'x.duckdb'))).toBe(false);
  });

  it('a URL in FROM neither installs nor loads an extension', async () => {
    await refused("SELECT * FROM 'https://127.0.0.1:9/x.parquet'", /outside the store's tables/);
    await refused("SELECT * FROM read_parquet('s3://bucket/x.parquet')", /outside the store's tables/);
    await refused('INSTALL httpfs');
    await refused('LOAD httpfs');
    const settings = await runReadOnly(session, "SELECT name, value FROM duckdb_settings() WHERE name IN ('autoinstall_known_extensions', 'autoload_known_extensions', 'enable_external_access', 'lock_configuration') ORDER BY name");
    expect(settings.rows).toEqual([
      { name: 'autoinstall_known_extensions', value: 'false' },
      { name: 'autoload_known_extensions', value: 'false' },
      { name: 'enable_external_access', value: 'false' },
      { name: 'lock_configuration', value: 'true' },
    ]);
  });

  it('DuckDB itself enforces it: even a statement that bypasses the type check cannot reopen the session', async () => {
    // Straight on the connection, with no classification in the way.
    await expect(session.conn.run('SET enable_external_access = true')).rejects.toThrow(/locked/);
    await expect(session.conn.run("SET allowed_directories = ['/']")).rejects.toThrow(/locked/);
    await expect(session.conn.run(`COPY (SELECT 1) TO ${q(join(outside, 'direct.csv'))}`)).rejects.toThrow(/Permission Error/);
    await expect(session.conn.run(`SELECT * FROM read_csv(${q(secret)})`)).rejects.toThrow(/Permission Error/);
    expect(existsSync(join(outside, 'direct.csv'))).toBe(false);
  });

  it('what it is for still works: views, the ledger, EXPLAIN and EXPLAIN ANALYZE of a SELECT, the store\'s own Parquet', async () => {
    expect((await runReadOnly(session, 'SELECT sum(v) AS s FROM a')).rows).toEqual([{ s: 3 }]);
    expect((await runReadOnly(session, 'SELECT count(*) AS n FROM runs')).rows).toEqual([{ n: 1 }]);
    expect((await runReadOnly(session, 'EXPLAIN SELECT * FROM a')).rows.length).toBeGreaterThan(0);
    expect((await runReadOnly(session, 'EXPLAIN ANALYZE SELECT count(*) FROM a')).rows.length).toBeGreaterThan(0);
    expect((await runReadOnly(session, `SELECT count(*) AS n FROM read_parquet(${q(parquet)})`)).rows).toEqual([{ n: 3 }]);
  });

  it('counts come back as numbers, and a BIGINT past 2^53 as an exact string', async () => {
    const r = await runReadOnly(session, 'SELECT count(*) AS n, 9007199254740993::BIGINT AS big, 7::HUGEINT AS h FROM a');
    expect(r.rows).toEqual([{ n: 3, big: '9007199254740993', h: 7 }]);
  });
});

function q(s: string) { return `'${s.replace(/'/g, "''")}'`; }
