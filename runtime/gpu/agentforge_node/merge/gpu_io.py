"""Moving one tensor at a time between the memory-mapped model files and the GPU, on the engine's threads.

A single thread copying out of the page cache runs at about the speed of the plain read the merge is measured
against, and the GPU's own work on a tensor takes a small fraction of that. So each transfer is split into slices
spread over the threads: a thread copies its slice into its own pinned slab (paging the file in, in parallel with
the other threads) and moves it by DMA on its own CUDA stream; on the way back it writes its slice of the result
into the output shard as soon as the slab arrives. Pinned memory stays at one slab per thread, whatever the model.
"""
from __future__ import annotations

import threading
from functools import partial

import torch

from .methods import Runner, Scratch
from .safetensors_io import TensorSink

SLAB = 8 << 20  # bytes per slice: large enough that a DMA's fixed cost vanishes, small enough to spread over threads


class GpuIO:
    def __init__(self, runner: Runner, device: torch.device) -> None:
        self.runner, self.device = runner, device
        self._local = threading.local()

    def _slab(self) -> tuple[torch.Tensor, torch.cuda.Stream]:
        if not hasattr(self._local, "slab"):
            self._local.slab = torch.empty(SLAB, dtype=torch.uint8, pin_memory=True)
            self._local.stream = torch.cuda.Stream(self.device)
        return self._local.slab, self._local.stream

    def _slices(self, n: int, itemsize: int) -> list[tuple[int, int]]:
        per = max(1, SLAB // itemsize)
        return [(s, min(s + per, n)) for s in range(0, n, per)]

    def upload(self, t: torch.Tensor) -> torch.Tensor:
        """t (a CPU view, e.g. of a mapped file) copied to the GPU; complete when this returns."""
        src = t.reshape(-1)
        dst = torch.empty(src.numel(), dtype=src.dtype, device=self.device)
        self.runner.run([partial(self._up, src, dst, s, e) for s, e in self._slices(src.numel(), src.element_size())])
        return dst.view(t.shape)

    def _up(self, src: torch.Tensor, dst: torch.Tensor, s: int, e: int, _: Scratch) -> None:
        slab, stream = self._slab()
        staged = slab[: (e - s) * src.element_size()].view(src.dtype)
        staged.copy_(src[s:e])
        with torch.cuda.stream(stream):
            dst[s:e].copy_(staged, non_blocking=True)
        stream.synchronize()  # the slab is reused by this thread's next slice

    def download(self, t: torch.Tensor, sink: TensorSink) -> None:
        """Writes GPU tensor t (flat, in the output dtype) into sink, slice by slice as each arrives."""
        torch.cuda.current_stream(self.device).synchronize()  # t is computed on the default stream
        self.runner.run([partial(self._down, t, sink, s, e) for s, e in self._slices(t.numel(), t.element_size())])

    def _down(self, src: torch.Tensor, sink: TensorSink, s: int, e: int, _: Scratch) -> None:
        slab, stream = self._slab()
        staged = slab[: (e - s) * src.element_size()].view(src.dtype)
        with torch.cuda.stream(stream):
            staged.copy_(src[s:e], non_blocking=True)
        stream.synchronize()
        sink.write(s, staged)
