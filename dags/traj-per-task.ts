/*
 * The paper's Figure 3 question on our data: SFT on 1 vs k trajectories per task at an equal token budget. Two arms
 * on the program-running worlds (code, repo repair), whose scripted teacher takes several valid paths per task:
 *   k1: `tasks` tasks per world, one trajectory each;
 *   kK: tasks / K tasks per world, up to K distinct trajectories each (filter's trajectories_per_task ranks
 *       distinct action sequences first), so both arms hold about as many trajectories.
 * Both SFT runs start from one init-model (its tokenizer trained on the k1 data, the wider set of tasks) and train
 * the same steps on packed sequences of the same length: the same number of tokens. Then both on the same held-out
 * tasks:
 *   agentforge run dags/traj-per-task.ts
 *   agentforge sql "select model, world, round(success, 3) success, round(mean_reward, 3) reward from eval order by all"
 *   agentforge sql "select 'k1' arm, count(*) packs, sum(list_sum(seq_lens)) tokens from sft_shards_k1"   (and _kK)
 * Size: TRAJ_TASKS (per world), TRAJ_K, TRAJ_STEPS, TRAJ_HELDOUT, TRAJ_SEED.
 */
import { dag, type DagBuilder } from '../runtime/engine/dag.ts';
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
import { DEFAULT_CONFIG, KLEAR, recipeNode } from './klear-config.ts';

export interface TrajConfig { seed: number; worlds: string[]; tasks: number; k: number; sftSteps: number; heldout: number }

export const TRAJ_CONFIG: TrajConfig = { seed: 0, worlds: ['code', 'repo'], tasks: 400, k: 4, sftSteps: 300, heldout: 50 };

export function trajPerTask(d: DagBuilder, c: TrajConfig = TRAJ_CONFIG): void {
  if (c.k < 2) throw new Error(`traj-per-task: k must be ≥ 2 to compare with 1 trajectory per task (got ${c.k})`);
  const node = recipeNode(d, { prefix: '', seed: c.seed });
  const taskParams = { ...KLEAR.tasks, worlds: c.worlds };
  const arms = [{ id: 'k1', n: c.tasks, keep: 1 }, { id: `k${c.k}`, n: Math.max(1, Math.round(c.tasks / c.k)), keep: c.k }].map((a) => {
    const tasks = node(`tasks_${a.id}`, makeTasks, { ...taskParams, n: a.n, split: 'train' });
    const raw = node(`synth_${a.id}`, synthesize, { per_task: a.keep }, { tasks });
    const verdicts = node(`verify_${a.id}`, verify, {}, { trajectories: raw, tasks });
    return { ...a, data: node(`data_${a.id}`, filter, { ...KLEAR.filter, trajectories_per_task: a.keep, dedup: 'task' }, { trajectories: raw, verdicts }) };
  });
  const base = node('base', initModel, { ...KLEAR.model, pretokenizer: DEFAULT_CONFIG.pretokenizer }, { corpus: arms[0].data });
  const models = arms.map((a) => {
    const shards = node(`sft_shards_${a.id}`, buildSftShards, { max_len: DEFAULT_CONFIG.maxLen }, { trajectories: a.data, model: base });
    const sft = node(`sft_${a.id}`, trainSft, { ...KLEAR.sft, max_steps: c.sftSteps }, { shards, model: base });
    return node(`sft_${a.id}_onnx`, exportOnnx, {}, { model: sft });
  });
  const heldout = node('heldout_tasks', makeTasks, { ...taskParams, n: c.heldout, split: 'heldout' });
  node('eval', evalSummary, {}, { rollouts: node('eval_rollouts', evaluate, { ...KLEAR.eval, labels: arms.map((a) => a.id) }, { tasks: heldout, models }) });
}

const env = process.env;
const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
export default dag('traj-per-task', (d) => trajPerTask(d, {
  ...TRAJ_CONFIG, seed: num(env.TRAJ_SEED, TRAJ_CONFIG.seed), tasks: num(env.TRAJ_TASKS, TRAJ_CONFIG.tasks), k: num(env.TRAJ_K, TRAJ_CONFIG.k),
  sftSteps: num(env.TRAJ_STEPS, TRAJ_CONFIG.sftSteps), heldout: num(env.TRAJ_HELDOUT, TRAJ_CONFIG.heldout),
}), { description: 'Figure 3: SFT on 1 vs k trajectories per task at an equal token budget (code + repo repair) → held-out success' });
