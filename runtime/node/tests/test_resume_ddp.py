"""Kill -9 mid-run + rerun == uninterrupted run; torchrun 2 x CPU (gloo) == 1 process."""
from __future__ import annotations

import numpy as np
import torch
from safetensors.torch import load_file

from nodeproc import result_of, run_node, torchrun_result


def request(tiny_model, tiny_shards, out, **kw) -> dict:
    base = dict(model_dir=str(tiny_model), shards=[str(tiny_shards)], out_dir=str(out), batch_size=4,
                micro_batch_size=2, lr=3e-3, warmup_steps=2, max_steps=14, device="cpu", seed=7)
    base.update(kw)
    return base


def weights(out) -> dict[str, torch.Tensor]:
    return load_file(str(out / "model.safetensors"))


def straight_and_resumed(tiny_model, tiny_shards, tmp_path, **kw) -> tuple[dict, dict]:
    """An uninterrupted run, and a run SIGKILLed right after its step-8 checkpoint then rerun; both results."""
    rc, events, err = run_node("train-sft", request(tiny_model, tiny_shards, tmp_path / "straight", **kw))
    assert rc == 0, err
    straight = result_of(events)

    ckpt = tmp_path / "ckpt"
    req = request(tiny_model, tiny_shards, tmp_path / "resumed", checkpoint_dir=str(ckpt), checkpoint_every=4, **kw)
    saved = lambda e: e["event"] == "log" and e["message"].startswith("checkpoint saved step 8")  # noqa: E731
    rc, events, _ = run_node("train-sft", req, kill_when=saved)
    assert rc != 0 and not any(e["event"] == "result" for e in events)
    assert not (tmp_path / "resumed").exists(), "a killed run must not leave an output model"

    rc, events, err = run_node("train-sft", req)
    assert rc == 0, err
    resumed = result_of(events)
    assert resumed["resumed_from"] == 8
    return straight, resumed


def test_killed_run_resumes_to_identical_weights(tiny_model, tiny_shards, tmp_path):
    straight, resumed = straight_and_resumed(tiny_model, tiny_shards, tmp_path)
    assert resumed["losses"] == straight["losses"][8:]
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"


def test_torchrun_two_cpu_processes_match_one(tiny_model, tiny_shards, tmp_path):
    one = request(tiny_model, tiny_shards, tmp_path / "one", max_steps=8)
    rc, events, err = run_node("train-sft", one)
    assert rc == 0, err
    single = result_of(events)

    two = request(tiny_model, tiny_shards, tmp_path / "two", max_steps=8, micro_batch_size=1)
    double = torchrun_result("train-sft", two, tmp_path / "req.json")
    assert double["world"] == 2
    np.testing.assert_allclose(double["losses"], single["losses"], rtol=1e-4, atol=1e-5)
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-3)
