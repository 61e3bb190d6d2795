"""Data of figures 1 and 2: accuracy against pretraining hours, one curve per model size or resolution,
with the fitted surface and its confidence or prediction band. Drawn by ``scaling.plots.draw_fits``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from scaling.errors import ScalingError
from scaling.plots.labels import AXIS_LABELS, Quantity, level_text, metric_label, quantity_of
from scaling.plots.style import (
    FORM_MARKERS,
    NEUTRAL,
    level_colour,
    resolution_colour,
    resolution_marker,
    size_colour,
    size_key,
    size_label,
    size_marker,
    size_rank,
)

if TYPE_CHECKING:
    from scaling.forms.result import FitResult, IntervalKind

__all__ = ["AXIS_LABELS", "Curve", "CurvesData", "accuracy_curves_data", "metric_label"]

BAND_WORDS = {
    "confidence": "confidence band of the mean surface",
    "prediction": "prediction band for a new run",
}


def _band_or_none(fit: FitResult, X: Mapping[str, np.ndarray], band: IntervalKind | None, level: float
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    if band is None:
        return None
    return fit.predict_interval(X, level=level, kind=band)


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
    where: dict[str, float | str]
    notes: tuple[str, ...] = ()
    quantity: Quantity | None = None  # what y is (its name, percent or not); None: the run database's accuracy

    @property
    def shown(self) -> Quantity:
        """The quantity on the y axis (the run database's accuracy when none was recorded)."""
        return self.quantity or Quantity(self.y_label)

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


def _filter(grid: pd.DataFrame, where: Mapping[str, float | str]) -> pd.DataFrame:
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
    """A group's legend label, colour and marker: model sizes and resolutions in their fixed styles, any
    other level as 'N=3.2e7' in the neutral colour."""
    if group_by == "arch":
        return size_label(key), size_colour(key), size_marker(key)
    if group_by == "image_px":
        return f"{float(key):.0f} px", resolution_colour(float(key)), resolution_marker(float(key))
    if group_by == ALL:
        return "all rows", NEUTRAL, "o"
    try:
        return level_text(group_by, float(key)), NEUTRAL, "o"
    except (TypeError, ValueError):
        return f"{group_by}={key}", NEUTRAL, "o"


ALL = "(all rows)"  # the group of a one-axis fit: every row in one curve


def default_curve_axes(fit: FitResult, grid: pd.DataFrame, x_axis: str | None, group_by: str | None
                       ) -> tuple[str, str]:
    """(x axis, grouping column) of a curves figure: hours by model size on the run database; on another
    table its last axis, one curve per level of its first other axis (one curve for a one-axis fit)."""
    x = x_axis or ("data_hours" if "data_hours" in fit.axes else fit.axes[-1])
    if group_by is not None:
        return x, group_by
    if "arch" in grid.columns:
        return x, "arch"
    others = [a for a in fit.axes if a != x]
    return x, others[0] if others else ALL


def accuracy_curves_data(
    grid: pd.DataFrame,
    fit: FitResult,
    *,
    group_by: str | None = None,
    where: Mapping[str, float | str] | None = None,
    x_axis: str | None = None,
    band: str | None = "confidence",
    level: float = 0.95,
    extend_decades: float = 1.0,
    n_points: int = 200,
    y: str | None = None,
) -> CurvesData:
    """Observed runs, their seed means and the fitted curves of figure 1 (and 2, with group_by='image_px'),
    or of any table: its response ``y`` (default: the fit's) against ``x_axis``, one curve per level of
    ``group_by`` (defaults: ``default_curve_axes``, e.g. loss vs tokens by params), in the table's words.

    Each group's curve holds the fit's other axes at the group's (single) values, e.g. ViT-B/14 at 224 px;
    ``where`` filters the grid first (``{"image_px": 224}`` for figure 1, ``{"arch": "vit_h14"}`` for 2).
    The curve runs from the smallest observed ``x`` to ``extend_decades`` beyond the largest. ``band`` is
    'confidence', 'prediction' or None; forms without a closed-form band get none (see ``notes``).
    """
    where = dict(where or {})
    y = y or fit.y
    x_axis, group_by = default_curve_axes(fit, grid, x_axis, group_by)
    if group_by == ALL:
        grid = grid.assign(**{ALL: "all"})
    if y not in grid.columns:
        raise ScalingError(f"no column {y!r} to draw (columns: {', '.join(map(str, grid.columns))})")
    if x_axis not in fit.axes:
        raise ScalingError(f"x axis {x_axis!r} is not an axis of the fit ({', '.join(fit.axes)})")
    if band not in (None, "confidence", "prediction"):
        raise ScalingError(f"band must be 'confidence', 'prediction' or none; got {band!r}")
    kind = cast("IntervalKind | None", band)  # checked just above
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
    for rank, key in enumerate(keys):
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
        bounds = _band_or_none(fit, X, kind, level)
        if band is not None and bounds is None:
            drawn_band = None
        label, colour, marker = _group_style(group_by, key)
        if colour == NEUTRAL and len(keys) > 1:  # a table's levels: viridis from the smallest to the largest
            colour, marker = level_colour(rank, len(keys)), FORM_MARKERS[rank % len(FORM_MARKERS)]
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
    shown = quantity_of(fit, grid, y=y)
    return CurvesData(x_axis, group_by, observed, means, tuple(curves), drawn_band, level, fit.form,
                      fit.n_points, shown.name, where, tuple(notes), shown)
