import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import type { Task } from '../../../schemas/task.ts';
import type { Trajectory } from '../../../schemas/trajectory.ts';
import { runProven, type HarnessSpec } from '../../sandbox/harness.ts';
import { PYTEST_SHIM } from '../../sandbox/pytest-shim.ts';
import { precondition, policyViolation, notFound } from '../base.ts';
import { hashValue } from '../hash.ts';
import { splitOf, taskId } from '../tasks.ts';
import { currentRunner, ExecWorld, mustRethrow, TOOL_LIMITS, VERIFY_LIMITS, type ExecTaskOptions, type ExecVerdict, type ExecWorldDef } from '../code/exec.ts';
import { DATA_DIR } from '../code/spec.ts';
import { episodeReasons } from '../code/index.ts';
import { checkRepos, draftRepo, issueText, type Case, type RepoDraft } from './generate.ts';
import { unifiedDiff } from './diff.ts';
import { BUG_KINDS, type BugKind } from './units.ts';

/*
 * The repo-repair world (SWE-style): a small repository with one seeded bug and an issue describing the symptom.
 * Tools: list_files, read_file, search, edit (exact string replace, tests read-only), run_tests (the visible
 * suite), submit. The agent sees only the repository's files — never the hidden tests, the reference fix or any
 * history (there is no .git; paths are looked up in the file map, so "../" or absolute paths find nothing).
 * Verdict: the edits are replayed on a fresh copy (the stored patch is not trusted), then the hidden tests and the
 * whole visible suite run in the harness (cases mode): pass = all of them, score = the share that passed.
 * QuixBugs programs come wrapped as one-file repositories, held-out only (QuixBugs is an evaluation benchmark).
 */

export interface RepoSpec {
  source: string;
  files: Record<string, string>;
  visible: Case[];
  hidden: Case[];
  /** QuixBugs: the suite runs in the harness's module mode (its own pytest-style tests). */
  quixbugs?: { name: string; test: string; assets: Record<string, string> };
  kind: string;
  fix: { path: string; from: string; to: string };
}

export interface RepoState { spec: RepoSpec; files: Record<string, string>; submitted: boolean }

/* ------------------------------------------------ specs ------------------------------------------------ */

const QB = join(DATA_DIR, 'quixbugs');
let qbNames: string[] | undefined;
export function quixbugsNames(): string[] {
  return (qbNames ??= readdirSync(join(QB, 'python_testcases')).filter((f) => /^test_\w+\.py$/.test(f)).map((f) => f.slice(5, -3)).sort());
}

function quixbugsSpec(name: string): RepoSpec {
  const read = (p: string) => readFileSync(join(QB, p), 'utf8');
  const buggy = read(`python_programs/${name}.py`);
  const fixed = read(`correct_python_programs/${name}.py`);
  const assets: Record<string, string> = {
    'python_programs/node.py': read('python_programs/node.py'), 'python_testcases/node.py': read('python_testcases/node.py'),
    'python_testcases/load_testdata.py': read('python_testcases/load_testdata.py'), 'pytest.py': PYTEST_SHIM,
  };
  try { assets[`json_testcases/${name}.json`] = read(`json_testcases/${name}.json`); } catch { /* graph programs: tests inline */ }
  const files: Record<string, string> = { [`${name}.py`]: buggy };
  if (/\bnode\b|Node\(/.test(buggy)) files['node.py'] = assets['python_programs/node.py'];
  return {
    source: `quixbugs/${name}`, files, visible: [], hidden: [], kind: 'quixbugs',
    quixbugs: { name, test: read(`python_testcases/test_${name}.py`), assets }, fix: { path: `${name}.py`, from: buggy, to: fixed },
  };
}

function generatedSpec(draft: RepoDraft, hidden: number[]): RepoSpec {
  return {
    source: `gen/${draft.seed}`, files: draft.buggyFiles, visible: draft.visible, hidden: hidden.map((i) => draft.candidates[i]), kind: draft.kind,
    fix: { path: draft.bug.path, from: draft.bug.to, to: draft.bug.from },
  };
}

/** The spec of a task: source:gen/<seed> (+ hidden:<indices>) or source:quixbugs/<name>. */
export function repoSpecOf(task: Pick<Task, 'id' | 'tags'>): RepoSpec {
  const source = task.tags.find((t) => t.startsWith('source:'))?.slice(7);
  const q = source && /^quixbugs\/(\w+)$/.exec(source);
  if (q) return quixbugsSpec(q[1]);
  const g = source && /^gen\/(\d+)$/.exec(source);
  const hidden = task.tags.find((t) => t.startsWith('hidden:'))?.slice(7).split(',').map(Number);
  const kind = task.tags.find((t) => t.startsWith('bug:'))?.slice(4) as BugKind | undefined;
  if (!g || !hidden || !kind) throw new Error(`repo task ${task.id}: needs source:gen/<seed>, bug:<kind> and hidden:<i,…> tags (or source:quixbugs/<name>)`);
  return generatedSpec(draftRepo(Number(g[1]), kind), hidden);
}

/* ------------------------------------------------ tests ------------------------------------------------ */

/** The harness spec that runs `cases` against the repository `files` (the candidate process imports the package). */
function repoHarness(files: Record<string, string>, cases: Case[]): HarnessSpec {
  const mods = Object.keys(files).filter((p) => /^pkg\/\w+\.py$/.test(p) && !p.endsWith('__init__.py')).sort();
  const program = `import sys\nsys.path.insert(0, '.')\n${mods.map((p) => `from pkg.${p.slice(4, -3)} import *`).join('\n')}\n`;
  return { mode: 'script', program, setup: '', test: '', names: [], freeNames: true, checkWith: null, cases: cases.map((c) => `assert ${c.call} == ${c.expected}`) };
}

interface SuiteResult { passed: number; total: number; failed: string[]; outcome: string; reason: string }

async function runSuite(spec: RepoSpec, files: Record<string, string>, cases: Case[], limits = TOOL_LIMITS, signal?: AbortSignal): Promise<SuiteResult> {
  if (spec.quixbugs) {
    const q = spec.quixbugs;
    const h: HarnessSpec = { mode: 'module', program: files[`${q.name}.py`] ?? '', testModule: `test_${q.name}`, programModule: `python_programs.${q.name}`, name: q.name };
    const r = await runProven(h, { ...q.assets, [`python_programs/${q.name}.py`]: files[`${q.name}.py`] ?? '', [`python_testcases/test_${q.name}.py`]: q.test },
      { limits, signal, runner: currentRunner() });
    return { passed: r.passed ? 1 : 0, total: 1, failed: r.passed ? [] : [`test_${q.name}.py`], outcome: r.outcome, reason: r.reason };
  }
  const r = await runProven(repoHarness(files, cases), files, { limits, signal, runner: currentRunner() });
  const ok = new Set(r.casesPassed ?? []);
  const failed = [...new Set(cases.filter((_, i) => !ok.has(i)).map((c) => c.test))];
  // "case 3: AssertionError" → the test and the call it made (the visible test files show them anyway)
  const reason = r.reason.replace(/case (\d+): /, (_, i) => (cases[Number(i)] ? `${cases[Number(i)].test}: assert ${cases[Number(i)].call} == ${cases[Number(i)].expected}: ` : ''));
  return { passed: ok.size, total: cases.length, failed, outcome: r.outcome, reason };
}

/* ------------------------------------------------ tools ------------------------------------------------ */

const file = (s: RepoState, path: string): string => {
  const text = Object.hasOwn(s.files, path) ? s.files[path] : undefined;
  return text ?? notFound(`no file ${JSON.stringify(path)} in the repository (list_files shows them)`);
};

const tools = [
  {
    name: 'list_files', mutates: false, description: 'List the repository\'s files.', args: z.object({}),
    run: (s: RepoState) => ({ files: Object.keys(s.files).sort() }),
  },
  {
    name: 'read_file', mutates: false, description: 'Read one file of the repository.', args: z.object({ path: z.string().min(1) }),
    run: (s: RepoState, a: { path: string }) => ({ path: a.path, content: file(s, a.path) }),
  },
  {
    name: 'search', mutates: false, description: 'Find lines containing a string in the repository\'s files.', args: z.object({ query: z.string().min(1).max(200) }),
    run: (s: RepoState, a: { query: string }) => {
      const matches: Array<{ path: string; line: number; text: string }> = [];
      for (const [path, text] of Object.entries(s.files).sort()) {
        text.split('\n').forEach((l, i) => { if (l.includes(a.query) && matches.length < 50) matches.push({ path, line: i + 1, text: l.slice(0, 200) }); });
      }
      return { matches };
    },
  },
  {
    name: 'edit', mutates: true, description: 'Replace one exact occurrence of `old` with `new` in a file (tests are read-only).',
    args: z.object({ path: z.string().min(1), old: z.string().min(1), new: z.string() }),
    run: (s: RepoState, a: { path: string; old: string; new: string }) => {
      if (a.path.startsWith('tests/')) policyViolation('the tests are read-only: fix the code, not the tests');
      if (s.submitted) precondition('the fix was already submitted');
      const text = file(s, a.path);
      const n = text.split(a.old).length - 1;
      if (n !== 1) precondition(`\`old\` occurs ${n} times in ${a.path}; it must occur exactly once (copy it from read_file, with more context if needed)`);
      s.files[a.path] = text.replace(a.old, () => a.new);
      return { path: a.path, edited: true };
    },
  },
  {
    name: 'run_tests', mutates: false, description: 'Run the repository\'s test suite; returns passed/total and the failing tests.', args: z.object({}),
    run: async (s: RepoState, _a: unknown, ctx: { signal?: AbortSignal }) => {
      const r = await runSuite(s.spec, s.files, s.spec.visible, TOOL_LIMITS, ctx.signal);
      return { passed: r.passed, total: r.total, failed: r.failed, detail: r.reason };
    },
  },
  {
    name: 'submit', mutates: true, description: 'Submit the repository as it is now as your fix.', args: z.object({}),
    run: (s: RepoState) => {
      if (s.submitted) precondition('already submitted');
      s.submitted = true;
      return { submitted: true, files_changed: Object.keys(s.files).filter((p) => s.files[p] !== s.spec.files[p]).sort() };
    },
  },
];

const POLICY = 'You maintain a small Python repository. Read the bug report, find the cause with the tools, fix it with ' +
  'edit (the tests are read-only), check with run_tests, then call submit: it ends the episode.';

/* ------------------------------------------------ tasks ------------------------------------------------ */

const goalOf = (spec: RepoSpec): Task['goal'] => ({
  final_state_hash: hashValue({ source: spec.source, fix: spec.fix }), required_outputs: [], must_refuse: false,
  gold_actions: [{ name: 'edit', arguments: { path: spec.fix.path, old: spec.fix.from, new: spec.fix.to } }, { name: 'run_tests', arguments: {} }, { name: 'submit', arguments: {} }],
  reference_answer: `Fixed the ${spec.kind.replace(/_/g, ' ')} bug in ${spec.fix.path}.`,
});

/*
 * Task i: generated repo seed derive(seed, i) with bug kind BUG_KINDS[i mod 10]; drafts are checked in batches,
 * rejected ones reported through onReject and skipped. Held-out tasks also include QuixBugs (every 4th task until
 * the 40 programs are used); the split of a generated repo is a hash of its issue text.
 */
export async function makeRepoTasks(o: ExecTaskOptions & { kinds?: BugKind[] }): Promise<Task[]> {
  const { seed, n, split = 'train', heldoutFraction = 0.2 } = o;
  const kinds = o.kinds?.length ? o.kinds : [...BUG_KINDS];
  const out: Task[] = [];
  const qb = split === 'heldout' ? quixbugsNames() : [];
  let q = 0, i = 0;
  const push = (instruction: string, spec: RepoSpec, tags: string[], taskSeed: number) => {
    out.push({ id: taskId('repo', split, out.length), world: 'repo', instruction, hidden_facts: {}, seed: taskSeed, goal: goalOf(spec), difficulty: 1, split, tags });
  };
  for (let round = 0; out.length < n; round++) {
    if (round > 50) throw new Error(`repo: cannot make ${n} ${split} tasks (seed ${seed}): too many rejected repos`);
    const want = n - out.length;
    const drafts: RepoDraft[] = [];
    for (let k = 0; k < Math.ceil(want / (split === 'train' ? 0.75 : 0.2)) + 4; k++, i++) {
      drafts.push(draftRepo(((seed * 1_000_003 + i) >>> 0) % 2_000_000_000, kinds[i % kinds.length]));
    }
    const checks = await checkRepos(drafts);
    for (const [k, d] of drafts.entries()) {
      if (out.length >= n) break;
      if (split === 'heldout' && q < qb.length && out.length % 4 === 0) {
        const spec = quixbugsSpec(qb[q++]);
        push(`Bug report: \`${spec.quixbugs!.name}\` in ${spec.quixbugs!.name}.py gives wrong results on some inputs (a one-line bug). Fix it with edit, check with run_tests, then submit.`, spec, [`source:${spec.source}`, 'kind:quixbugs', 'bug:quixbugs'], 0);
      }
      const c = checks[k];
      if (!c.ok) { o.onReject?.(`repo seed ${d.seed} (${d.kind}): ${c.reason}`); continue; }
      const instruction = issueText(d, c);
      if (out.length >= n || splitOf('repo', `${instruction}#${d.seed}`, heldoutFraction) !== split) continue;
      push(instruction, generatedSpec(d, c.hidden), [`source:gen/${d.seed}`, `bug:${d.kind}`, `hidden:${c.hidden.join(',')}`, `kind:${d.kind}`], d.seed);
    }
  }
  return out;
}

/* ------------------------------------------------ verdict ------------------------------------------------ */

/** Replays the trajectory's edits on a fresh copy: the repository it submitted (the stored patch is not trusted). */
export function replayEdits(traj: Pick<Trajectory, 'messages'>, spec: RepoSpec): { files: Record<string, string>; submitted: boolean } {
  const w = new ExecWorld(repoWorld);
  const s: RepoState = { spec, files: { ...spec.files }, submitted: false };
  w.load(s);
  for (const m of traj.messages) for (const c of m.tool_calls) if ((c.name === 'edit' || c.name === 'submit') && c.arguments) w.call(c.name, c.arguments);
  return { files: s.files, submitted: s.submitted };
}

async function verifyRepo(traj: Trajectory, task: Task, signal?: AbortSignal): Promise<ExecVerdict> {
  const reasons = episodeReasons(traj, task);
  let score = 0;
  try {
    const spec = repoSpecOf(task);
    const { files, submitted } = replayEdits(traj, spec);
    if (!submitted) reasons.push('not_submitted: the episode never called submit');
    const all = [...spec.hidden, ...spec.visible];
    const r = await runSuite(spec, files, all, VERIFY_LIMITS, signal);
    score = r.total ? r.passed / r.total : 0;
    if (r.passed < r.total) reasons.push(`tests_fail: ${r.passed}/${r.total} passed (hidden and visible); failing ${r.failed.slice(0, 3).join(', ')} (${r.outcome}: ${r.reason})`);
  } catch (e) {
    if (mustRethrow(e, signal)) throw e;
    reasons.push(`verify_failed: ${(e as Error).message}`);
  }
  return { trajectory_id: traj.id, task_id: traj.task_id, world: traj.world, pass: reasons.length === 0, reasons, final_state_hash: null, score };
}

export const repoWorld: ExecWorldDef<RepoState> = {
  name: 'repo', policy: POLICY, tools,
  init: (task) => { const spec = repoSpecOf(task); return { spec, files: { ...spec.files }, submitted: false }; },
  snapshot: (s) => ({ files: s.files, submitted: s.submitted }),
  makeTasks: makeRepoTasks,
  verify: verifyRepo,
  patch: (s) => unifiedDiff(s.spec.files, s.files),
  // Until submit ended the episode, the tiny model, which had learnt submit but not the closing sentence, repeated
  // submit until the loop guard cut it off (92 of 100 held-out episodes, all 19 successes among them), scoring 0 on
  // format and efficiency, so the shaping terms pushed RL towards answering without submitting.
  done: (s) => s.submitted,
};
