"""Data of figure 3: iso-accuracy contours over (parameters, hours) at one resolution, the target contour,
the projected point and its interval (closed-form band or bootstrap). Drawn by ``scaling.plots.draw_fits``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath
from scipy.spatial import ConvexHull, QhullError

from scaling.core.direction import direction
from scaling.errors import ScalingError
from scaling.plots.style import (
    log_range,
)

if TYPE_CHECKING:
    from scaling.core.targets import Target
    from scaling.forms.result import FitResult
    from scaling.questions.projection import Projection
from scaling.plots.curves_data import metric_label
from scaling.questions.projection import reference_point

SEARCH_DECADES = 12.0  # how far along a projection ray the band bounds are searched


@dataclass(frozen=True)
class PointInterval:
    """Uncertainty of a projected point.

    ``accuracy``: interval of the prediction at the point. ``near``/``far``: where, along the ray from the
    largest trained run through the point (at the map's resolution), the optimistic / pessimistic bound
    meets the target (None when not within the search range). ``samples``: bootstrap projected points
    (columns n_params, data_hours), when the interval comes from a bootstrap.
    """

    level: float
    method: str
    accuracy: tuple[float, float] | None = None
    near: dict[str, float] | None = None
    far: dict[str, float] | None = None
    samples: pd.DataFrame | None = None

    def summary(self) -> dict[str, Any]:
        return {"level": self.level, "method": self.method,
                "accuracy": None if self.accuracy is None else list(self.accuracy),
                "near": self.near, "far": self.far,
                "n_samples": None if self.samples is None else len(self.samples)}


@dataclass(frozen=True)
class IsoData:
    n_params: np.ndarray  # (ny,) log-spaced
    data_hours: np.ndarray  # (nx,) log-spaced
    image_px: float | None
    accuracy: np.ndarray  # (ny, nx) predicted surface
    levels: np.ndarray  # contour levels (fractions), the target excluded
    target: float | None
    target_label: str
    outside: np.ndarray  # (ny, nx) bool: outside the convex hull of the trained (N, D) points
    hull: np.ndarray  # (k, 2) hull vertices (n_params, data_hours)
    observed: pd.DataFrame  # trained runs: n_params, data_hours, image_px, arch
    form: str
    y_label: str
    point: dict[str, float] | None = None  # the projection
    predicted: float | None = None  # the surface at the point (at the map's resolution)
    reference: dict[str, float] | None = None  # the largest trained point
    decades_beyond: dict[str, float] | None = None
    interval: PointInterval | None = None
    target_band: tuple[np.ndarray, np.ndarray] | None = None  # band bounds over the mesh
    band_level: float | None = None
    notes: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        return {
            "form": self.form, "image_px": self.image_px, "levels": [float(v) for v in self.levels],
            "target": self.target, "target_label": self.target_label,
            "n_params_range": [float(self.n_params[0]), float(self.n_params[-1])],
            "data_hours_range": [float(self.data_hours[0]), float(self.data_hours[-1])],
            "fraction_outside_data": float(self.outside.mean()),
            "point": self.point, "predicted": self.predicted, "reference": self.reference,
            "decades_beyond": self.decades_beyond,
            "interval": None if self.interval is None else self.interval.summary(),
            "notes": list(self.notes),
        }


def _target_value(target: float | Target | None) -> tuple[float | None, str]:
    if target is None:
        return None, ""
    if isinstance(target, int | float):
        return float(target), f"target {100 * float(target):.1f}%"
    return float(target.value), f"{target.name} {100 * target.value:.1f}%"


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise vertices) of 2-D points; degenerate inputs give their bounding box."""
    pts = np.unique(np.round(points, 12), axis=0)
    if len(pts) >= 3:

        try:
            return pts[ConvexHull(pts).vertices]
        except QhullError:  # collinear points
            pass
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])


def _ray_point(reference: Mapping[str, float], point: Mapping[str, float], s: float) -> dict[str, float]:
    return {a: reference[a] * (point[a] / reference[a]) ** s for a in ("n_params", "data_hours")}


def band_interval(
    fit: FitResult,
    point: Mapping[str, float],
    target: float,
    *,
    image_px: float | None = None,
    reference: Mapping[str, float] | None = None,
    level: float = 0.95,
    kind: str = "confidence",
) -> PointInterval | None:
    """The interval of a projected point from the fit's closed-form band (None for forms without one).

    ``accuracy`` is the band at the point. Along the ray in log (N, D) from ``reference`` (default: the
    largest trained point) through the point, at ``image_px`` (default: the point's), ``near`` is where the
    optimistic bound reaches the target and ``far`` where the pessimistic one does.
    """

    ref = dict(reference or reference_point(fit))
    px = {} if "image_px" not in fit.axes else {"image_px": float(image_px or point["image_px"])}
    at = {a: np.array([float(point[a])]) for a in fit.axes}
    band = fit.predict_interval(at, level=level, kind=kind)  # type: ignore[arg-type]
    if band is None:
        return None
    accuracy = (float(band[0][0]), float(band[1][0]))
    near = far = None
    u = max(abs(math.log10(point[a] / ref[a])) for a in ("n_params", "data_hours"))
    if u > 1e-9:
        s = np.linspace(0.0, SEARCH_DECADES / u, 4001)
        ray = _ray_point(ref, point, s)  # type: ignore[arg-type]
        lo, hi = fit.predict_interval({**ray, **{a: np.full_like(s, v) for a, v in px.items()}},
                                      level=level, kind=kind)  # type: ignore[arg-type]
        d = direction(fit.kind)
        # The optimistic bound reaches the target first ("near"), the pessimistic one last ("far").
        for bound, slot in ((hi if d.higher_is_better else lo, "near"), (lo if d.higher_is_better else hi, "far")):
            ok = d.meets(bound, target)
            if ok.any():
                i = int(np.argmax(ok))
                if i > 0:  # linear interpolation in s between the bracketing grid points
                    b0, b1 = float(bound[i - 1]), float(bound[i])
                    si = s[i - 1] + (s[i] - s[i - 1]) * (target - b0) / (b1 - b0)
                else:
                    si = float(s[0])
                found = _ray_point(ref, point, float(si))
                if slot == "near":
                    near = found
                else:
                    far = found
    return PointInterval(level, f"{100 * level:.0f}% {kind} band (closed form)", accuracy, near, far)


def bootstrap_interval(boot: Any, projection: Projection, *, level: float = 0.95) -> PointInterval:
    """The interval of a projected point from a ``scaling.uncertainty.bootstrap`` run with ``projection_quantities``.

    ``near``/``far`` are the percentile bounds of the projected axes (``scale.<axis>`` for a scale
    projection, ``solve.<axis>`` for a solve; a scale projection's axes all move with one factor, so the
    bounds lie on its path); ``accuracy`` is the interval of ``at.predicted`` when the bootstrap evaluated
    the surface at the projected point (``at=projection.point``; at another point it is left out). An
    unbounded upper end (the target is not reached in more than the tail share of resamples) leaves
    ``far`` None. ``samples`` holds the resamples' projected (n_params, data_hours).
    """
    if level not in boot.levels:
        have = ", ".join(f"{v:g}" for v in boot.levels)
        raise ScalingError(f"the bootstrap has no {level:g} intervals (levels: {have})")
    accuracy = None
    at = boot.derived.get("at.predicted")
    # Only when the bootstrap evaluated the surface at this very point (its full-data estimate is then the
    # projection's prediction); `scaling project --bootstrap` evaluates it at --at, another point.
    if at is not None and projection.predicted is not None and at.estimate is not None \
            and math.isclose(at.estimate, projection.predicted, rel_tol=1e-9, abs_tol=1e-12):
        accuracy = tuple(float(v) for v in boot.interval("at.predicted", level))
    near = far = None
    samples = None
    prefix = {"scale": "scale", "solve": "solve"}.get(projection.mode)
    if prefix is not None and projection.point is not None:
        moved = [a for a in ("n_params", "data_hours") if f"{prefix}.{a}" in boot.samples]
        if moved:
            lo = {a: boot.interval(f"{prefix}.{a}", level)[0] for a in moved}
            hi = {a: boot.interval(f"{prefix}.{a}", level)[1] for a in moved}
            fixed = {a: projection.point[a] for a in ("n_params", "data_hours") if a not in moved}
            if all(math.isfinite(v) for v in lo.values()):
                near = fixed | lo
            if all(math.isfinite(v) for v in hi.values()):
                far = fixed | hi
            cols = {a: boot.samples[f"{prefix}.{a}"] for a in moved}
            frame = pd.DataFrame({a: cols.get(a, np.full(len(next(iter(cols.values()))), fixed.get(a, np.nan)))
                                  for a in ("n_params", "data_hours")})
            samples = frame[np.isfinite(frame).all(axis=1)].reset_index(drop=True)
    method = f"bootstrap {100 * level:.0f}% percentile interval ({boot.n_ok} resamples)"
    return PointInterval(level, method, accuracy, near, far, samples)  # type: ignore[arg-type]


def iso_accuracy_data(
    fit: FitResult,
    *,
    grid: pd.DataFrame | None = None,
    image_px: float | None = None,
    target: float | Target | None = None,
    projection: Projection | None = None,
    levels: Sequence[float] | None = None,
    interval: PointInterval | str | None = "band",
    level: float = 0.95,
    n_params_range: tuple[float, float] | None = None,
    hours_range: tuple[float, float] | None = None,
    n: int = 160,
) -> IsoData:
    """The fitted surface over a log mesh of (parameters, hours) at one resolution, for figure 3.

    ``image_px`` defaults to the projection's resolution (so the projected point lies on the target
    contour), else to the largest trained one. ``levels`` default to every 10% inside the surface's
    range. ``interval='band'`` derives the projection's interval from the fit's confidence band
    (``band_interval``); pass a ``PointInterval`` (e.g. from a bootstrap) or None instead. The region
    outside the convex hull of the trained (N, D) points is flagged in ``outside``.
    """
    for a in ("n_params", "data_hours"):
        if a not in fit.axes:
            raise ScalingError(f"an iso-accuracy map needs axes n_params and data_hours; the fit has "
                               f"{', '.join(fit.axes)}")
    extra = [a for a in fit.axes if a not in ("n_params", "data_hours", "image_px")]
    if extra:
        raise ScalingError(f"cannot map a fit with axis {extra[0]!r} over (parameters, hours)")
    notes: list[str] = []
    point = dict(projection.point) if projection is not None and projection.point else None
    if projection is not None and not projection.point:
        notes.append(f"projection not drawn: {projection.reason or 'no point'}")
    if "image_px" in fit.axes:
        if image_px is None:
            image_px = point["image_px"] if point else fit.axis_ranges["image_px"][1]
        image_px = float(image_px)
    else:
        image_px = None
    tval, tlabel = _target_value(target if target is not None else (projection.target if projection else None))

    if grid is not None and len(grid):
        observed = grid[[c for c in ("n_params", "data_hours", "image_px", "arch") if c in grid.columns]].copy()
        obs_pts = observed[["n_params", "data_hours"]].to_numpy(dtype=float)
    else:
        observed = pd.DataFrame(columns=["n_params", "data_hours", "image_px", "arch"])
        (n0, n1), (d0, d1) = fit.axis_ranges["n_params"], fit.axis_ranges["data_hours"]
        obs_pts = np.array([[n0, d0], [n1, d0], [n1, d1], [n0, d1]], dtype=float)
    hull_log = _hull(np.log10(obs_pts))


    ref = reference_point(fit)
    pint: PointInterval | None = None
    want_band = False
    if isinstance(interval, PointInterval):
        pint = interval
    elif interval == "band":
        want_band = True
        if point and tval is not None:
            pint = band_interval(fit, point, tval, image_px=image_px, reference=ref, level=level)
    elif interval is not None:
        raise ScalingError(f"interval must be 'band', a PointInterval or None; got {interval!r}")

    ends = [q for q in ([point] if point else []) + ([pint.near, pint.far] if pint else []) if q]
    extent_n = [*obs_pts[:, 0], *(q["n_params"] for q in ends)]
    extent_d = [*obs_pts[:, 1], *(q["data_hours"] for q in ends)]
    nr = n_params_range or log_range(extent_n, pad_decades=0.3)
    hr = hours_range or log_range(extent_d, pad_decades=0.3)
    N = np.logspace(math.log10(nr[0]), math.log10(nr[1]), n)
    D = np.logspace(math.log10(hr[0]), math.log10(hr[1]), n)
    DD, NN = np.meshgrid(D, N)
    X: dict[str, Any] = {"n_params": NN, "data_hours": DD}
    if image_px is not None:
        X["image_px"] = np.full_like(NN, image_px)
    acc = np.asarray(fit.predict(X), dtype=float)

    if levels is None:
        finite = acc[np.isfinite(acc)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        cand = np.round(np.arange(0.1, 1.0, 0.1), 10)
        levels_arr = cand[(cand > lo) & (cand < min(hi, 1.0))]
    else:
        levels_arr = np.asarray(sorted(float(v) for v in levels))
    if tval is not None:
        levels_arr = levels_arr[~np.isclose(levels_arr, tval, atol=5e-3)]

    path = MplPath(hull_log)
    mesh = np.column_stack([np.log10(NN).ravel(), np.log10(DD).ravel()])
    inside = path.contains_points(mesh, radius=1e-9) | path.contains_points(mesh, radius=-1e-9)
    outside = ~inside.reshape(NN.shape)
    hull = 10.0 ** hull_log

    predicted = decades = None
    if point:
        at = {a: np.array([point[a]]) for a in fit.axes if a != "image_px"}
        if image_px is not None:
            at["image_px"] = np.array([image_px])
        predicted = float(np.asarray(fit.predict(at)).ravel()[0])
        decades = {a: math.log10(point[a] / fit.axis_ranges[a][1]) for a in fit.axes}
    if image_px is not None and image_px > fit.axis_ranges["image_px"][1] * (1 + 1e-9):
        beyond = math.log10(image_px / fit.axis_ranges["image_px"][1])
        notes.append(f"the whole map is {beyond:.2f} decades beyond the largest trained resolution "
                     f"({fit.axis_ranges['image_px'][1]:.0f} px)")

    target_band = None
    if want_band:
        bounds = fit.predict_interval(X, level=level, kind="confidence")
        if bounds is None:
            notes.append(f"form {fit.form!r} has no closed-form band; no interval drawn (use a bootstrap)")
        else:
            target_band = (np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float))
    return IsoData(
        n_params=N, data_hours=D, image_px=image_px, accuracy=acc, levels=levels_arr, target=tval,
        target_label=tlabel, outside=outside, hull=hull, observed=observed, form=fit.form,
        y_label=metric_label(grid), point=point, predicted=predicted, reference=ref, decades_beyond=decades,
        interval=pint, target_band=target_band, band_level=level if target_band is not None else None,
        notes=tuple(notes),
    )
