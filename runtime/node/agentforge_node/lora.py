"""LoRA adapters through peft: attach to a loaded model, compute the merged weights, save merged + adapter.

The adapter is injected in place (peft's LoraModel swaps each target Linear for a LoRA layer around it), so the
trainers keep calling `model.model(...)` and `model.lm_head` on the same Hugging Face model object; only the adapter
matrices require grad and reach the optimizer. Everything downstream of training (export-onnx, merge, eval, the
RL trainer's per-version ONNX refresh) reads plain weights, so an output directory holds the merged weights
(W + B·A·alpha/r per target) and the adapter itself under `adapter/` in peft's format, for servers that load
adapters per version. The merged copy is built beside the trained model, never by merging in place and
unmerging: W + d - d is not W in floating point, and the training weights must stay bit-exact for resume.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ADAPTER = "default"
ADAPTER_DIR = "adapter"


def attach(model: nn.Module, cfg: Any, where: str) -> nn.Module:
    """Injects LoRA layers into `model` (in place) per `cfg` (the request's `lora`); returns the PeftModel wrapper.

    `where` names the model in errors (its directory)."""
    from peft import LoraConfig, get_peft_model

    linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
    missing = [t for t in cfg.target_modules if t not in linear]
    if missing:
        raise ValueError(f"lora.target_modules {missing} match no Linear layer of the model in {where}; its Linear "
                         f"layers are named {linear}. Set lora.target_modules to some of those.")
    conf = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, conf)
    assert peft_model.get_base_model() is model  # the trainers rely on in-place injection
    fuse(peft_model)
    return peft_model


def fuse(model: nn.Module) -> None:
    """Gives every plain LoRA Linear the fused forward below (its class becomes a subclass: deepcopy, merge and
    save see the same peft layer)."""
    from peft.tuners.lora.layer import Linear

    global _FUSED
    if _FUSED is None:
        _FUSED = type("FusedLoraLinear", (Linear,), {"forward": _fused_forward})
    for m in model.modules():
        if type(m) is Linear:
            m.__class__ = _FUSED


_FUSED: type | None = None


def _fused_forward(self: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """W·x + scale·B·(A·x) with the adapter's product accumulated into the base output by one addmm.

    peft's vanilla path computes B·(A·x), scales it and adds it: more passes over a [tokens, out] tensor and more
    such tensors allocated, per adapted Linear (210 of them in SmolLM2-135M with all 7 targets). A SmolLM2 LoRA
    forward+backward ran 1.15x faster at 1 CPU thread, 1.02x at 2 (README, bench:real). Same math, other rounding;
    anything but one plain adapter without dropout (variants, several adapters, merged, disabled, extra args) goes
    to peft.
    """
    active = self.active_adapters
    name = active[0] if len(active) == 1 else None
    if (args or kwargs or name is None or name not in self.lora_A or name in self.lora_variant or self.merged
            or self.disable_adapters or self.fan_in_fan_out or not isinstance(self.lora_dropout[name], nn.Identity)):
        return super(_FUSED, self).forward(x, *args, **kwargs)
    base = self.base_layer
    out = F.linear(x, base.weight, base.bias)
    a, b = self.lora_A[name].weight, self.lora_B[name].weight
    h = F.linear(self._cast_input_dtype(x, a.dtype), a)
    n = out.shape[-1]
    return torch.addmm(out.reshape(-1, n), h.reshape(-1, h.shape[-1]), b.t(), alpha=self.scaling[name]).view(out.shape)


def is_lora(model: nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return any(isinstance(m, LoraLayer) for m in model.modules())


def merged_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """Plain parameter name -> merged value (W + delta for LoRA targets, the weight itself elsewhere), detached.

    Names are those of the model without adapters, so the dict fits a merged copy's named_parameters()."""
    from peft.tuners.lora import LoraLayer

    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, LoraLayer):
                base = mod.get_base_layer()
                out[f"{name}.weight"] = base.weight + mod.get_delta_weight(ADAPTER).to(base.weight.dtype)
                if getattr(base, "bias", None) is not None:
                    out[f"{name}.bias"] = base.bias.detach()
        for name, p in model.named_parameters():
            if "lora_" in name or ".base_layer." in name:
                continue
            out[name] = p.detach()
    return out


class MergedView:
    """A plain copy of the model holding the merged weights, refreshed in place on demand (export, save).

    Built once by deep-copying the trained model and letting peft merge the copy; later refreshes only copy the
    merged values into it, so the RL trainer's ONNX weight refresh sees the same parameter objects every time."""

    def __init__(self) -> None:
        self.model: nn.Module | None = None

    def get(self, peft_model: nn.Module) -> nn.Module:
        if self.model is None:
            self.model = copy.deepcopy(peft_model).merge_and_unload()
            self.model.requires_grad_(False).eval()
        merged = merged_parameters(peft_model.get_base_model())
        with torch.no_grad():
            for name, p in self.model.named_parameters():
                p.copy_(merged[name])
        return self.model


def save_adapter(peft_model: nn.Module, out_dir: str | Path) -> Path:
    """peft's own adapter format (adapter_config.json + adapter_model.safetensors) under out_dir/adapter."""
    import sys
    from contextlib import redirect_stdout

    path = Path(out_dir) / ADAPTER_DIR
    with redirect_stdout(sys.stderr):
        peft_model.save_pretrained(str(path), safe_serialization=True)
    return path


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the parameters that train (the adapter under LoRA): the frozen base is reloaded from model_dir."""
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
