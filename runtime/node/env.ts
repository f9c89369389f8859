/*
 * Bootstraps the runtime node's Python environment on first use: a venv under
 * `${AGENTFORGE_CACHE ?? ~/.cache/agentforge}/venv-<sha of requirements.txt>`, created with `python3 -m venv` and
 * `pip install -r runtime/node/requirements.txt`. A marker file is written only after pip succeeded, so a killed
 * bootstrap is redone from scratch; when the marker exists the call returns at once. A lock dir serialises
 * concurrent bootstraps (two DAG runs, or parallel test files). AGENTFORGE_PYTHON overrides it all (dev).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GPU_DIR = dirname(fileURLToPath(import.meta.url));
export const REQUIREMENTS = join(GPU_DIR, 'requirements.txt');
const MARKER = '.agentforge-ready';
const MIN_PYTHON: [number, number] = [3, 10];

export interface PythonEnv { python: string; venvDir: string }
export interface EnsureOptions {
  /** Interpreter used to create the venv (default `python3`). */
  basePython?: string;
  requirements?: string;
  cacheDir?: string;
  /** Progress lines (pip output) while bootstrapping. */
  onLog?: (line: string) => void;
}

export class PythonEnvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PythonEnvError';
  }
}

const inFlight = new Map<string, Promise<PythonEnv>>();

export function ensurePythonEnv(opts: EnsureOptions = {}): Promise<PythonEnv> {
  const override = process.env.AGENTFORGE_PYTHON;
  if (override && !opts.requirements) return Promise.resolve({ python: override, venvDir: resolve(dirname(override), '..') });
  const requirements = opts.requirements ?? REQUIREMENTS;
  const venvDir = venvDirFor(requirements, opts.cacheDir);
  const python = join(venvDir, 'bin', 'python');
  if (existsSync(join(venvDir, MARKER))) return Promise.resolve({ python, venvDir });
  let p = inFlight.get(venvDir);
  if (!p) {
    p = bootstrap(venvDir, requirements, opts).finally(() => inFlight.delete(venvDir));
    inFlight.set(venvDir, p);
  }
  return p;
}

export function venvDirFor(requirements: string, cacheDir?: string): string {
  const root = cacheDir ?? process.env.AGENTFORGE_CACHE ?? join(homedir(), '.cache', 'agentforge');
  const sha = createHash('sha256').update(readFileSync(requirements)).digest('hex').slice(0, 16);
  return join(root, `venv-${sha}`);
}

async function bootstrap(venvDir: string, requirements: string, opts: EnsureOptions): Promise<PythonEnv> {
  const python = join(venvDir, 'bin', 'python');
  const log = opts.onLog ?? ((line: string) => process.stderr.write(`[python env] ${line}\n`));
  mkdirSync(dirname(venvDir), { recursive: true });
  const release = await acquireLock(`${venvDir}.lock`);
  try {
    if (existsSync(join(venvDir, MARKER))) return { python, venvDir }; // another process finished meanwhile
    const base = opts.basePython ?? 'python3';
    await checkBasePython(base);
    rmSync(venvDir, { recursive: true, force: true }); // leftovers of a killed bootstrap
    log(`creating ${venvDir} (first use; later runs reuse it)`);
    await exec(base, ['-m', 'venv', venvDir], log, `${base} -m venv ${venvDir}`,
      `on Debian/Ubuntu the venv module is separate: apt-get install -y python3-venv`);
    await exec(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', requirements], log,
      `pip install -r ${requirements}`, 'check network access to the package index (PIP_INDEX_URL) and disk space');
    writeFileSync(join(venvDir, MARKER), `${new Date().toISOString()}\n${readFileSync(requirements, 'utf8')}`);
    return { python, venvDir };
  } finally {
    release();
  }
}

async function checkBasePython(base: string): Promise<void> {
  const fix = 'install Python >= 3.10 with its venv module, e.g. `sudo apt-get install -y python3 python3-venv` ' +
    '(Debian/Ubuntu) or `brew install python@3.12` (macOS), or point AGENTFORGE_PYTHON at an interpreter that ' +
    'has runtime/node/requirements.txt installed';
  let out = '';
  try {
    out = await exec(base, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], () => {}, `${base} --version`, fix);
  } catch (e) {
    throw new PythonEnvError(`the GPU runtime node needs Python, but \`${base}\` could not be run (${(e as Error).message.split('\n')[0]}). Fix: ${fix}`);
  }
  const [maj, min] = out.trim().split('.').map(Number);
  if (maj < MIN_PYTHON[0] || (maj === MIN_PYTHON[0] && min < MIN_PYTHON[1])) {
    throw new PythonEnvError(`\`${base}\` is Python ${out.trim()}; the runtime node needs >= ${MIN_PYTHON.join('.')}. Fix: ${fix}`);
  }
}

function exec(cmd: string, args: string[], log: (l: string) => void, what: string, hint: string): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let tail = '';
    child.stdout.on('data', (d: Buffer) => { out += d; for (const l of String(d).split('\n')) if (l.trim()) log(l); });
    child.stderr.on('data', (d: Buffer) => { tail = (tail + d).slice(-4000); });
    child.on('error', (e) => rej(new PythonEnvError(`${what} failed to start: ${e.message}. ${hint}`)));
    child.on('close', (code) => code === 0 ? res(out)
      : rej(new PythonEnvError(`${what} exited with ${code}. ${hint}\n--- stderr tail ---\n${tail}`)));
  });
}

/** mkdir is atomic: the process that creates the dir owns the lock; a lock whose owner pid is gone is stale. */
async function acquireLock(lockDir: string): Promise<() => void> {
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      return () => rmSync(lockDir, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (lockIsStale(lockDir)) rmSync(lockDir, { recursive: true, force: true });
      else await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function lockIsStale(lockDir: string): boolean {
  let pid = NaN;
  try {
    pid = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
  } catch {
    // The owner may be between mkdir and writing its pid; only a pid-less lock older than a minute is dead.
    try { return Date.now() - statSync(lockDir).mtimeMs > 60_000; } catch { return false; }
  }
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
