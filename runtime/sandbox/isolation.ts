import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/*
 * How strongly this machine lets us isolate a sandboxed process. Probed once per process, never assumed:
 *
 *  - 'root-ns'  (running as root, `unshare` works): new network, PID and mount namespaces; every writable mount
 *               except the sandbox's temp dir is re-mounted read-only; the program runs as a fresh unprivileged
 *               uid (so RLIMIT_NPROC binds, root-owned files and other processes' /proc entries are closed);
 *               a fresh /proc shows only the sandbox's own processes. Killing `unshare` kills the whole PID
 *               namespace, so even a child that left the process group dies.
 *  - 'user-ns'  (not root, unprivileged user namespaces allowed): user + network + PID + mount namespaces, the
 *               same read-only re-mounts, but no uid change (the program is "root" only inside its namespace).
 *  - 'rlimit'   (fallback, e.g. containers that forbid unshare): rlimits and a process group only. Network is NOT
 *               isolated and writes outside the temp dir are only stopped by file permissions. The level is
 *               reported on every result so a caller can refuse to run untrusted code at this level.
 *
 * AGENTFORGE_SANDBOX_ISOLATION=root-ns|user-ns|rlimit forces a level for the process; SandboxSpec.isolation per call
 * (the tests use it to exercise the fallback).
 */
export type IsolationLevel = 'root-ns' | 'user-ns' | 'rlimit';

const NS_FLAGS = ['--net', '--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private', '--mount-proc'];

let cached: IsolationLevel | undefined;

export function isolationLevel(): IsolationLevel {
  if (cached) return cached;
  const forced = process.env.AGENTFORGE_SANDBOX_ISOLATION;
  if (forced === 'root-ns' || forced === 'user-ns' || forced === 'rlimit') return (cached = forced);
  if (forced) throw new Error(`AGENTFORGE_SANDBOX_ISOLATION=${forced}: expected root-ns, user-ns or rlimit`);
  cached = probe();
  return cached;
}

function works(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000, env: {} });
  return r.status === 0;
}

function probe(): IsolationLevel {
  const isRoot = process.getuid?.() === 0;
  if (isRoot && works('/usr/bin/unshare', [...NS_FLAGS, '/bin/true']) && works('/usr/bin/setpriv', ['--version'])) return 'root-ns';
  if (works('/usr/bin/unshare', ['--user', '--map-root-user', ...NS_FLAGS, '/bin/true'])) return 'user-ns';
  return 'rlimit';
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

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface RlimitValues { cpuSeconds: number; memoryBytes: number; fileSizeBytes: number; processes: number; openFiles: number }

/*
 * The wrapper script. In namespace mode it runs as root of the new mount namespace: it keeps the work dir writable
 * by bind-mounting it on itself and re-mounts every other writable mount read-only. Then it sets the rlimits with
 * shell builtins (no extra exec: the sandbox overhead is dominated by process starts) and runs the program, as the
 * sandbox uid in root-ns mode. The shell stays as PID 1 of the namespace (the program is its child, so it keeps
 * normal signal semantics) and exits with the program's status: 128+N when signal N killed it (sandbox.ts decodes
 * it). Soft CPU limit → SIGXCPU; the hard one a second later is the kernel's SIGKILL backstop.
 */
function script(level: IsolationLevel, dir: string, uid: number | null, l: RlimitValues): string {
  const lines = ['set -e'];
  if (level !== 'rlimit') {
    lines.push(`mount --bind ${q(dir)} ${q(dir)}`);
    for (const m of writableMounts()) if (m !== dir) lines.push(`mount -o remount,bind,ro ${q(m)} 2>/dev/null || true`);
    lines.push(`cd ${q(dir)}`);
  }
  lines.push('unset PWD OLDPWD', // the shell exported them; the program gets exactly the caller's environment
    `ulimit -S -t ${l.cpuSeconds}; ulimit -H -t ${l.cpuSeconds + 1}`,
    `ulimit -v ${Math.ceil(l.memoryBytes / 1024)}; ulimit -f ${Math.ceil(l.fileSizeBytes / 512)}`,
    `ulimit -p ${l.processes}; ulimit -n ${l.openFiles}; ulimit -c 0`, 'set +e');
  lines.push(uid === null ? '"$@"' : `/usr/bin/setpriv --reuid=${uid} --regid=${uid} --clear-groups --no-new-privs -- "$@"`);
  lines.push('exit $?');
  return lines.join('\n');
}

/** The argv that runs `program` under the given level and limits. */
export function wrapArgv(level: IsolationLevel, dir: string, uid: number | null, limits: RlimitValues, program: string[]): string[] {
  const sh = ['/bin/sh', '-c', script(level, dir, uid, limits), 'sandbox', ...program];
  if (level === 'rlimit') return sh;
  const userns = level === 'user-ns' ? ['--user', '--map-root-user'] : [];
  return ['/usr/bin/unshare', ...userns, ...NS_FLAGS, ...sh];
}
