"""ONNX export parity: the exported graph's logits (last position of each call) equal torch's within 1e-4, with
and without KV cache, batched with left and right padding. Runs the graph with onnx's reference evaluator (ORT parity is checked on
the TS side with onnxruntime-node in test/gpu/onnx-parity.test.ts)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from agentforge_node.commands import export_onnx
from agentforge_node.modeling import load_model
from agentforge_node.requests.export_onnx import ExportOnnxRequest

from conftest import Recorder


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    export_onnx.run(ExportOnnxRequest.model_validate({"model_dir": str(tiny_model), "out_dir": str(out),
                                                        "policy_version": 3}), Recorder())
    return out, ReferenceEvaluator(str(out / "model.onnx")), load_model(tiny_model).eval()


def batch(lengths: list[int], side: str, vocab: int, seed: int = 0):
    """Padded ids, mask and position ids (positions count real tokens only, as the TS engine does)."""
    rng = np.random.default_rng(seed)
    s = max(lengths)
    ids = np.zeros((len(lengths), s), dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        sl = slice(s - n, s) if side == "left" else slice(0, n)
        ids[i, sl] = rng.integers(7, vocab, n)
        mask[i, sl] = 1
    pos = np.clip(np.cumsum(mask, axis=1) - 1, 0, None)
    return ids, mask, pos


def run_onnx(sess, meta, ids, mask, pos, past=None):
    b = ids.shape[0]
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": pos}
    for i in range(meta["num_layers"]):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = past[f"present.{i}.{kv}"] if past else \
                np.zeros((b, meta["num_kv_heads"], 0, meta["head_dim"]), dtype=np.float32)
    names = ["logits"] + [f"present.{i}.{kv}" for i in range(meta["num_layers"]) for kv in ("key", "value")]
    return dict(zip(names, sess.run(None, feeds)))


@pytest.mark.parametrize("side", ["left", "right"])
def test_onnx_matches_torch_with_and_without_cache(exported, side):
    out, sess, model = exported
    meta = json.loads((out / "meta.json").read_text())
    assert meta["policy_version"] == 3 and meta["num_layers"] == 2 and meta["eos_token_ids"] == [0, 2]
    ids, mask, pos = batch([9, 6, 4], side, meta["vocab_size"])
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                    position_ids=torch.from_numpy(pos)).logits.numpy()
    real = mask.astype(bool)
    full = run_onnx(sess, meta, ids, mask, pos)  # P = 0: prefill of everything
    assert full["logits"].shape == (3, 1, meta["vocab_size"])
    last = real[:, -1]  # rows whose last column is a real token (all of them under left padding)
    np.testing.assert_allclose(full["logits"][last, 0], ref[last, -1], atol=1e-4, rtol=0)
    assert full["present.0.key"].shape == (3, meta["num_kv_heads"], ids.shape[1], meta["head_dim"])
    # Prefill 5, then one chunk of 2, then single-token steps: each call's last position must match again.
    split = [0, 5, 7] + list(range(8, ids.shape[1] + 1))
    past, checked = None, 0
    for a, b in zip(split, split[1:]):
        step = run_onnx(sess, meta, ids[:, a:b], mask[:, :b], pos[:, a:b], past)
        rows = real[:, b - 1]
        assert np.isfinite(step["logits"][rows]).all()
        np.testing.assert_allclose(step["logits"][rows, 0], ref[rows, b - 1], atol=1e-4, rtol=0)
        checked += int(rows.sum())
        past = step
    assert checked >= real[:, 7:].sum()  # every real position from 7 on was a call's last position
