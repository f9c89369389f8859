"""Each merge method against tensors computed by hand (the arithmetic is written out in the comments)."""
from __future__ import annotations

import math

import pytest
import torch

from agentforge_node.merge.methods import METHODS, Job, TensorParams, dare, linear, register, Method, slerp, task_arithmetic, ties


def params(weights, lam=1.0, density=1.0, drop_rate=0.0, t=0.5, combine="linear") -> TensorParams:
    return TensorParams(tuple(weights), lam, density, drop_rate, t, combine)


def T(*xs, dtype=torch.float32) -> torch.Tensor:
    return torch.tensor(xs, dtype=dtype)


def test_linear_weighted_average():
    # 0.25·[1,2,3,4] + 0.75·[3,2,1,0] = [2.5, 2, 1.5, 1]
    out = linear(Job("w", None, [T(1, 2, 3, 4), T(3, 2, 1, 0)], params([0.25, 0.75]), 0))
    assert torch.equal(out, T(2.5, 2, 1.5, 1))


def test_linear_weights_one_zero_is_first_model_bit_for_bit():
    a = torch.randn(64, 33, dtype=torch.bfloat16)
    b = torch.randn(64, 33, dtype=torch.bfloat16)
    a[0, 0] = -0.0
    out = linear(Job("w", None, [a, b], params([1.0, 0.0]), 0)).to(torch.bfloat16)
    assert torch.equal(out.view(torch.int16), a.view(torch.int16))  # bitwise, so -0.0 stays -0.0


def test_task_arithmetic():
    # δ1 = [1,0,-1,0], δ2 = [0,2,0,0]; base + 2·(1·δ1 + 0.5·δ2) = [1,1,1,1] + 2·[1,1,-1,0] = [3,3,-1,1]
    base = T(1, 1, 1, 1)
    out = task_arithmetic(Job("w", base, [T(2, 1, 0, 1), T(1, 3, 1, 1)], params([1.0, 0.5], lam=2.0), 0))
    assert torch.equal(out, T(3, 3, -1, 1))


def test_task_arithmetic_negation_with_one_expert():
    # base − 1·(e − base): forgetting by negation, the paper's one-vector case.
    out = task_arithmetic(Job("w", T(1, 2), [T(2, 0)], params([-1.0]), 0))
    assert torch.equal(out, T(0, 4))


TIES_BASE = torch.zeros(6)
TIES_EXPERTS = [T(4, -1, 2, 0.5, -3, 1), T(-2, -3, 1, 0.25, 2, 0.5), T(2, 0, 4, 0, 0, 0)]


def test_ties_trim_elect_disjoint_mean():
    # density 0.5 → k = 3 per task vector:
    #   δ1 → [4,0,2,0,-3,0]   δ2 → [-2,-3,0,0,2,0]   δ3 → [2,0,4,0,0,0]
    # mass = [4,-3,6,0,-1,0] → elected signs [+,-,+,+,-,+]
    # element 0: δ1=4, δ3=2 agree → (4+2)/2 = 3; element 1: only δ2 → -3; element 2: (2+4)/2 = 3;
    # element 3: nothing survives → 0; element 4: only δ1 → -3; element 5: 0
    out = ties(Job("w", TIES_BASE, TIES_EXPERTS, params([1, 1, 1], density=0.5), 0))
    assert torch.equal(out, T(3, -3, 3, 0, -3, 0))


def test_ties_weighted_disjoint_mean_and_lambda():
    # weights (1,1,2): wδ3 = [4,0,8,0,0,0]; element 0: (4+4)/(1+2) = 8/3; element 2: (2+8)/3 = 10/3; λ = 0.5 halves
    out = ties(Job("w", TIES_BASE + 1, [e + 1 for e in TIES_EXPERTS], params([1, 1, 2], lam=0.5, density=0.5), 0))
    expected = 1 + 0.5 * T(8 / 3, -3, 10 / 3, 0, -3, 0)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


def test_ties_density_one_keeps_everything():
    # no trim: mass = [4,-4,7,0.75,-1,1.5]; element 0: 4 and 2 agree (+) → 3; element 1: -1,-3 → -2;
    # element 2: (2+1+4)/3; element 3: (0.5+0.25)/2; element 4: only -3; element 5: (1+0.5)/2
    out = ties(Job("w", TIES_BASE, TIES_EXPERTS, params([1, 1, 1]), 0))
    torch.testing.assert_close(out, T(3, -2, 7 / 3, 0.375, -3, 0.75), rtol=0, atol=1e-6)


def test_dare_drops_and_rescales():
    base = torch.zeros(20_000)
    delta = torch.linspace(0.5, 1.5, 20_000)
    out = dare(Job("layer.w", base, [delta.clone()], params([1.0], drop_rate=0.75), seed=3))
    kept = out != 0
    # every survivor is δ/(1−p) = 4δ, every other element is 0
    torch.testing.assert_close(out[kept], delta[kept] * 4, rtol=0, atol=1e-6)
    assert abs(kept.float().mean().item() - 0.25) < 0.02


def test_dare_is_deterministic_per_seed_and_depends_on_it():
    base, e = torch.zeros(4096), [torch.randn(4096, generator=torch.Generator().manual_seed(0))]
    run = lambda seed, name="w": dare(Job(name, base, [x.clone() for x in e], params([1.0], drop_rate=0.5), seed))
    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))
    assert not torch.equal(run(7, "w"), run(7, "other"))  # per-tensor streams, not one global RNG


def test_dare_ties_without_drop_equals_ties():
    job = lambda method_combine: Job("w", TIES_BASE, [e.clone() for e in TIES_EXPERTS],
                                     params([1, 1, 1], density=0.5, drop_rate=0.0, combine=method_combine), 0)
    assert torch.equal(dare(job("ties")), ties(job("ties")))


def test_slerp_orthogonal_halfway():
    # θ = π/2; coefficients sin(π/4)/sin(π/2) = √2/2 each
    out = slerp(Job("w", None, [T(1, 0), T(0, 1)], params([], t=0.5), 0))
    torch.testing.assert_close(out, T(math.sqrt(0.5), math.sqrt(0.5)), rtol=0, atol=1e-7)


def test_slerp_endpoints_and_collinear_fallback():
    a, b = T(0.3, -1.2, 2.0), T(1.0, 0.5, -0.25)
    assert torch.equal(slerp(Job("w", None, [a, b], params([], t=0.0), 0)), a)
    # collinear (b = 2a) → linear interpolation: 0.75·[1,2] + 0.25·[2,4] = [1.25, 2.5]
    out = slerp(Job("w", None, [T(1, 2), T(2, 4)], params([], t=0.25), 0))
    assert torch.equal(out, T(1.25, 2.5))


def test_slerp_keeps_angle_fraction():
    # unit vectors at 60°: the t=1/3 point is at 20° from a
    a, b = T(1, 0), T(math.cos(math.pi / 3), math.sin(math.pi / 3))
    out = slerp(Job("w", None, [a, b], params([], t=1 / 3), 0))
    torch.testing.assert_close(out, T(math.cos(math.pi / 9), math.sin(math.pi / 9)), rtol=0, atol=1e-6)


def test_methods_compute_in_fp32_from_bf16_inputs():
    a, b = T(1.0, 2.0, dtype=torch.bfloat16), T(3.0, 4.0, dtype=torch.bfloat16)
    out = linear(Job("w", None, [a, b], params([0.5, 0.5]), 0))
    assert out.dtype == torch.float32 and torch.equal(out, T(2.0, 3.0))


def test_registry_refuses_methods_without_a_paper():
    def nameless(job):
        """No citation here."""
    with pytest.raises(ValueError, match="cite the paper"):
        register("nameless", Method(nameless, needs_base=False, min_experts=1, kernel=None))
    assert set(METHODS) == {"linear", "task_arithmetic", "ties", "dare", "slerp"}
