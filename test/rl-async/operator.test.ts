/*
 * train-rl in a real DAG, synchronous and asynchronous (on two `agentforge serve` rollout servers): the step-time
 * breakdown per role (generate, env, reward, train, weight hand-off, idle of the trainer and of the rollout side) and
 * the staleness / queue metrics land in the ledger's metrics table, one row per step, queryable in SQL side by side.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { collectReport } from '../../runtime/report/report.ts';
import { Ledger } from '../../storage/ledger.ts';
import { loadModel } from '../../operators/load-model.ts';
import { makeTasks } from '../../operators/make-tasks.ts';
import { trainRl } from '../../operators/train-rl.ts';
import { serve } from '../../runtime/agent/serve/server.ts';
import { pythonBin, tinyOnnxModel } from '../fixtures/python.ts';

const LIMITS = { max_turns: 2, max_new_tokens: 4, max_context: 16_384, max_repeats: 3 };
const ROLES = ['time/generate_s', 'time/env_s', 'time/reward_s', 'time/train_s', 'time/sync_s', 'time/export_s', 'time/reload_s', 'time/trainer_idle_s', 'time/rollout_idle_s'];

describe('train-rl sync and async in a DAG', () => {
  it('the step-time breakdown per role and the staleness metrics are in the metrics table for both', async () => {
    process.env.AGENTFORGE_PYTHON ??= await pythonBin();
    const modelDir = await tinyOnnxModel(0);
    const servers = await Promise.all([serve({ dir: modelDir }), serve({ dir: modelDir })]);
    const storeDir = mkdtempSync(join(tmpdir(), 'af-rl-async-dag-'));
    try {
      const common = { steps: 2, groups: 2, group_size: 2, dynamic_sampling: false, lr: 1e-3, device: 'cpu' as const, concurrency: 4, limits: LIMITS,
        tool_latency: { kind: 'lognormal' as const, ms: 5 } };
      const d = dag('rl-async', (g) => {
        const tasks = g.node('tasks', makeTasks, { worlds: ['retail'], n: 6, seed: 1, max_difficulty: 1, distractor_rate: 0 });
        const base = g.node('base', loadModel, { source: modelDir });
        g.node('sync', trainRl, common, { tasks, model: base });
        g.node('async', trainRl, { ...common, max_staleness: 1, rollout_servers: servers.map((s) => ({ url: `${s.url}/v1` })) }, { tasks, model: base });
      });
      const r = await runDag(d, { storeDir, concurrency: 1 });
      expect([...r.nodes].filter(([, n]) => n.error).map(([id, n]) => `${id}: ${n.error}`)).toEqual([]);
      const ledger = await Ledger.openReadOnly(join(storeDir, 'ledger.duckdb'));
      try {
        const rows = await ledger.all<{ node_id: string; name: string; n: number }>(
          `select node_id, name, count(distinct step)::INT as n from metrics where name like 'time/%' or name like 'rl/stale%' or name like 'rl/queue%' group by all order by all`);
        const has = (node: string) => new Map(rows.filter((x) => x.node_id === node).map((x) => [x.name, x.n]));
        for (const name of ROLES) {
          expect(has('sync').get(name), `sync ${name}`).toBe(2);
          expect(has('async').get(name), `async ${name}`).toBe(2);
        }
        expect(has('async').get('rl/staleness_max')).toBe(2);
        expect(has('async').get('rl/queue_steps_ahead')).toBe(2);
        const stale = await ledger.all<{ v: number }>(`select max(value) as v from metrics where node_id = 'async' and name = 'rl/staleness_max'`);
        expect(stale[0].v).toBeLessThanOrEqual(1);
        // the long-lived trainer child reports its memory high-water mark with every reply (one or more per step)
        const mem = await ledger.all<{ node_id: string; n: number; mb: number }>(
          `select node_id, count(*)::INT as n, (max(value) / 2^20)::INT as mb from metrics where name = 'worker_peak_rss_bytes' group by all order by all`);
        for (const node of ['sync', 'async']) {
          const m = mem.find((x) => x.node_id === node);
          expect(m?.n, node).toBeGreaterThanOrEqual(2);
          expect(m?.mb, node).toBeGreaterThan(100);
        }
      } finally {
        await ledger.close();
      }
      // The report draws each role's idle time and the queue depths of the async run, one mark per metric row.
      const rl = (await collectReport({ storeDir, dag: d })).sections.find((x) => x.id === 'rl')!;
      const chart = (id: string) => rl.charts.find((c) => c.id === id);
      for (const node of ['sync', 'async']) expect(chart(`rl-${node}-idle`)?.rows.length, `${node} idle`).toBe(4);
      expect(chart('rl-async-queues')?.rows.length).toBeGreaterThanOrEqual(4);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
      rmSync(storeDir, { recursive: true, force: true });
    }
  }, 900_000);
});
