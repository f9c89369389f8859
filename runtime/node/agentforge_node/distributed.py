"""torchrun data parallelism: the documented path to more GPUs (gloo on CPU, nccl on CUDA).

Without torchrun (no WORLD_SIZE in the environment) everything here is a no-op for a single process.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    rank: int
    local_rank: int
    world: int


def init() -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(0, 0, 1)
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() and os.environ.get("AGENTFORGE_DIST_BACKEND") != "gloo" else "gloo"
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world)


def wrap(module: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    if ctx.world == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def maybe_no_sync(module: nn.Module, last: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulation."""
    if isinstance(module, nn.parallel.DistributedDataParallel) and not last:
        return module.no_sync()
    return contextlib.nullcontext()


def all_sum(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.world > 1:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def barrier(ctx: DistContext) -> None:
    if ctx.world > 1:
        dist.barrier()
