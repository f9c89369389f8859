"""`merge`: streams a merge of Hugging Face model directories into `out` (see agentforge_node/merge).

The request is the merge operator's params (MergeSpec) plus the input and output directories.
Progress is reported per tensor; the result is the merge record (method, params, input fingerprints, sizes).
"""
from __future__ import annotations

import signal
import threading
from typing import Any

from ..merge import merge_models
from ..protocol import Emitter
from ..requests.merge import MergeRequest


def run(req: MergeRequest, emit: Emitter) -> dict[str, Any]:
    # The TS client cancels a node with SIGTERM. The handler only sets a flag, checked between tensors, so the
    # engine's cleanup of its temp dir can never be cut short by an exception landing at an arbitrary bytecode.
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def progress(done: int, total: int) -> None:
        if stop.is_set():
            raise MergeCancelled(f"merge cancelled by SIGTERM after {done} of {total} tensors; nothing was written")
        emit.progress(done, total, "tensors")

    record = merge_models(req, req.base, req.experts, req.out, on_progress=progress)
    emit.metric("merge_mb_per_s", record["bytes_in"] / 1e6 / max(record["seconds"], 1e-9))
    return record


class MergeCancelled(RuntimeError):
    pass
