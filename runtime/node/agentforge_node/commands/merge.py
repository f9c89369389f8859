"""`merge`: streams a merge of Hugging Face model directories into `out` (see agentforge_node/merge).

Request fields mirror MergeSpec plus the input/output directories; `lam` is λ (a Python keyword otherwise).
Progress is reported per tensor; the result is the merge record (method, params, input fingerprints, sizes).
"""
from __future__ import annotations

import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from ..merge import MergeSpec, Override, merge_models
from ..protocol import Emitter, parse_request


@dataclass
class Request:
    method: str
    experts: list[str]
    out: str
    base: str | None = None
    weights: list[float] | None = None
    lam: float = 1.0
    density: float = 1.0
    drop_rate: float = 0.9
    dare_combine: str = "linear"
    seed: int = 0
    t: float = 0.5
    overrides: list[dict] = field(default_factory=list)  # each an Override; parsed below so errors name the index
    dtype: str | None = None
    max_shard_bytes: int = 2_000_000_000


def run(req: Request, emit: Emitter) -> dict[str, Any]:
    # The TS client cancels a node with SIGTERM. The handler only sets a flag, checked between tensors, so the
    # engine's cleanup of its temp dir can never be cut short by an exception landing at an arbitrary bytecode.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    spec = MergeSpec(method=req.method, weights=req.weights, lam=req.lam, density=req.density,
                     drop_rate=req.drop_rate, dare_combine=req.dare_combine, seed=req.seed, t=req.t,
                     overrides=[parse_request(Override, o, f"merge request.overrides[{i}]") for i, o in enumerate(req.overrides)],
                     dtype=req.dtype, max_shard_bytes=req.max_shard_bytes)

    def progress(done: int, total: int) -> None:
        if stop.is_set():
            raise MergeCancelled(f"merge cancelled by SIGTERM after {done} of {total} tensors; nothing was written")
        emit.progress(done, total, "tensors")

    record = merge_models(spec, req.base, req.experts, req.out, on_progress=progress)
    emit.metric("merge_mb_per_s", record["bytes_in"] / 1e6 / max(record["seconds"], 1e-9))
    return record


class MergeCancelled(RuntimeError):
    pass
