/*
 * The runtime node's commands, declared once: each request is a zod schema here (with every default), the
 * operators' params are the same schemas minus the paths the operator fills in, and the Python side is generated
 * from these schemas (scripts/gen-node-protocol.ts → agentforge_node/requests/<command>.py, checked current by
 * test/node/protocol.test.ts). Python holds no default, name or type of its own.
 */
import { z } from 'zod';

const int = () => z.number().int();
const device = z.enum(['auto', 'cpu', 'cuda']).default('auto');

/* ---- init-model: a byte-level BPE tokenizer + a tiny Qwen3 ---- */

export const InitModelParams = z.object({
  vocab_size: int().min(263).default(4096),
  min_frequency: int().min(1).default(2),
  /** 'digits' splits digits and merges across words: ~6x shorter tool-use sequences, copyable ids. */
  pretokenizer: z.enum(['bytelevel', 'digits']).default('bytelevel'),
  hidden_size: int().min(8).default(256),
  num_layers: int().min(1).default(4),
  num_heads: int().min(1).default(4),
  num_kv_heads: int().min(1).default(2),
  head_dim: int().min(4).default(64),
  intermediate_size: int().min(8).default(768),
  max_position_embeddings: int().min(16).default(2048),
  rope_theta: z.number().positive().default(10000),
  tie_word_embeddings: z.boolean().default(true),
  seed: int().default(0),
});

export const InitModelRequest = InitModelParams.extend({
  out_dir: z.string(),
  chat_template: z.string(),
  texts: z.array(z.string()).default([]),
  /** A UTF-8 file with one document per line (JSON strings accepted), for corpora too big for a request. */
  text_file: z.string().nullable().default(null),
});

/* ---- train-sft: AdamW, warmup + cosine, accumulation, clipping, resumable checkpoints ---- */

/** LoRA (peft): only the adapters train; the output dir holds the merged weights plus the adapter in `adapter/`. */
export const LoraParams = z.object({
  r: int().min(1).default(16),
  /** Scale alpha / r on B·A. */
  alpha: z.number().positive().default(32),
  dropout: z.number().min(0).lt(1).default(0),
  /** Linear layers to adapt, by name; the default is attention + MLP of Qwen/Llama-style models. */
  target_modules: z.array(z.string().min(1)).min(1)
    .default(['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj']),
}).strict().meta({ title: 'LoraParams' });

/** Memory/parallelism switches shared by train-sft and train-rl; none changes the math (fp tolerance). */
const scaleParams = {
  /** null = full fine-tuning. */
  lora: LoraParams.nullable().default(null),
  /** Recompute each decoder layer's activations in the backward pass: less memory, ~30% more compute. */
  gradient_checkpointing: z.boolean().default(false),
  /** Under torchrun (nproc > 1): 'ddp' replicates the model, 'fsdp' shards weights, grads and optimizer state
   * per decoder layer (FSDP2); saving gathers the full weights on rank 0. No effect in one process. */
  parallel: z.enum(['ddp', 'fsdp']).default('ddp'),
};

export const TrainSftParams = z.object({
  epochs: int().min(1).default(1),
  /** Overrides epochs when set. */
  max_steps: int().min(1).nullable().default(null),
  /** Packed rows per optimizer step, summed over all processes. */
  batch_size: int().min(1).default(8),
  /** Rows per forward pass; accumulation = batch_size / (micro_batch_size × processes). */
  micro_batch_size: int().min(1).default(8),
  lr: z.number().positive().default(3e-4),
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
  warmup_steps: int().min(0).default(10),
  weight_decay: z.number().min(0).default(0.01),
  betas: z.array(z.number()).length(2).default([0.9, 0.95]),
  max_grad_norm: z.number().positive().default(1.0),
  seed: int().default(0),
  checkpoint_every: int().min(1).default(50),
  max_seq_len: int().min(1).nullable().default(null),
  device,
  ...scaleParams,
});

export const TrainSftRequest = TrainSftParams.extend({
  model_dir: z.string(),
  shards: z.array(z.string()),
  out_dir: z.string(),
  checkpoint_dir: z.string().nullable().default(null),
  resume: z.boolean().default(true),
  tensorboard_dir: z.string().nullable().default(null),
});

/* ---- export-onnx, forward, tokenize ---- */

export const ExportOnnxParams = z.object({
  /** Written to meta.json; rollouts record it as the behaviour policy's version. */
  policy_version: int().min(0).default(0),
  opset: int().min(14).default(18),
  /**
   * Weights in the file (inputs, logits and KV stay float32): fp16 halves the file (ORT upcasts once at load: same
   * speed, ~0.03 logit drift); int8 quantizes the weight MatMuls (DynamicQuantizeMatMul, CPU) except the MLP's
   * down_proj and the embedding / LM head: ~1.5x decode speed, greedy output drifts from fp32 (see bench:export).
   */
  dtype: z.enum(['fp32', 'fp16', 'int8']).default('fp32'),
});

export const ExportOnnxRequest = ExportOnnxParams.extend({ model_dir: z.string(), out_dir: z.string() });

/** Model types the ONNX exporter (and so the TS engines) handles; checked when a base model is resolved. */
export const ONNX_MODEL_TYPES = ['llama', 'qwen2', 'qwen3'] as const;

/* ---- convert-gguf: a GGUF file dequantized (transformers' GGUF loading) into a Hugging Face dir ---- */

export const ConvertGgufRequest = z.object({
  gguf_file: z.string(),
  out_dir: z.string(),
  /** Replaces the GGUF's own template (saved as chat_template.jinja). */
  chat_template: z.string().nullable().default(null),
  /** Weights are saved in this dtype (the GGUF is dequantized to it). */
  dtype: z.enum(['float32', 'bfloat16']).default('float32'),
});

export const ForwardRequest = z.object({
  model_dir: z.string(),
  input_ids: z.array(z.array(int())),
  attention_mask: z.array(z.array(int())).nullable().default(null),
  position_ids: z.array(z.array(int())).nullable().default(null),
});

export const TokenizeRequest = z.object({
  /** tokenizer.json, or a model directory holding one. */
  tokenizer: z.string(),
  /** Encoded with add_special_tokens=False: chat text already carries its special tokens. */
  texts: z.array(z.string()).default([]),
  /** Each {messages, tools, add_generation_prompt}; rendered with transformers. */
  conversations: z.array(z.record(z.string(), z.unknown())).default([]),
  chat_template: z.string().nullable().default(null),
  /** Also return each token's [start, end) code-point offsets into its text. */
  offsets: z.boolean().default(false),
});

/* ---- merge (agentforge_node/merge) ---- */

const weights = z.array(z.number()).min(1);
const density = z.number().gt(0, 'density must be in (0, 1]').lte(1, 'density must be in (0, 1]');
const dropRate = z.number().gte(0, 'dropRate must be in [0, 1)').lt(1, 'dropRate must be in [0, 1)');
const slerpT = z.number().gte(0, 't must be in [0, 1]').lte(1, 't must be in [0, 1]');

export const MergeOverride = z.object({
  /** Shell glob over tensor names, e.g. '*embed_tokens*' or '*norm*'; the first matching override wins. */
  pattern: z.string().min(1),
  weights: weights.optional(),
  lambda: z.number().optional(),
  density: density.optional(),
  dropRate: dropRate.optional(),
  t: slerpT.optional(),
}).strict().meta({ title: 'MergeOverride' });

/** The merge operator's params (operators/merge.ts adds the checks that span fields). */
export const MergeOptions = z.object({
  method: z.enum(['linear', 'task_arithmetic', 'ties', 'dare', 'slerp']),
  /** One per expert. linear: must sum to 1 (default equal); task_arithmetic/ties/dare: scale each task vector (default 1). */
  weights: weights.optional(),
  /** λ: scale of the merged task vector (task_arithmetic, ties, dare). */
  lambda: z.number().default(1),
  /** TIES: fraction of each task vector kept, by magnitude. */
  density: density.default(1),
  /** DARE: drop probability p; survivors are rescaled by 1/(1−p). 0.9 is the paper's setting. */
  dropRate: dropRate.default(0.9),
  /** DARE: what follows the drop, task arithmetic ('linear') or TIES sign election ('ties'). */
  dareCombine: z.enum(['linear', 'ties']).default('linear'),
  seed: int().default(0),
  /** SLERP factor: 0 = first model (the base when there is one), 1 = second. */
  t: slerpT.default(0.5),
  overrides: z.array(MergeOverride).default([]),
  /** Output dtype; unset = each tensor in its input dtype. Computation is always fp32. */
  dtype: z.enum(['float32', 'bfloat16', 'float16']).optional(),
  maxShardBytes: int().positive().default(2_000_000_000),
}).strict();

export const MergeRequest = MergeOptions.extend({
  experts: z.array(z.string()),
  out: z.string(),
  base: z.string().nullable().default(null),
}).strict();
export type MergeRequest = z.input<typeof MergeRequest>;

/* ---- train-rl: one GRPO step per request (agentforge_node/rl_trainer.py; the loss in grpo.py) ---- */

/**
 * One trained sequence. The rollout side (runtime/rl) decides which samples train and with what advantage; the
 * trainer only computes the loss.
 *   input_ids          prompt + completion (+ tool results) token ids, exactly what the engine saw
 *   loss_mask          1 where the policy generated the token (trained), 0 for prompt/tool/padding
 *   behaviour_logprobs engine logprob of input_ids[t] given input_ids[:t] (0 where loss_mask is 0), under
 *                      softmax(logits / temperature) - see runtime/agent/engines/engine.ts
 *   advantage          the sample's advantage, shared by its trained tokens (runtime/rl/advantages.ts)
 *   policy_version     version that generated it (staleness metric)
 */
export const RlSample = z.object({
  input_ids: z.array(int()),
  loss_mask: z.array(int()),
  behaviour_logprobs: z.array(z.number()),
  advantage: z.number(),
  policy_version: int().nullable().default(null),
}).meta({ title: 'RlSample' });
export type RlSample = z.input<typeof RlSample>;

/** The trainer's hyperparameters; train-rl's params include them as they are (one default each). */
export const RlTrainerParams = z.object({
  /** Sampling temperature: the trainer's logprobs are taken under softmax(logits / temperature) like the engine's. */
  temperature: z.number().gt(0).default(1),
  lr: z.number().positive().default(1e-5),
  /** PPO clip range [1 − eps_low, 1 + eps_high]; DAPO's clip-higher by default. */
  eps_low: z.number().min(0).default(0.2),
  eps_high: z.number().min(0).default(0.28),
  /** k3 KL to the initial policy; 0 = no reference forward. */
  beta_kl: z.number().min(0).default(0),
  /** Truncated importance sampling cap C on min(pi_trainer / pi_engine, C); null disables the correction. */
  tis_cap: z.number().positive().nullable().default(2),
  micro_batch_size: int().min(1).default(8),
  /** Optimizer steps per RL step, each on a slice of the batch, with ratios taken against the policy before the
   * first slice (PPO-style: from the second slice on the ratio differs from 1 and clipping engages). */
  mini_batches: int().min(1).default(1),
  checkpoint_every: int().min(1).default(1),
  seed: int().default(0),
  device,
  ...scaleParams,
});

export const RlStepRequest = RlTrainerParams.extend({
  /** 'step' trains one step; 'state' only loads/resumes (and exports if asked) and reports the trainer's step. */
  op: z.enum(['step', 'state']).default('step'),
  /** The initial policy (HF dir); also the KL reference. Same for every request of a run. */
  model_dir: z.string(),
  /** Checkpoints (model + optimizer + RNG + step); a new session resumes from the newest one here. */
  checkpoint_dir: z.string().nullable().default(null),
  /** op 'step': the step to perform, 1-based; afterwards policy_version == step. A step <= the trainer's is skipped. */
  step: int().min(0).default(0),
  samples: z.array(RlSample).default([]),
  weight_decay: z.number().min(0).default(0),
  betas: z.array(z.number()).length(2).default([0.9, 0.999]),
  max_grad_norm: z.number().positive().default(1),
  keep_checkpoints: int().min(1).default(2),
  /** ONNX export of the new policy (model.onnx + model.onnx.data + meta.json + tokenizer) for the engines. */
  export_dir: z.string().nullable().default(null),
  /** auto: full export the first time in a session, then rewrite only the external weights file. */
  export_mode: z.enum(['auto', 'full', 'weights']).default('auto'),
  /** HF directory (config + safetensors + tokenizer) of the new policy. */
  save_dir: z.string().nullable().default(null),
});
export type RlStepRequest = z.input<typeof RlStepRequest>;

/** Every command's request; the generator writes one Python class per entry (name → class name). */
export const NODE_REQUESTS = {
  'init-model': InitModelRequest,
  'train-sft': TrainSftRequest,
  'export-onnx': ExportOnnxRequest,
  'convert-gguf': ConvertGgufRequest,
  forward: ForwardRequest,
  tokenize: TokenizeRequest,
  merge: MergeRequest,
  'train-rl': RlStepRequest,
} as const;
export type NodeCommand = keyof typeof NODE_REQUESTS;
export type NodeRequest<C extends NodeCommand> = z.input<(typeof NODE_REQUESTS)[C]>;

/** Python classes generated besides the requests: the merge engine's spec is the merge operator's params. */
export const NODE_SCHEMAS: Record<string, z.ZodObject> = { MergeOptions };

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
export const ExportOnnxResult = z.object({ out_dir: z.string(), onnx: z.string(), meta: OnnxMeta, dtype: z.string(), bytes: int() });

export const ConvertGgufResult = z.object({
  out_dir: z.string(),
  /** general.architecture of the GGUF, and the model_type / class transformers loaded it as. */
  architecture: z.string(),
  model_type: z.string(),
  model_class: z.string(),
  num_parameters: int(),
  tensor_types: z.record(z.string(), int()),
  tie_word_embeddings: z.boolean(),
  seconds: z.number(),
});

export const ForwardResult = z.object({ logits: z.array(z.array(z.array(z.number()))) });

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
