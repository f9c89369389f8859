/*
 * zod schemas of the RL trainer's requests and results: one per Python dataclass in
 * runtime/node/agentforge_node/commands/train_rl.py (RlStepRequest = `Request`, RlSample). A field with a Python
 * default is `.optional()` here. test/rl/rl-protocol.test.ts compares these with what the node's `describe` prints.
 *
 * Rollout table (the boundary between rollouts and training; Parquet, one row per sampled completion):
 *   input_ids          INTEGER[]  prompt + completion (+ tool results) token ids, exactly what the engine saw
 *   loss_mask          INTEGER[]  1 where the policy generated the token (trained), 0 for prompt/tool/padding
 *   behaviour_logprobs DOUBLE[]   engine logprob of input_ids[t] given input_ids[:t] (0 where loss_mask is 0),
 *                                 under softmax(logits / temperature) - see runtime/agent/engines/engine.ts
 *   group_id           VARCHAR    samples of one prompt share it (GRPO normalises rewards inside a group)
 *   reward             DOUBLE     scalar reward of the sample
 *   policy_version     INTEGER    optional: version that generated it (staleness metric; async wave)
 *   advantage          DOUBLE     optional: overrides the group-normalised advantage
 */
import { z } from 'zod';

const int = () => z.number().int();

export const RlSample = z.object({
  input_ids: z.array(int()),
  loss_mask: z.array(int()),
  behaviour_logprobs: z.array(z.number()),
  group_id: z.string(),
  reward: z.number(),
  policy_version: int().nullable().optional(),
  advantage: z.number().nullable().optional(),
});
export type RlSample = z.input<typeof RlSample>;

export const RlStepRequest = z.object({
  /** 'step' trains one step; 'state' only loads/resumes (and exports if asked) and reports the trainer's step. */
  op: z.enum(['step', 'state']).optional(),
  /** The initial policy (HF dir); also the KL reference. Same for every request of a run. */
  model_dir: z.string(),
  /** Checkpoints (model + optimizer + RNG + step); a new session resumes from the newest one here. */
  checkpoint_dir: z.string().nullable().optional(),
  /** op 'step': the step to perform, 1-based; afterwards policy_version == step. A step <= the trainer's is skipped. */
  step: int().optional(),
  /** Parquet file(s) of rollout rows (columns above), or `samples` inline. */
  rollouts: z.array(z.string()).nullable().optional(),
  samples: z.array(RlSample).nullable().optional(),
  temperature: z.number().optional(),
  eps_low: z.number().optional(),
  eps_high: z.number().optional(),
  beta_kl: z.number().optional(),
  /** Truncated importance sampling cap C on min(pi_trainer / pi_engine, C); null disables the correction. */
  tis_cap: z.number().nullable().optional(),
  adv_eps: z.number().optional(),
  scale_rewards: z.boolean().optional(),
  dynamic_sampling: z.boolean().optional(),
  mini_batches: int().optional(),
  lr: z.number().optional(),
  weight_decay: z.number().optional(),
  betas: z.array(z.number()).optional(),
  max_grad_norm: z.number().optional(),
  micro_batch_size: int().optional(),
  seed: int().optional(),
  checkpoint_every: int().optional(),
  keep_checkpoints: int().optional(),
  /** ONNX export of the new policy (model.onnx + model.onnx.data + meta.json + tokenizer) for the engines. */
  export_dir: z.string().nullable().optional(),
  /** auto: full export the first time in a session, then rewrite only the external weights file. */
  export_mode: z.enum(['auto', 'full', 'weights']).optional(),
  /** HF directory (config + safetensors + tokenizer) of the new policy. */
  save_dir: z.string().nullable().optional(),
  device: z.string().optional(),
});
export type RlStepRequest = z.input<typeof RlStepRequest>;

export const RlExport = z.object({
  dir: z.string(),
  mode: z.enum(['full', 'weights']),
  seconds: z.number(),
  policy_version: int(),
});

export const RlStepResult = z.object({
  op: z.enum(['step', 'state']),
  /** The trainer's step (== policy version of its weights) after this request. */
  step: int(),
  /** True when the requested step was already applied (e.g. replayed after a resume): nothing changed. */
  skipped: z.boolean(),
  /** Step of the checkpoint this session resumed from (null: started from model_dir or already loaded). */
  resumed_from: int().nullable(),
  metrics: z.record(z.string(), z.number()),
  checkpoint: z.string().nullable(),
  export: RlExport.nullable(),
  saved_dir: z.string().nullable(),
  timings: z.record(z.string(), z.number()),
  device: z.string(),
});
export type RlStepResult = z.infer<typeof RlStepResult>;
