"""Run many tiny numerical problems with BLAS limited to one thread.

L-BFGS-B and the small least-squares solves of the fitters call BLAS on vectors of a few dozen numbers.
With a multi-threaded OpenBLAS every such call synchronises its threads; on a busy 2-core machine that
made power-law fits and bootstrap refits about 8x slower (measured: 0.5 ms instead of 0.06 ms per
L-BFGS-B iteration). threadpoolctl is a declared dependency; should it be missing all the same,
``single_threaded_blas`` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_controller: Any = None


def _get_controller() -> Any:
    # A ThreadpoolController scans the loaded libraries once (milliseconds); limiting through a cached one
    # costs about 0.1 ms, so fitters can use it per fit.
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - depends on the environment
            _controller = False
        else:
            _controller = ThreadpoolController()
    return _controller


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    controller = _get_controller()
    if not controller:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
