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
    COUNT_FORMATTER,
    HOURS_FORMATTER,
    NEUTRAL,
    PERCENT_FORMATTER,
    PROJECTION_COLOUR,
    TARGET_COLOUR,
    fmt_count,
    fmt_hours_tick,
    fmt_percent_tick,
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
from scaling.defaults import CAUTION_DECADES
from scaling.plots.curves_data import AXIS_LABELS, BAND_WORDS, CurvesData
from scaling.plots.iso_data import IsoData, PointInterval, iso_accuracy_data

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
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(HOURS_FORMATTER if data.x_axis == "data_hours" else COUNT_FORMATTER)
        ax.yaxis.set_major_formatter(PERCENT_FORMATTER)
        ax.set_xlabel(AXIS_LABELS.get(data.x_axis, data.x_axis) + ", log scale")
        ax.set_ylabel(f"{data.y_label}, %")
        handles: list[Artist] = [Line2D([], [], color=c.colour, marker=c.marker, markersize=6,
                                     markeredgecolor="white", label=labels[i]) for i, c in enumerate(data.curves)]
        seeds = "subset seeds (small); mean (large)"
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
        ax.legend(handles=handles, loc="upper left")
        if title is None:
            title = _curves_title(data)
        ax.set_title(title, loc="left")
    return ax


def _curves_title(data: CurvesData) -> str:
    """What is drawn and what is held fixed: 'ImageNet top-1 vs pretraining data by model size, 224 px only'."""
    metric = data.y_label.split(" (")[0]
    versus = "pretraining data" if data.x_axis == "data_hours" else AXIS_LABELS.get(
        data.x_axis, data.x_axis).split(" (")[0].lower()
    held = []
    for col, value in data.where.items():
        if col == "image_px":
            held.append(f"runs at {float(value):.0f} px only")
        elif col == "arch":
            held.append(f"{size_label(value)} only")
        else:
            held.append(f"{col} = {value}")
    what = {"image_px": "image size", "arch": "model size"}.get(data.group_by, data.group_by)
    shown = int(data.observed.shape[0])
    fitted = f"fit {data.form} on all {data.n_points} runs" if shown < data.n_points \
        else f"fit {data.form}, {data.n_points} runs"
    return f"{metric} vs {versus} by {what}" + (f", {', '.join(held)}" if held else "") + f"\n{fitted}"


def _curve_labels(data: CurvesData) -> list[str]:
    """Legend labels; a curve closer to the previous one than 2% of the plotted range over its whole length
    says so (the study's 448 and 476 px fits are 0.4 points apart: otherwise one line seems to be missing)."""
    labels = [c.label for c in data.curves]
    values = np.concatenate([data.observed["value"].to_numpy(dtype=float), *(c.predicted for c in data.curves)])
    close = 0.02 * 100 * float(np.nanmax(values) - np.nanmin(values))
    for i in range(1, len(data.curves)):
        a, b = data.curves[i - 1], data.curves[i]
        if len(a.x) == len(b.x) and np.allclose(a.x, b.x):
            gap = 100 * (b.predicted - a.predicted)
            if np.all(np.abs(gap) < close):
                labels[i] += f" (fit {float(np.mean(gap)):+.1f} points vs {a.label}: the lines nearly coincide)"
    return labels


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
                      annotate: bool = True, colorbar: bool = True) -> Axes:
    """Figure 3: labelled iso-accuracy contours (upright), the target highlighted, trained runs, the
    extrapolation region hatched, the projection with its interval, and a colour bar of the surface."""
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


def _draw_surface(ax: Axes, data: IsoData, *, colorbar: bool) -> None:
    """The predicted surface filled between the contour levels, with its colour bar."""
    fill_levels = [0.0, *data.levels.tolist(), 1.0]
    filled = ax.contourf(data.data_hours, data.n_params, np.clip(data.accuracy, 0.0, 1.0), levels=fill_levels,
                         cmap="cividis", alpha=0.35, extend="neither")
    if colorbar:
        bar = ax.figure.colorbar(filled, ax=ax, shrink=0.85, pad=0.02, aspect=30)
        bar.set_label(f"Predicted {data.y_label.split(' (')[0]}, %"
                      + (f" (at {fmt_px(data.image_px)})" if data.image_px else ""))
        bar.ax.yaxis.set_major_formatter(PERCENT_FORMATTER)
        bar.ax.tick_params(labelsize=7)


def _draw_levels(ax: Axes, data: IsoData) -> None:
    """The iso-accuracy contours, labelled upright."""
    if len(data.levels):
        cs = ax.contour(data.data_hours, data.n_params, data.accuracy, levels=data.levels, colors="0.25",
                        linewidths=0.7)
        _upright(ax.clabel(cs, fmt=fmt_percent_tick, fontsize=7, inline=False))


def _draw_target(ax: Axes, data: IsoData) -> list[Artist]:
    """The target contour, labelled away from the projection, and its band dashed; their legend entries."""
    if data.target is None:
        return []
    H, N = data.data_hours, data.n_params
    ct = ax.contour(H, N, data.accuracy, levels=[data.target], colors=TARGET_COLOUR, linewidths=2.2)
    spot = _target_label_spot(data, ct.allsegs[0])
    if spot is not None:
        _upright(ax.clabel(ct, fmt=_pct, fontsize=8, inline=False, manual=[spot]), colour=TARGET_COLOUR)
    handles: list[Artist] = [Line2D([], [], color=TARGET_COLOUR, linewidth=2.2, label=data.target_label)]
    if data.target_band is not None:
        for b in data.target_band:
            ax.contour(H, N, b, levels=[data.target], colors=TARGET_COLOUR, linewidths=0.9, linestyles="dashed")
        handles.append(Line2D([], [], color=TARGET_COLOUR, linewidth=0.9, linestyle="dashed",
                              label=f"same, {100 * (data.band_level or 0):.0f}% confidence band"))
    return handles


def _draw_extrapolation(ax: Axes, data: IsoData) -> Patch:
    """The region beyond the trained (N, D) points, hatched; its legend entry."""
    ax.contourf(data.data_hours, data.n_params, data.outside.astype(float), levels=[0.5, 1.5], colors="none",
                hatches=["////"])
    return Patch(facecolor="white", edgecolor="0.55", hatch="////", label="beyond the trained (N, D) grid")


def _draw_trained(ax: Axes, data: IsoData) -> list[Artist]:
    """The trained runs at their (N, D), one marker per model size; their legend entries."""
    if not len(data.observed):
        return []
    handles: list[Artist] = []
    obs = data.observed.drop_duplicates(subset=["n_params", "data_hours"])
    archs = obs["arch"] if "arch" in obs else pd.Series([""] * len(obs))
    for arch in sorted(archs.unique(), key=size_rank):
        sub = obs[archs == arch]
        px = _px_span(data.observed.loc[data.observed["arch"] == arch, "image_px"]) \
            if "image_px" in data.observed and "arch" in data.observed else ""
        where = f" ({px})" if px else ""
        ax.scatter(sub["data_hours"], sub["n_params"], s=22, color=size_colour(arch),
                   marker=size_marker(arch), edgecolors="black", linewidths=0.4, zorder=4)
        handles.append(Line2D([], [], color=size_colour(arch), marker=size_marker(arch), linestyle="none",
                              markeredgecolor="black", markeredgewidth=0.4,
                              label=f"trained {size_label(arch)}{where}"))
    return handles


def _draw_projection(ax: Axes, data: IsoData, p: Mapping[str, float], *, annotate: bool) -> Line2D:
    """The projected point ``p`` starred, with the bootstrap's projected points, the ray from the reference and
    the interval's bar; its legend entry."""
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
    if annotate:
        ax.annotate("projection", (p["data_hours"], p["n_params"]), xytext=(-8, 0), textcoords="offset points",
                    ha="right", va="center", fontsize=7.5, zorder=8,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"})
    return Line2D([], [], color=PROJECTION_COLOUR, marker="*", markersize=11, linewidth=2.6, alpha=0.8,
                  label=_projection_label(data, p))


def _projection_label(data: IsoData, p: Mapping[str, float]) -> str:
    """The projection's legend entry: where, the prediction and its interval, how far beyond the data (with
    the caution past ``CAUTION_DECADES``) and what the interval is."""
    iv = data.interval
    where = f"{fmt_count(p['n_params'])} params, {fmt_hours_tick(p['data_hours'])} h" + (
        f", {fmt_px(p['image_px'])}" if "image_px" in p else "")
    label = f"projection: {where}"
    if data.predicted is not None:
        label += f"\npredicted {_pct(data.predicted)}"
        if iv is not None and iv.accuracy is not None:
            label += f" [{_pct(iv.accuracy[0])}, {_pct(iv.accuracy[1])}]"
    if data.decades_beyond:
        far = max(data.decades_beyond.values())
        label += f", {far:.2f} decades beyond the data"
        if far > CAUTION_DECADES:  # the caution of the table and the JSON, on the figure too
            label += "\ncaution: that far out the answer rests on the form alone"
    if iv is not None:
        label += f"\nbar and [ ]: {iv.method}"
    return label


def _set_map_axes(ax: Axes, data: IsoData) -> None:
    """Log axes over the map's mesh: hours across, parameters up."""
    H, N = data.data_hours, data.n_params
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(H[0], H[-1])
    ax.set_ylim(N[0], N[-1])
    ax.xaxis.set_major_formatter(HOURS_FORMATTER)
    ax.yaxis.set_major_formatter(COUNT_FORMATTER)
    ax.set_xlabel(AXIS_LABELS["data_hours"] + ", log scale")
    ax.set_ylabel(AXIS_LABELS["n_params"] + ", log scale")
    ax.grid(False)


def _iso_title(data: IsoData) -> str:
    """What the map shows, its notes, and where trained runs at other image sizes are drawn."""
    at = f" at {fmt_px(data.image_px)}" if data.image_px is not None else ""
    title = f"Iso-accuracy contours of {data.y_label}{at}; fit {data.form}"
    if data.notes:
        title += "\n" + "; ".join(data.notes)
    elsewhere = _trained_elsewhere(data)
    if elsewhere:
        title += f"\ntrained runs ({elsewhere}) are marked at their (parameters, hours) on this " \
                 f"{fmt_px(data.image_px or 0)} surface"
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
    """'224-476 px' when trained runs at other image sizes than the map's are drawn on it, else ''."""
    if data.image_px is None or "image_px" not in data.observed or not len(data.observed):
        return ""
    if {round(float(v)) for v in data.observed["image_px"]} == {round(data.image_px)}:
        return ""
    return _px_span(data.observed["image_px"])


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
