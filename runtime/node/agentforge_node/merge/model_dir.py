"""A Hugging Face model directory opened for streaming, and the checks that several of them can be merged.

Every check runs before the first byte is written and raises MergeInputError naming the input (its label, e.g.
"experts[1]") and the first mismatching file or tensor, in the reference model's storage order.
"""
from __future__ import annotations

import hashlib
import json
import os

import torch

from .safetensors_io import DTYPES, MergeInputError, SafetensorsFile, TensorInfo

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
# Config keys that change tensor semantics without changing shapes; the shape check covers the rest.
STRUCTURAL_KEYS = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads",
                   "num_key_value_heads", "head_dim", "intermediate_size", "vocab_size", "tie_word_embeddings",
                   "hidden_act", "rope_theta")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt")


class ModelDir:
    """Weights of one model directory: tensor name → (shard, header entry), in shard-then-offset order."""

    def __init__(self, path: str, label: str) -> None:
        self.path, self.label = path, label
        if not os.path.isdir(path):
            raise MergeInputError(f"{label}: model directory {path} does not exist")
        self.config = self._read_json("config.json")
        self.files: dict[str, SafetensorsFile] = {}
        self.where: dict[str, SafetensorsFile] = {}
        index_path = os.path.join(path, INDEX)
        if os.path.exists(index_path):
            self._open_index(index_path)
        elif os.path.exists(os.path.join(path, SINGLE)):
            f = self._open_shard(SINGLE)
            self.where = {name: f for name in f.tensors}
        else:
            raise MergeInputError(f"{label}: {path} has neither {SINGLE} nor {INDEX}")
        self.names = sorted(self.where, key=lambda n: (list(self.files.values()).index(self.where[n]), self.where[n].tensors[n].begin))

    def _read_json(self, name: str) -> dict:
        p = os.path.join(self.path, name)
        if not os.path.exists(p):
            raise MergeInputError(f"{self.label}: missing {p}")
        try:
            with open(p) as f:
                return json.load(f)
        except json.JSONDecodeError as e:
            raise MergeInputError(f"{self.label}: {p} is not valid JSON ({e})") from None

    def _open_shard(self, name: str) -> SafetensorsFile:
        p = os.path.join(self.path, name)
        if not os.path.exists(p):
            raise MergeInputError(f"{self.label}: missing shard {p} (listed in {INDEX})")
        if name not in self.files:
            try:
                self.files[name] = SafetensorsFile(p)
            except MergeInputError as e:
                raise MergeInputError(f"{self.label}: {e}") from None
        return self.files[name]

    def _open_index(self, index_path: str) -> None:
        weight_map = self._read_json(INDEX).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise MergeInputError(f"{self.label}: {index_path} has no weight_map")
        for name, shard in weight_map.items():
            f = self._open_shard(shard)
            if name not in f.tensors:
                raise MergeInputError(f"{self.label}: {index_path} maps tensor {name} to {f.path}, which does not contain it")
            self.where[name] = f

    def info(self, name: str) -> TensorInfo:
        return self.where[name].tensors[name]

    def tensor(self, name: str) -> torch.Tensor:
        return self.where[name].tensor(name)

    def weight_bytes(self) -> int:
        return sum(f.size for f in self.files.values())

    def fingerprint(self) -> str:
        """Cheap identity of the input: config, tokenizer and every shard's header and size (not the bytes)."""
        h = hashlib.sha256()
        for name in ("config.json", *TOKENIZER_FILES):
            p = os.path.join(self.path, name)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    h.update(name.encode() + b"\0" + f.read())
        for shard, f in sorted(self.files.items()):
            h.update(f"{shard}:{f.size}:".encode())
            h.update(json.dumps({k: [v.dtype, v.shape, v.begin, v.end] for k, v in f.tensors.items()}, sort_keys=True).encode())
        return "sha256:" + h.hexdigest()


def check_compatible(models: list[ModelDir]) -> None:
    """Same architecture, tokenizer, tensor names and shapes as models[0]; raises on the first difference."""
    ref = models[0]
    for m in models[1:]:
        where = f"{m.label} ({m.path}) vs {ref.label} ({ref.path})"
        for key in STRUCTURAL_KEYS:
            if ref.config.get(key) != m.config.get(key):
                raise MergeInputError(f"architecture mismatch, {where}: config.json {key} is {m.config.get(key)!r}, expected {ref.config.get(key)!r}")
        for name in TOKENIZER_FILES:
            if _file_digest(ref.path, name) != _file_digest(m.path, name):
                raise MergeInputError(f"tokenizer mismatch, {where}: {name} differs")
        for name in ref.names:
            if name not in m.where:
                raise MergeInputError(f"tensor names differ, {where}: {m.label} has no tensor {name}")
            a, b = ref.info(name), m.info(name)
            if a.shape != b.shape:
                raise MergeInputError(f"shape mismatch, {where}: tensor {name} is {list(b.shape)}, expected {list(a.shape)}")
            if DTYPES[a.dtype].is_floating_point != DTYPES[b.dtype].is_floating_point:
                raise MergeInputError(f"dtype mismatch, {where}: tensor {name} is {b.dtype}, expected {a.dtype}")
        extra = [n for n in m.names if n not in ref.where]
        if extra:
            raise MergeInputError(f"tensor names differ, {where}: {m.label} has extra tensor {extra[0]}")


def _file_digest(path: str, name: str) -> str | None:
    """Parsed-JSON digest for JSON files (formatting may differ between exports), raw bytes otherwise."""
    p = os.path.join(path, name)
    if not os.path.exists(p):
        return None
    with open(p, "rb") as f:
        raw = f.read()
    if name.endswith(".json"):
        try:
            raw = json.dumps(json.loads(raw), sort_keys=True).encode()
        except json.JSONDecodeError:
            pass
    return hashlib.sha256(raw).hexdigest()
