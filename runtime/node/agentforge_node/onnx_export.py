"""ONNX export with explicit KV-cache inputs/outputs, so the TS side can decode incrementally with ORT.

Graph signature (B batch, S new tokens, P past tokens):
  inputs  input_ids int64 [B,S], attention_mask int64 [B,P+S], position_ids int64 [B,S],
          past_key_values.{i}.key / .value float32 [B,kv_heads,P,head_dim]
  outputs logits float32 [B,1,V] (the last position only), present.{i}.key / .value [B,kv_heads,P+S,head_dim]
Sampling needs only the last position, and over a whole prefill the LM head and a [B,S,V] logits tensor were ~15 %
of a rollout's generate time on the klear default (64 rows x 200 tokens: 1,140 vs 945 ms).
Attention is eager (explicit additive mask) but grouped: each KV head serves its query heads as one [heads/kv *
S, P+S] product, instead of eager's repeat_kv, which ORT ran as an Expand copying the whole KV cache every decode
step (~5 of ~20 ms a step for 64 rows on the klear default).
The TorchScript exporter (dynamo=False, opset 18) traces a wrapper that rebuilds a DynamicCache from the flat
per-layer tensors. Tracing bakes Python branches in, so we trace with P > 0 and S > 1 and the tests check other
shapes (P = 0 prefill, S = 1 decode, other batch sizes).
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch
from torch import nn
from transformers import AttentionInterface, DynamicCache
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

GROUPED = "agentforge_grouped_eager"
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json")


def grouped_eager_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0,
                            **kwargs: object) -> tuple[torch.Tensor, None]:
    """transformers' eager attention without repeat_kv: query heads h·g .. h·g+g−1 share KV head h (as repeat_kv
    lays them out), so [B, H, S, D] viewed as [B, KV, g·S, D] multiplies the KV heads directly."""
    b, h, s, d = query.shape
    kv = key.shape[1]
    q = query.reshape(b, kv, (h // kv) * s, d)
    w = torch.matmul(q, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        w = (w.view(b, kv, h // kv, s, -1) + attention_mask[:, :, None]).view(b, kv, (h // kv) * s, -1)
    w = nn.functional.softmax(w, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(w, value).view(b, h, s, d)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(GROUPED, grouped_eager_attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(GROUPED, eager_mask)


class KVWrapper(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.num_layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache(config=self.model.config)
        for i in range(self.num_layers):
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               past_key_values=cache, use_cache=True)
        logits = self.model.lm_head(out.last_hidden_state[:, -1:, :])
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (logits.float(), *present)


def io_names(num_layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_key_values.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


def example_inputs(config, batch: int = 2, past: int = 3, step: int = 4) -> tuple[torch.Tensor, ...]:
    kv, hd = config.num_key_value_heads, config.head_dim
    ids = torch.randint(0, config.vocab_size, (batch, step))
    mask = torch.ones(batch, past + step, dtype=torch.long)
    pos = torch.arange(past, past + step).expand(batch, -1).contiguous()
    cache = [torch.randn(batch, kv, past, hd) for _ in range(2 * config.num_hidden_layers)]
    return (ids, mask, pos, *cache)


def export(model: nn.Module, path: Path, opset: int = 18) -> None:
    model = model.float().eval()
    model.config._attn_implementation = GROUPED  # eager masking avoids sdpa's NaN rows under left padding
    wrapper = KVWrapper(model).eval()
    inputs, outputs = io_names(wrapper.num_layers)
    dyn = {"input_ids": {0: "batch", 1: "step"}, "attention_mask": {0: "batch", 1: "total"},
           "position_ids": {0: "batch", 1: "step"}, "logits": {0: "batch", 1: "step"}}
    for name in inputs[3:]:
        dyn[name] = {0: "batch", 2: "past"}
    for name in outputs[1:]:
        dyn[name] = {0: "batch", 2: "total"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python branches are expected; tests cover shapes
        torch.onnx.export(wrapper, example_inputs(model.config), str(path), input_names=inputs,
                          output_names=outputs, dynamic_axes=dyn, opset_version=opset, dynamo=False,
                          do_constant_folding=True)


def eos_ids(model_dir: Path, config) -> list[int]:
    gen = model_dir / "generation_config.json"
    eos = json.loads(gen.read_text()).get("eos_token_id") if gen.exists() else None
    eos = config.eos_token_id if eos is None else eos
    return sorted({int(x) for x in (eos if isinstance(eos, list) else [eos]) if x is not None})


def write_side_files(model: nn.Module, src: Path, out: Path, version: int, only_missing: bool = False) -> dict:
    """The tokenizer and config files beside the graph, then meta.json (what the TS engine reads) last."""
    for name in SIDE_FILES:
        if (src / name).exists() and not (only_missing and (out / name).exists()):
            shutil.copyfile(src / name, out / name)
    cfg = model.config
    meta = {"num_layers": cfg.num_hidden_layers, "num_kv_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab_size, "eos_token_ids": eos_ids(src, cfg),
            "pad_token_id": cfg.pad_token_id if cfg.pad_token_id is not None else 0, "policy_version": version}
    write_atomic(out / "meta.json", (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def write_atomic(path: Path, data: bytes, only_if_differs: bool = False) -> None:
    if only_if_differs and path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
