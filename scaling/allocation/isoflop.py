"""Chinchilla's approach 2 (Hoffmann et al. 2022, arXiv 2203.15556, §3.2): at each IsoFLOP budget, a parabola
of the loss against ln N; its vertex is that budget's loss-optimal model size; power laws N*(C) = k C^a and
D*(C) = k' C^b through the vertices.

- **Budgets** (``budget_groups``): a column that holds each point's budget, or the points' costs under a cost
  model, grouped when they lie within a stated tolerance of each other (sorted costs split where the next is
  more than ``tol`` above; a group whose costs spread over more than (1 + tol)^2 is not one budget).
- **Parabolas** (``fit_parabola``): least squares of the error-like quantity (the loss; 1 - accuracy) on
  (1, u, u^2), u = ln N centred. A vertex is kept when the parabola is convex (it has a minimum) and the
  minimum lies strictly inside the sizes trained at that budget; its standard error in log10 N is the delta
  method's on -c1 / (2 c2). D at the vertex comes from the budget's own points: ln D regressed on ln N within
  the budget (under C = 6 N D this is exactly C / (6 N*)).
- **Power laws** (``PowerLaw.through``): ordinary least squares of ln N* (ln D*) on ln C over kept vertices.
- **Resampling** (``resample``): points drawn with replacement within each budget, everything refitted; a
  resample with fewer than two kept vertices fails and is counted with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling.compute.costs import CostModel
from scaling.core.direction import direction
from scaling.core.jsonable import JSONDict
from scaling.defaults import ISOFLOP_BUDGET_TOL, ISOFLOP_MIN_SIZES
from scaling.errors import ScalingError

LN10 = math.log(10.0)


@dataclass(frozen=True)
class Budgets:
    """Which budget each row belongs to (-1: none), the budgets and how they were found."""

    labels: np.ndarray
    values: tuple[float, ...]
    source: str  # "column 'budget'" or "cost 6*params*tokens within 10%"
    notes: tuple[str, ...] = ()  # groups of points that are not one budget

    @property
    def n(self) -> int:
        return len(self.values)


def budget_groups(frame: pd.DataFrame, axes: Sequence[str], *, cost: CostModel | None = None,
                  column: str | None = None, tol: float = ISOFLOP_BUDGET_TOL) -> Budgets:
    """The IsoFLOP budgets of ``frame``: from ``column`` when given, else from ``cost`` within ``tol``."""
    if column is not None:
        if column not in frame.columns:
            raise ScalingError(f"budget column {column!r} is not in the table (columns: "
                               f"{', '.join(map(str, frame.columns))})")
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        if not np.all(np.isfinite(values) & (values > 0)):
            bad = int(np.sum(~(np.isfinite(values) & (values > 0))))
            raise ScalingError(f"budget column {column!r} has {bad} value(s) that are not positive numbers")
        codes, uniques = pd.factorize(values, sort=True)
        return Budgets(np.asarray(codes), tuple(float(u) for u in uniques), f"column {column!r}")
    if cost is None:
        raise ScalingError("IsoFLOP budgets come from a budget column (--budget-column) or a cost model (--cost)")
    if not 0 < tol < 1:
        raise ScalingError(f"the budget tolerance is a fraction in (0, 1); got {tol:g}")
    c = np.asarray(cost.cost({a: pd.to_numeric(frame[a], errors="coerce").to_numpy(dtype=float)
                              for a in cost.axes}), dtype=float)
    return _group_costs(np.broadcast_to(c, (len(frame),)), tol, cost.formula)


def _group_costs(c: np.ndarray, tol: float, formula: str) -> Budgets:
    labels = np.full(len(c), -1)
    ok = np.flatnonzero(np.isfinite(c) & (c > 0))
    order = ok[np.argsort(np.log(c[ok]))]
    gap = math.log1p(tol)
    runs: list[list[int]] = []
    for i in order:
        if runs and math.log(c[i]) - math.log(c[runs[-1][-1]]) <= gap:
            runs[-1].append(int(i))
        else:
            runs.append([int(i)])
    values: list[float] = []
    notes: list[str] = []
    for members in runs:
        lc = np.log(c[members])
        if lc.max() - lc.min() > 2 * gap:
            notes.append(f"{len(members)} points with costs from {math.exp(lc.min()):.3g} to {math.exp(lc.max()):.3g} "
                         f"chain within {100 * tol:g}% steps but span more: not one budget")
            continue
        labels[members] = len(values)
        values.append(float(math.exp(lc.mean())))
    return Budgets(labels, tuple(values), f"cost {formula} within {100 * tol:g}%", tuple(notes))


@dataclass(frozen=True)
class PowerLaw:
    """v(C) = coefficient x C^exponent, fitted by least squares in logs."""

    coefficient: float
    exponent: float

    def at(self, c: float | np.ndarray) -> np.ndarray:
        return np.asarray(self.coefficient * np.asarray(c, dtype=float) ** self.exponent)

    @classmethod
    def through(cls, c: np.ndarray, v: np.ndarray) -> PowerLaw | None:
        """The least-squares line of ln v on ln c; None with fewer than two distinct c."""
        x, yv = np.log(np.asarray(c, dtype=float)), np.log(np.asarray(v, dtype=float))
        if len(np.unique(np.round(x, 12))) < 2:
            return None
        slope, intercept = np.polyfit(x, yv, 1)
        return cls(float(math.exp(intercept)), float(slope))

    def to_dict(self) -> JSONDict:
        return {"coefficient": self.coefficient, "exponent": self.exponent}


@dataclass(frozen=True)
class Parabola:
    """One budget's parabola e = c0 + c1 (u - u0) + c2 (u - u0)^2 of the error-like quantity, u = ln N."""

    budget: float
    n_points: int
    n_sizes: int
    coef: tuple[float, float, float] | None
    u0: float
    n_range: tuple[float, float]
    vertex_n: float | None  # at the minimum, whether kept or not (None: no parabola, or not convex)
    vertex_d: float | None
    vertex_error: float | None
    se_log10_n: float | None  # standard error of log10 N* (None: no residual degrees of freedom)
    kept: bool
    reason: str  # why the vertex is not kept ('' when it is)
    n: np.ndarray = field(default_factory=lambda: np.array([]), repr=False, compare=False)  # the points fitted
    err: np.ndarray = field(default_factory=lambda: np.array([]), repr=False, compare=False)

    def error_at(self, n: np.ndarray) -> np.ndarray:
        """The parabola's error-like value at sizes ``n`` (NaN without a parabola)."""
        if self.coef is None:
            return np.full(np.shape(n), np.nan)
        x = np.log(np.asarray(n, dtype=float)) - self.u0
        return np.asarray(self.coef[0] + self.coef[1] * x + self.coef[2] * x * x)

    def to_dict(self) -> JSONDict:
        return {"budget": self.budget, "n_points": self.n_points, "n_sizes": self.n_sizes,
                "coefficients": None if self.coef is None else list(self.coef), "ln_n_centre": self.u0,
                "n_range": list(self.n_range), "vertex_n": self.vertex_n, "vertex_d": self.vertex_d,
                "vertex_error": self.vertex_error, "se_log10_n": self.se_log10_n, "kept": self.kept,
                "reason": self.reason}


def fit_parabola(budget: float, n: np.ndarray, d: np.ndarray, err: np.ndarray,
                 min_sizes: int = ISOFLOP_MIN_SIZES) -> Parabola:
    """The parabola of ``err`` against ln ``n`` at one budget, its vertex and whether it is kept."""
    u, lnd = np.log(n), np.log(d)
    sizes = len(np.unique(np.round(u, 9)))
    rng = (float(n.min()), float(n.max()))
    u0 = float(u.mean())
    if sizes < min_sizes:
        return Parabola(budget, len(n), sizes, None, u0, rng, None, None, None, None, False,
                        f"{sizes} model size(s); a parabola needs {min_sizes}", n, err)
    x = u - u0
    design = np.column_stack([np.ones_like(x), x, x * x])
    coef, *_ = np.linalg.lstsq(design, err, rcond=None)
    c0, c1, c2 = (float(v) for v in coef)
    if not c2 > 0:
        return Parabola(budget, len(n), sizes, (c0, c1, c2), u0, rng, None, None, None, None, False,
                        "the parabola opens downward (no minimum)", n, err)
    xv = -c1 / (2 * c2)
    q, p = np.polyfit(u, lnd, 1)
    vn, vd = math.exp(u0 + xv), math.exp(float(p) + float(q) * (u0 + xv))
    se = _vertex_se(design, err - design @ coef, c1, c2)
    interior = bool(x.min() < xv < x.max())
    side = "smallest" if xv <= x.min() else "largest"
    return Parabola(budget, len(n), sizes, (c0, c1, c2), u0, rng, vn, vd, c0 - c1 * c1 / (4 * c2), se, interior,
                    "" if interior else f"the minimum lies beyond the {side} size trained at this budget", n, err)


def _vertex_se(design: np.ndarray, resid: np.ndarray, c1: float, c2: float) -> float | None:
    dof = design.shape[0] - design.shape[1]
    if dof <= 0:
        return None
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.pinv(design.T @ design)
    grad = np.array([0.0, -1.0 / (2 * c2), c1 / (2 * c2 * c2)])
    return float(math.sqrt(max(float(grad @ cov @ grad), 0.0)) / LN10)


@dataclass(frozen=True)
class IsoflopFit:
    """Approach 2 on one table: every budget's parabola, and N*(C), D*(C) through the kept vertices."""

    axes: tuple[str, str]  # (N, D)
    y: str
    kind: str
    budgets_from: str
    parabolas: tuple[Parabola, ...]
    n_opt: PowerLaw | None
    d_opt: PowerLaw | None
    notes: tuple[str, ...] = ()

    @property
    def vertices(self) -> tuple[Parabola, ...]:
        return tuple(p for p in self.parabolas if p.kept)

    @property
    def reason(self) -> str:
        """Why there is no N*(C) ('' when there is)."""
        if self.n_opt is not None:
            return ""
        kept = len(self.vertices)
        return (f"{kept} budget(s) with an interior, convex vertex among {len(self.parabolas)}; the power law "
                "N*(C) needs two")

    def to_dict(self) -> JSONDict:
        return {"axes": list(self.axes), "y": self.y, "kind": self.kind, "budgets_from": self.budgets_from,
                "parabolas": [p.to_dict() for p in self.parabolas],
                "n_opt": None if self.n_opt is None else self.n_opt.to_dict(),
                "d_opt": None if self.d_opt is None else self.d_opt.to_dict(), "notes": list(self.notes),
                "reason": self.reason}


def columns(frame: pd.DataFrame, axes: Sequence[str], y: str, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, error-like) as float arrays; rows with a missing or non-positive N or D are NaN."""
    n = np.array(pd.to_numeric(frame[axes[0]], errors="coerce"), dtype=float)
    d = pd.to_numeric(frame[axes[1]], errors="coerce").to_numpy(dtype=float)
    err = direction(kind).error(pd.to_numeric(frame[y], errors="coerce").to_numpy(dtype=float))
    bad = ~(np.isfinite(n) & np.isfinite(d) & np.isfinite(err) & (n > 0) & (d > 0))
    n[bad] = np.nan
    return n, d, err


def isoflop_fit(frame: pd.DataFrame, axes: Sequence[str], y: str, kind: str, budgets: Budgets,
                rows: np.ndarray | None = None) -> IsoflopFit:
    """Approach 2 on ``frame`` (or its ``rows``, a resample) with its ``budgets``."""
    n, d, err = columns(frame, axes, y, kind)
    idx = np.arange(len(frame)) if rows is None else np.asarray(rows)
    parabolas = []
    for g, c in enumerate(budgets.values):
        sel = idx[(budgets.labels[idx] == g) & np.isfinite(n[idx])]
        parabolas.append(fit_parabola(c, n[sel], d[sel], err[sel]))
    kept = [p for p in parabolas if p.kept]
    cs = np.array([p.budget for p in kept])
    n_opt = PowerLaw.through(cs, np.array([p.vertex_n for p in kept])) if kept else None
    d_opt = PowerLaw.through(cs, np.array([p.vertex_d for p in kept])) if kept else None
    return IsoflopFit((axes[0], axes[1]), y, kind, budgets.source, tuple(parabolas), n_opt, d_opt, budgets.notes)


def resample(frame: pd.DataFrame, axes: Sequence[str], y: str, kind: str, budgets: Budgets, n_boot: int,
             seed: int) -> list[IsoflopFit]:
    """``n_boot`` refits on points drawn with replacement within each budget (seeded)."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(budgets.labels == g) for g in range(budgets.n)]
    out = []
    for _ in range(n_boot):
        rows = np.concatenate([m[rng.integers(0, len(m), len(m))] for m in members if len(m)] or [np.array([], int)])
        out.append(isoflop_fit(frame, axes, y, kind, budgets, rows))
    return out
