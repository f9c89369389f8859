"""Helpers for bench/merge.ts, run as `python runtime/node/bench/merge_bench.py <step> ...`; each prints one JSON line.

  gen DIR N_EXPERTS HIDDEN LAYERS INTER VOCAB SHARD_BYTES   base + experts (base + noise), written tensor by tensor
  read DIR...                                              plain sequential read of every safetensors file
  merge SPEC_JSON OUT BASE|- EXPERT...                     our streaming merge; reports seconds and peak RSS
  compare DIR_A DIR_B                                      max |a − b| over all tensors, and how many exceed 1e-6
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from agentforge_node.merge.engine import merge_models  # noqa: E402
from agentforge_node.merge.model_dir import ModelDir  # noqa: E402
from agentforge_node.merge.safetensors_io import ShardedWriter  # noqa: E402
from agentforge_node.merge.spec import MergeSpec  # noqa: E402
from merge_fixtures import llama_config, llama_shapes, write_aux  # noqa: E402


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def gen(out: str, n_experts: int, hidden: int, layers: int, inter: int, vocab: int, shard_bytes: int) -> dict:
    """Writes base/ and e0..eN/ (base + small noise) one tensor at a time, so 1 GB needs a few tensors of memory."""
    entries = [(n, "F32", s) for n, s in llama_shapes(hidden, layers, inter, vocab).items()]
    dirs = [os.path.join(out, "base")] + [os.path.join(out, f"e{i}") for i in range(n_experts)]
    writers = []
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        writers.append(ShardedWriter(d, entries, shard_bytes))
    for name, _, shape in entries:
        g = torch.Generator().manual_seed(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
        base = torch.randn(shape, generator=g) * 0.02 + (1.0 if name.endswith("norm.weight") else 0.0)
        writers[0].write(name, base)
        for w in writers[1:]:
            w.write(name, base + torch.randn(shape, generator=g) * 0.002)
    for d, w in zip(dirs, writers):
        w.finish()
        write_aux(d, llama_config(hidden, layers, inter, vocab))
    # Written back now: 1.1 GB of dirty pages flushed during the first measurements (linear's) slowed them 2-3x.
    os.sync()
    return {"dirs": dirs, "bytes": sum(os.path.getsize(os.path.join(d, f)) for d in dirs for f in os.listdir(d) if f.endswith(".safetensors"))}


def read(dirs: list[str]) -> dict:
    """The baseline: read every weight byte of the same files, in order, with nothing else done."""
    # A page-aligned buffer. A bytearray's data starts 16 bytes into its page, and on some CPUs (AMD Zen 3 here)
    # the kernel's copy into such a buffer runs 3-4x slower than into an aligned one; that made the baseline slow.
    view = memoryview(mmap.mmap(-1, 16 << 20))
    total, started = 0, time.perf_counter()
    for d in dirs:
        for name in sorted(os.listdir(d)):
            if name.endswith(".safetensors"):
                with open(os.path.join(d, name), "rb", buffering=0) as f:
                    while n := f.readinto(view):
                        total += n
    return {"bytes": total, "seconds": time.perf_counter() - started}


def merge(spec_json: str, out: str, base: str, experts: list[str]) -> dict:
    rss_before = _status_kb("VmRSS")
    started = time.perf_counter()
    rec = merge_models(MergeSpec.model_validate_json(spec_json), None if base == "-" else base, experts, out)
    seconds = time.perf_counter() - started
    largest = max(m.info(n).nbytes for m in [ModelDir(experts[0], "e")] for n in m.names)
    return {"seconds": seconds, "seconds_statistics": rec["seconds_statistics"], "bytes_in": rec["bytes_in"], "rss_before_kb": rss_before,
            "peak_rss_kb": _status_kb("VmHWM"), "largest_tensor_bytes": largest}


def compare(a: str, b: str) -> dict:
    ma, mb = ModelDir(a, "a"), ModelDir(b, "b")
    if set(ma.names) != set(mb.names):
        return {"max_abs_diff": None, "error": f"tensor names differ: {sorted(set(ma.names) ^ set(mb.names))[:3]}"}
    worst, over, total = 0.0, 0, 0
    for n in ma.names:
        d = (ma.tensor(n).float() - mb.tensor(n).float()).abs()
        worst = max(worst, d.max().item() if d.numel() else 0.0)
        over += int((d > 1e-6).sum())
        total += d.numel()
    return {"max_abs_diff": worst, "elements_over_1e-6": over, "elements": total}


def main(argv: list[str]) -> None:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    step, args = argv[0], argv[1:]
    if step == "gen":
        out = gen(args[0], *map(int, args[1:7]))
    elif step == "read":
        out = read(args)
    elif step == "merge":
        out = merge(args[0], args[1], args[2], args[3:])
    elif step == "compare":
        out = compare(args[0], args[1])
    else:
        raise SystemExit(f"unknown step {step!r}; see the module docstring")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
