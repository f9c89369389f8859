"""Baseline for bench/sft.ts: TRL's SFTTrainer on the same model dir and the same packed samples.

Run with the bench venv (TRL installed there, never a project dependency):
  python trl_sft.py <model_dir> <samples.jsonl> <out_dir> <steps> <batch_size> <max_len>
Prints one JSON line {"tokens_per_s", "peak_memory_bytes", "tokens", "seconds"} on stdout.
"""
from __future__ import annotations

import json
import resource
import sys
import time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer


class Clock(TrainerCallback):
    """Times optimizer steps after the first (warm-up), as our node's tokens/s also excludes start-up."""

    def __init__(self) -> None:
        self.t0 = None
        self.steps = 0

    def on_step_begin(self, args, state, control, **kw):
        if state.global_step == 1 and self.t0 is None:
            self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self.t0 is not None:
            self.steps += 1


def main(model_dir: str, samples: str, out_dir: str, steps: int, batch: int, max_len: int) -> None:
    rows = [json.loads(line) for line in open(samples)]
    ds = Dataset.from_list([{"input_ids": r["input_ids"], "completion_mask": r["loss_mask"]} for r in rows])
    tok = AutoTokenizer.from_pretrained(model_dir)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    cfg = SFTConfig(output_dir=out_dir, max_steps=steps, per_device_train_batch_size=batch, learning_rate=3e-4,
                    lr_scheduler_type="cosine", warmup_steps=2, max_grad_norm=1.0, packing=True, max_length=max_len,
                    completion_only_loss=True, logging_steps=1000, save_strategy="no", report_to=[], bf16=cuda,
                    use_cpu=not cuda, dataloader_num_workers=0, seed=0,
                    # TRL turns activation checkpointing on by default; our node keeps activations, so compare like
                    # with like (the default would cost TRL a second forward pass and save it memory).
                    gradient_checkpointing=False)
    clock = Clock()
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, callbacks=[clock])
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - clock.t0
    tokens = clock.steps * batch * max_len  # packed rows are full max_len sequences
    peak = torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"tokens_per_s": tokens / seconds, "peak_memory_bytes": int(peak), "tokens": tokens,
                      "seconds": seconds}), file=sys.__stdout__)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
