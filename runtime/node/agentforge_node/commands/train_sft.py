"""`train-sft`: supervised fine-tuning on packed Parquet token shards; writes an HF model directory."""
from __future__ import annotations

from typing import Any

import torch

from ..protocol import Emitter
from ..requests.train_sft import TrainSftRequest
from ..sft import train


def run(req: TrainSftRequest, emit: Emitter) -> dict[str, Any]:
    try:
        return train(req, emit)
    except torch.OutOfMemoryError as e:
        where = f"; the last checkpoint in {req.checkpoint_dir} is kept, a rerun resumes from it" \
            if req.checkpoint_dir else ""
        raise RuntimeError(f"out of memory with micro_batch_size {req.micro_batch_size}: lower micro_batch_size "
                           f"(batch_size may stay; gradient accumulation grows){where}. {e}") from e
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
