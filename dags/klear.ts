/*
 * The paper's recipe (Klear-AgentForge) on the embedded default, end to end on a CPU: tasks → synthesize (scripted
 * teacher) → verify → filter → init-model (tokenizer + tiny Qwen3) → SFT shards → train-sft → train-rl per domain
 * (multi-turn GRPO experts) → merge the experts (TIES over the SFT model) → evaluate base, SFT, every expert and the
 * merged model on every domain's held-out tasks → one table. Hyperparameters and the run's shape: klear-config.ts.
 * `npm run demo` runs it; then `agentforge sql "select model, success, pass_hat_k from eval"`, and why each
 * held-out task failed: `agentforge sql "select model, task_id, verdict from eval_rollouts where not success"`.
 */
import { dag, type DagBuilder, type NodeRef } from '../runtime/engine/dag.ts';
import type { ModelSpec } from '../runtime/engine/operator.ts';
import { makeTasks } from '../operators/make-tasks.ts';
import { synthesize } from '../operators/synthesize.ts';
import { verify } from '../operators/verify.ts';
import { filter } from '../operators/filter.ts';
import { initModel } from '../operators/init-model.ts';
import { resolveModel } from '../operators/resolve-model.ts';
import { buildSftShards } from '../operators/build-sft-shards.ts';
import { trainSft } from '../operators/train-sft.ts';
import { exportOnnx } from '../operators/export-onnx.ts';
import { trainRl } from '../operators/train-rl.ts';
import { rlRollouts } from '../operators/rl-rollouts.ts';
import { evaluate } from '../operators/evaluate.ts';
import { evalSummary } from '../operators/eval-summary.ts';
import { merge } from '../operators/merge.ts';
import { DEFAULT_CONFIG, KLEAR, recipeNode, type KlearConfig } from './klear-config.ts';
export { DEFAULT_CONFIG, KLEAR, type KlearConfig } from './klear-config.ts';

/** The recipe's nodes, built into any DAG (bench/learning.ts builds one per seed, each with its own prefix). */
export function klearRecipe(d: DagBuilder, c: KlearConfig = DEFAULT_CONFIG): void {
  const node = recipeNode(d, c);
  const taskParams = { ...KLEAR.tasks, worlds: c.worlds, max_difficulty: c.maxDifficulty };
  const tasks = node('tasks', makeTasks, { ...taskParams, n: c.trainTasks, split: 'train' });
  const heldout = node('heldout_tasks', makeTasks, { ...taskParams, n: c.heldoutTasks, split: 'heldout' });
  const rlTasks = c.rlPool === 'sft' ? tasks
    : node('rl_tasks', makeTasks, { ...taskParams, seed: c.seed + KLEAR.freshSeedOffset, n: c.trainTasks, split: 'train' });
  const raw = node('synth', synthesize, KLEAR.synth, { tasks });
  const curated = node('filter', filter, KLEAR.filter, { trajectories: raw, verdicts: node('verify', verify, {}, { trajectories: raw, tasks }) });
  if (c.base.kind === 'init' && c.chatTemplate) throw new Error(`klear: chatTemplate is for a resolved base model; the 'init' base always uses the pipeline's CHAT_TEMPLATE (drop chatTemplate or set base)`);
  const base = c.base.kind === 'init' ? node('base', initModel, { ...KLEAR.model, pretokenizer: c.pretokenizer }, { corpus: curated })
    : node('base', resolveModel, { base: c.base, chat_template: c.chatTemplate ?? null });
  const shards = node('sft_shards', buildSftShards, { max_len: c.maxLen }, { trajectories: curated, model: base });
  const sft = node('sft', trainSft, { ...KLEAR.sft, max_steps: c.sftSteps, device: c.device, ...c.sft }, { shards, model: base });
  const onnx = (id: string, model: NodeRef<ModelSpec>, version = 0) => node(`${id}_onnx`, exportOnnx, { policy_version: version }, { model });
  const labels = ['base', 'sft'], models = [onnx('base', base), onnx('sft', sft)];
  const rlSteps = c.rl?.steps ?? c.rlSteps;
  const runs = c.experts.length < 2 ? [{ id: 'rl', worlds: c.experts[0]?.worlds ?? null }] : c.experts.map((e) => ({ id: `rl_${e.id}`, worlds: e.worlds }));
  const experts = runs.map(({ id, worlds }) => {
    const model = node(id, trainRl, { ...KLEAR.rl, worlds, steps: rlSteps, device: c.device, ...c.rl }, { tasks: rlTasks, model: sft });
    node(`${id}_rollouts`, rlRollouts, {}, { run: model });
    labels.push(id);
    models.push(onnx(id, model, rlSteps));
    return model;
  });
  if (experts.length > 1) {
    labels.push('merged');
    models.push(onnx('merged', node('merged', merge, KLEAR.merge, { base: sft, experts }), rlSteps));
  }
  node('eval', evalSummary, {}, { rollouts: node('eval_rollouts', evaluate, { ...KLEAR.eval, labels }, { tasks: heldout, models }) });
}

export default dag('klear', (d) => klearRecipe(d), {
  description: 'worlds → synth → verify/filter → init-model → SFT shards → SFT → RL experts per domain → merge → eval (held-out)',
});
