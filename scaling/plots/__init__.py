"""Figures of the study: the data behind each one is computed by a function that returns it, and drawn
by a function that takes that data and an ``ax`` and returns the ax. Nothing here calls ``plt.show()``
or touches pyplot's global state.

Figure                                   data                          drawing
1 accuracy vs hours, one colour per size ``accuracy_curves_data``      ``plot_accuracy_curves``
2 the effect of image resolution (ViT-H) ``accuracy_curves_data(group_by="image_px")``  (same)
3 iso-accuracy contours over (N, D)      ``iso_accuracy_data``         ``plot_iso_accuracy``
4 backtest parity                        ``parity_data``               ``plot_backtest_parity``
5 bootstrap distribution of compute      ``compute_distribution_data`` ``plot_compute_distribution``
6 MAE pretraining loss curves            ``loss_curves_data``          ``plot_loss_curves``

Figures 4-6 live in ``scaling.plots.diagnostics`` and are re-exported here. ``save_figure`` writes
.png/.pdf/.svg byte-reproducibly; ``save_projection_figure`` is figure 3 for one projection, in one call.

Accuracies are fractions in the data and percent on the axes. Bands are labelled with what they are: a
*confidence* band covers the mean surface (where the average run would land), a *prediction* band a new
single run (seed noise included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath

from scaling.direction import direction
from scaling.errors import ScalingError
from scaling.plots.style import (
    COUNT_FORMATTER,
    HOURS_FORMATTER,
    NEUTRAL,
    PERCENT_FORMATTER,
    PROJECTION_COLOUR,
    TARGET_COLOUR,
    fmt_count,
    fmt_hours_tick,
    fmt_px,
    log_range,
    new_figure,
    resolution_colour,
    resolution_marker,
    save_figure,
    size_colour,
    size_key,
    size_label,
    size_marker,
    size_rank,
    style,
)
from scaling.plots.diagnostics import (
    ComputeDistribution,
    FrontierData,
    LossCurves,
    ParityData,
    backtest_parity_frame,
    backtest_title,
    compute_distribution_data,
    compute_distribution_from_bootstrap,
    default_split,
    frontier_data,
    loss_curves_data,
    parity_data,
    plot_backtest_parity,
    plot_compute_distribution,
    plot_frontier,
    plot_loss_curves,
)

if TYPE_CHECKING:
    from scaling.fitting import FitResult
    from scaling.projection import Projection
    from scaling.targets import Target

__all__ = [
    "AXIS_LABELS",
    "ComputeDistribution",
    "Curve",
    "CurvesData",
    "FrontierData",
    "IsoData",
    "LossCurves",
    "ParityData",
    "PointInterval",
    "accuracy_curves_data",
    "backtest_parity_frame",
    "backtest_title",
    "band_interval",
    "bootstrap_interval",
    "compute_distribution_data",
    "compute_distribution_from_bootstrap",
    "default_split",
    "frontier_data",
    "iso_accuracy_data",
    "loss_curves_data",
    "metric_label",
    "new_figure",
    "parity_data",
    "plot_accuracy_curves",
    "plot_backtest_parity",
    "plot_compute_distribution",
    "plot_frontier",
    "plot_iso_accuracy",
    "plot_loss_curves",
    "save_figure",
    "save_projection_figure",
]

AXIS_LABELS = {
    "n_params": "Parameters (encoder, incl. position embeddings)",
    "data_hours": "Pretraining data (hours of video at 1 frame/s)",
    "image_px": "Image size (px per side)",
    "pretrain_flops": "Pretraining compute (FLOPs)",
}
BAND_WORDS = {
    "confidence": "confidence band of the mean surface",
    "prediction": "prediction band for a new run",
}
SEARCH_DECADES = 12.0
ISO_FIGSIZE = (6.8, 6.6)  # how far along a projection ray the band bounds are searched


def metric_label(grid: pd.DataFrame | None = None, *, metric: str | None = None) -> str:
    """'ImageNet top-1 (2% fine-tune, best epoch)' from the grid's protocol/metric/selection columns."""
    def first(col: str) -> str | None:
        if grid is None or col not in grid.columns or grid.empty:
            return None
        values = grid[col].dropna().unique()
        return str(values[0]) if len(values) == 1 else None

    metric = metric or first("metric") or "accuracy"
    pretty = {"top1": "top-1", "top5": "top-5"}.get(metric, metric)
    protocol = first("protocol")
    eval_set = first("eval_set")
    selection = first("selection")
    where = "ImageNet" if eval_set in (None, "imagenet-val") else eval_set
    extras = []
    if protocol == "finetune-in1k-2pct":
        extras.append("2% fine-tune")
    elif protocol:
        extras.append(protocol)
    if selection:
        extras.append(selection.replace("-", " "))
    return f"{where} {pretty}" + (f" ({', '.join(extras)})" if extras else "")


def _band_or_none(fit: FitResult, X: Mapping[str, Any], band: str | None, level: float
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    if band is None:
        return None
    return fit.predict_interval(X, level=level, kind=band)  # type: ignore[arg-type]


# -- figures 1 and 2: accuracy against one axis, one curve per group


@dataclass(frozen=True)
class Curve:
    """The fitted surface along ``x`` with the other axes held at ``fixed``; band bounds when available."""

    key: Any
    label: str
    colour: str
    marker: str
    fixed: dict[str, float]
    x: np.ndarray
    predicted: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    x_max_observed: float

    @property
    def band_width(self) -> np.ndarray | None:
        return None if self.lower is None or self.upper is None else self.upper - self.lower


@dataclass(frozen=True)
class CurvesData:
    x_axis: str
    group_by: str
    observed: pd.DataFrame  # one row per run: group, x, value, subset_seed, name
    means: pd.DataFrame  # one row per (group, x): value (mean over subset seeds), sd, n
    curves: tuple[Curve, ...]
    band: str | None  # 'confidence' | 'prediction' | None (no band drawn)
    level: float
    form: str
    n_points: int
    y_label: str
    where: dict[str, Any]
    notes: tuple[str, ...] = ()

    def curve(self, key: Any) -> Curve:
        for c in self.curves:
            if c.key == key:
                return c
        raise KeyError(key)

    def summary(self) -> dict[str, Any]:
        return {
            "x_axis": self.x_axis, "group_by": self.group_by, "form": self.form, "band": self.band,
            "level": self.level, "where": self.where, "notes": list(self.notes),
            "groups": [{
                "key": c.key if not isinstance(c.key, np.generic) else c.key.item(), "label": c.label,
                "fixed": c.fixed, "x_range": [float(c.x[0]), float(c.x[-1])],
                "predicted_at_largest_observed": float(np.interp(math.log10(c.x_max_observed), np.log10(c.x),
                                                                 c.predicted)),
                "mean_band_width": None if c.band_width is None else float(np.mean(c.band_width)),
            } for c in self.curves],
        }


def _filter(grid: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    out = grid
    for col, value in where.items():
        if col not in out.columns:
            raise ScalingError(f"cannot filter on {col!r}: not a grid column")
        if col == "arch":
            out = out[out[col].map(size_key) == size_key(value)]
        else:
            out = out[np.isclose(out[col].astype(float), float(value))]
    if out.empty:
        what = ", ".join(f"{k}={v}" for k, v in where.items())
        raise ScalingError(f"no runs with {what} in the grid")
    return out


def _group_style(group_by: str, key: Any) -> tuple[str, str, str]:
    if group_by == "arch":
        return size_label(key), size_colour(key), size_marker(key)
    if group_by == "image_px":
        return f"{float(key):.0f} px", resolution_colour(float(key)), resolution_marker(float(key))
    return f"{group_by}={key}", NEUTRAL, "o"


def accuracy_curves_data(
    grid: pd.DataFrame,
    fit: FitResult,
    *,
    group_by: str = "arch",
    where: Mapping[str, Any] | None = None,
    x_axis: str = "data_hours",
    band: str | None = "confidence",
    level: float = 0.95,
    extend_decades: float = 1.0,
    n_points: int = 200,
    y: str = "value",
) -> CurvesData:
    """Observed runs, their seed means and the fitted curves of figure 1 (and 2, with group_by='image_px').

    Each group's curve holds the fit's other axes at the group's (single) values, e.g. ViT-B/14 at 224 px;
    ``where`` filters the grid first (``{"image_px": 224}`` for figure 1, ``{"arch": "vit_h14"}`` for 2).
    The curve runs from the smallest observed ``x`` to ``extend_decades`` beyond the largest. ``band`` is
    'confidence', 'prediction' or None; forms without a closed-form band get none (see ``notes``).
    """
    where = dict(where or {})
    if x_axis not in fit.axes:
        raise ScalingError(f"x axis {x_axis!r} is not an axis of the fit ({', '.join(fit.axes)})")
    if band not in (None, "confidence", "prediction"):
        raise ScalingError(f"band must be 'confidence', 'prediction' or none; got {band!r}")
    rows = _filter(grid, where)
    if group_by not in rows.columns:
        raise ScalingError(f"cannot group by {group_by!r}: not a grid column")
    other = [a for a in fit.axes if a != x_axis]
    xs = rows[x_axis].astype(float)
    lo, hi = float(xs.min()), float(xs.max())
    x = np.logspace(math.log10(lo), math.log10(hi) + extend_decades, n_points)
    notes: list[str] = []
    keys = sorted(rows[group_by].unique(), key=lambda k: (size_rank(k), k) if group_by == "arch" else (0, k))
    curves = []
    drawn_band = band
    for key in keys:
        sub = rows[rows[group_by] == key]
        fixed = {}
        for a in other:
            values = np.unique(sub[a].astype(float))
            if len(values) != 1:
                raise ScalingError(
                    f"group {group_by}={key} has {len(values)} values of {a!r}; filter the grid (where=...) "
                    f"so that each group has one")
            fixed[a] = float(values[0])
        X = {x_axis: x, **{a: np.full_like(x, v) for a, v in fixed.items()}}
        pred = np.asarray(fit.predict(X), dtype=float)
        bounds = _band_or_none(fit, X, band, level)
        if band is not None and bounds is None:
            drawn_band = None
        label, colour, marker = _group_style(group_by, key)
        curves.append(Curve(key, label, colour, marker, fixed, x, pred,
                            None if bounds is None else np.asarray(bounds[0], dtype=float),
                            None if bounds is None else np.asarray(bounds[1], dtype=float),
                            float(sub[x_axis].max())))
    if band is not None and drawn_band is None:
        notes.append(f"form {fit.form!r} has no closed-form {band} band; none is drawn")
        curves = [Curve(c.key, c.label, c.colour, c.marker, c.fixed, c.x, c.predicted, None, None,
                        c.x_max_observed) for c in curves]
    observed = pd.DataFrame({
        "group": rows[group_by].to_numpy(),
        "x": rows[x_axis].astype(float).to_numpy(),
        "value": rows[y].astype(float).to_numpy(),
        "subset_seed": rows["subset_seed"].to_numpy() if "subset_seed" in rows else np.nan,
        "name": rows["name"].to_numpy() if "name" in rows else "",
    })
    # Seeds share x exactly within a group (same fraction of the same corpus); round away float noise.
    observed["x_key"] = observed["x"].round(6)
    means = (observed.groupby(["group", "x_key"], sort=True)
             .agg(x=("x", "mean"), value=("value", "mean"), sd=("value", "std"), n=("value", "size"))
             .reset_index().drop(columns="x_key"))
    observed = observed.drop(columns="x_key")
    return CurvesData(x_axis, group_by, observed, means, tuple(curves), drawn_band, level, fit.form,
                      fit.n_points, metric_label(grid), where, tuple(notes))


def plot_accuracy_curves(data: CurvesData, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Figure 1/2: seeds as small markers, their mean as a large one, the fit as a line with its band.

    The fitted line is solid over the observed range and dashed beyond it.
    """
    if ax is None:
        _, ax = new_figure()
    with style():
        for c in data.curves:
            inside = c.x <= c.x_max_observed * (1 + 1e-9)
            if c.lower is not None and c.upper is not None:
                ax.fill_between(c.x, c.lower, c.upper, color=c.colour, alpha=0.18, linewidth=0)
            ax.plot(c.x[inside], c.predicted[inside], color=c.colour, linewidth=1.6)
            ax.plot(c.x[~inside], c.predicted[~inside], color=c.colour, linewidth=1.3, linestyle=(0, (4, 2)))
            obs = data.observed[data.observed["group"] == c.key]
            ax.scatter(obs["x"], obs["value"], s=12, color=c.colour, marker=c.marker, alpha=0.55, linewidths=0,
                       zorder=3)
            mean = data.means[data.means["group"] == c.key]
            ax.scatter(mean["x"], mean["value"], s=46, color=c.colour, marker=c.marker, edgecolors="white",
                       linewidths=0.8, zorder=4)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(HOURS_FORMATTER if data.x_axis == "data_hours" else COUNT_FORMATTER)
        ax.yaxis.set_major_formatter(PERCENT_FORMATTER)
        ax.set_xlabel(AXIS_LABELS.get(data.x_axis, data.x_axis) + ", log scale")
        ax.set_ylabel(f"{data.y_label}, %")
        handles: list[Any] = [Line2D([], [], color=c.colour, marker=c.marker, markersize=6,
                                     markeredgecolor="white", label=c.label) for c in data.curves]
        handles.append(Line2D([], [], color=NEUTRAL, marker="o", linestyle="none", markersize=3, alpha=0.6,
                              label="subset seeds (small); mean (large)"))
        handles.append(Line2D([], [], color=NEUTRAL, linestyle=(0, (4, 2)), label="fit beyond the trained data"))
        if data.band is not None:
            handles.append(Patch(color=NEUTRAL, alpha=0.25,
                                 label=f"{100 * data.level:.0f}% {BAND_WORDS[data.band]}"))
        else:
            handles.append(Line2D([], [], color="none", label="no band: the form has no closed-form interval"))
        ax.legend(handles=handles, loc="upper left")
        if title is None:
            what = "image size (ViT-H/14)" if data.group_by == "image_px" else "model size"
            metric = data.y_label.split(" (")[0]
            versus = "pretraining data" if data.x_axis == "data_hours" else AXIS_LABELS.get(
                data.x_axis, data.x_axis).split(" (")[0].lower()
            title = f"{metric} vs {versus} by {what}; fit {data.form}, {data.n_points} runs"
        ax.set_title(title, loc="left")
    return ax


# -- figure 3: iso-accuracy contours over (parameters, hours)


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
        from scipy.spatial import ConvexHull, QhullError

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
    from scaling.projection import reference_point

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
    """The interval of a projected point from a ``scaling.resampling`` run with ``projection_quantities``.

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

    from scaling.projection import reference_point

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


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _target_label_spot(data: IsoData, segs: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """Where to label the target contour: inside the map's margins and away from the projection."""
    pts = np.concatenate([seg for seg in segs if len(seg)] or [np.empty((0, 2))])
    if not len(pts):
        return None
    lx, ly = np.log10(pts[:, 0]), np.log10(pts[:, 1])
    (x0, x1), (y0, y1) = np.log10(data.data_hours[[0, -1]]), np.log10(data.n_params[[0, -1]])
    keep = ((lx - x0) / (x1 - x0) > 0.08) & ((x1 - lx) / (x1 - x0) > 0.08) \
        & ((ly - y0) / (y1 - y0) > 0.08) & ((y1 - ly) / (y1 - y0) > 0.08)
    if not keep.any():
        return None
    if data.point is None:
        i = np.flatnonzero(keep)[keep.sum() // 2]
    else:
        px, py = math.log10(data.point["data_hours"]), math.log10(data.point["n_params"])
        dist = np.where(keep, np.hypot((lx - px) / (x1 - x0), (ly - py) / (y1 - y0)), -1.0)
        i = int(np.argmax(dist))
    return float(pts[i, 0]), float(pts[i, 1])


def plot_iso_accuracy(data: IsoData, ax: Axes | None = None, *, title: str | None = None,
                      annotate: bool = True) -> Axes:
    """Figure 3: labelled iso-accuracy contours, the target highlighted, trained runs, the extrapolation
    region hatched, and the projection with its interval."""
    if ax is None:
        _, ax = new_figure(figsize=ISO_FIGSIZE)
    H, N = data.data_hours, data.n_params
    with style():
        fill_levels = [0.0, *data.levels.tolist(), 1.0]
        ax.contourf(H, N, np.clip(data.accuracy, 0.0, 1.0), levels=fill_levels, cmap="cividis", alpha=0.35,
                    extend="neither")
        if len(data.levels):
            cs = ax.contour(H, N, data.accuracy, levels=data.levels, colors="0.25", linewidths=0.7)
            ax.clabel(cs, fmt=lambda v: f"{100 * v:.0f}%", fontsize=7, inline=True)
        handles: list[Any] = []
        if data.target is not None:
            ct = ax.contour(H, N, data.accuracy, levels=[data.target], colors=TARGET_COLOUR, linewidths=2.2)
            spot = _target_label_spot(data, ct.allsegs[0])
            if spot is not None:
                ax.clabel(ct, fmt=lambda v: f"{100 * v:.1f}%", fontsize=8, inline=True, manual=[spot])
            handles.append(Line2D([], [], color=TARGET_COLOUR, linewidth=2.2, label=data.target_label))
            if data.target_band is not None:
                for b in data.target_band:
                    ax.contour(H, N, b, levels=[data.target], colors=TARGET_COLOUR, linewidths=0.9,
                               linestyles="dashed")
                handles.append(Line2D([], [], color=TARGET_COLOUR, linewidth=0.9, linestyle="dashed",
                                      label=f"same, {100 * (data.band_level or 0):.0f}% confidence band"))
        ax.contourf(H, N, data.outside.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
        handles.append(Patch(facecolor="white", edgecolor="0.55", hatch="////",
                             label="beyond the trained (N, D) grid"))
        if len(data.observed):
            obs = data.observed.drop_duplicates(subset=["n_params", "data_hours"])
            archs = obs["arch"] if "arch" in obs else pd.Series([""] * len(obs))
            for arch in sorted(archs.unique(), key=size_rank):
                sub = obs[archs == arch]
                px = sorted({round(float(v)) for v in data.observed.loc[data.observed["arch"] == arch, "image_px"]}) \
                    if "image_px" in data.observed and "arch" in data.observed else []
                where = f" ({px[0]} px)" if len(px) == 1 else (f" ({px[0]}-{px[-1]} px)" if px else "")
                ax.scatter(sub["data_hours"], sub["n_params"], s=22, color=size_colour(arch),
                           marker=size_marker(arch), edgecolors="black", linewidths=0.4, zorder=4)
                handles.append(Line2D([], [], color=size_colour(arch), marker=size_marker(arch), linestyle="none",
                                      markeredgecolor="black", markeredgewidth=0.4,
                                      label=f"trained {size_label(arch)}{where}"))
        if data.point is not None:
            p = data.point
            iv = data.interval
            if iv is not None and iv.samples is not None and len(iv.samples):
                ax.scatter(iv.samples["data_hours"], iv.samples["n_params"], s=3, color=PROJECTION_COLOUR,
                           alpha=0.12, linewidths=0, zorder=5)
            if data.reference is not None:
                ax.plot([data.reference["data_hours"], p["data_hours"]], [data.reference["n_params"], p["n_params"]],
                        color=PROJECTION_COLOUR, linewidth=0.8, linestyle="dotted", zorder=5)
            if iv is not None and (iv.near or iv.far):
                ends = [q for q in (iv.near, iv.far) if q]
                ax.plot([q["data_hours"] for q in ends], [q["n_params"] for q in ends], color=PROJECTION_COLOUR,
                        linewidth=2.6, alpha=0.55, solid_capstyle="butt", marker="|", markersize=9, zorder=6)
            ax.scatter([p["data_hours"]], [p["n_params"]], s=150, marker="*", color=PROJECTION_COLOUR,
                       edgecolors="white", linewidths=0.8, zorder=7)
            where = f"{fmt_count(p['n_params'])} params, {fmt_hours_tick(p['data_hours'])} h" + (
                f", {fmt_px(p['image_px'])}" if "image_px" in p else "")
            label = f"projection: {where}"
            if data.predicted is not None:
                label += f"\npredicted {_pct(data.predicted)}"
                if iv is not None and iv.accuracy is not None:
                    label += f" [{_pct(iv.accuracy[0])}, {_pct(iv.accuracy[1])}]"
            if data.decades_beyond:
                label += f", {max(data.decades_beyond.values()):.2f} decades beyond the data"
            if iv is not None:
                label += f"\nbar and [ ]: {iv.method}"
            handles.append(Line2D([], [], color=PROJECTION_COLOUR, marker="*", markersize=11, linewidth=2.6,
                                  alpha=0.8, label=label))
            if annotate:
                ax.annotate("projection", (p["data_hours"], p["n_params"]), xytext=(-8, 0), textcoords="offset points",
                            ha="right", va="center", fontsize=7.5, zorder=8,
                            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(H[0], H[-1])
        ax.set_ylim(N[0], N[-1])
        ax.xaxis.set_major_formatter(HOURS_FORMATTER)
        ax.yaxis.set_major_formatter(COUNT_FORMATTER)
        ax.set_xlabel(AXIS_LABELS["data_hours"] + ", log scale")
        ax.set_ylabel(AXIS_LABELS["n_params"] + ", log scale")
        ax.grid(False)
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, fontsize=7)
        if title is None:
            at = f" at {fmt_px(data.image_px)}" if data.image_px is not None else ""
            title = f"Iso-accuracy contours of {data.y_label}{at}; fit {data.form}"
            if data.notes:
                title += "\n" + "; ".join(data.notes)
        ax.set_title(title, loc="left", fontsize=9)
    return ax


def save_projection_figure(
    fit: FitResult,
    projection: Projection | None,
    target: float | Target | None,
    path: str | Path,
    *,
    grid: pd.DataFrame | None = None,
    image_px: float | None = None,
    interval: PointInterval | str | None = "band",
    level: float = 0.95,
    dpi: float | None = None,
) -> IsoData:
    """Figure 3 for one projection, written to ``path`` (.png/.pdf/.svg); returns the data drawn."""
    data = iso_accuracy_data(fit, grid=grid, image_px=image_px, target=target, projection=projection,
                             interval=interval, level=level)
    fig, ax = new_figure(figsize=ISO_FIGSIZE)
    plot_iso_accuracy(data, ax)
    save_figure(fig, path, dpi=dpi)
    return data

# One call per figure (data computed by the library, drawn on demand): what `scaling plot KIND` renders.
from scaling.plots.figures import (  # noqa: E402, F401 - re-exported; after what the figures use
    FigureResult,
    accuracy_figure,
    backtest_figure,
    bootstrap_figure,
    frontier_figure,
    iso_figure,
    loss_figure,
    resolution_figure,
)
