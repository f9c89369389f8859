"""SFT shards (Parquet, one packed sequence per row) -> validated rows -> padded batches.

Packing keeps the shards compact; the trainer unpacks: `micro_batches` splits rows into their samples, sorts them
by length and right-pads each group, so plain causal attention is exact (a real token never sees a later pad) and
needs no block-diagonal mask. Attention then costs Σ len² instead of rows·max_len², SDPA takes its fused causal
kernel, and the trained next-token predictions are exactly those of the packed rows (1.3x faster per step on CPU).

Row columns: input_ids, loss_mask (1 = trained), position_ids (restart at 0 per sample), seq_lens, task_ids, sources.
Labels are next-token: token t+1 is predicted at t, trained iff loss_mask[t+1] == 1 and t+1 is in t's sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

REQUIRED = ("input_ids", "loss_mask", "position_ids", "seq_lens")


@dataclass
class Row:
    input_ids: np.ndarray   # [L] int64
    loss_mask: np.ndarray   # [L] int64 0/1
    segment: np.ndarray     # [L] int64, index of the packed sample each token belongs to (positions restart there)

    @property
    def targets(self) -> int:
        """How many next-token predictions this row trains."""
        return int(((self.loss_mask[1:] == 1) & (self.segment[1:] == self.segment[:-1])).sum())


def shard_files(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.parquet")))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"shard path {p} does not exist")
    return files


def load_rows(paths: list[str], vocab_size: int, max_len: int) -> list[Row]:
    files = shard_files(paths)
    rows: list[Row] = []
    for f in files:
        table = pq.read_table(f)
        missing = [c for c in REQUIRED if c not in table.column_names]
        if missing:
            raise ValueError(f"{f}: missing column(s) {missing}; SFT shards need {list(REQUIRED)}")
        cols = {c: table.column(c).to_pylist() for c in REQUIRED}
        for i in range(table.num_rows):
            rows.append(_make_row({c: cols[c][i] for c in REQUIRED}, f"{f} row {i}", vocab_size, max_len))
    if not rows:
        raise ValueError(f"empty dataset: no rows in shards {[str(f) for f in files] or paths}; "
                         "check that build-sft-shards produced data (did filtering drop every trajectory?)")
    if sum(r.targets for r in rows) == 0:
        raise ValueError("no trainable tokens: every loss_mask is 0 in the shards, so SFT has nothing to learn")
    return rows


def _make_row(raw: dict, where: str, vocab_size: int, max_len: int) -> Row:
    ids = np.asarray(raw["input_ids"] or [], dtype=np.int64)
    mask = np.asarray(raw["loss_mask"] or [], dtype=np.int64)
    pos = np.asarray(raw["position_ids"] or [], dtype=np.int64)
    lens = [int(x) for x in raw["seq_lens"] or []]
    n = len(ids)
    if n == 0:
        raise ValueError(f"{where}: input_ids is empty")
    if len(mask) != n or len(pos) != n:
        raise ValueError(f"{where}: input_ids has {n} tokens but loss_mask has {len(mask)} and position_ids {len(pos)}")
    if sum(lens) != n or any(x <= 0 for x in lens):
        raise ValueError(f"{where}: seq_lens {lens} must be positive and sum to len(input_ids) = {n}")
    if n > max_len:
        raise ValueError(f"{where}: sequence of {n} tokens is longer than max length {max_len}; rebuild the shards "
                         f"with a smaller pack length or raise max_seq_len (the model allows up to its "
                         "max_position_embeddings)")
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{where}: loss_mask must be 0/1")
    bad = np.nonzero((ids < 0) | (ids >= vocab_size))[0]
    if len(bad):
        raise ValueError(f"{where}: token id {int(ids[bad[0]])} at position {int(bad[0])} is outside the model's "
                         f"vocabulary (vocab_size {vocab_size}); were the shards built with another tokenizer?")
    segment = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    expected = np.concatenate([np.arange(x, dtype=np.int64) for x in lens])
    if not np.array_equal(pos, expected):
        raise ValueError(f"{where}: position_ids must restart at 0 for each packed sample (seq_lens {lens})")
    return Row(ids, mask, segment)


@dataclass
class Batch:
    input_ids: torch.Tensor     # [B, S]
    position_ids: torch.Tensor  # [B, S]
    targets: torch.Tensor       # [B, S] next token id (0 where untrained)
    target_mask: torch.Tensor   # [B, S] bool, True = position t trains the prediction of token t+1
    tokens: int                 # real (non-pad) tokens in the batch

    def to(self, device: torch.device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in
                       (self.input_ids, self.position_ids, self.targets, self.target_mask)), self.tokens)


def micro_batches(rows: list[Row], parts: int, pad_id: int) -> list[Batch]:
    """The samples packed in `rows`, shortest first, in `parts` right-padded causal batches of near-equal count."""
    samples = [(r.input_ids[r.segment == k], r.loss_mask[r.segment == k]) for r in rows
               for k in range(int(r.segment[-1]) + 1)]
    samples.sort(key=lambda x: len(x[0]))  # stable: equal lengths keep their order
    out = []
    for p in range(parts):
        group = samples[p * len(samples) // parts:(p + 1) * len(samples) // parts]
        if not group:
            continue
        s, b = max(len(ids) for ids, _ in group), len(group)
        ids, tgt = np.full((b, s), pad_id, dtype=np.int64), np.zeros((b, s), dtype=np.int64)
        tmask = np.zeros((b, s), dtype=bool)
        for i, (x, m) in enumerate(group):
            ids[i, :len(x)], tgt[i, :len(x) - 1], tmask[i, :len(x) - 1] = x, x[1:], m[1:] == 1
        pos = np.broadcast_to(np.arange(s, dtype=np.int64), (b, s)).copy()
        out.append(Batch(torch.from_numpy(ids), torch.from_numpy(pos), torch.from_numpy(tgt),
                         torch.from_numpy(tmask), int(sum(len(x) for x, _ in group))))
    return out
