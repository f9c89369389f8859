"""Trains the embedded default's byte-level BPE tokenizer and writes the HF tokenizer files.

Byte-level so every string (accents, emoji, JSON) round-trips without an unknown token; the special tokens come
first so their ids are stable (0..6) whatever the corpus is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

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
