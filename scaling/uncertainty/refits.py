"""How the bootstrap refits its resamples: a resample's fit as the projections see it, the form's refitters
on numpy arrays, and the loop that runs them (``run_resamples``), in this process or in forked workers.

With a batched refitter (``Form.batch_refitter``) the resamples are refitted ``BATCH`` at a time, a task each
whatever the number of worker processes (so a resample is refitted in the same batch, to the last bit, by
one process or several); without one, one at a time (``CHUNK`` per worker task) by ``Form.refitter``. Either
way the outcomes come back in resample order, so the intervals do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaling.core.forked import fork_context, map_chunks
from scaling.core.threads import single_threaded_blas
from scaling.forms import BatchRefit, Refit, Replicate, get_form
from scaling.forms.base import REFIT_ERRORS, attempt
from scaling.forms.result import FitResult, axis_matrix


@dataclass(frozen=True)
class Derived:
    """What a callback computes on one fit: real values (intervals) and events (probabilities)."""

    values: dict[str, float] = field(default_factory=dict)
    events: dict[str, bool] = field(default_factory=dict)


DerivedFn = Callable[[Any], Derived]  # a (refitted) fit -> the quantities of it to put intervals on


def combine(*fns: DerivedFn | None) -> DerivedFn | None:
    """One callback computing what each of ``fns`` computes (None where none is given)."""
    given = [f for f in fns if f is not None]
    if not given:
        return None

    def fn(f: Any) -> Derived:
        values: dict[str, float] = {}
        events: dict[str, bool] = {}
        for g in given:
            out = g(f)
            values |= out.values
            events |= out.events
        return Derived(values, events)

    return fn


# -- fast refits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicateFit:
    """A resample's fit seen through the projection interface (``scaling.questions.projection.FitLike``).

    ``axis_ranges`` are those of the full data, so that reference points and "decades beyond the data"
    mean the same in every resample.
    """

    form: str
    axes: tuple[str, ...]
    kind: str
    ceiling: float | None
    axis_ranges: dict[str, tuple[float, float]]
    params: dict[str, float]
    options: dict[str, Any]
    _predict: Callable[[np.ndarray], np.ndarray] = field(repr=False)

    def predict(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        M, shape = axis_matrix(X, self.axes)
        return self._predict(M).reshape(shape)


def make_refitter(full: FitResult, data: pd.DataFrame, weights: str | None, options: Mapping[str, Any]) -> Refit:
    """A function ``refit(row_indices) -> Replicate`` for resamples of ``data`` (the frame ``full`` fitted
    with ``options``): the form's own (``Form.refitter``), on numpy arrays."""
    return get_form(full.form).refitter(full, *_arrays(full, data, weights), options=options)


def make_batch_refitter(full: FitResult, data: pd.DataFrame, weights: str | None,
                        options: Mapping[str, Any]) -> BatchRefit | None:
    """The form's batched refitter (``Form.batch_refitter``) for resamples of ``data``, or None without one."""
    return get_form(full.form).batch_refitter(full, *_arrays(full, data, weights), options=options)


def _arrays(full: FitResult, data: pd.DataFrame,
            weights: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    X = np.column_stack([pd.to_numeric(data[a]).to_numpy(dtype=float) for a in full.axes])
    y = pd.to_numeric(data[full.y]).to_numpy(dtype=float)
    w = None if weights is None else pd.to_numeric(data[weights]).to_numpy(dtype=float)
    return X, y, w


def as_fitlike(full: FitResult, rep: Replicate) -> ReplicateFit:
    return ReplicateFit(full.form, full.axes, full.kind, rep.ceiling, full.axis_ranges, rep.params,
                        full.options, rep.predict_matrix)


Outcome = tuple  # ("ok", params, ceiling, path, values, events) | ("fail", reason)
_JOB: dict[str, Any] = {}  # what forked workers inherit (closures cannot be pickled)
CHUNK = 25  # resamples per task of a worker process (per-resample refits)
# Resamples refitted together by a batched refitter: one task, in this process or a worker. The tasks do not
# depend on the number of workers, so neither does any resample's batch, nor its refit to the last bit.
BATCH = 500


def _reason(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _derive(derived: DerivedFn | None, full: FitResult, rep: Replicate | Exception) -> Outcome:
    """The outcome of one refitted resample: its parameters and derived quantities, or why it failed."""
    if isinstance(rep, Exception):
        return ("fail", _reason(rep))
    try:
        out = derived(as_fitlike(full, rep)) if derived is not None else Derived()
    except REFIT_ERRORS as exc:
        return ("fail", _reason(exc))
    return ("ok", rep.params, rep.ceiling, rep.path, out.values, out.events)


def _chunk(start: int, stop: int) -> list[Outcome]:
    job = _JOB
    with single_threaded_blas():
        reps: list[Replicate | Exception] | None = None
        if job["batch"] is not None:
            try:
                reps = job["batch"]([job["idx"][b] for b in range(start, stop)])
            except REFIT_ERRORS:  # a batch that fails as a whole: its resamples one at a time
                reps = None
        if reps is None:
            reps = [attempt(job["refit"], job["idx"][b]) for b in range(start, stop)]
        return [_derive(job["derived"], job["full"], rep) for rep in reps]


def run_resamples(refit: Refit, batch: BatchRefit | None, derived: DerivedFn | None, full: FitResult,
                   idx: list[np.ndarray], workers: int, progress: Callable[[int, int], None] | None) -> list[Outcome]:
    """Every resample's outcome, in order. With a batched refitter, ``BATCH`` resamples at a time (a task
    each, in process or in a worker); otherwise one at a time in process, ``CHUNK`` per worker task."""
    n = len(idx)
    _JOB.update(refit=refit, batch=batch, derived=derived, full=full, idx=idx)
    try:
        with single_threaded_blas():  # in this process (forked workers limit their own, in _chunk)
            if batch is None:
                return map_chunks(_chunk, n, CHUNK, workers, fork_context(workers, n, 2 * CHUNK), progress)
            ctx = fork_context(workers, n, BATCH + 1)  # two tasks at least
            if ctx is not None:
                return map_chunks(_chunk, n, BATCH, workers, ctx, progress)
            out: list[Outcome] = []
            for start in range(0, n, BATCH):
                out += _chunk(start, min(start + BATCH, n))
                if progress is not None:
                    progress(len(out), n)
            return out
    finally:
        _JOB.clear()
