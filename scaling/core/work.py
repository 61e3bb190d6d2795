"""Bounded work: what a command will cost, estimated from its sizes before it starts, and refused past a limit.

A ``Work`` is an estimate of peak memory and time. ``check`` raises ``WorkLimitError`` (one line with the
estimate, the limit and the way to allow it) when it is past ``WORK_MAX_BYTES``, or past ``WORK_MAX_S`` for
work that shows a progress bar, ``WORK_SILENT_MAX_S`` for work that shows nothing until it ends (so that a
user never waits minutes with no output). ``allow_large_work()`` (the CLI's ``--allow-large``) lifts
the limits for what runs inside it.

The estimators below price each unit of work by constants measured on this project's 2-core machine
(``bench/bench_work.py`` measures each unit beside its estimate): memory at or above what a unit keeps
(measured/estimated 0.3-0.55), time at the fastest form's unit (poly1; measured/estimated 1.25-3.8 on a
loaded machine), so that a time estimate is a lower bound and only work that is surely too long is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from scaling.defaults import WORK_MAX_BYTES, WORK_MAX_S, WORK_SILENT_MAX_S
from scaling.errors import ScalingError

ALLOW_FLAG = "--allow-large"

# Per unit of work (measured here; see the module docstring).
RESAMPLE_BYTES = 1536  # a bootstrap resample's outcome and bookkeeping, besides its row indices (8 B a row)
RESAMPLE_S = 0.2e-3  # a warm refit of poly1 on the published grid
QUANTITY_BYTES = 64  # each derived quantity of each resample
OUTCOME_BYTES = 512  # a simulated outcome of a suggestion, with its interval per candidate
CANDIDATE_BYTES = 3072  # a candidate run with its pricing
CANDIDATE_S = {"run database": 2.0e-3, "table": 0.25e-3}  # building and pricing one candidate
FRONTIER_ROW_S = 20e-3  # one row of the iso-target frontier: an SLSQP solve
FRONTIER_ROW_BYTES = 4096
RASTER_BYTES_PER_PIXEL = 12  # RGBA canvas, its copy and the PNG encoder's rows
RASTER_PIXELS_PER_S = 50e6


class WorkLimitError(ScalingError):
    """Work estimated past the limits (and not allowed): the message has the estimate and the way to allow it."""


_ALLOWED: ContextVar[bool] = ContextVar("scaling_allow_large_work", default=False)


@contextmanager
def allow_large_work(allowed: bool = True) -> Iterator[None]:
    """Lift (or, with False, restore) the work limits for what runs inside."""
    token = _ALLOWED.set(allowed)
    try:
        yield
    finally:
        _ALLOWED.reset(token)


def large_work_allowed() -> bool:
    return _ALLOWED.get()


def fmt_bytes(n: float) -> str:
    for unit, size in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "forever"
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.2g} s"


@dataclass(frozen=True)
class Work:
    """An estimate: ``what`` is done (as the user asked it), its peak memory and its time (a lower bound)."""

    what: str
    bytes: float
    seconds: float
    progress: bool = True  # a progress bar shows while it runs (else nothing does: the tighter time limit)

    def __add__(self, other: Work) -> Work:
        return Work(f"{self.what} and {other.what}", self.bytes + other.bytes, self.seconds + other.seconds,
                    self.progress and other.progress)

    def describe(self) -> str:
        return f"{self.what}: about {fmt_bytes(self.bytes)} of memory and at least {fmt_seconds(self.seconds)}"


def check(work: Work) -> Work:
    """``work`` if it is within the limits (or large work is allowed), else ``WorkLimitError``."""
    if large_work_allowed():
        return work
    limit_s = WORK_MAX_S if work.progress else WORK_SILENT_MAX_S
    over = []
    if not work.bytes <= WORK_MAX_BYTES:
        over.append(f"about {fmt_bytes(work.bytes)} of memory (limit {fmt_bytes(WORK_MAX_BYTES)})")
    if not work.seconds <= limit_s:
        shown = "" if work.progress else " without output"
        over.append(f"at least {fmt_seconds(work.seconds)}{shown} (limit {fmt_seconds(limit_s)})")
    if over:
        raise WorkLimitError(f"{work.what} would need {' and '.join(over)}; ask for less, or pass {ALLOW_FLAG} "
                             "(scaling.core.work.allow_large_work() in Python) to run it anyway")
    return work


# -- estimators -------------------------------------------------------------------------------------------


def bootstrap(n_boot: int, n_rows: int, *, n_quantities: int = 0, workers: int = 1, what: str = "") -> Work:
    """``n_boot`` resamples of ``n_rows`` rows, each refitted, with ``n_quantities`` derived quantities."""
    per = 8.0 * n_rows + RESAMPLE_BYTES + QUANTITY_BYTES * n_quantities
    label = what or f"{n_boot:,} bootstrap resamples of {n_rows:,} rows"
    return Work(label, float(n_boot) * per, float(n_boot) * RESAMPLE_S / max(1, workers))


def suggestion(n_candidates: int, n_boot: int, n_outcomes: int, n_rows: int, *, workers: int = 1) -> Work:
    """The preposterior analysis of ``n_candidates`` (with progress): ``n_boot`` resamples refitted once, and
    once per candidate and simulated outcome. Building the candidates first is ``candidates``."""
    refits = float(n_boot) * (1.0 + float(n_candidates) * float(n_outcomes))
    memory = (float(n_boot) * (16.0 * (n_rows + 1) + 2 * RESAMPLE_BYTES) + float(n_outcomes) * OUTCOME_BYTES
              + float(n_candidates) * CANDIDATE_BYTES)
    return Work(f"a suggestion over {n_candidates:,} candidates x {n_boot:,} resamples x {n_outcomes:,} outcomes",
                memory, refits * RESAMPLE_S / max(1, workers))


def candidates(n_candidates: int, *, run_database: bool) -> Work:
    """Building and pricing ``n_candidates`` candidate runs (no progress shows)."""
    return Work(f"{n_candidates:,} candidates", float(n_candidates) * CANDIDATE_BYTES,
                float(n_candidates) * CANDIDATE_S["run database" if run_database else "table"], progress=False)


def frontier(rows: int) -> Work:
    """An iso-target frontier of ``rows`` parameter counts (no progress shows)."""
    return Work(f"a frontier of {rows:,} rows", float(rows) * FRONTIER_ROW_BYTES, float(rows) * FRONTIER_ROW_S,
                progress=False)


def raster(width_in: float, height_in: float, dpi: float) -> Work:
    """A figure of ``width_in`` x ``height_in`` inches drawn at ``dpi`` (no progress shows)."""
    pixels = float(width_in) * float(height_in) * float(dpi) ** 2
    return Work(f"a {width_in:.3g} x {height_in:.3g} in figure at {dpi:g} dpi ({pixels:.3g} pixels)",
                pixels * RASTER_BYTES_PER_PIXEL, pixels / RASTER_PIXELS_PER_S, progress=False)
