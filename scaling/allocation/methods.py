"""``scaling.compute_optimal``: the compute-optimal allocation at a budget by every method the field uses,
Chinchilla's three approaches (Hoffmann et al. 2022, arXiv 2203.15556, §3), side by side.

    res = scaling.compute_optimal(sweep, 1e21, y="loss", axes=["params", "tokens"], cost="6nd", method="all")
    res.answer("isoflop").n_opt, res.answer("isoflop").interval("n_opt", 0.95), res.consistency.verdict

- ``parametric`` (approach 3): the form (default Chinchilla's law, ``powerlaw``) fitted to every point; its
  best allocation at the budget (``best_at_budget``); a and b are the slopes of ln N* and ln D* against ln C
  over the decade below the budget. Intervals: the fit's bootstrap (whole runs where the table has
  ``run_id``, else single rows), each resample's allocation found again. It carries the consistency check
  (``scaling.allocation.consistency``) against the table's IsoFLOP vertices.
- ``isoflop`` (approach 2, ``scaling.allocation.isoflop``): intervals from points resampled within budgets.
- ``envelope`` (approach 1, ``scaling.allocation.envelope``): intervals from runs resampled.

A method that cannot apply to the table (no IsoFLOP structure, no training curves, a form that does not fit)
answers with its reason instead of a number; asked alone, that reason is the error.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from scaling.allocation import envelope, isoflop
from scaling.allocation.budget import best_at_budget
from scaling.allocation.consistency import consistency_check
from scaling.allocation.methods_result import ComputeOptimalResult, MethodAnswer
from scaling.compute.costs import CostModel, cost_model
from scaling.data.dataset import Dataset
from scaling.data.tables import select
from scaling.defaults import ALLOCATION_FORM, ALLOCATION_METHODS, ALLOCATION_N_BOOT, ISOFLOP_BUDGET_TOL
from scaling.errors import FitError, ProjectionError, ScalingError
from scaling.fitting import fit_dataset
from scaling.forms.options import form_options
from scaling.forms.result import FitResult
from scaling.uncertainty.bootstrap import Derived, check_levels, summarise
from scaling.uncertainty.resampling import AUTO, Bootstrap, bootstrap_fit

Progress = Callable[[str, int, int], None]
METHODS = (*ALLOCATION_METHODS, "all")


def compute_optimal(
    data: pd.DataFrame | FitResult,
    budget: float,
    *,
    method: str = "all",
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "loss",
    cost: str | None = None,
    form: str = ALLOCATION_FORM,
    budget_column: str | None = None,
    budget_tol: float = ISOFLOP_BUDGET_TOL,
    run_column: str | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    n_boot: int = ALLOCATION_N_BOOT,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    workers: int = 1,
    progress: Progress | None = None,
    **fit_options: Any,
) -> ComputeOptimalResult:
    """N*(C) and D*(C) at ``budget`` by ``method`` ('parametric', 'isoflop', 'envelope' or 'all').

    ``data``: a table with ``y`` and two ``axes`` (N, D), or a ``scaling.fit`` result (its table, and its
    form for the parametric method). ``cost``: '6nd' or an expression of the axes (needed by the parametric
    and envelope methods, unless ``budget_column`` holds each point's compute: its IsoFLOP budget, or a
    curve step's cost for the envelope; ``budget_tol``: how close costs must be to share a budget).
    ``run_column``: the envelope's runs (default ``run_id`` where present, else one run per N). ``n_boot``
    resamples (0: no intervals), ``levels``, ``seed``; ``group`` and ``workers`` go to the parametric
    bootstrap; ``fit_options`` to the form.
    """
    if method not in METHODS:
        raise ScalingError(f"unknown method {method!r}; use {', '.join(METHODS)}")
    if not (budget > 0 and math.isfinite(budget)):
        raise ProjectionError(f"the budget must be a positive number; got {budget}")
    if n_boot < 0:
        raise ScalingError(f"the bootstrap needs a non-negative number of resamples; got {n_boot}")
    lv = check_levels(levels)
    fitted = data if isinstance(data, FitResult) else None
    sel = _dataset(data, y, axes, kind)
    model = cost_model(cost, sel.axes) if cost is not None else None
    spec = _Spec(sel, model, budget, budget_column, budget_tol, run_column, n_boot, seed, lv)
    asked = ALLOCATION_METHODS if method == "all" else (method,)
    answers = []
    for m in asked:
        if m == "parametric":
            answers.append(_parametric(spec, fitted, form, bounds, group, workers, progress, fit_options))
        elif m == "isoflop":
            answers.append(_isoflop(spec))
        else:
            answers.append(_envelope(spec))
    if method != "all" and not answers[0].available:
        raise ScalingError(f"{method}: {answers[0].reason}")
    return ComputeOptimalResult(budget, (sel.axes[0], sel.axes[1]), sel.y, sel.kind,
                                _priced(model, budget_column), lv, tuple(answers), dict(sel.source),
                                _budgets_from(answers))


def _priced(model: CostModel | None, column: str | None) -> dict[str, Any] | None:
    """The result's cost model: the formula's description, or the column that priced each point."""
    if model is not None:
        return model.describe()
    return None if column is None else {"formula": f"column {column!r}", "column": column}


class _Spec:
    """What every method shares: the rows, the cost, the budget, how budgets and runs are found, the bootstrap."""

    def __init__(self, sel: Dataset, cost: CostModel | None, budget: float, column: str | None, tol: float,
                 run_column: str | None, n_boot: int, seed: int, levels: tuple[float, ...]) -> None:
        self.sel, self.cost, self.budget, self.column, self.tol = sel, cost, budget, column, tol
        self.run_column, self.n_boot, self.seed, self.levels = run_column, n_boot, seed, levels


def _dataset(data: pd.DataFrame | FitResult, y: str | None, axes: Sequence[str] | None, kind: str) -> Dataset:
    if isinstance(data, FitResult):
        if data.dataset is None:
            raise ScalingError("this fit carries no data (fit it with scaling.fit)")
        sel = data.dataset
    else:
        if y is None:
            raise ScalingError("y= names the response column (the loss) of the table")
        sel = select(data, y=y, axes=axes, kind=kind)
    if len(sel.axes) != 2:
        raise ScalingError(f"the compute-optimal methods allocate a budget between two axes (N, D); got "
                           f"{len(sel.axes)}: {', '.join(sel.axes)}")
    return sel


def _summaries(spec: _Spec, estimates: Mapping[str, float | None],
               samples: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return {q: summarise(q, v, spec.levels, estimates.get(q)) for q, v in samples.items() if v.size}


def _from_fits(spec: _Spec, method: str, full: Any, reps: list[Any], resampling: str) -> MethodAnswer:
    """An approach-1 or -2 answer: N*(C) and D*(C) of ``full`` at the budget, intervals over ``reps``."""
    if full.n_opt is None or full.d_opt is None:
        return MethodAnswer(method, False, full.reason, fit=full)
    est = _power_estimates(full, spec.budget)
    ok = [r for r in reps if r.n_opt is not None and r.d_opt is not None]
    samples = {q: np.array([_power_estimates(r, spec.budget)[q] for r in ok], dtype=float) for q in est}
    failures = Counter(r.reason for r in reps if r.n_opt is None or r.d_opt is None)
    return MethodAnswer(method, True, "", est, _summaries(spec, est, samples), resampling, len(reps), len(ok),
                        dict(failures), fit=full)


def _power_estimates(f: Any, budget: float) -> dict[str, float | None]:
    return {"n_opt": float(f.n_opt.at(budget)), "d_opt": float(f.d_opt.at(budget)), "a": f.n_opt.exponent,
            "b": f.d_opt.exponent}


def _isoflop(spec: _Spec) -> MethodAnswer:
    sel = spec.sel
    try:
        budgets = isoflop.budget_groups(sel.frame, sel.axes, cost=None if spec.column else spec.cost,
                                        column=spec.column, tol=spec.tol)
    except ScalingError as exc:
        return MethodAnswer("isoflop", False, str(exc))
    full = isoflop.isoflop_fit(sel.frame, sel.axes, sel.y, sel.kind, budgets)
    reps = isoflop.resample(sel.frame, sel.axes, sel.y, sel.kind, budgets, spec.n_boot, spec.seed)
    out = _from_fits(spec, "isoflop", full, reps, "points within budgets")
    dropped = [f"{p.budget:.3g}: {p.reason}" for p in full.parabolas if not p.kept]
    more = f"; ... ({len(dropped) - 4} more)" if len(dropped) > 4 else ""
    notes = (*full.notes, *([f"{len(dropped)} of {len(full.parabolas)} budgets without a vertex: "
                             + "; ".join(dropped[:4]) + more] if dropped else []))
    return replace(out, notes=notes)


def _envelope(spec: _Spec) -> MethodAnswer:
    sel = spec.sel
    price: CostModel | str | None = spec.column if spec.column is not None else spec.cost
    if price is None:
        return MethodAnswer("envelope", False, "it prices every step of a curve: give a cost model (--cost) or a "
                                               "column of each step's compute (--budget-column)")
    try:
        runs, how = envelope.curves(sel.frame, sel.axes, sel.y, sel.kind, price, spec.run_column)
    except ScalingError as exc:
        return MethodAnswer("envelope", False, str(exc))
    full = envelope.envelope_fit(runs, sel.axes, how)
    reps = envelope.resample(runs, sel.axes, how, spec.n_boot, spec.seed)
    out = _from_fits(spec, "envelope", full, reps, "runs")
    notes = [f"{len(runs)} training curves ({how})"]
    if "epochs" in sel.frame.columns:  # a step table of the run database (scaling.data.curves)
        notes.append(f"the curves pass over their data up to {sel.frame['epochs'].max():.3g} times: a loss on "
                     "repeated data, where Chinchilla's envelope has each run see fresh data")
    return replace(out, notes=tuple(notes))


def _parametric(spec: _Spec, fitted: FitResult | None, form: str, bounds: Mapping[str, tuple[float, float]] | None,
                group: str | Sequence[str] | None, workers: int, progress: Progress | None,
                fit_options: Mapping[str, Any]) -> MethodAnswer:
    sel, cost = spec.sel, spec.cost
    if cost is None:
        return MethodAnswer("parametric", False, "the law's allocation needs a cost model (--cost 6nd, or an "
                                                 "expression of the axes)")
    try:
        fit = fitted if fitted is not None else fit_dataset(
            sel, form, **(form_options(form, metric=sel.metric, kind=sel.kind) | dict(fit_options)))
    except FitError as exc:
        return MethodAnswer("parametric", False, f"{form} cannot be fitted: {exc}")
    hi = best_at_budget(fit, spec.budget, cost, bounds).point
    lo = best_at_budget(fit, spec.budget / 10, cost, bounds).point
    if hi is None or lo is None:
        return MethodAnswer("parametric", False, "the law has no allocation within the bounds at this budget",
                            fit=fit)
    est: dict[str, float | None] = dict(_law_values(hi, lo, sel.axes))
    check = consistency_check(fit, cost, budget_column=spec.column, tol=spec.tol, bounds=bounds)
    if not spec.n_boot:
        return MethodAnswer("parametric", True, "", est, consistency=check, fit=fit, notes=tuple(fit.notes))
    boot = bootstrap_fit(fit, Bootstrap.of(spec.n_boot, seed=spec.seed, levels=spec.levels, group=group,
                                           workers=workers),
                         derived=_law_quantities(spec.budget, cost, bounds, sel.axes, (hi, lo)), progress=progress)
    what = ", ".join(boot.group) if boot.group else "single rows"
    return MethodAnswer("parametric", True, "", est, dict(boot.derived), f"{what} (the law refitted)",
                        boot.n_requested, boot.n_ok, dict(boot.failures), check, (*fit.notes, *boot.notes), fit)


def _law_values(hi: Mapping[str, float], lo: Mapping[str, float], axes: Sequence[str]) -> dict[str, float]:
    """N*, D* at the budget (``hi``) and the slopes of their logs against log C down to a tenth of it (``lo``)."""
    n, d = axes[0], axes[1]
    return {"n_opt": hi[n], "d_opt": hi[d], "a": math.log10(hi[n] / lo[n]), "b": math.log10(hi[d] / lo[d])}


def _law_quantities(budget: float, cost: CostModel, bounds: Mapping[str, tuple[float, float]] | None,
                    axes: Sequence[str], starts: tuple[Mapping[str, float], Mapping[str, float]]
                    ) -> Callable[[Any], Derived]:
    """A resample's ``_law_values``, its allocations started from the full data's (``starts``)."""

    def fn(f: Any) -> Derived:
        hi = best_at_budget(f, budget, cost, bounds, starts=[starts[0]], warm=True).point
        lo = best_at_budget(f, budget / 10, cost, bounds, starts=[starts[1]], warm=True).point
        if hi is None or lo is None:
            return Derived({q: math.nan for q in ("n_opt", "d_opt", "a", "b")})
        return Derived(_law_values(hi, lo, axes))

    return fn


def _budgets_from(answers: Sequence[MethodAnswer]) -> str:
    for a in answers:
        if a.method == "isoflop" and a.fit is not None:
            return str(a.fit.budgets_from)
        if a.consistency is not None and a.consistency.budgets_from:
            return a.consistency.budgets_from
    return ""
