"""Keeps library output off the protocol stream (it is also redirected globally in __main__)."""
from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def quiet_stdout():
    with contextlib.redirect_stdout(sys.stderr):
        yield
