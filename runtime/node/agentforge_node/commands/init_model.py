"""`init-model`: train a byte-level BPE tokenizer on a corpus and initialise a tiny Qwen3 around it.

Writes an HF directory: config.json, model.safetensors, generation_config.json, tokenizer.json and
tokenizer_config.json (with the chat template the TS side passes in).
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, Qwen3ForCausalLM

from ..device import seed_everything
from ..modeling import ModelSize, build_config, count_params, save_model
from ..protocol import Emitter
from ..requests.init_model import InitModelRequest
from ..tokenizer_train import EOS_TOKEN, PAD_TOKEN, train_bpe, write_tokenizer_files


def read_corpus(req: InitModelRequest) -> list[str]:
    texts = list(req.texts)
    if req.text_file:
        path = Path(req.text_file)
        if not path.exists():
            raise FileNotFoundError(f"text_file {path} does not exist")
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            if line.startswith('"'):
                try:
                    line = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{lineno}: line starts with a quote but is not a JSON string: {e}") from e
            texts.append(line)
    if not any(t.strip() for t in texts):
        raise ValueError("init-model got an empty corpus: pass `texts` or a non-empty `text_file` to train the tokenizer on")
    return texts


def run(req: InitModelRequest, emit: Emitter) -> dict[str, Any]:
    seed_everything(req.seed)
    texts = read_corpus(req)
    emit.log(f"training byte-level BPE (vocab {req.vocab_size}) on {len(texts)} texts")
    tok = train_bpe(texts, req.vocab_size, req.min_frequency, req.pretokenizer)
    out = Path(req.out_dir)
    ids = write_tokenizer_files(tok, out, req.chat_template, req.max_position_embeddings)
    emit.progress(1, 3, "stages")

    size = ModelSize(req.hidden_size, req.num_layers, req.num_heads, req.num_kv_heads, req.head_dim,
                     req.intermediate_size, req.max_position_embeddings, req.rope_theta, req.tie_word_embeddings)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    config = build_config(size, vocab, eos_id=ids[EOS_TOKEN], pad_id=ids[PAD_TOKEN])
    config._attn_implementation = "sdpa"
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids[EOS_TOKEN], ids[PAD_TOKEN]], pad_token_id=ids[PAD_TOKEN], bos_token_id=None,
        do_sample=False)
    emit.progress(2, 3, "stages")
    save_model(model.to(torch.float32), out)
    emit.progress(3, 3, "stages")
    n = count_params(model)
    emit.log(f"initialised Qwen3 with {n:,} parameters in {out}")
    return {"out_dir": str(out), "num_parameters": n, "vocab_size": vocab, "special_token_ids": ids,
            "size": asdict(size)}
