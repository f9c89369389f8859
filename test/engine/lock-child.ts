// Child process for lock-liveness.test.ts: `lock STORE START_AT HOLD_MS` races for the run lock at START_AT;
// `sql|raw|status STORE HOLD_MS` hold a reader on the ledger the way those commands do.
import { RunLock, Store } from '../../storage/store.ts';

const [mode, storeDir, a, b] = process.argv.slice(2);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
if (mode === 'lock') {
  await sleep(Math.max(0, Number(a) - Date.now()));
  try {
    const lock = await RunLock.acquire(new Store(storeDir), 0);
    console.log('won');
    await sleep(Number(b));
    lock.release();
  } catch (e) { console.log(`refused: ${(e as Error).message}`); }
} else if (mode === 'sql') {
  const { openSqlSession } = await import('../../storage/sql.ts');
  const s = await openSqlSession(storeDir);
  console.log('ready');
  await sleep(Number(a));
  s.close();
} else if (mode === 'raw') {
  // Any other DuckDB client reading the file in place (the duckdb CLI, a notebook) holds its lock.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const inst = await DuckDBInstance.create(`${storeDir}/ledger.duckdb`, { access_mode: 'READ_ONLY' });
  const c = await inst.connect();
  console.log('ready');
  await sleep(Number(a));
  c.closeSync(); inst.closeSync();
} else if (mode === 'status') {
  const { Ledger } = await import('../../storage/ledger.ts');
  const l = await Ledger.openReadOnly(`${storeDir}/ledger.duckdb`);
  console.log('ready');
  await sleep(Number(a));
  await l.close();
}
