"""Figures of intervals: the combined answer beside each form's (a forest plot of one quantity), and the
reliability of intervals (observed against nominal coverage, ``scaling calibrate``)."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from scaling.core.direction import direction
from scaling.defaults import ENSEMBLE_MIN_WEIGHT
from scaling.ensemble.combine import headline, words
from scaling.errors import ScalingError
from scaling.plots.style import NEUTRAL, PROJECTION_COLOUR, TARGET_COLOUR, form_style


@dataclass(frozen=True)
class CombinedFigure:
    """One quantity of a combined answer: a row per form (weight, estimate, interval) and the combined row."""

    quantity: str
    label: str  # the quantity in words, with its unit
    level: float
    rows: pd.DataFrame  # label, weight, estimate, lower, upper, kind ('form' | 'combined' | 'calibrated')
    log_scale: bool
    sentence: str  # the disagreement sentence, or ''
    interval_kind: str

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "label": self.label, "level": self.level, "log_scale": self.log_scale,
                "rows": self.rows.to_dict(orient="records"), "sentence": self.sentence,
                "interval_kind": self.interval_kind}


def combined_data(combined: Any, kind: str, quantity: str | None = None) -> CombinedFigure:
    """What the combined answer's figure draws (``quantity`` default: the first question's headline)."""
    names = list(combined.quantities)
    if not names:
        raise ScalingError("the combined answer has no quantity to draw")
    name = quantity or next((n for n in headline(names) if not n.startswith("at.")), headline(names)[0])
    if name not in combined.quantities:
        raise ScalingError(f"no quantity {name!r}; quantities: {', '.join(names)}")
    q = combined.quantities[name]
    level = max(combined.levels)
    pct = name.endswith("predicted") and direction(kind).is_fraction
    scale = 100.0 if pct else 1.0
    rows = [{"label": f"{f} (weight {combined.weights.get(f, 0.0):.2f})", "weight": combined.weights.get(f, 0.0),
             "estimate": scale * (est if est is not None else math.nan), "lower": scale * ivs[level][0],
             "upper": scale * ivs[level][1], "kind": "form"} for f, (est, ivs) in q.per_form.items()]
    est = scale * (q.estimate if q.estimate is not None else math.nan)
    rows.append({"label": "combined (bootstrap mixture)", "weight": 1.0, "estimate": est,
                 "lower": scale * q.intervals[level][0], "upper": scale * q.intervals[level][1], "kind": "combined"})
    if q.calibrated is not None:
        rows.append({"label": "combined, calibrated", "weight": 1.0, "estimate": est,
                     "lower": scale * q.calibrated[level][0], "upper": scale * q.calibrated[level][1],
                     "kind": "calibrated"})
    frame = pd.DataFrame(rows)
    finite = frame[["estimate", "lower", "upper"]].to_numpy(dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    log_scale = not pct and finite.size > 0 and float(finite.max() / finite.min()) > 100
    unit = " (%)" if pct else (" (FLOPs)" if name.endswith("flops") else "")
    return CombinedFigure(name, words(name) + unit, level, frame, bool(log_scale),
                          " ".join(combined.disagreement), str(combined.interval_kind))


FAR = 3.0  # the axis reaches this far beyond the weighted rows: decades, or their span's widths


def _x_range(rows: pd.DataFrame, log_scale: bool) -> tuple[float, float]:
    """The finite span of the rows' estimates and bounds, padded, but no further than ``FAR`` beyond the rows
    that carry weight (the combined ones, and forms of at least ``ENSEMBLE_MIN_WEIGHT``): a form of no weight
    whose resamples run away (a power law reaching 1e62 FLOPs on the shipped grid) would otherwise squeeze
    every other row into a point. Ends beyond the span, and unbounded ones, are drawn to its edge with an
    arrow and their value."""
    keep = np.isfinite if not log_scale else (lambda a: np.isfinite(a) & (a > 0))
    v = rows[["estimate", "lower", "upper"]].to_numpy(dtype=float).ravel()
    v = v[keep(v)]
    if v.size == 0:
        return (0.1, 10.0) if log_scale else (0.0, 1.0)
    weighted = rows[(rows["kind"] != "form") | (rows["weight"] >= ENSEMBLE_MIN_WEIGHT)]
    core = weighted[["estimate", "lower", "upper"]].to_numpy(dtype=float).ravel()
    core = core[keep(core)]
    lo, hi = float(v.min()), float(v.max())
    if log_scale:
        if core.size:
            lo, hi = max(lo, float(core.min()) / 10**FAR), min(hi, float(core.max()) * 10**FAR)
        pad = max(math.log10(hi / lo), 1.0) * 0.08
        return lo / 10**pad, hi * 10 ** (3 * pad)
    if core.size:
        width = max(float(core.max() - core.min()), abs(float(core.max())) * 0.01, 1e-12)
        lo, hi = max(lo, float(core.min()) - FAR * width), min(hi, float(core.max()) + FAR * width)
    pad = max(hi - lo, abs(hi) * 0.01, 1e-12) * 0.08
    return lo - pad, hi + 3 * pad


def plot_combined(data: CombinedFigure, ax: Axes) -> Axes:
    """A forest plot: each form's interval (line width by weight) and estimate, the combined rows on top; an
    unbounded end runs to the edge with an arrow."""
    colours = {"combined": PROJECTION_COLOUR, "calibrated": TARGET_COLOUR}
    left, right = _x_range(data.rows, data.log_scale)
    if data.log_scale:
        ax.set_xscale("log")
    ax.set_xlim(left, right)
    for i, r in enumerate(data.rows.to_dict(orient="records")):
        colour = colours.get(str(r["kind"]), form_style(i)[0] if r["kind"] == "form" else NEUTRAL)
        lo, hi = float(r["lower"]), float(r["upper"])
        lo_x = min(max(lo, left), right) if math.isfinite(lo) and (lo > 0 or not data.log_scale) else left
        hi_x = max(min(hi, right), left) if math.isfinite(hi) else right
        ax.plot([lo_x, hi_x], [i, i], color=colour, solid_capstyle="butt", linewidth=2.0 + 6.0 * float(r["weight"]),
                alpha=0.8)
        if not hi < right:  # unbounded, or beyond the axis: drawn to its edge, with where it ends
            text = "unbounded" if not math.isfinite(hi) else f"to {hi:.3g}"
            text = f"{lo:.3g} {text}" if math.isfinite(lo) and lo >= right else text  # wholly beyond
            ax.annotate(text, (right, i), xytext=(-2, 7), textcoords="offset points", ha="right", fontsize=7)
            ax.plot([right], [i], marker=">", color=colour, markersize=7, clip_on=False)
        if math.isfinite(lo) and lo < left:
            ax.annotate(f"from {lo:.3g}", (left, i), xytext=(2, 7), textcoords="offset points", ha="left", fontsize=7)
            ax.plot([left], [i], marker="<", color=colour, markersize=7, clip_on=False)
        if math.isfinite(float(r["estimate"])):
            ax.plot([float(r["estimate"])], [i], marker="o", color="white", markeredgecolor=colour, markersize=6,
                    zorder=3)
    ax.set_yticks(range(len(data.rows)), list(data.rows["label"]))
    ax.set_ylim(-0.6, len(data.rows) - 0.4)
    ax.set_xlabel(f"{data.label}: {100 * data.level:g}% interval")
    lines = ["Which law: each form's answer and the combined one",
             *textwrap.wrap(f"intervals: {data.interval_kind}", 95), *textwrap.wrap(data.sentence, 95)]
    ax.set_title("\n".join(lines), fontsize=8, loc="left")
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_reliability(frame: pd.DataFrame, ax: Axes, *, title: str = "Coverage of held-out runs") -> Axes:
    """Observed against nominal coverage (%): one colour per predictor, dashed bootstrap-only, solid calibrated;
    the diagonal is perfect calibration. ``frame``: predictor, interval, nominal, coverage (fractions)."""
    ax.plot([0, 100], [0, 100], color=NEUTRAL, linewidth=0.8, linestyle="dotted")
    handles = []
    for i, (name, sub) in enumerate(frame.groupby("predictor", sort=False)):
        colour, marker = form_style(i)
        for kind, style in (("bootstrap", "--"), ("calibrated", "-")):
            part = sub[sub["interval"] == kind].sort_values("nominal")
            ax.plot(100 * part["nominal"], 100 * part["coverage"], linestyle=style, marker=marker, color=colour,
                    markersize=4)
        handles.append(Line2D([], [], color=colour, marker=marker, label=str(name)))
    handles += [Line2D([], [], color=NEUTRAL, linestyle="--", label="bootstrap only"),
                Line2D([], [], color=NEUTRAL, linestyle="-", label="calibrated (split-conformal)")]
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 102)
    ax.set_xlabel("nominal coverage (%)")
    ax.set_ylabel("held-out runs inside the interval (%)")
    ax.set_title(title, fontsize=9)
    return ax
