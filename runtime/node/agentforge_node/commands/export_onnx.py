"""`export-onnx`: the model as ONNX with KV-cache inputs/outputs, plus meta.json and the tokenizer files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import onnx

from ..modeling import load_model
from ..onnx_export import export
from ..protocol import Emitter
from ..requests.export_onnx import ExportOnnxRequest


def eos_ids(model_dir: Path, config) -> list[int]:
    gen = model_dir / "generation_config.json"
    eos = json.loads(gen.read_text()).get("eos_token_id") if gen.exists() else None
    eos = config.eos_token_id if eos is None else eos
    return sorted({int(x) for x in (eos if isinstance(eos, list) else [eos]) if x is not None})


def run(req: ExportOnnxRequest, emit: Emitter) -> dict[str, Any]:
    src, out = Path(req.model_dir), Path(req.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(src)
    cfg = model.config
    emit.log(f"exporting {src} to ONNX (opset {req.opset})")
    path = out / "model.onnx"
    export(model, path, req.opset)
    emit.progress(1, 2, "stages")
    # Models over 2 GB need external data; the check is by path so it works for both layouts.
    onnx.checker.check_model(str(path))
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json"):
        if (src / name).exists():
            shutil.copyfile(src / name, out / name)
    meta = {"num_layers": cfg.num_hidden_layers, "num_kv_heads": cfg.num_key_value_heads, "head_dim": cfg.head_dim,
            "vocab_size": cfg.vocab_size, "eos_token_ids": eos_ids(src, cfg),
            "pad_token_id": cfg.pad_token_id if cfg.pad_token_id is not None else 0,
            "policy_version": req.policy_version}
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    emit.progress(2, 2, "stages")
    return {"out_dir": str(out), "onnx": str(path), "meta": meta}
