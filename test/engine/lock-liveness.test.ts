import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Ledger } from '../../storage/ledger.ts';
import { bootId, lockHolderAlive, processStart, RunLock, Store } from '../../storage/store.ts';
import { double, numbers, tempStore } from './fixtures.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const CHILD = join(import.meta.dirname, 'lock-child.ts');
let store: ReturnType<typeof tempStore>;
beforeEach(() => { store = tempStore(); });
afterEach(() => store.cleanup());

const chain = (n = 3) => dag('chain', (b) => { b.node('d', double, {}, { xs: b.node('a', numbers, { n }) }); });
const lockPath = () => join(store.dir, 'lock');

function child(args: string[]): { proc: ChildProcess; out: Promise<string>; line: (s: string) => Promise<void> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let buf = '';
  const waiters: { s: string; done: () => void }[] = [];
  proc.stdout!.on('data', (d) => { buf += String(d); for (const w of waiters) if (buf.includes(w.s)) w.done(); });
  const out = new Promise<string>((r) => proc.on('exit', () => r(buf)));
  return { proc, out, line: (s) => new Promise((r) => { if (buf.includes(s)) r(); else waiters.push({ s, done: r }); }) };
}

describe('run lock liveness: host + boot id + pid + process start time', () => {
  it('a lock naming pid 1, 0 or -1, or a live pid with another start time or boot, is stale; another host is not judged', () => {
    const me = { started: 'x', argv: 'y', host: hostname(), boot: bootId() };
    expect(lockHolderAlive({ ...me, pid: 1, pidStart: '1' })).toBe(false); // init did not start at tick 1… unless it did
    expect(lockHolderAlive({ pid: 1, started: 'x', argv: 'legacy lock, pid only' })).toBe(false);
    expect(lockHolderAlive({ ...me, pid: 0 })).toBe(false);
    expect(lockHolderAlive({ ...me, pid: -1 })).toBe(false);
    expect(lockHolderAlive({ ...me, pid: process.pid, pidStart: processStart(process.pid) })).toBe(true);
    expect(lockHolderAlive({ ...me, pid: process.pid, pidStart: `${processStart(process.pid)}9` })).toBe(false);
    expect(lockHolderAlive({ ...me, pid: process.pid, pidStart: processStart(process.pid), boot: 'another-boot' })).toBe(false);
    expect(lockHolderAlive({ ...me, pid: process.pid, host: 'elsewhere' })).toBe('other-host');
  });

  it.each([
    ['pid 1 (a container run)', { pid: 1, started: 'x', argv: 'dead', host: hostname(), boot: bootId(), pidStart: '42' }],
    ['pid 0', { pid: 0, started: 'x', argv: 'dead' }],
    ['pid -1', { pid: -1, started: 'x', argv: 'dead' }],
    ['a legacy pid-1 lock', { pid: 1, started: 'x', argv: 'dead' }],
    ['an empty file', ''],
  ])('a stale lock naming %s does not lock the store', async (_name, content) => {
    writeFileSync(lockPath(), typeof content === 'string' ? content : JSON.stringify(content));
    expect((await runDag(chain(), { storeDir: store.dir })).ok).toBe(true);
    expect(existsSync(lockPath())).toBe(false);
  });

  it('a lock held on another host is refused with that host named (its liveness cannot be checked here)', async () => {
    writeFileSync(lockPath(), JSON.stringify({ pid: 4242, started: 'x', argv: 'agentforge run', host: 'build-box-7', boot: 'b', pidStart: '1' }));
    await expect(runDag(chain(), { storeDir: store.dir })).rejects.toThrow(/on host build-box-7 .*delete .*lock if that run is gone/);
  });

  it('six processes racing to take over one dead lock: exactly one wins, every time', async () => {
    for (const dead of [{ pid: 999999, started: 'x', argv: 'dead' }, { pid: 1, started: 'x', argv: 'dead', host: hostname(), boot: bootId(), pidStart: '7' }]) {
      writeFileSync(lockPath(), JSON.stringify(dead));
      const at = Date.now() + 4000;
      const kids = Array.from({ length: 6 }, () => child(['lock', store.dir, String(at), '3000']));
      const outs = await Promise.all(kids.map((k) => k.out));
      expect(outs.filter((o) => o.startsWith('won'))).toHaveLength(1);
      expect(outs.filter((o) => o.startsWith('refused: ') && /locked by a running agentforge/.test(o))).toHaveLength(5);
      expect(existsSync(lockPath())).toBe(false);
    }
  }, 60_000);

  it('release leaves a lock that is no longer ours alone', async () => {
    const s = new Store(store.dir);
    const held = await RunLock.acquire(s);
    writeFileSync(lockPath(), JSON.stringify({ pid: process.pid, started: 'someone else', argv: 'x' }));
    held.release();
    expect(existsSync(lockPath())).toBe(true);
  });
});

describe('a killed run is marked killed when its lock is taken over', () => {
  it('SIGKILL mid-run leaves `running`; the next run marks it `killed`', async () => {
    const env = { ...process.env, SMOKE_N: '3000', SMOKE_DELAY_MS: '200', AGENTFORGE_STORE: store.dir };
    const cli = spawn(process.execPath, [join(ROOT, 'bin/agentforge.mjs'), 'run', 'dags/smoke.ts', '--plain'], { cwd: ROOT, env, stdio: 'ignore' });
    const exited = new Promise((r) => cli.on('exit', r));
    for (let i = 0; i < 600 && !existsSync(lockPath()); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 1500));
    cli.kill('SIGKILL');
    await exited;
    expect(JSON.parse(readFileSync(lockPath(), 'utf8')).pid).toBe(cli.pid);
    const runsNow = async () => {
      const l = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
      try { return await l.all<{ dag: string; status: string }>('SELECT dag, status FROM runs ORDER BY started_at'); } finally { await l.close(); }
    };
    expect(await runsNow()).toEqual([{ dag: 'smoke', status: 'running' }]);
    expect((await runDag(chain(), { storeDir: store.dir })).ok).toBe(true);
    expect(await runsNow()).toEqual([{ dag: 'smoke', status: 'killed' }, { dag: 'chain', status: 'ok' }]);
  }, 60_000);
});

describe('readers never break writers', () => {
  it.each(['sql', 'raw'])('a reader (%s) open when a run starts: the run commits (waiting if the reader holds the file); the lock is released', async (mode) => {
    expect((await runDag(chain(3), { storeDir: store.dir })).ok).toBe(true);
    const reader = child([mode, store.dir, '2500']);
    await reader.line('ready');
    const r = await runDag(chain(4), { storeDir: store.dir });
    expect(r.ok).toBe(true);
    expect(existsSync(lockPath())).toBe(false);
    await reader.out;
  }, 60_000);

  it('a reader held past the wait gives a clear error naming the holder, not a raw DuckDB lock error', async () => {
    expect((await runDag(chain(3), { storeDir: store.dir })).ok).toBe(true);
    const reader = child(['raw', store.dir, '4000']);
    await reader.line('ready');
    await expect(Ledger.open(join(store.dir, 'ledger.duckdb'), 300)).rejects.toThrow(/is held open by another process \(pid \d+\), e\.g\. /);
    await reader.out;
  }, 60_000);

  it('`status` reads a snapshot: it holds no lock on the ledger, so a writer opens it at once', async () => {
    expect((await runDag(chain(3), { storeDir: store.dir })).ok).toBe(true);
    const reader = child(['status', store.dir, '2500']);
    await reader.line('ready');
    const w = await Ledger.open(join(store.dir, 'ledger.duckdb'), 0);
    await w.close();
    await reader.out;
  }, 60_000);
});

describe('a dead run is marked killed even when every rerun is a no-op', () => {
  it('the no-op path defers to the full path when a dead holder left its lock', async () => {
    expect((await runDag(chain(), { storeDir: store.dir })).ok).toBe(true);
    const l = await Ledger.open(join(store.dir, 'ledger.duckdb'));
    await l.startRun('dead-run', 'chain', '');
    await l.close();
    writeFileSync(lockPath(), JSON.stringify({ pid: 999999, started: 'x', argv: 'agentforge run --from a', host: hostname(), boot: bootId(), pidStart: '5' }));
    const r = await runDag(chain(), { storeDir: store.dir });
    expect(r.runId).not.toBe('noop');
    expect([...r.nodes.values()].every((n) => n.status === 'cached')).toBe(true);
    expect(existsSync(lockPath())).toBe(false);
    const ro = await Ledger.openReadOnly(join(store.dir, 'ledger.duckdb'));
    try { expect(await ro.all(`SELECT status FROM runs WHERE run_id = 'dead-run'`)).toEqual([{ status: 'killed' }]); } finally { await ro.close(); }
    expect((await runDag(chain(), { storeDir: store.dir })).runId).toBe('noop');
  });
});
