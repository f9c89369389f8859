"""ONNX exports of the policy during RL: a full export once, then weights-only refreshes.

Tracing the graph again after every step costs seconds while only the weights changed. The first export goes
through H2's exporter and is re-saved with every initializer in one external file (model.onnx.data). We then map
each initializer to the torch parameter it came from - by name, or for constant-folded ones (the exporter stores
Linear weights pre-transposed under names like onnx::MatMul_123) by exact value, as-is or transposed - and a
refresh rewrites only model.onnx.data at the recorded offsets (initializers that are not parameters, e.g. rotary
tables, keep their bytes). If some parameter cannot be located unambiguously, `auto` falls back to full exports.
Every file is written to a temp name and renamed, and meta.json (with policy_version) comes last, so an engine
that reloads after the result sees one consistent version (rename also keeps a running engine's mmap valid).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch

from .onnx_export import export, write_atomic, write_side_files

DATA = "model.onnx.data"


@dataclass
class Slot:
    offset: int
    length: int
    param: str
    transpose: bool


@dataclass
class Layout:
    graph: bytes          # model.onnx (no weights inside)
    template: bytes       # model.onnx.data as first written (bytes of the non-parameter initializers)
    slots: list[Slot]


class OnnxExporter:
    def __init__(self) -> None:
        self.layout: Layout | None = None
        self.why_full: str | None = None

    def export(self, model: torch.nn.Module, src_dir: str, out_dir: str, version: int, mode: str) -> str:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if mode == "weights" and self.layout is None:
            raise ValueError("export_mode 'weights' needs a full export earlier in this session (use 'auto')")
        if mode == "full" or self.layout is None or (mode == "auto" and self.why_full):
            self.layout = full_export(model, out)
            self.why_full = check_cover(self.layout, model)
            used = "full"
        else:
            write_atomic(out / "model.onnx", self.layout.graph, only_if_differs=True)
            write_atomic(out / DATA, fill(self.layout, model))
            used = "weights"
        write_side_files(model, Path(src_dir), out, version, only_missing=True)
        return used


def full_export(model: torch.nn.Module, out: Path) -> Layout:
    """H2's exporter on a perturbed copy, re-saved with external data, then filled with the real weights.

    The exporter merges initializers with equal bytes (at init every RMSNorm weight is all ones, so one tensor
    would serve them all and a later refresh could not tell them apart). Distinct noise on a copy keeps one
    initializer per parameter and makes every value match unique; the copy's values are all overwritten.
    """
    copy = deepcopy_for_export(model)
    tmp = out / "model.full.onnx.tmp"
    export(copy, tmp)
    proto = onnx.load(str(tmp))
    tmp.unlink()
    data_tmp = out / (DATA + ".tmp")
    graph_tmp = out / "model.onnx.tmp"
    # onnx writes the data file next to the graph under `location`; write both as temps, then rename.
    onnx.save_model(proto, str(graph_tmp), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=DATA + ".tmp", size_threshold=0)
    template = data_tmp.read_bytes()
    data_tmp.unlink()
    graph = onnx.load(str(graph_tmp), load_external_data=False)
    graph_tmp.unlink()
    for init in graph.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = DATA
    layout = Layout(graph.SerializeToString(), template, locate(graph, template, copy))
    write_atomic(out / DATA, fill(layout, model))
    write_atomic(out / "model.onnx", layout.graph)
    return layout


def deepcopy_for_export(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    clone = copy.deepcopy(model).float().cpu()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 1e-3)
    return clone


def _digest(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a, dtype=np.float32).tobytes()).hexdigest()


def locate(graph: onnx.ModelProto, template: bytes, model: torch.nn.Module) -> list[Slot]:
    params = {n: p.detach().float().cpu().numpy() for n, p in model.named_parameters()}
    by_value: dict[tuple, list[tuple[str, bool]]] = {}
    for n, a in params.items():
        by_value.setdefault((a.shape, _digest(a)), []).append((n, False))
        if a.ndim == 2:
            by_value.setdefault((a.T.shape, _digest(a.T)), []).append((n, True))
    slots = []
    for init in graph.graph.initializer:
        ext = {e.key: e.value for e in init.external_data}
        if init.data_type != onnx.TensorProto.FLOAT or "offset" not in ext:
            continue
        off, length = int(ext["offset"]), int(ext["length"])
        arr = np.frombuffer(template[off:off + length], dtype="<f4").reshape(tuple(init.dims))
        name = init.name.removeprefix("model.")
        if name in params and params[name].shape == arr.shape:
            slots.append(Slot(off, length, name, False))
            continue
        hits = by_value.get((arr.shape, _digest(arr)), [])
        if len({h[0] for h in hits}) == 1:
            slots.append(Slot(off, length, hits[0][0], hits[0][1]))
        elif len(hits) > 1:
            slots.append(Slot(off, length, "", False))  # ambiguous: check_cover reports it
    return slots


def check_cover(layout: Layout, model: torch.nn.Module) -> str | None:
    """None when every parameter has a slot and no slot is ambiguous; else why refreshes are unsafe."""
    if any(not s.param for s in layout.slots):
        return "an initializer matches several parameters by value"
    missing = {n for n, _ in model.named_parameters()} - {s.param for s in layout.slots}
    return f"parameters not found among the initializers: {sorted(missing)[:5]}" if missing else None


def fill(layout: Layout, model: torch.nn.Module) -> bytes:
    buf = bytearray(layout.template)
    params = dict(model.named_parameters())
    for s in layout.slots:
        a = params[s.param].detach().float().cpu()
        a = (a.T if s.transpose else a).contiguous().numpy().astype("<f4", copy=False)
        b = a.tobytes()
        if len(b) != s.length:
            raise RuntimeError(f"weights refresh: {s.param} has {len(b)} bytes, slot has {s.length}")
        buf[s.offset:s.offset + s.length] = b
    return bytes(buf)

