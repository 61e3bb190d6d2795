"""Preposterior analysis of one more run: how much would training it shrink a projection's interval?

For the current data, ``Preposterior`` draws ``n_boot`` case-bootstrap resamples (whole groups, as
``scaling.uncertainty.bootstrap``) and refits each warm with the form's refitter (``Form.refitter``, started from the
full-data fit); the projection quantity on each refit gives the interval *before*. For a candidate run x:

1. its outcome is simulated from the current bootstrap fits plus seed-to-seed noise,
   y = f_b(x) + sigma * e with f_b a refit drawn at random and e standard normal; draws come in antithetic
   pairs (+e, -e) so that the noise averages out with few draws;
2. the run is added to the data and every resample is refitted again, warm: each resample keeps the
   current rows it drew before and takes the new run Poisson(1) times (the Poisson bootstrap of one more
   group), so before and after differ only by the new run (common random numbers make candidates
   comparable with few resamples);
3. the interval *after* is the percentile interval over these refits, averaged over the outcome draws.

The expected shrinkage is the width before minus the expected width after. Quantities (``question``):
``scale``: log10 of the common factor k on every axis of the largest trained point that reaches the target
(the study's question; its FLOPs are a monotone function of k, so the FLOPs interval is the image of k's);
``at``: the prediction at a point. A resample whose refit fails is left out (counted); an unreachable
target is +inf (an infinite upper bound).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from scaling.compute.costs import CostModel
from scaling.compute.flops import ComputeAssumptions, compute_at
from scaling.compute.training_length import TrainingLength
from scaling.core.direction import direction
from scaling.core.forked import fork_context, map_chunks
from scaling.core.threads import single_threaded_blas
from scaling.errors import FitError, ScalingError
from scaling.forms import get_form
from scaling.forms.base import Form, Refit, Replicate
from scaling.forms.result import FitResult
from scaling.questions.projection import GRID_STEP_DECADES, SEARCH_DECADES, crossing, reference_point
from scaling.uncertainty.bootstrap import group_codes, quantile, resample_indices

QUESTIONS = ("scale", "at")
_FAIL = (ScalingError, np.linalg.LinAlgError, ValueError, FloatingPointError)
Quantity = Callable[[Replicate | FitResult], float]  # the projection quantity on a refitted resample or a fit


@dataclass(frozen=True)
class Interval:
    """A percentile interval of the quantity over refitted resamples."""

    lower: float
    upper: float
    n_ok: int

    @property
    def width(self) -> float:
        if math.isinf(self.upper) or math.isinf(self.lower):
            return math.inf
        return self.upper - self.lower


def interval_of(values: np.ndarray, level: float) -> Interval:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return Interval(math.nan, math.nan, 0)
    return Interval(quantile(v, (1 - level) / 2), quantile(v, (1 + level) / 2), int(v.size))


class ScaleSearch:
    """log10 of the smallest k with predict(reference * k**weights) meeting ``target`` (+inf if none): the
    search of ``scaling.questions.projection.project_scale`` (the same log grid, then Brent's method) on a raw
    predictor, without building a ``Projection``, and with the grid's points computed once (the hot loop
    of a suggestion; a test checks it equals ``project_scale``)."""

    def __init__(self, reference: np.ndarray, weights: np.ndarray, target: float, kind: str) -> None:

        self.lo, hi = SEARCH_DECADES
        self.logk = np.arange(self.lo, hi + GRID_STEP_DECADES / 2, GRID_STEP_DECADES)
        self.reference, self.weights, self.target = reference, weights, target
        self.points = reference[None, :] * 10.0 ** np.outer(self.logk, weights)
        self.direction = direction(kind)

    def __call__(self, predict_matrix: Callable[[np.ndarray], np.ndarray]) -> float:

        pred = predict_matrix(self.points)
        ok = self.direction.meets(pred, self.target) & np.isfinite(pred)
        i, status = crossing(self.logk, ok)
        if i is None:
            return math.inf
        if status == "floor":
            return float(self.lo)

        def gap(v: float) -> float:
            return float(predict_matrix(self.reference[None, :] * 10.0 ** (v * self.weights))[0] - self.target)

        return float(brentq(gap, self.logk[i - 1], self.logk[i], xtol=1e-9))


def quantity_fn(full: FitResult, question: str, target: float | None, at: Mapping[str, float] | None,
                exponents: Mapping[str, float] | None) -> Quantity:
    """value(replicate or fit): log10 k of 'scale' (+inf when unreachable) or the prediction of 'at'. A
    ``Replicate`` (``predict_matrix``) or a ``FitResult`` (``require_model().predict``) is accepted."""

    if question not in QUESTIONS:
        raise ScalingError(f"unknown question {question!r}; use {' or '.join(QUESTIONS)}")
    ref = reference_point(full)
    ref_vec = np.array([ref[a] for a in full.axes])
    w = {a: 1.0 for a in full.axes} | dict(exponents or {})
    unknown = sorted(set(w) - set(full.axes))
    if unknown:
        raise ScalingError(f"scale exponent for unknown axis {unknown[0]!r}; axes: {', '.join(full.axes)}")
    w_vec = np.array([w[a] for a in full.axes], dtype=float)

    def predictor(f: Replicate | FitResult) -> Callable[[np.ndarray], np.ndarray]:
        return f.require_model().predict if isinstance(f, FitResult) else f.predict_matrix

    if question == "scale":
        if target is None:
            raise ScalingError("the 'scale' question needs a target")

        search = ScaleSearch(ref_vec, w_vec, float(target), full.kind)

        def scale(f: Replicate | FitResult) -> float:
            return search(predictor(f))

        return scale
    if at is None:
        raise ScalingError("the 'at' question needs a point (at=)")
    missing = [a for a in full.axes if a not in at]
    if missing:
        raise ScalingError(f"the point lacks axis {missing[0]!r}; the fit's axes are {', '.join(full.axes)}")
    point = np.array([[float(at[a]) for a in full.axes]])

    def predicted(f: Replicate | FitResult) -> float:
        return float(np.asarray(predictor(f)(point)).ravel()[0])

    return predicted


def flops_along_scale(fit: FitResult, cost: CostModel | None, exponents: Mapping[str, float] | None,
                      training: TrainingLength | ComputeAssumptions | None) -> Callable[[float], float]:
    """FLOPs of the 'scale every axis' point at log10 k (as ``scaling.project`` prices it): the cost model of a
    table, else the MAE FLOPs model under a training-length rule or fixed compute assumptions (NaN where it
    has no answer). +inf for an unreachable k."""

    ref = reference_point(fit)
    w = {a: 1.0 for a in fit.axes} | dict(exponents or {})
    price = _pricer(cost, training)

    def flops(log_k: float) -> float:
        if not math.isfinite(log_k):
            return math.inf if log_k > 0 else math.nan
        return price({a: ref[a] * 10.0 ** (log_k * w[a]) for a in fit.axes})

    return flops


def _pricer(cost: CostModel | None,
            training: TrainingLength | ComputeAssumptions | None) -> Callable[[Mapping[str, float]], float]:
    """point -> pretraining FLOPs: the cost model's, else the MAE model's (NaN where it has no answer)."""
    if cost is not None:
        return lambda point: float(cost.cost(point).ravel()[0])
    if training is None:
        raise ScalingError("the run database grid lacks samples_seen: no FLOPs model for the projection")

    def mae(point: Mapping[str, float]) -> float:
        a = training.at(point) if isinstance(training, TrainingLength) else training
        try:
            return compute_at(point, a).flops
        except ValueError:
            return math.nan

    return mae


class Preposterior:
    """The current data's bootstrap, and the expected interval after adding a candidate run."""

    def __init__(self, full: FitResult, frame: pd.DataFrame, value: Quantity, *, n_boot: int,
                 seed: int, level: float, sigma: float, group: str | Sequence[str] | None, n_outcomes: int = 2,
                 warm: bool = True) -> None:
        if n_boot < 20:
            raise ScalingError(f"a preposterior analysis needs at least 20 resamples; got {n_boot}")
        if n_outcomes < 1:
            raise ScalingError(f"simulate at least one outcome per candidate; got {n_outcomes}")
        self.full, self.value, self.level, self.sigma, self.warm = full, value, level, sigma, warm
        self.frame = frame.reset_index(drop=True)
        self.X = np.column_stack([pd.to_numeric(self.frame[a]).to_numpy(dtype=float) for a in full.axes])
        self.y = pd.to_numeric(self.frame[full.y]).to_numpy(dtype=float)
        self.w = None if full.weights is None else pd.to_numeric(self.frame[full.weights]).to_numpy(dtype=float)
        self.form = get_form(full.form)
        codes, _ = group_codes(self.frame, group)
        rng = np.random.default_rng(seed)
        self.idx = resample_indices(codes, n_boot, seed)
        self.extra = rng.poisson(1.0, n_boot)  # copies of the new run in each resample
        self.refits = 0
        self.seconds_refit = 0.0
        fits, values = self._refit_all(self.X, self.y, self.w, self.idx)
        self.before_values = values
        self.before = interval_of(values, level)
        self.replicates = [f for f in fits if f is not None]
        if not self.replicates:
            raise FitError(f"no bootstrap resample of form {full.form!r} could be fitted")
        # Outcome draws shared by every candidate (common random numbers): which refit, which noise.
        half = (n_outcomes + 1) // 2
        picks = rng.integers(0, len(self.replicates), half)
        noise = rng.standard_normal(half)
        self.draws = [(int(b), s * float(e)) for b, e in zip(picks, noise, strict=True) for s in (1.0, -1.0)]
        self.draws = self.draws[:n_outcomes]

    def _refitter(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> Refit:
        if self.warm:
            return self.form.refitter(self.full, X, y, w, options=self.full.fit_options)
        return cold_refitter(self.full, X, y, w)

    def _refit_all(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None,
                   idx: Sequence[np.ndarray]) -> tuple[list[Replicate | None], np.ndarray]:

        refit = self._refitter(X, y, w)
        fits: list[Replicate | None] = []
        values = np.full(len(idx), np.nan)
        t0 = time.perf_counter()
        with single_threaded_blas():
            for b, rows in enumerate(idx):
                try:
                    f = refit(rows)
                    values[b] = self.value(f)
                except _FAIL:
                    f = None
                fits.append(f)
        self.refits += len(idx)
        self.seconds_refit += time.perf_counter() - t0
        return fits, values

    def outcome(self, point: Mapping[str, float], draw: tuple[int, float]) -> float:
        """A simulated outcome of a run at ``point``: a current refit's prediction plus seed noise."""
        b, e = draw
        x = np.array([[float(point[a]) for a in self.full.axes]])
        mean = float(np.asarray(self.replicates[b].predict_matrix(x)).ravel()[0])
        y = mean + self.sigma * e
        if self.full.direction.is_fraction:  # an accuracy stays inside (0, 1)
            return float(np.clip(y, 1e-4, 1 - 1e-4))
        return max(y, 1e-12 * abs(mean) + 1e-300)

    def after(self, point: Mapping[str, float]) -> tuple[Interval, list[Interval]]:
        """The expected interval after training a run at ``point`` (mean bounds over the outcome draws), and
        the interval of each draw."""
        x = np.array([[float(point[a]) for a in self.full.axes]])
        X = np.vstack([self.X, x])
        new = len(self.X)
        idx = [np.concatenate([rows, np.full(k, new, dtype=int)]) for rows, k in zip(self.idx, self.extra, strict=True)]
        per_draw = []
        for draw in self.draws:
            y = np.append(self.y, self.outcome(point, draw))
            w = None if self.w is None else np.append(self.w, np.median(self.w))
            _, values = self._refit_all(X, y, w, idx)
            per_draw.append(interval_of(values, self.level))
        lo = float(np.mean([i.lower for i in per_draw]))
        hi = float(np.mean([i.upper for i in per_draw]))
        return Interval(lo, hi, min(i.n_ok for i in per_draw)), per_draw


def cold_refitter(full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> Refit:
    """Refit every resample from scratch with the form's own ``fit`` (the baseline of bench/bench_suggest.py):
    the generic ``Form.refitter``, bypassing a form's warm-start override."""

    return Form.refitter(get_form(full.form), full, X, y, w, options=full.fit_options)


_JOB: dict[str, Any] = {}  # what forked workers inherit (the Preposterior holds closures, which do not pickle)


def _after_chunk(start: int, stop: int) -> list[tuple[Interval, int]]:
    pre, points = _JOB["pre"], _JOB["points"]
    out = []
    for i in range(start, stop):
        iv, _ = pre.after(points[i])
        out.append((iv, pre.refits))
    return out


def after_all(pre: Preposterior, points: Sequence[Mapping[str, float]], *, workers: int = 1,
              progress: Callable[[int, int], None] | None = None) -> list[Interval]:
    """``pre.after`` for every point, in order; ``workers`` > 1 forks processes where the platform can
    (results do not depend on it: every candidate uses the same resamples and outcome draws)."""
    n = len(points)
    ctx = fork_context(workers, n, 2 * workers)
    chunk = max(1, min(8, n // (4 * workers)))
    _JOB.update(pre=pre, points=list(points))
    refits_before = pre.refits
    try:
        results = map_chunks(_after_chunk, n, chunk, workers, ctx, progress)
    finally:
        _JOB.clear()
    # Each worker counted its own refits; the parent adds what an in-process run would have counted.
    pre.refits = refits_before + n * len(pre.draws) * len(pre.idx)
    return [iv for iv, _ in results]
