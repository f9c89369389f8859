"""Trained sequences for the RL trainer, as the rollout side sent them (runtime/node/protocol.ts RlSample), checked.

Which samples train and with what advantage is decided in TS (runtime/rl/advantages.ts); here a sample only has to
be a well-formed sequence. Every bad value is reported with its index and field, so it is fixed at the source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .requests.train_rl import RlSample


@dataclass
class Rollout:
    input_ids: np.ndarray          # [T] int64
    loss_mask: np.ndarray          # [T] bool
    behaviour_logprobs: np.ndarray  # [T] float64
    advantage: float
    policy_version: int | None = None


def from_inline(samples: list[RlSample]) -> list[Rollout]:
    return [check_row(f"samples[{i}]", s) for i, s in enumerate(samples)]


def check_row(where: str, s: RlSample) -> Rollout:
    ids = np.asarray(s.input_ids, dtype=np.int64)
    mask_raw = np.asarray(s.loss_mask, dtype=np.int64)
    beh = np.asarray(s.behaviour_logprobs, dtype=np.float64)
    if len(ids) < 2:
        raise ValueError(f"{where}: input_ids needs at least 2 tokens (a prompt token and a completion token)")
    if len(mask_raw) != len(ids) or len(beh) != len(ids):
        raise ValueError(f"{where}: input_ids has {len(ids)} tokens but loss_mask has {len(mask_raw)} and "
                         f"behaviour_logprobs {len(beh)}; all three must be aligned per token")
    if not np.isin(mask_raw, (0, 1)).all():
        raise ValueError(f"{where}: loss_mask must hold only 0/1")
    m = mask_raw.astype(bool)
    if m[0]:
        raise ValueError(f"{where}: loss_mask[0] is 1, but the first token has no context to be predicted from")
    if not m.any():
        raise ValueError(f"{where}: loss_mask has no 1 - the row has no generated token to train on")
    bad = np.nonzero(m & ~(np.isfinite(beh) & (beh <= 0)))[0]
    if len(bad):
        raise ValueError(f"{where}: behaviour_logprobs[{bad[0]}] = {beh[bad[0]]} is not a log-probability "
                         "(finite and <= 0) at a trained token")
    if not math.isfinite(s.advantage):
        raise ValueError(f"{where}: advantage is {s.advantage}; it must be finite")
    return Rollout(ids, m, beh, s.advantage, s.policy_version)


def check_vocab(rows: list[Rollout], vocab: int) -> None:
    for i, r in enumerate(rows):
        if r.input_ids.min() < 0 or r.input_ids.max() >= vocab:
            raise ValueError(f"samples[{i}]: token id {int(r.input_ids.max())} is outside the model's vocab "
                             f"[0, {vocab}); were these rollouts made with another tokenizer?")
