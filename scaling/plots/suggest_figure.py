"""Figure of ``scaling.suggest``: the candidate runs on the iso-accuracy map, coloured by expected shrinkage of
the projection's interval per FLOP, the top ones numbered by rank. The map is ``iso_accuracy_data`` of the
current fit with the 'scale every axis' projection, at its resolution (as the iso figure); candidates at
other resolutions are drawn at their (parameters, hours) with square markers. A table's map is over its last and
first axes (``default_map_axes``); a one-axis table gets the value panel instead: shrinkage against FLOPs per
candidate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

from scaling.plots.draw_fits import ISO_FIGSIZE, plot_iso_accuracy
from scaling.plots.iso_data import IsoData, default_map_axes, iso_accuracy_data
from scaling.plots.labels import level_text
from scaling.plots.style import log_range, new_figure, style
from scaling.questions.projection import project_scale

if TYPE_CHECKING:
    from scaling.design.replay import ReplayResult
    from scaling.design.result import SuggestResult


@dataclass(frozen=True)
class SuggestMap:
    iso: IsoData | None  # None: the fit has one axis, no map
    candidates: pd.DataFrame  # rank, label, flops, shrinkage, value_per_flop, axis columns
    top: int
    unit: str
    title: str

    def summary(self) -> dict[str, Any]:
        return {"top": self.top, "unit": self.unit, "n_candidates": len(self.candidates),
                "map": None if self.iso is None else self.iso.summary()}


def suggest_map_data(result: SuggestResult) -> SuggestMap:
    """The figure's data from a ``SuggestResult``."""

    fit = result.fit
    rows = [{"rank": s.rank, "label": s.label, "flops": s.flops, "shrinkage": s.shrinkage,
             "value_per_flop": s.value_per_flop, **s.point} for s in result.scores]
    frame = pd.DataFrame(rows)
    iso = None
    if fit is not None and len(fit.axes) >= 2:
        across, up = default_map_axes(fit.axes)
        proj = project_scale(fit, result.target.value) if result.target is not None else None
        # At the projection's other axes (so it lies on the target contour), as the iso figure; else the largest.
        point = proj.point if proj is not None and proj.point else None
        grid = result.grid if result.grid is not None else pd.DataFrame(columns=[up, across])
        ys = [*grid.get(up, []), *frame.get(up, []), *([point[up]] if point else [])]
        xs = [*grid.get(across, []), *frame.get(across, []), *([point[across]] if point else [])]
        iso = iso_accuracy_data(fit, grid=result.grid, target=result.target, projection=proj if point else None,
                                interval=None, n=80, map_axes=(across, up),
                                ranges={up: log_range(ys, pad_decades=0.2), across: log_range(xs, pad_decades=0.2)})
    title = (f"What to train next: {len(frame)} candidates by expected shrinkage of the "
             f"{100 * result.level:g}% interval per FLOP ({result.form})")
    return SuggestMap(iso, frame, result.top, result.unit, title)


def plot_suggest_map(data: SuggestMap, ax: Axes | None = None) -> Axes:
    """The candidates on the iso-accuracy map (or shrinkage vs FLOPs without one); returns the Axes."""
    if ax is None:
        _, ax = new_figure(figsize=ISO_FIGSIZE)
    c = data.candidates
    value = c["value_per_flop"].to_numpy(dtype=float) if len(c) else np.array([])
    positive = np.isfinite(value) & (value > 0)
    vmin, vmax = (float(value[positive].min()), float(value[positive].max())) if positive.any() else (1.0, 10.0)
    norm = LogNorm(vmin=vmin, vmax=max(vmax, vmin * 1.0001))
    with style():
        if data.iso is not None:
            plot_iso_accuracy(data.iso, ax, annotate=False, title="")
            x, y = c[data.iso.x_axis], c[data.iso.y_axis]
            at_map = np.ones(len(c), dtype=bool)
            for axis, held in data.iso.held.items():
                if axis in c:
                    at_map &= np.isclose(c[axis].to_numpy(dtype=float), held, rtol=1e-6)
        else:
            x, y = c["flops"], c["shrinkage"]
            at_map = np.ones(len(c), dtype=bool)
            ax.set_xscale("log")
            ax.set_xlabel("pretraining FLOPs of the candidate run, log scale")
            ax.set_ylabel(f"expected shrinkage ({data.unit})")
        colours = np.where(positive, value, vmin)
        # Candidates at one (x, y) (other px or seeds) would hide each other: draw the best of each, and
        # number the top ranks there together ("1,3").
        # (position embeddings make a size's parameter count differ by px: 0.05 decades count as one place)
        logs = np.log10(np.abs(np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])) + 1e-300)
        keys = [(round(a / 0.05), round(b / 0.05)) for a, b in logs]
        order = np.argsort(-np.where(np.isfinite(value), value, -np.inf), kind="stable")
        first: dict[tuple[float, float], int] = {}
        for i in order:
            first.setdefault(keys[i], int(i))
        shown = np.zeros(len(c), dtype=bool)
        shown[list(first.values())] = True
        for mask, marker in ((at_map & shown, "o"), (~at_map & shown, "s")):
            if mask.any():
                ax.scatter(np.asarray(x)[mask], np.asarray(y)[mask], c=colours[mask], cmap="viridis", norm=norm,
                           marker=marker, s=30, edgecolors=np.where(positive[mask], "black", "red").tolist(),
                           linewidths=0.5, alpha=0.9, zorder=9)
        labels: dict[tuple[float, float], list[int]] = {}
        for i in np.flatnonzero(c["rank"].to_numpy() <= data.top):
            labels.setdefault(keys[i], []).append(int(c["rank"].iloc[i]))
        for key, ranks in labels.items():
            i = first[key]
            ax.annotate(",".join(map(str, sorted(ranks))), (np.asarray(x)[i], np.asarray(y)[i]), xytext=(4, 4),
                        textcoords="offset points", fontsize=8, fontweight="bold", zorder=10,
                        bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "edgecolor": "none"})
        sm = ax.figure.colorbar(ax.collections[-1], ax=ax, pad=0.02, fraction=0.05) if len(c) else None
        if sm is not None:
            sm.set_label(f"expected shrinkage per FLOP ({data.unit} / FLOP)")
        if data.iso is not None:
            handles = _candidate_handles(data.iso)
            old = ax.get_legend()
            if old is not None:
                handles = [*(h for h in old.legend_handles if h is not None), *handles]
            ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=2, fontsize=7)
        ax.set_title(data.title, loc="left", fontsize=9)
    return ax


def _candidate_handles(iso: IsoData) -> list[Artist]:
    """Legend entries of the candidates on the map: on it (at its held values) and off it."""
    px = iso.image_px
    where = "(N, D)" if (iso.x_axis, iso.y_axis) == ("data_hours", "n_params") else f"({iso.y_axis}, {iso.x_axis})"
    held = f"at {px:.0f} px" if px else ", ".join(level_text(a, v) for a, v in iso.held.items())
    other = "another px" if px else "other values of the held axes"
    on = f"best candidate at its {where}, {held}" if held else "candidate"
    handles: list[Artist] = [Line2D([], [], marker="o", linestyle="none", color="0.5", markeredgecolor="black",
                                    label=on)]
    if iso.held:
        handles.append(Line2D([], [], marker="s", linestyle="none", color="0.5", markeredgecolor="black",
                              label=f"best candidate at its {where}, {other}"))
    return handles


def plot_replay(result: ReplayResult, ax: Axes | None = None) -> Axes:
    """The replay of ``scaling.suggest_replay``: the projection's error (solid) and its interval width
    (dashed), in decades of FLOPs, against cumulative FLOPs added, per order (random orders in grey)."""
    if ax is None:
        _, ax = new_figure(figsize=(6.4, 4.2))
    colours = {"suggested": "C0", "naive": "C3"}
    with style():
        for t in result.traces:
            f = t.frame
            x = f["cumulative_flops"].to_numpy(dtype=float) + 1.0  # the start (0 FLOPs added) on a log axis
            grey = t.order.startswith("random")
            colour = "0.6" if grey else colours.get(t.order, "C2")
            label = None if grey and t is not result.random_traces[0] else ("random" if grey else t.order)
            ax.step(x, f["error_decades"], where="post", color=colour, lw=0.8 if grey else 1.8, label=label)
            if not grey:
                ax.step(x, f["width_decades"], where="post", color=colour, lw=1.0, linestyle="dashed",
                        label=f"{t.order}: {100 * 0.9:g}% interval width" if t.order == "suggested" else None)
        ax.axhline(result.threshold, color="black", lw=0.7, linestyle="dotted",
                   label=f"error {result.threshold:g} decades")
        ax.set_xscale("symlog", linthresh=1e18)
        ax.set_xlim(left=0)
        ax.set_xlabel("pretraining FLOPs added to the start runs (symlog scale)")
        ax.set_ylabel("decades of FLOPs needed")
        ax.set_title(f"Replay ({result.form}, {result.target.name}): error vs the full grid (solid), "
                     "interval width (dashed)", loc="left", fontsize=9)
        ax.legend(fontsize=7, frameon=False)
    return ax
