"""Persistent RL trainer: `python -m agentforge_node.rl_session`, one `train-rl` request per stdin line.

Each line is answered with protocol events ending in one `result` (or `error`) line. The trainer (model,
optimizer, reference model, ONNX export cache) stays loaded while consecutive requests name the same model_dir,
checkpoint_dir and device; a request naming others loads a new one. After an error the process exits 1: a failed
step can leave the optimizer half-updated, and a fresh session resumes cleanly from the last checkpoint.
Exit 0 when stdin closes. runtime/node/rl-session.ts is the TS side.

Under torchrun (`python -m torch.distributed.run --nproc_per_node N -m agentforge_node.rl_session`, for
parallel 'fsdp'/'ddp'), every rank inherits stdin but only rank 0 reads it: each line is broadcast so all ranks
run the same requests in lockstep, and only rank 0 writes the protocol (the other ranks' events go to stderr).
"""
from __future__ import annotations

import os
import sys
import traceback

from .__main__ import protocol_stream
from pydantic import ValidationError

from .protocol import Emitter
from .requests.train_rl import TrainRlRequest


def rank_lines(stream):
    """The request lines, the same on every rank: rank 0 reads, the others receive its lines ('' = end)."""
    import torch.distributed as dist

    from . import distributed as dist_util

    ctx = dist_util.init()
    _die_with_parent()
    while True:
        box = [stream.readline() if ctx.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        if not box[0]:
            return
        yield box[0]


def _die_with_parent() -> None:
    """A SIGKILLed torchrun agent cannot stop its workers (their own sessions): have the kernel do it."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


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
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return serve(sys.stdin, Emitter(protocol_stream()))
    emit = Emitter(protocol_stream() if int(os.environ.get("RANK", "0")) == 0 else sys.stderr)
    rc = 1
    try:
        rc = serve(rank_lines(sys.stdin), emit)
    except Exception as e:  # noqa: BLE001 - a collective that fails (a rank gone): shutdown's os._exit would drop it
        emit.error(f"{type(e).__name__}: {e}", traceback.format_exc())
    finally:
        from .distributed import shutdown

        shutdown(rc == 0)
    return rc


if __name__ == "__main__":
    sys.exit(main())
