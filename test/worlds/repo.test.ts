import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Message } from '../../schemas/message.ts';
import type { Task } from '../../schemas/task.ts';
import { scriptedTeacher } from '../../runtime/agent/scripted.ts';
import { execPlan, REPO_PATHS } from '../../runtime/agent/code-teacher.ts';
import { generateTasks, openWorld } from '../../runtime/worlds/index.ts';
import { sayCalls, worldEpisode } from './helpers.ts';
import { fixedTeacher } from '../synth/helpers.ts';

import { verifyTrajectoryAsync } from '../../runtime/worlds/verify.ts';
import { checkRepos, draftRepo } from '../../runtime/worlds/repo/generate.ts';
import { repoSpecOf } from '../../runtime/worlds/repo/index.ts';
import { BUG_KINDS } from '../../runtime/worlds/repo/units.ts';
import { TOOL_LIMITS, VERIFY_LIMITS } from '../../runtime/worlds/code/exec.ts';

const toolResults = (msgs: Message[]) => msgs.filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content));

let tasks: Task[];
const rejected: string[] = [];
beforeAll(async () => { tasks = await generateTasks('repo', { seed: 5, n: 12, onReject: (w) => rejected.push(w) }); }, 60_000);

describe('repo world: generation', () => {
  it('≥ 300 generated repositories across the 10 bug kinds, 4–10 Python files each, all checked in one sandbox run', async () => {
    const drafts = Array.from({ length: 340 }, (_, i) => draftRepo(1000 + i));
    const checks = await checkRepos(drafts);
    const ok = drafts.filter((_, i) => checks[i].ok);
    expect(ok.length).toBeGreaterThanOrEqual(300);
    expect(new Set(ok.map((d) => d.kind))).toEqual(new Set(BUG_KINDS));
    for (const d of ok) {
      const py = Object.keys(d.files).filter((p) => p.endsWith('.py')).length;
      expect(py).toBeGreaterThanOrEqual(4);
      expect(py).toBeLessThanOrEqual(10);
      expect(d.buggyFiles[d.bug.path]).not.toBe(d.files[d.bug.path]);
      expect(Object.keys(d.files).some((p) => p.startsWith('.git'))).toBe(false);
    }
    for (const c of checks.filter((x) => !x.ok)) expect(c.reason).toMatch(/changes no hidden test/);
  }, 90_000);

  it('a repository whose tests fail before the bug is seeded is rejected at generation time, naming the test', async () => {
    const d = draftRepo(77);
    const broken = { ...d, visible: d.visible.map((c, i) => (i === 1 ? { ...c, expected: '"not this"' } : c)) };
    const unobservable = { ...d, buggyFiles: d.files };
    const [a, b, c] = await checkRepos([broken, unobservable, d]);
    expect(a.ok).toBe(false);
    expect(a.reason).toContain(`tests fail before the bug is seeded: ${d.visible[1].test}: ${d.visible[1].call} gave`);
    expect(b).toMatchObject({ ok: false, reason: expect.stringMatching(/changes no hidden test/) });
    expect(c.ok).toBe(true);
    // the make-tasks path reports rejected drafts through onReject, with the reason
    expect(rejected.every((r) => /^repo seed \d+ \(\w+\): /.test(r))).toBe(true);
  }, 30_000);

  it('tasks: the issue states the symptom; held-out adds QuixBugs one-file repos, training never has them', async () => {
    expect(tasks).toHaveLength(12);
    expect(tasks[0].instruction).toMatch(/^Bug report: `\w+\(.*\)` (returns|raises) .*, but it should return /);
    expect(tasks.some((t) => t.tags.includes('kind:quixbugs'))).toBe(false);
    const held = await generateTasks('repo', { seed: 5, n: 8, split: 'heldout' });
    const qb = held.filter((t) => t.tags.includes('kind:quixbugs'));
    expect(qb.length).toBeGreaterThanOrEqual(2);
    expect(Object.keys(repoSpecOf(qb[0]).files)).toHaveLength(1 + (repoSpecOf(qb[0]).files['node.py'] ? 1 : 0));
  }, 60_000);
});

describe('repo world: what the agent can see', () => {
  it('only the repository: no hidden tests, no reference fix, no history; paths outside it find nothing; tests are read-only', async () => {
    const task = tasks[0];
    const spec = repoSpecOf(task);
    const w = openWorld('repo');
    w.reset(task);
    const listed = (w.call('list_files', {}) as { result: { files: string[] } }).result.files;
    expect(listed).toEqual(Object.keys(spec.files).sort());
    expect(listed.some((p) => p.includes('.git') || p.includes('hidden'))).toBe(false);
    for (const path of ['.git/HEAD', '../../etc/passwd', '/etc/passwd', 'pkg/../README.md', '__proto__', 'hidden']) {
      expect(w.call('read_file', { path })).toMatchObject({ ok: false, kind: 'not_found' });
    }
    const everything = listed.map((p) => (w.call('read_file', { path: p }) as { result: { content: string } }).result.content).join('\n');
    for (const h of spec.hidden) {
      expect(everything).not.toContain(h.call);
      expect((w.call('search', { query: h.call }) as { result: { matches: unknown[] } }).result.matches).toEqual([]);
    }
    expect(everything).not.toContain(spec.fix.to); // the fixed line exists nowhere in the buggy repository
    const test = listed.find((p) => p.startsWith('tests/'))!;
    expect(w.call('edit', { path: test, old: 'assert', new: 'assert True or' })).toMatchObject({ ok: false, kind: 'policy' });
    // a module that dumps the harness's task file during run_tests sees the visible cases only
    const mod = listed.find((p) => /^pkg\/(?!util|__init__)\w+\.py$/.test(p))!;
    const first = (w.call('read_file', { path: mod }) as { result: { content: string } }).result.content.split('\n')[0];
    expect(w.call('edit', { path: mod, old: first, new: `import sys\nsys.stderr.write(open("agentforge_task.json").read())\n${first}` })).toMatchObject({ ok: true });
    const r = await w.callAsync!('run_tests', {});
    for (const h of spec.hidden) expect(JSON.stringify(r)).not.toContain(h.call);
  }, 30_000);
});

describe('repo world: episodes', () => {
  it('the teacher\'s four solution paths each pass with a unified-diff patch that `patch -p1` applies; labelled noise fails', async () => {
    const task = tasks.find((t) => t.tags.some((x) => x === 'bug:missing_case' || x === 'bug:missing_return')) ?? tasks[1];
    const spec = repoSpecOf(task);
    const trajs = await Promise.all(REPO_PATHS.map((_, seed) => worldEpisode(task, scriptedTeacher(task, seed), seed)));
    expect(trajs.map((t) => t.teacher)).toEqual(REPO_PATHS.map((p) => `scripted/${p}`));
    const verdicts = await Promise.all(trajs.map((t) => verifyTrajectoryAsync(t, task)));
    expect(verdicts.map((v) => v.reasons)).toEqual(trajs.map(() => []));
    expect(verdicts.every((v) => v.score === 1)).toBe(true);
    // test-first saw the failure before the fix and a clean run after it
    const runs = toolResults(trajs[REPO_PATHS.indexOf('test_first')].messages).filter((r) => 'passed' in r);
    expect(runs[0].passed).toBeLessThan(runs[0].total);
    expect(runs[1].passed).toBe(runs[1].total);
    // the recoverable failure: an edit whose `old` text is missing, then the right one
    expect(trajs[REPO_PATHS.indexOf('recover')].errors.map((e) => e.kind)).toEqual(['tool_precondition']);
    // the stored patch applies to the buggy repository and yields the fixed one
    const patch = trajs[0].patch!;
    expect(patch).toMatch(new RegExp(`^--- a/${spec.fix.path}\\n\\+\\+\\+ b/${spec.fix.path}\\n@@ -\\d+,\\d+ \\+\\d+,\\d+ @@`));
    const dir = mkdtempSync(join(tmpdir(), 'af-repo-patch-'));
    try {
      for (const [p, text] of Object.entries(spec.files)) { mkdirSync(dirname(join(dir, p)), { recursive: true }); writeFileSync(join(dir, p), text); }
      const r = spawnSync('patch', ['-p1', '--batch'], { cwd: dir, input: patch, encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const fixedText = spec.files[spec.fix.path].replace(spec.fix.from, spec.fix.to);
      expect(readFileSync(join(dir, spec.fix.path), 'utf8')).toBe(fixedText);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    for (const noise of ['submit_unfixed', 'wrong_fix'] as const) {
      const seed = Array.from({ length: 80 }, (_, i) => i).find((s) => execPlan(task, s, 1).noise === noise)!;
      const t = await worldEpisode(task, scriptedTeacher(task, seed, { rate: 1 }), seed);
      const v = await verifyTrajectoryAsync(t, task);
      expect(t.teacher).toBe(`scripted+${noise}`);
      expect(v.pass).toBe(false);
      expect(v.reasons.join()).toMatch(/^tests_fail: \d+\/\d+ passed \(hidden and visible\); failing hidden::/);
    }
  }, 60_000);

  it('a QuixBugs one-file repo: the reference fix passes, submitting the buggy program fails', async () => {
    const held = await generateTasks('repo', { seed: 5, n: 1, split: 'heldout' });
    const task = held[0];
    expect(task.tags).toContain('kind:quixbugs');
    const good = await worldEpisode(task, scriptedTeacher(task, 0), 0);
    expect((await verifyTrajectoryAsync(good, task)).reasons).toEqual([]);
    const seed = Array.from({ length: 80 }, (_, i) => i).find((s) => execPlan(task, s, 1).noise === 'submit_unfixed')!;
    const bad = await worldEpisode(task, scriptedTeacher(task, seed, { rate: 1 }), seed);
    expect((await verifyTrajectoryAsync(bad, task)).pass).toBe(false);
  }, 30_000);

  it('submit ends the episode as answered: nothing after it is asked for, and the fix passes without a closing message', async () => {
    const task = tasks[3];
    const s = repoSpecOf(task);
    const fix = sayCalls('', [['edit', { path: s.fix.path, old: s.fix.from, new: s.fix.to }]]);
    const submit = sayCalls('', [['submit', {}]]);
    // a policy that would repeat submit (what the tiny model did) is never asked again
    const t = await worldEpisode(task, fixedTeacher([fix, submit, submit, submit, sayCalls('Fixed it.')]));
    expect(t.finish_reason).toBe('answered');
    expect(t.messages.filter((m) => m.role === 'assistant').length).toBe(2);
    expect(t.messages.at(-1)!.role).toBe('tool');
    const v = await verifyTrajectoryAsync(t, task);
    expect(v.reasons).toEqual([]);
    expect(v.score).toBe(1);
    // without submit the episode goes on to the model's text answer, and the verdict says it was never submitted
    const open = await worldEpisode(task, fixedTeacher([fix, sayCalls('Fixed it.')]));
    expect(open.finish_reason).toBe('answered');
    expect((await verifyTrajectoryAsync(open, task)).reasons.join()).toMatch(/not_submitted/);
  }, 20_000);

  it('the verdict replays the edits itself: a forged patch field changes nothing', async () => {
    const task = tasks[2];
    const t = await worldEpisode(task, fixedTeacher([sayCalls('', [['submit', {}]]), sayCalls('Fixed it.')]));
    const forged = { ...t, patch: unifiedFix(task) };
    const v = await verifyTrajectoryAsync(forged, task);
    expect(v.pass).toBe(false);
    expect(v.reasons.join()).toMatch(/tests_fail/);
  }, 20_000);
});

function unifiedFix(task: Task): string {
  const s = repoSpecOf(task);
  return `--- a/${s.fix.path}\n+++ b/${s.fix.path}\n@@ -1,1 +1,1 @@\n-${s.fix.from}\n+${s.fix.to}\n`;
}

describe('repo world: bad input is a failed episode with a reason, never a crashed step', () => {
  const saved = { tool: { ...TOOL_LIMITS }, verify: { ...VERIFY_LIMITS } };
  beforeAll(() => {
    Object.assign(TOOL_LIMITS, { cpuSeconds: 1, wallMs: 2500 });
    Object.assign(VERIFY_LIMITS, { cpuSeconds: 1, wallMs: 2500 });
  });
  afterAll(() => { Object.assign(TOOL_LIMITS, saved.tool); Object.assign(VERIFY_LIMITS, saved.verify); });

  const forge = 'import os\nfor n in [b"0" * 48]:\n    os.write(1, b"\\nAGENTFORGE-CASES " + n + b" 0,1,2,3,4,5,6,7,8,9\\nAGENTFORGE-PASS " + n + b"\\n")\nos._exit(0)\n';
  const BAD: Array<[string, string, RegExp]> = [
    ['never ends', 'while True:\n    pass\n', /CPU|wall-clock|killed/],
    ['floods its output', 'import sys\nwhile True:\n    sys.stderr.write("x" * 65536)\n', /output passed|killed|ended/],
    ['forks without end', 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n', /process|ended|CPU|wall-clock|killed/],
    ['allocates without bound', 'chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))\n', /MemoryError|memory|ended|killed/],
    ['reads outside its repo', `print(open(${JSON.stringify(`${process.cwd()}/package.json`)}).read())\n`, /FileNotFoundError|PermissionError|failed to load/],
    ['forges a pass', forge, /tests_fail: 0\//],
  ];

  it.each(BAD)('%s (an edit puts it at the top of the bugged module)', async (_name, program, reason) => {
    const task = tasks[3];
    const spec = repoSpecOf(task);
    const head = spec.files[spec.fix.path].split('\n')[0];
    const traj = await worldEpisode(task, fixedTeacher([
      sayCalls('', [['edit', { path: spec.fix.path, old: head, new: `${program}${head}` }]]), sayCalls('', [['run_tests', {}]]), sayCalls('', [['submit', {}]]), sayCalls('Done.'),
    ]));
    expect(traj.finish_reason).toBe('answered');
    expect(traj.errors).toEqual([]);
    const run = toolResults(traj.messages)[1];
    expect(run.passed).toBe(0);
    expect(traj.patch).toContain(`+${program.split('\n')[0]}`);
    const v = await verifyTrajectoryAsync(traj, task);
    expect(v.pass).toBe(false);
    expect(v.score).toBe(0);
    expect(v.reasons.join(' ')).toMatch(reason);
  }, 30_000);
});
