"""torchrun FSDP (FSDP2 fully_shard, gloo on CPU), 2 real processes: SFT and an RL step give the same loss and
weights as 1 process on the same global batch; the saved model (gathered on rank 0) is complete; an FSDP run
resumes from its checkpoint to the same weights."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nodeproc import TORCHRUN, exit_ok, result_of, run_node, torchrun_result
from test_train_rl import make_rollouts

LORA = dict(r=4, alpha=8)


def torchrun(command: str, request: dict, tmp_path, name: str) -> dict:
    return torchrun_result(command, request, tmp_path / f"{name}.json")


def close(a_dir, b_dir, atol=1e-4):
    a, b = load_file(str(a_dir / "model.safetensors")), load_file(str(b_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-3, msg=k)


def test_fsdp_sft_matches_one_process_and_resumes(tiny_model, tiny_shards, tmp_path):
    base = dict(model_dir=str(tiny_model), shards=[str(tiny_shards)], batch_size=4, lr=3e-3, warmup_steps=2,
                max_steps=8, device="cpu", seed=7)
    rc, events, err = run_node("train-sft", dict(base, out_dir=str(tmp_path / "one"), micro_batch_size=2))
    assert rc == 0, err
    single = result_of(events)

    req = dict(base, micro_batch_size=1, parallel="fsdp", checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=4)
    two = torchrun("train-sft", dict(req, out_dir=str(tmp_path / "two")), tmp_path, "a")
    assert two["world"] == 2 and two["resumed_from"] == 0
    np.testing.assert_allclose(two["losses"], single["losses"], rtol=1e-4, atol=1e-5)
    close(tmp_path / "one", tmp_path / "two")
    assert (tmp_path / "two" / "tokenizer.json").exists()

    # the step-4 checkpoint (gathered full state) is still there: a rerun resumes from it to the same weights
    again = torchrun("train-sft", dict(req, out_dir=str(tmp_path / "again")), tmp_path, "b")
    assert again["resumed_from"] == 4 and again["losses"] == two["losses"][4:]
    close(tmp_path / "two", tmp_path / "again", atol=0)


@pytest.mark.parametrize("parallel,lora", [("fsdp", None), ("fsdp", LORA), ("ddp", LORA)],
                         ids=["fsdp-full", "fsdp-lora", "ddp-lora"])
def test_torchrun_rl_step_matches_one_process(tiny_model, tmp_path, parallel, lora):
    rows = make_rollouts(tiny_model, groups=2, n=3, noise=0.2)  # 6 rows: 3 per rank
    req = dict(model_dir=str(tiny_model), lr=1e-3, micro_batch_size=2, device="cpu", step=1, samples=rows,
               mini_batches=2, lora=lora)
    rc, events, err = run_node("train-rl", dict(req, save_dir=str(tmp_path / "one")))
    assert rc == 0, err
    single = result_of(events)
    # micro-batches of 1: rank 0 gets 2 rows per mini-batch, rank 1 gets 1 and pads with a weight-0 micro-batch
    two = torchrun("train-rl", dict(req, save_dir=str(tmp_path / "two"), parallel=parallel, micro_batch_size=1,
                                    export_dir=str(tmp_path / "onnx")), tmp_path, "rl")
    for k in ("loss", "grad_norm", "tokens", "entropy", "ratio", "clip_frac"):
        assert two["metrics"][k] == pytest.approx(single["metrics"][k], rel=1e-4, abs=1e-6), k
    close(tmp_path / "one", tmp_path / "two")
    assert json.loads((tmp_path / "onnx" / "meta.json").read_text())["policy_version"] == 1
    if lora:
        assert (tmp_path / "two" / "adapter" / "adapter_model.safetensors").exists()


def test_rl_session_under_torchrun_matches_one_process(tiny_model, tmp_path):
    """The persistent trainer (what train-rl's RlSession drives) on 2 FSDP ranks: rank 0 reads stdin and
    broadcasts each request; two steps + a state request give the single-process session's weights."""
    import subprocess

    from nodeproc import ROOT, node_env

    def session(prefix: list[str]) -> subprocess.Popen:
        return subprocess.Popen(prefix + ["agentforge_node.rl_session"], cwd=ROOT, env=node_env(),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def send(proc: subprocess.Popen, req: dict) -> dict:
        proc.stdin.write(json.dumps(req) + "\n")
        proc.stdin.flush()
        for line in proc.stdout:
            ev = json.loads(line)
            assert ev["event"] != "error", ev
            if ev["event"] == "result":
                return ev["value"]
        raise AssertionError(proc.stderr.read()[-4000:])

    rows = make_rollouts(tiny_model, groups=4, n=3, seed=3, noise=0.2)
    procs = {"one": session([sys.executable, "-m"]), "two": session(TORCHRUN)}
    results = {}
    for name, proc in procs.items():
        base = dict(model_dir=str(tiny_model), lr=1e-3, micro_batch_size=2, device="cpu", lora=LORA,
                    checkpoint_dir=str(tmp_path / f"ckpt-{name}"), parallel="fsdp")
        assert send(proc, dict(base, op="state"))["step"] == 0
        send(proc, dict(base, step=1, samples=rows[:6]))
        results[name] = send(proc, dict(base, step=2, samples=rows[6:], save_dir=str(tmp_path / name)))
        proc.stdin.close()
        rc, err = proc.wait(120), proc.stderr.read()
        assert exit_ok(rc, err, finished=True), err[-4000:]
    assert results["two"]["step"] == 2 and results["two"]["checkpoint"].endswith("step-000002.pt")
    assert results["two"]["metrics"]["loss"] == pytest.approx(results["one"]["metrics"]["loss"], rel=1e-4, abs=1e-6)
    close(tmp_path / "one", tmp_path / "two")
