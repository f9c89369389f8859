"""The node's side of the TS <-> Python protocol.

TS writes ONE JSON request object on stdin and closes it; we answer with JSON lines on stdout:
  {"event":"progress","done":n,"total":m,"unit":"steps"}
  {"event":"metric","name":"loss","value":v,"step":s}
  {"event":"log","message":"..."}
  {"event":"result","value":{...}}            -> exit 0
  {"event":"error","message":"...","traceback":"..."}  -> exit non-zero
Nothing else may reach stdout: `Emitter` keeps a private handle on the real stdout and `__main__` points
sys.stdout at stderr, so stray prints from libraries land in the stderr tail the TS side reports.
Requests are the pydantic models generated into requests.py from the TS side's zod schemas.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import IO, Any


class Emitter:
    """Writes protocol events as single JSON lines on the protocol stream (the real stdout)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._out = stream if stream is not None else sys.__stdout__

    def _emit(self, event: dict[str, Any]) -> None:
        self._out.write(json.dumps(event, allow_nan=False, default=_json_default) + "\n")
        self._out.flush()

    def progress(self, done: int, total: int | None = None, unit: str = "steps") -> None:
        self._emit({"event": "progress", "done": int(done), "total": None if total is None else int(total), "unit": unit})

    def metric(self, name: str, value: float, step: int | None = None) -> None:
        v = float(value)
        # JSON has no NaN/inf; the trainer stops on those itself, so a metric never needs to carry one.
        if not math.isfinite(v):
            self.log(f"metric {name} at step {step} is {v}; not sent")
            return
        self._emit({"event": "metric", "name": name, "value": v, "step": None if step is None else int(step)})

    def log(self, message: str) -> None:
        self._emit({"event": "log", "message": str(message)})

    def result(self, value: dict[str, Any]) -> None:
        # The process's memory high-water marks go out as metrics before every result: the TS side records them
        # under the DAG node that ran the command, so `metrics` says which node needs how much.
        for name, v in peak_memory().items():
            self.metric(name, v)
        self._emit({"event": "result", "value": value})

    def error(self, message: str, tb: str = "") -> None:
        self._emit({"event": "error", "message": message, "traceback": tb})


def peak_memory() -> dict[str, int]:
    """worker_peak_rss_bytes (this process's, since it started) and, where torch has initialised CUDA,
    worker_peak_cuda_bytes (the most its caching allocator held at once). torch is never imported here: commands
    that do not use it stay light."""
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {"worker_peak_rss_bytes": int(rss if sys.platform == "darwin" else rss * 1024)}  # Linux reports KiB
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["worker_peak_cuda_bytes"] = int(torch.cuda.max_memory_reserved())
    return out


def _json_default(x: Any) -> Any:
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return dataclasses.asdict(x)
    if hasattr(x, "model_dump"):  # a pydantic model
        return x.model_dump()
    if hasattr(x, "item"):  # numpy / torch scalars
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"cannot encode {type(x).__name__} as JSON")
