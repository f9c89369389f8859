"""Runs the node as a real child process over the JSON-lines protocol (what the TS client does)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


def node_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), AGENTFORGE_TORCH_THREADS="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    env.pop("AGENTFORGE_FAULT_NAN_AT_STEP", None)
    env.update(extra)
    return env


def run_node(command: str, request: dict, kill_when: Callable[[dict], bool] | None = None,
             argv_prefix: list[str] | None = None, request_file: Path | None = None) -> tuple[int, list[dict], str]:
    """Returns (exit code, events, stderr). `kill_when(event)` true -> SIGKILL the child right there."""
    if request_file is not None:
        request_file.write_text(json.dumps(request))
        args = (argv_prefix or [sys.executable, "-m"]) + ["agentforge_node", command, "--request", str(request_file)]
    else:
        args = [sys.executable, "-m", "agentforge_node", command]
    proc = subprocess.Popen(args, cwd=ROOT, env=node_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if request_file is None:
        proc.stdin.write(json.dumps(request))
    proc.stdin.close()
    events: list[dict] = []
    for line in proc.stdout:
        event = json.loads(line)  # every stdout line must be one protocol event
        events.append(event)
        if kill_when is not None and kill_when(event):
            proc.kill()
            break
    proc.wait()
    return proc.returncode, events, proc.stderr.read()


def result_of(events: list[dict]) -> dict:
    results = [e for e in events if e["event"] == "result"]
    errors = [e for e in events if e["event"] == "error"]
    assert not errors, errors[0]["message"] + "\n" + errors[0].get("traceback", "")
    assert len(results) == 1, events[-3:]
    return results[0]["value"]


TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m"]
# gloo on CPU: now and then a rank aborts in its thread destructors at exit after a complete run, also after a
# closing barrier and os._exit (distributed.shutdown). Known, left open (session 11's closing note); the tests accept
# exactly that exit, after the result, and nothing else.
TEARDOWN_ABORT = "terminate called without an active exception"


def exit_ok(rc: int, err: str, finished: bool) -> bool:
    return rc == 0 or (finished and TEARDOWN_ABORT in err and "SIGABRT" in err)


def torchrun_result(command: str, request: dict, request_file: Path) -> dict:
    """Runs a node command on 2 torchrun processes; its result (rank 0's)."""
    rc, events, err = run_node(command, request, argv_prefix=TORCHRUN, request_file=request_file)
    assert exit_ok(rc, err, any(e.get("event") == "result" for e in events)), err[-4000:]
    return result_of(events)
