/*
 * Test-time scaling of an SFT model: the tool-use recipe's SFT half (TOOLS_CONFIG's node ids and params, with which
 * the README's table was made; a store that ran that recipe reuses its SFT model), then N = 8 samples per held-out task at
 * temperature 1 and greedy decoding, best-of-N (world verifier; model-only: mean logprob, vote over tool-call
 * sequences), self-consistency over final answers, and pass@k / pass^k for k = 1…8.
 *   agentforge run dags/tts.ts && agentforge report dags/tts.ts --out tts.html
 *   agentforge sql "select world, strategy, n, success from tts where n in (1, 8) order by all"
 * TTS_SFT_STEPS / TTS_TRAIN_TASKS / TTS_WORLDS shrink the SFT half for a quick look (not the demo's model then).
 */
import { dag } from '../runtime/engine/dag.ts';
import { makeTasks } from '../operators/make-tasks.ts';
import { synthesize } from '../operators/synthesize.ts';
import { verify } from '../operators/verify.ts';
import { filter } from '../operators/filter.ts';
import { initModel } from '../operators/init-model.ts';
import { buildSftShards } from '../operators/build-sft-shards.ts';
import { trainSft } from '../operators/train-sft.ts';
import { exportOnnx } from '../operators/export-onnx.ts';
import { evaluate } from '../operators/evaluate.ts';
import { evalSummary } from '../operators/eval-summary.ts';
import { bestOfN } from '../operators/best-of-n.ts';
import { selfConsistency } from '../operators/self-consistency.ts';
import { passCurvesOp } from '../operators/pass-curves.ts';
import { TOOLS_CONFIG as C, KLEAR, recipeNode } from './klear-config.ts';

const N = 8;

export default dag('tts', (d) => {
  const c = { ...C, sftSteps: Number(process.env.TTS_SFT_STEPS ?? C.sftSteps), trainTasks: Number(process.env.TTS_TRAIN_TASKS ?? C.trainTasks),
    worlds: process.env.TTS_WORLDS ? process.env.TTS_WORLDS.split(',') : C.worlds };
  const node = recipeNode(d, c);
  const taskParams = { ...KLEAR.tasks, worlds: c.worlds, max_difficulty: c.maxDifficulty };
  const tasks = node('tasks', makeTasks, { ...taskParams, n: c.trainTasks, split: 'train' });
  const heldout = node('heldout_tasks', makeTasks, { ...taskParams, n: c.heldoutTasks, split: 'heldout' });
  const raw = node('synth', synthesize, KLEAR.synth, { tasks });
  const curated = node('filter', filter, KLEAR.filter, { trajectories: raw, verdicts: node('verify', verify, {}, { trajectories: raw, tasks }) });
  const base = node('base', initModel, { ...KLEAR.model, pretokenizer: c.pretokenizer }, { corpus: curated });
  const shards = node('sft_shards', buildSftShards, { max_len: c.maxLen }, { trajectories: curated, model: base });
  const sft = node('sft', trainSft, { ...KLEAR.sft, max_steps: c.sftSteps, device: c.device }, { shards, model: base });
  const models = [node('sft_onnx', exportOnnx, { policy_version: 0 }, { model: sft })];
  const greedy = node('greedy_rollouts', evaluate, { ...KLEAR.eval, labels: ['sft'] }, { tasks: heldout, models });
  const sampled = node('sampled_rollouts', evaluate, { ...KLEAR.eval, labels: ['sft'], samples: N, temperature: 1 }, { tasks: heldout, models });
  node('eval', evalSummary, {}, { rollouts: sampled });
  node('tts', bestOfN, {}, { rollouts: sampled, greedy });
  node('vote', selfConsistency, {}, { rollouts: sampled });
  node('pass_curves', passCurvesOp, {}, { rollouts: sampled });
}, { description: 'SFT half of the recipe → N = 8 samples and greedy on held-out tasks → best-of-N, self-consistency, pass@k / pass^k' });
