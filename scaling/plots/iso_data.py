"""Data of figure 3: iso-accuracy contours over two axes of a fit (parameters and hours on the run database,
at one resolution; any two axes of any table, the others held), the target contour, the projected point and
its interval (closed-form band or bootstrap). Drawn by ``scaling.plots.draw_fits``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd
from matplotlib.path import Path as MplPath
from matplotlib.ticker import MaxNLocator
from scipy.spatial import ConvexHull, QhullError

from scaling.core import checks
from scaling.core.direction import Direction, direction
from scaling.errors import ScalingError
from scaling.plots.labels import Quantity, fmt_level, quantity_of
from scaling.plots.style import log_range

if TYPE_CHECKING:
    from scaling.core.targets import Target
    from scaling.forms.result import FitResult, IntervalKind
    from scaling.questions.projection import Projection
    from scaling.uncertainty.bootstrap import BootstrapResult
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
    """The predicted surface over a log mesh of two axes (``x_axis`` across, ``y_axis`` up), the fit's other
    axes held at ``held``; the target contour, the trained points and the projection with its interval.
    ``n_params``, ``data_hours`` and ``image_px`` read the run database's map (hours across, parameters up)."""

    x: np.ndarray  # (nx,) log-spaced values of x_axis (across)
    y: np.ndarray  # (ny,) log-spaced values of y_axis (up)
    held: dict[str, float]  # the fit's other axes, at the values the map is drawn at
    surface: np.ndarray  # (ny, nx) the predicted response
    levels: np.ndarray  # contour levels (in the response's units: fractions for an accuracy), target excluded
    target: float | None
    target_label: str
    outside: np.ndarray  # (ny, nx) bool: outside the convex hull of the trained points
    hull: np.ndarray  # (k, 2) hull vertices (y_axis, x_axis)
    observed: pd.DataFrame  # trained points: the fit's axes (and arch on the run database)
    form: str
    y_label: str  # the response's name
    point: dict[str, float] | None = None  # the projection
    predicted: float | None = None  # the surface at the point (with the map's held values)
    reference: dict[str, float] | None = None  # the largest trained point
    decades_beyond: dict[str, float] | None = None
    interval: PointInterval | None = None
    target_band: tuple[np.ndarray, np.ndarray] | None = None  # band bounds over the mesh
    band_level: float | None = None
    notes: tuple[str, ...] = ()
    x_axis: str = "data_hours"
    y_axis: str = "n_params"
    quantity: Quantity | None = None  # what the surface is (name, percent or not); None: an accuracy

    @property
    def shown(self) -> Quantity:
        return self.quantity or Quantity(self.y_label)

    @property
    def accuracy(self) -> np.ndarray:
        """The surface (named for the run database's accuracy; a loss on a loss table)."""
        return self.surface

    def axis_values(self, axis: str) -> np.ndarray:
        """The mesh values of ``axis`` (one of the map's two)."""
        if axis == self.x_axis:
            return self.x
        if axis == self.y_axis:
            return self.y
        raise AttributeError(f"{axis!r} is not an axis of this map ({self.x_axis} across, {self.y_axis} up)")

    @property
    def n_params(self) -> np.ndarray:
        return self.axis_values("n_params")

    @property
    def data_hours(self) -> np.ndarray:
        return self.axis_values("data_hours")

    @property
    def image_px(self) -> float | None:
        """The resolution the map is drawn at (None without an image_px axis held)."""
        return self.held.get("image_px")

    def summary(self) -> dict[str, Any]:
        return {
            "form": self.form, "map_axes": [self.x_axis, self.y_axis], "held": dict(self.held),
            "image_px": self.image_px, "levels": [float(v) for v in self.levels],
            "target": self.target, "target_label": self.target_label,
            f"{self.y_axis}_range": [float(self.y[0]), float(self.y[-1])],
            f"{self.x_axis}_range": [float(self.x[0]), float(self.x[-1])],
            "fraction_outside_data": float(self.outside.mean()),
            "point": self.point, "predicted": self.predicted, "reference": self.reference,
            "decades_beyond": self.decades_beyond,
            "interval": None if self.interval is None else self.interval.summary(),
            "notes": list(self.notes),
        }


def default_map_axes(axes: Sequence[str]) -> tuple[str, str]:
    """(across, up) of a map: hours across and parameters up where both are axes (the run database's map);
    else a table's last axis across and its first up (tokens across, parameters up)."""
    axes = list(axes)
    if "data_hours" in axes and "n_params" in axes:
        return "data_hours", "n_params"
    if len(axes) < 2:
        raise ScalingError(f"an iso map needs two axes; the fit has {len(axes)} ({', '.join(axes)})")
    return axes[-1], axes[0]


def _map_axes(fit: FitResult, map_axes: Sequence[str] | None) -> tuple[str, str]:
    """The map's (across, up): ``map_axes`` checked against the fit's axes, else ``default_map_axes``."""
    if map_axes is None:
        return default_map_axes(fit.axes)
    chosen = tuple(map_axes)
    if len(chosen) != 2 or chosen[0] == chosen[1]:
        raise ScalingError(f"a map is over two different axes (across, up); got {', '.join(map(str, chosen))}")
    unknown = [a for a in chosen if a not in fit.axes]
    if unknown:
        raise ScalingError(f"{unknown[0]!r} is not an axis of the fit ({', '.join(fit.axes)})")
    return chosen[0], chosen[1]


def _target_value(target: float | Target | None, shown: Quantity) -> tuple[float | None, str]:
    if target is None:
        return None, ""
    if isinstance(target, int | float):
        return float(target), f"target {shown.text(float(target))}"
    text = shown.text(target.value)
    return float(target.value), target.name if not shown.percent and text in target.name else f"{target.name} {text}"


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
MapAxes = tuple[str, str]


def _ray_point(reference: Mapping[str, float], point: Mapping[str, float], s: S,
               axes: Sequence[str] = ("n_params", "data_hours")) -> dict[str, S]:
    """The point ``s`` of the way along the ray in log ``axes`` (the map's two) from ``reference`` (s = 0)
    through ``point`` (s = 1)."""
    return {a: reference[a] * (point[a] / reference[a]) ** s for a in axes}


def band_interval(
    fit: FitResult,
    point: Mapping[str, float],
    target: float,
    *,
    image_px: float | None = None,
    reference: Mapping[str, float] | None = None,
    level: float = 0.95,
    kind: IntervalKind = "confidence",
    map_axes: Sequence[str] | None = None,
    held: Mapping[str, float] | None = None,
) -> PointInterval | None:
    """The interval of a projected point from the fit's closed-form band (None for forms without one).

    ``accuracy`` is the band at the point. Along the ray in log ``map_axes`` (default: parameters and hours,
    or ``default_map_axes``) from ``reference`` (default: the largest trained point) through the point, with
    the other axes at ``held`` (default: the point's; ``image_px`` sets that one), ``near`` is where the
    optimistic bound reaches the target and ``far`` where the pessimistic one does.
    """

    ref = dict(reference or reference_point(fit))
    axes = _map_axes(fit, map_axes)
    fixed = {a: float((held or {}).get(a, point[a])) for a in fit.axes if a not in axes}
    if image_px is not None and "image_px" in fixed:
        fixed["image_px"] = float(image_px)
    at = {a: np.array([float(point[a])]) for a in fit.axes}
    band = fit.predict_interval(at, level=level, kind=kind)
    if band is None:
        return None
    accuracy = (float(band[0][0]), float(band[1][0]))
    near, far = _band_ends(fit, ref, point, target, fixed, axes, level=level, kind=kind)
    return PointInterval(level, f"{100 * level:.0f}% {kind} band (closed form)", accuracy, near, far)


def _band_ends(fit: FitResult, reference: Mapping[str, float], point: Mapping[str, float], target: float,
               fixed: Mapping[str, float], axes: MapAxes, *, level: float, kind: IntervalKind
               ) -> tuple[dict[str, float] | None, dict[str, float] | None]:
    """(near, far) of ``band_interval``: where along the ray in log ``axes`` from ``reference`` through
    ``point`` (the other axes at ``fixed``) the optimistic and the pessimistic bound of the band reach
    ``target``; None where not within ``SEARCH_DECADES`` of the reference."""
    u = max(abs(math.log10(point[a] / reference[a])) for a in axes)
    if not u > 1e-9:  # the point is the reference: no ray
        return None, None
    s = np.linspace(0.0, SEARCH_DECADES / u, 4001)
    ray = _ray_point(reference, point, s, axes)
    bounds = fit.predict_interval({**ray, **{a: np.full_like(s, v) for a, v in fixed.items()}}, level=level,
                                  kind=kind)
    if bounds is None:  # a form has a band everywhere or nowhere: band_interval saw one at the point
        return None, None
    lo, hi = bounds
    d = direction(fit.kind)
    # The optimistic bound reaches the target first ("near"), the pessimistic one last ("far").
    ends = [_first_reach(bound, s, target, d) for bound in ((hi, lo) if d.higher_is_better else (lo, hi))]
    near, far = (None if si is None else _ray_point(reference, point, si, axes) for si in ends)
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


def bootstrap_interval(boot: BootstrapResult, projection: Projection, *, level: float = 0.95,
                       map_axes: Sequence[str] | None = None) -> PointInterval:
    """The interval of a projected point from a ``scaling.uncertainty.bootstrap`` run with ``projection_quantities``.

    ``near``/``far`` are the percentile bounds of the projected axes (``scale.<axis>`` for a scale
    projection, ``solve.<axis>`` for a solve; a scale projection's axes all move with one factor, so the
    bounds lie on its path); ``accuracy`` is the interval of ``at.predicted`` when the bootstrap evaluated
    the surface at the projected point (``at=projection.point``; at another point it is left out). An
    unbounded upper end (the target is not reached in more than the tail share of resamples) leaves
    ``far`` None. ``samples`` holds the resamples' projected values of the map's two axes (``map_axes``,
    (across, up); default: ``default_map_axes`` of the projection's axes: (n_params, data_hours) columns on
    the run database).
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
        across, up = tuple(map_axes) if map_axes is not None else default_map_axes(list(projection.point))
        pair = (up, across)
        moved = [a for a in pair if f"{prefix}.{a}" in boot.samples]
        if moved:
            low = {a: boot.interval(f"{prefix}.{a}", level)[0] for a in moved}
            high = {a: boot.interval(f"{prefix}.{a}", level)[1] for a in moved}
            fixed = {a: projection.point[a] for a in pair if a not in moved}
            if all(math.isfinite(v) for v in low.values()):
                near = fixed | low
            if all(math.isfinite(v) for v in high.values()):
                far = fixed | high
            cols = {a: boot.samples[f"{prefix}.{a}"] for a in moved}
            frame = pd.DataFrame({a: cols.get(a, np.full(len(next(iter(cols.values()))), fixed.get(a, np.nan)))
                                  for a in pair})
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
    map_axes: Sequence[str] | None = None,
    held: Mapping[str, float] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> IsoData:
    """The fitted surface over a log mesh of two of the fit's axes, for figure 3.

    ``map_axes`` (across, up) default to hours and parameters on the run database, else to a table's last
    and first axes (``default_map_axes``). The other axes are held at ``held`` (``image_px`` sets the
    resolution), by default at the projection's values (so the projected point lies on the target contour),
    else at their largest trained values. ``levels`` default to every 10% inside the surface's range for an
    accuracy, about eight round values for a loss. ``interval='band'`` derives the projection's interval from
    the fit's confidence band (``band_interval``); pass a ``PointInterval`` (e.g. from a bootstrap) or None
    instead. ``ranges`` (axis -> (low, high); ``n_params_range`` and ``hours_range`` for the run database's)
    set the mesh, by default the trained points and the projection's ends with 0.3 decades to spare. The
    region outside the convex hull of the trained points is flagged in ``outside``.
    """
    axes = _map_axes(fit, map_axes)
    shown = quantity_of(fit, grid)
    notes: list[str] = []
    point = dict(projection.point) if projection is not None and projection.point else None
    if projection is not None and not projection.point:
        notes.append(f"projection not drawn: {projection.reason or 'no point'}")
    fixed = _held_values(fit, axes, held, image_px, point)
    tval, tlabel = _target_value(target if target is not None else (projection.target if projection else None),
                                 shown)
    observed, obs_pts = _trained_points(fit, grid, axes)
    hull_log = _hull(np.log10(obs_pts))
    ref = reference_point(fit)
    pint, want_band = _projection_interval(fit, interval, point, tval, fixed=fixed, reference=ref, level=level,
                                           axes=axes)
    ends = [q for q in ([point] if point else []) + ([pint.near, pint.far] if pint else []) if q]
    spans = {**({"n_params": n_params_range} if n_params_range else {}),
             **({"data_hours": hours_range} if hours_range else {}), **(ranges or {})}
    Y, X_, mesh = _mesh(obs_pts, ends, fixed, axes, spans, n=n)
    surface = np.asarray(fit.predict(mesh), dtype=float)
    levels_arr = _contour_levels(surface, levels, tval, percent=shown.percent)
    outside = _outside(hull_log, mesh[axes[1]], mesh[axes[0]])
    predicted, decades = _at_point(fit, point, fixed)
    notes += _beyond_notes(fit, fixed)
    target_band = _mesh_band(fit, mesh, level) if want_band else None
    if want_band and target_band is None:
        notes.append(f"form {fit.form!r} has no closed-form band; no interval drawn (use a bootstrap)")
    return IsoData(
        x=X_, y=Y, held=fixed, surface=surface, levels=levels_arr, target=tval, target_label=tlabel,
        outside=outside, hull=10.0 ** hull_log, observed=observed, form=fit.form, y_label=shown.name, point=point,
        predicted=predicted, reference=ref, decades_beyond=decades, interval=pint, target_band=target_band,
        band_level=level if target_band is not None else None, notes=tuple(notes), x_axis=axes[0],
        y_axis=axes[1], quantity=shown,
    )


def _held_values(fit: FitResult, axes: MapAxes, held: Mapping[str, float] | None, image_px: float | None,
                 point: Mapping[str, float] | None) -> dict[str, float]:
    """The values the map holds the fit's other axes at: ``held`` (``image_px`` for that axis), else the
    projected point's, else the largest trained."""
    given = dict(held or {})
    if image_px is not None and "image_px" not in axes:
        given["image_px"] = image_px
    for a in given:
        if a not in fit.axes or a in axes:
            raise ScalingError(f"cannot hold {a!r}: the map's other axes are "
                               f"{', '.join(x for x in fit.axes if x not in axes) or 'none'}")
    out = {}
    for a in fit.axes:
        if a not in axes:
            value = given.get(a, point[a] if point else fit.axis_ranges[a][1])
            out[a] = checks.positive(value, a)
    return out


def _beyond_notes(fit: FitResult, fixed: Mapping[str, float]) -> list[str]:
    """A note for each held axis beyond its largest trained value: the whole map extrapolates there."""
    notes = []
    for a, value in fixed.items():
        top = fit.axis_ranges[a][1]
        if value > top * (1 + 1e-9):
            beyond = math.log10(value / top)
            what = f"resolution ({top:.0f} px)" if a == "image_px" else f"{a} ({fmt_level(top)})"
            notes.append(f"the whole map is {beyond:.2f} decades beyond the largest trained {what}")
    return notes


def _trained_points(fit: FitResult, grid: pd.DataFrame | None, axes: MapAxes) -> tuple[pd.DataFrame, np.ndarray]:
    """The trained points drawn (the fit's axes, and arch where the rows have one) and their (up, across)
    values; without a grid, none drawn and the corners of the fit's ranges of the two axes."""
    across, up = axes
    if grid is not None and len(grid):
        cols = [c for c in (*fit.axes, "arch") if c in grid.columns]
        observed = grid[cols].copy()
        return observed, observed[[up, across]].to_numpy(dtype=float)
    observed = pd.DataFrame(columns=[*fit.axes, "arch"])
    (n0, n1), (d0, d1) = fit.axis_ranges[up], fit.axis_ranges[across]
    return observed, np.array([[n0, d0], [n1, d0], [n1, d1], [n0, d1]], dtype=float)


def _projection_interval(fit: FitResult, interval: PointInterval | str | None, point: Mapping[str, float] | None,
                         target: float | None, *, fixed: Mapping[str, float], reference: Mapping[str, float],
                         level: float, axes: MapAxes) -> tuple[PointInterval | None, bool]:
    """The projection's interval as ``interval`` asks (a ``PointInterval`` as given, 'band' from the fit's band,
    None none), and whether the map draws the band of the target contour ('band')."""
    if isinstance(interval, PointInterval):
        return interval, False
    if interval == "band":
        if point and target is not None:
            return band_interval(fit, point, target, reference=reference, level=level, map_axes=axes,
                                 held=fixed), True
        return None, True
    if interval is not None:
        raise ScalingError(f"interval must be 'band', a PointInterval or None; got {interval!r}")
    return None, False


def _mesh(obs_pts: np.ndarray, ends: Sequence[Mapping[str, float]], fixed: Mapping[str, float], axes: MapAxes,
          spans: Mapping[str, tuple[float, float]], *, n: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The map's axes (``n`` log-spaced values each of up and across: ``spans``, else the trained points and
    the projection's ends with 0.3 decades to spare) and the mesh the surface is predicted on (the other
    axes at ``fixed``)."""
    across, up = axes
    extent_up = [*obs_pts[:, 0], *(q[up] for q in ends)]
    extent_across = [*obs_pts[:, 1], *(q[across] for q in ends)]
    ur = spans.get(up) or log_range(extent_up, pad_decades=0.3)
    ar = spans.get(across) or log_range(extent_across, pad_decades=0.3)
    Y = np.logspace(math.log10(ur[0]), math.log10(ur[1]), n)
    X = np.logspace(math.log10(ar[0]), math.log10(ar[1]), n)
    XX, YY = np.meshgrid(X, Y)
    mesh = {up: YY, across: XX, **{a: np.full_like(YY, v) for a, v in fixed.items()}}
    return Y, X, mesh


def _contour_levels(surface: np.ndarray, levels: Sequence[float] | None, target: float | None, *,
                    percent: bool = True) -> np.ndarray:
    """``levels`` sorted, or (a fraction) every 10% strictly inside the surface's range, (any other quantity)
    about eight round values inside it; the target's level left out."""
    finite = surface[np.isfinite(surface)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if levels is not None:
        out = np.asarray(sorted(float(v) for v in levels))
    elif percent:
        cand = np.round(np.arange(0.1, 1.0, 0.1), 10)
        out = cand[(cand > lo) & (cand < min(hi, 1.0))]
    else:
        ticks = np.asarray(MaxNLocator(nbins=8).tick_values(lo, hi), dtype=float)
        out = ticks[(ticks > lo) & (ticks < hi)]
    if target is not None:
        tol = 5e-3 if percent else 5e-3 * max(hi - lo, 1e-12)
        out = out[~np.isclose(out, target, atol=tol, rtol=0.0)]
    return out


def _outside(hull_log: np.ndarray, UP: np.ndarray, ACROSS: np.ndarray) -> np.ndarray:
    """True where the mesh lies outside the hull of the trained points (in log10 (up, across))."""
    path = MplPath(hull_log)
    mesh = np.column_stack([np.log10(UP).ravel(), np.log10(ACROSS).ravel()])
    inside = path.contains_points(mesh, radius=1e-9) | path.contains_points(mesh, radius=-1e-9)
    return ~inside.reshape(UP.shape)


def _at_point(fit: FitResult, point: Mapping[str, float] | None, fixed: Mapping[str, float]
              ) -> tuple[float | None, dict[str, float] | None]:
    """The surface at the projected point (the other axes at the map's values) and how many decades beyond
    the largest trained value each of the point's axes lies; (None, None) without a point."""
    if not point:
        return None, None
    at = {a: np.array([fixed.get(a, point[a])]) for a in fit.axes}
    predicted = float(np.asarray(fit.predict(at)).ravel()[0])
    return predicted, {a: math.log10(point[a] / fit.axis_ranges[a][1]) for a in fit.axes}


def _mesh_band(fit: FitResult, X: Mapping[str, np.ndarray], level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The fit's confidence band over the mesh (the target contour's band); None for a form without one."""
    bounds = fit.predict_interval(X, level=level, kind="confidence")
    if bounds is None:
        return None
    return np.asarray(bounds[0], dtype=float), np.asarray(bounds[1], dtype=float)
