"""``scaling.project`` and ``scaling.optimal``: a loop over question objects (``scaling.questions.objects``).

    rep = scaling.project(fit, "human-top5", [Scale(), Solve(), At()], uncertainty=Bootstrap(n_boot=1000))
    rep = scaling.project(fit, "human-top5", mode="solve", n_boot=200)      # the keyword form of the same

The target defaults to the data's own (human-top5 on the run database; none on any other table: a loss
table never borrows an accuracy target), and each question needs only its own inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict, Unpack

import pandas as pd

from scaling.allocation.budget import CostOptimum
from scaling.allocation.mae import OptimalResult
from scaling.compute.costs import CostModel, cost_model
from scaling.compute.training_length import parse as parse_training_length
from scaling.core.targets import Target, default_target_for, resolve_target
from scaling.data.tables import is_runs_frame, load_runs
from scaling.defaults import COMPUTE_AXES, DEFAULT_FORM, DEFAULT_SELECTION
from scaling.errors import ProjectionError, ScalingError
from scaling.fitting import fit as fit_data
from scaling.forms.result import FitResult
from scaling.planning.planner import plan_answers
from scaling.questions import MODES
from scaling.questions.derived import target_events
from scaling.questions.objects import At, AtBudget, Cheapest, Context, Question, Scale, Solve, default_questions
from scaling.questions.projection import reference_point
from scaling.questions.report import ProjectionReport
from scaling.uncertainty.bootstrap import combine
from scaling.uncertainty.resampling import AUTO, Bootstrap, bootstrap_fit

Progress = Callable[[str, int, int], None]


class FitOptions(TypedDict, total=False):
    """How ``project`` fits a table or the run database first (as ``scaling.fit`` takes them; ``db``: the
    run database to load when no data are given, default ``$SCALING_DB`` or the user's)."""

    db: str | Path | None
    form: str
    metric: str | None
    eval_set: str | None
    protocol: str | None
    selection: str
    y: str | None
    axes: Sequence[str] | None
    kind: str
    chance: float | None
    huber_delta: float | None
    alpha_max: float | None


class ProjectOptions(FitOptions, total=False):
    """The keyword form of the questions and of the bootstrap (the README's older signature)."""

    mode: str
    at: Mapping[str, float] | None
    axis: str | None
    exponents: Mapping[str, float] | None
    optimal: bool
    bounds: Mapping[str, tuple[float, float]] | None
    frontier_rows: int
    budget: float | None
    budget_column: str | None  # the IsoFLOP budgets of the allocations' consistency check
    budget_tol: float
    n_boot: int
    seed: int
    levels: Sequence[float] | None
    group: str | Sequence[str] | None
    workers: int


_FIT_KEYS = set(FitOptions.__annotations__)
_KEYS = set(ProjectOptions.__annotations__)


def project(
    fit: FitResult | pd.DataFrame | None = None,
    target: str | float | Target | None = None,
    questions: Sequence[Question] | None = None,
    *,
    uncertainty: Bootstrap | None = None,
    training_length: str | None = None,
    passes: float | None = None,
    cost: str | None = None,
    figure: str | Path | None = None,
    plan: bool | Mapping[str, Any] = False,
    progress: Progress | None = None,
    **options: Unpack[ProjectOptions],
) -> ProjectionReport:
    """What scale (and compute) reaches ``target``? A loop over ``questions``.

    ``fit``: a result of ``scaling.fit``, or a table to fit first (default: the run database, fitted with
    ``form`` on the target's metric; ``FitOptions``). ``target``: default the data's own. ``questions``:
    ``Scale``, ``Solve``, ``At``, ``Cheapest``, ``AtBudget`` (default: scale, solve and at with a target;
    only what needs none without one), or the keyword form (``mode``: all | scale | solve | at, with ``at``,
    ``axis``, ``exponents``; ``optimal=True`` with ``bounds`` and ``frontier_rows``; ``budget=C``).
    ``uncertainty``: a ``Bootstrap`` (or ``n_boot=N`` with ``seed``, ``levels``, ``group``, ``workers``)
    puts percentile intervals on every answer. ``cost`` ('mae', the default on the run database; '6nd'; an
    expression of the axes such as '6*params*tokens') is what allocations minimise, and a named one prices
    every answer; ``training_length`` ('grid', 'passes=P', 'images=N'; ``passes=P`` for short) is how many
    images a run sees. ``figure`` writes the iso-accuracy map (.png, .pdf, .svg); ``plan=True`` (or
    ``scaling.plan`` options) plans every answer's point.
    """
    unknown = sorted(set(options) - _KEYS)
    if unknown:
        raise ScalingError(f"project() got unknown option(s) {', '.join(unknown)}")
    if figure is not None:
        from scaling.plots.style import figure_format  # lazy: drawing (matplotlib) is optional

        figure_format(figure)  # a bad suffix fails before any work
    if passes is not None and not (passes > 0 and math.isfinite(passes)):
        raise ScalingError(f"passes over the data must be a positive number, got {passes}")
    result, tgt = fit_for_question(fit, target, options)
    value = None if tgt is None else tgt.value
    asked = [q.resolved(result) for q in (questions if questions is not None else keyword_questions(value, options))]
    if figure is not None and tgt is None:
        raise ProjectionError("the iso map marks the target: give a target (--target, target=) for --figure")
    ctx = context(result, value, asked, training_length=training_length, passes=passes, cost=cost,
                  seed=options.get("seed", 0))
    answers = [(q, q.answer(ctx)) for q in asked]
    spec = uncertainty or _keyword_bootstrap(options)
    boot = None
    if spec is not None:
        derived = combine(None if value is None else target_events(value), *[q.quantities(ctx, a) for q, a in answers])
        boot = bootstrap_fit(result, spec, derived=derived, progress=progress)
    report = ProjectionReport.of(tgt, ctx, answers, boot, figure)
    if plan:  # a training plan of every answer's point
        report = replace(report, plans=plan_answers(report, **(plan if isinstance(plan, Mapping) else {})))
    if figure is not None:
        report.save_figure(figure)
    return report


def context(fit: FitResult, target: float | None, questions: Sequence[Question], *, training_length: str | None = None,
            passes: float | None = None, cost: str | None = None, seed: int = 0) -> Context:
    """The ``Context`` the questions share: the reference point, the training-length rule (where the MAE FLOPs
    model prices a run) and the cost an allocation minimises (a named one, else the data's default)."""
    ref = reference_point(fit)
    dataset = fit.dataset
    has_compute_axes = set(COMPUTE_AXES) <= set(fit.axes)
    rule = parse_training_length(training_length, dataset.runs_frame if dataset is not None else None,
                                 passes=passes) if has_compute_axes else None
    allocating = any(isinstance(q, Cheapest | AtBudget) for q in questions)
    spec = cost if cost is not None else (dataset.default_cost if dataset is not None else None)
    model: CostModel | None = None
    if spec is not None and spec.strip().lower() != "mae":
        model = cost_model(spec, fit.axes)
    elif spec is not None and allocating:
        if rule is None:
            raise ScalingError("the optimal allocation needs the compute model: axes n_params, data_hours, "
                               "image_px and passes over the data")
        model = cost_model("mae", fit.axes, assumptions=rule.for_allocation(ref))
    return Context(fit, target, ref, rule, model, priced_by_cost=model is not None and model.assumptions is None,
                   seed=seed)


def target_of(fit: FitResult, target: str | float | Target | None, metric: str | None = None,
              eval_set: str | None = None, protocol: str | None = None) -> Target | None:
    """The target of a question about ``fit``; with none given, the data's own default (``Dataset``)."""
    if isinstance(target, Target):
        return target
    if target is None:
        target = fit.dataset.default_target if fit.dataset is not None else None
        if target is None:
            return None
    spec = target if isinstance(target, str) else repr(float(target))
    own = fit.direction.target_metric(fit.source.get("metric"), fit.y)
    return resolve_target(spec, metric=metric or own, eval_set=eval_set or fit.source.get("eval_set"),
                          protocol=protocol, kind=fit.kind)


def fit_for_question(data: FitResult | pd.DataFrame | None, target: str | float | Target | None,
                     options: Mapping[str, Any]) -> tuple[FitResult, Target | None]:
    """The fit a projection answers from (``data`` itself, or ``data`` fitted with ``options['form']`` on the
    target's metric) and the target (``target_of``)."""
    opts = {k: v for k, v in options.items() if k in _FIT_KEYS}
    form = opts.pop("form", DEFAULT_FORM)
    metric, eval_set, protocol = opts.pop("metric", None), opts.pop("eval_set", None), opts.pop("protocol", None)
    selection = opts.pop("selection", DEFAULT_SELECTION)
    db = opts.pop("db", None)
    if isinstance(data, FitResult):
        return data, target_of(data, target, metric, eval_set, protocol)
    if data is not None and not is_runs_frame(data):  # any other table: the target is a value of its y
        result = fit_data(data, form, **opts)
        return result, target_of(result, target, metric, eval_set, protocol)
    spec = default_target_for(eval_set) if target is None else target  # an OOD set's own human target
    tgt = spec if isinstance(spec, Target) else resolve_target(str(spec), metric=metric, eval_set=eval_set,
                                                                protocol=protocol, kind=opts.get("kind", "accuracy"))
    if data is None:
        data = load_runs(db, protocol=tgt.protocol, eval_set=tgt.eval_set, selection=selection, metric=tgt.metric)
    return fit_data(data, form, metric=tgt.metric, **opts), tgt


def keyword_questions(target: float | None, options: Mapping[str, Any]) -> list[Question]:
    """The questions of the keyword form (``mode``, ``at``, ``axis``, ``exponents``, ``optimal``,
    ``budget``); each needs only its own inputs."""
    mode = options.get("mode", "all")
    if mode not in MODES:
        raise ProjectionError(f"unknown mode {mode!r}; use all, scale, solve or at")
    budget = options.get("budget")
    if target is None and mode in ("scale", "solve"):
        what = "scale every axis until the target is reached" if mode == "scale" else "solve an axis for the target"
        raise ProjectionError(f"--mode {mode} asks to {what}: give a target (--target, target=)")
    if target is None and options.get("optimal"):
        raise ProjectionError("--optimal asks for the cheapest point reaching a target: give a target "
                              "(--target, target=); --budget C alone asks for the best allocation at C")
    asked: list[Question]
    if mode == "all" and target is None:
        asked = default_questions(None, budget=budget)
    else:
        keys = {"all": ["scale", "solve", "at"], "scale": ["scale"], "solve": ["solve"], "at": ["at"]}[mode]
        asked = [Scale(), Solve(), At()]
        asked = [q for q in asked if q.key in keys]
    given: dict[str, Question] = {"scale": Scale(options.get("exponents")), "solve": Solve(options.get("axis")),
                                  "at": At(options.get("at"))}
    asked = [given[q.key] for q in asked]
    iso = {k: options[k] for k in ("budget_column", "budget_tol") if options.get(k) is not None}
    if options.get("optimal"):
        asked.append(Cheapest(options.get("bounds"), options.get("frontier_rows", 9), **iso))
    if budget is not None:
        asked.append(AtBudget(float(budget), options.get("bounds"), **iso))
    return asked


def _keyword_bootstrap(options: Mapping[str, Any]) -> Bootstrap | None:
    n_boot = options.get("n_boot", 0)
    if not n_boot:
        return None
    return Bootstrap.of(n_boot, seed=options.get("seed", 0), levels=options.get("levels"),
                        group=options.get("group", AUTO), workers=options.get("workers", 1))


def optimal(fit: FitResult, target: str | float | Target | None = None, *, cost: str | None = None,
            budget: float | None = None, bounds: Mapping[str, tuple[float, float]] | None = None,
            passes: float | None = None, training_length: str | None = None, frontier_rows: int = 9,
            seed: int = 0) -> OptimalResult | CostOptimum | None:
    """The compute-optimal allocation, as ``project`` asks it: with ``budget=C``, the best allocation at
    cost C (a ``scaling.allocation.budget.CostOptimum``); else the cheapest reaching ``target`` (default:
    the data's default target), under the MAE FLOPs model (``scaling.allocation.mae.OptimalResult``, with the
    proportional-cost cross-check and the iso-target frontier) or under ``cost`` (a ``CostOptimum``)."""
    question: Question = AtBudget(budget, bounds) if budget is not None else Cheapest(bounds, frontier_rows)
    rep = project(fit, target, [question], cost=cost, passes=passes, training_length=training_length, seed=seed)
    return rep.budget if budget is not None else rep.optimal

