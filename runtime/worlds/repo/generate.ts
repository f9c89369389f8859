import { Rng } from '../../engine/rng.ts';
import { runSandboxed } from '../../sandbox/sandbox.ts';
import { BUG_KINDS, lit, makeUnit, UNIT_TEMPLATES, type Bug, type BugKind, type Unit } from './units.ts';

/*
 * Generated repositories with one seeded bug. Repo `seed` = a package `pkg/` of 1–4 modules (1–3 units each) and
 * `pkg/util.py`, a visible test file per module, a README; 4–10 Python files. One unit gets one bug of the kind
 * asked for. Hidden tests = calls of the bugged function on fresh inputs, kept out of the repository.
 *
 * Every repo is checked before it becomes a task (checkRepos, one sandbox run per batch): the clean repo must pass
 * every visible and hidden test — otherwise it is rejected with the failing test and its error — and the seeded
 * bug must fail at least one hidden test (else it is rejected as unobservable). The first failing hidden call
 * becomes the issue text ("`mean([])` raises ZeroDivisionError …, expected 0").
 */

export interface Case { test: string; call: string; expected: string }

export interface RepoDraft {
  seed: number;
  kind: BugKind;
  files: Record<string, string>;
  buggyFiles: Record<string, string>;
  bug: Bug & { path: string; unit: string };
  visible: Case[];
  /** Hidden-test candidates; checkRepos picks those that expose the bug plus some that do not. */
  candidates: Case[];
}

const MODULES = ['stats', 'text', 'pricing', 'shapes', 'inventory', 'calendar', 'scores', 'orders', 'labels', 'metrics'];
const UTIL = 'def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n\n\ndef scale(x, k):\n    return x * k\n\n\ndef shift(x, k):\n    return x + k\n';

function callOf(u: Unit, args: unknown[]): string {
  return `${u.name}(${args.map((a) => lit(a as never)).join(', ')})`;
}

function cases(u: Unit, r: Rng, n: number, test: string, avoid = new Set<string>()): Case[] {
  const out: Case[] = [];
  for (let tries = 0; out.length < n && tries < 100; tries++) {
    const args = u.input(r);
    const call = callOf(u, args);
    if (avoid.has(call)) continue;
    avoid.add(call);
    out.push({ test, call, expected: lit(u.f(...args)) });
  }
  return out;
}

function moduleSource(units: Unit[]): string {
  const header = [...new Set(units.flatMap((u) => u.header))];
  return `${header.length ? `${header.join('\n')}\n\n\n` : ''}${units.map((u) => u.source).join('\n\n')}`;
}

/**
 * A deleting bug (missing case, missing return) leaves nothing to find for the fix's `old` text: it takes the line
 * before it along, so the reference fix is an edit like any other.
 */
function withContext(bug: Bug, text: string): Bug {
  if (bug.to !== '') return bug;
  const at = text.indexOf(bug.from);
  const lineStart = text.lastIndexOf('\n', at - 2) + 1;
  const before = text.slice(lineStart, at);
  return { ...bug, from: before + bug.from, to: before };
}

/** Repo `seed` with a bug of `kind` (deterministic). */
export function draftRepo(seed: number, kind: BugKind = BUG_KINDS[seed % BUG_KINDS.length]): RepoDraft {
  const r = Rng.derive('repo', seed);
  const withKind = UNIT_TEMPLATES.filter((t) => makeUnit(t, new Rng(0)).bugs.some((b) => b.kind === kind));
  const bugged = r.pick(withKind);
  const nModules = r.int(1, 4);
  const others = r.sample(UNIT_TEMPLATES.filter((t) => t !== bugged), r.int(nModules - 1, Math.min(3 * nModules - 1, 6)));
  const units = [bugged, ...others].map((t) => makeUnit(t, r));
  const names = new Set<string>();
  for (const u of units) while (names.has(u.name)) u.name += '_2';
  units.forEach((u) => names.add(u.name));
  const modules = r.sample(MODULES, nModules);
  const byModule = new Map<string, Unit[]>(modules.map((m) => [m, []]));
  units.forEach((u, i) => byModule.get(modules[i < nModules ? i : r.int(0, nModules - 1)])!.push(u));
  const files: Record<string, string> = { 'README.md': `# ${modules.join(', ')}\n\nSmall helpers. Run the tests with the run_tests tool.\n`, 'pkg/__init__.py': '', 'pkg/util.py': UTIL };
  const visible: Case[] = [];
  let bugPath = '';
  for (const [m, us] of byModule) {
    files[`pkg/${m}.py`] = moduleSource(us);
    if (us.includes(units[0])) bugPath = `pkg/${m}.py`;
    const tests: string[] = [];
    for (const u of us) {
      const cs = cases(u, r, 2, `tests/test_${m}.py::test_${u.name}`);
      visible.push(...cs);
      tests.push(`def test_${u.name}():\n${cs.map((c) => `    assert ${c.call} == ${c.expected}`).join('\n')}\n`);
    }
    files[`tests/test_${m}.py`] = `from pkg.${m} import ${us.map((u) => u.name).join(', ')}\n\n\n${tests.join('\n\n')}`;
  }
  const target = units[0];
  const text = files[bugPath];
  const bug = withContext(target.bugs.find((b) => b.kind === kind)!, text);
  const buggyFiles = { ...files, [bugPath]: text.replace(bug.from, bug.to) };
  const candidates = cases(target, Rng.derive('repo-hidden', seed), 12, `hidden::test_${target.name}`, new Set(visible.map((c) => c.call)));
  return { seed, kind, files, buggyFiles, bug: { ...bug, path: bugPath, unit: target.name }, visible, candidates };
}

/** What the check says about one draft. */
export interface RepoCheck {
  ok: boolean;
  /** Why it was rejected (null when accepted). */
  reason: string | null;
  /** Indices into candidates chosen as hidden tests (failing ones first). */
  hidden: number[];
  /** The first failing hidden call with what the buggy code did, for the issue text. */
  symptom: { call: string; expected: string; got: string } | null;
}

/*
 * The trusted checker: imports each variant of each repo in a fresh package namespace and evaluates the calls
 * (2 s alarm per call), printing one JSON line per repo. Generated code only, never a model's; it still runs in
 * the sandbox.
 */
const CHECKER = String.raw`
import json, os, signal, sys, importlib

class Timeout(Exception):
    pass

def _alarm(*_):
    raise Timeout("call took longer than 2 s")

signal.signal(signal.SIGALRM, _alarm)

def load(root, files):
    for path, text in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    importlib.invalidate_caches()
    ns = {}
    try:
        for path in sorted(files):
            if path.startswith("pkg/") and path.endswith(".py") and not path.endswith("__init__.py"):
                mod = importlib.import_module("pkg." + path[4:-3])
                ns.update({k: v for k, v in vars(mod).items() if not k.startswith("_")})
    finally:
        sys.path.remove(root)
    return ns

def run(ns, call, expected):
    signal.alarm(2)
    try:
        got = eval(call, dict(ns))
        return got == eval(expected), repr(got)[:200]
    except BaseException as e:
        return False, f"raises {type(e).__name__}: {e}"[:200]
    finally:
        signal.alarm(0)

with open("repos.json") as f:
    repos = json.load(f)
for i, repo in enumerate(repos):
    out = {"clean_failures": [], "buggy": []}
    try:
        ns = load(f"r{i}/clean", repo["files"])
        for c in repo["visible"] + repo["candidates"]:
            ok, got = run(ns, c["call"], c["expected"])
            if not ok:
                out["clean_failures"].append([c["test"], c["call"], got])
        ns = load(f"r{i}/buggy", repo["buggyFiles"])
        out["buggy"] = [run(ns, c["call"], c["expected"]) for c in repo["candidates"]]
    except BaseException as e:
        out["error"] = f"{type(e).__name__}: {e}"[:300]
    print(json.dumps(out), flush=True)
`;

/** Checks drafts in one sandbox run; a result per draft, in order. */
export async function checkRepos(drafts: RepoDraft[], hiddenCount = 4): Promise<RepoCheck[]> {
  if (!drafts.length) return [];
  const r = await runSandboxed({
    argv: ['/usr/bin/python3', '-I', 'check.py'], files: { 'check.py': CHECKER, 'repos.json': JSON.stringify(drafts) },
    limits: { wallMs: 30_000 + 200 * drafts.length, cpuSeconds: 20 + Math.ceil(drafts.length / 10), outputBytes: 16 << 20, memoryBytes: 1 << 30 },
  });
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
  return drafts.map((d, i) => {
    const reject = (reason: string): RepoCheck => ({ ok: false, reason, hidden: [], symptom: null });
    if (!lines[i]) return reject(`the check did not finish (${r.reason})`);
    const o = JSON.parse(lines[i]) as { clean_failures: [string, string, string][]; buggy: [boolean, string][]; error?: string };
    if (o.error) return reject(`the repo does not import: ${o.error}`);
    if (o.clean_failures.length) {
      const [test, call, got] = o.clean_failures[0];
      return reject(`tests fail before the bug is seeded: ${test}: ${call} gave ${got} (${o.clean_failures.length} failing)`);
    }
    const failing = o.buggy.map((b, k) => (b[0] ? -1 : k)).filter((k) => k >= 0);
    if (!failing.length) return reject(`the seeded ${d.kind} bug (${d.bug.path}: ${JSON.stringify(d.bug.from)} → ${JSON.stringify(d.bug.to)}) changes no hidden test`);
    const passing = o.buggy.map((b, k) => (b[0] ? k : -1)).filter((k) => k >= 0);
    const hidden = [...failing.slice(0, Math.max(2, hiddenCount - passing.length)), ...passing].slice(0, hiddenCount).sort((a, b) => a - b);
    const c = d.candidates[failing[0]];
    return { ok: true, reason: null, hidden, symptom: { call: c.call, expected: c.expected, got: o.buggy[failing[0]][1] } };
  });
}

export function issueText(d: RepoDraft, c: RepoCheck): string {
  const s = c.symptom!;
  const what = s.got.startsWith('raises ') ? s.got : `returns ${s.got}`;
  return `Bug report: \`${s.call}\` ${what}, but it should return ${s.expected}. ` +
    'Find the cause in the repository, fix it with edit, make sure the tests pass, then submit.';
}
