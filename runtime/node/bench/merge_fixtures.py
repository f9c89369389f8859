"""Tiny and large synthetic model directories for tests and bench/merge.ts (no download, no transformers)."""
from __future__ import annotations

import json
import os

import torch

from agentforge_node.merge.safetensors_io import DTYPE_NAMES, ShardedWriter

CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
          "num_attention_heads": 2, "num_key_value_heads": 2, "intermediate_size": 16, "vocab_size": 32,
          "tie_word_embeddings": False, "torch_dtype": "float32"}
TOKENIZER = {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1}, "unk_token": "<unk>"}}
TOKENIZER_CONFIG = {"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}", "eos_token": "<unk>"}


def write_model(path: str, tensors: dict[str, torch.Tensor], config: dict | None = None,
                tokenizer: dict | None = None, max_shard_bytes: int = 1 << 40) -> str:
    """Writes an HF-layout directory with the given tensors (in dict order), config and tokenizer."""
    os.makedirs(path, exist_ok=True)
    entries = [(n, DTYPE_NAMES[t.dtype], tuple(t.shape)) for n, t in tensors.items()]
    writer = ShardedWriter(path, entries, max_shard_bytes)
    for n, t in tensors.items():
        writer.write(n, t)
    writer.finish()
    write_aux(path, config, tokenizer)
    return path


def llama_shapes(hidden: int, layers: int, inter: int, vocab: int) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a Llama-style decoder, in the order transformers stores them."""
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes |= {p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,),
                   p + "self_attn.q_proj.weight": (hidden, hidden), p + "self_attn.k_proj.weight": (hidden, hidden),
                   p + "self_attn.v_proj.weight": (hidden, hidden), p + "self_attn.o_proj.weight": (hidden, hidden),
                   p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                   p + "mlp.down_proj.weight": (hidden, inter)}
    return shapes | {"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)}


def llama_tensors(hidden: int, layers: int, inter: int, vocab: int, seed: int, dtype: torch.dtype = torch.float32,
                  base: dict[str, torch.Tensor] | None = None, noise: float = 0.01) -> dict[str, torch.Tensor]:
    """Llama-shaped random weights; with `base`, base + noise (a fine-tuned sibling with a small task vector)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in llama_shapes(hidden, layers, inter, vocab).items():
        t = torch.randn(shape, generator=g) * (noise if base is not None else 0.02)
        if base is not None:
            t += base[name].float()
        elif name.endswith("norm.weight"):
            t += 1.0
        out[name] = t.to(dtype)
    return out


def write_aux(path: str, config: dict | None = None, tokenizer: dict | None = None) -> None:
    """config, tokenizer, tokenizer_config (with the chat template) and generation_config."""
    _dump(os.path.join(path, "config.json"), config or CONFIG)
    _dump(os.path.join(path, "tokenizer.json"), tokenizer or TOKENIZER)
    _dump(os.path.join(path, "tokenizer_config.json"), TOKENIZER_CONFIG)
    _dump(os.path.join(path, "generation_config.json"), {"eos_token_id": 0})


def llama_config(hidden: int, layers: int, inter: int, vocab: int, dtype: str = "float32") -> dict:
    return {**CONFIG, "hidden_size": hidden, "num_hidden_layers": layers, "intermediate_size": inter,
            "vocab_size": vocab, "num_attention_heads": max(1, hidden // 64), "num_key_value_heads": max(1, hidden // 64),
            "torch_dtype": dtype, "rms_norm_eps": 1e-5, "max_position_embeddings": 2048}


def _dump(path: str, obj: dict) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
