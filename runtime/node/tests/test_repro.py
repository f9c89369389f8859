"""Reproducibility across machines: the same short SFT gives the same weights on every x86-64 machine.

agentforge_node/__init__.py pins torch's CPU kernels to AVX2 (AVX-512 and the portable kernels sum in other orders,
so the same run gave three different weight hashes under the three). The hashes below were recorded under that pin;
a change to them means training numerics changed (a kernel, an op order, a default): say so in the README's tables.
"""
from __future__ import annotations

import hashlib
import os
import platform

import pytest
import torch

from test_sft import sft

PINNED = {"init": "645a39b200be", "sft": "30bc2446f2de"}


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64")
    or os.environ.get("AGENTFORGE_CPU_CAPABILITY", "avx2") != "avx2"
    or torch.backends.cpu.get_cpu_capability() != "AVX2",
    reason="the pinned hashes hold for torch's AVX2 kernels on x86-64 (AGENTFORGE_CPU_CAPABILITY unset)")


def test_short_sft_has_the_pinned_weights(tiny_model, tiny_shards, tmp_path):
    assert sha(tiny_model / "model.safetensors") == PINNED["init"]
    sft(tiny_model, tiny_shards, tmp_path / "out", max_steps=6)
    assert sha(tmp_path / "out" / "model.safetensors") == PINNED["sft"]
