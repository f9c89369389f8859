"""Bad input: each case fails with an error naming the input (and the tensor or file), and writes nothing."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import ValidationError
import torch

from agentforge_node.merge import MergeInputError, MergeSpec, Override, merge_models
from merge_fixtures import CONFIG, TOKENIZER, llama_tensors, write_model

SHAPE = dict(hidden=8, layers=1, inter=16, vocab=32)


@pytest.fixture
def models(tmp_path):
    base = llama_tensors(**SHAPE, seed=0)
    write_model(str(tmp_path / "base"), base, max_shard_bytes=800)
    for i in range(3):
        write_model(str(tmp_path / f"e{i}"), llama_tensors(**SHAPE, seed=i + 1, base=base), max_shard_bytes=800)
    return tmp_path


def expect_error(tmp: Path, match: str, spec: MergeSpec, experts=("e0", "e1"), base: str | None = "base"):
    with pytest.raises(MergeInputError, match=match):
        merge_models(spec, str(tmp / base) if base else None, [str(tmp / e) for e in experts], str(tmp / "out"))
    assert not (tmp / "out").exists()
    assert not [p for p in os.listdir(tmp) if "merge-tmp" in p]


def test_mismatched_architecture_names_input_and_key(models):
    cfg = json.loads((models / "e1" / "config.json").read_text())
    (models / "e1" / "config.json").write_text(json.dumps({**cfg, "architectures": ["MistralForCausalLM"]}))
    expect_error(models, r"architecture mismatch, experts\[1\] \(.*e1\).*architectures", MergeSpec(method="ties"))


def test_mismatched_tokenizer(models):
    tok = {**TOKENIZER, "model": {**TOKENIZER["model"], "vocab": {"<unk>": 0, "b": 1}}}
    (models / "e0" / "tokenizer.json").write_text(json.dumps(tok))
    expect_error(models, r"tokenizer mismatch, experts\[0\].*tokenizer.json", MergeSpec(method="task_arithmetic"))


def test_tokenizer_json_formatting_alone_is_not_a_mismatch(models):
    (models / "e0" / "tokenizer.json").write_text(json.dumps(TOKENIZER, indent=None))
    merge_models(MergeSpec(method="task_arithmetic"), str(models / "base"), [str(models / "e0")], str(models / "out"))


def test_shape_mismatch_names_first_tensor(models):
    t = llama_tensors(**SHAPE, seed=9)
    t["model.layers.0.mlp.up_proj.weight"] = torch.zeros(17, 8)
    t["model.layers.0.mlp.down_proj.weight"] = torch.zeros(8, 17)
    write_model(str(models / "bad"), t)
    expect_error(models, r"shape mismatch, experts\[1\].*tensor model.layers.0.mlp.up_proj.weight is \[17, 8\]",
                 MergeSpec(method="linear"), experts=("e0", "bad"), base=None)


def test_missing_and_extra_tensor(models):
    t = llama_tensors(**SHAPE, seed=9)
    del t["lm_head.weight"]
    write_model(str(models / "less"), t)
    expect_error(models, r"experts\[1\] has no tensor lm_head.weight", MergeSpec(method="linear"), experts=("e0", "less"), base=None)
    t = {**llama_tensors(**SHAPE, seed=9), "extra.bias": torch.zeros(2)}
    write_model(str(models / "more"), t)
    expect_error(models, r"experts\[1\] has extra tensor extra.bias", MergeSpec(method="linear"), experts=("e0", "more"), base=None)


def test_missing_shard_names_the_file(models):
    shard = sorted(p for p in os.listdir(models / "e1") if p.endswith(".safetensors"))[1]
    os.remove(models / "e1" / shard)
    expect_error(models, rf"experts\[1\]: missing shard .*e1/{shard}", MergeSpec(method="ties"))


def test_truncated_safetensors_names_the_file_and_tensor(models):
    shard = models / "e0" / sorted(p for p in os.listdir(models / "e0") if p.endswith(".safetensors"))[0]
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 10])
    expect_error(models, rf"experts\[0\]: {shard}: truncated safetensors file: tensor \S+ ends at byte {len(data)}", MergeSpec(method="ties"))


def test_garbage_header(models):
    shard = models / "e0" / sorted(p for p in os.listdir(models / "e0") if p.endswith(".safetensors"))[0]
    shard.write_bytes(b"\x05\x00")
    expect_error(models, rf"experts\[0\]: {shard}: truncated safetensors file", MergeSpec(method="ties"))


def test_missing_config_or_weights(models):
    os.remove(models / "e0" / "config.json")
    expect_error(models, r"experts\[0\]: missing .*e0/config.json", MergeSpec(method="ties"))
    os.makedirs(models / "empty")
    (models / "empty" / "config.json").write_text(json.dumps(CONFIG))
    expect_error(models, r"experts\[1\]: .*empty has neither model.safetensors", MergeSpec(method="ties"), experts=("e1", "empty"))


@pytest.mark.parametrize("spec, experts, base, match", [
    (MergeSpec(method="linear", weights=[0.5, 0.6]), ("e0", "e1"), None, r"weights of a linear merge must sum to 1, got \[0.5, 0.6\]"),
    (MergeSpec(method="linear", weights=[1.0]), ("e0", "e1"), None, r"weights has 1 values for 2 experts"),
    (MergeSpec(method="ties", weights=[1.0, -1.0]), ("e0", "e1"), "base", r"weights of ties must be > 0"),
    (MergeSpec(method="slerp"), ("e0", "e1"), "base", r"slerp merges exactly 2 models .* got 3"),
    (MergeSpec(method="linear"), ("e0",), None, r"linear needs at least 2 experts; got 1"),
    (MergeSpec(method="dare", dare_combine="ties"), ("e0",), "base", r"dare needs at least 2 experts"),
    (MergeSpec(method="ties"), ("e0", "e1"), None, r"ties needs a base model"),
    (MergeSpec(method="ties", overrides=[Override(pattern="*embeddings*", density=0.5)]), ("e0", "e1"), "base", r"overrides\[0\].pattern '\*embeddings\*' matches no tensor"),
])
def test_bad_parameters_fail_before_writing(models, spec, experts, base, match):
    expect_error(models, match, spec, experts=experts, base=base)


@pytest.mark.parametrize("fields, match", [
    (dict(method="ties", density=0.0), r"density\s+Input should be greater than 0"),
    (dict(method="ties", density=1.5), r"density\s+Input should be less than or equal to 1"),
    (dict(method="ties", overrides=[dict(pattern="*norm*", density=-1.0)]), r"overrides\.0\.density\s+Input should be greater"),
    (dict(method="dare", dropRate=1.0), r"dropRate\s+Input should be less than 1"),
    (dict(method="slerp", t=1.5), r"t\s+Input should be less than or equal to 1"),
    (dict(method="frankenmerge"), r"method\s+Input should be 'linear', 'task_arithmetic', 'ties', 'dare' or 'slerp'"),
    (dict(method="ties", lam=float("nan")), r"lam\s+Input should be a finite number"),
])
def test_out_of_range_parameters_are_refused_by_the_generated_spec(fields, match):
    # the bounds are the merge operator's zod bounds, generated into requests.py
    with pytest.raises(ValidationError, match=match):
        MergeSpec(**fields)


def test_all_parameter_problems_are_reported_at_once(models):
    with pytest.raises(MergeInputError) as err:
        merge_models(MergeSpec(method="ties", weights=[1.0], overrides=[Override(pattern="*", weights=[1.0, 2.0, 3.0])]),
                     None, [str(models / "e0"), str(models / "e1")], str(models / "out"))
    msg = str(err.value)
    assert "needs a base model" in msg and "weights has 1 values" in msg and "overrides[0].weights has 3 values" in msg


def test_nonempty_output_is_refused(models):
    (models / "out").mkdir()
    (models / "out" / "keep.txt").write_text("x")
    with pytest.raises(MergeInputError, match="already exists and is not an empty directory"):
        merge_models(MergeSpec(method="ties"), str(models / "base"), [str(models / "e0"), str(models / "e1")], str(models / "out"))
    assert os.listdir(models / "out") == ["keep.txt"]
