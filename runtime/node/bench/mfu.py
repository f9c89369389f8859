"""SFT throughput and model-FLOPs utilisation (MFU) of the runtime node on whatever device torch picks.

  PYTHONPATH=runtime/node python runtime/node/bench/mfu.py <work_dir> [size ...]   (sizes: klear, small, base;
  AGENTFORGE_MFU_STEPS, default 30)

Per size: init-model (the real command) -> make_shards.py samples -> sft.train in this process -> one JSON line
{"size", "params", "device", "tokens_per_s", "tflops", "mfu", "peak_memory_bytes", "final_loss"}.
Model FLOPs per trained token follow PaLM (Chowdhery et al. 2022, app. B): 6 x (parameters, the LM head counted
even when tied) + 12 x layers x heads x head_dim x (attended keys), with the keys counted causally inside each
packed sample (no credit for the masked-out blocks SDPA still computes). The peak is the chip's dense bf16 rate.
"""
from __future__ import annotations

import io
import json
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_shards import main as make_shards  # noqa: E402

from agentforge_node.commands import init_model  # noqa: E402
from agentforge_node.protocol import Emitter  # noqa: E402
from agentforge_node.requests.init_model import InitModelRequest  # noqa: E402
from agentforge_node.requests.train_sft import TrainSftRequest  # noqa: E402
from agentforge_node.sft import train  # noqa: E402
from agentforge_node.shards import load_rows  # noqa: E402

SIZES = {
    # The klear DAG's embedded default (dags/klear.ts), then two larger shapes where a GPU has room to work.
    "klear": dict(hidden_size=128, num_layers=4, num_heads=4, num_kv_heads=2, head_dim=32, intermediate_size=384,
                  max_len=512, batch=16),
    "small": dict(hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=4, head_dim=64, intermediate_size=1536,
                  max_len=1024, batch=32),
    "base": dict(hidden_size=1024, num_layers=16, num_heads=16, num_kv_heads=8, head_dim=64, intermediate_size=3072,
                 max_len=1024, batch=32),
}
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}
CHAT = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
CORPUS = [f"<|im_start|>user\nstep {i}: add {i} and {i * 7}<|im_end|>\n<|im_start|>assistant\n<tool_call>\n"
          f'{{"name": "add", "arguments": {{"a": {i}, "b": {i * 7}}}}}\n</tool_call><|im_end|>\n' for i in range(2000)]


def flops_per_step(cfg, rows) -> float:
    n_params = sum(p.numel() for p in cfg["model"].parameters())
    if cfg["model"].config.tie_word_embeddings:
        n_params += cfg["model"].lm_head.weight.numel()
    c = cfg["model"].config
    tokens = sum(len(r.input_ids) for r in rows)
    keys = sum(int(r.position_ids.sum()) + len(r.input_ids) for r in rows)  # token at position p attends p + 1 keys
    return 6 * n_params * tokens + 12 * c.num_hidden_layers * c.num_attention_heads * c.head_dim * keys


def peak_rate(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def bench(work: Path, size: str, steps: int) -> dict:
    s = SIZES[size]
    model_dir = work / size / "model"
    init = {k: v for k, v in s.items() if k not in ("max_len", "batch")}
    req = InitModelRequest(**dict(out_dir=str(model_dir), chat_template=CHAT, texts=CORPUS,
                                                 vocab_size=4096, max_position_embeddings=s["max_len"], **init))
    info = init_model.run(req, Emitter(io.StringIO()))
    data = work / size / "data"
    make_shards(data, s["batch"] * steps * 4, info["vocab_size"], s["max_len"], 0)
    buf = io.StringIO()
    res = train(TrainSftRequest(**dict(model_dir=str(model_dir), shards=[str(data / "shards.parquet")],
                                               out_dir=str(work / size / "out"), max_steps=steps,
                                               batch_size=s["batch"], micro_batch_size=s["batch"], warmup_steps=2)),
                Emitter(buf))
    speeds = [e["value"] for e in map(json.loads, buf.getvalue().splitlines())
              if e.get("event") == "metric" and e.get("name") == "tokens_per_s"]
    steady = statistics.median(speeds[len(speeds) // 2:])  # the first steps carry allocator and kernel warm-up
    from agentforge_node.modeling import load_model

    rows = load_rows([str(data / "shards.parquet")], info["vocab_size"], s["max_len"])
    model = load_model(model_dir)
    per_token = flops_per_step({"model": model}, rows) / sum(len(r.input_ids) for r in rows)
    tflops = steady * per_token / 1e12
    peak = peak_rate(res["device"])
    return {"size": size, "params": sum(p.numel() for p in model.parameters()), "device": res["device"],
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "tokens_per_s": round(steady), "tokens_per_s_mean": round(res["tokens_per_s"]), "tflops": round(tflops, 2),
            "mfu": round(tflops * 1e12 / peak, 4) if peak else None, "peak_memory_bytes": res["peak_memory_bytes"],
            "final_loss": res["final_loss"], "steps": steps, "batch": s["batch"], "max_len": s["max_len"]}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    steps = int(os.environ.get("AGENTFORGE_MFU_STEPS", "30"))
    for name in sys.argv[2:] or ["klear"]:
        print(json.dumps(bench(out, name, steps)), flush=True)
