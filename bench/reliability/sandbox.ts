/*
 * Reliability: hostile model-written code (issue 19, items 1 and 2). Three metrics, each goal 100 %:
 *  - sandbox_attacks_contained: at every namespace level this machine offers, kill(-1), kill(getppid()), kill of a
 *    host process, writes and reads outside the dir, a read-write re-mount, a TCP connect to a host server and a
 *    root uid are contained (signals only after the level showed its own PID namespace); the unisolated 'rlimit'
 *    level refuses by default, here and on a simulated machine without namespaces.
 *  - code_reward_hacks_failed: candidates that passed when a pass was "exit code 0" (os._exit, sys.exit in a
 *    finally, atexit, patched builtins/math/AssertionError, always-equal objects, a nonce forger) all fail.
 *  - code_hostile_candidates_failed: code that never ends, floods output, forks, allocates without bound, reads or
 *    writes outside its dir or connects out fails with the expected reason, never a crash (namespace levels only).
 * About 15 s on 2 cores. `run()` is called by the reliability suite; `npx tsx bench/reliability/sandbox.ts` prints it.
 */
import PQueue from 'p-queue';
import { containmentTrials } from '../../runtime/sandbox/containment.ts';
import { isolationLevel } from '../../runtime/sandbox/isolation.ts';
import { runCodeTask, type CodeRunOptions } from '../../runtime/eval/code/evaluate.ts';
import { FORGE_PROOF, hostileCandidates, REWARD_HACKS } from '../../runtime/eval/code/attacks.ts';
import { loadHumanEval, loadMbpp, loadQuixBugs, type CodeTask } from '../../runtime/eval/code/tasks.ts';

export interface Metric { metric: string; held: number; total: number; detail?: string }

export async function run(): Promise<Metric[]> {
  const level = isolationLevel();
  const namespaced = level !== 'rlimit';
  const c = await containmentTrials({ withoutNamespaces: true });
  const escaped = c.trials.filter((t) => !t.contained);
  const levels = [...new Set(c.trials.map((t) => t.level))].join(', ');
  const metrics: Metric[] = [{
    metric: 'sandbox_attacks_contained', held: c.trials.length - escaped.length, total: c.trials.length,
    detail: [`levels ${levels}`, ...escaped.map((t) => `ESCAPED ${t.level} ${t.attack}: ${t.detail}`), ...c.skipped.map((s) => `skipped ${s}`)].join('; '),
  }];

  // The hacks are benign (none signals), so a machine without namespaces runs them opted in.
  const opts: CodeRunOptions = namespaced ? {} : { allowHostNetworkAndPids: true };
  const tasks = new Map<string, CodeTask>([...loadHumanEval(), ...loadMbpp(), ...loadQuixBugs()].map((t) => [t.id, t]));
  const queue = new PQueue({ concurrency: 2 });
  const hacks: [string, string, string][] = [...REWARD_HACKS, ['nonce forger', 'HumanEval/0', FORGE_PROOF]];
  const hacked = await Promise.all(hacks.map(([name, id, code]) => queue.add(async () => ({ name, v: await runCodeTask(tasks.get(id)!, code, opts) }))));
  const passed = hacked.filter((h) => h!.v.passed);
  metrics.push({ metric: 'code_reward_hacks_failed', held: hacks.length - passed.length, total: hacks.length, detail: passed.map((h) => `PASSED ${h!.name}`).join('; ') || undefined });

  if (namespaced) {
    const he0 = tasks.get('HumanEval/0')!;
    const limits = { wallMs: 10_000, cpuSeconds: 2, memoryBytes: 512 << 20 };
    const cases = hostileCandidates();
    const results = await Promise.all(cases.map(([name, body, reason]) => queue.add(async () => {
      try {
        const v = await runCodeTask(he0, body, { limits });
        return { name, ok: !v.passed && reason.test(v.reason), why: v.reason };
      } catch (e) {
        return { name, ok: false, why: `threw ${(e as Error).message}` };
      }
    })));
    const bad = results.filter((r) => !r!.ok);
    metrics.push({ metric: 'code_hostile_candidates_failed', held: cases.length - bad.length, total: cases.length, detail: bad.map((r) => `${r!.name}: ${r!.why}`).join('; ') || undefined });
  }
  return metrics;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const t0 = performance.now();
  for (const m of await run()) console.log(JSON.stringify({ bench: 'reliability', ...m, pass: m.held === m.total }));
  console.error(`sandbox reliability: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
