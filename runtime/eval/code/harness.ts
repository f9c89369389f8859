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

/*
 * The candidate process, forked from the harness before the harness reads the nonce (so its memory never holds it)
 * and held on a pipe until the harness has consumed the nonce (so the stdin pipe is empty by then). It runs the
 * candidate's code and answers calls with plain data; its own prints go to stderr, never into the call channel.
 */
const HOST = String.raw`
def _host(go, rin, wout):
    import json, types
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    os.read(go, 1)
    os.close(go)
    rpc_in = os.fdopen(rin, "r", encoding="utf-8")
    rpc_out = os.fdopen(wout, "w", encoding="utf-8")

    def send(obj):
        rpc_out.write(json.dumps(obj) + "\n")
        rpc_out.flush()

    def describe(e):
        return f"{type(e).__name__}: {e}"[:500]

    g = {"__name__": "__candidate__", "__builtins__": __builtins__}
    try:
        exec(compile(_spec["program"], "candidate.py", "exec"), g)
    except BaseException as e:
        send({"load_error": describe(e)})
        os._exit(1)
    # Modules the candidate imported: the old single-file program let the tests use them (MBPP 596 reads sys).
    send({"ready": True, "modules": {k: v.__name__ for k, v in g.items() if isinstance(v, types.ModuleType)}})
    for line in rpc_in:
        req = json.loads(line)
        try:
            out = {"ok": _enc(g[req["call"]](*_dec(req["args"]), **_dec(req["kwargs"])))}
        except BaseException as e:
            out = {"raise": describe(e)}
        send(out)
    os._exit(0)
`;

export const HARNESS = String.raw`
import os, sys
_write, _exit = os.write, os._exit
import ctypes, json, traceback
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 0: same-uid processes cannot read this one's memory or fds
${CODEC}
with open(${JSON.stringify(TASK_FILE)}, encoding="utf-8") as f:
    _spec = json.load(f)
${HOST}

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


class CandidateError(Exception):
    """The candidate raised, returned something that is not plain data, or its process died."""


# The signal that killed the candidate process, if one did: the harness then dies "of" it too (exit 128+N), so the
# sandbox reports the limit (SIGXCPU → cpu_limit, SIGXFSZ → file_size_limit) as it would for a single process.
_killed_by = [0]


def _where(e, filename):
    lines = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == filename]
    return f" at test line {lines[-1]}" if lines else ""


def _start_candidate():
    go_r, go_w = os.pipe()
    req_r, req_w = os.pipe()
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (go_w, req_w, rep_r):
                os.close(fd)
            _host(go_r, req_r, rep_w)
        finally:
            os._exit(1)
    for fd in (go_r, req_r, rep_w):
        os.close(fd)
    return pid, go_w, os.fdopen(req_w, "w", encoding="utf-8"), os.fdopen(rep_r, "r", encoding="utf-8")


def _rpc(spec, pid, to_child, from_child):
    def recv():
        line = from_child.readline()
        if not line:
            _, status = os.waitpid(pid, 0)
            if os.WIFEXITED(status):
                raise CandidateError(f"the candidate process ended (exit code {os.WEXITSTATUS(status)})")
            import signal
            sig = os.WTERMSIG(status)
            _killed_by[0] = sig
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = f"signal {sig}"
            raise CandidateError(f"the candidate process was killed by {name}")
        return json.loads(line)

    def stub(name):
        def call(*args, **kwargs):
            try:
                to_child.write(json.dumps({"call": name, "args": _enc(list(args)), "kwargs": _enc(kwargs)}) + "\n")
                to_child.flush()
            except BrokenPipeError:
                pass  # recv() reports how the candidate process ended
            reply = recv()
            if type(reply) is dict and "ok" in reply:
                return _dec(reply["ok"])
            if type(reply) is dict and type(reply.get("raise")) is str:
                raise CandidateError(f"{name}() raised {reply['raise']}")
            raise CandidateError("malformed reply from the candidate process")
        call.__name__ = name
        return call

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
    if _spec["mode"] == "rpc":
        _pid, _go, _to, _from = _start_candidate()
        _proof = b"\n${PROOF_PREFIX}" + _read_nonce() + b"\n"
        os.write(_go, b"g")
        os.close(_go)
        try:
            _ok, _why = _rpc(_spec, _pid, _to, _from)
        finally:
            try:
                os.kill(_pid, 9)
            except OSError:
                pass
    else:
        _proof = b"\n${PROOF_PREFIX}" + _read_nonce() + b"\n"
        _ok, _why = _inprocess(_spec)
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
