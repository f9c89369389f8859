"""GRPO / DAPO / TIS loss against values worked out by hand (agentforge_node/grpo.py)."""
from __future__ import annotations

import math

import pytest
import torch

from agentforge_node.grpo import LossConfig, LossInputs, clipped_pg_loss


# Hand example, B = 2 sequences, T = 3 positions; position 0 is the prompt (masked), row 1 also masks position 2.
#   ratios r = pi_new / pi_old:     (0,1) 1.5   (0,2) 0.5   (1,1) 0.9
#   advantages: row 0 +1, row 1 -2; eps_low 0.2, eps_high 0.28 (clip range [0.8, 1.28])
#   (0,1): min(1.5 * 1, 1.28 * 1) = 1.28 -> pg -1.28, clipped (high side, gradient 0)
#   (0,2): min(0.5 * 1, 0.8 * 1)  = 0.5  -> pg -0.5   (positive advantage is not clipped from below)
#   (1,1): min(0.9 * -2, 0.9 * -2) = -1.8 -> pg +1.8
#   no TIS: loss = (-1.28 - 0.5 + 1.8) / 3 = 0.006667; clip_frac 1/3
#   TIS weights w = pi_old / pi_behaviour = 2.5, 0.5, 1.0, cap C = 2 -> 2, 0.5, 1
#   loss = (2 * -1.28 + 0.5 * -0.5 + 1 * 1.8) / 3 = -1.01 / 3 = -0.336667
#   d loss / d logprob_new: (0,1) 0 (clipped); (0,2) -w A r / 3 = -0.5 * 0.5 / 3 = -0.083333;
#                           (1,1) -1 * -2 * 0.9 / 3 = 0.6
#   mismatch KL (k1) = mean(beh - old) = -(ln 2.5 + ln 0.5 + 0) / 3 = -0.074381
D = torch.float64
MASK = torch.tensor([[0, 1, 1], [0, 1, 0]])
OLD = torch.tensor([[0.0, -1.0, -2.0], [0.0, -0.5, 0.0]], dtype=D)
DELTA = torch.tensor([[0.0, math.log(1.5), math.log(0.5)], [0.0, math.log(0.9), 0.0]], dtype=D)
W = torch.tensor([[1.0, 2.5, 0.5], [1.0, 1.0, 1.0]], dtype=D)
ADV = torch.tensor([1.0, -2.0], dtype=D)


def hand_inputs(**kw) -> LossInputs:
    new = (OLD + DELTA).double().requires_grad_(True)
    return LossInputs(new, OLD.double(), (OLD - W.log()).double(), ADV.double(), MASK, **kw)


def test_clipped_loss_without_tis_by_hand():
    out = clipped_pg_loss(hand_inputs(), LossConfig(eps_low=0.2, eps_high=0.28, tis_cap=None, beta_kl=0.0))
    assert out.loss.item() == pytest.approx(0.02 / 3, abs=1e-9)
    assert out.tokens == 3
    assert out.sums["clip_frac"] / 3 == pytest.approx(1 / 3)
    assert out.sums["clip_frac_high"] == 1 and out.sums["clip_frac_low"] == 0


def test_clipped_loss_with_tis_and_gradients_by_hand():
    x = hand_inputs()
    out = clipped_pg_loss(x, LossConfig(eps_low=0.2, eps_high=0.28, tis_cap=2.0, beta_kl=0.0))
    assert out.loss.item() == pytest.approx(-1.01 / 3, abs=1e-9)
    out.loss.backward()
    expect = torch.tensor([[0.0, 0.0, -0.5 * 0.5 / 3], [0.0, 0.6, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(x.logprobs_new.grad, expect, atol=1e-9, rtol=0)
    assert out.sums["tis_trunc_frac"] / 3 == pytest.approx(1 / 3)
    assert out.sums["tis_mean"] / 3 == pytest.approx(3.5 / 3)
    assert out.sums["mismatch_kl"] / 3 == pytest.approx(-(math.log(2.5) + math.log(0.5)) / 3)
    # k3 of KL(behaviour || old): w - 1 - ln w per token
    k3 = sum(w - 1 - math.log(w) for w in (2.5, 0.5, 1.0)) / 3
    assert out.sums["mismatch_k3"] / 3 == pytest.approx(k3)


def test_tis_cap_only_truncates_above_c():
    big = clipped_pg_loss(hand_inputs(), LossConfig(0.2, 0.28, tis_cap=100.0, beta_kl=0.0))
    # untruncated: (2.5 * -1.28 + 0.5 * -0.5 + 1.8) / 3
    assert big.loss.item() == pytest.approx((2.5 * -1.28 - 0.25 + 1.8) / 3, abs=1e-9)
    assert big.sums["tis_trunc_frac"] == 0


def test_kl_k3_term_by_hand():
    # reference logprob = new + ln 2 at every trained token: k3 = e^{ln 2} - ln 2 - 1 = 0.306853 per token
    ref = (OLD + DELTA + math.log(2.0)).double()
    cfg = LossConfig(0.2, 0.28, tis_cap=None, beta_kl=0.1)
    out = clipped_pg_loss(hand_inputs(ref_logprobs=ref), cfg)
    k3 = 2.0 - math.log(2.0) - 1.0
    assert out.sums["kl"] / 3 == pytest.approx(k3)
    assert out.loss.item() == pytest.approx(0.02 / 3 + 0.1 * k3, abs=1e-9)


def test_masked_tokens_get_exactly_zero_gradient_even_with_garbage():
    x = hand_inputs()
    garbage_new = torch.where(MASK.bool(), x.logprobs_new.detach(), torch.tensor(1e4, dtype=torch.float64))
    garbage_new.requires_grad_(True)
    g = LossInputs(garbage_new, torch.where(MASK.bool(), OLD.double(), torch.tensor(-math.inf, dtype=torch.float64)),
                   torch.where(MASK.bool(), x.behaviour_logprobs, torch.tensor(math.nan, dtype=torch.float64)),
                   ADV.double(), MASK, entropy=torch.where(MASK.bool(), 1.0, math.nan).double())
    cfg = LossConfig(0.2, 0.28, tis_cap=2.0, beta_kl=0.0)
    out = clipped_pg_loss(g, cfg)
    out.loss.backward()
    assert math.isfinite(out.loss.item()) and out.loss.item() == pytest.approx(-1.01 / 3, abs=1e-9)
    masked = ~MASK.bool()
    assert (garbage_new.grad[masked] == 0).all() and torch.isfinite(garbage_new.grad).all()
    assert math.isfinite(out.sums["entropy"])


def test_normaliser_makes_micro_batches_add_up():
    cfg = LossConfig(0.2, 0.28, tis_cap=2.0, beta_kl=0.0)
    whole = clipped_pg_loss(hand_inputs(), cfg).loss.item()
    x = hand_inputs()
    parts = [LossInputs(x.logprobs_new[i:i + 1], x.logprobs_old[i:i + 1], x.behaviour_logprobs[i:i + 1],
                        x.advantages[i:i + 1], x.loss_mask[i:i + 1]) for i in range(2)]
    assert sum(clipped_pg_loss(p, cfg, normaliser=3).loss.item() for p in parts) == pytest.approx(whole, abs=1e-12)
