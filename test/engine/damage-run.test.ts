import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { dagStatus } from '../../runtime/engine/status.ts';
import { Ledger } from '../../storage/ledger.ts';
import { StoreError } from '../../storage/store.ts';
import { double, numbers, tempStore, total } from './fixtures.ts';

// status and a no-op run check committed files cheaply (size, Parquet magic, footer length) instead of trusting
// them (issue 19, item 9): damage is reported naming the artifact and `gc --repair`, and nothing runs.
const store = tempStore();
const chain = dag('dmgrun', (b) => { const a = b.node('a', numbers, { n: 100 }); b.node('t', total, {}, { xs: b.node('d', double, {}, { xs: a }) }); });
let art: Record<string, { key: string; dir: string }> = {};

beforeAll(async () => {
  await runDag(chain, { storeDir: store.dir });
  const l = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
  try {
    const rows = await l.all<{ key: string; node_id: string; path: string }>('SELECT key, node_id, path FROM artifacts');
    art = Object.fromEntries(rows.map((r) => [r.node_id, { key: r.key, dir: join(store.dir, r.path) }]));
  } finally { await l.close(); }
});
afterAll(() => store.cleanup());

const runs = async () => {
  const l = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
  try { return Number((await l.all<{ n: number }>('SELECT count(*) AS n FROM runs'))[0].n); } finally { await l.close(); }
};

async function withDamage(file: string, damage: () => void, check: () => Promise<void>) {
  const original = readFileSync(file);
  try { damage(); await check(); } finally { writeFileSync(file, original); }
}

describe('status and a no-op run on damaged artifacts', () => {
  const cases: [string, string, (f: string) => void][] = [
    ['a truncated Parquet file', 'a', (f) => truncateSync(f, statSync(f).size - 50)],
    ['a Parquet file with its footer length overwritten', 'd', (f) => { const b = readFileSync(f); b.writeUInt32LE(0xfffffff, b.length - 8); writeFileSync(f, b); }],
    ['a Parquet file with its magic gone', 'a', (f) => { const b = readFileSync(f); b[b.length - 2] ^= 0xff; writeFileSync(f, b); }],
    ['a deleted Parquet file', 'd', (f) => rmSync(f)],
    // Not Parquet: the no-op path knows its size from the folder's manifest.
    ['a report grown by a byte', 't', (f) => writeFileSync(f, `${readFileSync(f, 'utf8')} `)],
  ];
  for (const [what, node, damage] of cases) {
    it(`${what}: status says damaged, the run refuses and runs nothing; both name the artifact and gc --repair`, async () => {
      const { key, dir } = art[node];
      const file = join(dir, node === 't' ? 'report.json' : 'data.parquet');
      const before = await runs();
      await withDamage(file, () => damage(file), async () => {
        const st = await dagStatus(chain, store.dir);
        const row = st.find((r) => r.node === node)!;
        expect(row.state).toBe('damaged');
        expect(row.why.join(' ')).toMatch(new RegExp(`artifact ${key} of node '${node}' is damaged: .*agentforge gc --repair`));
        expect(st.filter((r) => r.node !== node).map((r) => r.state)).toEqual(['fresh', 'fresh']);
        const err = await runDag(chain, { storeDir: store.dir }).then(() => undefined, (e: unknown) => e);
        expect(err).toBeInstanceOf(StoreError);
        expect((err as Error).message).toMatch(new RegExp(`artifact ${key} of node '${node}' is damaged: .*agentforge gc --repair`));
      });
      expect(await runs()).toBe(before); // refused before a run row was written
      const again = await runDag(chain, { storeDir: store.dir });
      expect([...again.nodes.values()].map((r) => r.status)).toEqual(['cached', 'cached', 'cached']);
    });
  }

  it('forcing the damaged node recomputes it instead of refusing', async () => {
    const { dir } = art.a;
    const file = join(dir, 'data.parquet');
    truncateSync(file, statSync(file).size - 50);
    const r = await runDag(chain, { storeDir: store.dir, force: ['a'] });
    expect(r.ok).toBe(true);
    expect(r.nodes.get('a')!.status).toBe('committed');
    expect((await dagStatus(chain, store.dir)).map((s) => s.state)).toEqual(['fresh', 'fresh', 'fresh']);
  });
});
