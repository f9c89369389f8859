"""Where training metrics go: protocol events (-> the ledger's metrics table) and a TensorBoard event dir."""
from __future__ import annotations

import resource
import sys

import torch

from .protocol import Emitter


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


def peak_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB
