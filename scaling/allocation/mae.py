"""Compute-optimal allocation: the (parameters, data hours, resolution) that reach a target for the least
pretraining compute, within bounds, and the iso-target frontier.

Two cost models, both built from the MAE FLOPs model of ``scaling.compute.flops`` (C = FLOPs per image(N, R)
x passes x frames(D); every model here is linear in the data D because images seen = passes x frames):

- ``FlopsCost``: the FLOPs model itself, for optimisation through a bicubic spline of log FLOPs per image
  over (log N, log R) on the bounds box (its largest relative error on a check grid is reported); final
  answers are re-evaluated with the exact model.
- ``ProportionalCost``: C = k N D (R/p)^rho with k and rho fitted (least squares in log space, uniform in
  log N and log R over the bounds box) to the FLOPs model. The FLOPs model is not of this form: the MAE
  decoder's cost does not grow with N and attention grows faster than (R/p)^2, so the fit is worst at
  small N and large R; its largest relative error on the box is reported.

Closed forms (``optimal_closed_form``), under the proportional cost only, are the forms' own
(``Form.closed_form_allocation``; ``answer``, ``unreachable`` and ``log_box`` here are their building blocks):

- additive power law, err = E + sum_i A_i x_i^-a_i (and the chance law, whose target is the same sum
  s = sum_i A_i x_i^-a_i <= s_t): minimise sum_i c_i log x_i (c = 1, 1, rho) subject to
  sum_i A_i x_i^-a_i = Delta. The Lagrange conditions give a_i A_i x_i^-a_i / c_i = 1/lambda for every
  axis (Hoffmann et al. 2022's closed form, generalised to three axes), so each axis's term takes the
  share (c_i/a_i) / sum_j (c_j/a_j) of the reducible error Delta. Bounds are handled by clipping
  x_i(lambda) and solving the one monotone equation in lambda (water-filling); the problem is convex in
  log x, so these KKT conditions give the global optimum (``scaling.forms.powerlaw``).
- poly1 / logit1 (linear in log10 x on the y or logit scale): a linear program in log x; raising axes in
  order of benefit per unit of log cost (b_i / c_i) until the target is met is optimal (fractional
  knapsack; ``scaling.forms.linear``).

``optimal_numerical`` works for every form and both costs: SLSQP in log coordinates from several starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.interpolate import RectBivariateSpline

from scaling.allocation.box import Box, minimise
from scaling.compute.allocations import Allocation, Cost, answer, log_box, predict_log, unreachable
from scaling.compute.flops import FRAMES_PER_HOUR, ComputeAssumptions, compute_at, flops_per_image
from scaling.core import work
from scaling.core.checks import box as checked_box
from scaling.core.checks import count
from scaling.core.direction import direction
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict
from scaling.core.results import Result
from scaling.defaults import COMPUTE_AXES, PATCH_PX
from scaling.errors import ProjectionError, ScalingError
from scaling.forms import get_form
from scaling.forms.result import FitLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.optimal/v1"
DEFAULT_UPPER_FACTOR = {"n_params": 1e6, "data_hours": 1e6, "image_px": 8.0}
FEASIBLE_TOL = 1e-7  # accuracy points (fractions) by which a numerical optimum may miss the target


def default_bounds(fit: FitLike) -> dict[str, tuple[float, float]]:
    """From the smallest observed value of each axis to DEFAULT_UPPER_FACTOR x its largest."""
    return {a: (fit.axis_ranges[a][0], fit.axis_ranges[a][1] * DEFAULT_UPPER_FACTOR.get(a, 1e6)) for a in fit.axes}


def check_bounds(fit: FitLike, bounds: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """``merge_bounds`` for a fit over exactly the MAE compute axes (parameters, hours, px)."""
    if sorted(fit.axes) != sorted(COMPUTE_AXES):
        raise ProjectionError(
            f"compute-optimal allocation needs the axes {', '.join(COMPUTE_AXES)}; the fit has {', '.join(fit.axes)}"
        )
    b = merge_bounds(fit, bounds)
    if b["image_px"][0] < PATCH_PX:
        raise ProjectionError(f"bounds of 'image_px' start at {b['image_px'][0]:g} px, below one {PATCH_PX}-px patch")
    return b


def merge_bounds(fit: FitLike, bounds: Mapping[str, tuple[float, float]] | None) -> dict[str, tuple[float, float]]:
    """Bounds for every axis of ``fit``: ``default_bounds`` with the given ones over them, each checked."""
    out = default_bounds(fit)
    try:
        given = checked_box(bounds or {}, fit.axes, "bounds")
    except ScalingError as exc:
        raise ProjectionError(str(exc)) from None
    return out | given


# -- cost models ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlopsCost:
    """The MAE FLOPs model through a spline of ln(FLOPs per image) over (ln N, ln R)."""

    assumptions: ComputeAssumptions
    spline: Any = field(repr=False)
    max_rel_error: float
    name: str = "flops"

    def log_cost(self, logx: np.ndarray) -> np.ndarray:
        logx = np.atleast_2d(logx)
        per_image = self.spline.ev(logx[:, 0], logx[:, 2])
        return per_image + logx[:, 1] + math.log(self.assumptions.passes * FRAMES_PER_HOUR)

    def exact(self, point: Mapping[str, float]) -> float:
        return compute_at(point, self.assumptions).flops

    def describe(self) -> JSONDict:
        return {"name": self.name, "model": "MAE FLOPs model (scaling.compute), passes x frames x FLOPs/image",
                "passes": self.assumptions.passes, "mask_ratio": self.assumptions.mask_ratio,
                "optimiser_spline_max_rel_error": self.max_rel_error}


def _log_flops_per_image(logN: np.ndarray, logR: np.ndarray, a: ComputeAssumptions) -> np.ndarray:
    return np.array([[math.log(flops_per_image(math.exp(n), math.exp(r), mask_ratio=a.mask_ratio,
                                               patch_px=a.patch_px)[0]) for r in logR] for n in logN])


def flops_cost(assumptions: ComputeAssumptions, bounds: Mapping[str, tuple[float, float]]) -> FlopsCost:
    lo, hi = log_box(bounds)
    # Pad the box a little so the optimiser's finite differences at a bound stay inside the spline.
    pad = 0.05
    nN = max(8, math.ceil((hi[0] - lo[0]) / 0.35) + 4)
    nR = max(8, math.ceil((hi[2] - lo[2]) / 0.1) + 4)
    gN = np.linspace(lo[0] - pad, hi[0] + pad, nN)
    gR = np.linspace(lo[2] - pad, hi[2] + pad, nR)
    try:
        spline = RectBivariateSpline(gN, gR, _log_flops_per_image(gN, gR, assumptions), kx=3, ky=3, s=0)
        mN, mR = (gN[:-1] + gN[1:]) / 2, (gR[:-1] + gR[1:]) / 2
        check = _log_flops_per_image(mN[::2], mR[::3], assumptions)
    except ValueError as exc:  # the FLOPs model has no shape there (position embeddings > parameters)
        raise ProjectionError(f"the FLOPs model is undefined inside the bounds: {exc}") from None
    err = float(np.max(np.abs(np.expm1(spline(mN[::2], mR[::3]) - check))))
    return FlopsCost(assumptions, spline, err)


@dataclass(frozen=True)
class ProportionalCost:
    """C = k N D (R/p)^rho, fitted to the FLOPs model over the bounds box."""

    k: float
    rho: float
    patch_px: int
    max_rel_error: float
    passes: float
    name: str = "proportional"

    def log_cost(self, logx: np.ndarray) -> np.ndarray:
        logx = np.atleast_2d(logx)
        return math.log(self.k) + logx[:, 0] + logx[:, 1] + self.rho * (logx[:, 2] - math.log(self.patch_px))

    def exponents(self) -> dict[str, float]:
        """c_i of ln C = const + sum_i c_i ln x_i."""
        return {"n_params": 1.0, "data_hours": 1.0, "image_px": self.rho}

    def describe(self) -> JSONDict:
        return {"name": self.name, "model": "C = k N D (R/p)^rho, fitted to the FLOPs model on the bounds box",
                "k": self.k, "rho": self.rho, "patch_px": self.patch_px, "passes": self.passes,
                "max_rel_error_vs_flops_model": self.max_rel_error}


def proportional_cost(assumptions: ComputeAssumptions, bounds: Mapping[str, tuple[float, float]]) -> ProportionalCost:
    lo, hi = log_box(bounds)
    gN = np.linspace(lo[0], hi[0], 15)
    gR = np.linspace(lo[2], hi[2], 15) if hi[2] > lo[2] else np.array([lo[2]])
    try:
        lf = _log_flops_per_image(gN, gR, assumptions)  # (nN, nR)
    except ValueError as exc:
        raise ProjectionError(f"the FLOPs model is undefined inside the bounds: {exc}") from None
    p = assumptions.patch_px
    y = (lf - gN[:, None]).ravel()  # ln(FLOPs per image / N)
    xr = np.broadcast_to(gR[None, :] - math.log(p), lf.shape).ravel()
    if np.ptp(xr) > 0:
        rho, c0 = np.polyfit(xr, y, 1)
    else:  # a single resolution: the exponent is not identified; use the token count's 2
        rho, c0 = 2.0, float(np.mean(y - 2.0 * xr))
    resid = y - (c0 + rho * xr)
    k = math.exp(c0) * assumptions.passes * FRAMES_PER_HOUR
    return ProportionalCost(k, float(rho), p, float(np.max(np.abs(np.expm1(resid)))), assumptions.passes)


def _predict(fit: FitLike, logx: np.ndarray) -> np.ndarray:
    return predict_log(fit, COMPUTE_AXES, logx)


def optimal_closed_form(fit: Any, target: float, cost: ProportionalCost,
                        bounds: Mapping[str, tuple[float, float]]) -> Allocation:
    """The form's closed-form optimum under ``cost`` (``Form.closed_form_allocation``; see the module
    docstring); ProjectionError where the form has none."""
    alloc = get_form(fit.form).closed_form_allocation(fit, target, cost, bounds)
    if alloc is None:
        raise ProjectionError(f"form {fit.form!r} has no closed-form allocation; use the numerical optimum")
    return alloc


def optimal_numerical(fit: FitLike, target: float, cost: Cost, bounds: Mapping[str, tuple[float, float]], *,
                      starts: Sequence[Mapping[str, float]] = (), n_random: int = 4, seed: int = 0,
                      generic_if_needed: bool = False) -> Allocation:
    """Minimise ln C over ln x in the bounds box subject to the target (SLSQP, several starts).

    Starts: ``starts``, the box centre, the upper corner and ``n_random`` seeded random points. With
    ``generic_if_needed`` the generic starts run only when no given start ends feasible (bootstrap
    resamples, warm-started from the full-data optimum).
    """
    box = Box(COMPUTE_AXES, bounds)
    lo, hi = box.lo, box.hi
    d = direction(fit.kind)
    sign = d.sign()
    # The constraint in units of 1% of the scale: accuracy points, or 1% of the target loss.
    scale = 0.01 if d.higher_is_better else max(abs(target), 1e-12) * 0.01
    method = "numerical"

    def objective(z: np.ndarray) -> float:
        return float(cost.log_cost(box.logx(z))[0])

    def constraint(z: np.ndarray) -> float:
        return float(sign * (_predict(fit, box.logx(z))[0] - target) / scale)

    # The best prediction in the box is at the upper corner for forms that improve with every axis;
    # check it and the lower corner first so that unreachable and trivial cases are explicit.
    if d.meets_one(float(_predict(fit, lo)[0]), target):
        return answer(fit, target, lo, cost, bounds, method, {"note": "target met at the lower bounds"})
    given = [box.z_of(s) for s in starts]
    rng = np.random.default_rng(seed)
    generic = [np.full(box.n_free, 0.5), np.ones(box.n_free)]
    generic += [rng.uniform(0.0, 1.0, box.n_free) for _ in range(n_random)]
    rounds = [given, generic] if generic_if_needed and given else [given + generic]
    z, n_starts = minimise(objective, constraint, rounds, feasible_tol=FEASIBLE_TOL / scale)
    best = None if z is None else (objective(z), z)
    if best is None:
        if not d.meets_one(float(_predict(fit, hi)[0]), target):
            return unreachable(cost, method, "not reachable within the bounds (prediction at the upper bounds "
                                f"{float(_predict(fit, hi)[0]):.4g})")
        return unreachable(cost, method, "the optimiser found no feasible point (the surface may not be monotone)")
    return answer(fit, target, box.logx(best[1]), cost, bounds, method, {"starts": n_starts})


# -- the whole answer -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrontierRow:
    n_params: float
    allocation: Allocation
    relative_cost: float | None  # cost / optimal cost


@dataclass(frozen=True)
class OptimalResult(Result):
    target: float
    bounds: dict[str, tuple[float, float]]
    optimum: Allocation  # under the FLOPs model (numerical), with its exact FLOPs
    optimum_flops_exact: float | None
    proportional_numerical: Allocation
    proportional_closed: Allocation | None  # None where the form has no closed form
    frontier: list[FrontierRow]
    costs: dict[str, dict[str, Any]]
    notes: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        """The iso-target frontier: at each parameter count, the cheapest hours and px reaching the target,
        their FLOPs and the cost relative to the optimum (the optimum's own row has 1)."""
        rows = []
        for r in self.frontier:
            pt = r.allocation.point or {}
            rows.append({"n_params": r.n_params, "data_hours": pt.get("data_hours"), "image_px": pt.get("image_px"),
                         "flops": r.allocation.cost, "relative_cost": r.relative_cost,
                         "reachable": r.allocation.reachable})
        return pd.DataFrame(rows, columns=["n_params", "data_hours", "image_px", "flops", "relative_cost",
                                           "reachable"])

    def summary(self) -> Text:
        """The compute-optimal allocation, the proportional-cost cross-check, the frontier and the notes."""
        def one(label: str, a: Allocation | None) -> str:
            if a is None:
                return f"{label}: no closed form for this form"
            if not a.reachable or a.point is None:
                return f"{label}: not reachable ({a.reason})"
            pt = ", ".join(f"{k}={v:.4g}" for k, v in a.point.items())
            bound = f"; at bounds: {', '.join(a.at_bounds)}" if a.at_bounds else ""
            return f"{label}: {pt}; cost {a.cost:.4g}{bound}"

        parts = ["\n".join([f"Compute-optimal allocation reaching {self.target:g}",
                             one("FLOPs model (the answer)", self.optimum),
                             one("proportional cost, numerical", self.proportional_numerical),
                             one("proportional cost, closed form", self.proportional_closed)])]
        if self.frontier:
            parts.append("iso-target frontier:\n" + self.to_frame().to_string(float_format=lambda v: f"{v:.4g}"))
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        return Text("\n\n".join(parts))

    def __repr__(self) -> str:
        pt = "unreachable" if self.optimum.point is None else ", ".join(
            f"{k}={v:.3g}" for k, v in self.optimum.point.items())
        flops = "" if self.optimum_flops_exact is None else f", flops={self.optimum_flops_exact:.3g}"
        return f"OptimalResult(target={self.target:g}, optimum=({pt}){flops}, frontier_rows={len(self.frontier)})"

    def plot(self, ax: Axes | None = None, *, target_label: str = "") -> Axes:
        """The iso-target frontier with the optimum starred. Returns the Axes."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        ax = ax if ax is not None else new_axes()
        return plots.plot_frontier(plots.frontier_data(self, target_label=target_label or f"target {self.target:g}"),
                                   ax)

    def to_dict(self) -> JSONDict:
        return {
            "schema": SCHEMA,
            "target": self.target,
            "bounds": {a: list(b) for a, b in self.bounds.items()},
            "optimum": {**self.optimum.to_dict(), "flops_exact": self.optimum_flops_exact},
            "proportional": {
                "numerical": self.proportional_numerical.to_dict(),
                "closed_form": None if self.proportional_closed is None else self.proportional_closed.to_dict(),
            },
            "frontier": [{"n_params": r.n_params, "relative_cost": r.relative_cost, **r.allocation.to_dict()}
                         for r in self.frontier],
            "cost_models": self.costs,
            "notes": list(self.notes),
        }


def frontier(fit: FitLike, target: float, cost: Cost, bounds: Mapping[str, tuple[float, float]],
             optimum: Allocation, *, n_rows: int = 9, span_decades: float = 1.5) -> list[FrontierRow]:
    """The cheapest (data, resolution) reaching the target at fixed parameter counts around the optimum."""
    lo, hi = bounds["n_params"]
    centre = optimum.point["n_params"] if optimum.point else math.sqrt(lo * hi)
    # Centred on the optimum (the middle row is the optimum itself when no bound cuts the span).
    grid = np.unique(np.clip(centre * 10 ** np.linspace(-span_decades, span_decades, n_rows), lo, hi))
    rows = []
    for n in grid:
        pinned = dict(bounds) | {"n_params": (float(n), float(n))}
        start = [optimum.point | {"n_params": float(n)}] if optimum.point else []
        alloc = optimal_numerical(fit, target, cost, pinned, starts=start, n_random=2)
        rel = alloc.cost / optimum.cost if alloc.cost is not None and optimum.cost else None
        rows.append(FrontierRow(float(n), alloc, rel))
    return rows


def optimal_allocation(fit: FitLike, target: float, assumptions: ComputeAssumptions, *,
                       bounds: Mapping[str, tuple[float, float]] | None = None, frontier_rows: int = 9,
                       seed: int = 0) -> OptimalResult:
    """Compute-optimal allocation reaching ``target``: under the FLOPs model (the answer), and under the
    proportional cost numerically and in closed form where the form has one (they must agree)."""
    b = check_bounds(fit, bounds)
    rows_asked = count(frontier_rows, "frontier_rows", minimum=0)
    work.check(work.frontier(rows_asked))  # before any work: a frontier's rows show nothing until done
    fc = flops_cost(assumptions, b)
    pc = proportional_cost(assumptions, b)
    notes: list[str] = []
    closed = get_form(fit.form).closed_form_allocation(fit, target, pc, b)
    starts = [closed.point] if closed is not None and closed.point else []
    prop_num = optimal_numerical(fit, target, pc, b, starts=starts, seed=seed)
    starts += [prop_num.point] if prop_num.point else []
    opt = optimal_numerical(fit, target, fc, b, starts=starts, seed=seed)
    exact = fc.exact(opt.point) if opt.point else None
    if closed is None:
        notes.append(f"form {fit.form!r} has no closed-form allocation; all answers are numerical")
    for alloc in (opt,):
        if alloc.at_bounds:
            notes.append(f"the optimum sits at bound(s): {', '.join(alloc.at_bounds)}; widen --bounds to see past them")
    if fc.max_rel_error > 1e-3:
        notes.append(f"the optimiser's FLOPs spline is off by up to {fc.max_rel_error:.1e} (relative)")
    at_opt = ""
    if opt.point is not None and exact:
        off = math.exp(float(pc.log_cost(np.log([opt.point[a] for a in COMPUTE_AXES]))[0])) / exact - 1
        at_opt = f" and off by {100 * off:+.0f}% at the FLOPs optimum"
    notes.append(f"proportional cost C = k N D (R/{pc.patch_px})^{pc.rho:.3f} (fitted to the FLOPs model on the "
                 f"bounds box) is off by up to {100 * pc.max_rel_error:.0f}% there{at_opt}")
    rows = frontier(fit, target, fc, b, opt, n_rows=rows_asked) if opt.reachable and rows_asked else []
    return OptimalResult(target, b, opt, exact, prop_num, closed, rows,
                         {"flops": fc.describe(), "proportional": pc.describe()}, tuple(notes))
