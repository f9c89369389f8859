/*
 * train-sft: supervised fine-tuning of a model on packed token shards, in the runtime node (PyTorch).
 * Streams loss, lr, grad-norm and tokens/s into the ledger's metrics table (and a TensorBoard dir under the
 * store); checkpoints into ctx.checkpointDir every `checkpoint_every` steps so a killed run, rerun, resumes there.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { model, operator, table } from '../runtime/engine/operator.ts';
import { runNode } from '../runtime/node/client.ts';
import { forwardEvents, nodeCode } from '../runtime/node/bridge.ts';
import { TrainSftParams as TrainSftHyper, TrainSftResult, type NodeRequest } from '../runtime/node/protocol.ts';

/** The shard columns the trainer reads (build-sft-shards writes these and more). */
export const SftShardColumns = z.object({
  input_ids: z.array(z.number().int()),
  loss_mask: z.array(z.number().int().min(0).max(1)),
  position_ids: z.array(z.number().int()),
  seq_lens: z.array(z.number().int()),
});

export const TrainSftParams = TrainSftHyper.extend({
  /** torchrun processes (DDP, or FSDP with parallel 'fsdp'); batch_size must be a multiple of micro_batch_size × nproc. */
  nproc: z.number().int().min(1).default(1),
  /** Torch threads per process; 0 = the cores divided among the processes (AGENTFORGE_TORCH_THREADS). */
  threads: z.number().int().min(0).default(0),
});

export const trainSft = operator({
  name: 'train-sft',
  version: 4,  // 4: lora (peft; merged weights + adapter/), gradient_checkpointing, parallel 'fsdp'
  // 3: samples unpacked into length-sorted causal micro-batches (same loss, ~1.3x faster on CPU)
  description: 'SFT on packed shards: AdamW, warmup + cosine, accumulation, clipping, resumable checkpoints',
  params: TrainSftParams,
  inputs: { shards: table(SftShardColumns, 'sft shards'), model: model() },
  output: model(),
  resources: ['gpu'],
  codeDeps: nodeCode('commands/train_sft.py'),
  async run({ params, inputs, out, ctx }) {
    const { nproc, threads, ...hyper } = params;
    const request: NodeRequest<'train-sft'> = {
      ...hyper,
      model_dir: inputs.model.dir,
      shards: inputs.shards.files,
      out_dir: out.dir,
      checkpoint_dir: join(ctx.checkpointDir, 'sft'),
      resume: true,
      tensorboard_dir: join(ctx.storeDir, 'tensorboard', `${ctx.nodeId}-${ctx.key.slice(0, 12)}`),
    };
    const res = await runNode('train-sft', request,
      { signal: ctx.signal, onEvent: forwardEvents(ctx), nproc, result: TrainSftResult, env: threads ? { AGENTFORGE_TORCH_THREADS: String(threads) } : {} });
    ctx.log(`train-sft: ${res.steps} steps (resumed at ${res.resumed_from}), final loss ${res.final_loss?.toFixed(4)}, ` +
      `${Math.round(res.tokens_per_s ?? 0)} tokens/s on ${res.device}`);
  },
});
