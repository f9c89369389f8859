"""The embedded default's tokenizer: both pre-tokenizers round-trip; `digits` keeps digits apart and is shorter."""
from __future__ import annotations

import pytest

from agentforge_node.commands.init_model import train_bpe

CORPUS = [
    '<|im_start|>user\nCancel order O-6291 for Ana Lopez, please.<|im_end|>\n'
    '<|im_start|>assistant\n<tool_call>\n{"name": "cancel_order", "arguments": {"order_id": "O-6291"}}\n</tool_call><|im_end|>\n',
    '<|im_start|>user\nWhat is the status of order O-1187? Café naïve 🎉<|im_end|>\n',
] * 50


@pytest.mark.parametrize("pre", ["bytelevel", "digits"])
def test_round_trip(pre: str) -> None:
    tok = train_bpe(CORPUS, vocab_size=400, min_frequency=2, pretokenizer=pre)
    for text in CORPUS[:2] + ["unseen 12345 ümlaut"]:
        assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text


def test_digits_are_single_tokens_and_sequences_shorter() -> None:
    plain = train_bpe(CORPUS, vocab_size=400, pretokenizer="bytelevel")
    digits = train_bpe(CORPUS, vocab_size=400, pretokenizer="digits")
    enc = digits.encode("order O-6291")
    pieces = [digits.id_to_token(i) for i in enc.ids]
    assert [p for p in pieces if any(c.isdigit() for c in p)] == ["6", "2", "9", "1"]
    assert len(digits.encode(CORPUS[0]).ids) < len(plain.encode(CORPUS[0]).ids)


def test_unknown_pretokenizer_is_refused() -> None:
    with pytest.raises(ValueError, match="pretokenizer 'words' is not one of bytelevel, digits"):
        train_bpe(CORPUS, vocab_size=400, pretokenizer="words")
