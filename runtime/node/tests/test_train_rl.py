"""The RL trainer on a tiny Qwen3: a step changes the weights, behaves like its parts, exports ONNX that matches
torch, rejects bad rollouts with the file and row, and is invariant to micro-batching."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from pydantic import ValidationError

from agentforge_node.modeling import load_model
from agentforge_node.requests.train_rl import TrainRlRequest
from agentforge_node.rl_trainer import RlTrainer

from conftest import Recorder

VOCAB = 300


def make_rollouts(model_dir, groups: int = 3, n: int = 4, seed: int = 0, noise: float = 0.0) -> list[dict]:
    """Prompts of 4 tokens + 5..8 sampled-looking tokens; behaviour logprobs from the model itself (+ noise);
    advantages are GRPO's group-normalised integer rewards (what runtime/rl/advantages.ts would send)."""
    rng = np.random.default_rng(seed)
    model = load_model(model_dir).eval()
    rows = []
    for g in range(groups):
        prompt = rng.integers(7, VOCAB, 4).tolist()
        for i in range(n):
            comp = rng.integers(7, VOCAB, int(rng.integers(5, 9))).tolist()
            ids = prompt + comp
            mask = [0] * 4 + [1] * len(comp)
            rows.append(dict(input_ids=ids, loss_mask=mask, advantage=float(rng.integers(0, 3)),
                             behaviour_logprobs=[0.0] * len(ids)))
        rewards = np.array([r["advantage"] for r in rows[-n:]])
        std = rewards.std(ddof=1)
        for r, a in zip(rows[-n:], (rewards - rewards.mean()) / (std + 1e-6) if std > 0 else 0 * rewards):
            r["advantage"] = float(a)
    batch = RlTrainer.collate(_Cpu(), [_as_rollout(r) for r in rows])
    with torch.no_grad():
        lp, _ = RlTrainer.token_logprobs(model, batch, 1.0)
    for j, r in enumerate(rows):
        beh = lp[j, :len(r["input_ids"])].double().numpy()
        beh = np.where(np.array(r["loss_mask"]) == 1, np.minimum(beh + rng.normal(0, noise, len(beh)), 0), 0)
        r["behaviour_logprobs"] = beh.tolist()
    return rows


class _Cpu:
    class place:
        device = torch.device("cpu")


def _as_rollout(r):
    from agentforge_node.rl_trainer import Rollout

    return Rollout(np.array(r["input_ids"]), np.array(r["loss_mask"], dtype=bool),
                   np.array(r["behaviour_logprobs"]), r["advantage"])


def request(model_dir, **kw) -> TrainRlRequest:
    base = dict(model_dir=str(model_dir), lr=1e-3, micro_batch_size=4, device="cpu")
    base.update(kw)
    return TrainRlRequest.model_validate(base)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_step_changes_parameters_and_reports_metrics(tiny_model, tmp_path):
    rows = make_rollouts(tiny_model)
    trainer = RlTrainer(request(tiny_model), Recorder())
    before = weights(trainer.model)
    res = trainer.handle(request(tiny_model, step=1, samples=rows))
    after = weights(trainer.model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"
    m = res["metrics"]
    assert res["step"] == 1 and not res["skipped"]
    assert m["tokens"] == sum(sum(r["loss_mask"]) for r in rows) and m["samples"] == 12
    # behaviour logprobs came from the same weights: no mismatch, TIS weights 1, ratio 1, nothing clipped
    assert abs(m["mismatch_kl"]) < 1e-5 and m["tis_mean"] == pytest.approx(1.0, abs=1e-5)
    assert m["clip_frac"] == 0 and m["ratio"] == pytest.approx(1.0, abs=1e-6)
    assert 0 < m["entropy"] <= np.log(VOCAB) + 1e-4 and m["grad_norm"] > 0
    for name in ("loss", "clip_frac", "entropy", "mismatch_kl", "tis_mean", "grad_norm", "adv_abs_mean", "train_s"):
        assert name in m


def test_micro_batching_does_not_change_the_update(tiny_model):
    rows = make_rollouts(tiny_model, noise=0.3)
    out = []
    for mb in (12, 3):
        t = RlTrainer(request(tiny_model, micro_batch_size=mb, tis_cap=1.5), Recorder())
        res = t.handle(request(tiny_model, step=1, samples=rows, micro_batch_size=mb, tis_cap=1.5))
        out.append((weights(t.model), res["metrics"]))
    for k in out[0][0]:
        torch.testing.assert_close(out[0][0][k], out[1][0][k], atol=2e-5, rtol=1e-4)  # Adam step ~ lr = 1e-3
    # the accumulated gradient itself (Adam's first step hides a uniform scale, not a wrong per-chunk normaliser)
    assert out[0][1]["grad_norm"] == pytest.approx(out[1][1]["grad_norm"], rel=1e-5)
    assert out[0][1]["loss"] == pytest.approx(out[1][1]["loss"], abs=1e-6)
    assert out[0][1]["tis_trunc_frac"] > 0 and out[0][1]["mismatch_k3"] > 0


def test_kl_reference_and_mini_batches(tiny_model):
    rows = make_rollouts(tiny_model, groups=3)
    t = RlTrainer(request(tiny_model), Recorder())
    m1 = t.handle(request(tiny_model, step=1, samples=rows))["metrics"]
    assert m1["samples"] == 12
    # step 2: two mini-batches -> the second one sees moved weights: ratios != 1; KL to the reference > 0
    m2 = t.handle(request(tiny_model, step=2, samples=rows, mini_batches=2, beta_kl=0.1, eps_high=0.28))["metrics"]
    assert m2["kl"] > 0 and abs(m2["ratio"] - 1) > 1e-6


def test_skip_and_gap(tiny_model):
    rows = make_rollouts(tiny_model, groups=1)
    t = RlTrainer(request(tiny_model), Recorder())
    t.handle(request(tiny_model, step=1, samples=rows))
    w = weights(t.model)
    res = t.handle(request(tiny_model, step=1, samples=rows))
    assert res["skipped"] and res["step"] == 1 and all(torch.equal(w[k], v) for k, v in weights(t.model).items())
    with pytest.raises(ValueError, match="step gap: the trainer is at step 1.*step 3"):
        t.handle(request(tiny_model, step=3, samples=rows))


def test_bad_samples_name_index_and_field(tiny_model):
    rows = make_rollouts(tiny_model, groups=1)
    rows[2]["loss_mask"] = rows[2]["loss_mask"][:-1]
    t = RlTrainer(request(tiny_model), Recorder())
    with pytest.raises(ValueError, match=r"samples\[2\]: input_ids has \d+ tokens but loss_mask has"):
        t.handle(request(tiny_model, step=1, samples=rows))
    with pytest.raises(ValidationError, match=r"samples\.1\.advantage\s+Field required"):
        request(tiny_model, step=1, samples=[rows[0], {k: v for k, v in rows[1].items() if k != "advantage"}])


def run_onnx(out_dir, ids: np.ndarray) -> np.ndarray:
    meta = json.loads((out_dir / "meta.json").read_text())
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids),
             "position_ids": np.tile(np.arange(ids.shape[1]), (ids.shape[0], 1))}
    for i in range(meta["num_layers"]):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = np.zeros((ids.shape[0], meta["num_kv_heads"], 0, meta["head_dim"]),
                                                          dtype=np.float32)
    return ReferenceEvaluator(str(out_dir / "model.onnx")).run(None, feeds)[0]


def test_export_full_then_weights_only_matches_torch(tiny_model, tmp_path):
    rows = make_rollouts(tiny_model, groups=2)
    out = tmp_path / "onnx"
    t = RlTrainer(request(tiny_model), Recorder())
    r0 = t.handle(request(tiny_model, op="state", export_dir=str(out)))
    assert r0["export"]["mode"] == "full" and r0["step"] == 0
    r1 = t.handle(request(tiny_model, step=1, samples=rows, export_dir=str(out)))
    assert r1["export"]["mode"] == "weights"
    assert json.loads((out / "meta.json").read_text())["policy_version"] == 1
    ids = np.array([rows[0]["input_ids"][:9], rows[5]["input_ids"][:9]], dtype=np.int64)
    with torch.no_grad():
        ref = t.model.eval()(input_ids=torch.from_numpy(ids)).logits.numpy()
    t.model.train()
    np.testing.assert_allclose(run_onnx(out, ids), ref[:, -1:], atol=1e-4)  # the graph returns the last position
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("model")) == ["model.onnx", "model.onnx.data"]
