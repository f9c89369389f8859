"""Streaming model merging: linear, task arithmetic, TIES, DARE and SLERP over sharded safetensors.

Layout: `safetensors_io` reads (memory-mapped, one tensor at a time) and writes (header first, then bytes) shards;
`model_dir` opens a Hugging Face directory and checks that several of them can be merged; `methods` holds the
pure per-tensor math (fp32 in, fp32 out); `spec` validates the parameters; `engine` ties them together and commits
the output directory atomically.
"""
from .engine import merge_models
from .safetensors_io import MergeInputError
from .spec import MergeSpec, Override

__all__ = ["MergeInputError", "MergeSpec", "Override", "merge_models"]
