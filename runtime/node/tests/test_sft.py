"""SFT: loss falls, packing equals one-by-one, bad inputs fail with a clear error."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agentforge_node.sft import TokenLoss, token_losses
from agentforge_node.modeling import load_model
from agentforge_node.requests.train_sft import TrainSftRequest
from agentforge_node.sft import train
from agentforge_node.shards import load_rows, micro_batches

from conftest import TINY, Recorder, _row, counting_sample, write_shards


def sft(tiny_model, shards, out, **kw) -> tuple[dict, Recorder]:
    base = dict(model_dir=str(tiny_model), shards=[str(shards)], out_dir=str(out), batch_size=4, micro_batch_size=2,
                lr=3e-3, warmup_steps=2, max_steps=12, device="cpu")
    base.update(kw)
    rec = Recorder()
    return train(TrainSftRequest.model_validate(base), rec), rec


def test_loss_falls_and_metrics_stream(tiny_model, tiny_shards, tmp_path):
    result, rec = sft(tiny_model, tiny_shards, tmp_path / "out", max_steps=25, tensorboard_dir=str(tmp_path / "tb"))
    losses = result["losses"]
    assert len(losses) == 25
    assert np.mean(losses[-3:]) < 0.8 * np.mean(losses[:3]), losses
    assert rec.metrics("loss") == losses
    assert len(rec.metrics("lr")) == 25 and len(rec.metrics("grad_norm")) == 25
    assert all(v > 0 for v in rec.metrics("tokens_per_s"))
    assert list((tmp_path / "tb").glob("events.out.tfevents.*")), "no TensorBoard event file"
    trained = load_model(tmp_path / "out")
    assert (tmp_path / "out" / "tokenizer.json").exists()
    assert trained.config.vocab_size == TINY["vocab_size"]


def test_unpacked_micro_batches_train_the_same_predictions(tiny_model):
    # The trainer's batches: samples unpacked from their rows, sorted by length, right-padded, causal attention.
    model = load_model(tiny_model).eval()
    lm = TokenLoss(model)
    rng = np.random.default_rng(4)
    samples = [counting_sample(rng, TINY["vocab_size"]) for _ in range(7)]
    rows = write_shards_rows([_row(samples[:3], 2), _row(samples[3:5], 2), _row(samples[5:], 2)])
    batches = micro_batches(rows, 2, pad_id=0)
    assert len(batches) == 2
    assert [b.input_ids.shape[0] for b in batches] == [3, 4]
    lengths = [int(b.target_mask.sum(1).max()) for b in batches]
    assert lengths == sorted(lengths)  # shortest samples together
    with torch.no_grad():
        a = torch.cat([token_losses(lm, b) for b in batches])
        b = torch.cat([one_by_one(model, s, prompt=2) for s in samples])
    assert a.numel() == b.numel() == sum(r.targets for r in rows)
    torch.testing.assert_close(a.sort().values, b.sort().values, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.sum(), b.sum(), atol=1e-4, rtol=1e-5)


def one_by_one(model, sample, prompt):
    ids = torch.as_tensor(sample)[None]
    logits = model(input_ids=ids).logits[0, :-1]
    return torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")[prompt - 1:]


def write_shards_rows(rows):
    from agentforge_node.shards import _make_row

    return [_make_row(r, f"row {i}", TINY["vocab_size"], 256) for i, r in enumerate(rows)]


def test_bad_shards_fail_with_where(tiny_model, tmp_path):
    rng = np.random.default_rng(1)
    long = _row([np.full(300, 9)], 0)
    path = write_shards(tmp_path / "long.parquet", [_row([counting_sample(rng, 300)], 2), long])
    with pytest.raises(ValueError, match=r"long.parquet row 1: sequence of 300 tokens is longer than max length 256"):
        load_rows([str(path)], 300, 256)
    oov = write_shards(tmp_path / "oov.parquet", [_row([np.array([7, 8, 400])], 0)])
    with pytest.raises(ValueError, match=r"oov.parquet row 0: token id 400 .* outside the model's vocabulary"):
        load_rows([str(oov)], 300, 256)
    empty = write_shards(tmp_path / "empty.parquet", [])
    with pytest.raises(ValueError, match="empty dataset"):
        load_rows([str(empty)], 300, 256)
    with pytest.raises(ValueError, match="empty dataset"):
        sft(tiny_model, empty, tmp_path / "o")


def test_vocab_mismatch_is_refused(tiny_model, tmp_path):
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_model, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["vocab_size"] = 200
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(Exception, match=r"tokenizer.json has 300 ids but config.json vocab_size is 200"):
        load_model(bad)


def test_nan_loss_stops_and_keeps_last_checkpoint(tiny_model, tiny_shards, tmp_path, monkeypatch):
    monkeypatch.setenv("AGENTFORGE_FAULT_NAN_AT_STEP", "6")
    ckpt = tmp_path / "ckpt"
    with pytest.raises(FloatingPointError, match=r"non-finite loss.* step 6.*checkpoint \(step 4\) is kept"):
        sft(tiny_model, tiny_shards, tmp_path / "out", checkpoint_dir=str(ckpt), checkpoint_every=2)
    assert sorted(p.name for p in ckpt.iterdir()) == ["step-000002.pt", "step-000004.pt"]
    assert not (tmp_path / "out").exists()
