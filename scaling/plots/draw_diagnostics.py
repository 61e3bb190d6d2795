"""Drawing of the diagnostic figures from their data (``diagnostics_data``): each function takes the data
and an ``ax`` and returns what it drew on (multi-panel figures put their panels in the place of ``ax``)."""

from __future__ import annotations

import math
import textwrap

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogFormatterSciNotation

from scaling.plots.diagnostics_data import BacktestPanels, ComputeDistribution, FrontierData, LossCurves, ParityData
from scaling.plots.style import (
    COUNT_FORMATTER,
    NEUTRAL,
    PROJECTION_COLOUR,
    TARGET_COLOUR,
    Panels,
    fmt_flops,
    fmt_hours,
    form_style,
    host_figure,
    new_figure,
    size_colour,
    size_label,
    size_rank,
    split_axes,
    style,
)

RUN_KEYS = ("arch", "image_px", "data_hours")  # one held-out configuration; its subset seeds share a prediction
NOT_FITTED_WIDTH = 60  # characters of a form's reason in a parity legend (a long one would squeeze the panel)


def _seed_means(sub: pd.DataFrame) -> pd.DataFrame:
    """One row per held-out configuration: mean observed value and the seeds' range, the (shared) prediction."""
    keys = [k for k in RUN_KEYS if k in sub.columns]
    if not keys:
        return sub.assign(lo=sub["observed"], hi=sub["observed"])
    return (sub.groupby(keys, sort=False)
            .agg(observed=("observed", "mean"), lo=("observed", "min"), hi=("observed", "max"),
                 predicted=("predicted", "mean")).reset_index())


def plot_backtest_parity(data: ParityData, ax: Axes | None = None, *, title: str | None = None,
                         limits: tuple[float, float] | None = None) -> Axes:
    """Figure 4 for one split: predicted against observed accuracy of the held-out runs, per form.

    The subset seeds of a configuration share one prediction: each configuration is drawn once, at the
    seeds' mean, with a bar over their range. Forms are hollow markers of decreasing size, so that where
    forms agree the markers nest instead of hiding one another.
    """
    if ax is None:
        _, ax = new_figure(figsize=(5.0, 5.0))
    lo, hi = limits or data.limits
    stats = data.form_stats()
    shown = data.shown
    with style():
        ax.plot([lo, hi], [lo, hi], color=NEUTRAL, linewidth=0.9, linestyle="dashed", zorder=1)
        for i, form in enumerate(data.forms):
            colour, marker = form_style(i)
            points = _seed_means(data.frame[data.frame["form"] == form])
            spread = points[points["hi"] > points["lo"]]
            ax.hlines(spread["predicted"], spread["lo"], spread["hi"], color=colour, linewidth=0.8, alpha=0.7,
                      zorder=2)
            s = stats[form]
            ax.scatter(points["observed"], points["predicted"], s=max(80 * 0.55**i, 8), marker=marker,
                       facecolors="none", edgecolors=colour, linewidths=1.3, zorder=3 + i,
                       label=f"{form}: RMSE {shown.difference(s['rmse'])}, bias "
                             f"{shown.difference(s['bias'], signed=True)} (n={int(s['n'])} {shown.rows})")
        handles, labels = ax.get_legend_handles_labels()
        for form, reason in data.not_fitted:
            handles.append(Line2D([], [], color="none"))
            why = textwrap.shorten(reason.removeprefix(f"form {form!r} "), width=NOT_FITTED_WIDTH, placeholder=" ...")
            labels.append(f"{form}: not fitted ({why})")
        handles.append(Line2D([], [], color=NEUTRAL, linestyle="dashed"))
        labels.append("perfect prediction")
        if any(k in data.frame.columns for k in RUN_KEYS):
            handles.append(Line2D([], [], color=NEUTRAL, linewidth=0.8, marker="o", markerfacecolor="none"))
            labels.append("mean of the subset seeds, bar: their range")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_formatter(shown.formatter)
        ax.yaxis.set_major_formatter(shown.formatter)
        unit = ", %" if shown.percent else ""
        ax.set_xlabel(f"Observed {shown.short or 'accuracy'} of the held-out {shown.rows}{unit}")
        ax.set_ylabel(f"Predicted by the form fitted without them{unit}")
        ax.legend(handles, labels, loc="upper left", fontsize=6.5)
        ax.set_title(title if title is not None else (data.title or "Backtest: held-out runs, predicted vs observed"),
                     loc="left", fontsize=8.5)
    return ax


def _panel_grid(n: int) -> tuple[int, int]:
    """(rows, columns) of figure 4's ``n`` panels: two columns at the most."""
    ncols = min(n, 2)
    return math.ceil(n / ncols), ncols


def backtest_figsize(data: BacktestPanels) -> tuple[float, float]:
    """The size (inches) of figure 4 with its panels."""
    nrows, ncols = _panel_grid(len(data.panels))
    return 5.0 * ncols, 5.2 * nrows + 0.6


def plot_backtest_splits(data: BacktestPanels, ax: Panels | None = None) -> Axes | np.ndarray:
    """Figure 4 over every split: one parity panel per split (same axes limits), in the place of ``ax``.

    Returns the panels' axes (an array; the one Axes for a single split)."""
    n = len(data.panels)
    nrows, ncols = _panel_grid(n)
    if ax is None:
        _, ax = new_figure(figsize=backtest_figsize(data))
    fig, alone = host_figure(ax)
    axes = split_axes(ax, nrows, ncols)
    lows, highs = zip(*(p.limits for p in data.panels), strict=True)
    limits = (min(lows), max(highs))
    for panel, a in zip(data.panels, axes.ravel(), strict=False):
        plot_backtest_parity(panel, a, limits=limits)
    for a in axes.ravel()[n:]:
        a.set_axis_off()
    shown = data.shown
    head = f"Backtest of {shown.name}: each form fitted on the smaller {shown.rows}, predicting the held-out " \
           "larger ones"
    for split, reason in data.skipped:
        head += "\n" + textwrap.shorten(f"not drawn: split '{split}', no form could be fitted ({reason})",
                                        width=40 + 50 * ncols, placeholder=" ...)")
    with style():
        if alone:
            fig.suptitle(head, x=0.01, ha="left", fontsize=9.5)
        elif n == 1:
            axes[0, 0].set_title(f"{head}\n{data.panels[0].title}", loc="left", fontsize=8)
    return axes[0, 0] if n == 1 else axes


def plot_compute_distribution(data: ComputeDistribution, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Figure 5: histogram of the bootstrap compute (log FLOPs), the point estimate, median and interval.

    The median is drawn over the point estimate (dashed, with a marker at the top) so that it stays visible
    where the two coincide."""
    if ax is None:
        _, ax = new_figure(figsize=(6.0, 3.8))
    with style():
        if data.counts.size:
            ax.stairs(data.counts, data.bin_edges, fill=True, color=NEUTRAL, alpha=0.55,
                      label=f"{len(data.samples)} of {data.n_total} fitted resamples")
        lo, hi = data.interval
        xmax = data.bin_edges[-1] if data.bin_edges.size else (data.point_estimate or 1.0) * 10
        if math.isfinite(lo):
            ax.axvspan(lo, hi if math.isfinite(hi) else xmax, color=PROJECTION_COLOUR, alpha=0.08, linewidth=0,
                       label=f"{100 * data.level:.0f}% percentile interval [{lo:.2e}, "
                             + (f"{hi:.2e}]" if math.isfinite(hi) else "unreachable]"))
        point = data.point_estimate if data.point_estimate is not None and math.isfinite(data.point_estimate) \
            else None
        if point is not None:
            ax.axvline(point, color=TARGET_COLOUR, linewidth=2.4, zorder=3,
                       label=f"estimate (full data) {data.fmt(point)}")
        if math.isfinite(data.median):
            gap = "" if point is None else f" ({100 * (data.median / point - 1):+.1f}% vs the estimate)"
            ax.axvline(data.median, color=PROJECTION_COLOUR, linewidth=1.1, linestyle=(0, (3, 2)), zorder=4)
            ax.plot([data.median], [0.97], marker="v", color=PROJECTION_COLOUR, markersize=7,
                    transform=ax.get_xaxis_transform(), zorder=5, linestyle="none")
            ax.plot([], [], color=PROJECTION_COLOUR, linewidth=1.1, linestyle=(0, (3, 2)), marker="v",
                    label=f"median {data.fmt(data.median)}{gap}")
        if data.n_unreachable:
            ax.plot([], [], linestyle="none",
                    label=f"{data.n_unreachable} resamples never reach the target (not drawn)")
        if data.n_missing:
            ax.plot([], [], linestyle="none", label=f"{data.n_missing} resamples without a value (left out)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(LogFormatterSciNotation())
        name, _ = data.what
        ax.set_xlabel(f"{name} needed to reach the target, log scale" if name
                      else "Pretraining compute to reach the target (FLOPs), log scale")
        ax.set_ylabel("Bootstrap resamples (count)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
        if title is None:
            what = f" {data.target_label}" if data.target_label else " the target"
            how = {"scale": " by scaling every axis by one factor", "solve": " by adding pretraining data",
                   "optimal": " at the compute-optimal allocation"}.get(data.question, "")
            fit = f" (fit {data.form})" if data.form else ""
            title = (f"Compute needed to reach{what}\n{how.strip().capitalize() or 'Projection'}{fit}: bootstrap "
                     "distribution\n(whole runs resampled, each resample refitted and projected again)")
            if name:  # a table's needed value of an axis, or the scale factor on every axis
                title = (f"{name} needed to reach{what}\nfit {data.form}: bootstrap distribution\n"
                         "(rows resampled, each resample refitted and projected again)")
        ax.set_title(title, loc="left")
    return ax


RESOLUTION_LINESTYLES = {224: "solid", 448: (0, (5, 2)), 476: (0, (1.5, 1.5))}
LOSS_NAMES = {"train_loss": "MAE pretraining loss (mean squared error on the masked patches)"}


def _loss_panel(df: pd.DataFrame, ax: Axes, *, log_x: bool, log_y: bool, what: str) -> None:
    runs = df.drop_duplicates("name")[["name", "arch", "image_px", "data_hours"]]
    runs = runs.assign(rank=runs["arch"].map(size_rank)).sort_values(["rank", "image_px", "data_hours", "name"])
    for _, r in runs.iterrows():
        sub = df[df["name"] == r["name"]]
        if log_x:
            sub = sub[sub["x"] > 0]
        px = float(r["image_px"])
        ax.plot(sub["x"], sub["value"], color=size_colour(r["arch"]), linewidth=1.2,
                linestyle=RESOLUTION_LINESTYLES.get(round(px), "solid"),
                label=f"{size_label(r['arch'])} @ {px:.0f} px, {fmt_hours(r['data_hours'])} ({r['name']})")
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _pos: f"{v:g}")  # 0.2, 0.3 rather than 2 x 10^-1
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    ax.xaxis.set_major_formatter(COUNT_FORMATTER)
    ax.legend(loc="upper right", fontsize=6.5)
    ax.set_title(what, loc="left", fontsize=8.5)


def plot_loss_curves(data: LossCurves, ax: Panels | None = None, *, log_x: bool = True, log_y: bool = True,
                     title: str | None = None, single_steps: bool = False) -> Axes | np.ndarray:
    """Figure 6: one line per run, coloured by model size; runs at 224 px and at larger images in separate
    panels (the loss of a masked patch depends on the image size). Returns the panels' axes (one Axes when
    every run has one image size).

    The record a job writes when it starts is the loss of one iteration, not a mean over the logging
    interval; those records make downward spikes at every resumption and are left out unless
    ``single_steps``. On a log x axis the first logged point (step 0) is not drawn either.
    """
    df = data.frame
    dropped = int(df["single_step"].sum()) if "single_step" in df and not single_steps else 0
    if dropped:
        df = df[~df["single_step"]]
    pxs = sorted({round(float(v)) for v in df["image_px"]})
    groups = [(f"{pxs[0]} px", df[df["image_px"].round() == pxs[0]])]
    if len(pxs) > 1:
        rest = ", ".join(f"{p}" for p in pxs[1:-1]) + (" and " if len(pxs) > 2 else "") + f"{pxs[-1]} px"
        groups.append((rest, df[df["image_px"].round() != pxs[0]]))
    if ax is None:
        _, ax = new_figure(figsize=(6.4 if len(groups) == 1 else 10.0, 4.6))
    fig, alone = host_figure(ax)
    axes = split_axes(ax, 1, len(groups), sharey=True)
    what = LOSS_NAMES.get(data.key, data.key)
    with style():
        for a, (label, sub) in zip(axes[0], groups, strict=True):
            _loss_panel(sub, a, log_x=log_x, log_y=log_y, what=f"runs at {label}")
            a.set_xlabel(data.x_label + (", log scale" if log_x else ""))
        axes[0, 0].set_ylabel(("loss" if data.key == "train_loss" else data.key)
                              + " (dimensionless)" * (data.key == "train_loss") + (", log scale" if log_y else ""))
        n = df["name"].nunique()
        head = title if title is not None else f"{what}: {n} runs"
        if dropped:
            head += (f"\nleft out: the first record of each job ({dropped}), the loss of a single iteration;"
                     "\nevery other record is a mean over the 1,000-10,000 iterations before it")
        if alone or len(groups) == 1:
            if len(groups) == 1:
                axes[0, 0].set_title(f"{head}\n{groups[0][0]}", loc="left", fontsize=8.5)
            else:
                fig.suptitle(head, x=0.01, ha="left", fontsize=9.0)
        else:
            axes[0, 0].set_title(f"{head}\n{groups[0][0]}", loc="left", fontsize=8)
    return axes[0, 0] if len(groups) == 1 else axes


def _frontier_label(r: pd.Series) -> str:
    # Three significant figures: the points are optimiser outputs, known to about 1e-3 (not to the hour).
    hours, px = (float(f"{r[k]:.3g}") for k in ("data_hours", "image_px"))
    return f"{fmt_hours(hours)}\n{px:,.0f} px"


def plot_frontier(data: FrontierData, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Pretraining compute along the iso-target frontier against parameters, the optimum starred; each point
    is labelled with its hours and image size, below the curve (it is convex: nothing of it lies there)."""
    if ax is None:
        _, ax = new_figure()
    df = data.frame[data.frame["reachable"]].reset_index(drop=True)
    with style():
        ax.plot(df["n_params"], df["flops"], color=PROJECTION_COLOUR, linewidth=1.2,
                label="cheapest (hours, px) at each size")
        bound = df["at_bounds"].str.contains("upper|lower", regex=True)
        ax.scatter(df.loc[~bound, "n_params"], df.loc[~bound, "flops"], s=20, color=PROJECTION_COLOUR, zorder=4)
        ax.scatter(df.loc[bound, "n_params"], df.loc[bound, "flops"], s=20, facecolors="white",
                   edgecolors=PROJECTION_COLOUR, zorder=4,
                   label="hollow: resolution or hours at a bound of the search" if bound.any() else None)
        best = int(np.nanargmin(df["flops"].to_numpy(dtype=float))) if len(df) else -1
        for i, (_, r) in enumerate(df.iterrows()):
            # Left of the minimum the curve falls to the right: a label below-left of its point is clear of
            # it; right of the minimum the mirror image; the minimum itself straight below.
            side = 0 if i == best else (-1 if i < best else 1)
            ax.annotate(_frontier_label(r), (r["n_params"], r["flops"]), xytext=(6 * side, -7),
                        textcoords="offset points", ha={-1: "right", 0: "center", 1: "left"}[side], va="top",
                        fontsize=6.5, color="0.3")
        if data.optimum is not None and data.optimum_flops is not None:
            on_bound = [b for b in data.optimum_at_bounds if b.endswith(("upper", "lower"))]
            where = ""
            if on_bound:
                parts = []
                for b in on_bound:
                    axis, side_name = b.rsplit(" ", 1)
                    value = (data.bounds or {}).get(axis, (math.nan, math.nan))[side_name == "upper"]
                    unit = {"image_px": " px", "data_hours": " h"}.get(axis, "")
                    shown = f" ({value:,.0f}{unit})" if math.isfinite(value) else ""
                    parts.append(f"{axis} at its {side_name} search bound{shown}")
                where = "\non " + "; ".join(parts) + ": a wider search may find cheaper"
            ax.scatter([data.optimum["n_params"]], [data.optimum_flops], s=160, marker="*", color=TARGET_COLOUR,
                       edgecolors="white", linewidths=0.8, zorder=5,
                       label=f"optimum: {fmt_flops(data.optimum_flops)}{where}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(COUNT_FORMATTER)
        ax.yaxis.set_major_formatter(LogFormatterSciNotation())
        ax.set_xlabel("Parameters (encoder, incl. position embeddings), log scale")
        ax.set_ylabel("Pretraining compute to reach the target (FLOPs), log scale")
        ax.margins(x=0.16, y=0.25)  # room for the labels beside the end points
        ax.legend(loc="upper center")
        ax.set_title(title if title is not None else f"Compute-optimal frontier for {data.target_label}",
                     loc="left")
    return ax
