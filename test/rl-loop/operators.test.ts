/*
 * The RL operators in a real DAG on a tiny random Qwen3: make-tasks → train-rl (2 GRPO steps, real rollouts and
 * trainer) → rl-rollouts (its trajectory table) → export-onnx → evaluate (one eval table for two models) and
 * rollout → score-rewards. Checks the tables, the per-step metrics in the ledger and that a rerun is a no-op.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { Ledger } from '../../storage/ledger.ts';
import { TableReader } from '../../storage/table.ts';
import { loadModel } from '../../operators/load-model.ts';
import { makeTasks } from '../../operators/make-tasks.ts';
import { trainRl } from '../../operators/train-rl.ts';
import { rlRollouts } from '../../operators/rl-rollouts.ts';
import { exportOnnx } from '../../operators/export-onnx.ts';
import { evaluate } from '../../operators/evaluate.ts';
import { evalSummary } from '../../operators/eval-summary.ts';
import { rollout } from '../../operators/rollout.ts';
import { scoreRewards } from '../../operators/score-rewards.ts';
import { EvalRollout, EvalRow } from '../../schemas/eval.ts';
import { Rollout } from '../../schemas/rollout.ts';
import { pythonBin, tinyOnnxModel } from '../fixtures/python.ts';

const LIMITS = { max_turns: 2, max_new_tokens: 4, max_context: 16_384, max_repeats: 3 };

function build(modelDir: string) {
  return dag('rl-ops', (d) => {
    const tasks = d.node('tasks', makeTasks, { worlds: ['retail'], n: 6, seed: 1, max_difficulty: 1, distractor_rate: 0 });
    const heldout = d.node('heldout', makeTasks, { worlds: ['retail'], n: 3, seed: 1, split: 'heldout', max_difficulty: 1, distractor_rate: 0 });
    const base = d.node('base', loadModel, { source: modelDir });
    const rl = d.node('rl', trainRl, { steps: 2, groups: 2, group_size: 2, dynamic_sampling: false, lr: 1e-3, device: 'cpu', concurrency: 4, limits: LIMITS },
      { tasks, model: base });
    d.node('rl_rollouts', rlRollouts, {}, { run: rl });
    const baseOnnx = d.node('base_onnx', exportOnnx, {}, { model: base });
    const rlOnnx = d.node('rl_onnx', exportOnnx, { policy_version: 2 }, { model: rl });
    const evalRollouts = d.node('eval_rollouts', evaluate, { labels: ['base', 'rl'], samples: 2, temperature: 1, limits: LIMITS }, { tasks: heldout, models: [baseOnnx, rlOnnx] });
    d.node('eval', evalSummary, {}, { rollouts: evalRollouts });
    const rolls = d.node('rollouts', rollout, { group_size: 2, n_tasks: 2, limits: LIMITS }, { tasks, policy: baseOnnx });
    d.node('rescored', scoreRewards, { rewards: { worlds: { retail: { validity: 0.5 } } } }, { rollouts: rolls, tasks });
  });
}

const table = <T>(storeDir: string, key: string, schema: never) => new TableReader<T>('x', key, [join(storeDir, 'artifacts', key, 'data.parquet')], schema).all();

describe('RL operators in a DAG', () => {
  it('train-rl, rl-rollouts, evaluate, rollout and score-rewards commit; metrics reach the ledger; rerun is a no-op', async () => {
    process.env.AGENTFORGE_PYTHON ??= await pythonBin();
    const storeDir = mkdtempSync(join(tmpdir(), 'af-rl-ops-'));
    try {
      const d = build(await tinyOnnxModel(0));
      const r = await runDag(d, { storeDir, concurrency: 2 });
      expect([...r.nodes].filter(([, n]) => n.error).map(([id, n]) => `${id}: ${n.error}`)).toEqual([]);
      const key = (id: string) => r.nodes.get(id)!.key;

      const rolls = await table<Rollout>(storeDir, key('rl_rollouts'), Rollout as never);
      expect(rolls).toHaveLength(8);
      expect(rolls.map((x) => x.step)).toEqual([1, 1, 1, 1, 2, 2, 2, 2]);
      expect(rolls.every((x) => x.loss_mask.length === x.input_ids.length && typeof x.reward_components.outcome === 'number')).toBe(true);

      const evalRows = await table<EvalRow>(storeDir, key('eval'), EvalRow as never);
      expect(evalRows.map((e) => [e.model, e.world, e.tasks, e.samples_per_task])).toEqual([['base', 'retail', 3, 2], ['rl', 'retail', 3, 2]]);
      expect(Object.keys(evalRows[0].pass_hat_k)).toEqual(['1', '2']);
      const evalRolls = await table<EvalRollout>(storeDir, key('eval_rollouts'), EvalRollout as never);
      expect(evalRolls.map((x) => x.model)).toEqual(['base', 'base', 'base', 'base', 'base', 'base', 'rl', 'rl', 'rl', 'rl', 'rl', 'rl']);
      // The verdict is the verifier's: a success has no reason, a failure at least one.
      expect(evalRolls.every((x) => (x.success ? x.verdict.length === 0 : x.verdict.length > 0))).toBe(true);
      for (const m of ['base', 'rl']) {
        const own = evalRolls.filter((x) => x.model === m);
        expect(evalRows.find((e) => e.model === m)!.success).toBeCloseTo(own.filter((x) => x.success).length / own.length, 9);
      }

      const rescored = await table<Rollout>(storeDir, key('rescored'), Rollout as never);
      expect(rescored).toHaveLength(4);

      const ledger = await Ledger.openReadOnly(join(storeDir, 'ledger.duckdb'));
      const m = await ledger.all<{ name: string; n: number }>("select name, count(distinct step)::INT as n from metrics where node_id = 'rl' group by name");
      await ledger.close();
      const names = new Map(m.map((x) => [x.name, x.n]));
      for (const n of ['rl/reward', 'rl/success', 'rl/reward_outcome', 'rl/tokens', 'time/generate_s', 'time/env_s', 'time/reward_s', 'time/train_s', 'time/sync_s']) {
        expect(names.get(n), n).toBe(2);
      }
      expect([...names.keys()].some((n) => n.startsWith('rl/finish_'))).toBe(true);

      const again = await runDag(d, { storeDir });
      expect([...again.nodes].filter(([, n]) => n.status !== 'cached').map(([id, n]) => `${id}: ${n.status}`)).toEqual([]);
    } finally {
      rmSync(storeDir, { recursive: true, force: true });
    }
  }, 900_000);
});
