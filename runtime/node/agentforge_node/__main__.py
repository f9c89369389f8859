"""Entry point: `python -m agentforge_node <command>` with one JSON request on stdin.

Dispatches to module agentforge_node.commands.<command, '-' -> '_'>, whose `run(req, emit) -> dict` gets the
request validated as the command's generated model (agentforge_node/requests/<command>.py, from the TS zod schema). Exit codes: 0 after a result, 1 after an error event, 2 for a malformed invocation.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

# Progress bars and advisory warnings from HF libraries only clutter the stderr tail shown on failure.
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pydantic import ValidationError

from .protocol import Emitter


def protocol_stream():
    """Moves the protocol to a private dup of fd 1 and points fd 1 (and sys.stdout) at stderr.

    Library chatter - Python prints, transformers warnings, and C/C++ code writing to fd 1 directly - then lands
    in the stderr tail the TS side shows on failure, and can never corrupt the JSON-lines stream.
    """
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", buffering=1, encoding="utf-8")


USAGE = "usage: python -m agentforge_node <command> [--request file.json]  (else the request JSON comes on stdin)"


def main(argv: list[str]) -> int:
    # Under torchrun only rank 0 speaks the protocol; other ranks' events go to stderr for debugging.
    rank = int(os.environ.get("RANK", "0"))
    emit = Emitter(protocol_stream() if rank == 0 else sys.stderr)
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--request"):
        emit.error(USAGE)
        return 2
    command = argv[0]
    request_file = argv[2] if len(argv) == 3 else None
    module_name = command.replace("-", "_")
    try:
        mod = importlib.import_module(f"agentforge_node.commands.{module_name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.endswith(f"commands.{module_name}"):
            emit.error(f"unknown command '{command}' (no module agentforge_node/commands/{module_name}.py)")
            return 2
        emit.error(f"command '{command}' failed to import: {e}", traceback.format_exc())
        return 1
    try:
        # torchrun does not forward stdin to its workers, so multi-process runs pass the request as a file.
        raw = open(request_file, encoding="utf-8").read() if request_file else sys.stdin.read()
        data = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, OSError) as e:
        emit.error(f"request ({request_file or 'stdin'}) is not readable JSON: {e}")
        return 2
    try:
        req = importlib.import_module(f"agentforge_node.requests.{module_name}").Request.model_validate(data)
    except ValidationError as e:
        emit.error(f"invalid {command} request: {e}")
        return 2
    try:
        value = mod.run(req, emit)
    except Exception as e:  # noqa: BLE001 - every failure becomes one error event with its traceback
        emit.error(f"{type(e).__name__}: {e}", traceback.format_exc())
        end_ranks(False)
        return 1
    emit.result(value if value is not None else {})
    end_ranks(True)
    return 0


def end_ranks(ok: bool) -> None:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torch loads only under torchrun here
        from .distributed import shutdown

        shutdown(ok)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
