"""The GPU path's math (each kernel's `whole`) against the CPU path's chunks, on the CPU: the same bits.

`whole` is what the engine runs on a GPU (one torch op per operation, in the kernels' order); here it runs on CPU
tensors, so every CI run checks it against the compiled kernels. The CUDA run itself is in test_merge_cuda.py.
"""
from __future__ import annotations

import pytest
import torch

from agentforge_node.merge.methods import METHODS, Job, TensorParams, _coins, evaluate
from agentforge_node.merge import kernels

N = 300_007  # > methods.SMALL: TIES brackets its thresholds from a sample, as on real tensors


def params(n_experts, lam=1.0, density=1.0, drop_rate=0.0, t=0.5, combine="linear", weights=None) -> TensorParams:
    return TensorParams(tuple(weights or [1.0] * n_experts), lam, density, drop_rate, t, combine)


def inputs(dtype=torch.float32, n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, generator=g) * 0.02
    experts = [base + torch.randn(n, generator=g) * 0.002 for _ in range(2)]
    # exact ties at any threshold, zeros, and identical elements make the trim and the sign election take every branch
    for e in experts:
        e[:1000] = base[:1000] + 0.001
        e[1000:1100] = base[1000:1100]
    experts[1][2000:2100] = base[2000:2100] - (experts[0][2000:2100] - base[2000:2100])
    return base.to(dtype), [e.to(dtype) for e in experts]


CASES = [
    ("linear", params(2, weights=[0.3, 0.7]), False),
    ("task_arithmetic", params(2, lam=0.8, weights=[1.0, 0.5]), True),
    ("ties", params(2, density=0.5), True),
    ("ties", params(2, density=0.2, lam=1.3, weights=[1.0, 0.25]), True),
    ("dare", params(2, drop_rate=0.5), True),
    ("dare", params(2, drop_rate=0.7, density=0.6, combine="ties"), True),
    ("slerp", params(2, t=0.3), False),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("method,p,with_base", CASES)
def test_whole_equals_streamed_chunks(method, p, with_base, dtype):
    base, experts = inputs(dtype)
    job = Job("layers.0.w", base if with_base else None, experts, p, seed=7)
    chunks = evaluate(METHODS[method].kernel(job), base.shape)
    whole = METHODS[method].kernel(job).whole()
    if method == "slerp":
        # its factors come from fp64 sums taken in another order: at most an ulp of fp32 apart
        torch.testing.assert_close(whole, chunks, rtol=2.4e-7, atol=0)
    else:
        assert torch.equal(whole.view(torch.int32), chunks.view(torch.int32))


def test_ties_threshold_with_nans_ignores_them_like_the_band():
    base, experts = inputs(n=5000)
    experts[0][:10] = float("nan")
    job = Job("w", base, experts, params(2, density=0.5), seed=0)
    kernel = METHODS["ties"].kernel(job)
    whole, chunks = kernel.whole(), evaluate(METHODS["ties"].kernel(job), base.shape)
    assert torch.equal(whole.view(torch.int32), chunks.view(torch.int32))


def test_dare_coins_match_the_compiled_hash_across_the_2_32_boundary():
    idx = torch.tensor([0, 1, 2**31 - 1, 2**32 - 1, 2**32, 2**32 + 5, 3 * 2**32 + 17], dtype=torch.int64)
    for key in (0, 1, 0xDEADBEEF, 2**32 - 1):
        assert _coins(key, idx).tolist() == kernels.coins(key, idx.numpy()).tolist()
