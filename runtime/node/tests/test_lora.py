"""LoRA (peft) in SFT and RL: loss falls, only the adapter trains, the saved weights are exactly base + B·A·alpha/r
(plus the adapter in peft's format), RL exports the merged policy, and both trainers resume bit-exactly."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from agentforge_node.lora import merged_parameters
from agentforge_node.modeling import load_model
from agentforge_node.requests.train_rl import TrainRlRequest
from agentforge_node.rl_trainer import RlTrainer
from nodeproc import result_of, run_node, torchrun_result
from test_sft import sft
from test_train_rl import make_rollouts, run_onnx

LORA = dict(r=4, alpha=8, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"])
TARGETS = tuple(LORA["target_modules"])


def merged_from_files(base: dict[str, torch.Tensor], adapter_dir) -> dict[str, torch.Tensor]:
    """base + (alpha / r)·B·A per adapted Linear, computed from the adapter files alone (not through peft)."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    ad = load_file(str(adapter_dir / "adapter_model.safetensors"))
    out = dict(base)
    for key, a in ad.items():
        if ".lora_A." not in key:
            continue
        b = ad[key.replace(".lora_A.", ".lora_B.")]
        name = key.removeprefix("base_model.model.").replace(".lora_A.weight", ".weight")
        out[name] = base[name] + scale * (b @ a)
    return out



def assert_same_weights(x, y):
    """The merged weights and the adapter of two output dirs, tensor for tensor."""
    for name in ("model.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(x / name)), load_file(str(y / name))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after resume"

def test_sft_lora_trains_only_the_adapter_and_saves_merged(tiny_model, tiny_shards, tmp_path):
    result, rec = sft(tiny_model, tiny_shards, tmp_path / "out", max_steps=25, lr=1e-2, lora=LORA)
    losses = result["losses"]
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.2, losses  # a random tiny model: slow, but steady
    base = load_file(str(tiny_model / "model.safetensors"))
    merged = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert merged.keys() == base.keys()  # plain weights: export-onnx, merge and eval read them as they are
    adapter = tmp_path / "out" / "adapter"
    assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 4
    expect = merged_from_files(base, adapter)
    changed = 0
    for k in base:
        torch.testing.assert_close(merged[k], expect[k], atol=1e-6, rtol=1e-5)
        if k.endswith(tuple(f"{t}.weight" for t in TARGETS)):
            changed += not torch.equal(merged[k], base[k])
        else:
            assert torch.equal(merged[k], base[k]), f"{k} is not adapted yet changed: the base must stay frozen"
    assert changed == 2 * 4, "every adapted Linear of both layers moved"
    assert any("LoRA" in e.get("message", "") for e in rec.events if e["event"] == "log")


def test_bad_target_module_names_the_model_and_the_choices(tiny_model, tiny_shards, tmp_path):
    with pytest.raises(ValueError, match=r"lora.target_modules \['qkv'\] match no Linear layer of the model in .*"
                                         r"named \[.*'q_proj'"):
        sft(tiny_model, tiny_shards, tmp_path / "out", lora=dict(target_modules=["qkv"]))
    assert not (tmp_path / "out").exists()


def rl_request(model_dir, **kw) -> TrainRlRequest:
    base = dict(model_dir=str(model_dir), lr=1e-2, micro_batch_size=4, device="cpu", lora=LORA)
    base.update(kw)
    return TrainRlRequest.model_validate(base)


def test_rl_step_with_lora_exports_the_merged_policy(tiny_model, tmp_path):
    rows = make_rollouts(tiny_model, groups=2)
    t = RlTrainer(rl_request(tiny_model), __import__("conftest").Recorder())
    frozen = {n: p.detach().clone() for n, p in t.model.named_parameters() if not p.requires_grad}
    assert all("lora_" in n for n, p in t.model.named_parameters() if p.requires_grad)
    out = tmp_path / "onnx"
    assert t.handle(rl_request(tiny_model, op="state", export_dir=str(out)))["export"]["mode"] == "full"
    # beta_kl > 0: the reference is the base (adapters off); B starts at 0, so step 1 sees KL 0
    m = t.handle(rl_request(tiny_model, step=1, samples=rows, export_dir=str(out), beta_kl=0.1))
    assert m["export"]["mode"] == "weights" and m["metrics"]["kl"] == pytest.approx(0, abs=1e-7)
    m2 = t.handle(rl_request(tiny_model, step=2, samples=rows, export_dir=str(out), beta_kl=0.1,
                             save_dir=str(tmp_path / "saved")))
    assert m2["metrics"]["kl"] > 0
    for n, p in t.model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f"{n} is frozen under LoRA but changed"
    # the ONNX refresh holds the merged weights: its logits equal the adapted torch model's
    ids = np.array([rows[0]["input_ids"][:9], rows[5]["input_ids"][:9]], dtype=np.int64)
    with torch.no_grad():
        ref = t.model.eval()(input_ids=torch.from_numpy(ids)).logits.numpy()
    t.model.train()
    np.testing.assert_allclose(run_onnx(out, ids), ref[:, -1:], atol=1e-4)
    saved = load_model(tmp_path / "saved").eval()
    with torch.no_grad():
        np.testing.assert_allclose(saved(input_ids=torch.from_numpy(ids)).logits.numpy(), ref, atol=1e-5)
    merged = merged_parameters(t.model)
    for n, p in saved.named_parameters():
        torch.testing.assert_close(p, merged[n], atol=0, rtol=0)
    assert (tmp_path / "saved" / "adapter" / "adapter_model.safetensors").exists()


def test_rl_lora_resume_is_exact(tiny_model, tmp_path):
    from conftest import Recorder

    rows = make_rollouts(tiny_model, groups=4, n=3, seed=2, noise=0.2)
    kw = dict(checkpoint_every=2, mini_batches=2, micro_batch_size=3)

    def step(t, v, ckpt, **extra):
        return t.handle(rl_request(tiny_model, step=v, samples=rows[(v - 1) * 3:v * 3], checkpoint_dir=str(ckpt),
                                   **kw, **extra))

    a = RlTrainer(rl_request(tiny_model, checkpoint_dir=str(tmp_path / "ca"), **kw), Recorder())
    for v in range(1, 5):
        step(a, v, tmp_path / "ca", save_dir=str(tmp_path / "a") if v == 4 else None)
    b = RlTrainer(rl_request(tiny_model, checkpoint_dir=str(tmp_path / "cb"), **kw), Recorder())
    for v in range(1, 4):
        step(b, v, tmp_path / "cb")
    ckpt = torch.load(tmp_path / "cb" / "step-000002.pt", weights_only=False)
    assert ckpt["partial"] and all("lora_" in k for k in ckpt["model"]), "only the adapter is checkpointed"
    del b  # step 3 was not checkpointed: lost, redone after the resume
    c = RlTrainer(rl_request(tiny_model, checkpoint_dir=str(tmp_path / "cb"), **kw), Recorder())
    assert c.step == 2
    step(c, 3, tmp_path / "cb")
    step(c, 4, tmp_path / "cb", save_dir=str(tmp_path / "c"))
    assert_same_weights(tmp_path / "a", tmp_path / "c")


def test_sft_lora_killed_run_resumes_to_identical_weights(tiny_model, tiny_shards, tmp_path):
    from test_resume_ddp import straight_and_resumed

    straight, resumed = straight_and_resumed(tiny_model, tiny_shards, tmp_path, lora=LORA, lr=1e-2)
    assert resumed["losses"] == straight["losses"][8:]
    assert_same_weights(tmp_path / "straight", tmp_path / "resumed")


def test_lora_sft_fsdp_with_checkpointing_over_torchrun_matches_one_process(tiny_model, tiny_shards, tmp_path):
    """LoRA + FSDP + gradient checkpointing on 2 processes vs plain LoRA in 1: same losses, same merged weights."""
    base = dict(model_dir=str(tiny_model), shards=[str(tiny_shards)], batch_size=4, lr=1e-2, warmup_steps=2,
                max_steps=6, device="cpu", seed=7, lora=LORA)
    rc, events, err = run_node("train-sft", dict(base, out_dir=str(tmp_path / "one"), micro_batch_size=2))
    assert rc == 0, err
    single = result_of(events)
    two = dict(base, micro_batch_size=1, parallel="fsdp", gradient_checkpointing=True,
               checkpoint_dir=str(tmp_path / "ckpt"), checkpoint_every=4)
    losses = torchrun_result("train-sft", dict(two, out_dir=str(tmp_path / "two")), tmp_path / "req.json")["losses"]
    np.testing.assert_allclose(losses, single["losses"], rtol=1e-4, atol=1e-5)
    same_weights(tmp_path / "one", tmp_path / "two", atol=1e-4)
    # the adapter-only checkpoint of step 4, loaded into the shards: a rerun resumes to the same weights
    again = torchrun_result("train-sft", dict(two, out_dir=str(tmp_path / "again")), tmp_path / "req2.json")
    assert again["resumed_from"] == 4 and again["losses"] == losses[4:]
    same_weights(tmp_path / "two", tmp_path / "again", atol=0)


def same_weights(a_dir, b_dir, atol: float) -> None:
    for name in ("model.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(str(a_dir / name)), load_file(str(b_dir / name))
        assert a.keys() == b.keys(), name
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=atol, rtol=1e-3 if atol else 0, msg=f"{name}:{k}")


def test_bf16_autocast_reaches_the_adapter_and_weights_stay_fp32(tiny_model, tiny_shards):
    """The CUDA path (Placement with bf16 autocast) run as CPU autocast: the adapted Linears compute in bf16, the
    adapter's weights and grads stay fp32 (the optimizer and checkpoints are fp32 on every device)."""
    from agentforge_node.device import Placement
    from agentforge_node.distributed import DistContext
    from agentforge_node.requests.train_sft import TrainSftRequest
    from agentforge_node.sft import TokenLoss, token_losses
    from agentforge_node.shards import load_rows, micro_batches
    from agentforge_node.trainable import Trainable

    req = TrainSftRequest.model_validate(dict(model_dir=str(tiny_model), shards=[], out_dir="/unused", lora=LORA,
                                              gradient_checkpointing=True))
    place = Placement(torch.device("cpu"), torch.bfloat16)
    t = Trainable(req, place, DistContext(0, 0, 1))
    seen = []
    q = t.model.model.layers[0].self_attn.q_proj
    q.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    b = micro_batches(load_rows([str(tiny_shards)], 300, 256)[:4], 1, pad_id=0)[0]
    with place.autocast():
        loss = token_losses(TokenLoss(t.model), b).mean()
    loss.backward()
    assert seen and set(seen) == {torch.bfloat16}
    assert torch.isfinite(loss) and loss.dtype == torch.float32  # the LM head's logits are upcast for the loss
    for n, p in t.model.named_parameters():
        assert p.dtype == torch.float32, n
        if p.requires_grad:
            assert p.grad is not None and p.grad.dtype == torch.float32, n


def test_fused_lora_forward_matches_peft_in_values_and_gradients(tiny_model, tiny_shards):
    """lora.fuse's one-addmm forward against peft's own (B(A x)·scale + W x) on the same adapter: same loss and
    same adapter gradients to fp32 rounding; and a layer that peft must handle itself (dropout) keeps peft's path."""
    from peft.tuners.lora.layer import Linear

    from agentforge_node.lora import attach
    from agentforge_node.requests.train_sft import TrainSftRequest
    from agentforge_node.sft import TokenLoss, token_losses
    from agentforge_node.shards import load_rows, micro_batches

    req = TrainSftRequest.model_validate(dict(model_dir=str(tiny_model), shards=[], out_dir="/unused", lora=LORA))
    model = load_model(str(tiny_model), torch.device("cpu"))
    peft_model = attach(model, req.lora, str(tiny_model))
    fused = [m for m in model.modules() if isinstance(m, Linear)]
    assert len(fused) == 4 * model.config.num_hidden_layers and all(type(m) is not Linear for m in fused)
    with torch.no_grad():  # B starts at zero: give the adapter a nonzero product to compare
        for m in fused:
            m.lora_B["default"].weight.normal_(0, 0.05)
    batch = micro_batches(load_rows([str(tiny_shards)], 300, 256)[:4], 2, pad_id=0)[0]

    def loss_and_grads():
        model.zero_grad()
        loss = token_losses(TokenLoss(model), batch).mean()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    fused_loss, fused_grads = loss_and_grads()
    for m in fused:
        m.__class__ = Linear  # peft's own forward
    peft_loss, peft_grads = loss_and_grads()
    assert torch.allclose(fused_loss, peft_loss, rtol=1e-6, atol=1e-6), (fused_loss, peft_loss)
    for n, g in peft_grads.items():
        assert torch.allclose(fused_grads[n], g, rtol=1e-4, atol=1e-7), n
    assert len(peft_grads) == 2 * len(fused) and peft_model is not None

    dropout = TrainSftRequest.model_validate(dict(model_dir=str(tiny_model), shards=[], out_dir="/unused",
                                                  lora=dict(LORA, dropout=0.5))).lora
    other = load_model(str(tiny_model), torch.device("cpu"))
    attach(other, dropout, str(tiny_model)).train()
    layer = other.model.layers[0].self_attn.q_proj
    calls = []
    layer.lora_A["default"].register_forward_hook(lambda m, i, o: calls.append(1))  # only peft's path calls the module
    layer(torch.randn(2, 3, layer.in_features))
    assert calls == [1]
