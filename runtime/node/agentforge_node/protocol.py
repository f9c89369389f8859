"""The node's side of the TS <-> Python protocol.

TS writes ONE JSON request object on stdin and closes it; we answer with JSON lines on stdout:
  {"event":"progress","done":n,"total":m,"unit":"steps"}
  {"event":"metric","name":"loss","value":v,"step":s}
  {"event":"log","message":"..."}
  {"event":"result","value":{...}}            -> exit 0
  {"event":"error","message":"...","traceback":"..."}  -> exit non-zero
Nothing else may reach stdout: `Emitter` keeps a private handle on the real stdout and `__main__` points
sys.stdout at stderr, so stray prints from libraries land in the stderr tail the TS side reports.
Request types are dataclasses; `parse_request` turns the JSON dict into one and names every bad field.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import types
import typing
from typing import IO, Any, TypeVar

T = TypeVar("T")


class RequestError(ValueError):
    """The request does not match the command's dataclass; the message names each bad field."""


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
    if hasattr(x, "item"):  # numpy / torch scalars
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    raise TypeError(f"cannot encode {type(x).__name__} as JSON")


def parse_request(cls: type[T], data: Any, where: str = "request") -> T:
    """Builds dataclass `cls` from a JSON dict, checking names and basic types.

    Unknown fields, missing required fields and wrongly typed values are all reported at once.
    """
    if not isinstance(data, dict):
        raise RequestError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    problems: list[str] = []
    for name in data:
        if name not in fields:
            problems.append(f"unknown field '{name}' (known: {', '.join(sorted(fields))})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                problems.append(f"missing required field '{name}'")
            continue
        value, err = _coerce(hints[name], data[name], f"{where}.{name}")
        if err:
            problems.append(err)
        else:
            kwargs[name] = value
    if problems:
        raise RequestError(f"invalid {cls.__name__} {where}:\n  - " + "\n  - ".join(problems))
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> tuple[Any, str | None]:
    """Checks `value` against type hint `tp`; returns (value, None) or (None, message)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value, None
    if origin in (typing.Union, types.UnionType):
        errs = []
        for a in args:
            v, e = _coerce(a, value, path)
            if e is None:
                return v, None
            errs.append(e)
        return None, f"{path}: {value!r} matches none of {tp}"
    if tp is type(None):
        return (None, None) if value is None else (None, f"{path}: expected null, got {value!r}")
    if origin is typing.Literal:
        return (value, None) if value in args else (None, f"{path}: expected one of {list(args)}, got {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            return None, f"{path}: expected a list, got {type(value).__name__}"
        inner = args[0] if args else Any
        out = []
        for i, item in enumerate(value):
            v, e = _coerce(inner, item, f"{path}[{i}]")
            if e:
                return None, e
            out.append(v)
        return out, None
    if origin is dict:
        if not isinstance(value, dict):
            return None, f"{path}: expected an object, got {type(value).__name__}"
        return value, None
    if dataclasses.is_dataclass(tp):
        try:
            return parse_request(tp, value, path), None
        except RequestError as e:
            return None, str(e)
    if tp is bool:
        return (value, None) if isinstance(value, bool) else (None, f"{path}: expected a boolean, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            return None, f"{path}: expected an integer, got {value!r}"
        return int(value), None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"{path}: expected a number, got {value!r}"
        return float(value), None
    if tp is str:
        return (value, None) if isinstance(value, str) else (None, f"{path}: expected a string, got {value!r}")
    return value, None


def describe_dataclass(cls: type) -> dict[str, Any]:
    """Field names, whether each is required, and a type string — what the `describe` command prints."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        out[f.name] = {"required": required, "type": _type_name(hints[f.name])}
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = typing.get_args(tp)
        return f"list[{_type_name(args[0]) if args else 'any'}]"
    if origin is dict:
        return "dict"
    if origin is typing.Literal:
        return "literal"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))
