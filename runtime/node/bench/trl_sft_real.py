"""bench/real.ts's SFT baseline: TRL's SFTTrainer on a real model (SmolLM2-135M), full or LoRA, with the config the
runtime node's train-sft runs in the same bench (AdamW betas/decay, warmup + cosine to min_lr_ratio, clipping, fp32 on
CPU, no activation checkpointing, one forward per optimizer step over the same equal-length samples, no packing).

Run with the TRL bench venv (runtime/node/bench/requirements-trl.txt). stdin JSON:
  {"model_dir", "samples" (jsonl of {"input_ids", "loss_mask"}), "out_dir", "steps", "batch", "lr", "warmup_steps",
   "min_lr_ratio", "weight_decay", "betas", "max_grad_norm", "threads", "lora": null | {"r", "alpha", "dropout", "target_modules"}}
stdout: one JSON line {"tokens_per_s", "step_seconds": [...], "tokens_per_step"} — steps after the first (warm-up).
"""
from __future__ import annotations

import json
import sys
import time

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTConfig, SFTTrainer


class StepClock(TrainerCallback):
    def __init__(self) -> None:
        self.t0 = 0.0
        self.seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kw):
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.seconds.append(time.perf_counter() - self.t0)


def main() -> None:
    req = json.loads(sys.stdin.read())
    if req.get("threads"):
        torch.set_num_threads(int(req["threads"]))
    rows = [json.loads(line) for line in open(req["samples"])]
    length = len(rows[0]["input_ids"])
    if any(len(r["input_ids"]) != length for r in rows):
        raise SystemExit("trl_sft_real.py: samples must share one length (no padding on either side)")
    ds = Dataset.from_list([{"input_ids": r["input_ids"], "completion_mask": r["loss_mask"]} for r in rows])
    tok = AutoTokenizer.from_pretrained(req["model_dir"])
    model = AutoModelForCausalLM.from_pretrained(req["model_dir"], dtype=torch.float32)
    peft_config = None
    if req.get("lora"):
        from peft import LoraConfig
        lo = req["lora"]
        peft_config = LoraConfig(r=lo["r"], lora_alpha=lo["alpha"], lora_dropout=lo["dropout"],
                                 target_modules=lo["target_modules"], task_type="CAUSAL_LM")
    cfg = SFTConfig(
        output_dir=req["out_dir"], max_steps=req["steps"], per_device_train_batch_size=req["batch"],
        gradient_accumulation_steps=1, learning_rate=req["lr"], warmup_steps=req["warmup_steps"],
        lr_scheduler_type="cosine_with_min_lr", lr_scheduler_kwargs={"min_lr_rate": req["min_lr_ratio"]},
        weight_decay=req["weight_decay"], adam_beta1=req["betas"][0], adam_beta2=req["betas"][1],
        max_grad_norm=req["max_grad_norm"], packing=False, max_length=length, completion_only_loss=True,
        logging_steps=1000, save_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(), dataloader_num_workers=0, seed=0,
        # TRL turns activation checkpointing on by default; the node does not (unless asked), so compare like with like.
        gradient_checkpointing=False,
    )
    clock = StepClock()
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok, peft_config=peft_config,
                         callbacks=[clock])
    trainer.train()
    timed = clock.seconds[1:] or clock.seconds
    tokens = req["batch"] * length
    print(json.dumps({"tokens_per_s": tokens * len(timed) / sum(timed), "step_seconds": clock.seconds,
                      "tokens_per_step": tokens}), file=sys.__stdout__)


if __name__ == "__main__":
    main()
