"""``scaling.project`` with ``ensemble=`` and ``calibrated=``: the forms that apply weighted by how well they
predicted held-out larger runs, their bootstrap distributions mixed, and intervals widened by the track record.

    rep = scaling.project(runs, "human-top5", ensemble=True, calibrated=True, n_boot=1000)
    rep.combined.summary()          # the combined answer, each form's beside it, what the intervals are

Without either it is ``scaling.questions.workflow.project`` unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

from scaling.core.targets import Target
from scaling.data.dataset import Dataset
from scaling.ensemble.calibration import calibrated_intervals
from scaling.ensemble.combine import combine_reports
from scaling.ensemble.predictor import EnsembleFit, ensemble_residuals, form_residuals
from scaling.ensemble.spec import Ensemble
from scaling.errors import ScalingError
from scaling.fitting import fit_dataset
from scaling.forms.options import form_names
from scaling.forms.result import FitResult
from scaling.planning.planner import plan_answers
from scaling.questions.combined import CombinedAnswer
from scaling.questions.objects import Question
from scaling.questions.report import ProjectionReport
from scaling.questions.workflow import FitOptions, ProjectOptions, context, fit_for_question, keyword_questions
from scaling.questions.workflow import project as project_one
from scaling.selection.backtest import BacktestResult
from scaling.selection.backtest import backtest as run_backtest
from scaling.selection.conformal import ConformalScale, conformal_scale
from scaling.selection.weights import EnsembleWeights, pseudo_bma_weights, stacking_weights
from scaling.selection.workflow import options_for
from scaling.uncertainty.resampling import AUTO, Bootstrap, labelled

Progress = Callable[[str, int, int], None]
_FIT_KEYS = set(FitOptions.__annotations__)


def project(
    fit: FitResult | Any = None,
    target: str | float | Target | None = None,
    questions: Sequence[Question] | None = None,
    *,
    ensemble: Ensemble | bool | Sequence[str] | str | None = None,
    calibrated: bool = False,
    uncertainty: Bootstrap | None = None,
    training_length: str | None = None,
    passes: float | None = None,
    cost: str | None = None,
    figure: str | Path | None = None,
    plan: bool | Mapping[str, Any] = False,
    progress: Progress | None = None,
    **options: Unpack[ProjectOptions],
) -> ProjectionReport:
    """What scale (and compute) reaches ``target``? (``scaling.questions.workflow.project``), optionally
    answered by an ensemble of forms and with calibrated intervals.

    ``ensemble``: True (every form that applies), a list of forms, or an ``Ensemble``: the forms are
    backtested, weighted by stacking their held-out predictive densities, each bootstrapped (``uncertainty``
    or ``n_boot``; default 1,000 resamples) and their bootstrap distributions mixed; the report's
    ``combined`` carries the combined answer with each form's beside it. ``calibrated=True`` widens each
    answer's interval by split-conformal quantiles of the predictor's held-out errors at that distance
    beyond the data (``scaling.ensemble.calibration``); the report says which kind of interval it shows.
    The report's own table is the heaviest form's.
    """
    ens = Ensemble.of(ensemble)
    shared: dict[str, Any] = {"training_length": training_length, "passes": passes, "cost": cost}
    if ens is None and not calibrated:
        return project_one(fit, target, questions, uncertainty=uncertainty, figure=figure, plan=plan,
                           progress=progress, **shared, **options)
    if figure is not None:
        from scaling.plots.style import figure_format  # lazy: drawing (matplotlib) is optional

        figure_format(figure)
    base, tgt = fit_for_question(fit, target, options)
    sel = base.dataset
    if sel is None:
        raise ScalingError("an ensemble or a calibration backtests the data again: pass the data, or a fit "
                           "made by scaling.fit")
    spec = uncertainty or _bootstrap_of(options)
    rest = {k: v for k, v in options.items() if k not in _FIT_KEYS}
    members, bt, weights, weighting, notes = _members(base, sel, ens, options, progress)
    reports: dict[str, ProjectionReport] = {}
    for f in list(weights):
        reports[f] = project_one(members[f], tgt, questions, uncertainty=spec, progress=progress, **shared,
                                 **rest)  # type: ignore[arg-type]
    heaviest = max(weights, key=lambda f: weights[f])
    combined = combine_reports(reports, weights, method=str(weighting["method"]), weighting=weighting, notes=notes)
    if calibrated:
        combined = _calibrate(combined, reports[heaviest], members, weights, bt, questions, rest, shared)
    report = dataclasses.replace(reports[heaviest], combined=combined, figure=None if figure is None else str(figure))
    if plan:
        report = dataclasses.replace(report, plans=plan_answers(report, **(plan if isinstance(plan, Mapping) else {})))
    if figure is not None:
        report.save_figure(figure)
    return report


def _bootstrap_of(options: Mapping[str, Any]) -> Bootstrap:
    """The keyword form's bootstrap; the default 1,000 resamples when none is asked (mixing needs one)."""
    n_boot = options.get("n_boot") or Bootstrap().n_boot
    return Bootstrap.of(n_boot, seed=options.get("seed", 0), levels=options.get("levels"),
                        group=options.get("group", AUTO), workers=options.get("workers", 1))


def backtest_forms(sel: Dataset, names: Sequence[str], options: Mapping[str, Any],
                   progress: Progress | None = None) -> tuple[BacktestResult, dict[str, dict[str, Any]]]:
    """Backtest ``names`` on the dataset with its defaults; each form's fit options beside it."""
    opts, unavailable = options_for(names, sel, options.get("chance"), options.get("huber_delta"),
                                    options.get("alpha_max"))
    bt = run_backtest(sel.frame, names, y=sel.y, axes=sel.axes, kind=sel.kind, options=opts,
                      rolling_axis=sel.rolling_axis, level_tol=sel.level_tol, progress=labelled(progress, "backtest"),
                      unavailable=unavailable)
    return bt, opts


def ensemble_weights(bt: BacktestResult, min_weight: float, exclude: Sequence[str] = (),
                     method: str = "stacking") -> tuple[dict[str, float], EnsembleWeights]:
    """Stacking weights of the backtest's ranked forms on their common splits (leaving out ``exclude``),
    forms below ``min_weight`` dropped and the rest renormalised."""
    splits = [s for s in bt.common_splits if s not in exclude]
    if not bt.ranking or not splits:
        raise ScalingError("no held-out split is fitted by every form: no ensemble weights (fewer forms?)")
    residuals = {f: form_residuals(bt, f, splits)[0] for f in bt.ranking}
    weigh = stacking_weights if method == "stacking" else pseudo_bma_weights
    ew = weigh(residuals, {s: bt.split_weights[s] for s in splits})
    kept = {f: w for f, w in ew.weights.items() if w >= min_weight}
    total = sum(kept.values())
    return {f: w / total for f, w in sorted(kept.items(), key=lambda kv: -kv[1])}, ew


def _members(base: FitResult, sel: Dataset, ens: Ensemble | None, options: Mapping[str, Any],
             progress: Progress | None) -> tuple[dict[str, FitResult], BacktestResult, dict[str, float],
                                                 dict[str, Any], tuple[str, ...]]:
    """The forms that answer, fitted to the whole data, with their weights and where the weights came from."""
    if ens is None:
        bt, _ = backtest_forms(sel, [base.form], {**options, **base.fit_options}, progress)
        return ({base.form: base}, bt, {base.form: 1.0}, {"method": f"one form ({base.form})", "forms": [base.form],
                                                           "splits": [r.split for r in bt.results if r.ok]}, ())
    names = form_names(list(ens.forms) if ens.forms is not None else None)
    bt, opts = backtest_forms(sel, names, options, progress)
    weights, ew = ensemble_weights(bt, ens.min_weight, method=ens.method)
    notes = [f"left out of the ensemble: {f} (not ranked by the backtest)" for f in names if f not in bt.ranking]
    dropped = [f for f, w in ew.weights.items() if f not in weights]
    if dropped:
        notes.append(f"weight below {ens.min_weight:g}, left out: {', '.join(dropped)}")
    members = {f: fit_dataset(sel, f, **opts[f]) for f in weights}
    weighting = {**ew.to_dict(), "weights_before_pruning": ew.weights, "recommended": bt.recommended,
                 "backtest": bt.describe()["summary"]}
    return members, bt, weights, weighting, tuple(notes)


def conformal_of(bt: BacktestResult, weights: Mapping[str, float], exclude: Sequence[str] = ()) -> ConformalScale:
    """The predictor's conformal scale: one form over every split it fits, or the ensemble's weighted mean
    over the splits every member fits (leaving out ``exclude``)."""
    if len(weights) == 1:
        form = next(iter(weights))
        splits = [r.split for r in bt.results if r.form == form and r.ok and r.split not in exclude]
        res, dist = form_residuals(bt, form, splits)
        what = f"{form} on {len(splits)} held-out splits"
    else:
        splits = [s for s in bt.common_splits if s not in exclude]
        res, dist = ensemble_residuals(bt, weights, splits)
        what = f"the weighted mean of {len(weights)} forms on {len(splits)} held-out splits"
    return conformal_scale([res[s] for s in res], [dist[s] for s in res], what)


def _calibrate(combined: CombinedAnswer, main: ProjectionReport, members: Mapping[str, FitResult],
               weights: Mapping[str, float], bt: BacktestResult, questions: Sequence[Question] | None,
               rest: Mapping[str, Any], shared: Mapping[str, Any]) -> CombinedAnswer:
    """``combined`` with calibrated intervals on the quantities the held-out errors speak to."""
    fit = main.fit
    value = None if main.target is None else main.target.value
    asked = [q.resolved(fit) for q in (questions if questions is not None else keyword_questions(value, rest))]
    ctx = context(fit, value, asked, seed=rest.get("seed", 0), **shared)
    answers = [(q, q.answer(ctx)) for q in asked if q.key in ("at", "scale", "solve")]
    predictor: Any = (members[next(iter(weights))] if len(weights) == 1
                      else EnsembleFit(tuple(members[f] for f in weights), tuple(weights.values())))
    scale = conformal_of(bt, weights)
    boot = {k: q.intervals for k, q in combined.quantities.items()}
    cal = calibrated_intervals(answers, ctx, predictor, scale, combined.levels, fit.direction, boot)
    quantities = {k: dataclasses.replace(q, calibrated=cal.get(k)) for k, q in combined.quantities.items()}
    uncalibrated = [k for k in quantities if k not in cal]
    notes = combined.notes + ((f"bootstrap intervals only (no held-out counterpart): {', '.join(uncalibrated)}",)
                              if uncalibrated else ())
    return dataclasses.replace(combined, quantities=quantities, interval_kind=f"calibrated ({scale.describe()})",
                               notes=notes, weighting={**combined.weighting, "conformal": scale.to_dict()})
