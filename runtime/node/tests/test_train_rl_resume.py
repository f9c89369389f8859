"""Resume exactness through the real `python -m agentforge_node.rl_session` child: K steps in one session give the
same weights as k steps, SIGKILL, a new session that resumes from the last checkpoint and replays the rest; a
replayed step is skipped (never counted twice) and a gap is refused."""
from __future__ import annotations

import json
import subprocess
import sys

from safetensors.torch import load_file

from nodeproc import ROOT, node_env
from test_train_rl import make_rollouts


class Session:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "agentforge_node.rl_session"], cwd=ROOT, env=node_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def send(self, req: dict) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            ev = json.loads(line)
            if ev["event"] == "error":
                return ev
            if ev["event"] == "result":
                return ev["value"]
        raise AssertionError(f"session ended without a result: {self.proc.stderr.read()[-2000:]}")

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(60)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_kill_resume_gives_identical_weights(tiny_model, tmp_path):
    a, b = Session(), Session()  # both start (import torch) while the rollouts are made
    rows = make_rollouts(tiny_model, groups=8, n=3, seed=1, noise=0.2)
    base = dict(model_dir=str(tiny_model), lr=1e-3, micro_batch_size=3, checkpoint_every=2, device="cpu",
                eps_high=0.28, mini_batches=2)

    def step(s: Session, v: int, ckpt, **kw) -> dict:
        return s.send(dict(base, checkpoint_dir=str(ckpt), step=v, samples=rows[(v - 1) * 6:v * 6], **kw))

    for v in range(1, 5):
        res = step(a, v, tmp_path / "ckpt-a", save_dir=str(tmp_path / "a") if v == 4 else None)
        assert res["step"] == v, res
    assert a.close() == 0

    for v in range(1, 4):
        assert step(b, v, tmp_path / "ckpt-b")["step"] == v
    b.kill()  # step 3 was trained but not checkpointed (every 2): it is lost and must be redone

    c = Session()
    st = c.send(dict(base, op="state", checkpoint_dir=str(tmp_path / "ckpt-b")))
    assert st["step"] == 2 and st["resumed_from"] == 2 and st["metrics"] == {}
    replay = step(c, 2, tmp_path / "ckpt-b")
    assert replay["skipped"] and replay["step"] == 2  # a replayed step is not counted twice
    assert step(c, 3, tmp_path / "ckpt-b")["step"] == 3
    last = step(c, 4, tmp_path / "ckpt-b", save_dir=str(tmp_path / "b"))
    assert last["step"] == 4 and last["checkpoint"].endswith("step-000004.pt")
    assert c.close() == 0

    wa, wb = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        assert (wa[k] == wb[k]).all(), f"{k} differs after resume"


def test_bad_request_line_is_an_error_event():
    s = Session()
    ev = s.send({"model_dir": "/nonexistent", "eps_low": "x"})
    assert ev["event"] == "error" and "eps_low" in ev["message"] and "line 1" in ev["message"]
    assert s.proc.wait(60) == 2
