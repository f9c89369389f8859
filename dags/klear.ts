/*
 * The paper's recipe (Klear-AgentForge) for two domains on the embedded default, end to end on a CPU: tool-use
 * (retail, bank) and coding (code, repo repair) tasks → synthesize (scripted teacher) → verify → filter → the base
 * model (init-model: tokenizer + tiny Qwen3; or a hub / local / GGUF model) → SFT on the mix → one multi-turn GRPO
 * expert per domain → the experts merged over the SFT model by TIES, task arithmetic and DARE, the best on a held-out
 * sample kept (pick-merge) → every model on every world's held-out tasks (`eval`) and on HumanEval / MBPP / QuixBugs /
 * BFCL / τ-bench samples (`bench_<model>_results`). Hyperparameters and the run's shape: klear-config.ts.
 * `npm run demo` runs it; then `agentforge sql "select model, world, success from eval"`, the merge candidates:
 * `agentforge sql "select model, world, success from merge_pick"`.
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
import { synthesizeCalls } from '../operators/synthesize-calls.ts';
import { trainSft } from '../operators/train-sft.ts';
import { exportOnnx } from '../operators/export-onnx.ts';
import { trainRl } from '../operators/train-rl.ts';
import { rlRollouts } from '../operators/rl-rollouts.ts';
import { evaluate } from '../operators/evaluate.ts';
import { evalSummary } from '../operators/eval-summary.ts';
import { evalSlices } from '../operators/eval-slices.ts';
import { merge } from '../operators/merge.ts';
import { pickMerge } from '../operators/pick-merge.ts';
import { benchmarkSuite } from './benchmarks.ts';
import { DEFAULT_CONFIG, KLEAR, recipeNode, type KlearConfig } from './klear-config.ts';
export { DEFAULT_CONFIG, KLEAR, TOOLS_CONFIG, type KlearConfig } from './klear-config.ts';

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
  const calls = c.calls && node('synth_calls', synthesizeCalls, c.calls);
  const shards = node('sft_shards', buildSftShards, { max_len: c.maxLen }, { trajectories: curated, ...(calls ? { extra: calls } : {}), model: base });
  const sft = node('sft', trainSft, { ...KLEAR.sft, max_steps: c.sftSteps, device: c.device, ...c.sft }, { shards, model: base });
  const onnx = (id: string, model: NodeRef<ModelSpec>, version = 0) => node(`${id}_onnx`, exportOnnx, { policy_version: version }, { model });
  const labels = ['base', 'sft'], models = [onnx('base', base), onnx('sft', sft)];
  const runs = c.experts.length < 2 ? [{ id: 'rl', worlds: c.experts[0]?.worlds ?? null, steps: c.rl?.steps ?? c.experts[0]?.steps ?? c.rlSteps, rl: c.experts[0]?.rl }]
    : c.experts.map((e) => ({ id: `rl_${e.id}`, worlds: e.worlds, steps: c.rl?.steps ?? e.steps ?? c.rlSteps, rl: e.rl }));
  // merges are labelled with the longest expert run's version
  const rlSteps = Math.max(...runs.map((r) => r.steps));
  const experts = runs.map(({ id, worlds, steps, rl }) => {
    const model = node(id, trainRl, { ...KLEAR.rl, worlds, device: c.device, ...c.rl, ...rl, steps }, { tasks: rlTasks, model: sft });
    node(`${id}_rollouts`, rlRollouts, {}, { run: model });
    labels.push(id);
    models.push(onnx(id, model, steps));
    return model;
  });
  if (experts.length > 1) {
    const methods = c.mergeMethods, one = methods.length === 1;
    const merges = methods.map((m) => node(one ? 'merged' : `merge_${m}`, merge, KLEAR.merges[m], { base: sft, experts }));
    const pickTasks = one ? undefined : node('pick_tasks', makeTasks, { ...taskParams, seed: c.seed + KLEAR.pickSeedOffset, n: c.pickTasks, split: 'heldout' });
    const candidates = pickTasks && node('merge_pick', evalSummary, {}, { rollouts: node('merge_pick_rollouts', evaluate, { ...KLEAR.eval, ...c.eval, labels: methods },
      { tasks: pickTasks, models: merges.map((m, i) => onnx(`merge_${methods[i]}`, m, rlSteps)) }) });
    labels.push('merged');
    models.push(onnx('merged', candidates ? node('merged', pickMerge, { labels: methods }, { summary: candidates, candidates: merges }) : merges[0], rlSteps));
  }
  const evalRollouts = node('eval_rollouts', evaluate, { ...KLEAR.eval, ...c.eval, labels }, { tasks: heldout, models });
  node('eval', evalSummary, {}, { rollouts: evalRollouts });
  node('eval_slices', evalSlices, {}, { rollouts: evalRollouts, tasks: heldout });
  if (c.benchmarks) labels.forEach((label, i) => benchmarkSuite(d, { ...KLEAR.benchmarks, ...c.benchmarks, prefix: `${c.prefix}bench_${label}_`, label }, models[i]));
}

export default dag('klear', (d) => klearRecipe(d), {
  description: 'tool use + code worlds → synth → verify/filter → base model → SFT on the mix → RL expert per domain → merges, the best kept → eval (held-out + benchmarks)',
});
