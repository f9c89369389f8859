"""The streaming engine end to end: real sharded safetensors in, a complete HF directory out, atomically."""
from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from agentforge_node.merge import MergeSpec, Override, merge_models
from merge_fixtures import llama_tensors, write_model
from agentforge_node.merge.model_dir import ModelDir

ROOT = Path(__file__).resolve().parents[1]
SHAPE = dict(hidden=8, layers=2, inter=16, vocab=32)


def family(tmp: Path, dtype=torch.float32, n_experts=2):
    """A base and experts = base + noise, each saved with a different shard layout."""
    base = llama_tensors(**SHAPE, seed=0, dtype=dtype)
    experts = [llama_tensors(**SHAPE, seed=i + 1, dtype=dtype, base=base) for i in range(n_experts)]
    write_model(str(tmp / "base"), base, max_shard_bytes=1500)
    for i, e in enumerate(experts):
        write_model(str(tmp / f"e{i}"), e, max_shard_bytes=700 * (i + 1))
    return base, experts


def load_dir(path: Path) -> dict[str, torch.Tensor]:
    m = ModelDir(str(path), "out")
    return {n: m.tensor(n).clone() for n in m.names}


def test_linear_streams_sharded_inputs_into_sharded_output(tmp_path):
    base, (e0, e1) = family(tmp_path)
    rec = merge_models(MergeSpec(method="linear", weights=[0.25, 0.75], max_shard_bytes=1000),
                       None, [str(tmp_path / "e0"), str(tmp_path / "e1")], str(tmp_path / "out"))
    out = tmp_path / "out"
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2 and set(index["weight_map"]) == set(base)
    merged = load_dir(out)
    for name in base:
        torch.testing.assert_close(merged[name], 0.25 * e0[name] + 0.75 * e1[name], rtol=0, atol=1e-6)
    # the official reader agrees with ours on every shard we wrote
    for shard in set(index["weight_map"].values()):
        for name, t in load_file(str(out / shard)).items():
            assert torch.equal(t, merged[name])
    for aux in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (out / aux).read_bytes() == (tmp_path / "e0" / aux).read_bytes()
    assert rec["tensors"] == len(base) and rec["inputs"][0]["fingerprint"].startswith("sha256:")
    assert not [p for p in os.listdir(tmp_path) if "merge-tmp" in p]
    assert rec["seconds_statistics"] == 0  # one pass: nothing to compute before the output


def test_record_times_the_statistics_pass_of_two_pass_methods(tmp_path):
    family(tmp_path)
    experts = [str(tmp_path / "e0"), str(tmp_path / "e1")]
    ties = merge_models(MergeSpec(method="ties", density=0.5), str(tmp_path / "base"), experts, str(tmp_path / "ties"))
    ta = merge_models(MergeSpec(method="task_arithmetic"), str(tmp_path / "base"), experts, str(tmp_path / "ta"))
    assert 0 < ties["seconds_statistics"] < ties["seconds"]
    assert ta["seconds_statistics"] == 0


def test_weights_one_zero_reproduce_first_model_files_exactly(tmp_path):
    base, (e0, _) = family(tmp_path, dtype=torch.bfloat16)
    merge_models(MergeSpec(method="linear", weights=[1.0, 0.0]), None, [str(tmp_path / "e0"), str(tmp_path / "e1")], str(tmp_path / "out"))
    merged = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert all(merged[n].dtype == torch.bfloat16 and torch.equal(merged[n].view(torch.int16), e0[n].view(torch.int16)) for n in e0)


def test_overrides_apply_per_tensor_by_glob(tmp_path):
    base, (e0,) = family(tmp_path, n_experts=1)
    spec = MergeSpec(method="slerp", t=0.5, overrides=[Override(pattern="*norm*", t=0.0), Override(pattern="model.embed_tokens.*", t=1.0)])
    rec = merge_models(spec, str(tmp_path / "base"), [str(tmp_path / "e0")], str(tmp_path / "out"))
    merged = load_dir(tmp_path / "out")
    assert torch.equal(merged["model.norm.weight"], base["model.norm.weight"])
    assert torch.equal(merged["model.embed_tokens.weight"], e0["model.embed_tokens.weight"])
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged[q], base[q]) and not torch.equal(merged[q], e0[q])
    assert rec["override_hits"] == {"*norm*": 5, "model.embed_tokens.*": 1}


def test_output_dtype_is_explicit(tmp_path):
    family(tmp_path, dtype=torch.bfloat16)
    merge_models(MergeSpec(method="task_arithmetic"), str(tmp_path / "base"), [str(tmp_path / "e0")], str(tmp_path / "same"))
    merge_models(MergeSpec(method="task_arithmetic", dtype="float32"), str(tmp_path / "base"), [str(tmp_path / "e0")], str(tmp_path / "f32"))
    assert {t.dtype for t in load_file(str(tmp_path / "same" / "model.safetensors")).values()} == {torch.bfloat16}
    assert {t.dtype for t in load_file(str(tmp_path / "f32" / "model.safetensors")).values()} == {torch.float32}
    assert json.loads((tmp_path / "f32" / "config.json").read_text())["torch_dtype"] == "float32"


def test_dare_merge_is_reproducible_byte_for_byte(tmp_path):
    family(tmp_path)
    ins = [str(tmp_path / "e0"), str(tmp_path / "e1")]
    for out, seed in (("a", 5), ("b", 5), ("c", 6)):
        merge_models(MergeSpec(method="dare", drop_rate=0.5, dare_combine="ties", seed=seed), str(tmp_path / "base"), ins, str(tmp_path / out))
    read = lambda d: (tmp_path / d / "model.safetensors").read_bytes()
    assert read("a") == read("b") and read("a") != read("c")


def test_merged_directory_loads_in_transformers(tmp_path):
    from transformers import AutoModelForCausalLM
    base, experts = family(tmp_path)
    merge_models(MergeSpec(method="ties", density=0.5), str(tmp_path / "base"), [str(tmp_path / "e0"), str(tmp_path / "e1")], str(tmp_path / "out"))
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    logits = model(torch.tensor([[1, 2, 3]])).logits
    assert logits.shape == (1, 3, SHAPE["vocab"]) and torch.isfinite(logits).all()


KILL_SCRIPT = """
import sys
from agentforge_node.merge import MergeSpec, merge_models
def progress(done, total):
    sys.stdout.write(f"tensor {done}/{total} " + "x" * 200 + "\\n"); sys.stdout.flush()
merge_models(MergeSpec(method="linear"), None, sys.argv[2:], sys.argv[1], on_progress=progress)
"""


def test_merge_killed_mid_write_leaves_no_artifact(tmp_path):
    # The child blocks on its stdout part-way through the shards (deterministically: the test never reads it).
    child, r = _blocked_child(tmp_path, [sys.executable, "-c", KILL_SCRIPT])
    child.send_signal(signal.SIGKILL)
    child.wait()
    os.close(r)
    assert not (tmp_path / "out").exists()


def _blocked_child(tmp_path: Path, argv: list[str], stdin: str | None = None) -> tuple[subprocess.Popen, int]:
    """Starts a merge whose stdout is a 4 KB pipe nobody reads, and waits until its first shard has bytes."""
    many = {f"t{i}": torch.full((64,), float(i)) for i in range(400)}
    ins = [write_model(str(tmp_path / f"m{i}"), {k: v + i for k, v in many.items()}) for i in range(2)]
    r, w = os.pipe()
    fcntl.fcntl(w, 1031, 4096)  # F_SETPIPE_SZ: ~60 progress lines fill it, long before 400 tensors are done
    child = subprocess.Popen([*argv, *([] if stdin is not None else [str(tmp_path / "out"), *ins])],
                             stdin=subprocess.PIPE if stdin is not None else None, stdout=w, cwd=ROOT, text=True)
    if stdin is not None:
        child.stdin.write(stdin.replace("INPUTS", json.dumps(ins)))
        child.stdin.close()
    os.close(w)
    deadline = time.time() + 60
    while time.time() < deadline:
        tmps = [p for p in tmp_path.iterdir() if "merge-tmp" in p.name]
        if tmps and any(f.stat().st_size > 0 for f in tmps[0].iterdir()):
            break
        time.sleep(0.02)
    time.sleep(0.2)
    assert child.poll() is None, "merge finished before it could be stopped"
    return child, r


def test_merge_stopped_by_sigterm_cleans_its_temp_dir(tmp_path):
    # SIGTERM is how the TS client cancels a node: the command stops at the next tensor and the engine cleans up.
    req = json.dumps({"method": "linear", "experts": "INPUTS", "out": str(tmp_path / "out")}).replace('"INPUTS"', "INPUTS")
    child, r = _blocked_child(tmp_path, [sys.executable, "-m", "agentforge_node", "merge"], stdin=req)
    child.send_signal(signal.SIGTERM)
    with os.fdopen(r, "rb") as pipe:  # drain, so the blocked progress write returns and the flag is seen
        events = [json.loads(line) for line in pipe.read().decode().splitlines()]
    assert child.wait(timeout=60) == 1
    assert events[-1]["event"] == "error" and "cancelled by SIGTERM" in events[-1]["message"]
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if "merge-tmp" in p.name]


def test_bad_override_in_request_names_its_index(tmp_path):
    from pydantic import ValidationError

    from agentforge_node.requests.merge import MergeRequest
    with pytest.raises(ValidationError, match=r"(?s)overrides\.1\.densty\s+Extra inputs are not permitted"):
        MergeRequest.model_validate({"method": "ties", "experts": ["a", "b"], "out": str(tmp_path / "o"),
                                     "overrides": [{"pattern": "*norm*"}, {"pattern": "*x*", "densty": 0.5}]})


def test_protocol_command_streams_progress_and_returns_record(tmp_path):
    family(tmp_path)
    req = {"method": "ties", "base": str(tmp_path / "base"), "experts": [str(tmp_path / "e0"), str(tmp_path / "e1")],
           "out": str(tmp_path / "out"), "density": 0.5, "overrides": [{"pattern": "*norm*", "density": 1.0}]}
    proc = subprocess.run([sys.executable, "-m", "agentforge_node", "merge"], input=json.dumps(req), text=True,
                          capture_output=True, cwd=ROOT, timeout=120)
    events = [json.loads(line) for line in io.StringIO(proc.stdout)]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 21 and progress[-1]["unit"] == "tensors"
    result = events[-1]
    assert result["event"] == "result" and result["value"]["method"] == "ties"
    assert result["value"]["params"]["overrides"] == [{"pattern": "*norm*", "weights": None, "lam": None, "density": 1.0, "drop_rate": None, "t": None}]
    assert (tmp_path / "out" / "model.safetensors").exists()


def test_diagnostics_count_kept_elements_and_sign_agreement_by_hand(tmp_path):
    """δ₀ = [1, 2, −3, 0], δ₁ = [−1, 2, 3, 4] at density 0.5 (top 2 of 4): kept δ₀ = [0, 2, −3, 0] (cut 2),
    δ₁ = [0, 0, 3, 4] (cut 3): 4 of 8 kept. Element 0 keeps nothing; 1 and 3 agree; at 2 the mass −3 + 3 = 0
    elects +, which −3 contradicts: 2 of the 3 elements with a kept δ agree. `same` has equal magnitudes, all tied
    at the threshold and so all kept, with one sign."""
    base = {"w": torch.zeros(4), "same": torch.zeros(4)}
    write_model(str(tmp_path / "base"), base)
    write_model(str(tmp_path / "e0"), {"w": torch.tensor([1.0, 2.0, -3.0, 0.0]), "same": torch.ones(4)})
    write_model(str(tmp_path / "e1"), {"w": torch.tensor([-1.0, 2.0, 3.0, 4.0]), "same": torch.full((4,), 2.0)})
    ins = [str(tmp_path / "e0"), str(tmp_path / "e1")]
    rec = merge_models(MergeSpec(method="ties", density=0.5), str(tmp_path / "base"), ins, str(tmp_path / "ties"))
    assert rec["diagnostics"] == [{"tensor": "w", "kept_fraction": 0.5, "sign_agreement": 2 / 3},
                                  {"tensor": "same", "kept_fraction": 1.0, "sign_agreement": 1.0}]
    assert merge_models(MergeSpec(method="linear"), None, ins, str(tmp_path / "linear"))["diagnostics"] == []


def test_dare_diagnostics_count_the_coins_that_keep_an_element(tmp_path):
    """Every δ is nonzero, so DARE's kept fraction is the share of coins ≥ the cutoff, drawn here independently
    with kernels.coins from each expert's key; the kernel counts it while dropping."""
    import numpy as np
    from agentforge_node.merge import kernels
    from agentforge_node.merge.methods import _key
    n, p = 5000, 0.3
    write_model(str(tmp_path / "base"), {"w": torch.zeros(n)})
    for i in range(2):
        write_model(str(tmp_path / f"e{i}"), {"w": torch.full((n,), 1.0 + i)})
    ins = [str(tmp_path / "e0"), str(tmp_path / "e1")]
    cutoff = int(np.ceil(float(np.float32(p)) * (1 << 24)))
    kept = [(kernels.coins(_key(7, "w", i), np.arange(n, dtype=np.int64)) >= cutoff).sum() for i in range(2)]
    expected = (kept[0] + kept[1]) / (2 * n)
    assert 0.65 < expected < 0.75
    linear = merge_models(MergeSpec(method="dare", drop_rate=p, seed=7), str(tmp_path / "base"), ins, str(tmp_path / "l"))
    assert linear["diagnostics"] == [{"tensor": "w", "kept_fraction": expected}]
    # with TIES on top (density 1: no trim) the same elements are kept, and all δ are positive: full agreement
    ties = merge_models(MergeSpec(method="dare", drop_rate=p, dare_combine="ties", seed=7), str(tmp_path / "base"), ins, str(tmp_path / "t"))
    assert ties["diagnostics"] == [{"tensor": "w", "kept_fraction": expected, "sign_agreement": 1.0}]
