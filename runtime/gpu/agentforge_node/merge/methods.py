"""The merge methods: pure functions from one tensor of each input model to the merged tensor.

Inputs arrive in their stored dtype (often zero-copy views of the memory-mapped files); every method computes in
fp32 and returns fp32, and the engine casts back to the output dtype. Conventions shared with mergekit so that
results can be compared: task vectors are δᵢ = expertᵢ − base, per-expert weights wᵢ multiply δᵢ before anything
else, and λ scales the merged task vector.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import torch

F32 = torch.float32
_CHUNK = 1 << 22  # elements per slice of the elementwise TIES stages (16 MB of fp32)


@dataclass(frozen=True)
class TensorParams:
    """Parameters in force for one tensor (global values with the first matching override applied)."""
    weights: tuple[float, ...]
    lam: float
    density: float
    drop_rate: float
    t: float
    dare_combine: str


@dataclass
class Job:
    name: str  # tensor name; seeds DARE so the result does not depend on processing order
    base: torch.Tensor | None
    experts: list[torch.Tensor]
    params: TensorParams
    seed: int


def linear(job: Job) -> torch.Tensor:
    """Linear: Σ wᵢ·θᵢ. Wortsman et al. 2022, "Model soups" (arXiv:2203.05482).

    Deviation: weights are given, not tuned on held-out data, and must sum to 1 (checked in spec.py, no silent
    renormalisation). Zero-weight models are skipped, so weights (1, 0) return the first model bit for bit.
    """
    terms = [(w, x) for w, x in zip(job.params.weights, job.experts) if w != 0]
    acc = terms[0][1].to(F32) * terms[0][0]
    for w, x in terms[1:]:
        acc.add_(x.to(F32), alpha=w)
    return acc


def task_arithmetic(job: Job) -> torch.Tensor:
    """Task arithmetic: θ = base + λ·Σ wᵢ·(θᵢ − base). Ilharco et al. 2023, "Editing models with task
    arithmetic" (arXiv:2212.04089). No deviation; wᵢ default to 1 and negative values give task negation."""
    base = job.base.to(F32)
    acc = _weighted_delta_sum(job, base, _identity)
    return acc.mul_(job.params.lam).add_(base)


def ties(job: Job) -> torch.Tensor:
    """TIES: trim each δᵢ to its top-`density` fraction by magnitude, elect the sign of Σ wᵢδᵢ per element
    (the mass), then take the disjoint mean over the models whose δ agrees with it. Yadav et al. 2023,
    "TIES-Merging" (arXiv:2306.01708).

    Deviations (the same as mergekit's `ties`, so outputs compare): the disjoint mean is weighted,
    Σ wᵢδᵢ·mᵢ / Σ wᵢ·mᵢ (plain mean when all wᵢ = 1); an element whose summed mass is exactly 0 elects +; the
    top-k keeps k = max(1, ⌊density·n⌋) and, on exact magnitude ties at the threshold, every tied element.
    """
    return _ties_merge(job, lambda d, i: _trim(d, job.params.density))


def dare(job: Job) -> torch.Tensor:
    """DARE: drop each element of δᵢ with probability p and rescale the survivors by 1/(1−p), then combine with
    task arithmetic ("linear") or TIES. Yu et al. 2024, "Language Models are Super Mario" (arXiv:2311.03099).

    Deviations: the drop mask is drawn from a generator seeded by (seed, tensor name, expert index), so a merge is
    reproducible and independent of tensor order; with TIES the magnitude trim uses `density` (default 1: none).
    mergekit's dare_* rescale by the L1 norm instead of 1/(1−p) and draw from the global RNG, so they differ.
    """
    def drop(d: torch.Tensor, i: int) -> torch.Tensor:
        p = job.params.drop_rate
        if p > 0 and d.numel():
            keep = torch.rand(d.shape, generator=_generator(job.seed, job.name, i)) >= p
            d = d.mul_(keep).mul_(1.0 / (1.0 - p))
        return d
    if job.params.dare_combine == "ties":
        return _ties_merge(job, lambda d, i: _trim(drop(d, i), job.params.density))
    base = job.base.to(F32)
    return _weighted_delta_sum(job, base, drop).mul_(job.params.lam).add_(base)


def slerp(job: Job) -> torch.Tensor:
    """SLERP between two models with factor t (t=0 → first, t=1 → second), each tensor flattened to one vector.
    Shoemake 1985, "Animating rotation with quaternion curves" (SIGGRAPH), as used for LLM weights by mergekit.

    Deviation from textbook SLERP: the angle comes from the normalised vectors but the interpolation is applied to
    the unnormalised ones (norms are not interpolated separately), and nearly collinear pairs (|cos| > 0.9995) fall
    back to linear interpolation, as mergekit does.
    """
    a, b, t = job.experts[0].to(F32), job.experts[1].to(F32), job.params.t
    if a.numel() == 0:
        return a.clone()
    # Norms and dot accumulate in fp64 over fp32 chunks: one fp32 dot over 10⁸ elements drifts by ~1e-4 relative.
    aa = bb = ab = 0.0
    fa, fb = a.reshape(-1), b.reshape(-1)
    for s in range(0, fa.numel(), _CHUNK):
        x, y = fa[s:s + _CHUNK].double(), fb[s:s + _CHUNK].double()
        aa, bb, ab = aa + torch.dot(x, x).item(), bb + torch.dot(y, y).item(), ab + torch.dot(x, y).item()
    na, nb = math.sqrt(aa), math.sqrt(bb)
    na, nb = (na if na > 1e-8 else 1.0), (nb if nb > 1e-8 else 1.0)
    dot = max(-1.0, min(1.0, ab / (na * nb)))
    if abs(dot) > 0.9995:
        ca, cb = 1.0 - t, t
    else:
        theta = math.acos(dot)
        ca, cb = math.sin((1 - t) * theta) / math.sin(theta), math.sin(t * theta) / math.sin(theta)
    return (a * ca).add_(b, alpha=cb)


# ---- shared pieces ----

def _identity(d: torch.Tensor, i: int) -> torch.Tensor:
    return d


def _weighted_delta_sum(job: Job, base: torch.Tensor, prep: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    acc: torch.Tensor | None = None
    for i, (w, x) in enumerate(zip(job.params.weights, job.experts)):
        d = prep(x.to(F32) - base, i).mul_(w)
        acc = d if acc is None else acc.add_(d)
    return acc


def _ties_merge(job: Job, prep: Callable[[torch.Tensor, int], torch.Tensor]) -> torch.Tensor:
    base = job.base.to(F32)
    # [E, n] trimmed weighted task vectors: the trim needs each whole vector (a global top-k), the rest does not.
    deltas = [prep(x.to(F32) - base, i).mul_(w).reshape(-1) for i, (w, x) in enumerate(zip(job.params.weights, job.experts))]
    flat_base, out = base.reshape(-1), torch.empty(base.numel(), dtype=F32)
    # Sign election and disjoint mean are elementwise: chunking keeps their temporaries small.
    for s in range(0, out.numel(), _CHUNK):
        ds = [d[s:s + _CHUNK] for d in deltas]
        mass = ds[0].clone()
        for d in ds[1:]:
            mass.add_(d)
        positive = mass >= 0
        mixed, divisor = torch.zeros_like(mass), torch.zeros_like(mass)
        for w, d in zip(job.params.weights, ds):
            agree = torch.where(positive, d > 0, d < 0)
            mixed.add_(d.mul_(agree))
            divisor.add_(agree.to(F32), alpha=w)
        divisor[divisor == 0] = 1
        out[s:s + _CHUNK] = mixed.div_(divisor).mul_(job.params.lam).add_(flat_base[s:s + _CHUNK])
    return out.view(base.shape)


def _trim(d: torch.Tensor, density: float) -> torch.Tensor:
    """Keeps the k = max(1, ⌊density·n⌋) largest-magnitude elements of d (in place)."""
    n = d.numel()
    k = max(1, int(density * n))
    if density >= 1 or k >= n:
        return d
    magnitude = d.abs().reshape(-1)
    threshold = magnitude.kthvalue(n - k + 1).values
    return d.mul_((magnitude >= threshold).view(d.shape))


def _generator(seed: int, name: str, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}\0{name}\0{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


# ---- registry: every method declares its contract; a malformed entry fails at import ----

@dataclass(frozen=True)
class Method:
    fn: Callable[[Job], torch.Tensor]
    needs_base: bool
    min_experts: int
    max_models: int | None = None  # counting the base, for methods with a fixed arity


METHODS: dict[str, Method] = {}


def register(name: str, method: Method) -> None:
    doc = method.fn.__doc__ or ""
    if name in METHODS:
        raise ValueError(f"merge method {name!r} registered twice")
    if "arXiv:" not in doc and "SIGGRAPH" not in doc:
        raise ValueError(f"merge method {name!r}: its docstring must cite the paper it implements")
    if method.min_experts < 1 or (method.max_models is not None and method.max_models < method.min_experts):
        raise ValueError(f"merge method {name!r}: inconsistent arity")
    METHODS[name] = method


register("linear", Method(linear, needs_base=False, min_experts=2))
register("task_arithmetic", Method(task_arithmetic, needs_base=True, min_experts=1))
register("ties", Method(ties, needs_base=True, min_experts=2))
register("dare", Method(dare, needs_base=True, min_experts=1))
register("slerp", Method(slerp, needs_base=False, min_experts=1, max_models=2))
