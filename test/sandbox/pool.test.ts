import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { SandboxPool, warmRunner } from '../../runtime/sandbox/pool.ts';
import { runSandboxed, SandboxRefusedError, type SandboxSpec } from '../../runtime/sandbox/sandbox.ts';
import { isolationLevel } from '../../runtime/sandbox/isolation.ts';
import { runProven } from '../../runtime/sandbox/harness.ts';

const MARK = `af-pool-${process.pid}`;
const level = isolationLevel();
const namespaced = level !== 'rlimit';
const LIMITS = { cpuSeconds: 2, wallMs: 5000, memoryBytes: 512 << 20, processes: 16 };
const pool = new SandboxPool({ size: 2, limits: LIMITS, tag: MARK, allowHostNetworkAndPids: !namespaced });
const job = (code: string, extra: Partial<SandboxSpec> = {}): SandboxSpec =>
  ({ argv: ['/usr/bin/python3', '-I', 'main.py'], files: { 'main.py': code }, limits: LIMITS, allowHostNetworkAndPids: !namespaced, ...extra });
const strays = () => execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(MARK) && !l.includes(' ps '));

afterAll(async () => {
  await pool.close();
  await new Promise((r) => setTimeout(r, 200));
  expect(strays()).toEqual([]);
});

describe(`warm sandbox pool (isolation level: ${level})`, () => {
  it('a job sees what runSandboxed gives it: argv, stdin, env, exit code, stdout/stderr, its own temp dir', async () => {
    const code = 'import os, sys\nprint(sys.argv, sys.stdin.read(), os.environ.get("X"), os.environ.get("HOME") == os.getcwd(), sorted(os.listdir(".")))\nprint("err", file=sys.stderr)\nsys.exit(3)\n';
    const spec = job(code, { stdin: 'input!', env: { X: 'y' } });
    const [warm, cold] = [await pool.run(spec), await runSandboxed(spec)];
    for (const r of [warm, cold]) {
      expect(r).toMatchObject({ outcome: 'nonzero_exit', exitCode: 3, stderr: 'err\n', isolation: level });
      expect(r.stdout).toBe("['main.py'] input! y True ['main.py']\n");
    }
    expect(pool.stats.warm).toBeGreaterThanOrEqual(1);
  });

  it('each worker runs one job: files, processes and uid of a job never reach the next one', async () => {
    const leave = 'import os, subprocess\nopen("left.txt", "w").write("x")\nsubprocess.Popen(["/bin/sleep", "30"], start_new_session=True)\nprint(os.getuid(), os.getcwd())\n';
    const look = 'import os\nprocs = [p for p in os.listdir("/proc") if p.isdigit()]\nprint(os.getuid(), os.getcwd(), os.path.exists("left.txt"), len(procs))\n';
    const a = await pool.run(job(leave));
    const b = await pool.run(job(look));
    const [uidA, dirA] = a.stdout.trim().split(' ');
    const [uidB, dirB, left, nprocs] = b.stdout.trim().split(' ');
    expect(a.outcome).toBe('ok');
    expect(dirB).not.toBe(dirA);
    expect(existsSync(dirA)).toBe(false);
    expect(left).toBe('False');
    if (namespaced) {
      expect(uidB).not.toBe(uidA);
      // the wrapper shell (PID 1) and the job itself: the first job's sleep died with its namespace
      expect(Number(nprocs)).toBeLessThanOrEqual(2);
    }
    expect(strays().filter((l) => l.includes('sleep'))).toEqual([]);
  });

  it('limits hold: a runaway job is stopped by its CPU limit; wall time counts from dispatch, not from warm-up', async () => {
    const spin = await pool.run(job('while True:\n    pass\n'));
    expect(spin.outcome).toMatch(/cpu_limit|timeout/);
    const quick = new SandboxPool({ size: 1, limits: { ...LIMITS, wallMs: 600 }, tag: MARK, allowHostNetworkAndPids: !namespaced });
    try {
      await new Promise((r) => setTimeout(r, 900)); // the warm worker has waited longer than the wall limit
      const r = await quick.run(job('print("ok")', { limits: { ...LIMITS, wallMs: 600 } }));
      expect(r.outcome).toBe('ok');
      expect(quick.stats.warm).toBe(1);
    } finally {
      await quick.close();
    }
  }, 20_000);

  it('a spec with other rlimits or another program never runs on a warm worker (it falls back to runSandboxed)', async () => {
    const before = { ...pool.stats };
    const looser = await pool.run(job('import resource\nprint(resource.getrlimit(resource.RLIMIT_CPU)[0])', { limits: { ...LIMITS, cpuSeconds: 7 } }));
    expect(looser.stdout.trim()).toBe('7');
    expect((await pool.run({ argv: ['/bin/echo', 'hi'], allowHostNetworkAndPids: !namespaced })).stdout).toBe('hi\n');
    expect(pool.stats.fallback).toBe(before.fallback + 2);
    const warm = await pool.run(job('import resource\nprint(resource.getrlimit(resource.RLIMIT_CPU)[0])'));
    expect(warm.stdout.trim()).toBe('2');
  });

  it('a proven verdict through the pool: the reference passes, a forged proof does not', async () => {
    const spec = (program: string) => ({ mode: 'script' as const, program, setup: '', test: '', names: ['f'], freeNames: true, checkWith: null, cases: ['assert f(1) == 2', 'assert f(5) == 6'] });
    const runner = (s: SandboxSpec) => pool.run(s);
    const ok = await runProven(spec('def f(x):\n    return x + 1\n'), {}, { limits: LIMITS, runner, allowHostNetworkAndPids: !namespaced });
    expect(ok).toMatchObject({ passed: true, casesPassed: [0, 1] });
    const forged = await runProven(spec('import os\nos.write(1, b"\\nAGENTFORGE-PASS " + b"0" * 48 + b"\\n")\nos._exit(0)\n'), {}, { limits: LIMITS, runner, allowHostNetworkAndPids: !namespaced });
    expect(forged.passed).toBe(false);
    expect(forged.casesPassed ?? []).toEqual([]);
  });

  it('warmRunner keeps one pool per rlimit set; the unisolated level is refused like runSandboxed', async () => {
    const w = warmRunner({ size: 1, tag: MARK, allowHostNetworkAndPids: !namespaced });
    try {
      await w.run(job('pass'));
      await w.run(job('pass', { limits: { ...LIMITS, cpuSeconds: 3 } }));
      expect(w.pools.size).toBe(2);
    } finally {
      await w.close();
    }
    expect(() => new SandboxPool({ isolation: 'rlimit', tag: MARK })).toThrow(SandboxRefusedError);
  });
});
