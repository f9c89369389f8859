"""`train-rl`: one GRPO step on a batch of rollouts (see agentforge_node/grpo.py for the loss and its papers).

Two ways in, one request type:
- `python -m agentforge_node train-rl` (one request on stdin): loads the model, resumes from checkpoint_dir, does
  one step, exits. Needs checkpoint_every = 1 to make progress across calls; used by tests and one-off steps.
- `python -m agentforge_node.rl_session` (many requests, one JSON line each, until stdin closes): the same requests
  against a trainer that stays loaded; what runtime/node/rl-session.ts drives. H2's __main__ reads stdin to EOF,
  so the session has its own entry point in agentforge_node/rl_session.py.
Rollout columns: runtime/node/rl-requests.ts. Defaults follow GRPO (symmetric 0.2 clip, no KL); DAPO's
clip-higher (eps_high 0.28) and dynamic sampling are opt-in.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..protocol import Emitter


@dataclass
class RlSample:
    input_ids: list[int]
    loss_mask: list[int]
    behaviour_logprobs: list[float]
    group_id: str
    reward: float
    policy_version: int | None = None
    advantage: float | None = None


@dataclass
class Request:
    model_dir: str
    op: Literal["step", "state"] = "step"
    checkpoint_dir: str | None = None
    step: int = 0
    rollouts: list[str] | None = None
    samples: list[RlSample] | None = None
    temperature: float = 1.0
    eps_low: float = 0.2
    eps_high: float = 0.2
    beta_kl: float = 0.0
    tis_cap: float | None = 2.0
    adv_eps: float = 1e-6
    scale_rewards: bool = True
    dynamic_sampling: bool = False
    mini_batches: int = 1
    lr: float = 1e-6
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    max_grad_norm: float = 1.0
    micro_batch_size: int = 8
    seed: int = 0
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    export_dir: str | None = None
    export_mode: Literal["auto", "full", "weights"] = "auto"
    save_dir: str | None = None
    device: str = "auto"


def run(req: Request, emit: Emitter) -> dict[str, Any]:
    from ..rl_trainer import RlTrainer

    return RlTrainer(req, emit).handle(req)
