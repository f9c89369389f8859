"""`convert-gguf`: a GGUF file dequantized into a Hugging Face dir (safetensors + config + tokenizer + template).

transformers' GGUF loading (`from_pretrained(dir, gguf_file=...)`, through gguf-py) does the dequantizing and the
tensor renaming; what it leaves undone is done here:
- its config keeps `quantization_config` (quant_method gguf), and `save_pretrained` refuses such a model, while the
  weights are already plain floats: the entry is dropped;
- for qwen2/qwen3 it maps no GGUF key to `head_dim`, so a model whose head_dim is not the config class's default
  fails to load; head_dim is read off the attn_q tensor's shape instead;
- every tensor type is checked before anything loads, so an unknown or non-dequantizable quantization is one error
  naming the file, the tensor and the type (not a traceback from deep inside gguf-py).
"""
from __future__ import annotations

import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import torch

from ..modeling import save_model
from ..protocol import Emitter
from ..requests.convert_gguf import ConvertGgufRequest

# Raw types gguf-py reads as numpy arrays; the quantized ones it can dequantize are in gguf.quants' traits.
RAW_TYPES = {"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64"}


def dequantizable() -> set[str]:
    import gguf.quants
    traits = getattr(gguf.quants, "_type_traits", {})
    return RAW_TYPES | {t.name for t in traits}


def read_header(path: Path):
    from gguf import GGUFReader
    try:
        return GGUFReader(str(path))
    except (ValueError, KeyError) as e:
        # GGUFReader turns an unknown ggml type id into ValueError("N is not a valid GGMLQuantizationType")
        raise ValueError(f"GGUF {path}: cannot be read by gguf-py ({e}); an unknown quantization or a corrupt file. "
                         "Re-quantize it to a known type (Q8_0, Q4_K_M, F16) with llama.cpp, or use the "
                         "model's safetensors release") from None


def field_str(reader, key: str) -> str | None:
    f = reader.fields.get(key)
    if f is None or not f.data:
        return None
    v = f.parts[f.data[0]]
    return bytes(v).decode("utf-8") if hasattr(v, "tobytes") or isinstance(v, (bytes, bytearray)) else str(v)


def check_types(path: Path, reader) -> dict[str, int]:
    ok = dequantizable()
    counts: dict[str, int] = {}
    for t in reader.tensors:
        name = t.tensor_type.name
        if name not in ok:
            raise ValueError(f"GGUF {path}: tensor {t.name} is {name}, a quantization gguf-py {gguf_version()} cannot "
                             f"dequantize (known: {', '.join(sorted(ok))}); re-quantize the model to one of those "
                             "with llama.cpp, or use its safetensors release")
        counts[name] = counts.get(name, 0) + 1
    return counts


def gguf_version() -> str:
    from importlib.metadata import version
    return version("gguf")


def head_dim(reader, arch: str) -> int | None:
    """Query width per head from attn_q (GGUF stores [n_embd, n_head * head_dim] as shape [in, out])."""
    heads = reader.fields.get(f"{arch}.attention.head_count")
    q = next((t for t in reader.tensors if t.name == "blk.0.attn_q.weight"), None)
    if heads is None or q is None:
        return None
    n_head = int(heads.parts[heads.data[0]][0])
    return int(q.shape[1]) // n_head if int(q.shape[1]) % n_head == 0 else None


def run(req: ConvertGgufRequest, emit: Emitter) -> dict[str, Any]:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    t0 = time.perf_counter()
    path = Path(req.gguf_file).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF {path} does not exist; pass the path of a .gguf file")
    out = Path(req.out_dir)
    reader = read_header(path)
    arch = field_str(reader, "general.architecture") or "?"
    if arch not in GGUF_SUPPORTED_ARCHITECTURES:
        raise ValueError(f"GGUF {path}: architecture '{arch}' cannot be loaded by transformers' GGUF support "
                         f"(it knows {', '.join(a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ('general', 'tokenizer'))}); "
                         "use the model's safetensors release")
    types = check_types(path, reader)
    hd = head_dim(reader, arch)
    del reader  # its memmap of the whole file
    emit.log(f"GGUF {path.name}: {arch}, {sum(types.values())} tensors ({', '.join(f'{k} {v}' for k, v in sorted(types.items()))})")

    where, name = str(path.parent), path.name
    dtype = torch.float32 if req.dtype == "float32" else torch.bfloat16
    with redirect_stdout(sys.stderr):
        config = AutoConfig.from_pretrained(where, gguf_file=name)
        if hd is not None and getattr(config, "head_dim", hd) != hd:
            config.head_dim = hd
        tok = AutoTokenizer.from_pretrained(where, gguf_file=name)
        emit.progress(1, 3, "stages")
        model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, config=config, dtype=dtype)
    emit.progress(2, 3, "stages")
    # The weights are plain floats now; the gguf quantization_config would make save_pretrained refuse them.
    for obj in (model.config, config):
        if hasattr(obj, "quantization_config"):
            delattr(obj, "quantization_config")
    model.hf_quantizer = None
    model.is_quantized = False
    # the GGUF tokenizer has no length of its own (transformers writes 1e30); the model's context is the honest one
    tok.model_max_length = int(getattr(model.config, "max_position_embeddings", 0) or tok.model_max_length)
    if req.chat_template is not None:
        tok.chat_template = req.chat_template
    save_model(model, out)
    with redirect_stdout(sys.stderr):
        tok.save_pretrained(str(out))
    emit.progress(3, 3, "stages")
    return {"out_dir": str(out), "architecture": arch, "model_type": model.config.model_type,
            "model_class": type(model).__name__, "num_parameters": sum(p.numel() for p in model.parameters()),
            "tensor_types": types, "tie_word_embeddings": bool(model.config.tie_word_embeddings),
            "seconds": round(time.perf_counter() - t0, 3)}
