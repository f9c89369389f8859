/*
 * The GPU operators in a real DAG: trajectories -> init-model -> build-sft-shards -> train-sft -> export-onnx.
 * Checks the committed artifacts, the metrics streamed into the ledger, and that a rerun is a no-op.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Ledger } from '../../storage/ledger.ts';
import { initModel } from '../../operators/init-model.ts';
import { trainSft } from '../../operators/train-sft.ts';
import { exportOnnx } from '../../operators/export-onnx.ts';
import { buildSftShards } from '../../operators/build-sft-shards.ts';
import { conversations } from './fixtures.ts';
import { TINY, python } from './helpers.ts';

const pipeline = dag('gpu-pipeline', (d) => {
  const trajs = d.node('trajectories', conversations, {});
  const base = d.node('base', initModel, { ...TINY, vocab_size: 400 }, { corpus: trajs });
  const shards = d.node('shards', buildSftShards, { max_len: 128, truncation: 'truncate' }, { trajectories: trajs, model: base });
  const sft = d.node('sft', trainSft, { batch_size: 1, micro_batch_size: 1, max_steps: 6, warmup_steps: 2, lr: 3e-3,
    checkpoint_every: 2, device: 'cpu' }, { shards, model: base });
  d.node('onnx', exportOnnx, { policy_version: 1 }, { model: sft });
});

describe('GPU operators in a DAG', () => {
  it('init-model -> build-sft-shards -> train-sft -> export-onnx, metrics in the ledger, rerun is a no-op', async () => {
    process.env.AGENTFORGE_PYTHON ??= await python();
    const storeDir = mkdtempSync(join(tmpdir(), 'af-gpu-store-'));
    try {
      const first = await runDag(pipeline, { storeDir });
      const errors = [...first.nodes].filter(([, r]) => r.error).map(([id, r]) => `${id}: ${r.error}`);
      expect(errors).toEqual([]);
      expect(first.ok).toBe(true);
      const ledger = await Ledger.openReadOnly(join(storeDir, 'ledger.duckdb'));
      const metrics = await ledger.all<{ name: string; n: number }>(
        "select name, count(*)::INT as n from metrics where node_id = 'sft' group by name order by name");
      // every node: the runner's memory while it ran; every node with a Python worker: that worker's own peak
      const memory = await ledger.all<{ node_id: string; name: string; mb: number }>(
        "select node_id, name, (max(value) / 2^20)::INT as mb from metrics where name like '%peak_rss_bytes' group by all order by all");
      await ledger.close();
      const mb = (node: string, name: string) => memory.find((m) => m.node_id === node && m.name === name)?.mb;
      for (const node of pipeline.nodes.map((n) => n.id)) expect(mb(node, 'runner_peak_rss_bytes'), node).toBeGreaterThan(30);
      // a worker that imported torch and loaded a model holds far more than the interpreter's ~10 MB
      for (const node of ['base', 'sft', 'onnx']) expect(mb(node, 'worker_peak_rss_bytes'), node).toBeGreaterThan(100);
      expect(mb('shards', 'worker_peak_rss_bytes')).toBeUndefined(); // in-process: no worker
      expect(metrics).toEqual(expect.arrayContaining([{ name: 'loss', n: 6 }, { name: 'lr', n: 6 }, { name: 'grad_norm', n: 6 }, { name: 'tokens_per_s', n: 6 }]));
      const tb = join(storeDir, 'tensorboard');
      expect(existsSync(tb)).toBe(true);

      const again = await runDag(pipeline, { storeDir });
      expect(new Set([...again.nodes.values()].map((r) => r.status))).toEqual(new Set(['cached']));
      const onnx = join(storeDir, 'artifacts', again.nodes.get('onnx')!.key);
      expect(JSON.parse(readFileSync(join(onnx, 'meta.json'), 'utf8'))).toMatchObject({ num_layers: 2, policy_version: 1 });
      expect(existsSync(join(onnx, 'model.onnx'))).toBe(true);
      const sftDir = join(storeDir, 'artifacts', again.nodes.get('sft')!.key);
      expect(JSON.parse(readFileSync(join(sftDir, 'tokenizer_config.json'), 'utf8')).chat_template).toContain('<tool_call>');
    } finally {
      rmSync(storeDir, { recursive: true, force: true });
    }
  }, 600_000);
});
