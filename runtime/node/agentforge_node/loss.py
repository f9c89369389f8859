"""Per-token SFT loss as a module, so DistributedDataParallel sees one forward per micro-batch.

Only positions that are trained go through the LM head: for small models the vocab projection is a large share
of the compute, and prompt/tool tokens (loss_mask 0) need no logits at all.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .shards import Batch


class TokenLoss(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, position_ids: torch.Tensor, targets: torch.Tensor,
                target_mask: torch.Tensor) -> torch.Tensor:
        # No attention mask: batches are right-padded samples (shards.micro_batches), where causal is exact.
        out = self.model.model(input_ids=input_ids, position_ids=position_ids, use_cache=False)
        hidden = out.last_hidden_state[target_mask]            # [N, H], N = trained positions
        logits = self.model.lm_head(hidden).float()            # [N, V]
        return F.cross_entropy(logits, targets[target_mask], reduction="none")  # [N]


def token_losses(loss_module: nn.Module, batch: Batch) -> torch.Tensor:
    """Cross-entropy of every trained next-token prediction in the batch, in row-major order: [N]."""
    return loss_module(batch.input_ids, batch.position_ids, batch.targets, batch.target_mask)
