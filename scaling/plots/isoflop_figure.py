"""The IsoFLOP figure of ``scaling.compute_optimal`` (``scaling plot isoflop``): left, each budget's points,
its parabola in ln N and its vertex (hollow where it is not kept: not convex, or not inside the sizes
trained); right, N*(C): the vertices, each method's N*(C) line out to the asked budget with its interval
there, and where the parametric law was checked, its N* at the training budgets.

    res = scaling.compute_optimal(sweep, 1e21, y="loss", axes=["params", "tokens"], cost="6nd")
    plots.plot_isoflop(plots.isoflop_data(res))          # or res.plot(), or plots.isoflop_figure(...)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes

from scaling.allocation.isoflop import IsoflopFit
from scaling.allocation.methods_result import ComputeOptimalResult
from scaling.core.direction import direction
from scaling.plots.style import COUNT_FORMATTER, FORM_COLOURS, FORM_MARKERS, Panels, new_figure, split_axes, style

ISOFLOP_FIGSIZE = (11.0, 4.4)
METHOD_STYLE = {"isoflop": 0, "parametric": 1, "envelope": 2}


@dataclass(frozen=True)
class IsoflopFigure:
    """What the IsoFLOP figure draws (``summary`` is what ``scaling plot isoflop --json`` prints)."""

    axes: tuple[str, str]
    y: str
    budget: float
    cost: str
    budgets: tuple[dict[str, Any], ...]  # per budget: points (n, y), the parabola's curve, the vertex, kept
    lines: tuple[dict[str, Any], ...]  # per method: N*(C) line, the estimate and interval at the budget
    checked: tuple[tuple[float, float], ...]  # (budget, the law's N*) of the consistency check
    verdict: str
    level: float
    check: str = ""  # the consistency check in a few words, drawn on the N*(C) panel

    def summary(self) -> dict[str, Any]:
        return {"axes": list(self.axes), "y": self.y, "budget": self.budget, "cost": self.cost, "level": self.level,
                "budgets": [{k: v for k, v in b.items() if k not in ("curve", "points")} for b in self.budgets],
                "methods": [{k: v for k, v in m.items() if k not in ("c", "n")} for m in self.lines],
                "consistency": self.verdict, "notes": []}


def isoflop_data(result: ComputeOptimalResult) -> IsoflopFigure:
    """The figure's data from a result of ``scaling.compute_optimal`` (its IsoFLOP fit, where one was made)."""
    level = max(result.levels)
    iso = next((a.fit for a in result.answers if isinstance(a.fit, IsoflopFit)), None)
    budgets = () if iso is None else _budgets(result, iso)
    lo_c = min([b["budget"] for b in budgets] or [result.budget / 100])
    grid = np.geomspace(lo_c, result.budget, 50)
    lines = []
    for a in result.answers:
        n_opt, slope = a.estimates.get("n_opt"), a.estimates.get("a")
        if not a.available or n_opt is None or slope is None:
            continue
        lo, hi = a.intervals["n_opt"].intervals[level] if "n_opt" in a.intervals else (None, None)
        lines.append({"method": a.method, "c": grid.tolist(), "n": (n_opt * (grid / result.budget) ** slope).tolist(),
                      "n_opt": n_opt, "a": slope, "lower": lo, "upper": hi})
    check = result.consistency
    checked = tuple((b.budget, b.law_n) for b in check.budgets if b.law_n is not None) if check is not None else ()
    cost = result.cost_model["formula"] if result.cost_model else "cost"
    short = ""
    if check is not None and check.made and check.bias_decades is not None:
        short = (f"law's N* vs vertices: {check.bias_decades:+.2f} decades, "
                 + ("the law does not fit these sweeps" if check.fires else "within their scatter"))
    return IsoflopFigure(result.axes, result.y, result.budget, cost, budgets, tuple(lines), checked,
                         "" if check is None else check.verdict, level, short)


def _budgets(result: ComputeOptimalResult, iso: IsoflopFit) -> tuple[dict[str, Any], ...]:
    d = direction(result.kind)  # the parabola is of the error-like quantity: back to y
    out = []
    for p in iso.parabolas:
        curve_n = np.geomspace(*p.n_range, 40)
        vy = None if p.vertex_error is None else float(d.from_error(p.vertex_error))
        out.append({"budget": p.budget, "kept": p.kept, "reason": p.reason, "vertex_n": p.vertex_n, "vertex_y": vy,
                    "se_log10_n": p.se_log10_n, "points": (p.n.tolist(), d.from_error(p.err).tolist()),
                    "curve": (curve_n.tolist(), d.from_error(p.error_at(curve_n)).tolist())})
    return tuple(out)


def plot_isoflop(data: IsoflopFigure, ax: Panels | None = None) -> np.ndarray:
    """Draw both panels in the place of ``ax`` (a new figure when None); returns the two Axes."""
    if ax is None:
        _, ax = new_figure(figsize=ISOFLOP_FIGSIZE)
    left, right = split_axes(ax, 1, 2).ravel()
    with style():
        _draw_parabolas(data, left)
        _draw_optima(data, right)
    return np.array([left, right], dtype=object)


def _draw_parabolas(data: IsoflopFigure, ax: Axes) -> None:
    cmap = colormaps["viridis"]
    for i, b in enumerate(data.budgets):
        colour = cmap(i / max(len(data.budgets) - 1, 1))
        cn, cy = b["curve"]
        px, py = b["points"]
        ax.scatter(px, py, s=12, color=colour, alpha=0.7)
        ax.plot(cn, cy, color=colour, linewidth=1.1, label=f"C = {b['budget']:.2g}")
        if b["vertex_n"] is not None and b["vertex_y"] is not None:
            ax.scatter([b["vertex_n"]], [b["vertex_y"]], s=36, marker="o", zorder=4, linewidths=1.2,
                       facecolors=colour if b["kept"] else "white", edgecolors=colour)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(COUNT_FORMATTER)
    ax.set_xlabel(f"{data.axes[0]} (model size)")
    ax.set_ylabel(data.y)
    ax.set_title("IsoFLOP parabolas in ln N (hollow: vertex not kept)", fontsize=9)
    if data.budgets:
        ax.legend(frameon=False, fontsize=7, ncol=2)


def _draw_optima(data: IsoflopFigure, ax: Axes) -> None:
    kept = [b for b in data.budgets if b["kept"]]
    if kept:
        c = np.array([b["budget"] for b in kept])
        n = np.array([b["vertex_n"] for b in kept])
        se = np.array([b["se_log10_n"] or 0.0 for b in kept])
        ax.errorbar(c, n, yerr=[n - n / 10 ** (2 * se), n * 10 ** (2 * se) - n], fmt="o", color="k", ms=4,
                    capsize=2, label="parabola vertices (± 2 s.e.)", zorder=5)
    for m in data.lines:
        k = METHOD_STYLE.get(m["method"], 0)
        colour, marker = FORM_COLOURS[k], FORM_MARKERS[k]
        ax.plot(m["c"], m["n"], color=colour, linewidth=1.2, label=f"{m['method']}: a = {m['a']:.3f}")
        if m["lower"] is not None and m["upper"] is not None:
            ax.errorbar([data.budget], [m["n_opt"]], yerr=[[m["n_opt"] - m["lower"]], [m["upper"] - m["n_opt"]]],
                        fmt=marker, color=colour, capsize=3, ms=5, zorder=6)
    if data.checked:
        cb, nb = zip(*data.checked, strict=True)
        ax.scatter(cb, nb, marker="x", s=30, color=FORM_COLOURS[1], zorder=6, label="the law's N* at each budget")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(COUNT_FORMATTER)
    ax.set_xlabel(f"compute C = {data.cost}")
    ax.set_ylabel(f"optimal {data.axes[0]}")
    title = f"N*(C) by each method; {100 * data.level:g}% intervals at C = {data.budget:.2g}"
    ax.set_title(title + (f"\n{data.check}" if data.check else ""), fontsize=9 if not data.check else 7.5)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
