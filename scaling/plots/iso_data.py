"""Data of figure 3: iso-accuracy contours over (parameters, hours) at one resolution, the target contour,
the projected point and its interval (closed-form band or bootstrap). Drawn by ``scaling.plots.draw_fits``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath
from scipy.spatial import ConvexHull, QhullError

from scaling.core.direction import Direction, direction
from scaling.errors import ScalingError
from scaling.plots.style import log_range

if TYPE_CHECKING:
    from scaling.core.targets import Target
    from scaling.forms.result import FitResult, IntervalKind
    from scaling.questions.projection import Projection
    from scaling.uncertainty.bootstrap import BootstrapResult
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


S = TypeVar("S", float, np.ndarray)


def _ray_point(reference: Mapping[str, float], point: Mapping[str, float], s: S) -> dict[str, S]:
    """The point ``s`` of the way along the ray in log (N, D) from ``reference`` (s = 0) through ``point`` (s = 1)."""
    return {a: reference[a] * (point[a] / reference[a]) ** s for a in ("n_params", "data_hours")}


def band_interval(
    fit: FitResult,
    point: Mapping[str, float],
    target: float,
    *,
    image_px: float | None = None,
    reference: Mapping[str, float] | None = None,
    level: float = 0.95,
    kind: IntervalKind = "confidence",
) -> PointInterval | None:
    """The interval of a projected point from the fit's closed-form band (None for forms without one).

    ``accuracy`` is the band at the point. Along the ray in log (N, D) from ``reference`` (default: the
    largest trained point) through the point, at ``image_px`` (default: the point's), ``near`` is where the
    optimistic bound reaches the target and ``far`` where the pessimistic one does.
    """

    ref = dict(reference or reference_point(fit))
    px = {} if "image_px" not in fit.axes else {"image_px": float(image_px or point["image_px"])}
    at = {a: np.array([float(point[a])]) for a in fit.axes}
    band = fit.predict_interval(at, level=level, kind=kind)
    if band is None:
        return None
    accuracy = (float(band[0][0]), float(band[1][0]))
    near, far = _band_ends(fit, ref, point, target, px, level=level, kind=kind)
    return PointInterval(level, f"{100 * level:.0f}% {kind} band (closed form)", accuracy, near, far)


def _band_ends(fit: FitResult, reference: Mapping[str, float], point: Mapping[str, float], target: float,
               px: Mapping[str, float], *, level: float, kind: IntervalKind
               ) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """(near, far) of ``band_interval``: where along the ray from ``reference`` through ``point`` (at ``px``)
    the optimistic and the pessimistic bound of the band reach ``target``; None where not within
    ``SEARCH_DECADES`` of the reference."""
    u = max(abs(math.log10(point[a] / reference[a])) for a in ("n_params", "data_hours"))
    if not u > 1e-9:  # the point is the reference: no ray
        return None, None
    s = np.linspace(0.0, SEARCH_DECADES / u, 4001)
    ray = _ray_point(reference, point, s)
    bounds = fit.predict_interval({**ray, **{a: np.full_like(s, v) for a, v in px.items()}}, level=level, kind=kind)
    if bounds is None:  # a form has a band everywhere or nowhere: band_interval saw one at the point
        return None, None
    lo, hi = bounds
    d = direction(fit.kind)
    # The optimistic bound reaches the target first ("near"), the pessimistic one last ("far").
    ends = [_first_reach(bound, s, target, d) for bound in ((hi, lo) if d.higher_is_better else (lo, hi))]
    near, far = (None if si is None else _ray_point(reference, point, si) for si in ends)
    return near, far


def _first_reach(bound: np.ndarray, s: np.ndarray, target: float, d: Direction) -> float | None:
    """The first ``s`` where ``bound`` (over the grid ``s``) reaches ``target``, interpolated linearly between the
    bracketing grid points; None where it never does."""
    ok = d.meets(bound, target)
    if not ok.any():
        return None
    i = int(np.argmax(ok))
    if i == 0:
        return float(s[0])
    b0, b1 = float(bound[i - 1]), float(bound[i])
    return float(s[i - 1] + (s[i] - s[i - 1]) * (target - b0) / (b1 - b0))


def bootstrap_interval(boot: BootstrapResult, projection: Projection, *, level: float = 0.95) -> PointInterval:
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
        lo, hi = boot.interval("at.predicted", level)
        accuracy = (float(lo), float(hi))
    near = far = None
    samples = None
    prefix = {"scale": "scale", "solve": "solve"}.get(projection.mode)
    if prefix is not None and projection.point is not None:
        moved = [a for a in ("n_params", "data_hours") if f"{prefix}.{a}" in boot.samples]
        if moved:
            low = {a: boot.interval(f"{prefix}.{a}", level)[0] for a in moved}
            high = {a: boot.interval(f"{prefix}.{a}", level)[1] for a in moved}
            fixed = {a: projection.point[a] for a in ("n_params", "data_hours") if a not in moved}
            if all(math.isfinite(v) for v in low.values()):
                near = fixed | low
            if all(math.isfinite(v) for v in high.values()):
                far = fixed | high
            cols = {a: boot.samples[f"{prefix}.{a}"] for a in moved}
            frame = pd.DataFrame({a: cols.get(a, np.full(len(next(iter(cols.values()))), fixed.get(a, np.nan)))
                                  for a in ("n_params", "data_hours")})
            samples = frame.loc[np.isfinite(frame.to_numpy(dtype=float)).all(axis=1)].reset_index(drop=True)
    method = f"bootstrap {100 * level:.0f}% percentile interval ({boot.n_ok} resamples)"
    return PointInterval(level, method, accuracy, near, far, samples)


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
    _check_map_axes(fit)
    notes: list[str] = []
    point = dict(projection.point) if projection is not None and projection.point else None
    if projection is not None and not projection.point:
        notes.append(f"projection not drawn: {projection.reason or 'no point'}")
    image_px = _map_resolution(fit, image_px, point)
    tval, tlabel = _target_value(target if target is not None else (projection.target if projection else None))
    observed, obs_pts = _trained_points(fit, grid)
    hull_log = _hull(np.log10(obs_pts))
    ref = reference_point(fit)
    pint, want_band = _projection_interval(fit, interval, point, tval, image_px=image_px, reference=ref,
                                           level=level)
    ends = [q for q in ([point] if point else []) + ([pint.near, pint.far] if pint else []) if q]
    N, D, X = _mesh(obs_pts, ends, image_px, n_params_range=n_params_range, hours_range=hours_range, n=n)
    acc = np.asarray(fit.predict(X), dtype=float)
    levels_arr = _contour_levels(acc, levels, tval)
    outside = _outside(hull_log, X["n_params"], X["data_hours"])
    predicted, decades = _at_point(fit, point, image_px)
    if image_px is not None and image_px > fit.axis_ranges["image_px"][1] * (1 + 1e-9):
        beyond = math.log10(image_px / fit.axis_ranges["image_px"][1])
        notes.append(f"the whole map is {beyond:.2f} decades beyond the largest trained resolution "
                     f"({fit.axis_ranges['image_px'][1]:.0f} px)")
    target_band = _mesh_band(fit, X, level) if want_band else None
    if want_band and target_band is None:
        notes.append(f"form {fit.form!r} has no closed-form band; no interval drawn (use a bootstrap)")
    return IsoData(
        n_params=N, data_hours=D, image_px=image_px, accuracy=acc, levels=levels_arr, target=tval,
        target_label=tlabel, outside=outside, hull=10.0 ** hull_log, observed=observed, form=fit.form,
        y_label=metric_label(grid), point=point, predicted=predicted, reference=ref, decades_beyond=decades,
        interval=pint, target_band=target_band, band_level=level if target_band is not None else None,
        notes=tuple(notes),
    )


def _check_map_axes(fit: FitResult) -> None:
    """A map needs the axes n_params and data_hours, and no axis but those and image_px."""
    for a in ("n_params", "data_hours"):
        if a not in fit.axes:
            raise ScalingError(f"an iso-accuracy map needs axes n_params and data_hours; the fit has "
                               f"{', '.join(fit.axes)}")
    extra = [a for a in fit.axes if a not in ("n_params", "data_hours", "image_px")]
    if extra:
        raise ScalingError(f"cannot map a fit with axis {extra[0]!r} over (parameters, hours)")


def _map_resolution(fit: FitResult, image_px: float | None, point: Mapping[str, float] | None) -> float | None:
    """The map's image size: ``image_px``, else the projected point's, else the largest trained one (None
    for a fit without an image_px axis)."""
    if "image_px" not in fit.axes:
        return None
    if image_px is None:
        image_px = point["image_px"] if point else fit.axis_ranges["image_px"][1]
    return float(image_px)


def _trained_points(fit: FitResult, grid: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The trained runs drawn (n_params, data_hours, image_px, arch) and their (N, D) points; without a grid,
    none drawn and the corners of the fit's (N, D) ranges."""
    if grid is not None and len(grid):
        observed = grid[[c for c in ("n_params", "data_hours", "image_px", "arch") if c in grid.columns]].copy()
        return observed, observed[["n_params", "data_hours"]].to_numpy(dtype=float)
    observed = pd.DataFrame(columns=["n_params", "data_hours", "image_px", "arch"])
    (n0, n1), (d0, d1) = fit.axis_ranges["n_params"], fit.axis_ranges["data_hours"]
    return observed, np.array([[n0, d0], [n1, d0], [n1, d1], [n0, d1]], dtype=float)


def _projection_interval(fit: FitResult, interval: PointInterval | str | None, point: Mapping[str, float] | None,
                         target: float | None, *, image_px: float | None, reference: Mapping[str, float],
                         level: float) -> tuple[PointInterval | None, bool]:
    """The projection's interval as ``interval`` asks (a ``PointInterval`` as given, 'band' from the fit's band,
    None none), and whether the map draws the band of the target contour ('band')."""
    if isinstance(interval, PointInterval):
        return interval, False
    if interval == "band":
        if point and target is not None:
            return band_interval(fit, point, target, image_px=image_px, reference=reference, level=level), True
        return None, True
    if interval is not None:
        raise ScalingError(f"interval must be 'band', a PointInterval or None; got {interval!r}")
    return None, False


def _mesh(obs_pts: np.ndarray, ends: Sequence[Mapping[str, float]], image_px: float | None, *,
          n_params_range: tuple[float, float] | None, hours_range: tuple[float, float] | None, n: int
          ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The map's axes (N, D: ``n`` log-spaced values each, by default over the trained points and the
    projection's ends with 0.3 decades to spare) and the (N, D, image_px) mesh the surface is predicted on."""
    extent_n = [*obs_pts[:, 0], *(q["n_params"] for q in ends)]
    extent_d = [*obs_pts[:, 1], *(q["data_hours"] for q in ends)]
    nr = n_params_range or log_range(extent_n, pad_decades=0.3)
    hr = hours_range or log_range(extent_d, pad_decades=0.3)
    N = np.logspace(math.log10(nr[0]), math.log10(nr[1]), n)
    D = np.logspace(math.log10(hr[0]), math.log10(hr[1]), n)
    DD, NN = np.meshgrid(D, N)
    X = {"n_params": NN, "data_hours": DD}
    if image_px is not None:
        X["image_px"] = np.full_like(NN, image_px)
    return N, D, X


def _contour_levels(acc: np.ndarray, levels: Sequence[float] | None, target: float | None) -> np.ndarray:
    """``levels`` sorted, or every 10% strictly inside the surface's range; the target's level left out."""
    if levels is None:
        finite = acc[np.isfinite(acc)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        cand = np.round(np.arange(0.1, 1.0, 0.1), 10)
        out = cand[(cand > lo) & (cand < min(hi, 1.0))]
    else:
        out = np.asarray(sorted(float(v) for v in levels))
    if target is not None:
        out = out[~np.isclose(out, target, atol=5e-3)]
    return out


def _outside(hull_log: np.ndarray, NN: np.ndarray, DD: np.ndarray) -> np.ndarray:
    """True where the mesh lies outside the hull of the trained points (in log10 (N, D))."""
    path = MplPath(hull_log)
    mesh = np.column_stack([np.log10(NN).ravel(), np.log10(DD).ravel()])
    inside = path.contains_points(mesh, radius=1e-9) | path.contains_points(mesh, radius=-1e-9)
    return ~inside.reshape(NN.shape)


def _at_point(fit: FitResult, point: Mapping[str, float] | None, image_px: float | None
              ) -> tuple[float | None, dict[str, float] | None]:
    """The surface at the projected point (at the map's resolution) and how many decades beyond the largest
    trained value each of the point's axes lies; (None, None) without a point."""
    if not point:
        return None, None
    at = {a: np.array([point[a]]) for a in fit.axes if a != "image_px"}
    if image_px is not None:
        at["image_px"] = np.array([image_px])
    predicted = float(np.asarray(fit.predict(at)).ravel()[0])
    return predicted, {a: math.log10(point[a] / fit.axis_ranges[a][1]) for a in fit.axes}


def _mesh_band(fit: FitResult, X: Mapping[str, np.ndarray], level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The fit's confidence band over the mesh (the target contour's band); None for a form without one."""
    bounds = fit.predict_interval(X, level=level, kind="confidence")
    if bounds is None:
        return None
    return np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float)
