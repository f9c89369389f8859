import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { StoreError } from '../../storage/store.ts';
import { double, numbers, tempStore } from './fixtures.ts';

// Damaged Parquet bytes (issue 19, item 9): a view over a damaged file fails naming the artifact and the repair;
// every other view, and the ledger, keep answering.
const store = tempStore();
const chain = (n: number) => dag('dmg', (b) => { b.node('d', double, {}, { xs: b.node('a', numbers, { n }) }); });
let files: { key: string; node: string; file: string }[] = [];

beforeAll(async () => {
  await runDag(chain(200), { storeDir: store.dir });
  await runDag(chain(300), { storeDir: store.dir }); // a second version of each node: the latest is what `a` shows
  const s = await openSqlSession(store.dir);
  try {
    const rows = (await runReadOnly(s, 'SELECT key, node_id, path FROM artifacts ORDER BY committed_at DESC')).rows as { key: string; node_id: string; path: string }[];
    files = rows.map((r) => ({ key: r.key, node: r.node_id, file: join(store.dir, r.path, 'data.parquet') }));
  } finally { s.close(); }
});
afterAll(() => store.cleanup());

const latest = (node: string) => files.find((f) => f.node === node)!;
const older = (node: string) => files.filter((f) => f.node === node)[1];

/** Damages a file, runs `check`, puts the bytes back. */
async function withDamage(file: string, damage: (bytes: Buffer) => void, check: () => Promise<void>) {
  const original = readFileSync(file);
  try { damage(original); await check(); } finally { writeFileSync(file, original); }
}
const flipAt = (file: string, at: (size: number, footer: number) => number) => (bytes: Buffer) => {
  const copy = Buffer.from(bytes);
  const i = at(copy.length, copy.readUInt32LE(copy.length - 8));
  copy[i] ^= 0x5a;
  writeFileSync(file, copy);
};

async function expectDamaged(node: string, key: string, views: string[]) {
  const s = await openSqlSession(store.dir); // opening never fails on a damaged file
  try {
    for (const sql of [`SELECT * FROM ${node}`, `SELECT count(*) FROM ${node}_all`, `SELECT * FROM query_table('${node}')`, `DESCRIBE ${node}`]) {
      const err = await runReadOnly(s, sql).then(() => undefined, (e: unknown) => e);
      expect(err, sql).toBeInstanceOf(StoreError);
      expect((err as Error).message, sql).toMatch(new RegExp(`artifact ${key} of node '${node}' is damaged: .*agentforge gc --repair`));
    }
    for (const v of views) expect(Number((await runReadOnly(s, `SELECT count(*) AS n FROM ${v}`)).rows[0].n), v).toBeGreaterThan(0);
  } finally { s.close(); }
}

describe('sql and damaged Parquet', () => {
  const cases: [string, (file: string) => (b: Buffer) => void][] = [
    ['a byte flipped in a data page', (f) => flipAt(f, () => 40)],
    ['a byte flipped in the middle', (f) => flipAt(f, (size) => Math.floor(size / 2))],
    ['a byte flipped in the footer', (f) => flipAt(f, (size, footer) => size - 8 - Math.floor(footer / 2))],
    ['the footer length overwritten', (f) => flipAt(f, (size) => size - 7)],
    ['the magic overwritten', (f) => flipAt(f, (size) => size - 1)],
    ['truncated', (f) => () => truncateSync(f, statSync(f).size - 100)],
    ['deleted', (f) => () => rmSync(f)],
  ];
  for (const [what, damage] of cases) {
    it(`${what}: the node's views fail naming the artifact; the ledger and other nodes still answer`, async () => {
      const { key, file } = latest('a');
      await withDamage(file, damage(file), () => expectDamaged('a', key, ['d', 'd_all', 'runs', 'artifacts', 'executions']));
    });
  }

  it('an older version damaged: the latest view still answers, the _all view names the old artifact', async () => {
    const old = older('d');
    await withDamage(old.file, flipAt(old.file, (size) => Math.floor(size / 2)), async () => {
      const s = await openSqlSession(store.dir);
      try {
        expect((await runReadOnly(s, 'SELECT count(*) AS n FROM d')).rows).toEqual([{ n: 300 }]);
        await expect(runReadOnly(s, 'SELECT count(*) FROM d_all')).rejects.toThrow(`artifact ${old.key} of node 'd' is damaged`);
      } finally { s.close(); }
    });
  });

  it('undamaged, every view answers and the check is not in the way', async () => {
    const s = await openSqlSession(store.dir);
    try {
      expect((await runReadOnly(s, 'SELECT sum(v) AS s FROM d')).rows).toEqual([{ s: 2 * (299 * 300) / 2 }]);
      expect((await runReadOnly(s, 'SELECT count(*) AS n FROM a_all')).rows).toEqual([{ n: 500 }]);
    } finally { s.close(); }
  });
});
