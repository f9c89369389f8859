"""The exporter on llama / qwen2 / qwen3: a tied embedding is one initializer (shared by the Gather and the LM
head), an untied head is stored as it is (never a second, transposed copy); fp16 stores the large weights as
float16 behind Casts and int8 turns every weight MatMul into DynamicQuantizeMatMul, with float32 inputs/outputs;
an architecture the exporter does not handle is refused. Logit parity of each architecture on ORT:
test/node/export-archs.test.ts."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from agentforge_node.onnx_export import SUPPORTED_MODEL_TYPES, export
from gguf_fixtures import tiny_arch_model

V, H = 300, 64


def vocab_initializers(m: onnx.ModelProto) -> list[tuple[int, ...]]:
    return [tuple(i.dims) for i in m.graph.initializer if V in i.dims and H in i.dims]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3"])
def test_tied_embedding_stored_once(arch, tmp_path):
    tied, untied = tiny_arch_model(arch, V, tie=True), tiny_arch_model(arch, V, tie=False)
    export(tied, tmp_path / "t.onnx")
    export(untied, tmp_path / "u.onnx")
    t, u = onnx.load(str(tmp_path / "t.onnx")), onnx.load(str(tmp_path / "u.onnx"))
    assert vocab_initializers(t) == [(V, H)]
    assert vocab_initializers(u) == [(V, H), (V, H)]  # embedding + head, neither transposed
    saved = (tmp_path / "u.onnx").stat().st_size - (tmp_path / "t.onnx").stat().st_size
    assert abs(saved - V * H * 4) < 1024
    emb = next(i for i in t.graph.initializer if tuple(i.dims) == (V, H))
    np.testing.assert_array_equal(numpy_helper.to_array(emb), tied.model.embed_tokens.weight.detach().numpy())


def test_fp16_and_int8_weights_keep_fp32_io(tmp_path):
    model = tiny_arch_model("qwen3", V)
    sizes = {}
    for dtype in ("fp32", "fp16", "int8"):
        path = tmp_path / f"{dtype}.onnx"
        export(model, path, dtype=dtype)
        onnx.checker.check_model(str(path))
        m = onnx.load(str(path))
        sizes[dtype] = path.stat().st_size
        io = {v.name: v.type.tensor_type.elem_type for v in [*m.graph.input, *m.graph.output]}
        assert io["logits"] == onnx.TensorProto.FLOAT and io["past_key_values.0.key"] == onnx.TensorProto.FLOAT
        ops = [n.op_type for n in m.graph.node]
        if dtype == "fp16":
            halves = [i for i in m.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16]
            assert len(halves) == ops.count("Cast") - [n.op_type for n in onnx.load(str(tmp_path / "fp32.onnx")).graph.node].count("Cast")
            assert all(np.prod(i.dims) >= 1024 for i in halves) and (V, H) in [tuple(i.dims) for i in halves]
        if dtype == "int8":
            # 2 layers x (q, k, v, o, gate, up); down_proj and the LM head (the tied embedding) stay float32
            quantized = [n.name for n in m.graph.node if n.op_type == "DynamicQuantizeMatMul"]
            assert len(quantized) == 12 and not any("down_proj" in n for n in quantized)
            assert sum("down_proj" in n.name for n in m.graph.node if n.op_type == "MatMul") == 2
            assert vocab_initializers(m) == [(V, H)]
            assert any(o.domain == "com.microsoft" for o in m.opset_import)
    assert sizes["fp16"] < 0.6 * sizes["fp32"] and sizes["int8"] < 0.75 * sizes["fp32"]  # down_proj stays fp32


def test_unsupported_architecture_is_refused(tmp_path):
    from transformers import MistralConfig, MistralForCausalLM

    model = MistralForCausalLM(MistralConfig(vocab_size=V, hidden_size=H, intermediate_size=128, num_hidden_layers=1,
                                             num_attention_heads=4, num_key_value_heads=2))
    with pytest.raises(ValueError, match=r"model_type 'mistral' \(MistralForCausalLM\) cannot be exported to ONNX; "
                                         rf"the exporter supports {', '.join(SUPPORTED_MODEL_TYPES)}"):
        export(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
