/*
 * Synthesis benchmarks (npx tsx bench/synthesis.ts). Baselines are measured in the same run:
 *  - scripted trajectories/s through synthesize() (p-queue, batches), baseline: the same episodes in a bare loop;
 *  - the offline DAG dags/synth.ts (≥ 2,000 trajectories incl. tasks, verify, filter) end to end, goal < 60 s;
 *  - requests/s through the OpenAI chat policy at concurrency 32 against a loopback server with 200 ms latency and
 *    5% injected 500s (retried), goal ≥ 90% of the ideal 32 / 0.2 s = 160/s; baseline: bare fetch, no errors.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Trajectory } from '../schemas/trajectory.ts';
import { makeTasks, WORLD_NAMES, getWorld } from '../runtime/worlds/index.ts';
import { hash32 } from '../runtime/engine/rng.ts';
import { runEpisode, systemPrompt } from '../runtime/agent/loop.ts';
import { scriptedTeacher, scriptedUser } from '../runtime/agent/scripted.ts';
import { synthesize } from '../runtime/synth/synthesize.ts';
import { openAIChatPolicy } from '../runtime/agent/engines/openai-chat.ts';
import { runDag } from '../runtime/engine/scheduler.ts';
import { emit, timeIt } from './report.ts';

const ROOT = resolve(import.meta.dirname, '..');
const tasks = WORLD_NAMES.flatMap((w) => makeTasks(w, { seed: 11, n: 170 }));
const PER_TASK = 4;
const N = tasks.length * PER_TASK;

async function scripted() {
  const bare = await timeIt(async () => {
    for (const task of tasks) for (let s = 0; s < PER_TASK; s++) {
      await runEpisode({ task, world: getWorld(task.world), teacher: scriptedTeacher(task, s, { rate: 0.3 }), user: scriptedUser(task), seed: s, trajectoryId: `${task.id}:s${s}` });
    }
  });
  const rows: Trajectory[] = [];
  const piped = await timeIt(() => synthesize({
    tasks, perTask: PER_TASK, seed: 0, batchSize: 256, concurrency: 8, sink: { has: () => false, write: async (_id, r) => { rows.push(...r); } },
    teacher: (t, s) => scriptedTeacher(t, s, { rate: 0.3 }), user: (t) => scriptedUser(t),
  }));
  const v = N / (piped.ms / 1000);
  const base = N / (bare.ms / 1000);
  emit({ bench: 'synthesis', metric: 'scripted_trajectories_per_s', value: Math.round(v), unit: 'traj/s', baseline: Math.round(base), ratio: +(v / base).toFixed(2), goal: '≥ 34/s (2,000 in < 60 s)', pass: v >= 2000 / 60, n: N });
}

async function dagRun() {
  const store = mkdtempSync(join(tmpdir(), 'af-bench-synth-'));
  try {
    const { default: synth } = await import('../dags/synth.ts');
    const { ms, value } = await timeIt(() => runDag(synth, { storeDir: store }));
    const s = ms / 1000;
    emit({ bench: 'synthesis', metric: 'dag_synth_seconds', value: +s.toFixed(1), unit: 's', baseline: null, ratio: null, goal: '< 60 s for ≥ 2,000 trajectories', pass: value.ok && s < 60, n: 2040 });
  } finally { rmSync(store, { recursive: true, force: true }); }
}

/** Starts test/synth/loopback-child.ts in its own process; resolves with its URL and a stop function. */
function loopbackProcess(env: Record<string, string>): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/synth/loopback-child.ts')], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve({ url: String(d).trim(), stop: () => child.stdin.end() }));
    child.once('exit', (code) => reject(new Error(`loopback server exited with ${code}`)));
  });
}

async function openaiPath() {
  const total = 1600;
  const server = await loopbackProcess({ LOOPBACK_LATENCY_MS: '200', LOOPBACK_ERROR_RATE: '0.05', LOOPBACK_WORLD: 'retail', LOOPBACK_SEED: '11', LOOPBACK_N: '1' });
  const task = makeTasks('retail', { seed: 11, n: 1 })[0];
  const world = getWorld(task.world);
  world.reset(task);
  const messages = [
    { role: 'system' as const, content: systemPrompt(world), tool_calls: [], tool_call_id: null, name: null },
    { role: 'user' as const, content: task.instruction, tool_calls: [], tool_call_id: null, name: null },
  ];
  const tools = world.toolSpecs();
  const drive = async (one: (i: number) => Promise<unknown>) => {
    let next = 0;
    const t = performance.now();
    await Promise.all(Array.from({ length: 32 }, async () => { while (next < total) await one(next++); }));
    return total / ((performance.now() - t) / 1000);
  };
  // baseline: bare fetch on keys that never fault (the fault hash is checked client-side here)
  const clean: string[] = [];
  for (let i = 0; clean.length < total; i++) { const k = `${task.id}:s${1_000_000 + i}:a0`; if ((hash32(k) % 10_000) / 10_000 >= 0.05) clean.push(k); }
  const base = await drive((i) => fetch(`${server.url}/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': clean[i] },
    body: JSON.stringify({ model: 'm', messages: messages.map((m) => ({ role: m.role, content: m.content })), tools }),
  }).then((r) => r.json()));
  const policy = openAIChatPolicy({ baseURL: server.url, model: 'm', apiKey: 'k', backoffMs: 50, timeoutMs: 10_000 });
  const cpu0 = process.cpuUsage();
  const v = await drive((i) => policy.respond({ messages, tools, idempotencyKey: `${task.id}:s${i}:a0` }));
  const cpu = process.cpuUsage(cpu0);
  // client CPU per request: at 160/s the client needs 160 × this of one core (the rest is the server and the OS)
  const cpuMsPerRequest = +((cpu.user + cpu.system) / 1000 / (total + policy.stats.retries)).toFixed(3);
  server.stop();
  emit({ bench: 'synthesis', metric: 'openai_requests_per_s', value: +v.toFixed(1), unit: 'req/s', baseline: +base.toFixed(1), ratio: +(v / 160).toFixed(3),
    goal: '≥ 144/s (90% of ideal 160/s at c=32, 200 ms, 5% errors)', pass: v >= 144, retries: policy.stats.retries, failures: policy.stats.failures,
    client_cpu_ms_per_request: cpuMsPerRequest, loadavg: loadavg()[0] });
}

const only = process.argv[2];
if (!only || only === 'scripted') await scripted();
if (!only || only === 'dag') await dagRun();
if (!only || only === 'openai') await openaiPath();
