/*
 * Sandboxed executions per second of a trivial program vs a plain child_process spawn of the same program, measured
 * in the same run (sequential, so the ratio is the per-run overhead of namespaces + rlimits + temp dir); and the
 * cost of a proven code-task verdict (harness + separate candidate process, runtime/sandbox/harness.ts) vs the
 * old unproven single-process program (prompt + completion + tests, pass = exit 0) on the same HumanEval tasks.
 * Run: npx tsx bench/sandbox.ts [runs]
 */
import { spawn } from 'node:child_process';
import { runSandboxed } from '../runtime/sandbox/sandbox.ts';
import { isolationLevel } from '../runtime/sandbox/isolation.ts';
import { runCodeTask } from '../runtime/eval/code/evaluate.ts';
import { loadHumanEval } from '../runtime/eval/code/tasks.ts';

const runs = Number(process.argv[2] ?? 60);

function plain(argv: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    c.on('error', fail);
    c.on('close', (code) => (code === 0 ? ok() : fail(new Error(`exit ${code}`))));
  });
}

async function rate(fn: () => Promise<void>): Promise<number> {
  await fn(); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await fn();
  return runs / ((performance.now() - t0) / 1000);
}

for (const [label, argv] of [['true', ['/bin/true']], ['python', ['/usr/bin/python3', '-c', 'pass']]] as const) {
  const baseline = await rate(() => plain([...argv]));
  const value = await rate(async () => {
    const r = await runSandboxed({ argv: [...argv] });
    if (!r.ok) throw new Error(`sandboxed ${label} failed: ${r.reason}`);
  });
  const ratio = baseline / value;
  // Goal: the sandbox costs at most ~4x a bare spawn of a trivial binary, ≤ 2x for a Python program (the real use).
  // The wrapper is 5 extra execs (unshare, sh, 3× mount, setpriv), so /bin/true is the worst case by construction.
  const goal = label === 'true' ? 4 : 2;
  console.log(JSON.stringify({ bench: 'sandbox', metric: `execs_per_s_${label}`, value: +value.toFixed(1), unit: 'exec/s',
    baseline: +baseline.toFixed(1), ratio: +ratio.toFixed(2), goal: `overhead ratio <= ${goal}`, pass: ratio <= goal, isolation: isolationLevel(),
    overhead_ms: +(1000 / value - 1000 / baseline).toFixed(1) }));
}

// Proven verdict vs unproven single-process run, alternating per task so load drifts hit both alike.
const tasks = loadHumanEval().filter((_, i) => i % 8 === 0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const single: number[] = [], proven: number[] = [];
for (const t of tasks) {
  let t0 = performance.now();
  const r = await runSandboxed({ argv: ['/usr/bin/python3', 'main.py'], files: { 'main.py': `${t.prompt}${t.reference}\n${t.test}\ncheck(${t.entryPoint})\n` } });
  single.push(performance.now() - t0);
  t0 = performance.now();
  const v = await runCodeTask(t, t.reference);
  proven.push(performance.now() - t0);
  if (!r.ok || !v.passed) throw new Error(`${t.id}: reference failed (${r.reason} / ${v.reason})`);
}
const ratio = median(proven) / median(single);
console.log(JSON.stringify({ bench: 'sandbox', metric: 'code_task_ms_proven', value: +median(proven).toFixed(1), unit: 'ms (median per HumanEval task)',
  baseline: +median(single).toFixed(1), ratio: +ratio.toFixed(2), goal: 'proven verdict costs <= 2x the unproven single-process run', pass: ratio <= 2, tasks: tasks.length, isolation: isolationLevel() }));

/*
 * Throughput for RL (many short executions per step): executions/s of a plain spawn, runSandboxed and the warm pool
 * (runtime/sandbox/pool.ts), sequential and with 4 in flight, on a trivial Python program and on a proven code-world
 * verdict (the harness in cases mode: generated task, reference answer, 5 hidden asserts). Same run, so the ratios
 * compare like with like. POOL_RUNS (default 40) per measurement.
 */
{
  const { SandboxPool } = await import('../runtime/sandbox/pool.ts');
  const { runProven } = await import('../runtime/sandbox/harness.ts');
  const { generatedSpec } = await import('../runtime/worlds/code/spec.ts');
  const { casesSpec } = await import('../runtime/worlds/code/index.ts');
  const n = Number(process.env.POOL_RUNS ?? 40);
  const spec = generatedSpec(7, 1);
  const harness = casesSpec(spec, spec.reference, spec.hidden);
  const limits = { wallMs: 10_000, cpuSeconds: 5, memoryBytes: 512 << 20, outputBytes: 64 << 10, processes: 16 };
  const pool = new SandboxPool({ size: 4, limits });
  const trivial = { argv: ['/usr/bin/python3', '-I', 'main.py'], files: { 'main.py': 'pass\n' }, limits };
  const throughput = async (fn: () => Promise<void>, inFlight: number) => {
    await fn();
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => { while (next++ < n) await fn(); }));
    return n / ((performance.now() - t0) / 1000);
  };
  const must = (ok: boolean, what: string) => { if (!ok) throw new Error(`${what} failed`); };
  for (const inFlight of [1, 4]) {
    const plainRate = await throughput(() => plain(['/usr/bin/python3', '-I', '-c', 'pass']), inFlight);
    const sandboxRate = await throughput(async () => must((await runSandboxed(trivial)).ok, 'sandboxed python'), inFlight);
    const poolRate = await throughput(async () => must((await pool.run(trivial)).ok, 'pooled python'), inFlight);
    console.log(JSON.stringify({ bench: 'sandbox', metric: `pool_execs_per_s_python_x${inFlight}`, value: +poolRate.toFixed(1), unit: 'exec/s',
      sandbox: +sandboxRate.toFixed(1), plain_spawn: +plainRate.toFixed(1), pool_vs_sandbox: +(poolRate / sandboxRate).toFixed(2),
      pool_vs_plain: +(poolRate / plainRate).toFixed(2), in_flight: inFlight, runs: n, isolation: isolationLevel() }));
    const verdictCold = await throughput(async () => must((await runProven(harness, {}, { limits })).passed, 'sandboxed verdict'), inFlight);
    const verdictPool = await throughput(async () => must((await runProven(harness, {}, { limits, runner: (s) => pool.run(s) })).passed, 'pooled verdict'), inFlight);
    console.log(JSON.stringify({ bench: 'sandbox', metric: `pool_verdicts_per_s_x${inFlight}`, value: +verdictPool.toFixed(1), unit: 'proven verdicts/s',
      sandbox: +verdictCold.toFixed(1), pool_vs_sandbox: +(verdictPool / verdictCold).toFixed(2), in_flight: inFlight, runs: n, isolation: isolationLevel() }));
  }
  console.log(JSON.stringify({ bench: 'sandbox', metric: 'pool_stats', ...pool.stats }));
  await pool.close();
}
