"""Device, dtype, threads, seeding and peak memory: CUDA + bf16 autocast when a GPU is present, fp32 on CPU otherwise."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from .protocol import peak_memory


@dataclass(frozen=True)
class Placement:
    device: torch.device
    # Autocast dtype for the forward pass; weights and optimizer state stay fp32 so checkpoints are exact.
    autocast_dtype: torch.dtype | None

    def autocast(self):
        if self.autocast_dtype is None:
            return torch.autocast(device_type="cpu", enabled=False)
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)


def pick_device(requested: str = "auto", local_rank: int = 0) -> Placement:
    """`auto` picks CUDA (bf16) when available, else CPU (fp32). `cpu` forces CPU even with a GPU."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False "
                           "(is the CUDA build of torch installed in the node's venv?)")
    if requested != "cpu" and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        # cuDNN's attention builds an execution plan for every new (batch, length) shape, and unpacked micro-batches
        # change shape every step: on an H200 that cost ~100 ms a step (klear default 51k vs 379k tokens/s with
        # flash attention). Flash and memory-efficient attention take any shape at no planning cost.
        torch.backends.cuda.enable_cudnn_sdp(False)
        bf16 = torch.cuda.is_bf16_supported()
        return Placement(torch.device("cuda", local_rank), torch.bfloat16 if bf16 else None)
    configure_cpu_threads()
    return Placement(torch.device("cpu"), None)


def configure_cpu_threads() -> None:
    """One intra-op pool per process, sized to the cores it may use (torchrun ranks split them)."""
    if os.environ.get("AGENTFORGE_TORCH_THREADS"):
        torch.set_num_threads(int(os.environ["AGENTFORGE_TORCH_THREADS"]))
        return
    world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores // world))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return peak_memory()["worker_peak_rss_bytes"]
