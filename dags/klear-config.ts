/*
 * The Klear recipe's knobs, in one place: the run's shape (KlearConfig: seed, worlds, sizes, steps — bench/learning
 * varies these) and KLEAR, the hyperparameters each stage runs with where they differ from the operators' defaults.
 * `recipeNode` gives the recipe's one seed to every node whose operator takes a seed.
 */
import type { z } from 'zod';
import type { DagBuilder, InputRefs, NodeRef } from '../runtime/engine/dag.ts';
import type { ArtifactSpec, InputSpec, Operator } from '../runtime/engine/operator.ts';
import type { TrainRlParams } from '../operators/train-rl.ts';
import type { initModel } from '../operators/init-model.ts';
import type { trainSft } from '../operators/train-sft.ts';
import type { ResolveModelParams } from '../operators/resolve-model.ts';
import type { merge } from '../operators/merge.ts';
import type { filter } from '../operators/filter.ts';
import type { evaluate } from '../operators/evaluate.ts';
import type { synthesizeCalls } from '../operators/synthesize-calls.ts';

/**
 * The model the recipe starts from: 'init' trains a tokenizer on the curated corpus and initialises a tiny Qwen3 (the
 * CPU default, KLEAR.model); 'hub' (repo + revision), 'path' (a local HF dir) and 'gguf' (a file) resolve an existing
 * model through resolve-model, checked before any node runs.
 */
export type BaseModel = { kind: 'init' } | z.input<typeof ResolveModelParams>['base'];

export type MergeMethod = 'ties' | 'task_arithmetic' | 'dare';

export interface KlearConfig {
  seed: number;
  base: BaseModel;
  /** Jinja source replacing a resolved base model's own chat template (e.g. one whose template drops tools). */
  chatTemplate?: string;
  worlds: string[];
  trainTasks: number;
  heldoutTasks: number;
  /** Tasks with at most this many gold tool calls (the embedded default keeps to short, learnable ones). */
  maxDifficulty: number;
  sftSteps: number;
  rlSteps: number;
  /** Prefix for node ids, so several recipes (seeds) fit in one DAG. */
  prefix: string;
  /**
   * RL experts, one per domain, merged into one model; empty = a single RL run over every world. `steps` replaces
   * rlSteps for one expert (a code step costs ~4x a tool-use step: sandboxed runs and longer turns); `rl` replaces
   * train-rl params for that expert alone, over KLEAR.rl and `rl` below.
   */
  experts: { id: string; worlds: string[]; steps?: number; rl?: Partial<z.input<typeof TrainRlParams>> }[];
  /**
   * How the experts are merged: one method, or several compared on `pickTasks` held-out tasks per world (another
   * seed's sample, not the evaluation's) and the best kept (pick-merge; every candidate's score is recorded).
   */
  mergeMethods: MergeMethod[];
  pickTasks: number;
  /** Public benchmarks (HumanEval, MBPP-test, QuixBugs, BFCL, τ-bench) on a fixed sample of `limit` per category, for every model; null = none. */
  benchmarks: { limit: number } | null;
  /** Tokenizer pre-splitting (see init-model): 'digits' makes tool-use sequences ~6x shorter. */
  pretokenizer: 'bytelevel' | 'digits';
  maxLen: number;
  /** Where the runtime node trains: 'auto' = CUDA + bf16 when torch sees a GPU, else CPU fp32. */
  device: 'auto' | 'cpu' | 'cuda';
  /**
   * Which train-split tasks RL samples: 'sft', the tasks SFT trained on (SFT solves ~90 % of them, so most groups
   * come back all-successful); 'fresh', as many new ones from another seed (no held-out task either way: the split
   * hashes the instruction). Measured on three seeds in the README.
   */
  rlPool: 'sft' | 'fresh';
  /** train-sft params that replace KLEAR.sft (lr, lora, batch sizes, …). */
  sft?: Partial<z.input<typeof trainSft.params>>;
  /** train-rl params that replace KLEAR.rl for every RL run (lr, lora, group_size, temperature, …). */
  rl?: Partial<z.input<typeof TrainRlParams>>;
  /** evaluate params that replace KLEAR.eval for the held-out evaluation and the merge pick (limits: a real model's context). */
  eval?: Partial<z.input<typeof evaluate.params>>;
  /**
   * Single-turn function-calling conversations (synthesize-calls) mixed into SFT beside the worlds' trajectories, so
   * a pretrained model keeps reading the offered tools (BFCL) instead of learning only the worlds' names. Unset: none.
   */
  calls?: Partial<z.input<typeof synthesizeCalls.params>>;
}

/** Two domains, as in the paper: tool use (retail + bank) and coding (function writing + repo repair). */
/**
 * The demo: two domains in ≤ 20 minutes of 2 CPU cores. Measured at 800 SFT steps, 10 RL steps per expert, 100
 * held-out and 25 pick tasks per world: 37 min (SFT 478 s, rl_tools 167 s, rl_code 677 s, merge pick 123 s, eval
 * 584 s); at 600 / 6 tool + 3 code steps / 50 / 10: ~23 min, and 600 SFT steps leave the tiny model unable to use
 * tools (held-out bank .02, retail .06 against .31 / .26 after 800). So SFT keeps its 800 steps; RL takes 5 tool and
 * 2 code steps (22.4 min with 40 held-out and 10 pick tasks per world: evaluation ~350 s, the pick 80 s, repo
 * episodes being the longest), and evaluation 25 held-out and the pick 5 tasks per world.
 */
export const DEFAULT_CONFIG: KlearConfig = {
  seed: 0, base: { kind: 'init' }, worlds: ['retail', 'bank', 'code', 'repo'], trainTasks: 1000, heldoutTasks: 25, maxDifficulty: 2,
  sftSteps: 800, rlSteps: 5, prefix: '', experts: [{ id: 'tools', worlds: ['retail', 'bank'] }, { id: 'code', worlds: ['code', 'repo'], steps: 2 }],
  mergeMethods: ['ties', 'task_arithmetic', 'dare'], pickTasks: 5, benchmarks: { limit: 2 },
  pretokenizer: 'digits', maxLen: 512, device: 'auto', rlPool: 'sft',
};

/** The tool-use-only recipe of earlier sessions (one expert per world, TIES): bench/learning's tables were made with it. */
export const TOOLS_CONFIG: KlearConfig = {
  ...DEFAULT_CONFIG, worlds: ['retail', 'bank'], experts: [{ id: 'retail', worlds: ['retail'] }, { id: 'bank', worlds: ['bank'] }],
  heldoutTasks: 100, sftSteps: 800, rlSteps: 10, mergeMethods: ['ties'], pickTasks: 25, benchmarks: null,
};

// Shared by rollouts, RL and evaluation: short turns, a context that fits the tiny model.
const LIMITS = { max_turns: 8, max_new_tokens: 96, max_context: 2048, max_repeats: 3 };

type Params<O extends { params: z.ZodType }> = Partial<z.input<O['params']>>;

export const KLEAR = {
  tasks: { distractor_rate: 0 },
  /** rlPool 'fresh' draws its tasks from the recipe's seed plus this. */
  freshSeedOffset: 1000,
  synth: { per_task: 1 },
  // filter and merge draw only for target/mix sampling and DARE, which the recipe does not use: their seed stays 0 so
  // every seed's cached filter (and everything downstream of it) is reused.
  filter: { seed: 0 } satisfies Params<typeof filter>,
  /** A tiny Qwen3 that trains on a CPU. */
  model: { vocab_size: 2048, hidden_size: 128, num_layers: 4, num_heads: 4, num_kv_heads: 2, head_dim: 32, intermediate_size: 384,
    max_position_embeddings: 2048 } satisfies Params<typeof initModel>,
  sft: { batch_size: 16, micro_batch_size: 8, lr: 3e-3, warmup_steps: 10, checkpoint_every: 25 } satisfies Params<typeof trainSft>,
  // Groups are kept when they mix successes and failures (DAPO's filter) and advantages are r − mean (Dr. GRPO): with
  // GRPO's std scaling on any reward difference, half of seed 2's trained bank groups were failures differing only in
  // the shaping terms, weighed like a success. Three seeds: RL experts 0.790 vs 0.782, merged 0.790 vs 0.773.
  rl: { groups: 16, group_size: 8, dynamic_sampling: true, max_groups: 48, screen: 4, keep_groups: 'outcome_varies', scale_rewards: false,
    temperature: 1, lr: 1e-4, eps_high: 0.28, micro_batch_size: 16, mini_batches: 2, concurrency: 64, limits: LIMITS,
    rewards: { default: { answer: 0.25 } } } satisfies Partial<z.input<typeof TrainRlParams>>,
  /** pick-merge's held-out sample comes from the recipe's seed plus this. */
  pickSeedOffset: 2000,
  // The merge candidates, all over the common SFT parent. TIES (Yadav et al. 2023): each expert's RL delta trimmed to
  // its larger half, signs elected, agreeing deltas averaged; on the tool-use experts of three seeds it kept >= 97 %
  // of each expert on its own domain where task arithmetic (lambda 1, the sum of both deltas) kept 93 % on seed 2's
  // bank. DARE (Yu et al. 2024): deltas dropped at random with the paper's p = 0.9, survivors rescaled, summed.
  merges: {
    ties: { method: 'ties', density: 0.5, seed: 0 },
    task_arithmetic: { method: 'task_arithmetic', lambda: 1, seed: 0 },
    dare: { method: 'dare', dropRate: 0.9, dareCombine: 'linear', seed: 0 },
  } satisfies Record<string, Params<typeof merge>>,
  /** Public benchmarks on the local model: τ-bench's user is the scripted one (no endpoint offline). */
  benchmarks: { agent: 'model', trials: 1, samples: 1, tauUser: 'scripted', maxTokens: 256 } as const,
  eval: { samples: 1, temperature: 0, limits: LIMITS } satisfies Params<typeof evaluate>,
};

/** `d.node` under the recipe's id prefix, with its seed given to every node whose operator takes one (unless the node names its own). */
export function recipeNode(d: DagBuilder, c: Pick<KlearConfig, 'prefix' | 'seed'>) {
  return <P extends z.ZodObject, I extends Record<string, InputSpec>, O extends ArtifactSpec>(
    id: string, op: Operator<P, I, O>, params: Omit<z.input<P>, 'seed'> & { seed?: number }, inputs?: InputRefs<I>,
  ): NodeRef<O> => d.node(c.prefix + id, op, ('seed' in op.params.shape ? { seed: c.seed, ...params } : params) as z.input<P>, inputs);
}
