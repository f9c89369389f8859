import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly, type SqlSession } from '../../storage/sql.ts';
import { double, numbers, tempStore, total } from './fixtures.ts';

const store = tempStore();
let session: SqlSession;
const chain = (n: number) => dag('sqlchain', (b) => { const a = b.node('a', numbers, { n }); b.node('t', total, {}, { xs: b.node('d', double, {}, { xs: a }) }); });

beforeAll(async () => {
  await runDag(chain(3), { storeDir: store.dir });
  await runDag(chain(4), { storeDir: store.dir });
  session = await openSqlSession(store.dir);
});
afterAll(() => { session.close(); store.cleanup(); });

describe('agentforge sql', () => {
  it('has a view per table node (latest), a _all view across runs, a dag-qualified view and the ledger tables', () => {
    expect(session.views).toEqual(expect.arrayContaining(['a', 'a_all', 'd', 'd_all', 'sqlchain__a', 'runs', 'executions', 'artifacts', 'lineage', 'metrics']));
    expect(session.views).not.toContain('t'); // a report, not a table
  });
  it('the node view is the latest commit; _all carries every version with run and key', async () => {
    expect((await runReadOnly(session, 'SELECT count(*)::INTEGER AS n FROM d')).rows).toEqual([{ n: 4 }]);
    const all = await runReadOnly(session, 'SELECT count(DISTINCT key)::INTEGER AS keys, count(DISTINCT run_id)::INTEGER AS runs, count(*)::INTEGER AS n FROM d_all');
    expect(all.rows).toEqual([{ keys: 2, runs: 2, n: 7 }]);
    expect((await runReadOnly(session, 'SELECT sum(v)::INTEGER AS s FROM d')).rows).toEqual([{ s: 12 }]);
  });
  it('lineage links a node to its inputs', async () => {
    const r = await runReadOnly(session, `SELECT c.node_id AS child, p.node_id AS parent FROM lineage l JOIN artifacts c ON c.key = l.key JOIN artifacts p ON p.key = l.parent_key GROUP BY ALL ORDER BY ALL`);
    expect(r.rows).toEqual([{ child: 'd', parent: 'a' }, { child: 't', parent: 'd' }]);
  });
  it('refuses statements that write, naming the statement type', async () => {
    for (const [sql, kind] of [
      ["COPY (SELECT 1) TO '/tmp/agentforge-should-not-exist.csv'", 'COPY'],
      ['CREATE TABLE x (a INT)', 'CREATE'],
      ['INSERT INTO runs VALUES (1)', 'INSERT'],
      ["ATTACH '/tmp/x.duckdb' AS x", 'ATTACH'],
      ['SELECT 1; DROP VIEW d', 'DROP'],
      ["SET threads = 1", 'SET'],
    ] as const) {
      await expect(runReadOnly(session, sql), sql).rejects.toThrow(new RegExp(`is a ${kind} statement; agentforge sql is read-only`));
    }
    expect((await runReadOnly(session, 'SELECT count(*)::INTEGER AS n FROM d')).rows).toEqual([{ n: 4 }]);
  });
  it('a PIVOT with its values listed runs; without them the refusal says how to list them', async () => {
    const listed = await runReadOnly(session, "PIVOT (SELECT 'x' AS k, 1 AS v UNION ALL SELECT 'y', 2) ON k IN ('x', 'y') USING sum(v)");
    expect(listed.rows).toEqual([{ x: 1, y: 2 }]); // HUGEINT sums: numbers where exact
    await expect(runReadOnly(session, "PIVOT (SELECT 'x' AS k, 1 AS v) ON k USING sum(v)")).rejects.toThrow(/is a CREATE statement.*list the values, e\.g\. PIVOT/);
  });
});
