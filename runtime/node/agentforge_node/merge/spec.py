"""Merge parameters, their validation (every problem reported at once) and per-tensor resolution.

Overrides match tensor names with shell-style globs (fnmatch, case-sensitive), e.g. "*embed_tokens*" or
"*norm*"; the first matching override wins and replaces only the fields it sets.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

from .errors import MergeInputError
from .methods import METHODS, TensorParams

OUT_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class Override:
    pattern: str
    weights: list[float] | None = None
    lam: float | None = None
    density: float | None = None
    drop_rate: float | None = None
    t: float | None = None


@dataclass
class MergeSpec:
    method: str
    weights: list[float] | None = None  # per expert; linear defaults to 1/n each, the others to 1 each
    lam: float = 1.0                    # λ, scale of the merged task vector
    density: float = 1.0                # TIES: fraction of each task vector kept by magnitude
    drop_rate: float = 0.9              # DARE: p, the paper's default
    dare_combine: str = "linear"        # DARE followed by "linear" (task arithmetic) or "ties"
    seed: int = 0
    t: float = 0.5                      # SLERP factor
    overrides: list[Override] = field(default_factory=list)
    dtype: str | None = None            # output dtype; None = each tensor in the reference model's dtype
    max_shard_bytes: int = 2_000_000_000


def validate(spec: MergeSpec, n_experts: int, has_base: bool) -> None:
    """Raises MergeInputError listing every problem with the parameters and the number of inputs."""
    problems: list[str] = []
    method = METHODS.get(spec.method)
    if method is None:
        raise MergeInputError(f"unknown merge method {spec.method!r} (known: {', '.join(sorted(METHODS))})")
    if method.needs_base and not has_base:
        problems.append(f"{spec.method} needs a base model")
    n_models = n_experts + (1 if has_base and spec.method == "slerp" else 0)
    min_experts = 2 if (spec.method == "dare" and spec.dare_combine == "ties") else method.min_experts
    if spec.method == "slerp" and n_models != 2:
        problems.append(f"slerp merges exactly 2 models (base + 1 expert, or 2 experts); got {n_models}")
    elif n_experts < min_experts:
        problems.append(f"{spec.method} needs at least {min_experts} experts; got {n_experts}")
    if spec.dare_combine not in ("linear", "ties"):
        problems.append(f"dare_combine must be 'linear' or 'ties', got {spec.dare_combine!r}")
    if spec.dtype is not None and spec.dtype not in OUT_DTYPES:
        problems.append(f"dtype must be one of {OUT_DTYPES} or null, got {spec.dtype!r}")
    if spec.max_shard_bytes < 1:
        problems.append("max_shard_bytes must be positive")
    problems += _check_values(spec.method, "", spec.weights, spec.lam, spec.density, spec.drop_rate, spec.t, n_experts)
    for i, o in enumerate(spec.overrides):
        if not o.pattern:
            problems.append(f"overrides[{i}].pattern is empty")
        problems += _check_values(spec.method, f"overrides[{i}].", o.weights, o.lam, o.density, o.drop_rate, o.t, n_experts)
    if problems:
        raise MergeInputError("invalid merge parameters:\n  - " + "\n  - ".join(problems))


def _check_values(method: str, where: str, weights: list[float] | None, lam: float | None, density: float | None,
                  drop_rate: float | None, t: float | None, n_experts: int) -> list[str]:
    out: list[str] = []
    if weights is not None and method != "slerp":
        if len(weights) != n_experts:
            out.append(f"{where}weights has {len(weights)} values for {n_experts} experts")
        elif not all(math.isfinite(w) for w in weights):
            out.append(f"{where}weights must be finite numbers, got {weights}")
        elif method == "linear" and abs(sum(weights) - 1.0) > 1e-6:
            out.append(f"{where}weights of a linear merge must sum to 1, got {weights} (sum {sum(weights):.6g})")
        elif method in ("ties", "dare") and any(w <= 0 for w in weights):
            out.append(f"{where}weights of {method} must be > 0 (the disjoint mean divides by them), got {weights}")
    if lam is not None and not math.isfinite(lam):
        out.append(f"{where}lam must be finite, got {lam}")
    if density is not None and not 0.0 < density <= 1.0:
        out.append(f"{where}density must be in (0, 1], got {density}")
    if drop_rate is not None and not 0.0 <= drop_rate < 1.0:
        out.append(f"{where}drop_rate must be in [0, 1), got {drop_rate}")
    if t is not None and not 0.0 <= t <= 1.0:
        out.append(f"{where}t must be in [0, 1], got {t}")
    return out


class Resolver:
    """Per-tensor parameters: the globals with the first matching override applied."""

    def __init__(self, spec: MergeSpec, n_experts: int) -> None:
        default_w = 1.0 / n_experts if spec.method == "linear" else 1.0
        weights = tuple(spec.weights) if spec.weights is not None else (default_w,) * n_experts
        self.base = TensorParams(weights, spec.lam, spec.density, spec.drop_rate, spec.t, spec.dare_combine)
        self.overrides = [(o.pattern, self._apply(o)) for o in spec.overrides]
        self.hits = {o.pattern: 0 for o in spec.overrides}

    def _apply(self, o: Override) -> TensorParams:
        p = self.base
        if o.weights is not None:
            p = replace(p, weights=tuple(o.weights))
        for name in ("lam", "density", "drop_rate", "t"):
            if getattr(o, name) is not None:
                p = replace(p, **{name: getattr(o, name)})
        return p

    def params(self, tensor_name: str) -> TensorParams:
        for pattern, p in self.overrides:
            if fnmatchcase(tensor_name, pattern):
                self.hits[pattern] += 1
                return p
        return self.base
