import { describe, expect, it, afterAll } from 'vitest';
import { createServer, type Server } from 'node:net';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { assertSandboxAvailable, DEFAULT_LIMITS, runSandboxed, SandboxRefusedError, type SandboxSpec } from '../../runtime/sandbox/sandbox.ts';
import { ALLOW_ENV, isolationLevel, probeIsolation, wrapArgv } from '../../runtime/sandbox/isolation.ts';
import { containmentTrials, type Containment } from '../../runtime/sandbox/containment.ts';

// Every program of this file carries MARK in its argv (children inherit it), so the host check below sees only our
// sandboxes, not those other test files run at the same time.
const MARK = `af-security-${process.pid}`;
const level = isolationLevel();
const namespaced = level !== 'rlimit';
// The limit tests below run our own benign programs; on a machine that only offers the unisolated level they opt in
// (the refusal itself is tested separately). Programs that signal or connect run only where namespaces isolate.
const OPTS: Partial<SandboxSpec> = namespaced ? {} : { allowHostNetworkAndPids: true };
const py = (code: string, extra: Partial<SandboxSpec> = {}) =>
  runSandboxed({ argv: ['/usr/bin/python3', 'main.py', MARK], files: { 'main.py': code }, ...OPTS, ...extra });

/** Our sandboxed processes still alive on the host. */
function strayProcesses(): string[] {
  const out = execFileSync('ps', ['-eo', 'uid=,pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(MARK) && !l.includes(' ps '));
}

describe(`sandbox containment (isolation level: ${level})`, () => {
  afterAll(() => {
    expect(strayProcesses()).toEqual([]);
  });

  it('runs a trivial program in a temp dir that is removed afterwards', async () => {
    const r = await py('import os\nprint(os.getcwd())');
    expect(r).toMatchObject({ outcome: 'ok', ok: true, exitCode: 0 });
    expect(r.stdout).toMatch(/agentforge-sbx-/);
    expect(existsSync(r.stdout.trim())).toBe(false);
  });

  it('fork bomb: stopped by the process limit, nothing survives', async () => {
    const r = await py('import os\nwhile True:\n    os.fork()', { limits: { processes: 32, wallMs: 5000 } });
    expect(r.ok).toBe(false);
    expect(['process_limit', 'timeout']).toContain(r.outcome);
    expect(strayProcesses()).toEqual([]);
    expect(execFileSync('/bin/echo', ['host still spawns'], { encoding: 'utf8' })).toBe('host still spawns\n');
  });

  it('infinite loop: killed at the wall-clock limit', async () => {
    const r = await py('while True:\n    pass', { limits: { wallMs: 800, cpuSeconds: 30 } });
    expect(r.outcome).toBe('timeout');
    expect(r.reason).toContain('800 ms');
  });

  it('busy loop: stopped by the CPU-time limit', async () => {
    const r = await py('while True:\n    pass', { limits: { cpuSeconds: 1, wallMs: 30_000 } });
    expect(r.outcome).toBe('cpu_limit');
  });

  it('memory bomb: stopped by the address-space limit', async () => {
    const r = await py('chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))', { limits: { memoryBytes: 256 << 20 } });
    expect(r.outcome).toBe('memory_limit');
  });

  it('100 MB of output: killed at the output cap, kept text bounded', async () => {
    const code = 'import sys\nfor _ in range(1600):\n    sys.stdout.write("x" * 65536)\n';
    const r = await py(code, { limits: { outputBytes: 1 << 20 } });
    expect(r.outcome).toBe('output_limit');
    expect(r.stdout.length).toBeLessThanOrEqual(1 << 20);
  });

  it('a huge file: stopped by the file-size limit', async () => {
    const r = await py('open("big","wb").write(b"x" * (64 << 20))', { limits: { fileSizeBytes: 1 << 20, memoryBytes: 512 << 20 } });
    expect(r.outcome).toBe('file_size_limit');
  });

  it.runIf(namespaced)('writing outside the temp dir fails; inside works', async () => {
    const target = `${tmpdir()}/agentforge-escape-${process.pid}.txt`;
    const code = `open("inside.txt","w").write("ok")\nfor p in [${JSON.stringify(target)}, "/dev/shm/agentforge-escape", "/root/escape", "${process.cwd()}/escape"]:\n    try:\n        open(p, "w").write("x"); print("WROTE", p)\n    except OSError as e:\n        print("blocked", p, e.errno)\n`;
    const r = await py(code);
    expect(r.outcome).toBe('ok');
    expect(r.stdout).not.toContain('WROTE');
    expect(r.stdout.match(/blocked/g)).toHaveLength(4);
    expect(existsSync(target)).toBe(false);
  });

  it("cannot read the parent's environment", async () => {
    process.env.AGENTFORGE_TEST_SECRET = 'sk-parent-secret-123';
    const code = `import os\nprint(sorted(os.environ))\nfor pid in [${process.pid}, ${process.ppid}, 1]:\n    try:\n        print(open(f"/proc/{pid}/environ","rb").read())\n    except OSError as e:\n        print("denied", pid, e.errno)\n`;
    const r = await py(code);
    delete process.env.AGENTFORGE_TEST_SECRET;
    expect(r.stdout).not.toContain('sk-parent-secret-123');
    expect(r.stdout).toContain("['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'PYTHONHASHSEED', 'TMPDIR']");
  });

  it.runIf(namespaced)('cannot open a network connection to a server on the host', async () => {
    let accepted = 0;
    const server: Server = createServer((s) => { accepted += 1; s.end(); });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    const port = (server.address() as { port: number }).port;
    const code = `import socket\ntry:\n    socket.create_connection(("127.0.0.1", ${port}), timeout=2); print("CONNECTED")\nexcept OSError as e:\n    print("no network", e.errno)\n`;
    const r = await py(code);
    server.close();
    expect(r.stdout).toMatch(/^no network/);
    expect(accepted).toBe(0);
  });

  it.runIf(namespaced)('a child that leaves the process group dies with the sandbox', async () => {
    const marker = `${tmpdir()}/agentforge-orphan-${process.pid}`;
    const code = `import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(1.5)\n    open(${JSON.stringify(marker)}, "w").write("alive")\n    os._exit(0)\nprint("parent exits")\n`;
    const r = await py(code);
    expect(r.outcome).toBe('ok');
    await new Promise((ok) => setTimeout(ok, 2000));
    expect(existsSync(marker)).toBe(false);
    expect(strayProcesses()).toEqual([]);
  });

  it('binary garbage on stdout is reported, not a crash', async () => {
    const r = await py('import sys, os\nsys.stdout.buffer.write(os.urandom(4096) + bytes(range(256)))\nraise SystemExit(3)');
    expect(r.outcome).toBe('nonzero_exit');
    expect(r.stdoutBytes).toBe(4096 + 256);
  });

  it('the rlimit level is refused by default, naming the risk and the opt-in', async () => {
    const saved = process.env[ALLOW_ENV];
    delete process.env[ALLOW_ENV];
    try {
      await expect(runSandboxed({ argv: ['/bin/true'], isolation: 'rlimit' })).rejects.toThrow(SandboxRefusedError);
      expect(() => assertSandboxAvailable({ isolation: 'rlimit' })).toThrow(/share this machine's network and process table.*AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS=1/);
    } finally {
      if (saved !== undefined) process.env[ALLOW_ENV] = saved;
    }
  });

  it('opted in, the rlimit level still enforces time, memory and a clean environment, and never runs as root', async () => {
    const loop = await py('while True:\n    pass', { isolation: 'rlimit', allowHostNetworkAndPids: true, limits: { wallMs: 800 } });
    expect(loop).toMatchObject({ outcome: 'timeout', isolation: 'rlimit' });
    const mem = await py('x = bytearray(1 << 30)', { isolation: 'rlimit', allowHostNetworkAndPids: true, limits: { memoryBytes: 256 << 20 } });
    expect(mem.outcome).toBe('memory_limit');
    process.env[ALLOW_ENV] = '1'; // the environment variable opts in as well
    try {
      const who = await py('import os\nprint(sorted(os.environ), os.getuid())', { isolation: 'rlimit' });
      expect(who.stdout).not.toContain('VITEST');
      expect(who.stdout.trim().split(' ').at(-1)).not.toBe('0');
    } finally {
      delete process.env[ALLOW_ENV];
    }
  });

  it.runIf(process.getuid?.() === 0)('the user-ns level, run by an unprivileged user, still blocks writes outside and the network', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-userns-'));
    chmodSync(dir, 0o777);
    const outside = `${tmpdir()}/agentforge-userns-escape-${process.pid}`;
    const code = `import socket, subprocess\nopen("inside","w").write("1")\ntry:\n    open(${JSON.stringify(outside)},"w"); print("WROTE")\nexcept OSError as e:\n    print("blocked", e.errno)\ntry:\n    socket.create_connection(("127.0.0.1", 9), timeout=1); print("CONNECTED")\nexcept OSError as e:\n    print("no network", e.errno)\nprint("remount", subprocess.run(["mount", "-o", "remount,bind,rw", "/"], capture_output=True).returncode)\n`;
    const argv = wrapArgv('user-ns', dir, null, DEFAULT_LIMITS, ['/usr/bin/python3', '-c', code]);
    const r = spawnSync('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', ...argv], { cwd: dir, encoding: 'utf8', env: {} });
    rmSync(dir, { recursive: true, force: true });
    // remount exits non-zero: without capabilities, ns-root cannot undo the read-only re-mounts
    expect(r.stdout).toMatch(/^blocked 30\nno network 101\nremount [1-9]\d*\n$/);
    expect(existsSync(outside)).toBe(false);
  });

  it('a missing program is a spawn error, not a throw', async () => {
    const r = await runSandboxed({ argv: ['/nonexistent/binary'] });
    expect(r.ok).toBe(false);
    expect(['nonzero_exit', 'spawn_error']).toContain(r.outcome);
  });
});

describe(`containment at every level this machine offers (probed: ${level})`, () => {
  let result: Containment;
  // One run of every attack: kill(-1), kill(getppid()), kill of a host sentinel, writes and reads outside the dir, a
  // read-write re-mount and a TCP connect — signals only after the level showed its own PID namespace.
  it('every attack is contained or refused', async () => {
    result = await containmentTrials({ withoutNamespaces: true });
    const escaped = result.trials.filter((t) => !t.contained).map((t) => `${t.level} ${t.attack}: ${t.detail}`);
    expect(escaped).toEqual([]);
    expect(strayProcesses()).toEqual([]);
  }, 120_000);

  it('tried the attacks at each namespace level available here, and the refusal', () => {
    const levels = new Set(result.trials.map((t) => t.level));
    if (namespaced) expect(levels).toContain(level);
    if (probeIsolation().isRoot && namespaced) expect(result.trials.filter((t) => t.attack === 'kill(-1)').map((t) => t.level)).toEqual(expect.arrayContaining([level]));
    expect(result.trials.find((t) => t.attack === 'refused by default')?.contained).toBe(true);
    const attacks = new Set(result.trials.map((t) => t.attack));
    if (namespaced) for (const a of ['kill(-1)', 'kill(getppid())', 'tcp connect to a host server', 'never runs as root']) expect(attacks).toContain(a);
    expect([...attacks].some((a) => a.startsWith('write '))).toBe(namespaced);
  });
});
