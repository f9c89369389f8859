"""Where an SFT step's time goes: torch.profiler over a few forward+backward passes of a model made by mfu.py.

  PYTHONPATH=runtime/node python runtime/node/bench/profile_step.py <model_dir> <shards.parquet> <batch> [steps]
Prints the top operators by device (or CPU) self time, so MFU numbers come with their cause.
"""
from __future__ import annotations

import sys

import torch
from torch.profiler import ProfilerActivity, profile

from agentforge_node.device import pick_device
from agentforge_node.sft import TokenLoss, token_losses
from agentforge_node.modeling import load_model
from agentforge_node.shards import load_rows, micro_batches


def main(model_dir: str, shards: str, batch: int, steps: int) -> None:
    place = pick_device("auto")
    model = load_model(model_dir, place.device)
    rows = load_rows([shards], model.config.vocab_size, model.config.max_position_embeddings)
    lm = TokenLoss(model)
    micro = micro_batches(rows[:batch], 1, 0)[0].to(place.device)  # as the trainer batches them

    def step() -> None:
        with place.autocast():
            token_losses(lm, micro).mean().backward()

    step()  # warm-up outside the trace
    cuda = place.device.type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=18, max_name_column_width=60))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 3)
