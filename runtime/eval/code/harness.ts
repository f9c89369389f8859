/*
 * The trusted test harness for code tasks. A pass used to be "the program exited 0", which a candidate can forge
 * (os._exit(0), sys.exit(0) in a finally, an atexit hook, a patched module the tests rely on). Now:
 *
 *  - The harness (HARNESS, the sandbox's program) reads a per-run random nonce from stdin before any candidate code
 *    exists, then makes itself non-dumpable (no ptrace, no /proc/<pid>/mem or fd access for its own uid).
 *  - HumanEval and MBPP ("rpc" mode): the candidate runs in a separate process (HOST) and only its return values
 *    cross back, as plain data decoded by the harness (lists, dicts, numbers, … — never objects with methods). The
 *    tests themselves run in the harness, against its own unpatched modules, so the candidate can neither skip an
 *    assert, patch what the asserts use, nor return an object whose __eq__ always says yes.
 *  - QuixBugs ("inprocess" mode): its tests pass object graphs (Node) to the candidate, so candidate and tests share
 *    the harness's interpreter. Exits, SystemExit and exceptions cannot forge a pass there either, but a candidate
 *    written against this harness could read the nonce out of the interpreter's memory: a weaker guarantee.
 *  - Only after the last check passed does the harness print `AGENTFORGE-PASS <nonce>` on its stdout; a pass is
 *    that exact line plus exit 0 (evaluate.ts). The candidate's process never holds the nonce and never holds the
 *    harness's stdout.
 */

export const PROOF_PREFIX = 'AGENTFORGE-PASS ';
export const TASK_FILE = 'agentforge_task.json';
export const HARNESS_FILE = 'agentforge_harness.py';
export const HOST_FILE = 'agentforge_host.py';

/** What the harness is told about one run (written as TASK_FILE, read by the harness before the candidate runs). */
export type HarnessSpec =
  | {
    mode: 'rpc';
    /** Candidate code, executed in the candidate process. */
    program: string;
    /** Trusted code executed in the harness before the tests (HumanEval: the prompt's helpers; MBPP: test imports). */
    setup: string;
    /** Trusted test code executed in the harness. */
    test: string;
    /**
     * Names the tests call that the candidate defines: each becomes a stub that calls into the candidate process.
     * With `freeNames`, every name the tests read but neither they, the setup nor Python's builtins define is added.
     */
    names: string[];
    freeNames: boolean;
    /** HumanEval: `check` is called with the stub for this name. */
    checkWith: string | null;
  }
  | { mode: 'inprocess'; testModule: string };

/** Value codec shared by both sides; the harness's decoder builds only plain data. */
const CODEC = String.raw`
import sys as _sys
_sys.set_int_max_str_digits(0)
_sys.setrecursionlimit(10000)

def _enc(v, depth=0):
    if depth > 200:
        raise ValueError("value nested deeper than 200 levels")
    d = depth + 1
    if v is None or isinstance(v, bool):
        return bool(v) if v is not None else None
    if isinstance(v, int):
        return int.__index__(v)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, (bytes, bytearray)):
        return {"b": bytes(v).hex()}
    if isinstance(v, complex):
        return {"c": [v.real, v.imag]}
    if isinstance(v, list):
        return {"l": [_enc(x, d) for x in v]}
    if isinstance(v, tuple):
        return {"t": [_enc(x, d) for x in v]}
    if isinstance(v, frozenset):
        return {"fs": [_enc(x, d) for x in v]}
    if isinstance(v, set):
        return {"s": [_enc(x, d) for x in v]}
    if isinstance(v, dict):
        return {"d": [[_enc(k, d), _enc(x, d)] for k, x in v.items()]}
    if isinstance(v, range):
        return {"r": [v.start, v.stop, v.step]}
    if hasattr(type(v), "__next__"):
        return {"it": [_enc(x, d) for x in v]}
    if type(v).__eq__ is object.__eq__:
        # e.g. re.Match: the tests can only ask whether it is truthy, which the candidate decides anyway
        return {"o": [type(v).__name__, bool(v)]}
    raise TypeError(f"a {type(v).__name__} cannot cross the sandbox boundary (only plain data: numbers, strings, lists, tuples, sets, dicts, bytes)")

_SEQ = {"l": list, "t": tuple, "s": set, "fs": frozenset}

class _Opaque:
    """A value without plain-data equality (e.g. a regex match): only its type name and truthiness cross."""
    __slots__ = ("kind", "truthy")
    def __init__(self, kind, truthy):
        self.kind, self.truthy = kind, truthy
    def __bool__(self):
        return self.truthy
    def __repr__(self):
        return f"<{self.kind}>"

def _dec(x):
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if t is dict and len(x) == 1:
        (tag, val), = x.items()
        if tag in _SEQ and type(val) is list:
            return _SEQ[tag](_dec(i) for i in val)
        if tag == "it" and type(val) is list:
            return iter([_dec(i) for i in val])
        if tag == "d" and type(val) is list and all(type(p) is list and len(p) == 2 for p in val):
            return {_dec(k): _dec(v) for k, v in val}
        if tag == "b" and type(val) is str:
            return bytes.fromhex(val)
        if tag == "c" and type(val) is list and len(val) == 2 and all(type(i) in (int, float) for i in val):
            return complex(val[0], val[1])
        if tag == "r" and type(val) is list and len(val) == 3 and all(type(i) is int for i in val):
            return range(*val)
        if tag == "o" and type(val) is list and len(val) == 2 and type(val[0]) is str and type(val[1]) is bool:
            return _Opaque(val[0][:100], val[1])
    raise ValueError("malformed value from the candidate process")
`;

/** The candidate process: runs the candidate's code, answers calls with plain data on a private pipe. */
export const HOST = String.raw`
import os, json, types
${CODEC}
_rpc_in = os.fdopen(os.dup(0), "r", encoding="utf-8")
_rpc_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
_null = os.open("/dev/null", os.O_RDONLY)
os.dup2(_null, 0)
os.dup2(2, 1)  # the candidate's prints go to stderr, never into the call channel

def _send(obj):
    _rpc_out.write(json.dumps(obj) + "\n")
    _rpc_out.flush()

def _describe(e):
    return f"{type(e).__name__}: {e}"[:500]

with open(${JSON.stringify(TASK_FILE)}, encoding="utf-8") as f:
    _program = json.load(f)["program"]
_g = {"__name__": "__candidate__", "__builtins__": __builtins__}
try:
    exec(compile(_program, "candidate.py", "exec"), _g)
except BaseException as e:
    _send({"load_error": _describe(e)})
    os._exit(1)
# Modules the candidate imported: the old single-file program let the tests use them (MBPP 596 reads sys).
_send({"ready": True, "modules": {k: v.__name__ for k, v in _g.items() if isinstance(v, types.ModuleType)}})
for _line in _rpc_in:
    _req = json.loads(_line)
    try:
        _fn = _g[_req["call"]]
        _r = _fn(*_dec(_req["args"]), **_dec(_req["kwargs"]))
        _out = {"ok": _enc(_r)}
    except BaseException as e:
        _out = {"raise": _describe(e)}
    _send(_out)
`;

export const HARNESS = String.raw`
import os, sys
_write, _exit = os.write, os._exit

def _read_nonce():
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(0, 128)
        if not chunk:
            break
        buf += chunk
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    return buf.strip()

_proof = b"\n${PROOF_PREFIX}" + _read_nonce() + b"\n"

import ctypes, json, subprocess, traceback
${CODEC}
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: same-uid processes cannot read this one's memory or fds

with open(${JSON.stringify(TASK_FILE)}, encoding="utf-8") as f:
    _spec = json.load(f)


class CandidateError(Exception):
    """The candidate raised, returned something that is not plain data, or its process died."""


# The signal that killed the candidate process, if one did: the harness then dies "of" it too (exit 128+N), so the
# sandbox reports the limit (SIGXCPU → cpu_limit, SIGXFSZ → file_size_limit) as it would for a single process.
_killed_by = [0]


def _where(e, filename):
    lines = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == filename]
    return f" at test line {lines[-1]}" if lines else ""


def _rpc(spec):
    child = subprocess.Popen([sys.executable, "-I", ${JSON.stringify(HOST_FILE)}], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, close_fds=True, text=True, encoding="utf-8")

    def recv():
        line = child.stdout.readline()
        if not line:
            code = child.wait()
            if code >= 0:
                raise CandidateError(f"the candidate process ended (exit code {code})")
            import signal
            _killed_by[0] = -code
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            raise CandidateError(f"the candidate process was killed by {name}")
        return json.loads(line)

    def stub(name):
        def call(*args, **kwargs):
            try:
                child.stdin.write(json.dumps({"call": name, "args": _enc(list(args)), "kwargs": _enc(kwargs)}) + "\n")
                child.stdin.flush()
            except BrokenPipeError:
                raise CandidateError("the candidate process ended") from None
            reply = recv()
            if type(reply) is dict and "ok" in reply:
                return _dec(reply["ok"])
            if type(reply) is dict and type(reply.get("raise")) is str:
                raise CandidateError(f"{name}() raised {reply['raise']}")
            raise CandidateError("malformed reply from the candidate process")
        call.__name__ = name
        return call

    try:
        try:
            first = recv()
        except CandidateError as e:
            return False, f"the candidate failed to load: {e}"
        if type(first) is not dict or first.get("ready") is not True:
            why = first.get("load_error") if type(first) is dict else None
            return False, f"the candidate failed to load: {why or 'malformed reply'}"
        ns = {"__name__": "__test__"}
        exec(compile(spec["setup"], "setup.py", "exec"), ns)
        names = set(spec["names"])
        if spec["freeNames"]:
            import ast, builtins
            tree = ast.parse(spec["test"])
            seen = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
            stored = {n.id for n in seen if not isinstance(n.ctx, ast.Load)}
            free = {n.id for n in seen if isinstance(n.ctx, ast.Load)} - stored - set(ns) - set(dir(builtins))
            modules = first.get("modules") if type(first.get("modules")) is dict else {}
            for name in free:
                # the harness imports the module itself (stdlib and system packages only: python -I)
                if type(modules.get(name)) is str:
                    import importlib
                    ns[name] = importlib.import_module(modules[name])
            names |= free - set(ns)
        for name in names:
            ns[name] = stub(name)
        try:
            exec(compile(spec["test"], "test.py", "exec"), ns)
            if spec["checkWith"]:
                ns["check"](ns[spec["checkWith"]])
        except CandidateError as e:
            return False, f"failed{_where(e, 'test.py')}: {e}"
        except BaseException as e:
            return False, f"failed{_where(e, 'test.py')}: {type(e).__name__}{': ' + str(e)[:300] if str(e) else ''}"
        return True, "all checks passed"
    finally:
        child.kill()
        child.wait()


def _inprocess(spec):
    sys.path[:0] = [os.path.abspath("python_testcases"), os.path.abspath(".")]
    import importlib
    passed = failed = skipped = 0
    first_failure = None
    try:
        mod = importlib.import_module(spec["testModule"])
    except BaseException as e:
        return False, f"the tests failed to load: {type(e).__name__}: {e}"[:500]
    import pytest
    for name in [n for n in dir(mod) if n.startswith("test")]:
        fn = getattr(mod, name)
        if not callable(fn):
            continue
        names, cases = getattr(fn, "_params", ([], [()]))
        for case in cases:
            try:
                fn(**(dict(zip(names, case)) if names else {}))
                passed += 1
            except pytest._Skipped:
                skipped += 1
            except BaseException as e:
                failed += 1
                if first_failure is None:
                    first_failure = f"{name}{list(case) if names else ''}: {type(e).__name__}: {e}"[:300]
    summary = f"{passed} passed, {failed} failed, {skipped} skipped" + (f"; first failure {first_failure}" if first_failure else "")
    return failed == 0 and passed > 0, summary


try:
    _ok, _why = (_rpc if _spec["mode"] == "rpc" else _inprocess)(_spec)
except BaseException as e:
    _ok, _why = False, f"harness error: {type(e).__name__}: {e}"
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BaseException:
    pass
if _ok:
    _write(1, _proof)
_write(2, ("\n" + str(_why).replace("\n", " ") + "\n").encode("utf-8", "replace"))
_exit(0 if _ok else 128 + _killed_by[0] if _killed_by[0] else 1)
`;
