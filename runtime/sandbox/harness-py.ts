/*
 * The trusted harness's Python program (see harness.ts for how a pass is proven) and the names it shares with the
 * runner. Kept as TS strings, not .py files, so every operator that runs code keys on the harness's source.
 */

export const PROOF_PREFIX = 'AGENTFORGE-PASS ';
/** `AGENTFORGE-CASES <nonce> <i,j,…>`: the indices of the cases that passed (printed whether or not all did). */
export const CASES_PREFIX = 'AGENTFORGE-CASES ';
export const TASK_FILE = 'agentforge_task.json';
export const HARNESS_FILE = 'agentforge_harness.py';

/*
 * Value codec shared by both sides; the harness's decoder builds only plain data and instances of the tests' own
 * Node class. Node objects (QuixBugs' graphs and linked lists) cross by reference: each message carries a table of
 * the objects it mentions with their attributes, the reply repeats the caller's table (so a program's in-place
 * changes reach the caller's objects, and a returned node is the caller's own object) and appends new ones.
 */
const CODEC = String.raw`
import sys as _sys
_sys.set_int_max_str_digits(0)
_sys.setrecursionlimit(10000)


class _Table:
    """Objects crossing by reference in one message: index → object."""
    def __init__(self, objs=()):
        self.objs = list(objs)
        self.ids = {id(o): i for i, o in enumerate(self.objs)}

    def ref(self, o):
        i = self.ids.get(id(o))
        if i is None:
            i = self.ids[id(o)] = len(self.objs)
            self.objs.append(o)
        return i

    def attrs(self):
        out, i = [], 0
        while i < len(self.objs):  # encoding attributes may add objects
            out.append([[k, _enc(v, self)] for k, v in vars(self.objs[i]).items() if type(k) is str and not k.startswith("_")])
            i += 1
        return out


def _by_ref(v):
    return type(v).__name__ == "Node" and hasattr(v, "__dict__")


def _enc(v, table, depth=0):
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
        return {"l": [_enc(x, table, d) for x in v]}
    if isinstance(v, tuple):
        return {"t": [_enc(x, table, d) for x in v]}
    if isinstance(v, frozenset):
        return {"fs": [_enc(x, table, d) for x in v]}
    if isinstance(v, set):
        return {"s": [_enc(x, table, d) for x in v]}
    if isinstance(v, dict):
        return {"d": [[_enc(k, table, d), _enc(x, table, d)] for k, x in v.items()]}
    if isinstance(v, range):
        return {"r": [v.start, v.stop, v.step]}
    if _by_ref(v):
        return {"n": table.ref(v)}
    if hasattr(type(v), "__next__"):
        return {"it": [_enc(x, table, d) for x in v]}
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


def _dec(x, objs):
    t = type(x)
    if x is None or t is bool or t is int or t is float or t is str:
        return x
    if t is dict and len(x) == 1:
        (tag, val), = x.items()
        if tag in _SEQ and type(val) is list:
            return _SEQ[tag](_dec(i, objs) for i in val)
        if tag == "it" and type(val) is list:
            return iter([_dec(i, objs) for i in val])
        if tag == "d" and type(val) is list and all(type(p) is list and len(p) == 2 for p in val):
            return {_dec(k, objs): _dec(v, objs) for k, v in val}
        if tag == "n" and type(val) is int and 0 <= val < len(objs):
            return objs[val]
        if tag == "b" and type(val) is str:
            return bytes.fromhex(val)
        if tag == "c" and type(val) is list and len(val) == 2 and all(type(i) in (int, float) for i in val):
            return complex(val[0], val[1])
        if tag == "r" and type(val) is list and len(val) == 3 and all(type(i) is int for i in val):
            return range(*val)
        if tag == "o" and type(val) is list and len(val) == 2 and type(val[0]) is str and type(val[1]) is bool:
            return _Opaque(val[0][:100], val[1])
    raise ValueError("malformed value from the other process")


def _fill(objs, attrs, cls):
    """Gives the first len(objs) objects their (possibly changed) attributes, creating cls instances for the rest."""
    if type(attrs) is not list or len(attrs) < len(objs):
        raise ValueError("malformed object table")
    if len(attrs) > len(objs):
        if cls is None:
            raise TypeError("a Node cannot cross the sandbox boundary here")
        objs = objs + [object.__new__(cls) for _ in range(len(attrs) - len(objs))]
    for o, pairs in zip(objs, attrs):
        if type(pairs) is not list or not all(type(p) is list and len(p) == 2 and type(p[0]) is str and p[0].isidentifier() and not p[0].startswith("_") for p in pairs):
            raise ValueError("malformed object attributes")
        values = {k: _dec(v, objs) for k, v in pairs}
        o.__dict__.clear()
        o.__dict__.update(values)
    return objs
`;

/*
 * The candidate process, forked from the harness before the harness reads the nonce (so its memory never holds it)
 * and held on a pipe until the harness has consumed the nonce (so the stdin pipe is empty by then). Its own prints
 * go to stderr, never into the channel to the harness.
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
    rpc_out = os.fdopen(wout, "w", encoding="utf-8")

    def send(obj):
        rpc_out.write(json.dumps(obj) + "\n")
        rpc_out.flush()

    def describe(e):
        return f"{type(e).__name__}: {e}"[:500]

    class Node:
        """Nodes the harness sends arrive as these (attributes only, like QuixBugs' node.Node)."""

    g = {"__name__": "__candidate__", "__builtins__": __builtins__}
    try:
        exec(compile(_spec["program"], "candidate.py", "exec"), g)
    except BaseException as e:
        send({"load_error": describe(e)})
        os._exit(1)
    # Modules the candidate imported: the old single-file program let the tests use them (MBPP 596 reads sys).
    send({"ready": True, "modules": {k: v.__name__ for k, v in g.items() if isinstance(v, types.ModuleType)}})
    for line in os.fdopen(rin, "r", encoding="utf-8"):
        req = json.loads(line)
        try:
            objs = _fill([], req["objs"], Node)
            result = g[req["call"]](*_dec(req["args"], objs), **_dec(req["kwargs"], objs))
            table = _Table(objs)
            value = _enc(result, table)
            out = {"ok": value, "objs": table.attrs()}
        except BaseException as e:
            out = {"raise": describe(e)}
        send(out)
    os._exit(0)
`;

export const HARNESS = String.raw`
import os, sys
_write, _exit = os.write, os._exit
import ast, builtins, ctypes, importlib, json, signal, traceback, types
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


class _Channel:
    """The harness's end of the pipes to the candidate process."""
    pid = None
    to_child = None
    from_child = None
    # The signal that killed the candidate process, if one did: the harness then exits 128+N, so the sandbox
    # reports the limit (SIGXCPU → cpu_limit, SIGXFSZ → file_size_limit) as it would for a single process.
    killed_by = 0
    # cases mode: indices of the cases that passed, and the run's nonce for their proof line
    cases = None
    nonce = b""


def _recv():
    line = _Channel.from_child.readline()
    if not line:
        _, status = os.waitpid(_Channel.pid, 0)
        if os.WIFEXITED(status):
            raise CandidateError(f"the candidate process ended (exit code {os.WEXITSTATUS(status)})")
        sig = _Channel.killed_by = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        raise CandidateError(f"the candidate process was killed by {name}")
    return json.loads(line)


def _stub(name):
    def call(*args, **kwargs):
        table = _Table()
        request = {"call": name, "args": _enc(list(args), table), "kwargs": _enc(kwargs, table)}
        request["objs"] = table.attrs()
        try:
            _Channel.to_child.write(json.dumps(request) + "\n")
            _Channel.to_child.flush()
        except BrokenPipeError:
            pass  # _recv() reports how the candidate process ended
        reply = _recv()
        if type(reply) is dict and "ok" in reply:
            node = getattr(sys.modules.get("node"), "Node", None)  # QuixBugs' own class, loaded by the tests
            objs = _fill(table.objs, reply.get("objs"), node if isinstance(node, type) else None)
            return _dec(reply["ok"], objs)
        if type(reply) is dict and type(reply.get("raise")) is str:
            raise CandidateError(f"{name}() raised {reply['raise']}")
        raise CandidateError("malformed reply from the candidate process")
    call.__name__ = name
    return call


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
    _Channel.pid = pid
    _Channel.to_child = os.fdopen(req_w, "w", encoding="utf-8")
    _Channel.from_child = os.fdopen(rep_r, "r", encoding="utf-8")
    return go_w


def _where(e, filename):
    lines = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == filename]
    return f" at test line {lines[-1]}" if lines else ""


def _failure(e):
    if isinstance(e, CandidateError):
        return str(e)
    return f"{type(e).__name__}{': ' + str(e)[:300] if str(e) else ''}"


def _run_pytest_style(mod):
    """QuixBugs' tests: every test function, every parametrized case; counts and the first failure."""
    import pytest
    passed = failed = skipped = 0
    first_failure = None
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
                    first_failure = f"{name}{list(case) if names else ''}: {_failure(e)}"[:300]
    return {"passed": passed, "failed": failed, "skipped": skipped, "first_failure": first_failure}


def _summary(r):
    text = f"{r['passed']} passed, {r['failed']} failed, {r['skipped']} skipped"
    if r["failed"] and type(r.get("first_failure")) is str:
        text += f"; first failure {r['first_failure']}"
    return r["failed"] == 0 and r["passed"] > 0, text


def _prepare(spec):
    """Loads the tests (trusted) before any candidate code exists; returns what runs them once it is ready."""
    if spec["mode"] == "module":
        # The test files sit in the sandbox dir, which the candidate process can write once it runs: import them
        # now, then take the dir off sys.path so no later import of the harness can come from there.
        here = [os.path.abspath("python_testcases"), os.path.abspath(".")]
        sys.path[:0] = here
        package = types.ModuleType(spec["programModule"].rpartition(".")[0])
        package.__path__ = []
        program = types.ModuleType(spec["programModule"])
        setattr(program, spec["name"], _stub(spec["name"]))
        sys.modules[package.__name__] = package
        sys.modules[program.__name__] = program
        try:
            mod = importlib.import_module(spec["testModule"])
        except BaseException as e:
            mod = e
        finally:
            sys.path[:] = [p for p in sys.path if p not in here]
            importlib.invalidate_caches()

        def run(first):
            if isinstance(mod, BaseException):
                return False, f"the tests failed to load: {_failure(mod)}"
            return _summary(_run_pytest_style(mod))
        return run

    def run(first):
        ns = {"__name__": "__test__"}
        exec(compile(spec["setup"], "setup.py", "exec"), ns)
        names = set(spec["names"])
        if spec["freeNames"]:
            tree = ast.parse(spec["test"] + "\n" + "\n".join(spec.get("cases") or []))
            seen = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
            stored = {n.id for n in seen if not isinstance(n.ctx, ast.Load)}
            free = {n.id for n in seen if isinstance(n.ctx, ast.Load)} - stored - set(ns) - set(dir(builtins))
            modules = first.get("modules") if type(first.get("modules")) is dict else {}
            for name in free:
                # the harness imports the module itself (stdlib and system packages only: python -I)
                if type(modules.get(name)) is str:
                    ns[name] = importlib.import_module(modules[name])
            names |= free - set(ns)
        for name in names:
            ns[name] = _stub(name)
        cases = spec.get("cases")
        if type(cases) is list:
            try:
                exec(compile(spec["test"], "test.py", "exec"), ns)
            except BaseException as e:
                return False, f"the test setup failed: {_failure(e)}"
            first_fail = None
            _Channel.cases = []
            for i, case in enumerate(cases):
                try:
                    exec(compile(case, f"case{i}.py", "exec"), ns)
                    _Channel.cases.append(i)
                except BaseException as e:
                    if first_fail is None:
                        first_fail = f"case {i}: {_failure(e)}"[:300]
            text = f"{len(_Channel.cases)}/{len(cases)} cases passed"
            return len(_Channel.cases) == len(cases) and len(cases) > 0, text + (f"; first failure {first_fail}" if first_fail else "")
        try:
            exec(compile(spec["test"], "test.py", "exec"), ns)
            if spec["checkWith"]:
                ns["check"](ns[spec["checkWith"]])
        except BaseException as e:
            return False, f"failed{_where(e, 'test.py')}: {_failure(e)}"
        return True, "all checks passed"
    return run


def _main():
    run = _prepare(_spec)
    go = _start_candidate()
    _Channel.nonce = _read_nonce()
    proof = b"\n${PROOF_PREFIX}" + _Channel.nonce + b"\n"
    os.write(go, b"g")
    os.close(go)
    try:
        try:
            first = _recv()
        except CandidateError as e:
            return False, f"the candidate failed to load: {e}", proof
        if type(first) is not dict or first.get("ready") is not True:
            why = first.get("load_error") if type(first) is dict else None
            return False, f"the candidate failed to load: {why or 'malformed reply'}", proof
        return (*run(first), proof)
    finally:
        try:
            os.kill(_Channel.pid, 9)
        except OSError:
            pass


try:
    _ok, _why, _proof = _main()
except BaseException as e:
    _ok, _why, _proof = False, f"harness error: {_failure(e)}", b""
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BaseException:
    pass
if _ok:
    _write(1, _proof)
if _Channel.cases is not None and _Channel.nonce:
    _write(1, b"\n${CASES_PREFIX}" + _Channel.nonce + b" " + ",".join(str(i) for i in _Channel.cases).encode() + b"\n")
_write(2, ("\n" + str(_why).replace("\n", " ") + "\n").encode("utf-8", "replace"))
_exit(0 if _ok else 128 + _Channel.killed_by if _Channel.killed_by else 1)
`;
