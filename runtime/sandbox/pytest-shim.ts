/*
 * System Python has no pytest, and the sandbox must not depend on site packages. QuixBugs' test files use only
 * pytest.mark.parametrize, pytest.skip, pytest.approx and the two flags upstream's conftest sets (use_correct,
 * run_slow), so a 40-line stand-in module replaces pytest here; the harness (harness.ts) runs the tests.
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
