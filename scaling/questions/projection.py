"""Invert a fitted scaling surface: what scale reaches a target, and what it costs.

Three questions, each answered by a ``Projection``:

- ``project_scale``: multiply every axis of the largest trained point by one common factor k (axis i by
  k**w_i; w = 1 by default, the question of Orhan 2023) and find the smallest k that reaches the target;
- ``project_axis``: solve for one axis with the others held fixed;
- ``project_at``: evaluate the surface at a given point (e.g. 2.5B parameters, 20,000 h, 952 px).

Every answer says how many decades beyond the data it lies (per axis, log10 of value / largest observed
value), whether the target is reachable under the form at all ("beyond the fitted ceiling" when it lies
past the form's asymptote), and the pretraining compute it implies (``scaling.compute.flops``) when the axes
are the run database's ``n_params``, ``data_hours`` and ``image_px``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import brentq

from scaling.compute.flops import ComputeEstimate, compute_at
from scaling.core.direction import direction
from scaling.core.jsonable import JSONDict
from scaling.defaults import CAUTION_DECADES, COMPUTE_AXES
from scaling.errors import ProjectionError
from scaling.forms.result import FitLike

# Search range of the scale factor (or of one axis relative to its reference value), in decades.
SEARCH_DECADES = (-3.0, 12.0)
GRID_STEP_DECADES = 0.01


@dataclass(frozen=True)
class Projection:
    mode: str  # 'scale' | 'solve' | 'at'
    form: str
    kind: str
    target: float | None
    reachable: bool
    point: dict[str, float] | None
    predicted: float | None
    scale_factor: float | None  # k of 'scale'; axis value / reference value of 'solve'
    reference: dict[str, float]
    decades_beyond: dict[str, float] | None
    compute: ComputeEstimate | None
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def max_decades_beyond(self) -> float | None:
        if not self.decades_beyond:
            return None
        return max(self.decades_beyond.values())

    @property
    def caution(self) -> str | None:
        """A plain warning when the answer lies more than ``CAUTION_DECADES`` beyond the data on an axis."""
        if not self.decades_beyond:
            return None
        axis, far = max(self.decades_beyond.items(), key=lambda kv: kv[1])
        if far <= CAUTION_DECADES:
            return None
        return (f"{far:.1f} decades beyond the data along {axis}: an extrapolation this far rests on the form "
                "alone (see `scaling compare` for how each form predicted held-out larger runs)")

    def to_dict(self) -> JSONDict:
        return {
            "mode": self.mode,
            "form": self.form,
            "kind": self.kind,
            "target": self.target,
            "reachable": self.reachable,
            "reason": self.reason,
            "point": self.point,
            "predicted": self.predicted,
            "scale_factor": self.scale_factor,
            "reference": self.reference,
            "decades_beyond": self.decades_beyond,
            "max_decades_beyond": self.max_decades_beyond,
            "caution": self.caution,
            "compute": self.compute.to_dict() if self.compute else None,
            "details": self.details,
        }


def reference_point(fit: FitLike) -> dict[str, float]:
    """The largest trained point: the largest observed value of every axis."""
    return {a: float(fit.axis_ranges[a][1]) for a in fit.axes}


def decades_beyond(fit: FitLike, point: Mapping[str, float]) -> dict[str, float]:
    """log10(value / largest observed value) per axis; positive means beyond the data."""
    return {a: math.log10(point[a] / fit.axis_ranges[a][1]) for a in fit.axes}


def _predict_point(fit: FitLike, point: Mapping[str, float]) -> float:
    return float(fit.predict({a: np.array([point[a]]) for a in fit.axes})[0])


def _check_axes(fit: FitLike, point: Mapping[str, float], what: str, *, exact: bool = False) -> None:
    """Every axis of ``fit`` in ``point``, each a positive number (and, ``exact``, no other name)."""
    extra = [str(a) for a in point if a not in fit.axes] if exact else []
    if extra:
        raise ProjectionError(f"{what} names {extra[0]!r}, which is not an axis; the fit's axes are "
                              f"{', '.join(fit.axes)}")
    missing = [a for a in fit.axes if a not in point]
    if missing:
        raise ProjectionError(f"{what} lacks axis {missing[0]!r}; the fit's axes are {', '.join(fit.axes)}")
    bad = [a for a in fit.axes if not (math.isfinite(point[a]) and point[a] > 0)]
    if bad:
        raise ProjectionError(f"{what}: axis {bad[0]!r} must be a positive number, got {point[bad[0]]}")


def _compute(point: Mapping[str, float], assumptions: Any, details: dict[str, Any]) -> ComputeEstimate | None:
    """Pretraining compute at ``point``; None (with ``details['compute_note']``) when the model has none.

    ``assumptions``: fixed ``ComputeAssumptions``, or a training-length rule (``scaling.compute.training_length``)
    that gives them for the point."""
    if assumptions is None or not all(a in point for a in COMPUTE_AXES):
        return None
    if hasattr(assumptions, "at"):
        assumptions = assumptions.at(point)
    try:
        return compute_at(point, assumptions)
    except ValueError as exc:  # e.g. position embeddings alone exceed the parameter count
        details["compute_note"] = f"no compute estimate: {exc}"
        return None


def _unreachable_reason(fit: FitLike, target: float, best: float, what: str) -> str:
    d = direction(fit.kind)
    if fit.ceiling is not None and not d.meets_one(fit.ceiling, target):
        side = "above" if d.higher_is_better else "below"
        return f"unreachable under this form: target {target:g} is {side} the fitted ceiling {fit.ceiling:.4g}"
    hi = 10 ** SEARCH_DECADES[1]
    return f"not reached for {what} up to {hi:.0e} x the reference (best prediction {best:.4g})"


def crossing(logf: np.ndarray, ok: np.ndarray) -> tuple[int | None, str]:
    """Where a path on the log grid ``logf`` (0: the reference) meets the target, on the stretch connected
    to the reference: (i, '') with the crossing between logf[i - 1] and logf[i]; (0, 'floor') when the
    target is met from the reference down to the smallest factor searched; (None, 'below') when it is met
    only at factors below a reference that misses it; (None, 'never').

    A form can turn back outside its data (a quadratic in logs is U-shaped): its predictions at tiny scale
    can meet a target that the reference misses. That is not an answer to "how much larger", so the search
    goes up from the reference when the reference misses the target, and down only while it meets it."""
    j = int(np.argmin(np.abs(logf)))
    if ok[j]:
        missed = np.flatnonzero(~ok[:j])
        return (0, "floor") if missed.size == 0 else (int(missed[-1]) + 1, "")
    above = np.flatnonzero(ok[j:])
    if above.size:
        return j + int(above[0]), ""
    return None, "below" if ok.any() else "never"


def _solve_path(
    fit: FitLike, target: float, path: Any, *, what: str
) -> tuple[float | None, float, str]:
    """The factor f nearest the reference at which path(f) meets the target (``crossing``), on a log grid
    refined by root finding.

    ``path`` maps an array of factors to predictions. Returns (factor or None, best prediction, reason).
    """
    lo, hi = SEARCH_DECADES
    logf = np.arange(lo, hi + GRID_STEP_DECADES / 2, GRID_STEP_DECADES)
    pred = path(10.0**logf)
    d = direction(fit.kind)
    ok = d.meets(pred, target) & np.isfinite(pred)
    best = d.best(pred)
    i, status = crossing(logf, ok)
    if status == "never":
        return None, best, _unreachable_reason(fit, target, best, what)
    if status == "below":
        return None, best, (f"not reached for {what} above the reference; the form meets the target only at "
                            "smaller factors, where it turns back (a non-monotone fit outside its data)")
    if status == "floor" or i is None:
        return 10.0**lo, best, f"already reached at the smallest {what} searched ({10.0**lo:g} x the reference)"

    def gap(log_factor: float) -> float:
        return float(path(np.array([10.0**log_factor]))[0] - target)

    root = brentq(gap, logf[i - 1], logf[i], xtol=1e-12)
    return 10.0**root, best, ""


def project_scale(
    fit: FitLike,
    target: float,
    *,
    exponents: Mapping[str, float] | None = None,
    reference: Mapping[str, float] | None = None,
    compute: Any = None,
) -> Projection:
    """Smallest common factor k such that the point (x_i * k**w_i) reaches ``target``."""
    ref = dict(reference) if reference is not None else reference_point(fit)
    _check_axes(fit, ref, "reference point")
    w = {a: 1.0 for a in fit.axes} | dict(exponents or {})
    unknown = set(w) - set(fit.axes)
    if unknown:
        raise ProjectionError(f"scale exponent for unknown axis {sorted(unknown)[0]!r}; axes: {', '.join(fit.axes)}")

    def path(k: np.ndarray) -> np.ndarray:
        return fit.predict({a: ref[a] * k ** w[a] for a in fit.axes})

    k, best, reason = _solve_path(fit, target, path, what="scale factor")
    if k is None:
        return Projection("scale", fit.form, fit.kind, target, False, None, None, None, ref, None, None, reason,
                          {"exponents": w, "best_prediction": best})
    point = {a: ref[a] * k ** w[a] for a in fit.axes}
    details: dict[str, Any] = {"exponents": w}
    return Projection(
        "scale", fit.form, fit.kind, target, True, point, _predict_point(fit, point), k, ref,
        decades_beyond(fit, point), _compute(point, compute, details), reason, details,
    )


def project_axis(
    fit: FitLike,
    target: float,
    axis: str,
    *,
    fixed: Mapping[str, float] | None = None,
    compute: Any = None,
) -> Projection:
    """Value of ``axis`` that reaches ``target`` with the other axes fixed (default: their largest values)."""
    if axis not in fit.axes:
        raise ProjectionError(f"cannot solve for {axis!r}: the fit's axes are {', '.join(fit.axes)}")
    ref = reference_point(fit) | dict(fixed or {})
    _check_axes(fit, ref, "fixed point")

    def path(f: np.ndarray) -> np.ndarray:
        cols = {a: np.full_like(f, ref[a]) for a in fit.axes}
        cols[axis] = ref[axis] * f
        return fit.predict(cols)

    f, best, reason = _solve_path(fit, target, path, what=axis)
    details: dict[str, Any] = {"axis": axis, "best_prediction": best}
    if f is None:
        return Projection("solve", fit.form, fit.kind, target, False, None, None, None, ref, None, None, reason,
                          details)
    point = dict(ref) | {axis: ref[axis] * f}
    return Projection(
        "solve", fit.form, fit.kind, target, True, point, _predict_point(fit, point), f, ref,
        decades_beyond(fit, point), _compute(point, compute, details), reason, details,
    )


def project_at(
    fit: FitLike,
    point: Mapping[str, float],
    *,
    target: float | None = None,
    compute: Any = None,
) -> Projection:
    """The prediction at ``point``; ``reachable`` says whether it meets ``target`` (when one is given)."""
    _check_axes(fit, point, "evaluation point", exact=True)
    pt = {a: float(point[a]) for a in fit.axes}
    value = _predict_point(fit, pt)
    meets = True if target is None else direction(fit.kind).meets_one(value, target)
    reason = "" if meets else f"prediction {value:.4g} does not reach the target {target:g} at this point"
    details: dict[str, Any] = {}
    flag = direction(fit.kind).impossible(value)
    if flag:  # polynomial surfaces pass 100% far enough out: say so wherever the number is shown
        details["impossible"] = flag
        reason = f"{reason}; {flag}" if reason else flag
    return Projection(
        "at", fit.form, fit.kind, target, meets, pt, value, None, reference_point(fit),
        decades_beyond(fit, pt), _compute(pt, compute, details), reason, details,
    )
