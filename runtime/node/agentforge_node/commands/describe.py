"""`describe`: the field names and types of every command's Request dataclass.

The TS test compares this with the zod request schemas in runtime/node/requests.ts so both sides stay in step.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any

from .. import commands
from ..protocol import Emitter, describe_dataclass


@dataclass
class Request:
    pass


def run(req: Request, emit: Emitter) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for info in pkgutil.iter_modules(commands.__path__):
        try:
            mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        except Exception as e:  # noqa: BLE001 - one broken command must not hide the others' schemas
            out[info.name.replace("_", "-")] = {"__import_error__": f"{type(e).__name__}: {e}"}
            continue
        if hasattr(mod, "Request"):
            out[info.name.replace("_", "-")] = describe_dataclass(mod.Request)
    return {"commands": out}
