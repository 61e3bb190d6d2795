"""Drawing of figures 1-3 from their data (``curves_data``, ``iso_data``): each function takes the data and
an ``ax`` and returns the ax; nothing here computes a fit or touches pyplot's global state."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

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
    new_figure,
    save_figure,
    size_colour,
    size_label,
    size_marker,
    size_rank,
    style,
)

if TYPE_CHECKING:
    from scaling.fitting import FitResult
    from scaling.projection import Projection
    from scaling.targets import Target
from scaling.plots.curves_data import AXIS_LABELS, BAND_WORDS, CurvesData
from scaling.plots.iso_data import IsoData, PointInterval, iso_accuracy_data

ISO_FIGSIZE = (6.8, 6.6)  # inches: room for the contour labels and the legend beside the map


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
