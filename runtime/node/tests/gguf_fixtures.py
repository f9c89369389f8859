"""Tiny GGUF files written in the tests with gguf-py's GGUFWriter, from tiny random HF models.

The layout follows what llama.cpp's converter produces: GGUF tensor names from gguf-py's name map, 1-D tensors
(norms, biases) kept F32, 2-D weights in the requested type, llama's q/k rows permuted into GGML's rotary order
(transformers undoes that permutation when it loads a llama GGUF), no output.weight when the embedding is tied,
and a byte-level BPE tokenizer ("gpt2") with its tokens, token types and merges.
"""
from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

ARCHS = {"llama": (LlamaConfig, LlamaForCausalLM, gguf.MODEL_ARCH.LLAMA),
         "qwen2": (Qwen2Config, Qwen2ForCausalLM, gguf.MODEL_ARCH.QWEN2),
         "qwen3": (Qwen3Config, Qwen3ForCausalLM, gguf.MODEL_ARCH.QWEN3)}
QTYPES = {"F32": gguf.GGMLQuantizationType.F32, "F16": gguf.GGMLQuantizationType.F16,
          "Q8_0": gguf.GGMLQuantizationType.Q8_0, "Q4_0": gguf.GGMLQuantizationType.Q4_0}


def tiny_arch_model(arch: str, vocab: int, tie: bool = True, seed: int = 0, **over) -> torch.nn.Module:
    cfg_cls, model_cls, _ = ARCHS[arch]
    torch.manual_seed(seed)
    kw = dict(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, max_position_embeddings=256, tie_word_embeddings=tie,
              rope_theta=10000.0, rms_norm_eps=1e-6, eos_token_id=2, pad_token_id=0, bos_token_id=None)
    if arch == "qwen3":
        kw["head_dim"] = 32  # wider than hidden/heads: the GGUF has no key that carries it for qwen3
    kw.update(over)
    model = model_cls(cfg_cls(**kw)).eval()
    with torch.no_grad():  # random norms and biases too, so a dropped or misplaced tensor shows in the logits
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(1 + 0.1 * torch.randn_like(p) if "norm" in name else 0.1 * torch.randn_like(p))
    return model


def permute_rotary(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotate-half layout -> GGML's interleaved pairs, per head (what llama.cpp's llama converter does)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tokenizer_metadata(tok_dir: Path) -> dict:
    tok = json.loads((tok_dir / "tokenizer.json").read_text())
    vocab: dict[str, int] = dict(tok["model"]["vocab"])
    special = {t["content"]: t["id"] for t in tok["added_tokens"]}
    vocab.update(special)
    tokens = [""] * (max(vocab.values()) + 1)
    for t, i in vocab.items():
        tokens[i] = t
    ctrl = {i for t, i in special.items() if t.startswith("<|")}
    types = [3 if i in ctrl else 4 if i in special.values() else 1 for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    return {"tokens": tokens, "types": types, "merges": merges, "eos": special["<|im_end|>"],
            "pad": special["<|endoftext|>"]}


def write_gguf(model: torch.nn.Module, tok_dir: Path, path: Path, qtype: str = "F32", chat_template: str | None = None,
               arch: str | None = None) -> Path:
    cfg = model.config
    arch = arch or cfg.model_type
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"tiny-{arch}")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.head_dim)
    w.add_key_length(cfg.head_dim)
    w.add_value_length(cfg.head_dim)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    t = tokenizer_metadata(tok_dir)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(t["tokens"])
    w.add_token_types(t["types"])
    w.add_token_merges(t["merges"])
    w.add_eos_token_id(t["eos"])
    w.add_pad_token_id(t["pad"])
    if chat_template is not None:
        w.add_chat_template(chat_template)
    names = gguf.get_tensor_name_map(ARCHS[cfg.model_type][2], cfg.num_hidden_layers)
    q = QTYPES[qtype]
    for key, p in model.state_dict().items():
        if key == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        assert name is not None, key
        a = p.detach().float().numpy()
        if arch == "llama" and key.endswith("q_proj.weight"):
            a = permute_rotary(a, cfg.num_attention_heads)
        elif arch == "llama" and key.endswith("k_proj.weight"):
            a = permute_rotary(a, cfg.num_key_value_heads)
        if a.ndim == 1 or q == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
        elif q == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, a.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(a, q), raw_dtype=q)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def set_tensor_type(path: Path, tensor: str, type_id: int) -> None:
    """Rewrites one tensor's ggml type id in place (a type the reader does not know, for the error path)."""
    data = bytearray(path.read_bytes())
    name = tensor.encode()
    at = data.find(len(name).to_bytes(8, "little") + name)
    assert at > 0, tensor
    at += 8 + len(name)
    n_dims = int.from_bytes(data[at:at + 4], "little")
    at += 4 + 8 * n_dims
    data[at:at + 4] = type_id.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def save_arch_model(arch: str, tok_dir: Path, out: Path, tie: bool = True, seed: int = 0) -> Path:
    """A tiny random `arch` model as a Hugging Face dir, with the tokenizer files (and template) of `tok_dir`."""
    import shutil

    vocab = json.loads((tok_dir / "config.json").read_text())["vocab_size"]
    model = tiny_arch_model(arch, vocab, tie=tie, seed=seed)
    model.save_pretrained(str(out))
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tok_dir / name).exists():
            shutil.copyfile(tok_dir / name, out / name)
    return out


if __name__ == "__main__":  # python gguf_fixtures.py '{"hf": [[arch, tok_dir, out, tie], ...]}' | '{"gguf": [...]}'
    import sys

    req = json.loads(sys.argv[1])
    if "hf" in req:
        for arch, tok, out, tie in req["hf"]:
            save_arch_model(arch, Path(tok), Path(out), tie)
    else:
        arch, tok, out, qtype, template = req["gguf"]
        vocab = json.loads((Path(tok) / "config.json").read_text())["vocab_size"]
        write_gguf(tiny_arch_model(arch, vocab), Path(tok), Path(out), qtype, chat_template=template)
