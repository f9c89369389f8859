import { spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { wrapArgv, type IsolationLevel } from './isolation.ts';
import {
  assertSandboxAvailable, BASE_ENV, classify, DEFAULT_LIMITS, runSandboxed, sandboxUid, writeFiles,
  type Limits, type RawRun, type SandboxResult, type SandboxSpec,
} from './sandbox.ts';

/*
 * A warm pool of sandboxed Python workers, for RL's many short executions. Starting a sandbox costs more than the
 * program (unshare + mounts + setpriv + the interpreter's start and imports), so the pool starts each sandbox
 * ahead of time: a worker is exactly what runSandboxed builds (fresh temp dir, fresh uid, namespaces, rlimits,
 * clean environment), running a small stage-0 Python that has already imported what the harness needs and waits
 * on stdin. A job writes its files into the worker's dir, sends one line (the script to run) and then its stdin;
 * stage 0 runs the script in-process as __main__. Every worker runs ONE job and is then killed with its PID
 * namespace and its dir removed — isolation between jobs is the sandbox's own, nothing is reused — and a fresh
 * worker is started in the background to take its place.
 *
 * Only `python3 -I <script>` jobs whose rlimits equal the pool's take the warm path (a worker's rlimits are fixed
 * when it starts, and a job is never run under looser ones); any other spec goes to runSandboxed. Wall-clock and
 * output limits are the job's, counted from dispatch.
 */

const PY = '/usr/bin/python3';

const STAGE0 = String.raw`
import os, sys
import ast, builtins, ctypes, importlib, json, signal, traceback, types
line = b""
while not line.endswith(b"\n"):
    c = os.read(0, 1)
    if not c:
        os._exit(0)
    line += c
job = json.loads(line)
for k, v in job["env"].items():
    os.environ[k] = v
sys.argv = [job["script"]]
with open(job["script"], "rb") as f:
    code = compile(f.read(), job["script"], "exec")
g = {"__name__": "__main__", "__file__": job["script"], "__builtins__": builtins}
exec(code, g)
`;

type RlimitKey = Pick<Limits, 'cpuSeconds' | 'memoryBytes' | 'fileSizeBytes' | 'processes' | 'openFiles'>;
const rlimitKey = (l: RlimitKey) => `${l.cpuSeconds}/${l.memoryBytes}/${l.fileSizeBytes}/${l.processes}/${l.openFiles}`;

interface Worker { child: ChildProcess; dir: string; uid: number | null; exited: boolean; closed: Promise<[number | null, NodeJS.Signals | null]> }

export interface PoolOptions {
  /** Warm workers kept per rlimit set (default 4). */
  size?: number;
  /** The rlimits (and default wall/output limits) of the workers. */
  limits?: Partial<Limits>;
  isolation?: IsolationLevel;
  allowHostNetworkAndPids?: boolean;
  /** Appended to each worker's command line (tests find their own workers in `ps` by it). */
  tag?: string;
}

export interface PoolStats { warm: number; cold: number; fallback: number }

export class SandboxPool {
  readonly limits: Limits;
  readonly stats: PoolStats = { warm: 0, cold: 0, fallback: 0 };
  private readonly level: IsolationLevel;
  private readonly size: number;
  private idle: Array<Promise<Worker>> = [];
  private closed = false;

  constructor(private readonly o: PoolOptions = {}) {
    this.limits = { ...DEFAULT_LIMITS, ...o.limits };
    this.size = o.size ?? 4;
    // refuses here, like runSandboxed, when the machine cannot isolate and nobody opted in
    this.level = assertSandboxAvailable({ isolation: o.isolation, allowHostNetworkAndPids: o.allowHostNetworkAndPids });
    for (let i = 0; i < this.size; i++) this.idle.push(this.start());
  }

  private async start(): Promise<Worker> {
    const dir = await mkdtemp(join(tmpdir(), 'agentforge-pool-'));
    const uid = sandboxUid();
    if (uid !== null) await chown(dir, uid, uid);
    const argv = wrapArgv(this.level, dir, uid, this.limits, [PY, '-I', '-c', STAGE0, ...(this.o.tag ? [this.o.tag] : [])]);
    const child = spawn(argv[0], argv.slice(1), { cwd: dir, env: { ...BASE_ENV, HOME: dir, TMPDIR: dir }, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const closed = new Promise<[number | null, NodeJS.Signals | null]>((res) => {
      child.on('close', (code, signal) => res([code, signal]));
      child.on('error', () => res([null, null]));
    });
    const w: Worker = { child, dir, uid, exited: false, closed };
    child.on('error', () => { w.exited = true; });
    child.on('exit', () => { w.exited = true; });
    child.stdin!.on('error', () => {});
    hold(child, false); // an idle worker does not keep the caller's process alive
    return w;
  }

  /** True when `spec` can run on a warm worker without changing what it means. */
  private fits(spec: SandboxSpec): boolean {
    const l = { ...DEFAULT_LIMITS, ...spec.limits };
    return !this.closed && spec.argv.length === 3 && spec.argv[0] === PY && spec.argv[1] === '-I' && !spec.argv[2].startsWith('-')
      && rlimitKey(l) === rlimitKey(this.limits) && (spec.isolation ?? this.level) === this.level;
  }

  /** Same contract as runSandboxed (never throws for what the program does). */
  async run(spec: SandboxSpec): Promise<SandboxResult> {
    if (!this.fits(spec)) { this.stats.fallback++; return runSandboxed(spec); }
    const pending = this.idle.shift();
    this.idle.push(this.start());
    let w = pending ? await pending.catch(() => null) : null;
    if (!w || w.exited) {
      if (w) void this.dispose(w);
      this.stats.cold++;
      w = await this.start();
    } else this.stats.warm++;
    const limits = { ...this.limits, wallMs: spec.limits?.wallMs ?? this.limits.wallMs, outputBytes: spec.limits?.outputBytes ?? this.limits.outputBytes };
    const started = performance.now();
    try {
      await writeFiles(w.dir, spec.files ?? {}, w.uid);
      const raw = await this.dispatch(w, spec, limits);
      return classify(raw, limits, this.level, performance.now() - started);
    } catch (err) {
      const reason = `spawn_error: ${(err as Error).message}`;
      return { outcome: 'spawn_error', ok: false, exitCode: null, signal: null, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, wallMs: performance.now() - started, reason, isolation: this.level };
    } finally {
      await this.dispose(w);
    }
  }

  private dispatch(w: Worker, spec: SandboxSpec, limits: Limits): Promise<RawRun> {
    return new Promise((done) => {
      const { child } = w;
      const run: RawRun = { code: null, signal: null, out: Buffer.alloc(0), err: Buffer.alloc(0), outBytes: 0, errBytes: 0, killedFor: null };
      const outChunks: Buffer[] = [], errChunks: Buffer[] = [];
      const kill = (why: RawRun['killedFor']) => {
        if (!run.killedFor) run.killedFor = why;
        try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      };
      const collect = (chunks: Buffer[], key: 'outBytes' | 'errBytes') => (b: Buffer) => {
        const kept = run[key];
        run[key] += b.length;
        if (kept < limits.outputBytes) chunks.push(b.subarray(0, limits.outputBytes - kept));
        if (run[key] > limits.outputBytes) kill('output_limit');
      };
      child.stdout!.on('data', collect(outChunks, 'outBytes'));
      child.stderr!.on('data', collect(errChunks, 'errBytes'));
      const timer = setTimeout(() => kill('timeout'), limits.wallMs);
      const onAbort = () => kill('aborted');
      spec.signal?.addEventListener('abort', onAbort, { once: true });
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        spec.signal?.removeEventListener('abort', onAbort);
        Object.assign(run, { code, signal, out: Buffer.concat(outChunks), err: Buffer.concat(errChunks) });
        done(run);
      };
      void w.closed.then(([code, signal]) => finish(code, signal));
      hold(child, true);
      const env = { ...spec.env };
      child.stdin!.write(`${JSON.stringify({ script: spec.argv[2], env })}\n`);
      child.stdin!.end(spec.stdin ?? '');
    });
  }

  private async dispose(w: Worker): Promise<void> {
    try { process.kill(-w.child.pid!, 'SIGKILL'); } catch { /* gone */ }
    await rm(w.dir, { recursive: true, force: true }).catch(() => {});
  }

  /** Kills the idle workers; later runs fall back to runSandboxed. */
  async close(): Promise<void> {
    this.closed = true;
    const idle = this.idle;
    this.idle = [];
    await Promise.all(idle.map(async (p) => { const w = await p.catch(() => null); if (w) await this.dispose(w); }));
  }
}

/**
 * Pools keyed by rlimits, made on first use: a runner for the code worlds (setSandboxRunner) whose tool runs and
 * verdict runs (two limit sets) both get warm workers.
 */
export function warmRunner(o: Omit<PoolOptions, 'limits'> = {}): { run(spec: SandboxSpec): Promise<SandboxResult>; close(): Promise<void>; pools: Map<string, SandboxPool> } {
  const pools = new Map<string, SandboxPool>();
  return {
    pools,
    run(spec) {
      if (spec.argv[0] !== PY) return runSandboxed(spec);
      const l = { ...DEFAULT_LIMITS, ...spec.limits };
      const key = rlimitKey(l);
      let p = pools.get(key);
      if (!p) pools.set(key, (p = new SandboxPool({ ...o, limits: l })));
      return p.run(spec);
    },
    async close() { await Promise.all([...pools.values()].map((p) => p.close())); },
  };
}

/** Lets a child (and its pipes) keep the event loop alive, or not. */
function hold(child: ChildProcess, on: boolean): void {
  for (const h of [child, child.stdin, child.stdout, child.stderr] as Array<{ ref?(): void; unref?(): void } | null>) {
    if (on) h?.ref?.(); else h?.unref?.();
  }
}
