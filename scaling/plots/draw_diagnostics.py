"""Drawing of the diagnostic figures from their data (``diagnostics_data``): each function takes the data
and an ``ax`` and returns the ax."""

from __future__ import annotations

import math

from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatterSciNotation

from scaling.plots.diagnostics_data import ComputeDistribution, FrontierData, LossCurves, ParityData
from scaling.plots.style import (
    COUNT_FORMATTER,
    NEUTRAL,
    PERCENT_FORMATTER,
    PROJECTION_COLOUR,
    TARGET_COLOUR,
    fmt_hours_tick,
    form_style,
    new_figure,
    size_colour,
    size_label,
    size_rank,
    style,
)


def plot_backtest_parity(data: ParityData, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Figure 4: predicted against observed accuracy of held-out runs, one colour and marker per form."""
    if ax is None:
        _, ax = new_figure(figsize=(5.0, 5.0))
    lo, hi = data.limits
    with style():
        ax.plot([lo, hi], [lo, hi], color=NEUTRAL, linewidth=0.9, linestyle="dashed", zorder=1)
        for i, form in enumerate(data.forms):
            colour, marker = form_style(i)
            sub = data.frame[data.frame["form"] == form]
            s = data.stats.loc[form]
            ax.scatter(sub["observed"], sub["predicted"], s=24, color=colour, marker=marker, alpha=0.8,
                       edgecolors="white", linewidths=0.4, zorder=3,
                       label=f"{form}: RMSE {100 * s['rmse']:.1f} pp, bias {100 * s['bias']:+.1f} pp "
                             f"(n={int(s['n'])})")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_formatter(PERCENT_FORMATTER)
        ax.yaxis.set_major_formatter(PERCENT_FORMATTER)
        ax.set_xlabel("Observed accuracy of the held-out run, %")
        ax.set_ylabel("Predicted by the fit without it, %")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color=NEUTRAL, linestyle="dashed"))
        labels.append("perfect prediction")
        ax.legend(handles, labels, loc="upper left")
        ax.set_title(title if title is not None else (data.title or "Backtest: held-out runs, predicted vs observed"),
                     loc="left")
    return ax


def plot_compute_distribution(data: ComputeDistribution, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Figure 5: histogram of the bootstrap compute (log FLOPs), the point estimate and the interval."""
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
                       label=f"{100 * data.level:.0f}% percentile interval"
                             + ("" if math.isfinite(hi) else " (upper end: unreachable)"))
        if math.isfinite(data.median):
            ax.axvline(data.median, color=PROJECTION_COLOUR, linewidth=1.0, linestyle="dashed",
                       label=f"bootstrap median {data.median:.2e} FLOPs")
        if data.point_estimate is not None and math.isfinite(data.point_estimate):
            ax.axvline(data.point_estimate, color=TARGET_COLOUR, linewidth=1.8,
                       label=f"point estimate {data.point_estimate:.2e} FLOPs")
        if data.n_unreachable:
            ax.plot([], [], linestyle="none",
                    label=f"{data.n_unreachable} resamples never reach the target (not drawn)")
        if data.n_missing:
            ax.plot([], [], linestyle="none", label=f"{data.n_missing} resamples without a value (left out)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(LogFormatterSciNotation())
        ax.set_xlabel("Pretraining compute to reach the target (FLOPs), log scale")
        ax.set_ylabel("Bootstrap resamples (count)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
        if title is None:
            what = f" {data.target_label}" if data.target_label else " the target"
            title = f"Compute needed to reach{what}: bootstrap distribution"
        ax.set_title(title, loc="left")
    return ax


RESOLUTION_LINESTYLES = {224: "solid", 448: (0, (5, 2)), 476: (0, (1.5, 1.5))}


def plot_loss_curves(data: LossCurves, ax: Axes | None = None, *, log_x: bool = True, log_y: bool = True,
                     title: str | None = None) -> Axes:
    """Figure 6: one line per run, coloured by model size; line style by resolution (solid 224 px).

    On a log x axis the first logged point (step 0) is not drawn.
    """
    if ax is None:
        _, ax = new_figure()
    df = data.frame
    with style():
        runs = df.drop_duplicates("name")[["name", "arch", "image_px", "data_hours"]]
        runs = runs.assign(rank=runs["arch"].map(size_rank)).sort_values(["rank", "image_px", "data_hours", "name"])
        for _, r in runs.iterrows():
            sub = df[df["name"] == r["name"]]
            if log_x:
                sub = sub[sub["x"] > 0]
            px = float(r["image_px"])
            ax.plot(sub["x"], sub["value"], color=size_colour(r["arch"]), linewidth=1.2,
                    linestyle=RESOLUTION_LINESTYLES.get(round(px), "solid"),
                    label=f"{size_label(r['arch'])} @ {px:.0f} px, {fmt_hours_tick(r['data_hours'])} h ({r['name']})")
        if log_x:
            ax.set_xscale("log")
        if log_y:
            ax.set_yscale("log")
        ax.xaxis.set_major_formatter(COUNT_FORMATTER)
        ax.set_xlabel(data.x_label + (", log scale" if log_x else ""))
        what = "MAE training loss (MSE on masked patches)" if data.key == "train_loss" \
            else data.key
        ax.set_ylabel(what + (", log scale" if log_y else ""))
        ax.legend(loc="upper right", fontsize=6.5)
        n = runs["name"].nunique()
        ax.set_title(title if title is not None else f"{data.phase.capitalize()} curves of {n} runs ({data.key})",
                     loc="left")
    return ax


def plot_frontier(data: FrontierData, ax: Axes | None = None, *, title: str | None = None) -> Axes:
    """Pretraining compute along the iso-target frontier against parameters, the optimum starred; each point
    is labelled with its hours and image size."""
    if ax is None:
        _, ax = new_figure()
    df = data.frame[data.frame["reachable"]]
    with style():
        ax.plot(df["n_params"], df["flops"], color=PROJECTION_COLOUR, linewidth=1.2,
                label="cheapest (hours, px) at each size")
        bound = df["at_bounds"].str.contains("upper|lower", regex=True)
        ax.scatter(df.loc[~bound, "n_params"], df.loc[~bound, "flops"], s=20, color=PROJECTION_COLOUR, zorder=4)
        ax.scatter(df.loc[bound, "n_params"], df.loc[bound, "flops"], s=20, facecolors="white",
                   edgecolors=PROJECTION_COLOUR, zorder=4,
                   label="hollow: resolution or hours at a bound of the search" if bound.any() else None)
        for _, r in df.iterrows():
            ax.annotate(f"{fmt_hours_tick(r['data_hours'])} h\n{r['image_px']:.0f} px", (r["n_params"], r["flops"]),
                        xytext=(0, 7), textcoords="offset points", ha="center", va="bottom", fontsize=6.5,
                        color="0.3")
        if data.optimum is not None and data.optimum_flops is not None:
            ax.scatter([data.optimum["n_params"]], [data.optimum_flops], s=160, marker="*", color=TARGET_COLOUR,
                       edgecolors="white", linewidths=0.8, zorder=5,
                       label=f"optimum: {data.optimum_flops:.2e} FLOPs")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(COUNT_FORMATTER)
        ax.yaxis.set_major_formatter(LogFormatterSciNotation())
        ax.set_xlabel("Parameters (encoder, incl. position embeddings), log scale")
        ax.set_ylabel("Pretraining compute to reach the target (FLOPs), log scale")
        ax.margins(y=0.25)
        ax.legend(loc="upper center")
        ax.set_title(title if title is not None else f"Compute-optimal frontier for {data.target_label}",
                     loc="left")
    return ax
