/*
 * System Python has no pytest, and the sandbox must not depend on site packages. QuixBugs' test files use only
 * pytest.mark.parametrize, pytest.skip, pytest.approx and the two flags upstream's conftest sets (use_correct,
 * run_slow), so a 40-line stand-in module plus a runner replaces pytest here. The runner prints one JSON summary
 * line and exits 0 only if no test failed (skips are not failures, as in pytest).
 */
export const PYTEST_SHIM = `
use_correct = False
run_slow = False

class _Skipped(Exception):
    pass

def skip(reason=""):
    raise _Skipped(reason)

class _Mark:
    def parametrize(self, names, values):
        def wrap(fn):
            fn._params = ([n.strip() for n in names.split(",")], list(values))
            return fn
        return wrap

mark = _Mark()

import builtins as _b

class _Approx:
    def __init__(self, expected, rel=None, abs=None):
        self.expected, self.rel, self.abs = expected, rel, abs
    def __eq__(self, other):
        # pytest: defaults rel=1e-6, abs=1e-12; an explicit abs without rel ignores the relative tolerance
        rel = self.rel if self.rel is not None else (None if self.abs is not None else 1e-6)
        tol = _b.max(self.abs or (0.0 if self.rel is not None else 1e-12), (rel or 0.0) * _b.abs(self.expected))
        return _b.abs(other - self.expected) <= tol
    def __repr__(self):
        return f"approx({self.expected!r})"

def approx(expected, rel=None, abs=None):
    return _Approx(expected, rel, abs)
`;

export const RUNNER = `
import importlib, json, sys, traceback
sys.path.insert(0, "python_testcases")
sys.path.insert(0, ".")
import pytest
mod = importlib.import_module(sys.argv[1])
passed = failed = skipped = 0
first_failure = None
for name in [n for n in dir(mod) if n.startswith("test")]:
    fn = getattr(mod, name)
    if not callable(fn):
        continue
    names, cases = getattr(fn, "_params", ([], [()]))
    for case in cases:
        args = dict(zip(names, case)) if names else {}
        try:
            fn(**args)
            passed += 1
        except pytest._Skipped:
            skipped += 1
        except Exception as e:
            failed += 1
            if first_failure is None:
                first_failure = f"{name}{list(case) if names else ''}: {type(e).__name__}: {e}"[:300]
print(json.dumps({"passed": passed, "failed": failed, "skipped": skipped, "first_failure": first_failure}))
sys.exit(1 if failed or not passed else 0)
`;
