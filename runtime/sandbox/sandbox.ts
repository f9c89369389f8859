import { spawn } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { ALLOW_ENV, ISOLATION_CHECK_FAILED, probeIsolation, wrapArgv, type IsolationLevel } from './isolation.ts';

/*
 * Runs an untrusted program (model-written code) and reports what happened; it never throws for anything the
 * program does. Each run gets: a fresh temp dir as cwd and HOME (deleted afterwards), a clean environment (only
 * PATH/HOME/LANG plus what the caller passes — never the parent's variables), rlimits on CPU time, address space,
 * file size, processes and open files, a wall-clock timeout and an output cap that both kill the whole process
 * group (and, with namespaces, the whole PID namespace), and no network. Where the machine offers no level that
 * keeps the program off the host's network and process table, runSandboxed refuses (throws SandboxRefusedError)
 * unless the caller opted in to that risk (see isolation.ts). A library, not an eval feature: code benchmarks and
 * the code world for RL both call runSandboxed.
 */
export interface Limits {
  cpuSeconds: number;
  memoryBytes: number;
  fileSizeBytes: number;
  processes: number;
  openFiles: number;
  wallMs: number;
  /** Per stream (stdout, stderr); past it the program is killed. */
  outputBytes: number;
}
export const DEFAULT_LIMITS: Limits = {
  cpuSeconds: 10, memoryBytes: 1 << 30, fileSizeBytes: 16 << 20, processes: 64, openFiles: 256, wallMs: 15_000, outputBytes: 1 << 20,
};

export interface SandboxSpec {
  argv: string[];
  /** Files written into the temp dir before the run (relative paths; no `..`). */
  files?: Record<string, string | Uint8Array>;
  stdin?: string | Uint8Array;
  limits?: Partial<Limits>;
  /** Extra environment variables (the parent's environment is never inherited). */
  env?: Record<string, string>;
  signal?: AbortSignal;
  /** Force a weaker level than the machine's (tests of the fallback); default: the probed level. */
  isolation?: IsolationLevel;
  /**
   * Accept the 'rlimit' level, where the program shares the host's network and process table (same as setting
   * AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS=1). Without it, that level is refused.
   */
  allowHostNetworkAndPids?: boolean;
}

/** The machine (or the caller) offers no level that isolates the program, and nobody opted in to the risk. */
export class SandboxRefusedError extends Error {
  override name = 'SandboxRefusedError';
}

/**
 * Throws SandboxRefusedError when untrusted code would run at the 'rlimit' level without the opt-in; returns the
 * level otherwise. Code evaluators call it before asking a model for anything, so a refusal costs nothing.
 */
export function assertSandboxAvailable(spec: Pick<SandboxSpec, 'isolation' | 'allowHostNetworkAndPids'> = {}): IsolationLevel {
  const probe = probeIsolation();
  const level = spec.isolation ?? probe.level;
  if (level !== 'rlimit') return level;
  if (spec.allowHostNetworkAndPids || process.env[ALLOW_ENV] === '1') {
    if (!probe.isRoot || probe.canDropRoot) return level;
    throw new SandboxRefusedError(`refusing to run untrusted code at the 'rlimit' level as root: setpriv cannot switch to an unprivileged uid here (${ALLOW_ENV} accepts the shared network and process table, never root)`);
  }
  const why = spec.isolation === 'rlimit' ? 'the caller asked for the rlimit level' : `no isolating level works on this machine (${probe.failures.join('; ')})`;
  throw new SandboxRefusedError(
    `refusing to run untrusted code: ${why}. At the 'rlimit' level the program would share this machine's network and ` +
    `process table (it could reach any host and signal other processes of its uid). Fix: let the sandbox use namespaces ` +
    `(run as root with unshare allowed — e.g. a container started with --security-opt seccomp=unconfined or ` +
    `--cap-add SYS_ADMIN — or enable unprivileged user namespaces), or accept the risk with ${ALLOW_ENV}=1.`);
}

export type Outcome =
  | 'ok' | 'nonzero_exit' | 'timeout' | 'cpu_limit' | 'memory_limit' | 'file_size_limit' | 'process_limit'
  | 'output_limit' | 'signal' | 'aborted' | 'spawn_error';

export interface SandboxResult {
  outcome: Outcome;
  ok: boolean;
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Bytes the program wrote per stream (counted up to the kill), even where the kept text was cut. */
  stdoutBytes: number;
  stderrBytes: number;
  wallMs: number;
  /** One line saying what happened, for verdict tables. */
  reason: string;
  isolation: IsolationLevel;
}

export const BASE_ENV = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1', PYTHONHASHSEED: '0' };
/** Uids handed to sandboxes of a root caller: random, high and unnamed, so concurrent sandboxes rarely share a uid (NPROC counts per uid). */
const UID_BASE = 200_000, UID_SPAN = 800_000;
/** A fresh uid for one sandbox of a root caller (null when the caller is not root: it keeps its uid). */
export const sandboxUid = (): number | null => (probeIsolation().isRoot ? UID_BASE + Math.floor(Math.random() * UID_SPAN) : null);

export async function runSandboxed(spec: SandboxSpec): Promise<SandboxResult> {
  const limits = { ...DEFAULT_LIMITS, ...spec.limits };
  const level = assertSandboxAvailable(spec);
  const started = performance.now();
  let dir: string | undefined;
  try {
    dir = await mkdtemp(join(tmpdir(), 'agentforge-sbx-'));
    // A root caller never hands its uid to the program, at any level.
    const uid = sandboxUid();
    await writeFiles(dir, spec.files ?? {}, uid);
    const argv = wrapArgv(level, dir, uid, limits, spec.argv);
    const env = { ...BASE_ENV, HOME: dir, TMPDIR: dir, ...spec.env };
    const raw = await execute(argv, dir, env, spec, limits);
    return classify(raw, limits, level, performance.now() - started);
  } catch (err) {
    const reason = `spawn_error: ${(err as Error).message}`;
    return { outcome: 'spawn_error', ok: false, exitCode: null, signal: null, stdout: '', stderr: '', stdoutBytes: 0, stderrBytes: 0, wallMs: performance.now() - started, reason, isolation: level };
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}

export async function writeFiles(dir: string, files: Record<string, string | Uint8Array>, uid: number | null): Promise<void> {
  if (uid !== null) await chown(dir, uid, uid);
  for (const [rel, content] of Object.entries(files)) {
    const path = resolve(dir, rel);
    if (!path.startsWith(dir + sep)) throw new Error(`file ${JSON.stringify(rel)} escapes the sandbox dir`);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, content);
    if (uid !== null) await chown(dirname(path), uid, uid);
  }
}

export interface RawRun {
  code: number | null; signal: NodeJS.Signals | null; out: Buffer; err: Buffer; outBytes: number; errBytes: number;
  killedFor: 'timeout' | 'output_limit' | 'aborted' | null; spawnError?: Error;
}

function execute(argv: string[], cwd: string, env: Record<string, string>, spec: SandboxSpec, limits: Limits): Promise<RawRun> {
  return new Promise((done) => {
    const child = spawn(argv[0], argv.slice(1), { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    const run: RawRun = { code: null, signal: null, out: Buffer.alloc(0), err: Buffer.alloc(0), outBytes: 0, errBytes: 0, killedFor: null };
    const outChunks: Buffer[] = [], errChunks: Buffer[] = [];
    const kill = (why: RawRun['killedFor']) => {
      if (!run.killedFor) run.killedFor = why;
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* already gone */ }
    };
    const collect = (chunks: Buffer[], key: 'outBytes' | 'errBytes') => (b: Buffer) => {
      const kept = run[key];
      run[key] += b.length;
      if (kept < limits.outputBytes) chunks.push(b.subarray(0, limits.outputBytes - kept));
      if (run[key] > limits.outputBytes) kill('output_limit');
    };
    child.stdout.on('data', collect(outChunks, 'outBytes'));
    child.stderr.on('data', collect(errChunks, 'errBytes'));
    child.stdin.on('error', () => {}); // the program may exit without reading its stdin
    child.stdin.end(spec.stdin ?? '');
    const timer = setTimeout(() => kill('timeout'), limits.wallMs);
    const onAbort = () => kill('aborted');
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => { run.spawnError = e; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* group already empty */ }
      Object.assign(run, { code, signal, out: Buffer.concat(outChunks), err: Buffer.concat(errChunks) });
      done(run);
    });
  });
}

export function classify(raw: RawRun, limits: Limits, isolation: IsolationLevel, wallMs: number): SandboxResult {
  const stdout = raw.out.toString('utf8'), stderr = raw.err.toString('utf8');
  const base = { exitCode: raw.code, signal: raw.signal, stdout, stderr, stdoutBytes: raw.outBytes, stderrBytes: raw.errBytes, wallMs, isolation };
  const [outcome, reason, signal] = outcomeOf(raw, stderr, limits);
  return { ...base, signal, outcome, ok: outcome === 'ok', reason };
}

/** Behind the namespace wrapper a signal death arrives as exit status 128+N (see isolation.ts). */
const SIGNALS: Record<number, NodeJS.Signals> = { 6: 'SIGABRT', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM', 24: 'SIGXCPU', 25: 'SIGXFSZ' };

function outcomeOf(raw: RawRun, stderr: string, l: Limits): [Outcome, string, string | null] {
  if (raw.code !== null && raw.code > 128 && SIGNALS[raw.code - 128]) raw = { ...raw, signal: SIGNALS[raw.code - 128] };
  return [...outcomeReason(raw, stderr, l), raw.signal];
}

function outcomeReason(raw: RawRun, stderr: string, l: Limits): [Outcome, string] {
  if (raw.spawnError) return ['spawn_error', `spawn_error: ${raw.spawnError.message}`];
  if (raw.code === 125 && lastLine(stderr).startsWith(ISOLATION_CHECK_FAILED)) return ['spawn_error', `not run: ${lastLine(stderr)}`];
  if (raw.killedFor === 'timeout') return ['timeout', `killed after the ${l.wallMs} ms wall-clock limit`];
  if (raw.killedFor === 'output_limit') return ['output_limit', `killed: output passed ${l.outputBytes} bytes`];
  if (raw.killedFor === 'aborted') return ['aborted', 'killed: run aborted by the caller'];
  if (raw.signal === 'SIGXCPU' || (raw.signal === 'SIGKILL' && /CPU/.test(stderr))) return ['cpu_limit', `killed: CPU time passed ${l.cpuSeconds} s`];
  if (raw.signal === 'SIGXFSZ' || /File too large|\[Errno 27\]/.test(stderr)) return ['file_size_limit', `file size limit (${l.fileSizeBytes} bytes) reached`];
  if (/MemoryError|Cannot allocate memory|std::bad_alloc/.test(stderr)) return ['memory_limit', `memory limit (${l.memoryBytes} bytes) reached`];
  if (/BlockingIOError|Resource temporarily unavailable/.test(stderr)) return ['process_limit', `process limit (${l.processes}) reached`];
  if (raw.signal) return ['signal', `killed by ${raw.signal}`];
  if (raw.code !== 0) return ['nonzero_exit', `exit code ${raw.code}: ${lastLine(stderr)}`];
  return ['ok', 'exit code 0'];
}

/** The last non-empty stderr line (for Python, the exception), printable and short. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((s) => s.trim()).filter(Boolean);
  const line = lines.at(-1) ?? '';
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\u0000-\u0008\u000b-\u001f\u007f\ufffd]/g, '?').slice(0, 300);
}
