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
        self._emit({"event": "result", "value": value})

    def error(self, message: str, tb: str = "") -> None:
        self._emit({"event": "error", "message": message, "traceback": tb})


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
