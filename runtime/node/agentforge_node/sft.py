"""Supervised fine-tuning on packed token shards: AdamW, linear warmup + cosine decay, gradient accumulation,
clipping, seeded data order, checkpoints that resume bit-exactly, optional torchrun DDP or FSDP, LoRA and
gradient checkpointing (trainable.py).

The loss is the mean cross-entropy over every trained token of the global batch (all micro-batches, all ranks),
so 1 process x 4 micro-batches and 2 processes x 2 micro-batches give the same update. Metrics go out as protocol
events (-> the ledger's metrics table) and, when asked, to a TensorBoard event dir.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as dist_util
from .device import peak_memory_bytes, pick_device, seed_everything
from .trainable import Trainable
from .protocol import Emitter
from .requests.train_sft import TrainSftRequest
from .shards import Batch, Row, load_rows, micro_batches


class TokenLoss(nn.Module):
    """Per-token loss as a module, so DistributedDataParallel sees one forward per micro-batch.

    Only positions that are trained go through the LM head: for small models the vocab projection is a large share
    of the compute, and prompt/tool tokens (loss_mask 0) need no logits at all.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor,
                target_mask: torch.Tensor) -> torch.Tensor:
        # No attention mask: batches are right-padded samples (shards.micro_batches), where causal is exact.
        out = self.model.model(input_ids=input_ids, position_ids=position_ids, use_cache=False)
        hidden = out.last_hidden_state[target_mask]            # [N, H], N = trained positions
        logits = self.model.lm_head(hidden).float()            # [N, V]
        return F.cross_entropy(logits, targets[target_mask], reduction="none")  # [N]


def token_losses(loss_module: nn.Module, batch: Batch) -> torch.Tensor:
    """Cross-entropy of every trained next-token prediction in the batch, in row-major order: [N]."""
    return loss_module(batch.input_ids, batch.position_ids, batch.targets, batch.target_mask)


class MetricSink:
    def __init__(self, emit: Emitter, tensorboard_dir: str | None) -> None:
        self.emit = emit
        self.writer = None
        if tensorboard_dir:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(tensorboard_dir)

    def step(self, step: int, total: int, **values: float) -> None:
        for name, v in values.items():
            self.emit.metric(name, v, step)
            if self.writer is not None:
                self.writer.add_scalar(f"train/{name}", v, step)
        self.emit.progress(step, total, "steps")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def lr_at(step: int, req: TrainSftRequest, total: int) -> float:
    """Linear warmup to req.lr, then cosine decay to req.lr * min_lr_ratio at the last step."""
    if step < req.warmup_steps:
        return req.lr * (step + 1) / req.warmup_steps
    span = max(1, total - req.warmup_steps)
    progress = min(1.0, (step - req.warmup_steps) / span)
    return req.lr * (req.min_lr_ratio + (1 - req.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def step_rows(rows: list[Row], step: int, batch_size: int, seed: int) -> list[Row]:
    """The rows of optimizer step `step`: a seeded permutation per epoch, incomplete last batch dropped."""
    per_epoch = len(rows) // batch_size
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    perm = torch.randperm(len(rows), generator=g)[i * batch_size:(i + 1) * batch_size]
    return [rows[j] for j in perm.tolist()]


def fingerprint(req: TrainSftRequest, rows: list[Row], world: int) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed (paths and logging dirs may differ between attempts)."""
    skip = {"out_dir", "checkpoint_dir", "resume", "tensorboard_dir", "device", "checkpoint_every", "shards",
            "model_dir", "gradient_checkpointing"}
    fp = {k: v for k, v in req.model_dump().items() if k not in skip}
    fp.update(rows=len(rows), tokens=int(sum(len(r.input_ids) for r in rows)), world=world)
    return fp


def plan(req: TrainSftRequest, n_rows: int, world: int) -> tuple[int, int]:
    """(total optimizer steps, micro-batches per process per step), with errors that say what to change."""
    per_proc = req.micro_batch_size * world
    if req.batch_size % per_proc != 0:
        raise ValueError(f"batch_size {req.batch_size} must be a multiple of micro_batch_size "
                         f"{req.micro_batch_size} x {world} process(es) = {per_proc}")
    if n_rows < req.batch_size:
        raise ValueError(f"the shards hold {n_rows} packed rows, fewer than batch_size {req.batch_size}; "
                         "lower batch_size (and micro_batch_size) or add data")
    total = req.max_steps if req.max_steps is not None else req.epochs * (n_rows // req.batch_size)
    if total <= 0:
        raise ValueError(f"nothing to train: max_steps/epochs give {total} steps")
    return total, req.batch_size // per_proc


def train(req: TrainSftRequest, emit: Emitter) -> dict[str, Any]:
    ctx = dist_util.init()
    place = pick_device(req.device, ctx.local_rank)
    seed_everything(req.seed)
    policy = Trainable(req, place, ctx)
    model = policy.model
    max_len = req.max_seq_len or model.config.max_position_embeddings
    rows = load_rows(req.shards, model.config.vocab_size, max_len)
    total, accum = plan(req, len(rows), ctx.world)
    fp = fingerprint(req, rows, ctx.world)
    loss_mod = policy.wrap(TokenLoss(model))  # before the optimizer: FSDP replaces parameters by shards
    opt = torch.optim.AdamW(policy.param_groups(req.weight_decay), lr=req.lr, betas=tuple(req.betas),
                            fused=place.device.type == "cuda" and not policy.sharded)  # DTensor shards: foreach
    start = 0
    state = policy.resume(req.checkpoint_dir, fp, opt) if (req.checkpoint_dir and req.resume) else None
    if state is not None:
        start = state["step"]
        emit.log(f"resuming from {state['path']} (step {start} of {total})")
    sink = MetricSink(emit, req.tensorboard_dir if ctx.rank == 0 else None)
    n_train = sum(p.numel() for p in policy.trainable())
    emit.log(f"training {len(rows)} rows for {total} steps on {place.device} "
             f"({ctx.world} process(es){', ' + req.parallel if ctx.world > 1 else ''}, {accum} micro-batch(es) of "
             f"{req.micro_batch_size} each; {n_train} trained parameters{' (LoRA)' if req.lora else ''})")
    losses, speed = run_steps(req, rows, loss_mod, policy, opt, sink, ctx, place, start, total, accum, fp)
    sink.close()
    policy.save(req.out_dir)
    dist_util.barrier(ctx)
    return {"out_dir": req.out_dir, "steps": total, "resumed_from": start, "losses": losses,
            "final_loss": losses[-1] if losses else None, "tokens_per_s": speed,
            "peak_memory_bytes": peak_memory_bytes(place.device), "device": str(place.device), "world": ctx.world}


def run_steps(req, rows, loss_mod, policy, opt, sink, ctx, place, start, total, accum, fp):
    model = policy.model
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    losses: list[float] = []
    tok_total, time_total = 0, 0.0
    last_ckpt = start
    for step in range(start, total):
        t0 = time.perf_counter()
        batch_rows = step_rows(rows, step, req.batch_size, req.seed)
        n_targets = sum(r.targets for r in batch_rows)
        mine = batch_rows[ctx.rank * accum * req.micro_batch_size:(ctx.rank + 1) * accum * req.micro_batch_size]
        lr = lr_at(step, req, total)
        for group in opt.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=place.device)
        micros = micro_batches(mine, accum, pad_id)
        for k, micro in enumerate(micros):
            micro = micro.to(place.device)
            with dist_util.maybe_no_sync(loss_mod, last=k == len(micros) - 1), place.autocast():
                per_tok = token_losses(loss_mod, micro)
                s = per_tok.sum()
                if os.environ.get("AGENTFORGE_FAULT_NAN_AT_STEP") == str(step + 1):
                    s = s * float("nan")  # test hook: proves a NaN stops the run and keeps the last checkpoint
                # DDP averages gradients over ranks, so scale by world to get the global-token mean.
                (s * ctx.world / max(1, n_targets)).backward()
            loss_sum += s.detach()
        loss = dist_util.all_sum(loss_sum, ctx).item() / max(1, n_targets)
        grad_norm = policy.clip_grad_norm(req.max_grad_norm)
        if not (math.isfinite(loss) and math.isfinite(grad_norm)):
            keep = f"the last good checkpoint (step {last_ckpt}) is kept in {req.checkpoint_dir}" \
                if req.checkpoint_dir and last_ckpt > 0 else "no checkpoint was written yet"
            raise FloatingPointError(f"non-finite loss/grad-norm at step {step + 1} (loss {loss}, grad-norm "
                                     f"{grad_norm}); stopped without applying the update; {keep}. "
                                     "Lower lr or max_grad_norm, or check the shards for bad rows.")
        opt.step()
        opt.zero_grad(set_to_none=True)
        if place.device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        tokens = sum(len(r.input_ids) for r in batch_rows)
        tok_total, time_total = tok_total + tokens, time_total + dt
        losses.append(loss)
        sink.step(step + 1, total, loss=loss, lr=lr, grad_norm=grad_norm, tokens_per_s=tokens / dt)
        if req.checkpoint_dir and ((step + 1) % req.checkpoint_every == 0) and step + 1 < total:
            path = policy.save_checkpoint(req.checkpoint_dir, step + 1, opt, fp)
            if path is not None:
                sink.emit.log(f"checkpoint saved step {step + 1}: {path}")
            dist_util.barrier(ctx)
            last_ckpt = step + 1
    return losses, (tok_total / time_total if time_total > 0 else None)
