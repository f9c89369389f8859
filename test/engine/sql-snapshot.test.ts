import { afterAll, describe, expect, it } from 'vitest';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { openSqlSession, runReadOnly } from '../../storage/sql.ts';
import { numbers, tempStore } from './fixtures.ts';

// An open `agentforge sql` session reads a private snapshot of the ledger: a run started meanwhile neither fails
// nor waits for it (issue 19, item 5, the reader's side).
const store = tempStore();
afterAll(() => store.cleanup());
const one = (n: number) => dag('snap', (b) => { b.node('a', numbers, { n }); });

describe('sql session and a concurrent run', () => {
  it('a run commits while a session is open; the session keeps answering from its snapshot', async () => {
    await runDag(one(3), { storeDir: store.dir });
    const s = await openSqlSession(store.dir);
    try {
      const r = await runDag(one(4), { storeDir: store.dir });
      expect(r.ok).toBe(true);
      expect((await runReadOnly(s, 'SELECT count(*) AS n FROM a')).rows).toEqual([{ n: 3 }]);
    } finally { s.close(); }
    const s2 = await openSqlSession(store.dir);
    try { expect((await runReadOnly(s2, 'SELECT count(*) AS n FROM a')).rows).toEqual([{ n: 4 }]); } finally { s2.close(); }
  }, 20_000); // a writer that waited for the reader (60 s by default) would time out here
});
