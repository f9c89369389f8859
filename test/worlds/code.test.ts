import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import type { Task } from '../../schemas/task.ts';
import { scriptedTeacher } from '../../runtime/agent/scripted.ts';
import { CODE_PATHS, execPlan } from '../../runtime/agent/code-teacher.ts';
import { generateTasks, openWorld } from '../../runtime/worlds/index.ts';
import { sayCalls, worldEpisode } from './helpers.ts';
import { fixedTeacher } from '../synth/helpers.ts';

import { verifyTrajectory, verifyTrajectoryAsync } from '../../runtime/worlds/verify.ts';
import { GENERATED_TASK_COUNT } from '../../runtime/worlds/code/generator.ts';
import { generatedSpec, mbppSpec, mbppSplit, mbppTrainingRows, specOf } from '../../runtime/worlds/code/spec.ts';
import { TOOL_LIMITS, VERIFY_LIMITS } from '../../runtime/worlds/code/exec.ts';
import { runSandboxed } from '../../runtime/sandbox/sandbox.ts';
import { loadHumanEval, loadMbpp } from '../../runtime/eval/code/tasks.ts';

let tasks: Task[];
beforeAll(async () => { tasks = await generateTasks('code', { seed: 3, n: 40 }); });

describe('code world: tasks', () => {
  it(`generates ${GENERATED_TASK_COUNT} (≥ 1,000) distinct small function tasks with 1–3 line references`, () => {
    expect(GENERATED_TASK_COUNT).toBeGreaterThanOrEqual(1000);
    const specs = Array.from({ length: GENERATED_TASK_COUNT }, (_, i) => generatedSpec(i, 5));
    expect(new Set(specs.map((s) => s.description)).size).toBe(GENERATED_TASK_COUNT);
    for (const s of specs) {
      expect(s.difficulty).toBeGreaterThanOrEqual(1);
      expect(s.difficulty).toBeLessThanOrEqual(3);
      expect(s.visible).toHaveLength(2);
      expect(s.hidden).toHaveLength(5);
    }
  });

  it('every reference passes its visible and hidden tests in Python (a sample of generated + all MBPP training rows, one sandbox run)', async () => {
    const specs = [...Array.from({ length: GENERATED_TASK_COUNT }, (_, i) => i).filter((i) => i % 5 === 0).map((i) => generatedSpec(i, 9)),
      ...mbppTrainingRows().map(mbppSpec)];
    const script = `import json\nspecs = json.load(open("specs.json"))\nbad = []\nfor s in specs:\n    ns = {}\n    try:\n        exec(s["reference"] + "\\n" + "\\n".join(s["imports"]), ns)\n        for t in s["visible"] + s["hidden"]:\n            exec(t, ns)\n    except BaseException as e:\n        bad.append([s["source"], repr(e)[:200]])\nprint(json.dumps(bad))\n`;
    const r = await runSandboxed({ argv: ['/usr/bin/python3', '-I', 'check.py'], files: { 'check.py': script, 'specs.json': JSON.stringify(specs) }, limits: { wallMs: 60_000, cpuSeconds: 40 } });
    expect(r.reason).toBe('exit code 0');
    expect(JSON.parse(r.stdout)).toEqual([]);
    expect(specs.length).toBeGreaterThan(350);
  }, 90_000);

  it('no evaluation task leaks into training: MBPP test-split and HumanEval ids never appear in the code world', async () => {
    const evalMbpp = new Set(loadMbpp().filter((t) => mbppSplit(Number(t.id.slice(5))) === 'test').map((t) => t.id));
    const humaneval = new Set(loadHumanEval().map((t) => t.id.toLowerCase()));
    expect(evalMbpp.size).toBe(257);
    const rows = mbppTrainingRows();
    expect(rows).toHaveLength(170); // sanitized: 7 prompt + 43 validation + 120 train
    expect(rows.filter((r) => evalMbpp.has(`mbpp/${r.task_id}`))).toEqual([]);
    const all = [...await generateTasks('code', { seed: 1, n: 400 }), ...await generateTasks('code', { seed: 1, n: 100, split: 'heldout' })];
    const sources = all.map((t) => t.tags.find((x) => x.startsWith('source:'))!.slice(7));
    expect(sources.filter((s) => s.startsWith('mbpp/')).length).toBeGreaterThan(40);
    expect(sources.filter((s) => evalMbpp.has(s) || humaneval.has(s.toLowerCase()) || s.startsWith('humaneval'))).toEqual([]);
    // a task naming an evaluation problem is refused when read back, by id
    const t = all[0];
    for (const src of ['mbpp/11', 'mbpp/510', 'HumanEval/0']) {
      expect(() => specOf({ ...t, tags: [`source:${src}`] })).toThrow(/evaluation-only/);
    }
    // and the instructions never share text with an MBPP test problem's asserts
    const evalAsserts = new Set(loadMbpp().filter((x) => evalMbpp.has(x.id)).flatMap((x) => x.test.split('\n')));
    expect(all.filter((x) => x.instruction.split('\n').some((l) => evalAsserts.has(l)))).toEqual([]);
  }, 30_000);

  it('train and held-out instructions never overlap; ids and seeds are stable', async () => {
    const train = await generateTasks('code', { seed: 3, n: 40 });
    const held = await generateTasks('code', { seed: 3, n: 20, split: 'heldout' });
    expect(train).toEqual(tasks);
    const trainText = new Set(train.map((t) => t.instruction));
    expect(held.filter((t) => trainText.has(t.instruction))).toEqual([]);
    expect(train[0].id).toBe('code-train-00000');
  });

  it('the agent sees the visible tests only', () => {
    for (const t of tasks) {
      const s = specOf(t);
      for (const h of s.hidden) if (!s.visible.includes(h)) expect(t.instruction).not.toContain(h);
    }
  });
});

describe('code world: episodes', () => {
  it('the scripted teacher takes a different valid path per sample; each passes, the labelled noise fails with a reason', async () => {
    const task = tasks.find((t) => t.tags.includes('kind:generated'))!;
    const trajs = await Promise.all(CODE_PATHS.map((_, seed) => worldEpisode(task, scriptedTeacher(task, seed), seed)));
    expect(new Set(trajs.map((t) => t.teacher))).toEqual(new Set(CODE_PATHS.map((p) => `scripted/${p}`)));
    const verdicts = await Promise.all(trajs.map((t) => verifyTrajectoryAsync(t, task)));
    expect(verdicts.map((v) => v.reasons)).toEqual(trajs.map(() => []));
    expect(verdicts.every((v) => v.score === 1)).toBe(true);
    // the recoverable failure really failed first: its first run_tests result shows a failing case
    const recover = trajs[CODE_PATHS.indexOf('recover')];
    const results = recover.messages.filter((m) => m.role === "tool").map((m) => JSON.parse(m.content));
    expect(results[0].passed).toBeLessThan(results[0].total);
    expect(results[1].passed).toBe(results[1].total);
    // noise: a wrong final answer fails with the hidden-test count
    const seed = Array.from({ length: 50 }, (_, i) => i).find((s) => execPlan(task, s, 1).noise === 'no_test_wrong')!;
    const noisy = await worldEpisode(task, scriptedTeacher(task, seed, { rate: 1 }), seed);
    const v = await verifyTrajectoryAsync(noisy, task);
    expect(noisy.teacher).toBe('scripted+no_test_wrong');
    expect(v.pass).toBe(false);
    expect(v.reasons.join()).toMatch(/^hidden_tests: \d\/5 passed/);
    // the sync verifier never pretends to judge a program-running world
    expect(verifyTrajectory(trajs[0], task).reasons[0]).toMatch(/^async_verifier/);
  }, 60_000);

  it('an MBPP training task with test imports passes through the same loop', async () => {
    const task = tasks.find((t) => t.tags.includes('kind:mbpp'))!;
    const traj = await worldEpisode(task, scriptedTeacher(task, 0), 0);
    expect((await verifyTrajectoryAsync(traj, task)).reasons).toEqual([]);
  }, 30_000);
});

describe('code world: bad input is a failed episode with a reason, never a crashed step', () => {
  const saved = { tool: { ...TOOL_LIMITS }, verify: { ...VERIFY_LIMITS } };
  beforeAll(() => {
    Object.assign(TOOL_LIMITS, { cpuSeconds: 1, wallMs: 2500 });
    Object.assign(VERIFY_LIMITS, { cpuSeconds: 1, wallMs: 2500 });
  });
  afterAll(() => { Object.assign(TOOL_LIMITS, saved.tool); Object.assign(VERIFY_LIMITS, saved.verify); });

  // [name, program (module level: it runs when the candidate loads), verdict reason, run_tests detail]
  const forge = 'import os, re\nseen = b""\ntry:\n    seen = os.read(0, 4096)\nexcept OSError:\n    pass\nfor n in set(re.findall(rb"[0-9a-f]{48}", seen)) | {b"0" * 48}:\n' +
    '    os.write(1, b"\\nAGENTFORGE-CASES " + n + b" 0,1,2,3,4\\nAGENTFORGE-PASS " + n + b"\\n")\n    os.write(2, b"\\nAGENTFORGE-CASES " + n + b" 0,1,2,3,4\\n")\nos._exit(0)\n';
  const BAD: Array<[string, string, RegExp]> = [
    ['never ends', 'while True:\n    pass\n', /CPU|wall-clock|killed/],
    ['floods its output', 'import sys\nwhile True:\n    sys.stderr.write("x" * 65536)\n', /output passed|killed|ended/],
    ['forks without end', 'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n', /process|ended|CPU|wall-clock|killed/],
    ['allocates without bound', 'chunks = []\nwhile True:\n    chunks.append(bytearray(64 << 20))\n', /MemoryError|memory|ended|killed/],
    ['reads outside its folder', `print(open(${JSON.stringify(`${process.cwd()}/package.json`)}).read())\n`, /FileNotFoundError|PermissionError|failed to load/],
    ['forges the proof lines', forge, /0\/5 passed|failed to load|ended/],
  ];

  it.each(BAD)('%s', async (_name, program, reason) => {
    const task = tasks.find((t) => t.tags.includes('kind:generated'))!;
    const traj = await worldEpisode(task, fixedTeacher([sayCalls('', [['run_tests', { code: program }]]), sayCalls(`\`\`\`python\n${program}\`\`\``)]));
    expect(traj.finish_reason).toBe('answered');
    expect(traj.errors).toEqual([]);
    const result = JSON.parse(traj.messages.find((m) => m.role === "tool")!.content);
    expect(result.passed).toBe(0);
    const v = await verifyTrajectoryAsync(traj, task);
    expect(v.pass).toBe(false);
    expect(v.score).toBe(0);
    expect(v.reasons.join(' ')).toMatch(reason);
  }, 30_000);

  it('run_python reports a runaway program as a tool result (never ends → killed, with the reason)', async () => {
    const w = openWorld('code');
    w.reset(tasks[1]);
    const r = await w.callAsync!('run_python', { code: 'while True:\n    pass\n' });
    expect(r.ok).toBe(true);
    expect((r as { result: { outcome: string } }).result.outcome).toMatch(/cpu_limit|timeout/);
    expect(w.call('run_python', { code: 'print(1)' })).toMatchObject({ ok: false, kind: 'internal', message: expect.stringMatching(/callAsync/) });
  }, 20_000);
});

describe('code and repo worlds on a machine that cannot isolate', () => {
  it('refuse before any episode, naming the risk and the opt-in (fresh process: the probe is per process)', () => {
    const code = "import('./runtime/worlds/index.ts').then(async (w) => { for (const f of [() => w.openWorld('code'), () => w.openWorld('repo'), () => w.generateTasks('repo', { seed: 1, n: 1 })]) " +
      "{ try { await f(); console.log('ran'); } catch (e) { console.log(e.name); } } })";
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { encoding: 'utf8', env: { ...process.env, AGENTFORGE_SANDBOX_ISOLATION: 'rlimit', AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS: '' }, timeout: 60_000 });
    expect(r.stdout.trim().split('\n')).toEqual(['SandboxRefusedError', 'SandboxRefusedError', 'SandboxRefusedError']);
  }, 60_000);
});
