"""The merge engine's GPU path (device 'cuda'): whole merges on the GPU against the CPU path, file for file.

Skipped where torch sees no CUDA device (CI); runtime/gpu/bench/device_merge.sh runs it on a GPU machine. The last
test runs everywhere else: asking for 'cuda' without one is a clear error, and nothing is written.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agentforge_node.merge import MergeSpec, merge_models
from agentforge_node.merge.errors import MergeInputError
from agentforge_node.merge.fixtures import llama_tensors, write_model
from agentforge_node.merge.model_dir import ModelDir

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")
# vocab 4096 × hidden 64: the embedding (262k elements) is past methods.SMALL, so TIES's CPU side brackets from a sample
SHAPE = dict(hidden=64, layers=2, inter=128, vocab=4096)

SPECS = [
    dict(method="linear", weights=[0.3, 0.7]),
    dict(method="task_arithmetic", weights=[1.0, 0.5], lam=0.8),
    dict(method="ties", density=0.5),
    dict(method="dare", drop_rate=0.5, dare_combine="ties", seed=3),
    dict(method="dare", drop_rate=0.9, seed=1),
    dict(method="slerp", t=0.3),
]


def family(tmp: Path, dtype: torch.dtype) -> tuple[str, list[str]]:
    base = llama_tensors(**SHAPE, seed=0, dtype=dtype)
    write_model(str(tmp / "base"), base, max_shard_bytes=400_000)
    experts = []
    for i in range(2):
        write_model(str(tmp / f"e{i}"), llama_tensors(**SHAPE, seed=i + 1, dtype=dtype, base=base), max_shard_bytes=300_000 * (i + 1))
        experts.append(str(tmp / f"e{i}"))
    return str(tmp / "base"), experts


def tensors(path: Path) -> dict[str, torch.Tensor]:
    m = ModelDir(str(path), "out")
    return {n: m.tensor(n).clone() for n in m.names}


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['method']}-{s.get('dare_combine', '')}")
def test_gpu_merge_equals_cpu_merge(tmp_path, spec, dtype):
    base, experts = family(tmp_path, dtype)
    slerp = spec["method"] == "slerp"
    ins = (base, experts[:1]) if slerp else ((None if spec["method"] == "linear" else base), experts)
    rec = {d: merge_models(MergeSpec(**spec, device=d, max_shard_bytes=500_000), *ins, str(tmp_path / d)) for d in ("cpu", "cuda")}
    assert rec["cpu"]["device"] == "cpu" and rec["cuda"]["device"].startswith("cuda")
    cpu, gpu = tensors(tmp_path / "cpu"), tensors(tmp_path / "cuda")
    assert cpu.keys() == gpu.keys()
    for name in cpu:
        if slerp:
            torch.testing.assert_close(gpu[name].float(), cpu[name].float(), rtol=2.4e-7 if dtype == torch.float32 else 8e-3, atol=0)
        else:
            assert torch.equal(gpu[name].view(torch.uint8), cpu[name].view(torch.uint8)), name
    if not slerp:
        assert sorted(p.name for p in (tmp_path / "cpu").iterdir()) == sorted(p.name for p in (tmp_path / "cuda").iterdir())


@cuda
def test_auto_merges_on_the_gpu(tmp_path):
    base, experts = family(tmp_path, torch.float32)
    assert merge_models(MergeSpec("ties", density=0.5), base, experts, str(tmp_path / "out"))["device"].startswith("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where no CUDA device is visible")
def test_cuda_without_a_gpu_is_a_clear_error_and_writes_nothing(tmp_path):
    base, experts = family(tmp_path, torch.float32)
    with pytest.raises(MergeInputError, match="device 'cuda' was asked for, but torch sees no CUDA device"):
        merge_models(MergeSpec("ties", density=0.5, device="cuda"), base, experts, str(tmp_path / "out"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "e0", "e1"]
    assert merge_models(MergeSpec("ties", density=0.5), base, experts, str(tmp_path / "out"))["device"] == "cpu"
