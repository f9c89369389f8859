/*
 * zod request schemas of the runtime node's commands: one per Python `Request` dataclass in
 * runtime/node/agentforge_node/commands/<name>.py. A field with a Python default is `.optional()` here (Python
 * fills it in), so required-ness matches on both sides. test/gpu/protocol-sync.test.ts compares every schema in
 * NODE_REQUESTS with the dataclasses the node's `describe` command prints: names, required-ness and types.
 */
import { z } from 'zod';

const int = () => z.number().int();

export const InitModelRequest = z.object({
  out_dir: z.string(),
  chat_template: z.string(),
  texts: z.array(z.string()).optional(),
  text_file: z.string().nullable().optional(),
  vocab_size: int().optional(),
  min_frequency: int().optional(),
  pretokenizer: z.string().optional(),
  hidden_size: int().optional(),
  num_layers: int().optional(),
  num_heads: int().optional(),
  num_kv_heads: int().optional(),
  head_dim: int().optional(),
  intermediate_size: int().optional(),
  max_position_embeddings: int().optional(),
  rope_theta: z.number().optional(),
  tie_word_embeddings: z.boolean().optional(),
  seed: int().optional(),
});

export const TrainSftRequest = z.object({
  model_dir: z.string(),
  shards: z.array(z.string()),
  out_dir: z.string(),
  checkpoint_dir: z.string().nullable().optional(),
  resume: z.boolean().optional(),
  tensorboard_dir: z.string().nullable().optional(),
  epochs: int().optional(),
  max_steps: int().nullable().optional(),
  batch_size: int().optional(),
  micro_batch_size: int().optional(),
  lr: z.number().optional(),
  min_lr_ratio: z.number().optional(),
  warmup_steps: int().optional(),
  weight_decay: z.number().optional(),
  betas: z.array(z.number()).optional(),
  max_grad_norm: z.number().optional(),
  seed: int().optional(),
  checkpoint_every: int().optional(),
  max_seq_len: int().nullable().optional(),
  device: z.string().optional(),
});

export const ExportOnnxRequest = z.object({
  model_dir: z.string(),
  out_dir: z.string(),
  policy_version: int().optional(),
  opset: int().optional(),
});

export const ForwardRequest = z.object({
  model_dir: z.string(),
  input_ids: z.array(z.array(int())),
  attention_mask: z.array(z.array(int())).nullable().optional(),
  position_ids: z.array(z.array(int())).nullable().optional(),
});

export const DescribeRequest = z.object({});

/** Commands whose requests are typed here; other helpers' commands register theirs in this map too. */
export const TokenizeRequest = z.object({
  tokenizer: z.string(),
  texts: z.array(z.string()).optional(),
  conversations: z.array(z.record(z.string(), z.unknown())).optional(),
  chat_template: z.string().nullable().optional(),
  offsets: z.boolean().optional(),
});

/**
 * The Python `merge` command's Request (runtime/node/agentforge_node/commands/merge.py), field for field: fields
 * with a Python default are optional here, enums are plain strings there (the params schema above checks them).
 */
export const MergeRequest = z.object({
  method: z.string(), experts: z.array(z.string()), out: z.string(), base: z.string().nullable().optional(),
  weights: z.array(z.number()).nullable().optional(), lam: z.number().optional(), density: z.number().optional(),
  drop_rate: z.number().optional(), dare_combine: z.string().optional(), seed: z.number().int().optional(),
  t: z.number().optional(),
  overrides: z.array(z.object({
    pattern: z.string(), weights: z.array(z.number()).nullable().optional(), lam: z.number().nullable().optional(),
    density: z.number().nullable().optional(), drop_rate: z.number().nullable().optional(), t: z.number().nullable().optional(),
  })).optional(),
  dtype: z.string().nullable().optional(), max_shard_bytes: z.number().int().optional(),
});
export type MergeRequest = z.infer<typeof MergeRequest>;

export const NODE_REQUESTS = {
  merge: MergeRequest,
  tokenize: TokenizeRequest,
  'init-model': InitModelRequest,
  'train-sft': TrainSftRequest,
  'export-onnx': ExportOnnxRequest,
  forward: ForwardRequest,
  describe: DescribeRequest,
} as const;
export type NodeCommand = keyof typeof NODE_REQUESTS;
export type NodeRequest<C extends NodeCommand> = z.input<(typeof NODE_REQUESTS)[C]>;

/* ---- results (what `run` returns), validated by the client when a command asks for it ---- */

export const InitModelResult = z.object({
  out_dir: z.string(),
  num_parameters: int(),
  vocab_size: int(),
  special_token_ids: z.record(z.string(), int()),
});

export const TrainSftResult = z.object({
  out_dir: z.string(),
  steps: int(),
  resumed_from: int(),
  losses: z.array(z.number()),
  final_loss: z.number().nullable(),
  tokens_per_s: z.number().nullable(),
  peak_memory_bytes: int(),
  device: z.string(),
  world: int(),
});

export const OnnxMeta = z.object({
  num_layers: int(),
  num_kv_heads: int(),
  head_dim: int(),
  vocab_size: int(),
  eos_token_ids: z.array(int()),
  pad_token_id: int(),
  policy_version: int(),
});
export type OnnxMeta = z.infer<typeof OnnxMeta>;
export const ExportOnnxResult = z.object({ out_dir: z.string(), onnx: z.string(), meta: OnnxMeta });

export const ForwardResult = z.object({ logits: z.array(z.array(z.array(z.number()))) });
