"""Training checkpoints: everything needed to resume bit-exactly after a kill, written atomically.

One file per checkpoint (`step-000040.pt`: weights, optimizer state, step, RNG states, the hyper-parameters it was
written with). A `.tmp` file that a kill left half-written is never read; the newest complete file wins.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

NAME = re.compile(r"^step-(\d{6,})\.pt$")


def save_checkpoint(ckpt_dir: str | Path, step: int, model: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer | None, fingerprint: dict[str, Any], keep: int = 2, *,
                    model_state: dict[str, Any] | None = None, optimizer_state: dict[str, Any] | None = None,
                    partial: bool = False) -> Path:
    """`model_state`/`optimizer_state` replace model.state_dict()/optimizer.state_dict() when given (FSDP's gathered
    full state, LoRA's adapter-only state); `partial` marks a model state that holds only the trained parameters."""
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = ckpt_dir / f"step-{step:06d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    state = {
        "step": step,
        "model": model_state if model_state is not None else model.state_dict(),
        "optimizer": optimizer_state if optimizer_state is not None else optimizer.state_dict(),
        "partial": partial,
        "fingerprint": fingerprint,
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
    }
    torch.save(state, tmp)
    with open(tmp, "rb") as f:  # the rename must not become visible before the bytes are on disk
        os.fsync(f.fileno())
    os.replace(tmp, path)
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(ckpt_dir: str | Path) -> list[Path]:
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def resume(ckpt_dir: str | Path, fingerprint: dict[str, Any], model: torch.nn.Module | None,
           optimizer: torch.optim.Optimizer | None,
           load: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any] | None:
    """Loads the newest checkpoint into model, optimizer and the RNGs; returns it (its step, its path), or None.
    Refuses one written with different hyper-parameters or data. `load(state)`, when given, restores model and
    optimizer instead (sharded or adapter-only states)."""
    paths = list_checkpoints(ckpt_dir)
    if not paths:
        return None
    state = torch.load(paths[-1], map_location="cpu", weights_only=False)
    old = state.get("fingerprint", {})
    diff = [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in fingerprint.items() if old.get(k) != v]
    if diff:
        raise ValueError(f"checkpoint {paths[-1]} was written by a run with different settings ({'; '.join(diff)}); "
                         "resuming would mix two runs. Delete the checkpoint dir or pass resume=false.")
    if load is not None:
        load(state)
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
    rng = state["rng"]
    torch.set_rng_state(rng["torch"])
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
    if rng.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state["path"] = str(paths[-1])
    return state
