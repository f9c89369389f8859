"""Gradient checkpointing: the same loss and gradients as without (full and LoRA), the same RL step, and fewer
bytes kept for the backward pass (what bounds activation memory)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agentforge_node.device import pick_device
from agentforge_node.distributed import DistContext
from agentforge_node.requests.train_rl import TrainRlRequest
from agentforge_node.requests.train_sft import TrainSftRequest
from agentforge_node.rl_trainer import RlTrainer
from agentforge_node.sft import TokenLoss, token_losses
from agentforge_node.shards import load_rows, micro_batches
from agentforge_node.trainable import Trainable

from conftest import Recorder
from test_train_rl import make_rollouts

LORA = dict(r=4, alpha=8)


def trainable(tiny_model, **kw) -> Trainable:
    req = TrainSftRequest.model_validate(dict(model_dir=str(tiny_model), shards=[], out_dir="/unused", **kw))
    torch.manual_seed(0)  # LoRA's A is drawn at attach time
    return Trainable(req, pick_device("cpu"), DistContext(0, 0, 1))


def batch(tiny_model, tiny_shards, rows: int = 8):
    return micro_batches(load_rows([str(tiny_shards)], 300, 256)[:rows], 1, pad_id=0)[0]


def loss_and_grads(t: Trainable, b) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    loss = token_losses(TokenLoss(t.model), b).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in t.model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("lora", [None, LORA], ids=["full", "lora"])
def test_same_loss_and_grads(tiny_model, tiny_shards, lora):
    b = batch(tiny_model, tiny_shards)
    plain, ckpt = trainable(tiny_model, lora=lora), trainable(tiny_model, lora=lora, gradient_checkpointing=True)
    assert ckpt.model.is_activation_checkpointing and ckpt.model.training
    if lora is not None:  # B starts at 0, where A gets no gradient: move B so every adapter grad is non-trivial
        for t in (plain, ckpt):
            torch.manual_seed(1)
            for n, p in t.model.named_parameters():
                if "lora_B" in n:
                    p.data.normal_(0, 0.02)
    la, ga = loss_and_grads(plain, b)
    lb, gb = loss_and_grads(ckpt, b)
    torch.testing.assert_close(la, lb, atol=1e-6, rtol=1e-6)
    assert ga.keys() == gb.keys() and len(ga) > 0
    for n in ga:
        assert ga[n].abs().sum() > 0, n
        torch.testing.assert_close(ga[n], gb[n], atol=1e-6, rtol=1e-5)


def saved_bytes(t: Trainable, b) -> int:
    """Bytes of the distinct tensors autograd keeps for the backward pass during one forward."""
    seen: dict[int, int] = {}

    def pack(x: torch.Tensor):
        seen[x.untyped_storage().data_ptr()] = x.untyped_storage().nbytes()
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        loss = token_losses(TokenLoss(t.model), b).mean()
    loss.backward()
    return sum(seen.values())


def test_checkpointing_keeps_fewer_activations(tiny_model, tiny_shards):
    b = batch(tiny_model, tiny_shards, rows=16)
    full, ckpt = saved_bytes(trainable(tiny_model), b), saved_bytes(trainable(tiny_model, gradient_checkpointing=True), b)
    print(f"saved for backward: {full} bytes without, {ckpt} with gradient checkpointing")
    assert ckpt < 0.5 * full, (full, ckpt)


def test_rl_step_is_the_same(tiny_model):
    rows = make_rollouts(tiny_model, groups=2, noise=0.2)
    out = []
    for gc in (False, True):
        req = TrainRlRequest.model_validate(dict(model_dir=str(tiny_model), lr=1e-3, micro_batch_size=3, device="cpu",
                                                 gradient_checkpointing=gc, mini_batches=2))
        t = RlTrainer(req, Recorder())
        m = t.handle(TrainRlRequest.model_validate(dict(req.model_dump(), step=1, samples=rows)))["metrics"]
        out.append((m, {k: v.detach().clone() for k, v in t.model.state_dict().items()}))
    assert out[0][0]["loss"] == pytest.approx(out[1][0]["loss"], abs=1e-6)
    assert out[0][0]["grad_norm"] == pytest.approx(out[1][0]["grad_norm"], rel=1e-5)
    for k in out[0][1]:
        np.testing.assert_allclose(out[0][1][k].numpy(), out[1][1][k].numpy(), atol=1e-6)
