"""The compiled merge loops: the streaming TIES threshold against a whole-tensor reference, DARE's counter-based
coins, and independence from chunk size and thread count."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agentforge_node.merge import kernels, methods
from agentforge_node.merge.methods import SMALL, Job, Runner, TensorParams, dare, ties


def params(weights, lam=1.0, density=1.0, drop_rate=0.0, combine="linear") -> TensorParams:
    return TensorParams(tuple(weights), lam, density, drop_rate, 0.5, combine)


def models(n: int, experts: int, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, generator=g) * 0.02
    return base, [base + torch.randn(n, generator=g) * 0.002 for _ in range(experts)]


def ties_reference(base, experts, weights, density, lam):
    """TIES on whole tensors with torch.topk for the threshold (k = ⌊density·n⌋, ties at the threshold kept)."""
    ds = []
    for x, w in zip(experts, weights):
        d = x - base
        t = torch.topk(d.abs(), int(density * d.numel())).values[-1]
        ds.append(d * (d.abs() >= t) * w)
    mass = ds[0]
    for d in ds[1:]:
        mass = mass + d
    sign = torch.copysign(torch.ones_like(mass), mass)
    total, divisor = torch.zeros_like(mass), torch.zeros_like(mass)
    for d, w in zip(ds, weights):
        p = (d * sign).clamp_min(0)
        divisor = divisor + w * (p > 0)
        total = total + p
    return total / divisor.clamp_min(min(weights)) * (sign * lam) + base


@pytest.mark.parametrize("n", [SMALL - 5, 5 * SMALL + 3, 300_001])
def test_ties_streaming_threshold_equals_whole_tensor_topk(n):
    # Above SMALL the threshold comes from a sample's bracket plus one counting pass; it must still be exact.
    base, experts = models(n, 3)
    out = ties(Job("w", base, experts, params([1.0, 0.5, 2.0], lam=0.7, density=0.3), 0))
    assert torch.equal(out, ties_reference(base, experts, [1.0, 0.5, 2.0], 0.3, 0.7))


def test_dare_coins_are_a_function_of_key_and_index():
    n, start, cutoff = 50_000, 3 * (1 << 32) + 17, np.uint32(1 << 23)  # p = 0.5, far past 2³² elements
    d = np.empty(n, np.float32)
    kernels.dropped(np.zeros(n, np.float32), np.ones(n, np.float32), 12345, cutoff, np.float32(2), start, d)
    expected = kernels.coins(12345, np.arange(start, start + n, dtype=np.int64)) >= cutoff
    assert np.array_equal(d != 0, expected)
    assert set(np.unique(d)) == {0.0, 2.0}
    assert abs(expected.mean() - 0.5) < 0.01
    other = kernels.coins(12346, np.arange(start, start + n, dtype=np.int64)) >= cutoff
    assert 0.45 < (other == expected).mean() < 0.55  # another key: an independent stream


def run_kernel(kernel, threads: int) -> torch.Tensor:
    run, out = Runner(threads), torch.empty(kernel.n)
    try:
        kernel.prepare(run)
        run.chunks(lambda s, e, sc: out[s:e].copy_(kernel.chunk(s, e, sc)), kernel.n)
    finally:
        run.close()
    return out


@pytest.mark.parametrize("method, spec", [
    ("dare", params([1.0, 2.0], density=0.4, drop_rate=0.3, combine="ties")),
    ("dare", params([1.0, 0.5], lam=0.9, drop_rate=0.6, combine="linear")),
    ("ties", params([1.0, 1.0], density=0.2)),
])
def test_results_do_not_depend_on_chunk_size_or_threads(monkeypatch, method, spec):
    base, experts = models(700_003, 2, seed=1)
    job = Job("layers.0.w", base, experts, spec, seed=9)
    whole = run_kernel(methods.METHODS[method].kernel(job), 1)
    monkeypatch.setattr(methods, "CHUNK", 10_007)
    small = run_kernel(methods.METHODS[method].kernel(job), 2)
    assert torch.equal(whole.view(torch.int32), small.view(torch.int32))  # bit for bit, signs of zero included
    if method == "dare":
        assert not torch.equal(whole, dare(Job(job.name, base, experts, spec, seed=10)))


def test_ties_threshold_on_an_atom_of_dropped_zeros():
    # A 50% drop leaves half of each δ at exactly 0, so with density 0.8 the k-th largest |δ| is that atom: the
    # threshold is 0 and nothing is trimmed, the same merge as density 1.
    base, experts = models(5 * SMALL + 7, 2, seed=2)
    job = lambda density: Job("w", base, experts, params([1.0, 1.0], density=density, drop_rate=0.5, combine="ties"), 3)
    assert torch.equal(dare(job(0.8)), dare(job(1.0)))
