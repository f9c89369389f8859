"""`tokenize`: the Python reference for TS tokenization parity (and chat-template rendering parity).

The pipeline tokenizes in TS; this command exists so tests can prove TS ids equal the Python `tokenizers` ids
for the same tokenizer.json, and that @huggingface/jinja renders the chat template as transformers does.
"""
from __future__ import annotations

import os
from typing import Any

from ..protocol import Emitter
from ..requests.tokenize import TokenizeRequest


def run(req: TokenizeRequest, emit: Emitter) -> dict[str, Any]:
    from tokenizers import Tokenizer

    path = os.path.join(req.tokenizer, "tokenizer.json") if os.path.isdir(req.tokenizer) else req.tokenizer
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tokenize: no tokenizer.json at {path}")
    tok = Tokenizer.from_file(path)
    encodings = tok.encode_batch(req.texts, add_special_tokens=False) if req.texts else []
    ids = [e.ids for e in encodings]
    rendered: list[str] = []
    if req.conversations:
        if not req.chat_template:
            raise ValueError("tokenize: conversations given without chat_template")
        from transformers.utils.chat_template_utils import render_jinja_template

        for i, conv in enumerate(req.conversations):
            texts, _ = render_jinja_template(
                conversations=[conv["messages"]],
                tools=conv.get("tools") or None,
                chat_template=req.chat_template,
                add_generation_prompt=bool(conv.get("add_generation_prompt", False)),
            )
            rendered.append(texts[0])
            emit.progress(i + 1, len(req.conversations), "conversations")
    out: dict[str, Any] = {"ids": ids, "rendered": rendered}
    if req.offsets:
        out["offsets"] = [[list(o) for o in e.offsets] for e in encodings]
    return out
