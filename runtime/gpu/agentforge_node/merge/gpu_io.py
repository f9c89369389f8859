"""Moving one tensor at a time between the model files and the GPU, on the engine's threads.

The GPU's own work on a tensor takes a small fraction of the time it takes to read it, so the transfers are what
count. Each is split into slices spread over the threads: a thread reads its slice straight from the input file
(pread, the plain read's own copy out of the page cache, no mapping to fault in) into its pinned slab and sends it
by DMA on its own CUDA stream; on the way back it writes its slice of the result into the output shard as soon as
the slab arrives. Pinned memory stays at one slab per thread, whatever the model.
"""
from __future__ import annotations

import os
import threading
import time
from functools import partial

import torch

from .errors import MergeInputError
from .methods import Runner, Scratch
from .safetensors_io import DTYPES, TensorInfo, TensorSink

SLAB = 8 << 20  # bytes per slice: large enough that a DMA's fixed cost vanishes, small enough to spread over threads


class GpuIO:
    def __init__(self, runner: Runner, device: torch.device) -> None:
        self.runner, self.device = runner, device
        self._local = threading.local()
        self._fds: dict[str, int] = {}
        started = time.perf_counter()
        torch.empty(1, device=device)  # the CUDA context: a one-off cost per process, reported on its own
        torch.cuda.synchronize(device)
        self.timings = {"init_s": time.perf_counter() - started, "upload_s": 0.0, "compute_s": 0.0, "download_s": 0.0}

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _slab(self) -> tuple[torch.Tensor, torch.cuda.Stream]:
        if not hasattr(self._local, "slab"):
            self._local.slab = torch.empty(SLAB, dtype=torch.uint8, pin_memory=True)
            self._local.stream = torch.cuda.Stream(self.device)
        return self._local.slab, self._local.stream

    def _slices(self, n: int, itemsize: int) -> list[tuple[int, int]]:
        per = max(1, SLAB // itemsize)
        return [(s, min(s + per, n)) for s in range(0, n, per)]

    def upload(self, path: str, info: TensorInfo) -> torch.Tensor:
        """The tensor stored at `info` in file `path`, on the GPU; complete when this returns."""
        started = time.perf_counter()
        dtype = DTYPES[info.dtype]
        dst = torch.empty(info.nbytes // dtype.itemsize, dtype=dtype, device=self.device)
        if path not in self._fds:
            self._fds[path] = os.open(path, os.O_RDONLY)
        up = partial(self._up, path, self._fds[path], info.begin, dst)
        self.runner.run([partial(up, s, e) for s, e in self._slices(dst.numel(), dtype.itemsize)])
        self.timings["upload_s"] += time.perf_counter() - started
        return dst.view(info.shape)

    def _up(self, path: str, fd: int, begin: int, dst: torch.Tensor, s: int, e: int, _: Scratch) -> None:
        slab, stream = self._slab()
        size = (e - s) * dst.element_size()
        view, got = memoryview(slab.numpy())[:size], 0
        while got < size:
            n = os.preadv(fd, [view[got:]], begin + s * dst.element_size() + got)
            if n <= 0:
                raise MergeInputError(f"{path}: file ended at byte {begin + s * dst.element_size() + got}, inside a tensor")
            got += n
        with torch.cuda.stream(stream):
            dst[s:e].copy_(slab[:size].view(dst.dtype), non_blocking=True)
        stream.synchronize()  # the slab is reused by this thread's next slice

    def download(self, t: torch.Tensor, sink: TensorSink, started: float) -> None:
        """Writes GPU tensor t (flat, in the output dtype, computed on the default stream since `started`) into sink."""
        torch.cuda.current_stream(self.device).synchronize()
        ready = time.perf_counter()
        self.timings["compute_s"] += ready - started
        self.runner.run([partial(self._down, t, sink, s, e) for s, e in self._slices(t.numel(), t.element_size())])
        self.timings["download_s"] += time.perf_counter() - ready

    def _down(self, src: torch.Tensor, sink: TensorSink, s: int, e: int, _: Scratch) -> None:
        slab, stream = self._slab()
        staged = slab[: (e - s) * src.element_size()].view(src.dtype)
        with torch.cuda.stream(stream):
            staged.copy_(src[s:e], non_blocking=True)
        stream.synchronize()
        sink.write(s, staged)
