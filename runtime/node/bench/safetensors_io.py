"""The hand-built safetensors reader/writer (agentforge_node/merge/safetensors_io.py) against the `safetensors`
package, in the same run, on the same files (page cache warm, medians of alternating runs).

  python bench/safetensors_io.py [--mb 256] [--runs 5]

read:  every tensor of a file, each summed once (touches every page): SafetensorsFile.tensor (a view of a private
       mapping) vs safe_open(...).get_tensor (the package's reader).
write: the same tensors to a new file: ShardedWriter.write vs safetensors.torch.save_file. The package's writer
       needs every tensor in memory at once; the merge streams chunks of one tensor at a time into the planned
       offsets (ShardedWriter.begin / TensorSink), which save_file cannot do.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agentforge_node.merge.safetensors_io import SafetensorsFile, ShardedWriter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a shared machine: one thread, so both readers see the same compute
    n = a.mb // 4  # tensors of 4 MB (1M fp32)
    tensors = {f"layer.{i}.weight": torch.randn(1024, 1024) for i in range(n)}
    work = Path(tempfile.mkdtemp(prefix="st-bench-"))
    src = work / "src.safetensors"
    save_file(tensors, str(src))

    def read_ours() -> float:
        f = SafetensorsFile(str(src))
        return sum(float(f.tensor(k).sum()) for k in f.tensors)

    def read_lib() -> float:
        with safe_open(str(src), framework="pt") as f:
            return sum(float(f.get_tensor(k).sum()) for k in f.keys())

    def write_ours() -> None:
        out = work / "ours"
        out.mkdir(exist_ok=True)
        w = ShardedWriter(str(out), [(k, "F32", tuple(t.shape)) for k, t in tensors.items()], 1 << 40)
        for k, t in tensors.items():
            w.write(k, t)
        w.finish()

    def write_lib() -> None:
        save_file(tensors, str(work / "lib.safetensors"))

    assert abs(read_ours() - read_lib()) < 1e-3  # same values; also warms the page cache for both
    times: dict[str, list[float]] = {k: [] for k in ("read_ours", "read_lib", "write_ours", "write_lib")}
    for _ in range(a.runs):
        for name, fn in (("read_ours", read_ours), ("read_lib", read_lib), ("write_ours", write_ours), ("write_lib", write_lib)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    assert (work / "ours" / "model.safetensors").read_bytes()[8:] and True
    med = {k: statistics.median(v) for k, v in times.items()}
    gbps = {k: a.mb / 1024 / v for k, v in med.items()}
    print(json.dumps({"mb": a.mb, "runs": a.runs, "median_s": med, "GB_per_s": gbps,
                      "read_speedup_ours_vs_lib": med["read_lib"] / med["read_ours"],
                      "write_speedup_ours_vs_lib": med["write_lib"] / med["write_ours"]}, indent=1))
    for p in work.rglob("*"):
        if p.is_file():
            p.unlink()


if __name__ == "__main__":
    main()
