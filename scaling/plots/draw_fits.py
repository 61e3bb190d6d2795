"""Drawing of figures 1-3 from their data (``curves_data``, ``iso_data``): each function takes the data and
an ``ax`` and returns the ax; nothing here computes a fit or touches pyplot's global state."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

from scaling.plots.style import (
    NEUTRAL,
    PROJECTION_COLOUR,
    TARGET_COLOUR,
    fmt_px,
    new_figure,
    save_figure,
    size_colour,
    size_label,
    size_marker,
    size_rank,
    style,
)

if TYPE_CHECKING:
    from scaling.core.targets import Target
    from scaling.forms.result import FitResult
    from scaling.questions.projection import Projection
from scaling.core.direction import direction
from scaling.defaults import CAUTION_DECADES
from scaling.plots.curves_data import ALL, BAND_WORDS, CurvesData, accuracy_curves_data
from scaling.plots.iso_data import IsoData, PointInterval, iso_accuracy_data
from scaling.plots.labels import axis_formatter, axis_label, fmt_level, level_text, point_text, quantity_of

ISO_FIGSIZE = (7.4, 6.8)  # inches: room for the contour labels, the colour bar and the legend below


def plot_accuracy_curves(data: CurvesData, ax: Axes | None = None, *, title: str | None = None,
                         dodge_decades: float = 0.05) -> Axes:
    """Figure 1/2: seeds as small markers, their mean as a large one, the fit as a line with its band.

    The fitted line is solid over the observed range and dashed beyond it. Each group's markers are
    offset sideways by ``dodge_decades`` (log10 x) from the next group's, so that none hides another.
    """
    if ax is None:
        _, ax = new_figure()
    n = len(data.curves)
    # Markers of neighbouring groups would sit on one another at each data size: offset each group
    # sideways by a fixed step on the log axis (the lines stay at the true x).
    offsets = (np.arange(n) - (n - 1) / 2) * dodge_decades
    labels = _curve_labels(data)
    with style():
        for c, off in zip(data.curves, offsets, strict=True):
            inside = c.x <= c.x_max_observed * (1 + 1e-9)
            if c.lower is not None and c.upper is not None:
                ax.fill_between(c.x, c.lower, c.upper, color=c.colour, alpha=0.18, linewidth=0)
            ax.plot(c.x[inside], c.predicted[inside], color=c.colour, linewidth=1.6)
            ax.plot(c.x[~inside], c.predicted[~inside], color=c.colour, linewidth=1.3, linestyle=(0, (4, 2)))
            obs = data.observed[data.observed["group"] == c.key]
            ax.scatter(obs["x"] * 10**off, obs["value"], s=12, color=c.colour, marker=c.marker, alpha=0.55,
                       linewidths=0, zorder=3)
            mean = data.means[data.means["group"] == c.key]
            ax.scatter(mean["x"] * 10**off, mean["value"], s=46, color=c.colour, marker=c.marker,
                       edgecolors="white", linewidths=0.8, zorder=4)
        shown = data.shown
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(axis_formatter(data.x_axis))
        ax.yaxis.set_major_formatter(shown.formatter)
        ax.set_xlabel(axis_label(data.x_axis) + ", log scale")
        ax.set_ylabel(shown.axis_label)
        handles: list[Artist] = [Line2D([], [], color=c.colour, marker=c.marker, markersize=6,
                                     markeredgecolor="white", label=labels[i]) for i, c in enumerate(data.curves)]
        seeds = "subset seeds (small); mean (large)" if shown.runs else "observed rows (small); their mean (large)"
        if n > 1 and dodge_decades:
            seeds += f"; offset sideways by {100 * (10**dodge_decades - 1):.0f}% per group"
        handles.append(Line2D([], [], color=NEUTRAL, marker="o", linestyle="none", markersize=3, alpha=0.6,
                              label=seeds))
        handles.append(Line2D([], [], color=NEUTRAL, linestyle=(0, (4, 2)), label="fit beyond the trained data"))
        if data.band is not None:
            handles.append(Patch(color=NEUTRAL, alpha=0.25,
                                 label=f"{100 * data.level:.0f}% {BAND_WORDS[data.band]}"))
        else:
            handles.append(Line2D([], [], color="none", label="no band: the form has no closed-form interval"))
        if shown.runs:
            ax.legend(handles=handles, loc="upper left")
        else:  # a table's curves fill the axes: the legend below them
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=2)
        if title is None:
            title = _curves_title(data)
        ax.set_title(title, loc="left")
    return ax


MAX_CURVES = 8  # a table's fit draws one curve per level of its first axis up to this many levels


def plot_fit(fit: FitResult, ax: Axes) -> Axes:
    """A fit against its data: on the run database's axes, accuracy vs hours at 224 px with one curve per model
    size (figure 1); for a table of one axis, or two with at most ``MAX_CURVES`` levels of the first, its
    response against its last axis, one curve per level of the other; else fitted vs observed values."""
    data = fit.require_data()
    if {"n_params", "data_hours", "image_px", "arch"} <= set(data.columns) and "data_hours" in fit.axes:
        return plot_accuracy_curves(accuracy_curves_data(data, fit, where={"image_px": 224}), ax)
    if len(fit.axes) == 1 or (len(fit.axes) == 2 and data[fit.axes[0]].nunique() <= MAX_CURVES):
        return plot_accuracy_curves(accuracy_curves_data(data, fit), ax)
    shown = quantity_of(fit, data)
    observed = pd.to_numeric(data[fit.y]).to_numpy(dtype=float)
    fitted = fit.predict(data).to_numpy(dtype=float)
    with style():
        ax.scatter(observed, fitted, s=14)
        lo, hi = float(min(observed.min(), fitted.min())), float(max(observed.max(), fitted.max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
        ax.xaxis.set_major_formatter(shown.formatter)
        ax.yaxis.set_major_formatter(shown.formatter)
        ax.set_xlabel(f"observed {shown.axis_label}")
        ax.set_ylabel(f"fitted {shown.axis_label} ({fit.form})")
    return ax


def _curves_title(data: CurvesData) -> str:
    """What is drawn and what is held fixed: 'ImageNet top-1 vs pretraining data by model size, 224 px only'."""
    shown = data.shown
    versus = "pretraining data" if data.x_axis == "data_hours" else axis_label(data.x_axis).split(" (")[0].lower()
    held = []
    for col, value in data.where.items():
        if col == "image_px":
            held.append(f"runs at {float(value):.0f} px only")
        elif col == "arch":
            held.append(f"{size_label(value)} only")
        elif isinstance(value, int | float):
            held.append(level_text(col, value))
        else:
            held.append(f"{col} = {value}")
    what = {"image_px": "image size", "arch": "model size"}.get(data.group_by, data.group_by)
    by = "" if data.group_by == ALL else f" by {what}"
    shown_rows = int(data.observed.shape[0])
    fitted = f"fit {data.form} on all {data.n_points} {shown.rows}" if shown_rows < data.n_points \
        else f"fit {data.form}, {data.n_points} {shown.rows}"
    return f"{shown.short} vs {versus}{by}" + (f", {', '.join(held)}" if held else "") + f"\n{fitted}"


def _curve_labels(data: CurvesData) -> list[str]:
    """Legend labels; a curve closer to the previous one than 2% of the plotted range over its whole length
    says so (the study's 448 and 476 px fits are 0.4 points apart: otherwise one line seems to be missing)."""
    labels = [c.label for c in data.curves]
    values = np.concatenate([data.observed["value"].to_numpy(dtype=float), *(c.predicted for c in data.curves)])
    close = 0.02 * float(np.nanmax(values) - np.nanmin(values))
    shown = data.shown
    for i in range(1, len(data.curves)):
        a, b = data.curves[i - 1], data.curves[i]
        if len(a.x) == len(b.x) and np.allclose(a.x, b.x):
            gap = b.predicted - a.predicted
            if np.all(np.abs(gap) < close):
                mean = float(np.mean(gap))
                words = f"{100 * mean:+.1f} points" if shown.percent else shown.difference(mean, signed=True)
                labels[i] += f" (fit {words} vs {a.label}: the lines nearly coincide)"
    return labels


def _target_label_spot(data: IsoData, segs: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """Where to label the target contour: inside the map's margins and away from the projection."""
    pts = np.concatenate([seg for seg in segs if len(seg)] or [np.empty((0, 2))])
    if not len(pts):
        return None
    lx, ly = np.log10(pts[:, 0]), np.log10(pts[:, 1])
    (x0, x1), (y0, y1) = np.log10(data.x[[0, -1]]), np.log10(data.y[[0, -1]])
    keep = ((lx - x0) / (x1 - x0) > 0.08) & ((x1 - lx) / (x1 - x0) > 0.08) \
        & ((ly - y0) / (y1 - y0) > 0.08) & ((y1 - ly) / (y1 - y0) > 0.08)
    if not keep.any():
        return None
    if data.point is None:
        i = np.flatnonzero(keep)[keep.sum() // 2]
    else:
        px, py = math.log10(data.point[data.x_axis]), math.log10(data.point[data.y_axis])
        dist = np.where(keep, np.hypot((lx - px) / (x1 - x0), (ly - py) / (y1 - y0)), -1.0)
        i = int(np.argmax(dist))
    return float(pts[i, 0]), float(pts[i, 1])


def plot_iso_accuracy(data: IsoData, ax: Axes | None = None, *, title: str | None = None,
                      annotate: bool = True, colorbar: bool = True) -> Axes:
    """Figure 3: labelled iso-accuracy contours (upright), the target highlighted, trained runs, the
    extrapolation region hatched, the projection with its interval, and a colour bar of the surface. Any
    table's map is drawn in its words: its response (a loss in its own units), its two axes."""
    if ax is None:
        _, ax = new_figure(figsize=ISO_FIGSIZE)
    with style():
        _draw_surface(ax, data, colorbar=colorbar)
        _draw_levels(ax, data)
        handles = _draw_target(ax, data)
        handles.append(_draw_extrapolation(ax, data))
        handles += _draw_trained(ax, data)
        if data.point is not None:
            handles.append(_draw_projection(ax, data, data.point, annotate=annotate))
        _set_map_axes(ax, data)
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, fontsize=7)
        ax.set_title(_iso_title(data) if title is None else title, loc="left", fontsize=9)
    return ax


def _held_words(data: IsoData) -> str:
    """The values the map holds its other axes at: '2200 px', 'tokens=3e10'."""
    return ", ".join(fmt_px(v) if a == "image_px" else level_text(a, v) for a, v in data.held.items())


def _draw_surface(ax: Axes, data: IsoData, *, colorbar: bool) -> None:
    """The predicted surface filled between the contour levels (better values lighter), with its colour bar."""
    shown = data.shown
    if shown.percent:
        fill_levels, surface = [0.0, *data.levels.tolist(), 1.0], np.clip(data.surface, 0.0, 1.0)
    else:
        finite = data.surface[np.isfinite(data.surface)]
        lo, hi = float(finite.min()), float(finite.max())
        hi = max(hi, lo + 1e-9 * max(1.0, abs(lo)))  # a flat surface still fills (one colour)
        inner = data.levels.tolist() or np.linspace(lo, hi, 6)[1:-1].tolist()
        fill_levels, surface = [min(lo, inner[0]), *inner, max(hi, inner[-1])], data.surface
    cmap = "cividis" if direction(shown.kind).higher_is_better else "cividis_r"
    filled = ax.contourf(data.x, data.y, surface, levels=fill_levels, cmap=cmap, alpha=0.35, extend="neither")
    if colorbar:
        bar = ax.figure.colorbar(filled, ax=ax, shrink=0.85, pad=0.02, aspect=30)
        held = _held_words(data)
        bar.set_label(f"Predicted {shown.short}" + (", %" if shown.percent else "")
                      + (f" (at {held})" if held else ""))
        bar.ax.yaxis.set_major_formatter(shown.formatter)
        bar.ax.tick_params(labelsize=7)


def _draw_levels(ax: Axes, data: IsoData) -> None:
    """The iso-value contours, labelled upright."""
    if len(data.levels):
        cs = ax.contour(data.x, data.y, data.surface, levels=data.levels, colors="0.25", linewidths=0.7)
        _upright(ax.clabel(cs, fmt=data.shown.tick, fontsize=7, inline=False))


def _draw_target(ax: Axes, data: IsoData) -> list[Artist]:
    """The target contour, labelled away from the projection, and its band dashed; their legend entries."""
    if data.target is None:
        return []
    X, Y = data.x, data.y
    ct = ax.contour(X, Y, data.surface, levels=[data.target], colors=TARGET_COLOUR, linewidths=2.2)
    spot = _target_label_spot(data, ct.allsegs[0])
    if spot is not None:
        _upright(ax.clabel(ct, fmt=data.shown.text, fontsize=8, inline=False, manual=[spot]), colour=TARGET_COLOUR)
    handles: list[Artist] = [Line2D([], [], color=TARGET_COLOUR, linewidth=2.2, label=data.target_label)]
    if data.target_band is not None:
        for b in data.target_band:
            ax.contour(X, Y, b, levels=[data.target], colors=TARGET_COLOUR, linewidths=0.9, linestyles="dashed")
        handles.append(Line2D([], [], color=TARGET_COLOUR, linewidth=0.9, linestyle="dashed",
                              label=f"same, {100 * (data.band_level or 0):.0f}% confidence band"))
    return handles


def _run_map(data: IsoData) -> bool:
    """The run database's map: hours across, parameters up."""
    return (data.x_axis, data.y_axis) == ("data_hours", "n_params")


def _draw_extrapolation(ax: Axes, data: IsoData) -> Patch:
    """The region beyond the trained points, hatched; its legend entry."""
    ax.contourf(data.x, data.y, data.outside.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"])
    where = "the trained (N, D) grid" if _run_map(data) else f"the data ({data.y_axis}, {data.x_axis})"
    return Patch(facecolor="white", edgecolor="0.55", hatch="////", label=f"beyond {where}")


def _draw_trained(ax: Axes, data: IsoData) -> list[Artist]:
    """The trained points at their (across, up), one marker per model size on the run database; their legend
    entries."""
    if not len(data.observed):
        return []
    handles: list[Artist] = []
    across, up = data.x_axis, data.y_axis
    obs = data.observed.drop_duplicates(subset=[up, across])
    if "arch" not in obs:
        ax.scatter(obs[across], obs[up], s=22, color=NEUTRAL, marker="o", edgecolors="black", linewidths=0.4,
                   zorder=4)
        elsewhere = f" ({_trained_elsewhere(data)})" if _trained_elsewhere(data) else ""
        return [Line2D([], [], color=NEUTRAL, marker="o", linestyle="none", markeredgecolor="black",
                       markeredgewidth=0.4, label=f"fitted {data.shown.rows}{elsewhere}: {len(obs)} points")]
    archs = obs["arch"]
    for arch in sorted(archs.unique(), key=size_rank):
        sub = obs[archs == arch]
        px = _px_span(data.observed.loc[data.observed["arch"] == arch, "image_px"]) \
            if "image_px" in data.observed else ""
        where = f" ({px})" if px else ""
        ax.scatter(sub[across], sub[up], s=22, color=size_colour(arch), marker=size_marker(arch),
                   edgecolors="black", linewidths=0.4, zorder=4)
        handles.append(Line2D([], [], color=size_colour(arch), marker=size_marker(arch), linestyle="none",
                              markeredgecolor="black", markeredgewidth=0.4,
                              label=f"trained {size_label(arch)}{where}"))
    return handles


def _draw_projection(ax: Axes, data: IsoData, p: Mapping[str, float], *, annotate: bool) -> Line2D:
    """The projected point ``p`` starred, with the bootstrap's projected points, the ray from the reference and
    the interval's bar; its legend entry."""
    iv = data.interval
    across, up = data.x_axis, data.y_axis
    if iv is not None and iv.samples is not None and len(iv.samples) and {across, up} <= set(iv.samples):
        ax.scatter(iv.samples[across], iv.samples[up], s=3, color=PROJECTION_COLOUR, alpha=0.12, linewidths=0,
                   zorder=5)
    if data.reference is not None:
        ax.plot([data.reference[across], p[across]], [data.reference[up], p[up]], color=PROJECTION_COLOUR,
                linewidth=0.8, linestyle="dotted", zorder=5)
    if iv is not None and (iv.near or iv.far):
        ends = [q for q in (iv.near, iv.far) if q]
        ax.plot([q[across] for q in ends], [q[up] for q in ends], color=PROJECTION_COLOUR,
                linewidth=2.6, alpha=0.55, solid_capstyle="butt", marker="|", markersize=9, zorder=6)
    ax.scatter([p[across]], [p[up]], s=150, marker="*", color=PROJECTION_COLOUR,
               edgecolors="white", linewidths=0.8, zorder=7)
    if annotate:
        ax.annotate("projection", (p[across], p[up]), xytext=(-8, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=7.5, zorder=8,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    return Line2D([], [], color=PROJECTION_COLOUR, marker="*", markersize=11, linewidth=2.6, alpha=0.8,
                  label=_projection_label(data, p))


def _projection_label(data: IsoData, p: Mapping[str, float]) -> str:
    """The projection's legend entry: where, the prediction and its interval, how far beyond the data (with
    the caution past ``CAUTION_DECADES``) and what the interval is."""
    iv = data.interval
    shown = data.shown
    label = f"projection: {point_text(dict(p))}"
    if data.predicted is not None:
        label += f"\npredicted {shown.text(data.predicted)}"
        if iv is not None and iv.accuracy is not None:
            label += f" [{shown.text(iv.accuracy[0])}, {shown.text(iv.accuracy[1])}]"
    if data.decades_beyond:
        far = max(data.decades_beyond.values())
        label += f", {far:.2f} decades beyond the data"
        if far > CAUTION_DECADES:  # the caution of the table and the JSON, on the figure too
            label += "\ncaution: that far out the answer rests on the form alone"
    if iv is not None:
        label += f"\nbar and [ ]: {iv.method}"
    return label


def _set_map_axes(ax: Axes, data: IsoData) -> None:
    """Log axes over the map's mesh: its first axis across, its second up (hours and parameters)."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(data.x[0], data.x[-1])
    ax.set_ylim(data.y[0], data.y[-1])
    ax.xaxis.set_major_formatter(axis_formatter(data.x_axis))
    ax.yaxis.set_major_formatter(axis_formatter(data.y_axis))
    ax.set_xlabel(axis_label(data.x_axis) + ", log scale")
    ax.set_ylabel(axis_label(data.y_axis) + ", log scale")
    ax.grid(False)


def _iso_title(data: IsoData) -> str:
    """What the map shows, its notes, and where trained runs at other held values are drawn."""
    held = _held_words(data)
    at = f" at {held}" if held else ""
    shown = data.shown
    what = f"Iso-accuracy contours of {shown.name}" if shown.kind == "accuracy" \
        else f"Contours of predicted {shown.name}"
    title = f"{what}{at}; fit {data.form}"
    if data.notes:
        title += "\n" + "; ".join(data.notes)
    elsewhere = _trained_elsewhere(data)
    if elsewhere and "arch" in data.observed:
        title += f"\ntrained runs ({elsewhere}) are marked at their (parameters, hours) on this " \
                 f"{fmt_px(data.image_px or 0)} surface"
    elif elsewhere:
        title += f"\nfitted {shown.rows} at {elsewhere} are marked at their ({data.y_axis}, {data.x_axis}) " \
                 f"on this surface at {held}"
    return title


def _upright(texts: Iterable[Text], *, colour: str = "0.15") -> None:
    """Contour labels set horizontal on a white box: on log axes matplotlib's rotation along the line can
    turn them sideways or upside down ('%09')."""
    for t in texts:
        t.set_rotation(0)
        t.set_color(colour)
        t.set_bbox({"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"})


def _px_span(values: Iterable[float]) -> str:
    """The image sizes among ``values``: '224 px', '224-476 px', or '' for none."""
    px = sorted({round(float(v)) for v in values})
    if not px:
        return ""
    return f"{px[0]} px" if len(px) == 1 else f"{px[0]}-{px[-1]} px"


def _trained_elsewhere(data: IsoData) -> str:
    """Where trained points lie off the map's held values: '224-476 px' (the run database's resolutions),
    'tokens 1e9-3e10' (a table's held axis); '' when every one lies on it."""
    parts = []
    for a, value in data.held.items():
        if a not in data.observed or not len(data.observed):
            continue
        values = data.observed[a].astype(float)
        if a == "image_px":
            if {round(float(v)) for v in values} != {round(value)}:
                parts.append(_px_span(values))
        elif not np.allclose(values, value, rtol=1e-9):
            lo, hi = float(values.min()), float(values.max())
            parts.append(f"{a} {fmt_level(lo)}" + (f"-{fmt_level(hi)}" if hi > lo else ""))
    return ", ".join(parts)


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
