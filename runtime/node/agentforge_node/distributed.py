"""torchrun parallelism: the documented path to more GPUs (gloo on CPU, nccl on CUDA).

`ddp` replicates the model and all-reduces gradients; `fsdp` (FSDP2's fully_shard, per decoder layer + the root)
shards weights, gradients and optimizer state, and all-gathers each layer's weights just for its forward/backward.
Both average gradients over ranks, so the trainers scale their loss by the world size the same way for either.
Without torchrun (no WORLD_SIZE in the environment) everything here is a no-op for a single process.
"""
from __future__ import annotations

import contextlib
import os
import sys
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
        if backend == "nccl":  # before any collective: NCCL uses the current device (broadcast_object_list too)
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world)


def wrap(module: nn.Module, ctx: DistContext, device: torch.device, parallel: str = "ddp",
         layers: list[nn.Module] | None = None) -> nn.Module:
    """DDP around `module`, or FSDP2: each of `layers` its own shard group, the rest (embeddings, final norm,
    LM head, tied or not) in the root's group. FSDP shards in place: `module` itself is returned."""
    if ctx.world == 1:
        return module
    if parallel == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (ctx.world,))
        for layer in layers or []:
            fully_shard(layer, mesh=mesh)
        fully_shard(module, mesh=mesh)
        return module
    if parallel != "ddp":
        raise ValueError(f"parallel must be 'ddp' or 'fsdp', got {parallel!r}")
    ids = [device.index] if device.type == "cuda" else None
    # LoRA freezes most parameters; DDP only registers hooks for the ones that require grad.
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)


def is_fsdp(module: nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def maybe_no_sync(module: nn.Module, last: bool):
    """Skip the gradient all-reduce (DDP) / reduce-scatter (FSDP) on all but the last micro-batch."""
    if isinstance(module, nn.parallel.DistributedDataParallel) and not last:
        return module.no_sync()
    if is_fsdp(module):
        return _fsdp_sync(module, last)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _fsdp_sync(module: nn.Module, last: bool):
    module.set_requires_gradient_sync(last)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def all_sum(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.world > 1:
        x = x.clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def barrier(ctx: DistContext) -> None:
    if ctx.world > 1:
        dist.barrier()


def shutdown(ok: bool) -> None:
    """Ends a torchrun run on every rank together, then leaves at once. Rank 0 saves and exports alone after the
    last collective; at interpreter exit a rank aborted in gloo's threads ("terminate called without an active
    exception", SIGABRT, after a complete run), also after destroy_process_group. So: a barrier (not after a
    failure: the other rank may be gone), flush, and os._exit, which skips the C++ destructors that abort."""
    if not dist.is_initialized():
        return
    if ok:
        dist.barrier()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0 if ok else 1)
