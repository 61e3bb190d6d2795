"""Does a fitted law allocate compute as its own training sweeps do? The consistency check of a parametric
allocation (approach 3) against the IsoFLOP parabolas (approach 2) of the table it was fitted to.

Wherever the table has IsoFLOP structure (``scaling.allocation.isoflop.budget_groups``: at least two budgets
with an interior, convex parabola vertex), the law's best N at each such training budget (``best_at_budget``
under the same cost) is compared with that budget's vertex: d_i = log10(N*_law / N*_vertex), in decades.
The bias is their mean. The vertices' scatter is the standard error of that mean: the larger of the vertices'
own standard errors (delta method, sqrt(sum se_i^2) / k) and their residual scatter about their own power law
N*(C) (its residual standard deviation / sqrt(k), k >= 3 vertices). The check fires ("the law does not fit
these sweeps") when |bias| exceeds ``z`` scatters and ``min_decades``; where no IsoFLOP structure exists, it
says that it could not be made and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaling.allocation.budget import best_at_budget
from scaling.allocation.isoflop import Budgets, IsoflopFit, budget_groups, isoflop_fit
from scaling.compute.costs import CostModel
from scaling.core.jsonable import JSONDict
from scaling.defaults import ISOFLOP_BUDGET_TOL, ISOFLOP_CHECK_MIN_DECADES, ISOFLOP_CHECK_Z
from scaling.errors import ScalingError


@dataclass(frozen=True)
class BudgetCheck:
    """One training budget: its parabola's vertex and the law's N* there."""

    budget: float
    vertex_n: float
    law_n: float | None
    decades: float | None  # log10(law / vertex)
    se_decades: float | None  # the vertex's standard error in log10 N

    def to_dict(self) -> JSONDict:
        return {"budget": self.budget, "vertex_n": self.vertex_n, "law_n": self.law_n, "decades": self.decades,
                "se_decades": self.se_decades}


@dataclass(frozen=True)
class ConsistencyCheck:
    """The law's N* against the IsoFLOP vertices at the training budgets (see the module)."""

    made: bool
    reason: str  # why it could not be made ('' when made)
    fires: bool = False  # the law's N* is biased beyond the vertices' scatter
    bias_decades: float | None = None  # mean log10(law N* / vertex N*)
    scatter_decades: float | None = None  # standard error of the mean from the vertices
    threshold_decades: float | None = None  # max(z x scatter, min_decades)
    budgets: tuple[BudgetCheck, ...] = ()
    budgets_from: str = ""

    @property
    def verdict(self) -> str:
        """One sentence: what the check found."""
        if not self.made:
            return f"IsoFLOP consistency check could not be made: {self.reason}"
        assert self.bias_decades is not None and self.threshold_decades is not None
        k = len(self.budgets)
        per = [b.decades for b in self.budgets if b.decades is not None]
        span = f"{min(per):+.2f} to {max(per):+.2f}" if len(per) > 1 else f"{per[0]:+.2f}"
        if self.fires:
            side = "below" if self.bias_decades < 0 else "above"
            return (f"the law does not fit these sweeps: its N* at the {k} training budgets lies "
                    f"{abs(self.bias_decades):.2f} decades {side} the IsoFLOP parabola vertices on average "
                    f"({span} per budget), beyond their scatter (threshold {self.threshold_decades:.2f} decades)")
        return (f"the law's N* agrees with the IsoFLOP parabola vertices at the {k} training budgets: "
                f"{self.bias_decades:+.2f} decades on average ({span} per budget), within "
                f"{self.threshold_decades:.2f} decades")

    def to_dict(self) -> JSONDict:
        return {"made": self.made, "reason": self.reason, "fires": self.fires, "bias_decades": self.bias_decades,
                "scatter_decades": self.scatter_decades, "threshold_decades": self.threshold_decades,
                "budgets_from": self.budgets_from, "budgets": [b.to_dict() for b in self.budgets],
                "verdict": self.verdict}


def consistency_check(fit: Any, cost: CostModel | None, *, budget_column: str | None = None,
                      tol: float = ISOFLOP_BUDGET_TOL, bounds: Mapping[str, tuple[float, float]] | None = None,
                      z: float = ISOFLOP_CHECK_Z, min_decades: float = ISOFLOP_CHECK_MIN_DECADES,
                      data: pd.DataFrame | None = None) -> ConsistencyCheck:
    """The check of ``fit``'s allocation under ``cost`` against the IsoFLOP vertices of its own data (``data``:
    the rows it was fitted to, when the fit does not carry them)."""
    structure = _structure(fit, cost, budget_column, tol, fit.data if data is None else data)
    if isinstance(structure, str):
        return ConsistencyCheck(False, structure)
    iso, budgets = structure
    assert cost is not None
    rows = []
    for p in iso.vertices:
        assert p.vertex_n is not None
        law = best_at_budget(fit, p.budget, cost, bounds)
        law_n = None if law.point is None else law.point[iso.axes[0]]
        dec = None if law_n is None else math.log10(law_n / p.vertex_n)
        rows.append(BudgetCheck(p.budget, p.vertex_n, law_n, dec, p.se_log10_n))
    d = np.array([r.decades for r in rows if r.decades is not None], dtype=float)
    if d.size < 2:
        return ConsistencyCheck(False, "the law has no allocation within its bounds at the training budgets",
                                budgets=tuple(rows), budgets_from=budgets.source)
    bias = float(d.mean())
    scatter = _scatter(iso, rows)
    threshold = max(z * scatter, min_decades)
    return ConsistencyCheck(True, "", abs(bias) > threshold, bias, scatter, threshold, tuple(rows), budgets.source)


def _structure(fit: Any, cost: CostModel | None, column: str | None, tol: float,
               data: pd.DataFrame | None) -> tuple[IsoflopFit, Budgets] | str:
    """The IsoFLOP fit of ``fit``'s own data, or why there is none (a sentence)."""
    if len(fit.axes) != 2:
        return f"it compares N* over two axes (N, D) at fixed cost; the fit has {len(fit.axes)}"
    if cost is None:
        return "it needs the cost model that defines a budget (--cost)"
    if data is None:
        return "the fit carries no data"
    try:
        budgets = budget_groups(data, fit.axes, cost=None if column else cost, column=column, tol=tol)
    except ScalingError as exc:
        return str(exc)
    iso = isoflop_fit(data, fit.axes, fit.y, fit.kind, budgets)
    kept = len(iso.vertices)
    if kept < 2:
        return (f"no IsoFLOP structure in the data: {kept} of {budgets.n} budget(s) ({budgets.source}) have "
                f"{'an' if kept == 1 else 'no'} interior, convex parabola vertex; it needs two")
    return iso, budgets


def _scatter(iso: IsoflopFit, rows: list[BudgetCheck]) -> float:
    k = len(rows)
    se = [r.se_decades for r in rows if r.se_decades is not None]
    own = math.sqrt(sum(s * s for s in se)) / len(se) if se else 0.0
    resid = 0.0
    if k >= 3 and iso.n_opt is not None:
        c = np.array([r.budget for r in rows])
        r = np.log10([r.vertex_n for r in rows]) - np.log10(iso.n_opt.at(c))
        resid = float(math.sqrt(float(r @ r) / (k - 2)) / math.sqrt(k))
    return max(own, resid)
