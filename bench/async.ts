/*
 * Asynchronous RL (npm run bench:async), JSON lines, baselines measured in the same run:
 *  1. RL wall time and samples/s to a fixed number of trained samples, async (max_staleness k) vs sync, same seed
 *     and settings, tool latency 50 / 200 / 500 ms per call: 2 rollout servers (`agentforge serve` child processes,
 *     one onnxruntime thread each) + the trainer (the runtime node's RL session, one torch thread), on the 2 cores.
 *     Goals: >= 1.8x at 200 ms, >= 2.8x at 500 ms.
 *  2. Rollout-server throughput: 32 concurrent multi-turn clients (greedy episodes of the agent loop) through
 *     `agentforge serve` vs the in-process engine (BatchingGenerator over OrtEngine) on the same episodes: generated
 *     tokens/s >= 0.9x, and identical tokens.
 * The policy is the tool-calling tiny Qwen3 of test/rl-async/fixtures.ts (a random model never calls a tool, so
 * tool latency would never show); it is built once into the fixture cache (minutes the first time).
 * AGENTFORGE_BENCH_ASYNC_STEPS (default 3), _LATENCIES (default 50,200,500), _STALENESS (default 2), _REPS (default 3),
 * _MICRO (the trainer's micro-batch, default 8), _SERVE=0 skips part 2.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RlSession } from '../runtime/node/rl-session.ts';
import { RlLoopParams, rlLoop } from '../runtime/rl/rl-loop.ts';
import { StepStore } from '../runtime/rl/steps.ts';
import { loadPolicy } from '../runtime/agent/local.ts';
import { runRollout } from '../runtime/agent/loop.ts';
import { scriptedUser } from '../runtime/agent/scripted.ts';
import { openWorld } from '../runtime/worlds/index.ts';
import { makeTasks } from '../runtime/worlds/index.ts';
import { pythonBin } from '../test/fixtures/python.ts';
import { toolCallingModel, LIMITS } from '../test/rl-async/fixtures.ts';
import { spawnServe, type ChildServer } from '../test/rl-async/servers.ts';
import { emit, median } from './report.ts';

const env = process.env;
const STEPS = Number(env.AGENTFORGE_BENCH_ASYNC_STEPS ?? 3);
const LATENCIES = (env.AGENTFORGE_BENCH_ASYNC_LATENCIES ?? '50,200,500').split(',').map(Number);
const K = Number(env.AGENTFORGE_BENCH_ASYNC_STALENESS ?? 2);
const REPS = Number(env.AGENTFORGE_BENCH_ASYNC_REPS ?? 3);
const GOALS: Record<number, number> = { 200: 1.8, 500: 2.8 };
const GROUPS = 4;
const G = 2;

const tasks = makeTasks('retail', { seed: 3, n: 64, split: 'train', kinds: ['order_status'], distractorRate: 0 });

async function rlRun(hf: string, servers: ChildServer[], python: string, latencyMs: number, k: number) {
  const work = mkdtempSync(join(tmpdir(), 'af-bench-async-'));
  const metrics: Array<[string, number, number]> = [];
  const session = await RlSession.start({ python, env: { OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } });
  try {
    const params = RlLoopParams.parse({ steps: STEPS, groups: GROUPS, group_size: G, dynamic_sampling: false, max_groups: GROUPS, seed: 0,
      concurrency: GROUPS * G, max_staleness: k, rollout_servers: servers.map((s) => ({ url: s.url })),
      tool_latency: { kind: 'fixed', ms: latencyMs }, temperature: 1,
      limits: { max_turns: LIMITS.maxTurns, max_new_tokens: LIMITS.maxNewTokens, max_context: LIMITS.maxContext } });
    const t0 = performance.now();
    await rlLoop({ tasks, params, session, exportDir: join(work, 'export'), store: new StepStore(join(work, 'steps')),
      trainer: { model_dir: hf, checkpoint_dir: join(work, 'trainer'), lr: 1e-4, device: 'cpu', checkpoint_every: 1000, seed: 0, micro_batch_size: Number(env.AGENTFORGE_BENCH_ASYNC_MICRO ?? 8) },
      metric: (n, v, s) => metrics.push([n, v, s]), log: () => {} });
    const wall = (performance.now() - t0) / 1000;
    await session.close();
    const sum = (n: string) => metrics.filter(([m]) => m === n).reduce((a, [, v]) => a + v, 0);
    return { wall, trained: sum('train/samples'), train_s: sum('time/train_s'), sync_s: sum('time/sync_s'), trainer_idle_s: sum('time/trainer_idle_s'),
      rollout_idle_s: sum('time/rollout_idle_s'), env_s: sum('time/env_s'), stale_dropped: sum('rl/stale_dropped'), staleness_max: Math.max(0, ...metrics.filter(([m]) => m === 'rl/staleness_max').map(([, v]) => v)) };
  } finally {
    session.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

async function episodes(gen: Parameters<typeof runRollout>[1]['gen'], ct: Parameters<typeof runRollout>[1]['ct'], n: number) {
  const t0 = performance.now();
  const rs = await Promise.all(tasks.slice(0, n).map((task, i) => runRollout({ task, id: `c${i}`, groupId: 'g', sample: 0, seed: i, step: 0 },
    { world: openWorld(task.world), user: scriptedUser(task), gen, ct, limits: LIMITS, sampling: { temperature: 0, topP: 1 } })));
  const s = (performance.now() - t0) / 1000;
  return { s, tokens: rs.reduce((a, r) => a + r.completion_tokens, 0), ids: rs.map((r) => r.input_ids.join(',')), turns: rs.reduce((a, r) => a + r.turns, 0) };
}

async function main() {
  const python = await pythonBin();
  const hf = await toolCallingModel();
  const onnx = join(hf, 'onnx');

  // 2. server throughput vs the in-process engine, 32 concurrent multi-turn clients
  if (env.AGENTFORGE_BENCH_ASYNC_SERVE !== '0') {
    const local = await loadPolicy(onnx, { maxBatch: 32, maxContext: LIMITS.maxContext });
    const server = await spawnServe(onnx, ['--max-batch', '32', '--max-context', String(LIMITS.maxContext)]);
    try {
      const remote = await loadPolicy(onnx, { servers: [{ url: server.url }] });
      await episodes(local.gen, local.ct, 8); // warm both
      await episodes(remote.gen, remote.ct, 8);
      const a: number[] = [];
      const b: number[] = [];
      let same = 0;
      let total = 0;
      for (let r = 0; r < REPS; r++) {
        const x = await episodes(local.gen, local.ct, 32);
        const y = await episodes(remote.gen, remote.ct, 32);
        a.push(x.tokens / x.s);
        b.push(y.tokens / y.s);
        same += x.ids.filter((id, i) => id === y.ids[i]).length;
        total += x.ids.length;
      }
      const ratio = median(b) / median(a);
      emit({ bench: 'async', metric: 'serve_tokens_per_s_32_clients', value: median(b), unit: 'tokens/s', baseline: median(a), ratio, goal: '>= 0.9x in-process', pass: ratio >= 0.9 });
      emit({ bench: 'async', metric: 'serve_identical_greedy_episodes', value: same, unit: 'episodes', baseline: total, ratio: same / total, goal: 'all identical', pass: same === total });
      await remote.engine.close();
    } finally {
      await local.engine.close();
      await server.stop();
    }
  }

  // 1. async vs sync RL, 2 rollout servers + trainer
  const servers = await Promise.all([0, 1].map(() => spawnServe(onnx, ['--threads', '1', '--max-context', String(LIMITS.maxContext)])));
  try {
    for (const ms of LATENCIES) {
      const sync = await rlRun(hf, servers, python, ms, 0);
      const asy = await rlRun(hf, servers, python, ms, K);
      const sps = (x: typeof sync) => x.trained / x.wall;
      const ratio = sps(asy) / sps(sync);
      const goal = GOALS[ms];
      // what overlap can buy at most here: the time the sync trainer waits for rollouts, except the first step's
      // (nothing to train yet); the rest of the sync wall (training, hand-off, start-up) stays
      const bound = sync.wall / (sync.wall - sync.trainer_idle_s * (STEPS - 1) / STEPS);
      const extra = { latency_ms: ms, max_staleness: K, steps: STEPS, trained_sync: sync.trained, trained_async: asy.trained, overlap_bound: bound, sync_detail: sync, async_detail: asy };
      emit({ bench: 'async', metric: `rl_samples_per_s@${ms}ms`, value: sps(asy), unit: 'samples/s', baseline: sps(sync), ratio,
        goal: goal ? `>= ${goal}x sync` : 'report', pass: goal ? ratio >= goal : null, ...extra });
      emit({ bench: 'async', metric: `rl_wall_s@${ms}ms`, value: asy.wall, unit: 's', baseline: sync.wall, ratio: sync.wall / asy.wall,
        goal: `wall time to ${STEPS * GROUPS * G} trained samples (sync trains ${sync.trained})`, pass: null });
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

main().catch((e) => { console.error(e); process.exitCode = 1; });
