"""The answer of ``scaling.compute_optimal``: the loss-optimal N*(C) and D*(C) at one budget by each method
(Chinchilla's approaches 1-3), the exponents a (N* ~ C^a) and b (D* ~ C^b), their bootstrap intervals, and
the parametric law's consistency check against the IsoFLOP vertices; as text, a table, JSON and a figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.allocation.consistency import ConsistencyCheck
from scaling.core.jsonable import JSONDict, jsonable
from scaling.errors import ScalingError
from scaling.uncertainty.bootstrap import Summary

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.compute_optimal/v1"
QUANTITIES = ("n_opt", "d_opt", "a", "b")
DESCRIBE = {
    "parametric": "approach 3: the law fitted to every point, its best allocation at the budget",
    "isoflop": "approach 2: a parabola in ln N per IsoFLOP budget, power laws through the vertices",
    "envelope": "approach 1: the lowest loss at each compute over training curves, power laws through it",
}


@dataclass(frozen=True)
class MethodAnswer:
    """One method's N*, D* at the budget, its exponents and their intervals (or why it has none)."""

    method: str  # 'parametric' | 'isoflop' | 'envelope'
    available: bool
    reason: str = ""  # why the method gave no answer
    estimates: dict[str, float | None] = field(default_factory=dict)  # n_opt, d_opt, a, b on the full data
    intervals: dict[str, Summary] = field(default_factory=dict)  # the same, bootstrapped
    resampling: str = ""  # what the bootstrap resampled
    n_boot: int = 0
    n_ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    consistency: ConsistencyCheck | None = None  # the parametric law's check against the IsoFLOP vertices
    notes: tuple[str, ...] = ()
    fit: Any = field(default=None, repr=False, compare=False)  # IsoflopFit | EnvelopeFit | FitResult

    @property
    def n_opt(self) -> float | None:
        return self.estimates.get("n_opt")

    @property
    def d_opt(self) -> float | None:
        return self.estimates.get("d_opt")

    def interval(self, quantity: str, level: float) -> tuple[float, float]:
        """(lower, upper) of ``quantity`` ('n_opt', 'd_opt', 'a', 'b') at ``level``."""
        if quantity not in self.intervals:
            raise ScalingError(f"{self.method}: no interval of {quantity!r} (bootstrap it: n_boot > 0)")
        return self.intervals[quantity].intervals[level]

    def to_dict(self) -> JSONDict:
        return {"method": self.method, "description": DESCRIBE[self.method], "available": self.available,
                "reason": self.reason, "estimates": dict(self.estimates),
                "intervals": {k: v.to_dict() for k, v in self.intervals.items()}, "resampling": self.resampling,
                "n_resamples": self.n_boot, "n_ok": self.n_ok, "failures": dict(self.failures),
                "consistency": None if self.consistency is None else self.consistency.to_dict(),
                "notes": list(self.notes), "fit": _fit_dict(self.fit)}


def _fit_dict(fit: Any) -> Any:
    if fit is None:
        return None
    return fit.describe() if hasattr(fit, "describe") else fit.to_dict()


@dataclass(frozen=True)
class ComputeOptimalResult:
    """Every method's compute-optimal allocation at ``budget`` (``scaling.compute_optimal``)."""

    budget: float
    axes: tuple[str, str]  # (N, D)
    y: str
    kind: str
    cost_model: dict[str, Any] | None
    levels: tuple[float, ...]
    answers: tuple[MethodAnswer, ...]
    source: dict[str, Any] = field(default_factory=dict)
    budgets_from: str = ""  # how the IsoFLOP budgets were found

    def answer(self, method: str) -> MethodAnswer:
        for a in self.answers:
            if a.method == method:
                return a
        raise KeyError(f"{method!r}; methods: {', '.join(a.method for a in self.answers)}")

    @property
    def consistency(self) -> ConsistencyCheck | None:
        """The parametric law's check against the IsoFLOP vertices (None without the parametric method)."""
        return next((a.consistency for a in self.answers if a.consistency is not None), None)

    def to_frame(self) -> pd.DataFrame:
        """One row per method: N*, D*, a and b with the widest interval of each, resamples fitted, reason."""
        level = max(self.levels)
        rows = []
        for a in self.answers:
            row: dict[str, Any] = {"method": a.method}
            for q in QUANTITIES:
                est = a.estimates.get(q)
                row[q] = math.nan if est is None else est
                lo, hi = a.intervals[q].intervals[level] if q in a.intervals else (math.nan, math.nan)
                row[f"{q}_lower_{100 * level:g}"], row[f"{q}_upper_{100 * level:g}"] = lo, hi
            row["resamples_fitted"] = f"{a.n_ok}/{a.n_boot}" if a.n_boot else "-"
            row["reason"] = a.reason
            rows.append(row)
        return pd.DataFrame(rows).set_index("method")

    def title(self) -> str:
        return f"Compute-optimal {self.axes[0]} and {self.axes[1]} at a cost of {self.budget:.3g}"

    def summary(self) -> str:
        level = max(self.levels)
        lines = [self.title() + (f" (cost {self.cost_model['formula']})" if self.cost_model else "")]
        for a in self.answers:
            if not a.available:
                lines.append(f"  {a.method}: no answer ({a.reason})")
                continue
            parts = [f"{self.axes[0]}* {_num(a.estimates.get('n_opt'))}{_iv(a, 'n_opt', level)}",
                     f"{self.axes[1]}* {_num(a.estimates.get('d_opt'))}{_iv(a, 'd_opt', level)}",
                     f"a {_num(a.estimates.get('a'))}{_iv(a, 'a', level)}",
                     f"b {_num(a.estimates.get('b'))}{_iv(a, 'b', level)}"]
            lines.append(f"  {a.method}: " + "; ".join(parts))
        lines.append(f"intervals: {100 * level:g}% bootstrap percentile intervals")
        for a in self.answers:
            if a.consistency is not None:
                lines.append(f"{a.method}: {a.consistency.verdict}")
            lines.extend(f"{a.method}: note: {n}" for n in a.notes)
        return "\n".join(lines)

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling project --method ... --json`` prints."""
        return jsonable({"schema": SCHEMA, "budget": self.budget, "axes": list(self.axes), "y": self.y,
                         "kind": self.kind, "cost_model": self.cost_model, "levels": list(self.levels),
                         "data": dict(self.source), "budgets_from": self.budgets_from,
                         "methods": [a.to_dict() for a in self.answers],
                         "consistency": None if self.consistency is None else self.consistency.to_dict()})

    def __repr__(self) -> str:
        got = ", ".join(f"{a.method}={_num(a.estimates.get('n_opt'))}" if a.available else f"{a.method}=none"
                        for a in self.answers)
        return f"ComputeOptimalResult(budget={self.budget:.3g}, {self.axes[0]}*: {got})"

    def plot(self, ax: Axes | None = None) -> np.ndarray:
        """The IsoFLOP figure (``scaling.plots.isoflop_figure``) in the place of ``ax`` (a new figure when None):
        each budget's parabola and vertex, and N*(C) by every method with its interval at the budget. Returns
        its two Axes."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        return plots.plot_isoflop(plots.isoflop_data(self), ax)


def _num(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{v:.4g}"


def _iv(a: MethodAnswer, q: str, level: float) -> str:
    if q not in a.intervals:
        return ""
    lo, hi = a.intervals[q].intervals[level]
    return f" [{_num(lo)}, {_num(hi)}]"
