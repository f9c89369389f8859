"""`train-rl`: one GRPO step on a batch of samples (see agentforge_node/grpo.py for the loss and its papers).

Two ways in, one request type (TrainRlRequest, generated from runtime/node/protocol.ts RlStepRequest):
- `python -m agentforge_node train-rl` (one request on stdin): loads the model, resumes from checkpoint_dir, does
  one step, exits. Needs checkpoint_every = 1 to make progress across calls; used by tests and one-off steps.
- `python -m agentforge_node.rl_session` (many requests, one JSON line each, until stdin closes): the same requests
  against a trainer that stays loaded; what runtime/node/rl-session.ts drives.
"""
from __future__ import annotations

from typing import Any

from ..protocol import Emitter
from ..requests.train_rl import TrainRlRequest


def run(req: TrainRlRequest, emit: Emitter) -> dict[str, Any]:
    from ..rl_trainer import RlTrainer  # torch loads here

    try:
        return RlTrainer(req, emit).handle(req)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():  # a torchrun one-shot step (tests; sessions stay single-process)
            dist.destroy_process_group()
