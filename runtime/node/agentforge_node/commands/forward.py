"""`forward`: torch logits for given token ids - the reference the TS ORT parity test compares against."""
from __future__ import annotations

from typing import Any

import torch

from ..modeling import load_model
from ..protocol import Emitter
from ..requests.forward import ForwardRequest


def run(req: ForwardRequest, emit: Emitter) -> dict[str, Any]:
    model = load_model(req.model_dir).eval()
    as_t = lambda x: None if x is None else torch.tensor(x, dtype=torch.long)  # noqa: E731
    with torch.no_grad():
        logits = model(input_ids=as_t(req.input_ids), attention_mask=as_t(req.attention_mask),
                       position_ids=as_t(req.position_ids)).logits
    return {"logits": logits.float().tolist()}
