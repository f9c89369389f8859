"""Merge parameters: MergeSpec is the merge operator's params (generated from its zod schema into requests.py);
their validation against the inputs (every problem reported at once) and per-tensor resolution.

Overrides match tensor names with shell-style globs (fnmatch, case-sensitive), e.g. "*embed_tokens*" or
"*norm*"; the first matching override wins and replaces only the fields it sets.
"""
from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase

from ..requests.merge import MergeOptions as MergeSpec, MergeOverride as Override
from .methods import METHODS, TensorParams
from .safetensors_io import MergeInputError

def validate(spec: MergeSpec, n_experts: int, has_base: bool) -> None:
    """Raises MergeInputError listing every problem with the parameters against the inputs. Types, enums and ranges
    are the generated model's (MergeSpec validates them on construction); these checks need the number of experts."""
    problems: list[str] = []
    method = METHODS[spec.method]
    if method.needs_base and not has_base:
        problems.append(f"{spec.method} needs a base model")
    n_models = n_experts + (1 if has_base and spec.method == "slerp" else 0)
    min_experts = 2 if (spec.method == "dare" and spec.dare_combine == "ties") else method.min_experts
    if spec.method == "slerp" and n_models != 2:
        problems.append(f"slerp merges exactly 2 models (base + 1 expert, or 2 experts); got {n_models}")
    elif n_experts < min_experts:
        problems.append(f"{spec.method} needs at least {min_experts} experts; got {n_experts}")
    problems += _check_weights(spec.method, "", spec.weights, n_experts)
    for i, o in enumerate(spec.overrides):
        problems += _check_weights(spec.method, f"overrides[{i}].", o.weights, n_experts)
    if problems:
        raise MergeInputError("invalid merge parameters:\n  - " + "\n  - ".join(problems))


def _check_weights(method: str, where: str, weights: list[float] | None, n_experts: int) -> list[str]:
    if weights is None or method == "slerp":
        return []
    if len(weights) != n_experts:
        return [f"{where}weights has {len(weights)} values for {n_experts} experts"]
    if method == "linear" and abs(sum(weights) - 1.0) > 1e-6:
        return [f"{where}weights of a linear merge must sum to 1, got {weights} (sum {sum(weights):.6g})"]
    if method in ("ties", "dare") and any(w <= 0 for w in weights):
        return [f"{where}weights of {method} must be > 0 (the disjoint mean divides by them), got {weights}"]
    return []


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
