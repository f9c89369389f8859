"""`init-model`: train a byte-level BPE tokenizer on a corpus and initialise a tiny Qwen3 around it.

Writes an HF directory: config.json, model.safetensors, generation_config.json, tokenizer.json and
tokenizer_config.json (with the chat template the TS side passes in). The tokenizer is byte-level so every string
(accents, emoji, JSON) round-trips without an unknown token; the special tokens come first so their ids are stable
(0..6) whatever the corpus is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

from ..device import seed_everything
from ..modeling import save_model
from ..protocol import Emitter
from ..requests.init_model import InitModelRequest

# (content, special): special tokens are skipped by decode(skip_special_tokens=True); the tool tags are not, so a
# decoded completion still shows its tool calls.
SPECIAL_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
]
EOS_TOKEN = "<|im_end|>"
PAD_TOKEN = "<|endoftext|>"


PRETOKENIZERS = ("bytelevel", "digits")


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int = 2, pretokenizer: str = "bytelevel") -> Tokenizer:
    """`bytelevel`: GPT-2 style word split. `digits`: every digit its own pre-token and merges allowed across words —
    on templated tool-use text it gives ~6x shorter sequences (the tools block and JSON collapse into few tokens)
    and ids become copyable digit by digit, which a tiny model learns far sooner."""
    if pretokenizer not in PRETOKENIZERS:
        raise ValueError(f"pretokenizer {pretokenizer!r} is not one of {', '.join(PRETOKENIZERS)}")
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size {vocab_size} is too small: byte-level BPE needs at least "
                         f"{256 + len(SPECIAL_TOKENS)} (256 bytes + {len(SPECIAL_TOKENS)} special tokens)")
    tok = Tokenizer(models.BPE())
    if pretokenizer == "digits":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[t for t, _ in SPECIAL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    # The trainer registers specials as special added tokens; the tool tags must decode as text.
    tok.add_tokens([])
    data = json.loads(tok.to_str())
    flags = dict(SPECIAL_TOKENS)
    for added in data["added_tokens"]:
        added["special"] = flags.get(added["content"], True)
    return Tokenizer.from_str(json.dumps(data))


def write_tokenizer_files(tok: Tokenizer, out_dir: Path, chat_template: str, model_max_length: int) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save(str(out_dir / "tokenizer.json"))
    ids = {t: tok.token_to_id(t) for t, _ in SPECIAL_TOKENS}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": model_max_length,
        "bos_token": None,
        "eos_token": EOS_TOKEN,
        "pad_token": PAD_TOKEN,
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "split_special_tokens": False,
        "added_tokens_decoder": {
            str(ids[t]): {"content": t, "special": special, "lstrip": False, "rstrip": False,
                          "normalized": False, "single_word": False}
            for t, special in SPECIAL_TOKENS
        },
        "chat_template": chat_template,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return ids


SIZE = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
        "max_position_embeddings", "rope_theta", "tie_word_embeddings")


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

    if req.num_heads % req.num_kv_heads != 0:
        raise ValueError(f"num_heads ({req.num_heads}) must be a multiple of num_kv_heads ({req.num_kv_heads})")
    vocab = tok.get_vocab_size(with_added_tokens=True)
    config = Qwen3Config(
        vocab_size=vocab, hidden_size=req.hidden_size, intermediate_size=req.intermediate_size,
        num_hidden_layers=req.num_layers, num_attention_heads=req.num_heads, num_key_value_heads=req.num_kv_heads,
        head_dim=req.head_dim, max_position_embeddings=req.max_position_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": req.rope_theta},
        tie_word_embeddings=req.tie_word_embeddings, eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN],
        bos_token_id=None, attention_dropout=0.0, use_cache=True)
    config._attn_implementation = "sdpa"
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[ids[EOS_TOKEN], ids[PAD_TOKEN]], pad_token_id=ids[PAD_TOKEN], bos_token_id=None,
        do_sample=False)
    emit.progress(2, 3, "stages")
    save_model(model.to(torch.float32), out)
    emit.progress(3, 3, "stages")
    n = sum(p.numel() for p in model.parameters())  # tied embeddings are one tensor, counted once
    emit.log(f"initialised Qwen3 with {n:,} parameters in {out}")
    return {"out_dir": str(out), "num_parameters": n, "vocab_size": vocab, "special_token_ids": ids,
            "size": {k: getattr(req, k) for k in SIZE}}
