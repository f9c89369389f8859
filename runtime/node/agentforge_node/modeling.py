"""Model directories in Hugging Face layout: load one, save one, check tokenizer/model agree."""
from __future__ import annotations

import json
import shutil
import sys
from contextlib import redirect_stdout
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, Qwen3ForCausalLM


def tokenizer_size(model_dir: str | Path) -> int:
    """Number of ids the tokenizer can emit: base vocab plus added tokens (what `len(tokenizer)` gives)."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: a model directory needs tokenizer.json next to config.json")
    tok = json.loads(path.read_text())
    ids = set((tok.get("model", {}).get("vocab") or {}).values())
    ids.update(t["id"] for t in tok.get("added_tokens", []))
    return (max(ids) + 1) if ids else 0


def load_model(model_dir: str | Path, device: torch.device | str = "cpu") -> Qwen3ForCausalLM:
    """Loads an HF causal LM directory in fp32 and checks the tokenizer fits its embedding table."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"{model_dir}/config.json is missing: not a Hugging Face model directory")
    check_vocab(model_dir)
    with redirect_stdout(sys.stderr):  # library chatter stays off the protocol stream
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, attn_implementation="sdpa")
    return model.to(device)


def check_vocab(model_dir: Path) -> None:
    """Refuses a tokenizer that can emit ids past the embedding table (a bigger model vocab is fine: padding)."""
    n_tok = tokenizer_size(model_dir)
    vocab = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
    if not isinstance(vocab, int) or n_tok > vocab:
        raise ValueError(
            f"{model_dir}: tokenizer.json has {n_tok} ids but config.json vocab_size is {vocab}; "
            "ids >= vocab_size would index past the embedding table. Use the tokenizer the model was built with "
            "(or resize the embeddings and re-save the model).")


def save_model(model: torch.nn.Module, out_dir: str | Path, src_dir: str | Path | None = None) -> None:
    """Writes config.json + model.safetensors (+ generation_config.json); copies tokenizer files from src_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with redirect_stdout(sys.stderr):
        model.save_pretrained(str(out_dir), safe_serialization=True)
    if src_dir is not None:
        copy_tokenizer_files(src_dir, out_dir)


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
                   "generation_config.json")


def copy_tokenizer_files(src: str | Path, dst: str | Path) -> None:
    for name in TOKENIZER_FILES:
        s = Path(src) / name
        if s.exists() and not (Path(dst) / name).exists():
            shutil.copyfile(s, Path(dst) / name)

