import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runSandboxed, type SandboxSpec } from '../../runtime/sandbox/sandbox.ts';
import { SandboxPool } from '../../runtime/sandbox/pool.ts';
import { isolationLevel } from '../../runtime/sandbox/isolation.ts';

/*
 * System V IPC objects outlive the process that made them. Before each sandbox had its own IPC namespace, a segment
 * made world-readable by one run (one model's program) could be read by the next run and stayed on the host; now it
 * dies with the sandbox. A run of the warm pool is one sandbox too.
 */
const level = isolationLevel();
const KEY = 0x4146 + (process.pid % 1000);
const put = `import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\nshmid = libc.shmget(${KEY}, 4096, 0o1666)\naddr = libc.shmat(shmid, None, 0)\nctypes.memmove(addr, b"secret-from-A", 13)\nprint(shmid)\n`;
const get = `import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.shmat.restype = ctypes.c_void_p\nshmid = libc.shmget(${KEY}, 4096, 0o666)\nprint(shmid, ctypes.string_at(libc.shmat(shmid, None, 0), 13) if shmid >= 0 else b"")\n`;
const job = (code: string): SandboxSpec => ({ argv: ['/usr/bin/python3', '-I', 'main.py'], files: { 'main.py': code } });
const onHost = () => readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1).filter((l) => l.trim() && Number(l.trim().split(/\s+/)[0]) === KEY);
const pool = level === 'rlimit' ? null : new SandboxPool({ size: 1 });
afterAll(async () => { await pool?.close(); });

describe.skipIf(level === 'rlimit')(`System V shared memory does not cross sandboxes (isolation level: ${level})`, () => {
  it('runSandboxed: a segment left by one run is gone for the next and on the host', async () => {
    const a = await runSandboxed(job(put));
    expect(a.outcome).toBe('ok');
    const b = await runSandboxed(job(get));
    expect(b.stdout.trim()).toBe("-1 b''");
    expect(onHost()).toEqual([]);
  });

  it('the warm pool: the same between two jobs', async () => {
    const a = await pool!.run(job(put));
    expect(a.outcome).toBe('ok');
    const b = await pool!.run(job(get));
    expect(b.stdout.trim()).toBe("-1 b''");
    expect(onHost()).toEqual([]);
  });
});
