"""Run many tiny numerical problems with BLAS limited to one thread.

L-BFGS-B and the small least-squares solves of the fitters call BLAS on vectors of a few dozen numbers.
With a multi-threaded OpenBLAS every such call synchronises its threads; on a busy 2-core machine that
made power-law fits and bootstrap refits about 8x slower (measured: 0.5 ms instead of 0.06 ms per
L-BFGS-B iteration). threadpoolctl is a declared dependency.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    # A ThreadpoolController scans the loaded libraries once (milliseconds); limiting through a cached one
    # costs about 0.1 ms, so fitters can use it per fit.
    return ThreadpoolController()


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    with _controller().limit(limits=1, user_api="blas"):
        yield
