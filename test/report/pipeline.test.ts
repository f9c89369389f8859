/*
 * The report of a real (tiny) recipe: SFT on a tiny random Qwen3 (loss / lr curves, SFT token statistics), two GRPO
 * steps (reward and components, success, KL, entropy, clip fraction, step times stacked), evaluation of two models
 * with 4 samples and greedy, test-time scaling (best-of-n with the greedy line, self-consistency, pass@k / pass^k).
 * In Chromium every chart has one mark per row of its SQL; TensorBoard reads the exported RL run; the W&B export
 * has one line per (run, step).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dag } from '../../runtime/engine/dag.ts';
import { runDag } from '../../runtime/engine/scheduler.ts';
import { writeReport } from '../../runtime/report/report.ts';
import { exportTensorboard } from '../../runtime/report/tensorboard.ts';
import { exportWandb } from '../../runtime/report/wandb.ts';
import { makeTasks } from '../../operators/make-tasks.ts';
import { loadModel } from '../../operators/load-model.ts';
import { trainRl } from '../../operators/train-rl.ts';
import { exportOnnx } from '../../operators/export-onnx.ts';
import { evaluate } from '../../operators/evaluate.ts';
import { evalSummary } from '../../operators/eval-summary.ts';
import { bestOfN } from '../../operators/best-of-n.ts';
import { selfConsistency } from '../../operators/self-consistency.ts';
import { passCurvesOp } from '../../operators/pass-curves.ts';
import { initModel } from '../../operators/init-model.ts';
import { buildSftShards } from '../../operators/build-sft-shards.ts';
import { trainSft } from '../../operators/train-sft.ts';
import { conversations } from '../node/fixtures.ts';
import { TINY } from '../node/helpers.ts';
import { pythonBin, runProcess, tinyOnnxModel } from '../fixtures/python.ts';
import { findBrowser, inspectPage, launch, NO_BROWSER, sqlRowCounts } from './browser.ts';

const LIMITS = { max_turns: 2, max_new_tokens: 4, max_context: 16_384, max_repeats: 3 };

function build(modelDir: string) {
  return dag('report-pipeline', (d) => {
    const trajs = d.node('trajectories', conversations, { n: 12 });
    const small = d.node('small', initModel, { ...TINY, vocab_size: 400 }, { corpus: trajs });
    const shards = d.node('shards', buildSftShards, { max_len: 128, truncation: 'truncate' }, { trajectories: trajs, model: small });
    d.node('sft', trainSft, { batch_size: 1, micro_batch_size: 1, max_steps: 4, warmup_steps: 2, lr: 3e-3, device: 'cpu' }, { shards, model: small });
    const tasks = d.node('tasks', makeTasks, { worlds: ['retail'], n: 6, seed: 1, max_difficulty: 1, distractor_rate: 0 });
    const heldout = d.node('heldout', makeTasks, { worlds: ['retail'], n: 3, seed: 1, split: 'heldout', max_difficulty: 1, distractor_rate: 0 });
    const base = d.node('base', loadModel, { source: modelDir });
    const rl = d.node('rl', trainRl, { steps: 2, groups: 2, group_size: 2, dynamic_sampling: false, lr: 1e-3, device: 'cpu', concurrency: 4, limits: LIMITS },
      { tasks, model: base });
    const models = [d.node('base_onnx', exportOnnx, {}, { model: base }), d.node('rl_onnx', exportOnnx, { policy_version: 2 }, { model: rl })];
    const sampled = d.node('samples', evaluate, { labels: ['base', 'rl'], samples: 4, temperature: 1, limits: LIMITS }, { tasks: heldout, models });
    const greedy = d.node('greedy', evaluate, { labels: ['base', 'rl'], limits: LIMITS }, { tasks: heldout, models });
    d.node('eval', evalSummary, {}, { rollouts: greedy });
    d.node('tts', bestOfN, {}, { rollouts: sampled, greedy });
    d.node('vote', selfConsistency, {}, { rollouts: sampled });
    d.node('curves', passCurvesOp, {}, { rollouts: sampled });
  });
}

const chromium = findBrowser();

describe('the report of a tiny recipe', () => {
  it('SFT, RL, eval and test-time scaling charts with one mark per SQL row; TensorBoard and W&B exports', async () => {
    process.env.AGENTFORGE_PYTHON ??= await pythonBin();
    const storeDir = mkdtempSync(join(tmpdir(), 'af-report-pipe-'));
    try {
      const r = await runDag(build(await tinyOnnxModel(0)), { storeDir, concurrency: 2 });
      expect([...r.nodes].filter(([, n]) => n.error).map(([id, n]) => `${id}: ${n.error}`)).toEqual([]);

      const out = join(storeDir, 'report.html');
      await writeReport({ storeDir, out });
      const html = readFileSync(out, 'utf8');
      const sql = await sqlRowCounts(storeDir, html);
      for (const id of ['timeline', 'sft-sft-loss', 'sft-sft-lr', 'tokens-shards', 'rl-rl-reward', 'rl-rl-success', 'rl-rl-kl', 'rl-rl-entropy',
        'rl-rl-clip', 'rl-rl-time', 'data-tasks', 'data-heldout', 'eval-eval', 'tts-tts', 'tts-vote', 'passk-curves']) {
        expect(sql.get(id), `chart ${id}`).toBeGreaterThan(0);
      }
      expect(sql.get('sft-sft-loss')).toBe(4);
      expect(sql.get('rl-rl-time')).toBe(2 * 5); // 2 steps × generate, env, reward, train, sync
      // tts: 3 selectors + greedy at n = 1, 2, 4, for 2 models × 1 world; curves: pass@k and pass^k, k = 1..4
      expect(sql.get('tts-tts')).toBe(4 * 3 * 2);
      expect(sql.get('passk-curves')).toBe(2 * 4 * 2);

      if (!chromium) console.warn(`skipping the browser half: ${NO_BROWSER}`);
      else {
        const browser = await launch(chromium);
        try {
          const page = await inspectPage(browser, out);
          expect(page.errors).toEqual([]);
          expect(page.requests).toEqual([]);
          expect(page.rendered).toBe('ok');
          expect(page.charts.length).toBe(sql.size);
          for (const c of page.charts) expect({ id: c.id, marks: c.marks }).toEqual({ id: c.id, marks: sql.get(c.id) });
          expect(page.colours).toBeGreaterThan(50);
        } finally { await browser.close(); }
      }

      const tb = join(storeDir, 'tensorboard');
      const dirs = await exportTensorboard(storeDir, tb, 'report-pipeline');
      const rlDir = dirs.find((x) => x.includes(`/rl-${r.nodes.get('rl')!.key.slice(0, 12)}`))!;
      expect(rlDir).toBeTruthy();
      expect(dirs.some((x) => x.includes('/sft-'))).toBe(false); // the trainer wrote its own events there
      expect(readdirSync(tb).some((x) => x.startsWith('sft-'))).toBe(true);
      const read = await runProcess(process.env.AGENTFORGE_PYTHON!, ['-c', `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()['scalars']}))`, rlDir]);
      expect(read.stderr.includes('Traceback') ? read.stderr : '').toBe('');
      const scalars = JSON.parse(read.stdout) as Record<string, [number, number][]>;
      expect(scalars['rl/reward'].map(([s]) => s)).toEqual([1, 2]);
      expect(Object.keys(scalars)).toEqual(expect.arrayContaining(['rl/success', 'train/clip_frac', 'time/train_s']));

      const w = await exportWandb(storeDir, join(storeDir, 'metrics.jsonl'), 'report-pipeline');
      const lines = readFileSync(w.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const rlRows = lines.filter((l) => String(l._run).startsWith('report-pipeline/rl-'));
      // step 0 carries the node's stepless metrics (e.g. export seconds); the RL curves are steps 1 and 2
      expect(rlRows.filter((l) => 'rl/reward' in l).map((l) => l._step)).toEqual([1, 2]);
      expect(rlRows.map((l) => l._step)).toEqual([...rlRows.map((l) => l._step as number)].sort((a, b) => a - b));
      expect(typeof rlRows.find((l) => l._step === 1)!['rl/reward']).toBe('number');
      expect(w.rows).toBe(lines.length);
    } finally {
      rmSync(storeDir, { recursive: true, force: true });
    }
  }, 900_000);
});
