"""``scaling.backtest`` and ``scaling.compare`` with the study's defaults: which forms apply to the data,
with which options, and the backtest's defaults from the ``Dataset`` (rolling axis, level tolerance, the
comparison point)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from scaling.allocation.consistency import consistency_check
from scaling.compute.costs import cost_model
from scaling.core import checks, work
from scaling.core.direction import direction
from scaling.core.targets import Target, resolve_target
from scaling.data.dataset import Dataset
from scaling.data.tables import check_chance, select
from scaling.defaults import DEFAULT_N_BOOT, ISOFLOP_BUDGET_TOL
from scaling.errors import ScalingError
from scaling.forms import Form
from scaling.forms.options import form_names, form_options
from scaling.selection.backtest import BacktestResult
from scaling.selection.backtest import backtest as run_backtest
from scaling.selection.compare import CompareResult, FormRow
from scaling.selection.compare import compare as run_compare
from scaling.uncertainty.bootstrap import check_levels
from scaling.uncertainty.resampling import AUTO, labelled, resolve_group

Progress = Callable[[str, int, int], None]


def backtest(
    data: pd.DataFrame | None = None,
    forms: Sequence[str | Form] | None = None,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    chance: float | None = None,
    huber_delta: float | None = None,
    alpha_max: float | None = None,
    rolling_axis: str | None = AUTO,
    level_tol: float | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Fit each form (default: every registered form) on the smaller part of the grid and predict the
    held-out larger part; forms ranked by mean held-out RMSE over the splits every form fits, each form's
    means also over its own splits, every mean naming its splits.

    Defaults follow the data (``Dataset``): on the run database, rolling origins along data hours and axis
    values within 5% counted as one level (the ViT-H runs at 224/448/476 px differ in parameters by their
    position embeddings, 0.2%); on any other table, rolling origins along its last axis and exact levels. A
    form that cannot apply to the table (e.g. a chance ceiling with no chance level for a loss) is listed as
    skipped with the reason and not ranked."""
    names = form_names(forms)
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    options, unavailable = options_for(names, sel, chance, huber_delta, alpha_max)
    level_tol = None if level_tol is None else checks.level_tol(level_tol)
    result = run_backtest(sel.frame, names, y=sel.y, axes=sel.axes, kind=kind, options=options,
                          rolling_axis=_rolling_axis(rolling_axis, sel),
                          level_tol=sel.level_tol if level_tol is None else level_tol,
                          progress=labelled(progress, "backtest"), unavailable=unavailable)
    return dataclasses.replace(result, source=sel.source, data=sel.frame, notes=(*sel.notes, *result.notes))


def options_for(names: Sequence[str], sel: Dataset, chance: float | None, huber_delta: float | None,
                alpha_max: float | None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each form's options, and the forms that cannot apply to these data with the reason."""
    huber_delta = None if huber_delta is None else checks.positive(huber_delta, "huber_delta")
    alpha_max = None if alpha_max is None else checks.alpha_max(alpha_max)
    options: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    for f in names:
        try:
            options[f] = form_options(f, metric=sel.metric, kind=sel.kind, chance=chance, huber_delta=huber_delta,
                                      alpha_max=alpha_max)
        except ScalingError as exc:
            unavailable[f] = str(exc).splitlines()[0]
    return options, unavailable


def _rolling_axis(rolling_axis: str | None, sel: Dataset) -> str | None:
    if rolling_axis is not None and rolling_axis != AUTO and rolling_axis not in sel.axes:
        raise ScalingError(f"rolling axis {rolling_axis!r} is not one of the axes ({', '.join(sel.axes)}), "
                           "'auto' or none")
    return sel.rolling_axis if rolling_axis == AUTO else rolling_axis


def compare(
    data: pd.DataFrame | None = None,
    forms: Sequence[str | Form] | None = None,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    at: Mapping[str, float] | None = None,
    target: str | float | Target | None = None,
    chance: float | None = None,
    huber_delta: float | None = None,
    alpha_max: float | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    workers: int = 1,
    rolling_axis: str | None = AUTO,
    level_tol: float | None = None,
    progress: Progress | None = None,
    cost: str | None = None,
    budget_column: str | None = None,
    budget_tol: float = ISOFLOP_BUDGET_TOL,
) -> CompareResult:
    """Every form side by side: in-sample fit, AICc/BIC, backtest error and the prediction at ``at``
    (default: the data's evaluation point) with a bootstrap interval from ``n_boot`` resamples (0: none);
    recommends the best-backtesting form (defaults of the backtest as in ``backtest``). With ``cost`` ('6nd'
    or an expression of the axes), each form's allocation is checked against the table's IsoFLOP vertices
    (``scaling.allocation.consistency``; budgets from ``budget_column`` or the cost within ``budget_tol``)."""
    names = form_names(forms)
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    point = checks.point(at, sel.axes, "the comparison point") if at is not None else sel.evaluation_point
    level_tol = None if level_tol is None else checks.level_tol(level_tol)
    n_boot = checks.count(n_boot, "n_boot", minimum=0)
    seed = checks.seed(seed)
    if n_boot:  # a bootstrap per form, before any is fitted
        what = f"{n_boot:,} bootstrap resamples x {len(names)} form(s) of {len(sel.frame):,} rows"
        work.check(work.bootstrap(n_boot * len(names), len(sel.frame), n_quantities=2, workers=workers, what=what))
    tgt = None
    if target is not None:
        tgt = target if isinstance(target, Target) else resolve_target(
            str(target), metric=direction(kind).target_metric(sel.metric, sel.y), kind=kind)
    options, unavailable = options_for(names, sel, chance, huber_delta, alpha_max)
    usable = [f for f in names if f not in unavailable]
    if not usable:
        raise ScalingError("no form applies to these data: " + "; ".join(f"{f}: {r}" for f, r in unavailable.items()))
    grp, _ = resolve_group(sel.frame, group)
    result = run_compare(sel.frame, usable, y=sel.y, axes=sel.axes, point=point, kind=kind,
                         target=None if tgt is None else tgt.value, options=options, n_boot=n_boot, seed=seed,
                         group=grp, levels=check_levels(levels), rolling_axis=_rolling_axis(rolling_axis, sel),
                         level_tol=sel.level_tol if level_tol is None else level_tol, progress=progress,
                         workers=workers)
    rows = {r.form: r for r in result.rows} | {f: FormRow(f, False, why) for f, why in unavailable.items()}
    iso_checks = {} if cost is None else {
        r.form: consistency_check(r.fit, cost_model(cost, sel.axes), budget_column=budget_column, tol=budget_tol,
                                  data=sel.frame)
        for r in result.rows if r.fit is not None}
    return dataclasses.replace(result, rows=[rows[f] for f in names], source=sel.source, target_spec=tgt,
                               notes=(*sel.notes, *result.notes), isoflop_checks=iso_checks)
