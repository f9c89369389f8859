"""ONNX export with explicit KV-cache inputs/outputs, so the TS side can decode incrementally with ORT.

Graph signature (B batch, S new tokens, P past tokens):
  inputs  input_ids int64 [B,S], attention_mask int64 [B,P+S], position_ids int64 [B,S],
          past_key_values.{i}.key / .value float32 [B,kv_heads,P,head_dim]
  outputs logits float32 [B,1,V] (the last position only), present.{i}.key / .value [B,kv_heads,P+S,head_dim]
Sampling needs only the last position, and over a whole prefill the LM head and a [B,S,V] logits tensor were ~15 %
of a rollout's generate time on the klear default (64 rows x 200 tokens: 1,140 vs 945 ms).
The LM head multiplies its weight as it is, on the left ((W @ h^T)^T for the last position): a tied embedding stays
one initializer shared by the Gather and the MatMul. `lm_head(h)` exports as h @ W^T with W^T constant-folded into a
second, transposed copy (652 MB for a 135M model whose weights are 538 MB).
dtype (weights only; inputs, logits and KV stay float32, so the engines do not change):
  fp16  every large float initializer stored as float16 behind a Cast to float32; ORT folds the Cast when the
        session is created, so the file halves and decoding runs the same fp32 kernels (ORT's CPU provider has no
        fp16 MatMul on x86).
  int8  each MatMul on a weight becomes com.microsoft DynamicQuantizeMatMul (activations quantized per call, the
        weight int8 with one scale per output column), except the MLP's down_proj, whose input (act(gate) * up) has
        the outlier channels per-tensor activation scales handle worst, and the embedding / tied LM head. On
        SmolLM2-135M (8 prompts x 24 greedy tokens, 2 threads): every MatMul int8 decoded 1.78x fp32's speed but only
        80 % of tokens before the first divergence from fp32; without down_proj 1.47x and 93 %.
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
# The template files too: tokenize.ts reads the model's own template (chat_template.jinja, as transformers 5 saves
# it) beside the export; without them it would fall back to the project's template.
SIDE_FILES = ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json",
              "special_tokens_map.json", "chat_template.jinja", "chat_template.json")
SIDE_DIRS = ("additional_chat_templates",)
# model_type values the graph wrapper handles (decoder-only, model.model + lm_head, standard KV); mirrored by
# ONNX_MODEL_TYPES in runtime/node/protocol.ts, which refuses the rest when a model is resolved.
SUPPORTED_MODEL_TYPES = ("llama", "qwen2", "qwen3")


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
        head = self.model.lm_head
        # (W @ h^T)^T: the weight as it is, the left operand (see the module doc)
        logits = torch.matmul(head.weight, out.last_hidden_state[:, -1, :].transpose(0, 1)).transpose(0, 1)
        if head.bias is not None:
            logits = logits + head.bias
        logits = logits.unsqueeze(1)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (logits.float(), *present)


def io_names(num_layers: int) -> tuple[list[str], list[str]]:
    past = [f"past_key_values.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past], ["logits", *present]


def head_dim(config) -> int:
    """Qwen2's config has no head_dim attribute: hidden / heads, as its attention computes it."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def check_supported(model: nn.Module, where: str | Path) -> None:
    kind = getattr(model.config, "model_type", None)
    if kind not in SUPPORTED_MODEL_TYPES:
        raise ValueError(f"{where}: model_type '{kind}' ({type(model).__name__}) cannot be exported to ONNX; the "
                         f"exporter supports {', '.join(SUPPORTED_MODEL_TYPES)}: pick a model of one of those architectures")


def example_inputs(config, batch: int = 2, past: int = 3, step: int = 4) -> tuple[torch.Tensor, ...]:
    kv, hd = config.num_key_value_heads, head_dim(config)
    ids = torch.randint(0, config.vocab_size, (batch, step))
    mask = torch.ones(batch, past + step, dtype=torch.long)
    pos = torch.arange(past, past + step).expand(batch, -1).contiguous()
    cache = [torch.randn(batch, kv, past, hd) for _ in range(2 * config.num_hidden_layers)]
    return (ids, mask, pos, *cache)


def export(model: nn.Module, path: Path, opset: int = 18, dtype: str = "fp32") -> None:
    check_supported(model, path)
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
    if dtype != "fp32":
        convert_weights(path, dtype, keep_fp32=lambda node_name: "down_proj" in node_name)


# Initializers this small (norm weights, rotary tables' scalars) stay float32: no size to save, and exactness.
MIN_CONVERT = 1024


def convert_weights(path: Path, dtype: str, keep_fp32=lambda node_name: False) -> None:
    """`keep_fp32(node name)`: int8 leaves that MatMul in float32."""
    """Rewrites an fp32 export's weights as fp16 (Cast-backed) or int8 (DynamicQuantizeMatMul); see the module doc."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(path))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    if dtype == "fp16":
        casts = []
        for name, init in list(inits.items()):
            if init.data_type != onnx.TensorProto.FLOAT or np.prod(init.dims) < MIN_CONVERT:
                continue
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), name + "__fp16")
            g.initializer.remove(init)
            g.initializer.append(half)
            casts.append(helper.make_node("Cast", [half.name], [name], to=onnx.TensorProto.FLOAT, name=f"{name}__cast"))
        for c in reversed(casts):
            g.node.insert(0, c)
    elif dtype == "int8":
        nodes = []
        for node in g.node:
            w = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
            if (w is None or w.data_type != onnx.TensorProto.FLOAT or len(w.dims) != 2 or np.prod(w.dims) < MIN_CONVERT
                    or keep_fp32(node.name)):
                nodes.append(node)
                continue
            a = numpy_helper.to_array(w)  # [K, N]: one symmetric scale per output column
            scale = np.maximum(np.abs(a).max(axis=0), 1e-12) / 127.0
            q = np.clip(np.rint(a / scale), -127, 127).astype(np.int8)
            base = node.input[1]
            g.initializer.extend([numpy_helper.from_array(q, base + "__int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), base + "__scale"),
                                  numpy_helper.from_array(np.zeros_like(q[0]), base + "__zp")])
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [node.input[0], base + "__int8", base + "__scale",
                                                                     base + "__zp"], list(node.output),
                                          name=(node.name or base) + "__dq", domain="com.microsoft"))
        used = {i for n in nodes for i in n.input}
        for name, init in inits.items():
            if name not in used:
                g.initializer.remove(init)
        del g.node[:]
        g.node.extend(nodes)
        if not any(o.domain == "com.microsoft" for o in m.opset_import):
            m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    else:
        raise ValueError(f"export dtype '{dtype}': expected fp32, fp16 or int8")
    big = m.ByteSize() > 1_900_000_000  # protobuf's 2 GB limit: weights go to one external file
    onnx.save(m, str(path), save_as_external_data=big, all_tensors_to_one_file=True, location=path.name + ".data")


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
    for name in SIDE_DIRS:
        if (src / name).is_dir() and not (only_missing and (out / name).exists()):
            shutil.copytree(src / name, out / name, dirs_exist_ok=True)
    cfg = model.config
    meta = {"num_layers": cfg.num_hidden_layers, "num_kv_heads": cfg.num_key_value_heads, "head_dim": head_dim(cfg),
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
