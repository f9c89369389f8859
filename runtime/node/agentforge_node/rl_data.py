"""Rollout rows for the RL trainer: read from Parquet (or inline), checked, grouped, given advantages.

A row is one sampled completion with its prompt (columns documented in runtime/node/rl-requests.ts). Every bad
value is reported with its file, row and field, so a broken rollout table is fixed at the source.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .grpo import ragged_group_advantages

REQUIRED = ("input_ids", "loss_mask", "behaviour_logprobs", "group_id", "reward")
OPTIONAL = ("policy_version", "advantage")


@dataclass
class Rollout:
    input_ids: np.ndarray          # [T] int64
    loss_mask: np.ndarray          # [T] bool
    behaviour_logprobs: np.ndarray  # [T] float64
    group_id: str
    reward: float
    policy_version: int | None = None
    advantage: float | None = None


def _lists(table, name: str) -> list[np.ndarray]:
    col = table.column(name).combine_chunks()
    offsets = col.offsets.to_numpy()
    values = col.values.to_numpy(zero_copy_only=False)
    return [values[offsets[i]:offsets[i + 1]] for i in range(len(col))]


def read_parquet(paths: list[str]) -> list[Rollout]:
    import pyarrow.parquet as pq

    rows: list[Rollout] = []
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"rollouts file {path} does not exist")
        t = pq.read_table(path)
        missing = [c for c in REQUIRED if c not in t.column_names]
        if missing:
            raise ValueError(f"{path}: rollout table lacks column(s) {missing} (has {t.column_names}); "
                             f"required: {list(REQUIRED)}")
        ids, mask, beh = _lists(t, "input_ids"), _lists(t, "loss_mask"), _lists(t, "behaviour_logprobs")
        groups, rewards = t.column("group_id").to_pylist(), t.column("reward").to_pylist()
        opt = {c: t.column(c).to_pylist() if c in t.column_names else [None] * t.num_rows for c in OPTIONAL}
        for i in range(t.num_rows):
            rows.append(check_row(f"{path} row {i}", ids[i], mask[i], beh[i], groups[i], rewards[i],
                                  opt["policy_version"][i], opt["advantage"][i]))
    return rows


def from_inline(samples: list) -> list[Rollout]:
    return [check_row(f"samples[{i}]", s.input_ids, s.loss_mask, s.behaviour_logprobs, s.group_id, s.reward,
                      s.policy_version, s.advantage) for i, s in enumerate(samples)]


def check_row(where: str, ids, mask, beh, group, reward, version, advantage) -> Rollout:
    ids = np.asarray(ids, dtype=np.int64)
    mask_raw = np.asarray(mask, dtype=np.int64)
    beh = np.asarray(beh, dtype=np.float64)
    if ids.ndim != 1 or len(ids) < 2:
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
    if reward is None or not math.isfinite(float(reward)):
        raise ValueError(f"{where}: reward is {reward!r}; every rollout needs a finite reward (score it first)")
    if not isinstance(group, str) or not group:
        raise ValueError(f"{where}: group_id must be a non-empty string")
    return Rollout(ids, m, beh, group, float(reward), None if version is None else int(version),
                   None if advantage is None else float(advantage))


def check_vocab(rows: list[Rollout], vocab: int) -> None:
    for i, r in enumerate(rows):
        if r.input_ids.min() < 0 or r.input_ids.max() >= vocab:
            raise ValueError(f"rollout {i} (group {r.group_id}): token id {int(r.input_ids.max())} is outside the "
                             f"model's vocab [0, {vocab}); were these rollouts made with another tokenizer?")


@dataclass
class Prepared:
    rows: list[Rollout]          # rows kept for training
    advantages: torch.Tensor     # [len(rows)]
    groups: int
    dropped_groups: int
    reward_mean: float
    reward_std: float


def prepare(rows: list[Rollout], eps: float, scale: bool, dynamic_sampling: bool) -> Prepared:
    """Group-normalised advantages; with dynamic sampling, rows of zero-variance groups are dropped."""
    names = sorted({r.group_id for r in rows})
    index = {g: i for i, g in enumerate(names)}
    rewards = torch.tensor([r.reward for r in rows], dtype=torch.float64)
    gidx = torch.tensor([index[r.group_id] for r in rows], dtype=torch.long)
    adv, keep = ragged_group_advantages(rewards, gidx, eps, scale)
    given = [r.advantage for r in rows]
    if any(a is not None for a in given):
        if not all(a is not None for a in given):
            raise ValueError("the rollouts set `advantage` on some rows only; set it on all rows or none")
        adv = torch.tensor(given, dtype=torch.float64)
    kept = [i for i in range(len(rows)) if keep[gidx[i]] or not dynamic_sampling]
    return Prepared([rows[i] for i in kept], adv[kept].float(), len(names),
                    int((~keep).sum()) if dynamic_sampling else 0, float(rewards.mean()),
                    float(rewards.std()) if len(rows) > 1 else 0.0)
