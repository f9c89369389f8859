import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probeIsolation, ALLOW_ENV, type IsolationLevel } from './isolation.ts';
import { runSandboxed, SandboxRefusedError } from './sandbox.ts';

/*
 * The sandbox attacking itself: at every level it can choose on this machine, a program tries to signal every
 * process (kill(-1)), its parent and a sentinel on the host, to write and read outside its dir, to re-mount the
 * file system writable and to connect to a server on the host; the unisolated level must refuse by default.
 * Used by test/sandbox/security.test.ts and bench/reliability/sandbox.ts.
 *
 * Signals are only ever sent from inside a PID namespace that was shown to be one first: a proof program must
 * report a PID namespace other than ours and see no more than a handful of processes, and the attack program
 * re-checks its namespace and exits before any signal when it is the host's.
 */
export interface Trial {
  level: IsolationLevel;
  attack: string;
  contained: boolean;
  detail: string;
}

export interface Containment {
  trials: Trial[];
  /** Levels not tried, with the reason (e.g. user namespaces unavailable here). */
  skipped: string[];
}

const PY = '/usr/bin/python3';

/** Prints this program's PID namespace and the processes it can see. */
const PROOF = `import json, os
print(json.dumps({"ns": os.readlink("/proc/self/ns/pid"), "pid": os.getpid(), "procs": [int(p) for p in os.listdir("/proc") if p.isdigit()]}))`;

/** argv: host pid namespace, port, sentinel pid, then paths to write outside the dir, '--read', paths to read. */
const ATTACK = `import json, os, signal, socket, subprocess, sys
host_ns, port, sentinel = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rest = sys.argv[4:]
writes, reads = rest[:rest.index("--read")], rest[rest.index("--read") + 1:]
if os.readlink("/proc/self/ns/pid") == host_ns:
    print(json.dumps({"isolated": False}))
    sys.exit(3)
uid = os.getuid()
outer = uid
for line in open("/proc/self/uid_map"):
    inside, outside, count = map(int, line.split())
    if inside <= uid < inside + count:
        outer = outside + uid - inside
res = {"isolated": True, "uid": uid, "outer_uid": outer}
def attempt(name, fn):
    try:
        fn()
        res[name] = "succeeded"
    except OSError as e:
        res[name] = "blocked: " + (e.strerror or type(e).__name__)
for p in writes:
    attempt("write " + p, lambda p=p: open(p, "w").write("escaped"))
for p in reads:
    attempt("read " + p, lambda p=p: open(p, "rb").read(1))
attempt("tcp connect", lambda: socket.create_connection(("127.0.0.1", port), timeout=2).close())
r = subprocess.run(["mount", "-o", "remount,bind,rw", "/"], capture_output=True, text=True)
res["remount / read-write"] = "succeeded" if r.returncode == 0 else "blocked: " + (r.stderr.strip().splitlines() or ["?"])[0]
attempt("kill(host sentinel)", lambda: os.kill(sentinel, signal.SIGKILL))
attempt("kill(getppid())", lambda: os.kill(os.getppid(), signal.SIGKILL))
attempt("kill(-1)", lambda: os.kill(-1, signal.SIGKILL))
print(json.dumps(res))
`;

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function listen(): Promise<{ server: Server; port: number; accepted: () => number }> {
  let n = 0;
  const server = createServer((s) => { n += 1; s.end(); });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, port: (server.address() as { port: number }).port, accepted: () => n };
}

/** The namespace levels this machine can run, strongest first (a root caller can run both). */
export function namespaceLevels(): IsolationLevel[] {
  return probeIsolation().isRoot ? ['root-ns', 'user-ns'] : ['user-ns'];
}

async function attackLevel(level: IsolationLevel, skipped: string[]): Promise<Trial[]> {
  const hostNs = readlinkSync('/proc/self/ns/pid');
  const proof = await runSandboxed({ argv: [PY, '-c', PROOF], isolation: level, limits: { wallMs: 10_000 } });
  if (proof.outcome === 'spawn_error' || (proof.outcome === 'nonzero_exit' && !proof.stdout)) {
    if (level !== probeIsolation().level) { skipped.push(`${level}: not available here (${proof.reason})`); return []; }
  }
  let seen: { ns: string; procs: number[] } | null = null;
  try { seen = JSON.parse(proof.stdout) as { ns: string; procs: number[] }; } catch { /* judged below */ }
  const own = !!seen && seen.ns !== hostNs && seen.procs.length <= 8;
  const nsTrial: Trial = { level, attack: 'own PID namespace (checked before any signal)', contained: own, detail: seen ? `${seen.ns}, ${seen.procs.length} processes visible` : proof.reason };
  if (!own) return [nsTrial]; // never send signals from a namespace that was not shown to be separate

  const sentinel = spawn('/bin/sleep', ['120'], { stdio: 'ignore', detached: true });
  const { server, port, accepted } = await listen();
  const stamp = `${process.pid}-${Date.now()}`;
  const writes = [join(tmpdir(), `agentforge-escape-${stamp}`), `/dev/shm/agentforge-escape-${stamp}`, join(process.cwd(), `agentforge-escape-${stamp}`), `/etc/agentforge-escape-${stamp}`];
  const reads = [join(process.cwd(), 'package.json'), '/etc/shadow'].filter((p) => existsSync(p));
  try {
    const r = await runSandboxed({ argv: [PY, '-c', ATTACK, hostNs, String(port), String(sentinel.pid), ...writes, '--read', ...reads], isolation: level, limits: { wallMs: 20_000 } });
    let res: Record<string, unknown> = {};
    try { res = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as Record<string, unknown>; } catch { /* judged below */ }
    const said = (k: string) => String(res[k] ?? `no report (${r.reason})`);
    const finished = res.isolated === true;
    const trials: Trial[] = [nsTrial];
    trials.push({ level, attack: 'never runs as root', contained: finished && typeof res.outer_uid === 'number' && res.outer_uid !== 0, detail: `uid ${String(res.uid)} inside, ${String(res.outer_uid)} outside` });
    for (const p of writes) trials.push({ level, attack: `write ${p}`, contained: !existsSync(p), detail: said(`write ${p}`) });
    for (const p of reads) trials.push({ level, attack: `read ${p}`, contained: said(`read ${p}`).startsWith('blocked'), detail: said(`read ${p}`) });
    trials.push({ level, attack: 'tcp connect to a host server', contained: accepted() === 0 && finished, detail: said('tcp connect') });
    trials.push({ level, attack: 'remount / read-write', contained: said('remount / read-write').startsWith('blocked'), detail: said('remount / read-write') });
    const sentinelAlive = alive(sentinel.pid!);
    trials.push({ level, attack: 'kill(host sentinel)', contained: sentinelAlive && finished, detail: said('kill(host sentinel)') });
    // The caller (this process) is alive to judge; the program finished, so its namespace's init survived too.
    trials.push({ level, attack: 'kill(getppid())', contained: sentinelAlive && finished, detail: said('kill(getppid())') });
    trials.push({ level, attack: 'kill(-1)', contained: sentinelAlive && finished, detail: said('kill(-1)') });
    return trials;
  } finally {
    server.close();
    try { process.kill(sentinel.pid!, 'SIGKILL'); } catch { /* gone */ }
    for (const p of writes) rmSync(p, { force: true });
  }
}

/** The rlimit level is refused unless the caller opted in, and names the risk and the opt-in when it refuses. */
async function refusal(): Promise<Trial[]> {
  const trials: Trial[] = [];
  const saved = process.env[ALLOW_ENV];
  delete process.env[ALLOW_ENV];
  try {
    await runSandboxed({ argv: ['/bin/true'], isolation: 'rlimit' });
    trials.push({ level: 'rlimit', attack: 'refused by default', contained: false, detail: 'ran without the opt-in' });
  } catch (e) {
    const ok = e instanceof SandboxRefusedError && e.message.includes(ALLOW_ENV);
    trials.push({ level: 'rlimit', attack: 'refused by default', contained: ok, detail: (e as Error).message.slice(0, 160) });
  } finally {
    if (saved !== undefined) process.env[ALLOW_ENV] = saved;
  }
  return trials;
}

/*
 * A machine where no namespace can be made (as in Docker's default seccomp profile), simulated with a real kernel:
 * a child process in a user namespace whose user and network namespace limits are 0. Its sandbox must pick
 * 'rlimit' and refuse. Needs `unshare --user` here; skipped otherwise.
 */
export function refusalWithoutNamespaces(): Trial | string {
  const sandboxModule = fileURLToPath(new URL('./sandbox.ts', import.meta.url));
  if (spawnSync('/usr/bin/unshare', ['--user', '--map-root-user', '/bin/true']).status !== 0) return 'no-namespace machine: unshare --user unavailable here';
  const dir = mkdtempSync(join(tmpdir(), 'agentforge-nons-'));
  try {
    const script = join(dir, 'child.mts');
    writeFileSync(script, `import { runSandboxed } from ${JSON.stringify(sandboxModule)};
import { probeIsolation } from ${JSON.stringify(sandboxModule.replace(/sandbox\.ts$/, 'isolation.ts'))};
const out: Record<string, unknown> = { probe: probeIsolation() };
try { await runSandboxed({ argv: ['/bin/true'] }); out.ran = true; } catch (e) { out.refused = (e as Error).name + ': ' + (e as Error).message; }
console.log(JSON.stringify(out));
`);
    const env = { ...process.env };
    delete env[ALLOW_ENV];
    delete env.AGENTFORGE_SANDBOX_ISOLATION;
    const sh = `echo 0 > /proc/sys/user/max_user_namespaces && echo 0 > /proc/sys/user/max_net_namespaces && exec "$@"`;
    const r = spawnSync('/usr/bin/unshare', ['--user', '--map-root-user', '/bin/sh', '-c', sh, 'sh', process.execPath, '--import', 'tsx', script], { encoding: 'utf8', env, cwd: process.cwd(), timeout: 60_000 });
    let out: { probe?: { level: string }; refused?: string; ran?: boolean } = {};
    try { out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? ''); } catch { /* judged below */ }
    const contained = out.probe?.level === 'rlimit' && !out.ran && !!out.refused?.startsWith('SandboxRefusedError') && out.refused.includes(ALLOW_ENV);
    return { level: 'rlimit', attack: 'machine without namespaces refuses', contained, detail: (out.refused ?? (r.stderr || r.stdout)).slice(0, 200) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every attack at every namespace level available here, plus the fallback's refusal. */
export async function containmentTrials(opts: { withoutNamespaces?: boolean } = {}): Promise<Containment> {
  const skipped: string[] = [];
  const trials: Trial[] = [];
  if (probeIsolation().level !== 'rlimit') for (const level of namespaceLevels()) trials.push(...await attackLevel(level, skipped));
  else skipped.push(`namespace levels: none available here (${probeIsolation().failures.join('; ')}); only the refusal is tested`);
  trials.push(...await refusal());
  if (opts.withoutNamespaces) {
    const t = refusalWithoutNamespaces();
    if (typeof t === 'string') skipped.push(t); else trials.push(t);
  }
  return { trials, skipped };
}
