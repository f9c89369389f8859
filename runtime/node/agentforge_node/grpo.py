"""GRPO policy loss with DAPO's refinements and a truncated-importance-sampling correction; pure tensor functions.

Papers and where we follow or deviate:
- GRPO (Shao et al. 2024, DeepSeekMath, arXiv:2402.03300): PPO's clipped surrogate on the token ratio
  pi_new / pi_old with the sample's advantage shared by every token of it; optional KL to a frozen reference with the
  k3 estimator exp(ref - new) - (ref - new) - 1. The group-normalised advantages themselves, and which groups train
  at all (DAPO's dynamic sampling), are computed where the rewards are: runtime/rl/advantages.ts and groups.ts.
- DAPO (Yu et al. 2025, arXiv:2503.14476): clip-higher (separate eps_low / eps_high, 0.2 / 0.28 by default) and
  token-level loss aggregation (sum over every trained token of the batch / number of those tokens, instead of
  GRPO's mean per sequence then per batch).
  Deviation: DAPO has no KL term; we keep GRPO's optional one (beta_kl, default 0 - no reference forward).
- TIS (Yao et al. 2025, "Your efficient RL framework secretly brings you off-policy RL training"): the inference
  engine's sampling probabilities differ from the trainer's even at equal weights (kernels, precision, async
  staleness). The per-token policy-gradient term is weighted by w = min(pi_old / pi_behaviour, C), detached, where
  pi_old is the trainer's probability at the weights that generated the rollout. Deviation: we also report the
  mismatch KL (k1 and k3 estimators of KL(behaviour || trainer)) and the fraction of truncated weights.

Shapes: B sequences, T positions, V vocab. Every [B,T] tensor is aligned with input_ids: position t holds the log
probability of token t given tokens < t. Masked positions (loss_mask 0) may hold anything (even inf/NaN): they are
replaced by constants before any arithmetic, so their gradient is exactly zero.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossInputs:
    logprobs_new: torch.Tensor        # [B, T] trainer logprobs at the current weights (carries the gradient)
    logprobs_old: torch.Tensor        # [B, T] trainer logprobs at the weights that generated the rollout (no grad)
    behaviour_logprobs: torch.Tensor  # [B, T] the engine's logprobs of the same tokens
    advantages: torch.Tensor          # [B]
    loss_mask: torch.Tensor           # [B, T] 1 = trained token
    ref_logprobs: torch.Tensor | None = None  # [B, T] frozen reference, for the KL term
    entropy: torch.Tensor | None = None       # [B, T] token entropy of the current policy (metric only)


@dataclass
class LossConfig:
    eps_low: float
    eps_high: float
    tis_cap: float | None   # None: no TIS correction
    beta_kl: float


@dataclass
class LossOutputs:
    loss: torch.Tensor   # [] sum over trained tokens / normaliser (differentiable)
    sums: dict[str, float]  # token sums of each metric, divided by the global token count by the caller
    tokens: int


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """logits [..., V] -> entropy [...] of softmax(logits)."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


def clipped_pg_loss(x: LossInputs, cfg: LossConfig, normaliser: float | None = None) -> LossOutputs:
    """Token-level clipped policy-gradient loss (+ beta * k3 KL), TIS-weighted; averaged over `normaliser` tokens.

    `normaliser` is the number of trained tokens in the whole batch (all micro-batches), so micro-batched gradient
    accumulation gives the same update as one big batch; None uses this call's own token count.
    """
    mask = x.loss_mask.bool()                                           # [B, T]
    zero = torch.zeros((), dtype=x.logprobs_new.dtype, device=x.logprobs_new.device)
    new = torch.where(mask, x.logprobs_new, zero)                       # [B, T] masked -> 0, grad there is 0
    old = torch.where(mask, x.logprobs_old.detach(), zero)
    beh = torch.where(mask, x.behaviour_logprobs.detach().to(new.dtype), zero)
    adv = x.advantages.detach().to(new.dtype).unsqueeze(1)              # [B, 1]

    ratio = torch.exp(new - old)                                        # [B, T]; 1 at masked positions
    clipped = torch.clamp(ratio, 1.0 - cfg.eps_low, 1.0 + cfg.eps_high)
    pg = -torch.minimum(ratio * adv, clipped * adv)                     # [B, T]
    log_w = old - beh                                                   # log pi_old / pi_behaviour
    w = torch.exp(log_w)
    if cfg.tis_cap is not None:
        w_used = torch.clamp(w, max=cfg.tis_cap)
        pg = pg * w_used
    per_tok = pg
    kl = None
    if x.ref_logprobs is not None:
        d = torch.where(mask, x.ref_logprobs.detach().to(new.dtype), zero) - new  # ref - new
        kl = torch.exp(d) - d - 1.0                                     # [B, T] k3, >= 0
        per_tok = per_tok + cfg.beta_kl * kl
    maskf = mask.to(new.dtype)
    tokens = int(mask.sum().item())
    denom = float(normaliser if normaliser is not None else max(1, tokens))
    loss = (per_tok * maskf).sum() / denom

    with torch.no_grad():
        m = lambda t: float((t * maskf).sum().item())  # noqa: E731 - token sum of a [B, T] metric
        clip_low = ((adv < 0) & (ratio < 1.0 - cfg.eps_low)).to(new.dtype)
        clip_high = ((adv > 0) & (ratio > 1.0 + cfg.eps_high)).to(new.dtype)
        sums = {"pg_loss": m(pg), "clip_frac": m(clip_low + clip_high), "clip_frac_low": m(clip_low),
                "clip_frac_high": m(clip_high), "ratio": m(ratio), "mismatch_kl": m(-log_w),
                "mismatch_k3": m(torch.exp(log_w) - log_w - 1.0), "tis_mean": m(w)}
        if cfg.tis_cap is not None:
            sums["tis_mean"] = m(w_used)
            sums["tis_trunc_frac"] = m((w > cfg.tis_cap).to(new.dtype))
        if kl is not None:
            sums["kl"] = m(kl)
        if x.entropy is not None:
            sums["entropy"] = m(torch.where(mask, x.entropy.detach().to(new.dtype), zero))
    return LossOutputs(loss, sums, tokens)
