"""Persistent RL trainer: `python -m agentforge_node.rl_session`, one `train-rl` request per stdin line.

Each line is answered with protocol events ending in one `result` (or `error`) line. The trainer (model,
optimizer, reference model, ONNX export cache) stays loaded while consecutive requests name the same model_dir,
checkpoint_dir and device; a request naming others loads a new one. After an error the process exits 1: a failed
step can leave the optimizer half-updated, and a fresh session resumes cleanly from the last checkpoint.
Exit 0 when stdin closes. runtime/node/rl-session.ts is the TS side.
"""
from __future__ import annotations

import sys
import traceback

from .__main__ import protocol_stream
from pydantic import ValidationError

from .protocol import Emitter
from .requests.train_rl import TrainRlRequest


def serve(lines, emit: Emitter) -> int:
    trainer = None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            req = TrainRlRequest.model_validate_json(line)
        except ValidationError as e:
            emit.error(f"rl_session request line {n}: {e}")
            return 2
        try:
            from .rl_trainer import RlTrainer  # torch loads here: a malformed first line fails fast

            if trainer is None or trainer.key != RlTrainer.key_of(req):
                trainer = RlTrainer(req, emit)
            emit.result(trainer.handle(req))
        except Exception as e:  # noqa: BLE001 - every failure becomes one error event with its traceback
            emit.error(f"{type(e).__name__}: {e}", traceback.format_exc())
            return 1
    return 0


def main() -> int:
    emit = Emitter(protocol_stream())
    return serve(sys.stdin, emit)


if __name__ == "__main__":
    sys.exit(main())
