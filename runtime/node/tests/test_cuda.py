"""The CUDA path (bf16 autocast, fused AdamW, CUDA RNG in checkpoints). Skipped where torch sees no GPU, so CI
(CPU only) reports these as skipped; runtime/node/bench/device_check.sh runs them on a lent GPU machine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agentforge_node.rl_trainer import RlTrainer

from conftest import Recorder
from nodeproc import result_of, run_node
from test_resume_ddp import request, straight_and_resumed, weights
from test_train_rl import make_rollouts, request as rl_request, weights as rl_weights

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")


def test_sft_on_cuda_learns_in_bf16_and_tracks_cpu(tiny_model, tiny_shards, tmp_path):
    rc, events, err = run_node("train-sft", request(tiny_model, tiny_shards, tmp_path / "gpu", max_steps=25,
                                                        device="cuda"))
    assert rc == 0, err
    gpu = result_of(events)
    assert gpu["device"].startswith("cuda") and gpu["peak_memory_bytes"] > 0
    assert np.mean(gpu["losses"][-3:]) < 0.8 * np.mean(gpu["losses"][:3]), gpu["losses"]
    peaks = {e["name"]: e["value"] for e in events if e["event"] == "metric" and e["name"].startswith("worker_peak")}
    assert peaks["worker_peak_cuda_bytes"] > 0 and peaks["worker_peak_rss_bytes"] > 0, peaks
    rc, events, err = run_node("train-sft", request(tiny_model, tiny_shards, tmp_path / "cpu", max_steps=25,
                                                        device="cpu"))
    assert rc == 0, err
    cpu = result_of(events)
    # CUDA is never initialised on a CPU run, so it reports no CUDA peak
    assert not [e for e in events if e["event"] == "metric" and e["name"] == "worker_peak_cuda_bytes"]
    # bf16 autocast vs fp32: the first loss (same weights, same batch) agrees to bf16 precision.
    assert gpu["losses"][0] == pytest.approx(cpu["losses"][0], rel=2e-2)
    assert all(t.dtype == torch.float32 for t in weights(tmp_path / "gpu").values()), \
        "master weights must be saved in fp32"


def test_cuda_killed_run_resumes_to_the_same_weights(tiny_model, tiny_shards, tmp_path):
    straight, resumed = straight_and_resumed(tiny_model, tiny_shards, tmp_path, device="cuda")
    np.testing.assert_allclose(resumed["losses"], straight["losses"][8:], rtol=1e-5, atol=1e-6)
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"max |straight - resumed| on CUDA: {worst:.3g}")
    assert worst <= 1e-5


def test_rl_step_on_cuda_matches_cpu(tiny_model):
    rows = make_rollouts(tiny_model, noise=0.2)
    results = {}
    for device in ("cpu", "cuda"):
        trainer = RlTrainer(rl_request(tiny_model, device=device), Recorder())
        before = rl_weights(trainer.model)
        res = trainer.handle(rl_request(tiny_model, device=device, step=1, samples=rows))
        after = rl_weights(trainer.model)
        assert all(not torch.equal(before[k], after[k]) for k in before)
        results[device] = res["metrics"]
    c, g = results["cpu"], results["cuda"]
    assert g["tokens"] == c["tokens"] and g["samples"] == c["samples"]
    assert g["entropy"] == pytest.approx(c["entropy"], rel=2e-2)
    assert g["mismatch_kl"] == pytest.approx(c["mismatch_kl"], abs=2e-2)


def test_cuda_placement_turns_off_per_shape_cudnn_attention():
    from agentforge_node.device import pick_device
    torch.backends.cuda.enable_cudnn_sdp(True)
    pick_device("cuda")
    # Micro-batches change shape every step; cuDNN would plan each one (device_check.sh measures the cost).
    assert not torch.backends.cuda.cudnn_sdp_enabled()
    q = torch.randn(3, 4, 37, 32, device="cuda", dtype=torch.bfloat16)
    out = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert out.shape == q.shape and torch.isfinite(out).all()


def test_lora_with_checkpointing_on_cuda_tracks_cpu_and_peaks_lower(tiny_model, tiny_shards, tmp_path):
    """LoRA + gradient checkpointing under bf16 autocast: learns, tracks fp32 CPU on the first loss, saves fp32
    merged weights + adapter, and its CUDA peak is below the same LoRA run without checkpointing."""
    lora = dict(r=4, alpha=8)
    runs = {}
    for name, kw in {"gc": dict(device="cuda", gradient_checkpointing=True), "plain": dict(device="cuda"),
                     "cpu": dict(device="cpu")}.items():
        rc, events, err = run_node("train-sft", request(tiny_model, tiny_shards, tmp_path / name, max_steps=12,
                                                            lr=1e-2, lora=lora, **kw))
        assert rc == 0, err
        runs[name] = result_of(events)
    assert runs["gc"]["losses"][0] == pytest.approx(runs["cpu"]["losses"][0], rel=2e-2)
    assert runs["gc"]["losses"][-1] < runs["gc"]["losses"][0]
    print(f"CUDA peak: LoRA {runs['plain']['peak_memory_bytes']} B, LoRA + checkpointing {runs['gc']['peak_memory_bytes']} B")
    assert runs["gc"]["peak_memory_bytes"] < runs["plain"]["peak_memory_bytes"]
    assert all(t.dtype == torch.float32 for t in weights(tmp_path / "gc").values())
    assert (tmp_path / "gc" / "adapter" / "adapter_config.json").exists()
