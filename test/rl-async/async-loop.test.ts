/*
 * The RL loop with rollout servers, synchronous and asynchronous, end to end with real parts: a tiny Qwen3 served by
 * `agentforge serve` (child processes, or in-process servers), the PyTorch trainer in the runtime node's RL session,
 * the retail world and the agent loop. Asynchronous: the next step's rollouts run while a step trains, no sample is
 * older than max_staleness, every step is trained once. Reliability: a rollout server SIGKILLed mid-step (its
 * episodes finish on the other server, no sample lost or trained twice), the trainer SIGKILLed (the rerun resumes
 * at its checkpoint and the servers are made to serve that version again), a server that only answers with the wrong
 * policy version (its samples are dropped with the reason and never trained).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RlSession } from '../../runtime/node/rl-session.ts';
import { RlLoopParams, rlLoop, withinStaleness, type RlLoopOptions } from '../../runtime/rl/rl-loop.ts';
import { StepStore, type StepRecord } from '../../runtime/rl/steps.ts';
import { groupOptions } from '../../runtime/rl/rollouts.ts';
import { loadChatTokenizer } from '../../runtime/agent/tokenize.ts';
import { serve, type RunningServer } from '../../runtime/agent/serve/server.ts';
import { toolLatency } from '../../runtime/worlds/latency.ts';
import type { Rollout } from '../../schemas/rollout.ts';
import { pythonBin, tinyOnnxModel } from '../fixtures/python.ts';
import { goldStatus, ScriptedEngine, statusTasks } from '../rollout/helpers.ts';
import { badServer, sglangLike, spawnServe, type ChildServer } from './servers.ts';

let python: string;
let modelDir: string;
const dirs: string[] = [];
beforeAll(async () => {
  python = await pythonBin();
  modelDir = await tinyOnnxModel(0);
}, 900_000);
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function setup(over: Record<string, unknown>, metrics: Array<[string, number, number]>, session: RlSession, work?: string): RlLoopOptions {
  const dir = work ?? mkdtempSync(join(tmpdir(), 'af-rl-async-'));
  if (!work) dirs.push(dir);
  return {
    tasks: statusTasks(8), session, exportDir: join(dir, 'export'), store: new StepStore(join(dir, 'steps')),
    params: RlLoopParams.parse({ steps: 3, groups: 2, group_size: 2, dynamic_sampling: false, max_groups: 2, seed: 0, concurrency: 4,
      limits: { max_turns: 1, max_new_tokens: 4, max_context: 16_384 }, ...over }),
    trainer: { model_dir: modelDir, checkpoint_dir: join(dir, 'trainer'), lr: 1e-3, device: 'cpu', checkpoint_every: 1, seed: 0 },
    metric: (name, v, step) => metrics.push([name, v, step]), log: () => {},
  };
}

const metric = (ms: Array<[string, number, number]>, name: string) => ms.filter(([n]) => n === name).map(([, v, s]) => [s, v]);
const all = (rec: StepRecord) => [...rec.train, ...rec.dropped];

function expectEveryStepOnce(o: RlLoopOptions, ms: Array<[string, number, number]>, steps: number): void {
  expect(o.store.steps()).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
  const ids = o.store.steps().flatMap((s) => all(o.store.read(s)).map((r) => r.id));
  expect(new Set(ids).size).toBe(ids.length);
  expect(metric(ms, 'train/samples').map(([s]) => s)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
}

describe('asynchronous RL on rollout servers', () => {
  it('max_staleness 1: the next step generates while one trains; every sample within the bound; every step trained once', async () => {
    const servers = await Promise.all([serve({ dir: modelDir }), serve({ dir: modelDir })]);
    const ms: Array<[string, number, number]> = [];
    const session = await RlSession.start({ python });
    try {
      const o = setup({ max_staleness: 1, rollout_servers: servers.map((s) => ({ url: `${s.url}/v1` })), tool_latency: { kind: 'fixed', ms: 5 } }, ms, session);
      let aheadAtTrain = 0;
      o.beforeTrain = (s) => { if (s === 1) aheadAtTrain = o.store.steps().length; };
      const r = await rlLoop(o);
      expect(r.finalStep).toBe(3);
      expectEveryStepOnce(o, ms, 3);
      // what was generated ahead ran on the policy one version behind; nothing older was trained
      expect([1, 2, 3].map((s) => o.store.read(s).train.map((x) => s - 1 - x.policy_version).every((d) => d >= 0 && d <= 1))).toEqual([true, true, true]);
      expect(metric(ms, 'rl/stale_dropped').map(([, v]) => v)).toEqual([0, 0, 0]);
      expect(o.store.read(2).train.some((x) => x.policy_version === 0)).toBe(true); // generated ahead, on the old policy
      // every rollout's turn versions are stored with the step; its policy_version is the oldest of them
      for (const s of [1, 2, 3]) {
        const rec = o.store.read(s);
        for (const x of all(rec)) expect(Math.min(...rec.versions![x.id])).toBe(x.policy_version);
      }
      expect(metric(ms, 'rl/staleness_max').every(([, v]) => v <= 1)).toBe(true);
      expect(metric(ms, 'rl/queue_steps_ahead')[0][1]).toBe(1);
      expect(aheadAtTrain).toBeGreaterThanOrEqual(1);
      for (const n of ['time/trainer_idle_s', 'time/rollout_idle_s', 'time/reload_s', 'time/export_s', 'time/sync_s', 'rl/versions_per_sample', 'rl/stale_dropped']) {
        expect(metric(ms, n).length, n).toBe(3);
      }
      expect(servers.map((s) => s.policyVersion)).toEqual([2, 2]); // reloaded after step 2 (step 3 was generating)
      await session.close();
    } finally {
      session.kill();
      await Promise.all(servers.map((s) => s.close()));
    }
  }, 600_000);

  it('a rollout server SIGKILLed mid-step: its episodes finish on the other one; no sample lost or trained twice', async () => {
    const kids: ChildServer[] = await Promise.all([spawnServe(modelDir), spawnServe(modelDir)]);
    const ms: Array<[string, number, number]> = [];
    const session = await RlSession.start({ python });
    try {
      const o = setup({ max_staleness: 1, concurrency: 8, groups: 3, rollout_servers: kids.map((k) => ({ url: k.url })), server_timeout_ms: 20_000 }, ms, session);
      o.beforeTrain = (s) => { if (s === 1) process.kill(kids[0].pid, 'SIGKILL'); }; // step 2 is generating now
      await rlLoop(o);
      expectEveryStepOnce(o, ms, 3);
      for (const s of [1, 2, 3]) {
        const rec = o.store.read(s);
        expect(all(rec)).toHaveLength(6);
        expect(all(rec).filter((x) => x.error_counts.engine_error)).toEqual([]);
      }
      const lost = ms.filter(([n]) => /^rl\/server_(dropped_(unreachable|reload_failed)|failed_requests)$/.test(n));
      expect(lost.filter(([n]) => n !== 'rl/server_failed_requests').reduce((a, [, v]) => a + v, 0)).toBeGreaterThan(0);
      expect(metric(ms, 'rl/server_failed_requests').every(([, v]) => v === 0)).toBe(true);
      await session.close();
    } finally {
      session.kill();
      await Promise.all(kids.map((k) => k.stop()));
    }
  }, 600_000);

  it('the trainer SIGKILLed: the rerun resumes at its checkpoint, the servers serve that version again, no step twice', async () => {
    const servers = await Promise.all([serve({ dir: modelDir }), serve({ dir: modelDir })]);
    const other = await tinyOnnxModel(1);
    const work = mkdtempSync(join(tmpdir(), 'af-rl-async-'));
    dirs.push(work);
    const ms: Array<[string, number, number]> = [];
    const first = await RlSession.start({ python });
    const second = await RlSession.start({ python });
    try {
      const urls = servers.map((s) => ({ url: `${s.url}/v1` }));
      const o1 = setup({ max_staleness: 1, rollout_servers: urls }, ms, first, work);
      o1.afterStep = (s) => { if (s === 1) process.kill(first.pid!, 'SIGKILL'); };
      await expect(rlLoop(o1)).rejects.toThrow(/SIGKILL/);
      // the servers meanwhile serve something else (e.g. restarted from the base model)
      for (const s of servers) await fetch(`${s.url}/v1/reload`, { method: 'POST', body: JSON.stringify({ dir: other, version: 99 }) });
      const seen: number[][] = [];
      const o2 = setup({ max_staleness: 1, rollout_servers: urls }, ms, second, work);
      o2.beforeTrain = () => { seen.push(servers.map((s) => s.policyVersion)); };
      const r = await rlLoop(o2);
      expect(r.resumedFrom).toBe(1);
      expect(r.finalStep).toBe(3);
      expect(seen[0]).toEqual([1, 1]); // reloaded to the trainer's resumed version before generating
      expect(o2.store.steps()).toEqual([1, 2, 3]);
      const trained = metric(ms, 'train/samples').map(([s]) => s);
      expect(trained).toEqual([1, 2, 3]);
      await second.close();
    } finally {
      first.kill();
      second.kill();
      await Promise.all(servers.map((s) => s.close()));
    }
  }, 600_000);

  it('an SGLang-style server gets the HF directory the trainer saves each version through update_weights_from_disk', async () => {
    const upstream = await serve({ dir: modelDir });
    const sg = await sglangLike(`${upstream.url}/v1`);
    const ms: Array<[string, number, number]> = [];
    const session = await RlSession.start({ python });
    try {
      const o = setup({ steps: 2, rollout_servers: [{ url: sg.url, reload: 'sglang', weights: 'hf' }] }, ms, session);
      await rlLoop(o);
      expect(sg.reloads.map((r) => r.model_path)).toEqual([`${o.exportDir}-hf`, `${o.exportDir}-hf`]); // version 0, then 1
      for (const r of sg.reloads) expect(r.files).toEqual(expect.arrayContaining(['config.json', 'model.safetensors']));
      expect(o.store.read(2).train.every((x) => x.policy_version === 1)).toBe(true);
      expect(metric(ms, 'rl/server_failed_requests').every(([, v]) => v === 0)).toBe(true);
      await session.close();
    } finally {
      session.kill();
      await sg.close();
      await upstream.close();
    }
  }, 600_000);

  it('a server that answers with the wrong policy version: its samples are dropped with the reason and never trained', async () => {
    const good = await serve({ dir: modelDir });
    const liar = await badServer('wrong_version', `${good.url}/v1`);
    const ms: Array<[string, number, number]> = [];
    const session = await RlSession.start({ python });
    try {
      const o = setup({ steps: 1, rollout_servers: [{ url: liar.url }], server_timeout_ms: 5000 }, ms, session);
      await rlLoop(o);
      const rec = o.store.read(1);
      expect(all(rec).every((x) => x.trainable === false && x.error_counts.engine_error === 1)).toBe(true);
      expect(all(rec)[0].errors[0].message).toMatch(/wrong_version/);
      expect(metric(ms, 'rl/server_dropped_wrong_version')[0][1]).toBeGreaterThanOrEqual(4);
      expect(metric(ms, 'train/samples')).toEqual([[1, 0]]);
      await session.close();
    } finally {
      session.kill();
      await liar.close();
      await good.close();
    }
  }, 600_000);
});

describe('staleness and partial rollouts', () => {
  const row = (id: string, v: number) => ({ id, policy_version: v, trainable: true }) as Rollout;

  it('tool latency: none by default, fixed is exact, lognormal is seeded per call with the given median', () => {
    expect(toolLatency({ kind: 'none', ms: 100, sigma: 0.5, seed: 0 })).toBeUndefined();
    expect(toolLatency({ kind: 'fixed', ms: 200, sigma: 0.5, seed: 0 })!('x')).toBe(200);
    const lat = toolLatency({ kind: 'lognormal', ms: 200, sigma: 0.5, seed: 3 })!;
    const xs = Array.from({ length: 2001 }, (_, i) => lat(`ep:${i}`)).sort((a, b) => a - b);
    expect(xs[1000]).toBeGreaterThan(180);
    expect(xs[1000]).toBeLessThan(220);
    expect(new Set(xs).size).toBeGreaterThan(1900);
    expect(toolLatency({ kind: 'lognormal', ms: 200, sigma: 0.5, seed: 4 })!('ep:0')).not.toBe(lat('ep:0'));
  });

  it('withinStaleness drops exactly the samples older than the bound (sync: never)', () => {
    const rec: StepRecord = { step: 5, train: [row('a', 4), row('b', 3), row('c', 2)], dropped: [], droppedSolved: 0, droppedFailed: 0, times: {} };
    expect(withinStaleness(rec, 0)).toEqual({ rec, stale: 0 });
    const { rec: kept, stale } = withinStaleness(rec, 1);
    expect([kept.train.map((r) => r.id), kept.dropped.map((r) => [r.id, r.trainable]), stale]).toEqual([['a', 'b'], [['c', false]], 1]);
  });

  it('an episode that crosses a weight reload keeps each turn\'s version; its policy_version is the oldest', async () => {
    const ct = loadChatTokenizer(modelDir);
    const engine = new ScriptedEngine(ct, goldStatus);
    const versions = new Map<string, Array<{ version: number; tokens: number }>>();
    const gen = { get policyVersion() { return engine.policyVersion; },
      async generate(req: Parameters<ScriptedEngine['generate']>[0][0]) {
        const [g] = await engine.generate([req]);
        await engine.reload('', engine.policyVersion + 1); // new weights arrive after every turn
        return g;
      } };
    const lat = toolLatency({ kind: 'lognormal', ms: 3, sigma: 0.5, seed: 1 })!;
    expect(lat('a')).toBe(lat('a'));
    const o = groupOptions({ policy: { ct, gen }, limits: { maxTurns: 4, maxNewTokens: 64, maxContext: 16_384, maxRepeats: 3 }, sampling: { temperature: 1, topP: 1 },
      rewards: RlLoopParams.parse({}).rewards, groupSize: 2, concurrency: 1, step: 1, seed: 0, latency: lat, onVersions: (id, t) => versions.set(id, t) });
    const task = statusTasks(1)[0];
    const r = await o.run({ task, id: 'ep', groupId: 'g', sample: 0, seed: 0, step: 1 });
    expect(r.turns).toBe(2);
    expect(versions.get('ep')!.map((t) => t.version)).toEqual([0, 1]);
    expect(r.policy_version).toBe(0);
    expect(r.timings[0].env_ms).toBeGreaterThan(0);
  });
});
