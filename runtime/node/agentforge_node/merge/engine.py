"""Runs a merge: open and check every input, then stream tensor by tensor into a temp dir, then rename it.

Peak memory is a few tensors: inputs are memory-mapped views whose pages are dropped after each tensor, and each
tensor is computed in chunks (methods.Kernel) on one thread per core, every chunk written into its place in the
output shard as soon as it is computed. The output appears under its final name only after every shard, the index
and the copied config/tokenizer files are complete, so a merge killed at any point leaves no artifact (at most a
`NAME.merge-tmp-*` folder beside it after a SIGKILL; removed on every other failure).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from fnmatch import fnmatchcase
from functools import partial
from typing import Callable

import torch

from .methods import METHODS, Job, Kernel, Runner, Scratch
from .model_dir import INDEX, ModelDir, check_compatible
from .safetensors_io import DTYPES, MergeInputError, ShardedWriter, TensorSink
from .spec import MergeSpec, Resolver, validate

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx", ".onnx_data")
OUT_DTYPE = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}

Progress = Callable[[int, int], None]


def merge_models(spec: MergeSpec, base: str | None, experts: list[str], out: str,
                 on_progress: Progress | None = None) -> dict:
    """Merges `experts` (and `base`) into HF directory `out`; returns the merge record."""
    started = time.perf_counter()
    validate(spec, len(experts), base is not None)
    base_dir = ModelDir(base, "base") if base else None
    expert_dirs = [ModelDir(p, f"experts[{i}]") for i, p in enumerate(experts)]
    models = ([base_dir] if base_dir else []) + expert_dirs
    check_compatible(models)
    ref = models[0]
    resolver = Resolver(spec, len(expert_dirs))
    _check_overrides_match(spec, ref.names)
    _check_out(out)
    entries = [(n, _out_dtype(spec, ref.info(n).dtype), ref.info(n).shape) for n in ref.names]
    # Beside `out`, named after it: in the store that is tmp/<pid>-stage-…, which the store sweeps once pid is gone.
    tmp = tempfile.mkdtemp(prefix=f"{os.path.basename(os.path.abspath(out))}.merge-tmp-", dir=os.path.dirname(os.path.abspath(out)))
    writer = ShardedWriter(tmp, entries, spec.max_shard_bytes)
    runner = Runner(_threads())
    try:
        try:
            statistics_s, diagnostics = _stream(spec, resolver, base_dir, expert_dirs, writer, runner, on_progress)
        finally:
            runner.close()  # no chunk may still be writing when the writer closes its files
        files = writer.finish()
        files += _copy_aux(ref.path, tmp, spec.dtype)
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above); rename cannot replace a directory on every platform
        os.rename(tmp, out)
    except BaseException:
        _discard(writer, tmp)
        raise
    seconds = time.perf_counter() - started
    bytes_in = sum(m.weight_bytes() for m in models)
    return {
        "method": spec.method,
        "params": spec.model_dump(include=set(MergeSpec.model_fields)),
        "inputs": [{"label": m.label, "path": m.path, "fingerprint": m.fingerprint()} for m in models],
        "reference": ref.label,
        "tensors": len(entries),
        "files": sorted(files),
        "bytes_in": bytes_in,
        "bytes_out": writer.total_bytes,
        "seconds": seconds,
        # The per-tensor statistics pass (TIES's top-k thresholds, SLERP's norms) that must finish before a tensor's
        # first output element: such methods read every input twice, linear and task arithmetic once.
        "seconds_statistics": statistics_s,
        "override_hits": resolver.hits,
        # Per floating-point tensor, for the methods that trim or drop (TIES, DARE): {tensor, kept_fraction} and
        # TIES's sign_agreement (methods.py); empty for the others. Counted alongside, never changing the result.
        "diagnostics": diagnostics,
    }


def _discard(writer: ShardedWriter, tmp: str) -> None:
    """Removes the partial output even if a second interruption (a Ctrl-C) lands in the middle of the cleanup."""
    for _ in range(3):
        try:
            writer.abort()
            shutil.rmtree(tmp, ignore_errors=True)
            return
        except BaseException:  # noqa: BLE001 - the first error is re-raised by the caller
            continue


def _stream(spec: MergeSpec, resolver: Resolver, base: ModelDir | None, experts: list[ModelDir],
            writer: ShardedWriter, runner: Runner, on_progress: Progress | None) -> tuple[float, list[dict]]:
    """Writes every tensor; returns the seconds spent in statistics passes (kernels whose prepare read the inputs)
    and the kernels' per-tensor diagnostics."""
    method = METHODS[spec.method]
    statistics_s, diagnostics = 0.0, []
    # SLERP interpolates between two models: base→expert when a base is given, else expert 0→expert 1.
    slerp_pair = spec.method == "slerp" and base is not None
    models = ([base] if base else []) + experts
    total = len(writer.plan)
    for i, (_, name, dtype, _) in enumerate(writer.plan):
        sink = writer.begin(name)
        if not DTYPES[models[0].info(name).dtype].is_floating_point:
            sink.write(0, models[0].tensor(name))  # integer buffers (ids, masks) are not weights: keep the reference's
        else:
            inputs = [m.tensor(name) for m in experts]
            job = Job(name, None if slerp_pair else (base.tensor(name) if base else None),
                      [base.tensor(name), *inputs] if slerp_pair else inputs, resolver.params(name), spec.seed)
            kernel = method.kernel(job)
            t = time.perf_counter()
            if kernel.prepare(runner):
                statistics_s += time.perf_counter() - t
            runner.chunks(partial(_put, kernel, sink, DTYPES[dtype]), kernel.n)
            if (d := kernel.diagnostics()) is not None:
                diagnostics.append({"tensor": name, **d})
        if on_progress:
            on_progress(i + 1, total)
    return statistics_s, diagnostics


def _put(kernel: Kernel, sink: TensorSink, dtype: torch.dtype, s: int, e: int, sc: Scratch) -> None:
    merged = kernel.chunk(s, e, sc)
    sink.write(s, merged if merged.dtype == dtype else sc.get(-2, e - s, dtype).copy_(merged))


def _threads() -> int:
    """One per core this process may use; more only adds GIL contention (the work is memory-bound past a few)."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _out_dtype(spec: MergeSpec, stored: str) -> str:
    if spec.dtype is None or not DTYPES[stored].is_floating_point:
        return stored
    return OUT_DTYPE[spec.dtype]


def _check_overrides_match(spec: MergeSpec, names: list[str]) -> None:
    for i, o in enumerate(spec.overrides):
        if not any(fnmatchcase(n, o.pattern) for n in names):
            raise MergeInputError(f"overrides[{i}].pattern {o.pattern!r} matches no tensor (e.g. {names[0]!r}); "
                                  "patterns are shell globs such as '*embed_tokens*'")


def _check_out(out: str) -> None:
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise MergeInputError(f"output {out} already exists and is not an empty directory")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise MergeInputError(f"output parent directory {parent} does not exist")


def _copy_aux(src: str, dst: str, dtype: str | None) -> list[str]:
    """Copies config, tokenizer, chat template and generation config (every top-level non-weight file)."""
    copied = []
    for name in sorted(os.listdir(src)):
        p = os.path.join(src, name)
        if not os.path.isfile(p) or name.endswith(WEIGHT_SUFFIXES) or name in (INDEX, "merge.json"):
            continue
        shutil.copy2(p, os.path.join(dst, name))
        copied.append(name)
    if dtype is not None:
        _set_config_dtype(os.path.join(dst, "config.json"), dtype)
    return copied


def _set_config_dtype(path: str, dtype: str) -> None:
    with open(path) as f:
        config = json.load(f)
    key = "dtype" if "dtype" in config or "torch_dtype" not in config else "torch_dtype"
    config[key] = dtype
    with open(path, "w") as f:
        json.dump(config, f, indent=2)

