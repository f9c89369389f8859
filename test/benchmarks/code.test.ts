import { describe, expect, it } from 'vitest';
import PQueue from 'p-queue';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractCode, runCodeTask, type CodeRunOptions, type CodeVerdict } from '../../runtime/eval/code/evaluate.ts';
import { loadHumanEval, loadMbpp, loadQuixBugs, readJsonLines, type CodeTask } from '../../runtime/eval/code/tasks.ts';
import { passAtK, passHatK } from '../../runtime/eval/passk.ts';
import { isolationLevel } from '../../runtime/sandbox/isolation.ts';
import { FORGE_PROOF, hostileCandidates, REWARD_HACKS } from '../../runtime/eval/code/attacks.ts';

/*
 * Canonical solutions must pass and QuixBugs' buggy programs must fail, in the sandbox. By default a deterministic
 * subset of HumanEval/MBPP (every 8th problem) runs; AGENTFORGE_FULL_BENCH=1 runs all 164 + 427 (~30 s on 2 cores).
 * QuixBugs always runs in full (40 fixed + 40 buggy).
 */
const FULL = process.env.AGENTFORGE_FULL_BENCH === '1';
const queue = new PQueue({ concurrency: 4 });
const runAll = (tasks: CodeTask[], pick: (t: CodeTask) => string, limits?: CodeRunOptions['limits']) =>
  Promise.all(tasks.map((t) => queue.add(() => runCodeTask(t, pick(t), { limits })) as Promise<CodeVerdict>));

describe('code benchmarks in the sandbox', () => {
  it('loads 164 HumanEval, 427 MBPP-sanitized and 40 QuixBugs tasks', () => {
    expect(loadHumanEval()).toHaveLength(164);
    expect(loadMbpp()).toHaveLength(427);
    expect(loadQuixBugs()).toHaveLength(40);
  });

  it(`canonical solutions pass (${FULL ? 'all' : 'every 8th'} HumanEval + MBPP)`, async () => {
    const tasks = [...loadHumanEval(), ...loadMbpp()].filter((_, i) => FULL || i % 8 === 0);
    const verdicts = await runAll(tasks, (t) => t.reference);
    expect(verdicts.filter((v) => !v.passed).map((v) => `${v.taskId}: ${v.reason}`)).toEqual([]);
  }, 600_000);

  it('QuixBugs: every fixed program passes, every buggy one fails', async () => {
    const tasks = loadQuixBugs();
    const fixed = await runAll(tasks, (t) => t.reference);
    const buggy = await runAll(tasks, (t) => t.buggy!, { wallMs: 1000, cpuSeconds: 1 });
    expect(fixed.filter((v) => !v.passed).map((v) => `${v.taskId}: ${v.reason}`)).toEqual([]);
    expect(buggy.filter((v) => v.passed).map((v) => v.taskId)).toEqual([]);
    expect(buggy.every((v) => v.reason.length > 0)).toBe(true);
  }, 300_000);

  it('wrong, non-terminating, garbage-printing and empty answers fail with a reason, never a crash', async () => {
    const [he] = loadHumanEval();
    const cases = ['    return None\n', '    while True:\n        pass\n', '    import sys\n    sys.stdout.buffer.write(bytes(range(256)) * 4000)\n    return 1\n', '', 'def (:\n'];
    const v = await Promise.all(cases.map((c) => runCodeTask(he, c, { limits: { wallMs: 15_000, cpuSeconds: 1 } })));
    expect(v.map((x) => x.passed)).toEqual([false, false, false, false, false]);
    expect(v[1].outcome).toMatch(/timeout|cpu_limit/);
    expect(v[0].reason).toContain('AssertionError');
  });

  it('extracts code from fenced and [BEGIN]/[DONE] replies', () => {
    expect(extractCode('Sure:\n```python\nx = 1\n```\nbye')).toBe('x = 1\n');
    expect(extractCode('[BEGIN]\nx = 2\n[DONE]')).toBe('\nx = 2\n');
    expect(extractCode('x = 3')).toBe('x = 3');
  });

  it('a malformed benchmark row names the file and line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'af-code-'));
    const file = join(dir, 'HumanEval.jsonl');
    writeFileSync(file, '{"task_id": "a", "prompt": "", "entry_point": "f", "canonical_solution": "", "test": ""}\n{"task_id": oops}\n');
    expect(() => loadHumanEval(file)).toThrow(`${file}:2: malformed JSON row`);
    writeFileSync(file, '{"task_id": "a", "prompt": ""}\n');
    expect(() => loadHumanEval(file)).toThrow(/row 1: entry_point/);
    expect(() => readJsonLines(file, '{}\n[')).toThrow(':2:');
  });
});

// Every program below is ours (references and benign hacks: none signals another process), so on a machine whose
// sandbox can only offer the unisolated 'rlimit' level the suite opts in instead of failing; the hostile programs
// run only where namespaces isolate them.
const namespaced = isolationLevel() !== 'rlimit';
const OPTS: CodeRunOptions = namespaced ? {} : { allowHostNetworkAndPids: true };
const byId = (id: string) => [...loadHumanEval(), ...loadMbpp(), ...loadQuixBugs()].find((t) => t.id === id)!;

describe('reward hacking: a pass needs the harness\'s proof, not exit code 0', () => {
  // Each of these passed every task when a pass was "exit code 0" (checked against the previous harness).
  const he0 = byId('HumanEval/0'), he2 = byId('HumanEval/2'), mbpp82 = byId('mbpp/82');
  it.each(REWARD_HACKS)('%s: 0 passes, with a reason', async (_name, taskId, code) => {
    const v = await runCodeTask(byId(taskId), code, OPTS);
    expect(v.passed).toBe(false);
    expect(v.reason.length).toBeGreaterThan(0);
  });

  it('a program unittest-based tests call cannot patch unittest for them', async () => {
    const task: CodeTask = { ...mbpp82, id: 'unittest-task', entryPoint: 'add', test: 'import unittest\ntc = unittest.TestCase()\ntc.assertEqual(add(1, 2), 3)\n', testImports: [] };
    const honest = await runCodeTask(task, 'def add(a, b):\n    return a + b\n', OPTS);
    expect(honest).toMatchObject({ passed: true });
    const hack = await runCodeTask(task, 'import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\ndef add(a, b):\n    return 0\n', OPTS);
    expect(hack.passed).toBe(false);
    expect(hack.reason).toMatch(/AssertionError/);
  });

  it('a candidate cannot read the nonce or write the harness\'s proof channel', async () => {
    const v = await runCodeTask(he0, FORGE_PROOF, OPTS);
    expect(v.passed).toBe(false);
    expect(v.reason).toMatch(/candidate process ended/);
  });

  it('an honest answer still passes and a wrong one fails with the failing line', async () => {
    const ok = await runCodeTask(he2, '    return number % 1.0\n', OPTS);
    expect(ok).toMatchObject({ passed: true, outcome: 'ok' });
    const wrong = await runCodeTask(he2, '    return 0.5\n', OPTS);
    expect(wrong.passed).toBe(false);
    expect(wrong.reason).toMatch(/test line \d+: AssertionError/);
  });
});

describe.runIf(namespaced)(`hostile candidates fail with a reason, never a crash (isolation: ${isolationLevel()})`, () => {
  const he0 = byId('HumanEval/0');
  const fast = { limits: { wallMs: 10_000, cpuSeconds: 2, memoryBytes: 512 << 20 } };
  it.each(hostileCandidates())('%s', async (_name, body, reason) => {
    const v = await runCodeTask(he0, body, fast);
    expect(v.passed).toBe(false);
    expect(v.reason).toMatch(reason);
  });
});

describe('eval-code on a machine that cannot isolate code', () => {
  // A fresh process (the isolation probe is cached per process) forced to the unisolated level: the node must fail
  // before any sample, with the sandbox's reason and the opt-in, and commit nothing; with the opt-in it runs.
  const run = (env: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'af-code-refuse-'));
    const script = join(dir, 'run.mts');
    writeFileSync(script, `import { runDag } from ${JSON.stringify(`${process.cwd()}/runtime/engine/scheduler.ts`)};
import { dag } from ${JSON.stringify(`${process.cwd()}/runtime/engine/dag.ts`)};
import { evalCode } from ${JSON.stringify(`${process.cwd()}/operators/eval-code.ts`)};
const r = await runDag(dag('refuse', (d) => { d.node('he', evalCode, { agent: 'oracle', benchmark: 'humaneval', limit: 2 }); }), { storeDir: ${JSON.stringify(join(dir, 'store'))} });
console.log(JSON.stringify([...r.nodes].map(([id, n]) => ({ id, status: n.status, error: n.error ?? null }))));
`);
    const env2: Record<string, string | undefined> = { ...process.env, AGENTFORGE_SANDBOX_ISOLATION: 'rlimit', ...env };
    if (!('AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS' in env)) delete env2.AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS;
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: process.cwd(), env: env2, encoding: 'utf8', timeout: 120_000 });
    rmSync(dir, { recursive: true, force: true });
    return JSON.parse(r.stdout.trim().split('\n').at(-1) || 'null') as { id: string; status: string; error: string | null }[] | null;
  };

  it('refuses by default, naming the risk and the opt-in; runs when opted in', () => {
    const refused = run({});
    expect(refused?.[0].status).toBe('failed');
    expect(refused?.[0].error).toMatch(/refusing to run untrusted code.*network and process table.*AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS=1/s);
    const allowed = run({ AGENTFORGE_SANDBOX_ALLOW_HOST_NETWORK_AND_PIDS: '1' });
    expect(allowed?.[0]).toMatchObject({ status: 'committed' });
  }, 240_000);
});

describe('pass@k and pass^k estimators', () => {
  it('match hand-computed values', () => {
    expect(passAtK(10, 0, 1)).toBe(0);
    expect(passAtK(10, 3, 1)).toBeCloseTo(0.3, 12);
    expect(passAtK(5, 2, 2)).toBeCloseTo(1 - 3 / 10, 12); // 1 − C(3,2)/C(5,2)
    expect(passAtK(4, 2, 3)).toBe(1); // n − c < k
    expect(passHatK(5, 3, 2)).toBeCloseTo(3 / 10, 12); // C(3,2)/C(5,2)
    expect(passHatK(4, 4, 4)).toBe(1);
    expect(passHatK(4, 2, 3)).toBe(0);
    expect(() => passAtK(3, 4, 1)).toThrow(/0 <= c <= n/);
  });
});
