/*
 * Sandboxed executions per second of a trivial program vs a plain child_process spawn of the same program, measured
 * in the same run (sequential, so the ratio is the per-run overhead of namespaces + rlimits + temp dir).
 * Run: npx tsx bench/sandbox.ts [runs]
 */
import { spawn } from 'node:child_process';
import { runSandboxed } from '../runtime/sandbox/sandbox.ts';
import { isolationLevel } from '../runtime/sandbox/isolation.ts';

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
