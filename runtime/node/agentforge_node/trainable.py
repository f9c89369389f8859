"""The model as the trainers hold it: LoRA or full, gradient checkpointing, one process or torchrun DDP/FSDP.

SFT (sft.py) and RL (rl_trainer.py) share this so that every combination saves, checkpoints, resumes and exports the
same way:
- `model` is the Hugging Face model (LoRA layers injected in place when `lora` is set), on the training device;
  the trainers call `model.model(...)` / `model.lm_head` inside a module that `wrap()` hands to DDP or FSDP.
- `trainable()` is what the optimizer gets: every parameter, or only the adapter matrices under LoRA.
- `plain()` is a model with plain, merged weights on rank 0 (the ONNX refresh reads it); `save()` writes an HF
  directory from it, plus `adapter/` under LoRA. Under FSDP both first gather the full weights onto rank 0
  (collectives: every rank calls them).
- checkpoints hold the full (gathered) state of what trains - the adapter alone under LoRA - so a resumed run is
  bit-exact whichever way it is split, as long as the fingerprint (which names lora, parallel and world) agrees.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed as dist_util
from . import lora
from .checkpoint import resume, save_checkpoint
from .device import Placement
from .modeling import load_model, save_model


class Trainable:
    def __init__(self, req: Any, place: Placement, ctx: dist_util.DistContext) -> None:
        self.ctx = ctx
        self.place = place
        self.src_dir = req.model_dir
        self.model = load_model(req.model_dir, place.device)
        self.peft = lora.attach(self.model, req.lora, req.model_dir) if req.lora is not None else None
        if req.gradient_checkpointing:
            # Non-reentrant checkpointing: correct with frozen inputs (LoRA) and with FSDP's hooks.
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        # from_pretrained leaves eval mode; HF only checkpoints (and peft only applies lora dropout) in train mode.
        self.model.train()
        self.sharded = ctx.world > 1 and req.parallel == "fsdp"
        self.parallel = req.parallel
        # FSDP leaves every rank a shard: rank 0 keeps an unsharded CPU twin to gather into for export and save.
        self.host: nn.Module | None = None
        if self.sharded and ctx.rank == 0:
            self.host = copy.deepcopy(self.peft if self.peft is not None else self.model).cpu()
        self.merged = lora.MergedView()

    # ---- training ----

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Weight decay on matrices only (LoRA's A and B are matrices: decayed, as peft's own examples do)."""
        params = self.trainable()
        return [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` (whose forward runs self.model) ready for this process group: as is, DDP, or sharded."""
        return dist_util.wrap(module, self.ctx, self.place.device, self.parallel, layers=list(self.model.model.layers))

    def clip_grad_norm(self, max_norm: float) -> float:
        # With FSDP the grads are DTensor shards; clip_grad_norm_ reduces their norms over the mesh.
        norm = torch.nn.utils.clip_grad_norm_(self.trainable(), max_norm)
        if hasattr(norm, "full_tensor"):
            norm = norm.full_tensor()
        return float(norm)

    # ---- weights out ----

    def _full_state(self) -> dict[str, torch.Tensor]:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(self.model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    def _host_view(self) -> tuple[nn.Module, nn.Module | None] | None:
        """(HF model, peft wrapper or None) holding the current weights, unsharded; None on ranks > 0 under FSDP."""
        if not self.sharded:
            return self.model, self.peft
        state = self._full_state()  # collective
        if self.host is None:
            return None
        hf = self.host.get_base_model() if self.peft is not None else self.host
        missing, unexpected = hf.load_state_dict(state, strict=False)
        tied = {n for n in missing if n.endswith("lm_head.weight")}
        if unexpected or set(missing) - tied:
            raise RuntimeError(f"gathered FSDP state does not fit the model: missing {sorted(missing)[:5]}, "
                               f"unexpected {sorted(unexpected)[:5]}")
        return hf, (self.host if self.peft is not None else None)

    def plain(self) -> nn.Module | None:
        """Plain merged weights for export (None on ranks > 0 under FSDP). Every rank must call it."""
        view = self._host_view()
        if view is None:
            return None
        hf, peft = view
        return self.merged.get(peft) if peft is not None else hf

    def save(self, out_dir: str | Path) -> None:
        """HF directory (merged weights + tokenizer files, + adapter/ under LoRA) on rank 0; every rank calls it."""
        view = self._host_view()
        if view is None:
            return
        hf, peft = view
        if peft is None:
            save_model(hf, out_dir, src_dir=self.src_dir)
            return
        save_model(self.merged.get(peft), out_dir, src_dir=self.src_dir)
        lora.save_adapter(peft, out_dir)

    # ---- checkpoints ----

    def save_checkpoint(self, ckpt_dir: str | Path, step: int, opt: torch.optim.Optimizer, fp: dict[str, Any],
                        keep: int = 2) -> Path | None:
        """Writes on rank 0 (returns its path there, None elsewhere); every rank must call it under FSDP."""
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

            msd, osd = get_state_dict(self.model, opt,
                                      options=StateDictOptions(full_state_dict=True, cpu_offload=True))
            if self.ctx.rank != 0:
                return None
            if self.peft is not None:
                names = {n for n, p in self.model.named_parameters() if p.requires_grad}
                msd = {k: v for k, v in msd.items() if k in names}
            return save_checkpoint(ckpt_dir, step, None, None, fp, keep, model_state=msd, optimizer_state=osd,
                                   partial=self.peft is not None)
        if self.ctx.rank != 0:
            return None
        if self.peft is not None:
            return save_checkpoint(ckpt_dir, step, None, opt, fp, keep, model_state=lora.trainable_state(self.model),
                                   partial=True)
        return save_checkpoint(ckpt_dir, step, self.model, opt, fp, keep)

    def resume(self, ckpt_dir: str | Path, fp: dict[str, Any], opt: torch.optim.Optimizer) -> dict[str, Any] | None:
        return resume(ckpt_dir, fp, self.model, opt, load=lambda state: self._load(state, opt))

    def _load(self, state: dict[str, Any], opt: torch.optim.Optimizer) -> None:
        partial = bool(state.get("partial"))
        if self.sharded:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

            set_state_dict(self.model, opt, model_state_dict=state["model"], optim_state_dict=state["optimizer"],
                           options=StateDictOptions(full_state_dict=True, strict=not partial))
            return
        if partial:
            missing, unexpected = self.model.load_state_dict(state["model"], strict=False)
            trained = {n for n, p in self.model.named_parameters() if p.requires_grad}
            if unexpected or trained & set(missing):
                raise ValueError(f"checkpoint adapter does not fit: unexpected {sorted(unexpected)[:5]}, "
                                 f"missing {sorted(trained & set(missing))[:5]}")
        else:
            self.model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
