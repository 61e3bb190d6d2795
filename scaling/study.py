"""The study's workflows with the defaults of the command line: each returns a result or report object.

    import scaling
    runs = scaling.load_runs()                                  # the shipped grid (or load_runs(db=...))
    fit = scaling.fit(runs, form="logit1", metric="top5")      # FitResult: .summary(), .to_frame(), ...
    rep = scaling.project(fit, target="human-top5", bootstrap=1000, seed=1)
    scaling.compare(runs, metric="top5"); scaling.backtest(runs); scaling.optimal(fit, target="human-top5")

The CLI is option parsing, one call of these and rendering; the notebooks call them too. The numerical
work lives in the core modules (``fitting``, ``projection``, ``resampling``, ``backtesting``,
``comparison``, ``allocation``); this module only chooses defaults and assembles their answers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scaling.core.targets import Target, resolve_target
from scaling.data.tables import Selection, check_chance, select
from scaling.defaults import (
    DEFAULT_FORM,
    DEFAULT_GROUP,
    DEFAULT_LEVELS,
    DEFAULT_SELECTION,
    PAPER_SCENARIO,
)
from scaling.errors import ProjectionError, ScalingError
from scaling.forms.result import FitResult
from scaling.planning.planner import plan_answers
from scaling.questions.asking import (
    allocations,
    bootstrap_quantities,
    cost_model_of,
    fit_for_question,
    priced,
    questions_asked,
)
from scaling.questions.projection import COMPUTE_AXES
from scaling.questions.report import ProjectionReport

Progress = Callable[[str, int, int], None]  # progress(label, done, total)
AUTO = "auto"
MODES = ("all", "scale", "solve", "at")


def check_levels(levels: Sequence[float] | None) -> tuple[float, ...]:
    """Interval levels, each in (0, 1), sorted and without repeats (default 0.9 and 0.95)."""
    from scaling.uncertainty.bootstrap import check_levels as valid_levels

    return tuple(sorted(set(valid_levels(levels or DEFAULT_LEVELS))))


def resolve_group(frame: pd.DataFrame, group: str | Sequence[str] | None) -> tuple[str | tuple[str, ...] | None, str]:
    """The bootstrap's grouping columns and a note: ``"auto"`` is whole runs (``run_id``) when the data
    have them, else single rows; ``None`` or ``"none"`` is single rows."""
    if isinstance(group, str) and group.strip().lower() == AUTO:
        if DEFAULT_GROUP in frame.columns:
            return DEFAULT_GROUP, ""
        return None, f"no {DEFAULT_GROUP} column: every row is resampled on its own (pass a group to cluster rows)"
    if group is None or (isinstance(group, str) and group.strip().lower() == "none"):
        return None, ""
    cols = tuple(c.strip() for c in group.split(",") if c.strip()) if isinstance(group, str) else tuple(group)
    if not cols:
        raise ScalingError("the bootstrap group needs a column name (or 'none')")
    return (cols[0] if len(cols) == 1 else cols), ""


def _labelled(progress: Progress | None, label: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda done, total: progress(label, done, total))


def fit(
    data: pd.DataFrame | None = None,
    form: str = DEFAULT_FORM,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    weights: str | None = None,
    chance: float | None = None,
    huber_delta: float | None = None,
    alpha_max: float | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    workers: int = 1,
    progress: Progress | None = None,
    **options: Any,
) -> FitResult:
    """Fit ``form`` to the run database's grid (default: the shipped one) or to any table.

    Run-database frames (``load_runs``): ``metric`` (default top1) against parameters, hours and px.
    Other tables: ``y`` and ``axes`` name the columns, ``kind`` says whether y is an accuracy (a fraction,
    higher is better) or a loss (lower is better). ``chance`` and ``huber_delta`` reach the forms that take
    them; ``bootstrap=N`` adds percentile intervals from N resamples of whole runs (``group``).
    """
    from scaling.forms.result import fit as fit_table

    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    opts = form_options(form, metric=sel.metric, kind=kind, chance=chance, huber_delta=huber_delta,
                        alpha_max=alpha_max) | options
    result = fit_table(sel.frame, form, y=sel.y, axes=sel.axes, kind=kind, weights=weights, **opts)  # type: ignore[arg-type]
    result = dataclasses.replace(result, source=sel.source, data=sel.frame, fit_options=opts, weights=weights,
                                 notes=(*sel.notes, *result.notes))
    if bootstrap:
        boot = resample(result, n=bootstrap, seed=seed, levels=levels, group=group, workers=workers,
                        progress=progress)
        result = dataclasses.replace(result, bootstrap=boot)
    return result


_fit = fit  # project()'s first argument is called fit, as in the API it documents


def resample(
    fit: FitResult,
    *,
    n: int = 1000,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    derived: Any = None,
    workers: int = 1,
    keep_samples: bool = True,
    progress: Progress | None = None,
) -> Any:
    """Bootstrap ``fit`` (a result of ``scaling.fit``): ``n`` resamples of whole groups of rows, refitted
    warm; percentile intervals on every parameter, the ceiling and ``derived`` quantities
    (``scaling.uncertainty.bootstrap.projection_quantities``). Same seed, same intervals; ``workers`` > 1 forks."""
    from scaling.uncertainty.bootstrap import bootstrap

    frame = _fitted_frame(fit)
    grp, _ = resolve_group(frame, group)
    return bootstrap(frame, fit.form, y=fit.y, axes=fit.axes, kind=fit.kind, weights=fit.weights, n=n, seed=seed,
                     group=grp, levels=check_levels(levels), derived=derived, full=fit, keep_samples=keep_samples,
                     progress=_labelled(progress, f"bootstrap {fit.form}"), workers=workers, **fit.fit_options)


def _fitted_frame(fit: FitResult) -> pd.DataFrame:
    if fit.data is None:
        raise ScalingError("this fit carries no data (fit it with scaling.fit to bootstrap or project it)")
    return fit.data


def project(
    fit: FitResult | pd.DataFrame | None = None,
    target: str | float | Target | None = None,
    *,
    form: str = DEFAULT_FORM,
    metric: str | None = None,
    eval_set: str | None = None,
    protocol: str | None = None,
    selection: str = DEFAULT_SELECTION,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    chance: float | None = None,
    huber_delta: float | None = None,
    alpha_max: float | None = None,
    mode: str = "all",
    at: Mapping[str, float] | None = None,
    axis: str | None = None,
    exponents: Mapping[str, float] | None = None,
    passes: float | None = None,
    training_length: str | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    workers: int = 1,
    optimal: bool = False,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    frontier_rows: int = 9,
    cost: str | None = None,
    budget: float | None = None,
    figure: str | Path | None = None,
    plan: bool | Mapping[str, Any] = False,
    progress: Progress | None = None,
) -> ProjectionReport:
    """What scale (and compute) reaches ``target``? Three questions from the largest trained point.

    ``fit``: a result of ``scaling.fit``, or a table to fit first (default: the run database, fitted with
    ``form`` on the target's metric). ``target``: default human-top5 on the run database; any other table
    has no default target (a loss table never borrows an accuracy target), and then only the questions that
    need none are answered: the prediction at ``at``, and the best allocation at ``budget``. ``mode``: all |
    scale (one factor k on every axis, axis i by k**exponents[i]) | solve (``axis`` alone) | at (the
    prediction at ``at``, default the paper's 2.5B parameters, 20,000 h, 952 px). ``bootstrap=N`` adds
    percentile intervals on every answer; ``optimal=True`` the cheapest allocation reaching the target
    within ``bounds`` and ``budget=C`` the best allocation at compute C, under ``cost`` ('mae', the MAE
    FLOPs model, by default on the run database; '6nd'; or an expression of the axes such as
    '6*params*tokens'); a ``cost`` also prices every answer. ``training_length`` ('grid', 'passes=P',
    'images=N'; ``passes=P`` for short) is how many images a run sees (``scaling.compute.training_length``);
    ``figure`` writes the iso-accuracy map of the answer (.png, .pdf or .svg); ``plan=True`` (or
    ``scaling.plan`` options) plans every answer's point.
    """
    from scaling.compute.training_length import parse as parse_training_length
    from scaling.questions.projection import project_at, project_axis, project_scale, reference_point

    if mode not in MODES:
        raise ProjectionError(f"unknown mode {mode!r}; use all, scale, solve or at")
    if figure is not None:
        from scaling.plots.style import figure_format

        figure_format(figure)  # a bad suffix fails before any work
    if passes is not None and not (passes > 0 and math.isfinite(passes)):
        raise ScalingError(f"passes over the data must be a positive number, got {passes}")
    lv = check_levels(levels)
    result, tgt = fit_for_question(fit, target, form=form, metric=metric, eval_set=eval_set, protocol=protocol,
                                    selection=selection, y=y, axes=axes, kind=kind, chance=chance,
                                    huber_delta=huber_delta, alpha_max=alpha_max)
    asked = questions_asked(mode, tgt, budget, optimal)
    if figure is not None and tgt is None:
        raise ProjectionError("the iso map marks the target: give a target (--target, target=) for --figure")
    frame = _fitted_frame(result)
    ref = reference_point(result)
    on_runs = result.source.get("db") is not None
    rule = parse_training_length(training_length, frame if on_runs else None, passes=passes)
    has_compute_axes = set(COMPUTE_AXES) <= set(result.axes)
    assumptions = rule.at(ref) if rule is not None and has_compute_axes else None
    if axis is None:  # data hours on the run database; the last axis of any other table (tokens, say)
        axis = "data_hours" if on_runs else result.axes[-1]
    if at is None:  # the paper's scenario on the run database; the largest trained point otherwise
        at = PAPER_SCENARIO if on_runs else ref
    point = dict(at) if "at" in asked else None
    compute = rule if has_compute_axes else None
    value = None if tgt is None else tgt.value

    answers = []
    if "scale" in asked:
        answers.append(("scale every axis", project_scale(result, value, exponents=exponents, compute=compute)))  # type: ignore[arg-type]
    if "solve" in asked:
        answers.append((f"solve {axis}", project_axis(result, value, axis, compute=compute)))  # type: ignore[arg-type]
    if point is not None:
        answers.append(("at point", project_at(result, point, target=value, compute=compute)))

    model, alloc = cost_model_of(result, cost, on_runs, optimal, budget, rule, ref)
    if model is not None:  # a cost prices every answer (the FLOPs column follows --cost)
        answers = [(q, priced(p, model)) for q, p in answers]
    opt, at_budget = allocations(result, tgt, model, alloc, optimal=optimal, budget=budget, bounds=bounds,
                                  frontier_rows=frontier_rows, seed=seed)
    boot = None
    if bootstrap:
        derived = bootstrap_quantities(result, value, ref, point, axis if "solve" in asked else None,
                                        "scale" in asked, exponents, compute, opt, alloc, model, at_budget, budget)
        boot = resample(result, n=bootstrap, seed=seed, levels=lv, group=group, derived=derived, workers=workers,
                        progress=progress)
    report = ProjectionReport(target=tgt, fit=result, compute_assumptions=assumptions, projections=tuple(answers),
                              optimal=opt, bootstrap=boot, figure=None if figure is None else str(figure),
                              budget=at_budget, training_length=rule if has_compute_axes else None,
                              cost_model=None if model is None else model.describe())
    if plan:  # a training plan of every answer's point
        report = dataclasses.replace(report, plans=plan_answers(report, **(plan if isinstance(plan, Mapping) else {})))
    if figure is not None:
        report.save_figure(figure)
    return report


def optimal(
    fit: FitResult,
    target: str | float | Target | None = None,
    *,
    cost: str | None = None,
    budget: float | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    passes: float | None = None,
    training_length: str | None = None,
    frontier_rows: int = 9,
    seed: int = 0,
) -> Any:
    """The compute-optimal allocation, as ``project`` asks it: with ``budget=C``, the best allocation at
    cost C (a ``scaling.allocation.budget.CostOptimum``); else the cheapest reaching ``target`` (default: the data's
    default target), under the MAE FLOPs model (``scaling.allocation.mae.OptimalResult``, with the
    proportional-cost cross-check and the iso-target frontier) or under ``cost`` ('6nd' or an expression of
    the axes; a ``CostOptimum``)."""
    rep = project(fit, target, mode="at", optimal=budget is None, budget=budget, cost=cost, bounds=bounds,
                  passes=passes, training_length=training_length, frontier_rows=frontier_rows, seed=seed)
    return rep.budget if budget is not None else rep.optimal


def backtest(
    data: pd.DataFrame | None = None,
    forms: Sequence[str] | None = None,
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
) -> Any:
    """Fit each form (default: every registered form) on the smaller part of the grid and predict the
    held-out larger part; forms ranked by mean held-out RMSE over the splits every form fits, each form's
    means also over its own splits, every mean naming its splits (``scaling.selection.backtest.BacktestResult``).

    Defaults follow the table: on the run database, rolling origins along data hours and axis values within
    5% counted as one level (the ViT-H runs at 224/448/476 px differ in parameters by their position
    embeddings, 0.2%); on any other table, rolling origins along its last axis and exact levels. A form
    that cannot apply to the table (e.g. a chance ceiling with no chance level for a loss) is listed as
    skipped with the reason and not ranked."""
    from scaling.selection.backtest import backtest as run_backtest

    names = _form_names(forms)
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    options, unavailable = _options_for(names, sel, kind, chance, huber_delta, alpha_max)
    result = run_backtest(sel.frame, names, y=sel.y, axes=sel.axes, kind=kind, options=options,
                          rolling_axis=_rolling_axis(rolling_axis, sel), level_tol=_level_tol(level_tol, sel),
                          progress=_labelled(progress, "backtest"), unavailable=unavailable)
    return dataclasses.replace(result, source=sel.source, data=sel.frame, notes=(*sel.notes, *result.notes))


def _options_for(names: Sequence[str], sel: Selection, kind: str, chance: float | None, huber_delta: float | None,
                 alpha_max: float | None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Each form's options, and the forms that cannot apply to these data with the reason."""
    options: dict[str, dict[str, Any]] = {}
    unavailable: dict[str, str] = {}
    for f in names:
        try:
            options[f] = form_options(f, metric=sel.metric, kind=kind, chance=chance, huber_delta=huber_delta,
                                      alpha_max=alpha_max)
        except ScalingError as exc:
            unavailable[f] = str(exc).splitlines()[0]
    return options, unavailable


def _rolling_axis(rolling_axis: str | None, sel: Selection) -> str | None:
    if rolling_axis is not None and rolling_axis != AUTO and rolling_axis not in sel.axes:
        raise ScalingError(f"rolling axis {rolling_axis!r} is not one of the axes ({', '.join(sel.axes)}), "
                           "'auto' or none")
    if rolling_axis != AUTO:
        return rolling_axis
    return "data_hours" if sel.metric is not None else sel.axes[-1]


def _level_tol(level_tol: float | None, sel: Selection) -> float:
    from scaling.selection.backtest import DEFAULT_LEVEL_TOL

    if level_tol is not None:
        return level_tol
    return DEFAULT_LEVEL_TOL if sel.metric is not None else 0.0


def compare(
    data: pd.DataFrame | None = None,
    forms: Sequence[str] | None = None,
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
    bootstrap: int = 200,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    workers: int = 1,
    rolling_axis: str | None = AUTO,
    level_tol: float | None = None,
    progress: Progress | None = None,
) -> Any:
    """Every form side by side: in-sample fit, AICc/BIC, backtest error and the prediction at ``at``
    (default: the paper's scenario on the run database, the table's largest point on any other table) with
    a bootstrap interval; recommends the best-backtesting form (defaults of the backtest as in ``backtest``)."""
    from scaling.selection.compare import FormRow
    from scaling.selection.compare import compare as run_compare

    names = _form_names(forms)
    lv = check_levels(levels)
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    point = dict(at) if at is not None else _default_point(sel)
    missing = [a for a in sel.axes if a not in point]
    if missing:
        raise ScalingError(f"the comparison point lacks axis {missing[0]!r}; the axes are {', '.join(sel.axes)}")
    tgt = None
    if target is not None:
        tgt = target if isinstance(target, Target) else resolve_target(
            str(target), metric=sel.metric or (sel.y if kind != "accuracy" else None), kind=kind)
    options, unavailable = _options_for(names, sel, kind, chance, huber_delta, alpha_max)
    usable = [f for f in names if f not in unavailable]
    if not usable:
        raise ScalingError("no form applies to these data: " + "; ".join(f"{f}: {r}" for f, r in unavailable.items()))
    grp, _ = resolve_group(sel.frame, group)
    result = run_compare(sel.frame, usable, y=sel.y, axes=sel.axes, point=point, kind=kind,
                         target=None if tgt is None else tgt.value, options=options, n_bootstrap=bootstrap, seed=seed,
                         group=grp, levels=lv, rolling_axis=_rolling_axis(rolling_axis, sel),
                         level_tol=_level_tol(level_tol, sel), progress=progress, workers=workers)
    rows = {r.form: r for r in result.rows} | {f: FormRow(f, False, why) for f, why in unavailable.items()}
    return dataclasses.replace(result, rows=[rows[f] for f in names], source=sel.source, target_spec=tgt,
                               notes=(*sel.notes, *result.notes))


def _default_point(sel: Selection) -> dict[str, float]:
    """The paper's scenario on the run database; the largest value of every axis on any other table."""
    if sel.metric is not None:
        return dict(PAPER_SCENARIO)
    return {a: float(pd.to_numeric(sel.frame[a]).max()) for a in sel.axes}


def form_options(form: str, *, metric: str | None, kind: str, chance: float | None = None,
                 huber_delta: float | None = None, alpha_max: float | None = None) -> dict[str, Any]:
    """The options a study passes to ``form``: what the form derives from the data (``Form.default_options``,
    e.g. the chance error of a chance ceiling from the metric), and the user's ``chance`` and ``huber_delta``
    where the form takes them (a form that does not ignores them)."""
    from scaling.forms import get_form

    info = get_form(form)
    options: dict[str, Any] = {}
    if huber_delta is not None and "huber_delta" in info.option_names:
        options["huber_delta"] = huber_delta
    if alpha_max is not None and "alpha_max" in info.option_names:
        options["alpha_max"] = alpha_max
    options |= info.default_options(metric=metric, kind=kind)
    if chance is not None:
        if kind == "accuracy" and not 0.0 < chance <= 1.0:
            raise ScalingError(f"a chance-level error of an accuracy is in (0, 1]; got {chance:g}")
        if chance <= 0.0:
            raise ScalingError(f"a chance level must be positive; got {chance:g}")
        if "chance" in info.option_names:
            options["chance"] = chance
        elif "l0" in info.option_names:  # M4's start level L0 is the chance level of an error rate
            options["l0"] = chance
    if "chance" in info.option_names and "chance" not in options:
        what = f"metric {metric!r}" if metric else f"a {kind} table that is not a top-k accuracy of the run database"
        raise ScalingError(f"form {form!r} needs a chance-level error (--chance, chance=) for {what}")
    return options


def _form_names(forms: Sequence[str] | str | None) -> list[str]:
    from scaling.forms import get_form, list_forms

    if forms is None or (isinstance(forms, str) and forms.strip().lower() == "all"):
        return [f.name for f in list_forms()]
    names = [f.strip() for f in forms.split(",")] if isinstance(forms, str) else list(forms)
    names = [n for n in names if n]
    if not names:
        raise ScalingError("name at least one form (or 'all')")
    for n in names:
        get_form(n)  # one-line error naming the known forms
    return names
