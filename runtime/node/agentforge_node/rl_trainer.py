"""The RL trainer behind `train-rl` and the rl_session: one GRPO optimisation step per request.

State is (weights, AdamW moments, step). `step` is the policy version: request `step = v` turns version v - 1 into
v. A request for a step the trainer already has is answered `skipped` (a replay after a resume never counts twice);
a gap is an error. Checkpoints every `checkpoint_every` steps reuse H2's atomic checkpoint files, so a killed run
resumes at the last checkpoint with identical weights, and replaying the same rollout rows reproduces the steps
after it exactly (no shuffling, no dropout: the step is a deterministic function of weights and rows).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import distributed as dist_util
from .device import pick_device, seed_everything
from .grpo import LossConfig, LossInputs, clipped_pg_loss, token_entropy
from .modeling import load_model
from .protocol import Emitter
from .requests.train_rl import RlSample, TrainRlRequest as Request
from .rl_export import OnnxExporter
from .trainable import Trainable

# The trained sequences, as the rollout side sent them (runtime/node/protocol.ts RlSample), checked. Which samples
# train and with what advantage is decided in TS (runtime/rl/advantages.ts); here a sample only has to be a
# well-formed sequence. Every bad value is reported with its index and field, so it is fixed at the source.


@dataclass
class Rollout:
    input_ids: np.ndarray          # [T] int64
    loss_mask: np.ndarray          # [T] bool
    behaviour_logprobs: np.ndarray  # [T] float64
    advantage: float
    policy_version: int | None = None


def check_row(where: str, s: RlSample) -> Rollout:
    ids = np.asarray(s.input_ids, dtype=np.int64)
    mask_raw = np.asarray(s.loss_mask, dtype=np.int64)
    beh = np.asarray(s.behaviour_logprobs, dtype=np.float64)
    if len(ids) < 2:
        raise ValueError(f"{where}: input_ids needs at least 2 tokens (a prompt token and a completion token)")
    if len(mask_raw) != len(ids) or len(beh) != len(ids):
        raise ValueError(f"{where}: input_ids has {len(ids)} tokens but loss_mask has {len(mask_raw)} and "
                         f"behaviour_logprobs {len(beh)}; all three must be aligned per token")
    if not np.isin(mask_raw, (0, 1)).all():
        raise ValueError(f"{where}: loss_mask must hold only 0/1")
    m = mask_raw.astype(bool)
    if m[0]:
        raise ValueError(f"{where}: loss_mask[0] is 1, but the first token has no context to be predicted from")
    if not m.any():
        raise ValueError(f"{where}: loss_mask has no 1 - the row has no generated token to train on")
    bad = np.nonzero(m & ~(np.isfinite(beh) & (beh <= 0)))[0]
    if len(bad):
        raise ValueError(f"{where}: behaviour_logprobs[{bad[0]}] = {beh[bad[0]]} is not a log-probability "
                         "(finite and <= 0) at a trained token")
    if not math.isfinite(s.advantage):
        raise ValueError(f"{where}: advantage is {s.advantage}; it must be finite")
    return Rollout(ids, m, beh, s.advantage, s.policy_version)


def check_vocab(rows: list[Rollout], vocab: int) -> None:
    for i, r in enumerate(rows):
        if r.input_ids.min() < 0 or r.input_ids.max() >= vocab:
            raise ValueError(f"samples[{i}]: token id {int(r.input_ids.max())} is outside the model's vocab "
                             f"[0, {vocab}); were these rollouts made with another tokenizer?")


class LogprobModule(torch.nn.Module):
    """RlTrainer.token_logprobs as a module, so DDP and FSDP see (and hook) one forward per micro-batch."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids, attn, mask, temperature: float, entropy: bool = False):
        return RlTrainer.token_logprobs(self.model, {"ids": ids, "attn": attn, "mask": mask}, temperature, entropy)


class RlTrainer:
    def __init__(self, req: Request, emit: Emitter) -> None:
        t0 = time.perf_counter()
        self.key = self.key_of(req)
        self.emit = emit
        self.ctx = dist_util.init()
        self.place = pick_device(req.device, self.ctx.local_rank)
        seed_everything(req.seed)
        self.policy = Trainable(req, self.place, self.ctx)
        self.model = self.policy.model
        self.lp_mod = self.policy.wrap(LogprobModule(self.model))  # before the optimizer: FSDP swaps in shards
        self.ref: torch.nn.Module | None = None
        self.opt = torch.optim.AdamW(self.policy.trainable(), lr=req.lr, betas=tuple(req.betas),
                                     weight_decay=req.weight_decay)
        self.exporter = OnnxExporter()
        self.step = 0
        self.resumed_from: int | None = None
        cfg = self.model.config
        self.fp = {"kind": "rl", "seed": req.seed, "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
                   "num_layers": cfg.num_hidden_layers}
        if req.lora is not None:
            self.fp["lora"] = req.lora.model_dump()
        if self.ctx.world > 1:
            self.fp.update(world=self.ctx.world, parallel=req.parallel)
        state = self.policy.resume(req.checkpoint_dir, self.fp, self.opt) if req.checkpoint_dir else None
        if state is not None:
            self.step = self.resumed_from = int(state["step"])
            emit.log(f"rl trainer resumed from {state['path']} (step {self.step})")
        self.load_s = time.perf_counter() - t0

    @staticmethod
    def key_of(req: Request) -> tuple:
        lora = tuple(sorted(req.lora.model_dump().items(), key=str)) if req.lora is not None else None
        return (req.model_dir, req.checkpoint_dir, req.device, req.seed, str(lora), req.gradient_checkpointing,
                req.parallel)

    def handle(self, req: Request) -> dict[str, Any]:
        timings = {"load_s": self.load_s}
        self.load_s = 0.0
        metrics: dict[str, float] = {}
        skipped = False
        ckpt = None
        if req.op == "step":
            if req.step <= self.step:
                skipped = True
                self.emit.log(f"step {req.step} skipped: the trainer is already at step {self.step}")
            elif req.step > self.step + 1:
                raise ValueError(f"step gap: the trainer is at step {self.step} (checkpoint dir "
                                 f"{req.checkpoint_dir}), the request is for step {req.step}; send steps "
                                 f"{self.step + 1}..{req.step - 1} first (their rollouts are in the trajectory table)")
            else:
                metrics = self.train_step(req, timings)
                ckpt = self.maybe_checkpoint(req, timings)
        export = None if skipped else self.export(req, timings)
        saved = None
        if req.save_dir and not skipped:
            self.policy.save(req.save_dir)
            saved = req.save_dir
        return {"op": req.op, "step": self.step, "skipped": skipped, "resumed_from": self.resumed_from,
                "metrics": metrics, "checkpoint": ckpt, "export": export, "saved_dir": saved, "timings": timings,
                "device": str(self.place.device)}

    def train_step(self, req: Request, timings: dict[str, float]) -> dict[str, float]:
        t0 = time.perf_counter()
        rows = [check_row(f"samples[{i}]", s) for i, s in enumerate(req.samples)]
        check_vocab(rows, self.model.config.vocab_size)
        adv = torch.tensor([r.advantage for r in rows], dtype=torch.float64).float()
        timings["data_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        for g in self.opt.param_groups:
            g.update(lr=req.lr, betas=tuple(req.betas), weight_decay=req.weight_decay)
        if req.beta_kl > 0 and self.ref is None and self.policy.peft is None:
            # Under LoRA the reference is the same model with its adapters switched off (ref_logprobs).
            self.ref = load_model(req.model_dir, self.place.device).eval().requires_grad_(False)
        metrics = self.update(req, rows, adv) if rows else self.empty()
        self.step += 1
        timings["train_s"] = time.perf_counter() - t1
        metrics.update(lr=req.lr, samples=float(len(rows)), train_s=timings["train_s"])
        for name, v in sorted(metrics.items()):
            self.emit.metric(name, v, self.step)
        return metrics

    def empty(self) -> dict[str, float]:
        self.emit.log(f"step {self.step + 1}: no samples; the step advances without an update")
        return {"tokens": 0.0, "grad_norm": 0.0, "loss": 0.0}

    def update(self, req: Request, rows: list[Rollout], adv: torch.Tensor) -> dict[str, float]:
        """Mini-batches in order, each one optimizer step; logprobs_old fixed before the first when there are
        several (PPO-style reuse), else the detached current logprobs (one update per batch, ratio == 1)."""
        n = len(rows)
        k = max(1, min(req.mini_batches, n))
        bounds = [round(i * n / k) for i in range(k + 1)]
        slices = [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
        old = self.logprobs_nograd(req, rows, slices) if k > 1 else None
        sums: dict[str, float] = {}
        tokens, norms, seq_tokens = 0, [], 0
        for idx in slices:
            out, gnorm = self.minibatch(req, rows, adv, idx, old)
            for key, v in out.items():
                sums[key] = sums.get(key, 0.0) + v
            tokens += int(sum(rows[i].loss_mask.sum() for i in idx))
            seq_tokens += sum(len(rows[i].input_ids) for i in idx)
            norms.append(gnorm)
        metrics = {key: v / max(1, tokens) for key, v in sums.items() if key != "loss"}
        metrics.update(loss=sums["loss"] / k, grad_norm=max(norms), tokens=float(tokens),
                       seq_tokens=float(seq_tokens), adv_abs_mean=float(adv.abs().mean()))
        versions = [r.policy_version for r in rows if r.policy_version is not None]
        if versions:
            metrics["staleness_max"] = float(self.step - min(versions))
        return metrics

    def minibatch(self, req: Request, rows: list[Rollout], adv: torch.Tensor, idx: list[int],
                  old: list[torch.Tensor] | None):
        """One optimizer step on rows `idx`. Under torchrun each rank takes its share of them (my_chunks); DDP and
        FSDP average gradients over ranks, hence the loss x world; metric sums are added over ranks."""
        cfg = LossConfig(req.eps_low, req.eps_high, req.tis_cap, req.beta_kl)
        n_tok = int(sum(rows[i].loss_mask.sum() for i in idx))
        world = self.ctx.world
        # Fixed names, in one order on every rank (a rank may have no real row): the all-reduce sums them.
        names = ["loss", "pg_loss", "clip_frac", "clip_frac_low", "clip_frac_high", "ratio", "mismatch_kl",
                 "mismatch_k3", "tis_mean"] + (["tis_trunc_frac"] if req.tis_cap is not None else []) + \
            (["kl"] if req.beta_kl > 0 else []) + ["entropy"]
        sums = dict.fromkeys(names, 0.0)
        chunks = self.my_chunks(rows, idx, req.micro_batch_size)
        for j, (chunk, real) in enumerate(chunks):
            batch = self.collate([rows[i] for i in chunk])
            with dist_util.maybe_no_sync(self.lp_mod, last=j == len(chunks) - 1):
                with self.place.autocast():
                    lp_new, ent = self.lp_mod(batch["ids"], batch["attn"], batch["mask"], req.temperature, True)
                    ref = self.ref_logprobs(req, batch) if req.beta_kl > 0 else None
                lp_old = lp_new.detach() if old is None else self.pad_like(lp_new, [old[i] for i in chunk])
                x = LossInputs(lp_new, lp_old, batch["beh"], adv[chunk].to(self.place.device), batch["mask"],
                               ref, ent)
                out = clipped_pg_loss(x, cfg, normaliser=max(1, n_tok))
                # A padding chunk (this rank has fewer rows than another) runs so the collectives line up, x 0.
                (out.loss * (world if real else 0.0)).backward()
            if real:
                assert set(out.sums) <= set(names), f"metric sums {sorted(set(out.sums) - set(names))} not reduced"
                sums["loss"] += float(out.loss.detach())
                for key, v in out.sums.items():
                    sums[key] = sums.get(key, 0.0) + v
        if world > 1:
            total = dist_util.all_sum(torch.tensor([sums[k] for k in names], dtype=torch.float64,
                                                   device=self.place.device), self.ctx)
            sums = dict(zip(names, total.tolist()))
        gnorm = self.policy.clip_grad_norm(req.max_grad_norm)
        if not (math.isfinite(gnorm) and math.isfinite(sums["loss"])):
            raise FloatingPointError(f"step {self.step + 1}: non-finite loss/grad-norm (loss {sums['loss']}, grad "
                                     f"norm {gnorm}); the update was not applied. Lower lr or check the rollouts.")
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return sums, gnorm

    def ref_logprobs(self, req: Request, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            if self.ref is not None:
                return self.token_logprobs(self.ref, batch, req.temperature)[0]
            with self.policy.peft.disable_adapter():  # LoRA: the base weights are the initial policy
                return self.lp_mod(batch["ids"], batch["attn"], batch["mask"], req.temperature)[0]

    @staticmethod
    def micro_chunks(rows: list[Rollout], idx: list[int], size: int) -> list[list[int]]:
        """Rows sorted by length then cut into micro-batches: less padding, same result (the loss is a sum)."""
        order = sorted(idx, key=lambda i: (len(rows[i].input_ids), i))
        return [order[j:j + size] for j in range(0, len(order), max(1, size))]

    def my_chunks(self, rows: list[Rollout], idx: list[int], size: int) -> list[tuple[list[int], bool]]:
        """This rank's micro-batches of rows `idx`, as (rows, real). Rows are dealt round-robin by length; every
        rank gets the same number of micro-batches (a rank short of rows repeats one with weight 0), because
        each forward of a sharded model is a collective. One process: micro_chunks(idx) as they are."""
        if self.ctx.world == 1:
            return [(c, True) for c in self.micro_chunks(rows, idx, size)]
        order = sorted(idx, key=lambda i: (len(rows[i].input_ids), i))
        mine = order[self.ctx.rank::self.ctx.world]
        n = math.ceil(math.ceil(len(order) / self.ctx.world) / max(1, size))
        chunks = [(mine[j:j + size], True) for j in range(0, len(mine), max(1, size))]
        return chunks + [([order[0]], False)] * (n - len(chunks))

    def collate(self, rows: list[Rollout]) -> dict[str, torch.Tensor]:
        length = max(len(r.input_ids) for r in rows)
        b = len(rows)
        ids = torch.zeros(b, length, dtype=torch.long)
        attn = torch.zeros(b, length, dtype=torch.long)
        mask = torch.zeros(b, length, dtype=torch.bool)
        beh = torch.zeros(b, length, dtype=torch.float32)
        for i, r in enumerate(rows):
            n = len(r.input_ids)
            ids[i, :n] = torch.from_numpy(r.input_ids)
            attn[i, :n] = 1
            mask[i, :n] = torch.from_numpy(r.loss_mask)
            beh[i, :n] = torch.from_numpy(r.behaviour_logprobs).float()
        dev = self.place.device
        return {"ids": ids.to(dev), "attn": attn.to(dev), "mask": mask.to(dev), "beh": beh.to(dev)}

    @staticmethod
    def token_logprobs(model, batch, temperature: float, entropy: bool = False):
        """[b, L] logprob of token t given < t at trained positions (0 elsewhere); only those go through lm_head."""
        ids, mask = batch["ids"], batch["mask"]
        pos = (batch["attn"].cumsum(1) - 1).clamp(min=0)
        hidden = model.model(input_ids=ids, attention_mask=batch["attn"], position_ids=pos,
                             use_cache=False).last_hidden_state        # [b, L, H]
        tgt = mask[:, 1:]                                               # [b, L-1] token t+1 trained
        logits = model.lm_head(hidden[:, :-1][tgt]).float() / temperature  # [N, V]
        logp = torch.log_softmax(logits, dim=-1)
        lp = logp.gather(1, ids[:, 1:][tgt].unsqueeze(1)).squeeze(1)    # [N]
        out = torch.zeros(ids.shape, dtype=lp.dtype, device=lp.device)
        out[:, 1:][tgt] = lp
        ent = None
        if entropy:
            ent = torch.zeros(ids.shape, dtype=lp.dtype, device=lp.device)
            with torch.no_grad():
                ent[:, 1:][tgt] = token_entropy(logits.detach())
        return out, ent

    def logprobs_nograd(self, req: Request, rows: list[Rollout], slices: list[list[int]]) -> list[torch.Tensor]:
        """The current policy's logprobs of the rows this rank will train, before the first mini-batch."""
        out: list[torch.Tensor] = [torch.empty(0)] * len(rows)
        with torch.no_grad(), self.place.autocast():
            for idx in slices:
                for chunk, real in self.my_chunks(rows, idx, req.micro_batch_size):
                    b = self.collate([rows[i] for i in chunk])
                    lp, _ = self.lp_mod(b["ids"], b["attn"], b["mask"], req.temperature)
                    for j, i in enumerate(chunk if real else []):
                        out[i] = lp[j, :len(rows[i].input_ids)]
        return out

    @staticmethod
    def pad_like(ref: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros_like(ref)
        for j, p in enumerate(parts):
            out[j, :len(p)] = p
        return out

    def maybe_checkpoint(self, req: Request, timings: dict[str, float]) -> str | None:
        if not req.checkpoint_dir or self.step % max(1, req.checkpoint_every) != 0:
            return None
        t0 = time.perf_counter()
        path = self.policy.save_checkpoint(req.checkpoint_dir, self.step, self.opt, self.fp,
                                           keep=req.keep_checkpoints)
        dist_util.barrier(self.ctx)
        timings["checkpoint_s"] = time.perf_counter() - t0
        return str(path) if path is not None else None

    def export(self, req: Request, timings: dict[str, float]) -> dict[str, Any] | None:
        if not req.export_dir:
            return None
        t0 = time.perf_counter()
        plain = self.policy.plain()  # merged LoRA / gathered FSDP weights; None on ranks > 0 under FSDP
        mode = "weights"
        if self.ctx.rank == 0:
            mode = self.exporter.export(plain, req.model_dir, req.export_dir, self.step, req.export_mode)
        dist_util.barrier(self.ctx)
        timings["export_s"] = time.perf_counter() - t0
        self.emit.metric("export_s", timings["export_s"], self.step)
        return {"dir": req.export_dir, "mode": mode, "seconds": timings["export_s"], "policy_version": self.step}
