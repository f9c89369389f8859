import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';

/*
 * How strongly this machine lets us isolate a sandboxed process. Probed once per process, never assumed:
 *
 *  - 'root-ns'  (running as root, `unshare` works): new network, PID, IPC and mount namespaces; every writable mount
 *               except the sandbox's temp dir is re-mounted read-only; the program runs as a fresh unprivileged
 *               uid with no capabilities (so RLIMIT_NPROC binds, root-owned files and other processes' /proc
 *               entries are closed); a fresh /proc shows only the sandbox's own processes. Killing `unshare` kills
 *               the whole PID namespace, so even a child that left the process group dies.
 *  - 'user-ns'  (unprivileged user namespaces allowed): user + network + PID + mount namespaces and the same
 *               read-only re-mounts. A root caller first drops to a fresh unprivileged uid, so outside its
 *               namespace the program is never root. Inside, it is "root" without capabilities (bounding set
 *               emptied): with them it could re-mount the read-only mounts writable again.
 *  - 'rlimit'   (fallback, e.g. Docker's default seccomp profile forbids unshare): rlimits, a process group and, for a
 *               root caller, a fresh unprivileged uid. The program SHARES THE HOST'S NETWORK AND PROCESS TABLE, so
 *               it is refused unless the caller opts in (ALLOW_ENV or SandboxSpec.allowHostNetworkAndPids).
 *
 * Both namespace levels re-check their isolation inside the wrapper before the program starts (PID 1 of a new PID
 * namespace, no interface but loopback); a failed check is a failed run, never an unisolated one.
 *
 * AGENTFORGE_SANDBOX_ISOLATION=root-ns|user-ns|rlimit forces a level for the process; SandboxSpec.isolation per call
 * (the tests use it to exercise the fallback).
 */
export type IsolationLevel = 'root-ns' | 'user-ns' | 'rlimit';
const LEVELS: readonly string[] = ['root-ns', 'user-ns', 'rlimit'];

/** The opt-in that lets untrusted code run at the 'rlimit' level; its name is the risk it accepts. */
export const ALLOW_ENV = 'AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS';

const NS_FLAGS = ['--net', '--pid', '--ipc', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc'];
const USER_NS = ['--user', '--map-root-user'];
/** Leaves the program no capabilities and no way to gain any (setuid binaries, file capabilities). */
const NO_CAPS = ['--bounding-set=-all', '--inh-caps=-all', '--no-new-privs'];
const UNSHARE = '/usr/bin/unshare', SETPRIV = '/usr/bin/setpriv';

export interface Probe {
  level: IsolationLevel;
  isRoot: boolean;
  /** Root only: setpriv can switch to an unprivileged uid (without it, even an opted-in 'rlimit' run is refused). */
  canDropRoot: boolean;
  /** Why each stronger level was not chosen (empty when the strongest one works). */
  failures: string[];
}

/** The uid the probe runs as when the caller is root (nobody). */
const PROBE_UID = 65534;

let cached: Probe | undefined;

export function probeIsolation(): Probe {
  if (cached) return cached;
  const isRoot = process.getuid?.() === 0;
  const forced = process.env.AGENTFORGE_SANDBOX_ISOLATION as IsolationLevel | undefined;
  if (forced && !LEVELS.includes(forced)) throw new Error(`AGENTFORGE_SANDBOX_ISOLATION=${forced}: expected root-ns, user-ns or rlimit`);
  const canDropRoot = isRoot && !attempt([SETPRIV, `--reuid=${PROBE_UID}`, `--regid=${PROBE_UID}`, '--clear-groups', '--', '/bin/true']);
  if (forced) return (cached = { level: forced, isRoot, canDropRoot, failures: [`forced by AGENTFORGE_SANDBOX_ISOLATION=${forced}`] });
  return (cached = probe(isRoot, canDropRoot));
}

export function isolationLevel(): IsolationLevel {
  return probeIsolation().level;
}

/** Runs a command; null when it worked, else a one-line reason. */
function attempt(argv: string[]): string | null {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 5000, env: {} });
  if (r.error) return `${argv[0]}: ${r.error.message}`;
  if (r.status === 0) return null;
  const err = r.stderr.trim().split('\n')[0] ?? '';
  return `exit ${r.status ?? r.signal}${err ? `: ${err}` : ''}`;
}

/*
 * The probe runs the whole wrapper that real runs use (uid drop, namespaces, the in-namespace isolation check,
 * re-mounts, setpriv) on /bin/true — so a level is chosen because it was observed to work, not assumed from
 * `unshare` alone.
 */
function probe(isRoot: boolean, canDropRoot: boolean): Probe {
  const failures: string[] = [];
  const levels: IsolationLevel[] = isRoot ? ['root-ns', 'user-ns'] : ['user-ns'];
  if (!isRoot) failures.push('root-ns: not running as root');
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'agentforge-probe-'));
    const uid = isRoot ? PROBE_UID : null;
    chmodSync(dir, 0o777); // not chown: where the uid cannot be used, the wrapper itself should say so
    const limits = { cpuSeconds: 5, memoryBytes: 256 << 20, fileSizeBytes: 1 << 20, processes: 16, openFiles: 64 };
    for (const level of levels) {
      const why = attempt(wrapArgv(level, dir, uid, limits, ['/bin/true']));
      if (!why) return { level, isRoot, canDropRoot, failures };
      failures.push(`${level}: ${why}`);
    }
  } catch (e) {
    failures.push(`probe: ${(e as Error).message}`);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
  return { level: 'rlimit', isRoot, canDropRoot, failures };
}

/*
 * Inside the namespaces, before anything else: the shell must be PID 1 of its PID namespace, and the network
 * namespace must hold nothing but loopback (/proc/net/dev lists one interface per line with a colon).
 */
const NS_CHECK = [
  '[ "$$" = 1 ] || { echo "agentforge sandbox: isolation check failed: not alone in a new PID namespace" >&2; exit 125; }',
  'n=0; while IFS= read -r l; do case $l in *:*) n=$((n+1));; esac; done < /proc/net/dev',
  '[ "$n" -le 1 ] || { echo "agentforge sandbox: isolation check failed: $n network interfaces visible" >&2; exit 125; }',
].join('\n');
export const ISOLATION_CHECK_FAILED = 'agentforge sandbox: isolation check failed';

/** What runs before the wrapper shell: uid drop (user-ns as root) and unshare. */
function prefix(level: IsolationLevel, uid: number | null): (argv: string[]) => string[] {
  if (level === 'rlimit') return (argv) => argv;
  if (level === 'root-ns') return (argv) => [UNSHARE, ...NS_FLAGS, ...argv];
  const drop = uid === null ? [] : [SETPRIV, `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--'];
  return (argv) => [...drop, UNSHARE, ...USER_NS, ...NS_FLAGS, ...argv];
}

const KERNEL_FS = /^(proc|sysfs|cgroup2?|devpts|devtmpfs|mqueue|securityfs|debugfs|tracefs|bpf|pstore|configfs|fusectl|hugetlbfs|autofs|binfmt_misc|nsfs)$/;

/** Writable mounts a sandboxed program could otherwise write to (kernel file systems are root-only for writes). */
function writableMounts(): string[] {
  const table = readFileSync('/proc/self/mounts', 'utf8');
  const points = new Set<string>();
  for (const line of table.split('\n')) {
    const [, point, type, opts] = line.split(' ');
    if (!point || KERNEL_FS.test(type) || !opts.split(',').includes('rw')) continue;
    if (/^\/(proc|sys|dev\/pts)(\/|$)/.test(point)) continue;
    points.add(point.replace(/\\040/g, ' '));
  }
  return [...points];
}

/*
 * Folders a program could otherwise read (world-readable files of the caller: the repo, stores, dotfiles) that a
 * code task never needs; each is covered by an empty read-only tmpfs in the namespace levels. System folders
 * (/usr, /etc, …) stay visible: the interpreter lives there. A folder that holds the sandbox dir stays visible.
 */
function hiddenFolders(dir: string): string[] {
  const candidates = ['/root', '/home', '/work', '/srv', '/mnt', '/media', '/opt', homedir(), process.cwd()].map((p) => resolve(p));
  // The interpreter's folders stay visible; /tmp and /var themselves too (the sandbox dir lives in one), but a
  // caller's folder inside them (a clone in /tmp, as CI may make) is hidden like one under /work.
  const system = /^\/(usr|bin|sbin|lib|lib32|lib64|etc|proc|sys|dev|run|boot)?(\/|$)|^\/(var|tmp)\/?$/;
  const out: string[] = [];
  for (const p of [...new Set(candidates)].sort()) { // a parent sorts before its children, which it already hides
    if (system.test(p) || dir === p || dir.startsWith(p + sep) || out.some((h) => p.startsWith(h + sep))) continue;
    // An empty folder hides nothing; skipping it saves a mount per run.
    try { if (statSync(p).isDirectory() && readdirSync(p).length) out.push(p); } catch { /* absent or unreadable */ }
  }
  return out;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface RlimitValues { cpuSeconds: number; memoryBytes: number; fileSizeBytes: number; processes: number; openFiles: number }

/*
 * The wrapper script. In namespace mode it first re-checks the isolation, then, as root of the new mount namespace,
 * keeps the work dir writable by bind-mounting it on itself, re-mounts every other writable mount read-only and
 * covers the caller's folders (hiddenFolders).
 * Then it sets the rlimits with shell builtins (no extra exec: the sandbox overhead is dominated by process starts)
 * and runs the program through setpriv: as `uid` with no capabilities where the caller is root, without
 * capabilities inside the user namespace otherwise. The shell stays as PID 1 of the namespace (the program is its
 * child, so it keeps normal signal semantics) and exits with the program's status: 128+N when signal N killed it
 * (sandbox.ts decodes it). Soft CPU limit → SIGXCPU; the hard one a second later is the kernel's SIGKILL backstop.
 */
function script(level: IsolationLevel, dir: string, uid: number | null, l: RlimitValues): string {
  const lines = ['set -e'];
  if (level !== 'rlimit') {
    lines.push(NS_CHECK, `mount --bind ${q(dir)} ${q(dir)}`);
    for (const m of writableMounts()) if (m !== dir) lines.push(`mount -o remount,bind,ro ${q(m)} 2>/dev/null || true`);
    for (const h of hiddenFolders(dir)) {
      lines.push(`mount -t tmpfs -o ro,size=4k,mode=0755 agentforge-hidden ${q(h)} || { echo ${q(`${ISOLATION_CHECK_FAILED}: cannot hide ${h}`)} >&2; exit 125; }`);
    }
    lines.push(`cd ${q(dir)}`);
  }
  lines.push('unset PWD OLDPWD', // the shell exported them; the program gets exactly the caller's environment
    `ulimit -S -t ${l.cpuSeconds}; ulimit -H -t ${l.cpuSeconds + 1}`,
    `ulimit -v ${Math.ceil(l.memoryBytes / 1024)}; ulimit -f ${Math.ceil(l.fileSizeBytes / 512)}`,
    `ulimit -p ${l.processes}; ulimit -n ${l.openFiles}; ulimit -c 0`, 'set +e');
  // user-ns: the uid was dropped before unshare; inside, only the capabilities go.
  const ids = uid !== null && level !== 'user-ns' ? [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'] : [];
  if (level === 'rlimit' && !ids.length) lines.push('"$@"');
  else lines.push(`${SETPRIV} ${[...ids, ...NO_CAPS].join(' ')} -- "$@"`);
  lines.push('exit $?');
  return lines.join('\n');
}

/**
 * The argv that runs `program` under the given level and limits. `uid`: the unprivileged uid the program runs as
 * when the caller is root (null when the caller is not root: it keeps the caller's uid).
 */
export function wrapArgv(level: IsolationLevel, dir: string, uid: number | null, limits: RlimitValues, program: string[]): string[] {
  return prefix(level, uid)(['/bin/sh', '-c', script(level, dir, uid, limits), 'sandbox', ...program]);
}
