"""bench/sft.ts helper: learnable samples -> samples.jsonl (TRL's input) and packed Parquet shards (our input).

  python make_shards.py <out_dir> <n_samples> <vocab> <max_len> <seed>
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def main(out: Path, n: int, vocab: int, max_len: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    samples = []
    for _ in range(n):
        length = int(rng.integers(max_len // 8, max_len // 2))
        start = int(rng.integers(7, vocab))
        ids = 7 + (start - 7 + np.arange(length) * int(rng.integers(1, 4))) % (vocab - 7)
        mask = (np.arange(length) >= length // 3).astype(int)  # first third is "prompt"
        samples.append((ids.tolist(), mask.tolist()))
    with open(out / "samples.jsonl", "w") as f:
        for ids, mask in samples:
            f.write(json.dumps({"input_ids": ids, "loss_mask": mask}) + "\n")
    rows, cur = [], []
    for s in samples:
        if cur and sum(len(x[0]) for x in cur) + len(s[0]) > max_len:
            rows.append(cur)
            cur = []
        cur.append(s)
    rows.append(cur)
    table = pa.Table.from_pylist([{
        "input_ids": [t for s in r for t in s[0]], "loss_mask": [m for s in r for m in s[1]],
        "position_ids": [p for s in r for p in range(len(s[0]))], "seq_lens": [len(s[0]) for s in r],
        "task_ids": ["bench"] * len(r), "sources": ["bench"] * len(r)} for r in rows])
    pq.write_table(table, out / "shards.parquet")
    print(json.dumps({"samples": n, "rows": len(rows)}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
