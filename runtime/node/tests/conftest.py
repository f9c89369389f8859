"""Fixtures built in code: a tiny Qwen3 made by the real init-model command, and shards written with pyarrow."""
from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import agentforge_node  # noqa: E402,F401  (first: it pins torch's CPU kernels before torch loads)
import torch  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))  # merge_fixtures, shared with the merge bench
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

from agentforge_node.commands import init_model  # noqa: E402
from agentforge_node.protocol import Emitter  # noqa: E402
from agentforge_node.requests.init_model import InitModelRequest  # noqa: E402

# Placeholder for tests only; the real template is runtime/agent/chat-template.ts (passed in by init-model.ts).
TEMPLATE = ("{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
            "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CORPUS = [f"<|im_start|>user\nadd {i} and {i * 7 % 13}<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
          f'{{"name": "add", "arguments": {{"a": {i}, "b": {i * 7 % 13}}}}}\n</tool_call><|im_end|>\n' for i in range(60)]
TINY = dict(vocab_size=300, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16,
            intermediate_size=128, max_position_embeddings=256)


class Recorder(Emitter):
    """An Emitter whose events are kept as dicts (same JSON encoding as the real stream)."""

    def __init__(self) -> None:
        self.buf = io.StringIO()
        super().__init__(self.buf)

    @property
    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.buf.getvalue().splitlines()]

    def metrics(self, name: str) -> list[float]:
        return [e["value"] for e in self.events if e["event"] == "metric" and e["name"] == name]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "model"
    req = InitModelRequest(**dict(out_dir=str(out), chat_template=TEMPLATE, texts=CORPUS, **TINY))
    init_model.run(req, Recorder())
    return out


def counting_sample(rng: np.random.Generator, vocab: int, lo: int = 7) -> np.ndarray:
    """A learnable sample: a run of consecutive ids (wrapping inside [lo, vocab))."""
    n = int(rng.integers(5, 20))
    start = int(rng.integers(lo, vocab))
    return lo + (start - lo + np.arange(n)) % (vocab - lo)


def pack_rows(samples: list[np.ndarray], pack_len: int, prompt: int = 2) -> list[dict]:
    """Greedy packing; the first `prompt` tokens of each sample are untrained (loss_mask 0)."""
    rows, cur = [], []
    for s in samples:
        if cur and sum(len(x) for x in cur) + len(s) > pack_len:
            rows.append(_row(cur, prompt))
            cur = []
        cur.append(s)
    if cur:
        rows.append(_row(cur, prompt))
    return rows


def _row(samples: list[np.ndarray], prompt: int) -> dict:
    return dict(
        input_ids=np.concatenate(samples).tolist(),
        loss_mask=np.concatenate([(np.arange(len(s)) >= prompt).astype(int) for s in samples]).tolist(),
        position_ids=np.concatenate([np.arange(len(s)) for s in samples]).tolist(),
        seq_lens=[len(s) for s in samples],
        task_ids=[f"t{i}" for i in range(len(samples))],
        sources=["test"] * len(samples),
    )


def write_shards(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("input_ids", pa.list_(pa.int32())), ("loss_mask", pa.list_(pa.int32())),
                        ("position_ids", pa.list_(pa.int32())), ("seq_lens", pa.list_(pa.int32())),
                        ("task_ids", pa.list_(pa.string())), ("sources", pa.list_(pa.string()))])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


@pytest.fixture(scope="session")
def tiny_shards(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    samples = [counting_sample(rng, TINY["vocab_size"]) for _ in range(160)]
    return write_shards(tmp_path_factory.mktemp("shards") / "part-0.parquet", pack_rows(samples, 64))
