"""`export-onnx`: the model as ONNX with KV-cache inputs/outputs, plus meta.json and the tokenizer files."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from ..modeling import load_model
from ..onnx_export import check_supported, export, write_side_files
from ..protocol import Emitter
from ..requests.export_onnx import ExportOnnxRequest


def run(req: ExportOnnxRequest, emit: Emitter) -> dict[str, Any]:
    src, out = Path(req.model_dir), Path(req.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(src)
    check_supported(model, src)
    emit.log(f"exporting {src} to ONNX (opset {req.opset}, {req.dtype} weights)")
    path = out / "model.onnx"
    export(model, path, req.opset, req.dtype)
    emit.progress(1, 2, "stages")
    # Models over 2 GB need external data; the check is by path so it works for both layouts.
    onnx.checker.check_model(str(path))
    meta = write_side_files(model, src, out, req.policy_version)
    emit.progress(2, 2, "stages")
    size = sum(f.stat().st_size for f in out.glob("model.onnx*"))
    return {"out_dir": str(out), "onnx": str(path), "meta": meta, "dtype": req.dtype, "bytes": size}
