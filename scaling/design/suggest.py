"""What to train next: rank candidate runs by the expected shrinkage of a projection's interval per FLOP.

    import scaling
    res = scaling.suggest(target="human-top5", form="logit1", n_boot=200, seed=0)
    print(res.summary()); res.to_frame(); res.plot()
    scaling.write_configs(res, "next-runs/", top=3)        # a `scaling train point` config for each

Each candidate (``scaling.design.candidates``: the grid's neighbours one step beyond along each axis and jointly,
a CSV file or a grid spec) is scored by a preposterior analysis (``scaling.design.core``): its outcome is
simulated from the current bootstrap fits plus seed-to-seed noise, every resample is refitted warm with
the run added, and the projection's interval is measured again. The seed-to-seed noise is the pooled
standard deviation across replicate subset seeds of the grid (runs that share every axis level; as
``scaling backtest``), or the fit's residual RMSE when the data have no replicates; the result says which.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from scaling import fitting as study
from scaling.compute.costs import cost_model
from scaling.compute.flops import pretrain_compute
from scaling.compute.training_length import TrainingLength
from scaling.compute.training_length import parse as parse_training_length
from scaling.core.targets import Target, resolve_target
from scaling.data.tables import is_runs_frame, load_runs
from scaling.defaults import DEFAULT_FORM, DEFAULT_LEVELS, DEFAULT_TARGET, PAPER_SCENARIO
from scaling.design.candidates import Candidate, is_runs_grid, load_candidates
from scaling.design.core import Interval, Preposterior, after_all, quantity_fn
from scaling.design.result import CandidateScore, SuggestResult
from scaling.errors import ScalingError
from scaling.forms import get_form
from scaling.forms.result import FitResult
from scaling.questions.projection import reference_point
from scaling.selection.backtest import DEFAULT_LEVEL_TOL, seed_noise
from scaling.uncertainty.bootstrap import check_levels
from scaling.uncertainty.resampling import resolve_group

Progress = Callable[[str, int, int], None]
METHOD = ("preposterior analysis: outcomes simulated from the bootstrap fits plus seed-to-seed noise (antithetic "
          "pairs), every resample refitted warm with the run added (Poisson(1) copies, common random numbers)")


def _resolve(runs_or_fit: FitResult | pd.DataFrame | None, target: str | float | Target, form: str,
             metric: str | None, y: str | None, axes: Sequence[str] | None, kind: str) -> tuple[FitResult, Target]:

    def named(fit: FitResult) -> Target:
        if isinstance(target, Target):
            return target
        own = fit.direction.target_metric(fit.source.get("metric"), fit.y)
        return resolve_target(str(target), metric=metric or own, eval_set=fit.source.get("eval_set"), kind=fit.kind)

    if isinstance(runs_or_fit, FitResult):
        if runs_or_fit.data is None:
            raise ScalingError("this fit carries no data (fit it with scaling.fit to suggest runs for it)")
        return runs_or_fit, named(runs_or_fit)
    if runs_or_fit is not None and not is_runs_frame(runs_or_fit):
        fit = study.fit(runs_or_fit, form, y=y, axes=axes, kind=kind)
        return fit, named(fit)
    tgt = target if isinstance(target, Target) else resolve_target(str(target), metric=metric, kind=kind)
    frame = runs_or_fit if runs_or_fit is not None else load_runs(metric=tgt.metric, protocol=tgt.protocol,
                                                                   eval_set=tgt.eval_set)
    return study.fit(frame, form, metric=tgt.metric, axes=axes, kind=kind), tgt


def seed_sigma(fit: FitResult, frame: pd.DataFrame) -> tuple[float, str]:
    """Seed-to-seed noise of y: pooled SD across replicates (same level of every axis), else the fit's RMSE."""

    noise = seed_noise(frame, fit.y, fit.axes, DEFAULT_LEVEL_TOL if is_runs_grid(frame) else 0.0)
    if noise.sigma is not None and noise.sigma > 0:
        return noise.sigma, (f"pooled SD across replicate subset seeds: {noise.n_groups} replicated "
                             f"configurations, {noise.dof} dof")
    return float(fit.stats["rmse"]), "residual RMSE of the fit (the data have no replicates)"


def _cost(fit: FitResult, frame: pd.DataFrame, cost: str | None) -> Any:
    """The cost model of candidates and of the projection's FLOPs (None on the run database: the MAE model)."""

    if is_runs_grid(frame) and cost in (None, "mae"):
        return None
    if cost is None:
        raise ScalingError("candidates on this table need a cost model (--cost, cost=): '6nd' (C = 6 N D over the "
                           "first two axes) or an expression of the axes such as '6*params*tokens'")
    return cost_model(cost, fit.axes)


def _flops_along_scale(fit: FitResult, cost: Any, exponents: Mapping[str, float] | None,
                       training: TrainingLength | None) -> Callable[[float], float]:
    """FLOPs of the 'scale every axis' point at log10 k (as ``scaling.project`` prices it)."""

    ref = reference_point(fit)
    w = {a: 1.0 for a in fit.axes} | dict(exponents or {})
    if cost is None and training is None:
        raise ScalingError("the run database grid lacks samples_seen: no FLOPs model for the projection")

    def flops(log_k: float) -> float:
        if not math.isfinite(log_k):
            return math.inf if log_k > 0 else math.nan
        point = {a: ref[a] * 10.0 ** (log_k * w[a]) for a in fit.axes}
        if cost is not None:
            return float(cost.cost(point).ravel()[0])

        a = training.at(point)  # type: ignore[union-attr]
        try:
            return pretrain_compute(point["n_params"], point["data_hours"], point["image_px"], passes=a.passes,
                                    mask_ratio=a.mask_ratio, patch_px=a.patch_px).flops
        except ValueError:
            return math.nan

    return flops


def suggest(
    runs_or_fit: FitResult | pd.DataFrame | None = None,
    target: str | float | Target = DEFAULT_TARGET,
    *,
    form: str = DEFAULT_FORM,
    metric: str | None = None,
    question: str = "scale",
    at: Mapping[str, float] | None = None,
    exponents: Mapping[str, float] | None = None,
    budget: float | None = None,
    candidates: str | Path | pd.DataFrame | Sequence[Candidate] | None = None,
    n_boot: int = 200,
    n_outcomes: int = 2,
    seed: int = 0,
    top: int = 5,
    level: float = DEFAULT_LEVELS[0],
    group: str | Sequence[str] | None = "auto",
    cost: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    training_length: str | None = None,
    passes: float | None = None,
    warm: bool = True,
    workers: int = 1,
    progress: Progress | None = None,
) -> SuggestResult:
    """Rank candidate runs by the expected shrinkage of the projection's ``level`` interval per FLOP.

    ``runs_or_fit``: a ``scaling.fit`` result, a run-database frame (fitted with ``form`` on the target's
    metric; default the shipped grid) or any table (``y``, ``axes``, ``kind``, and ``cost``: '6nd' or an
    expression of the axes). ``question``: 'scale' (the FLOPs needed to reach ``target`` scaling every axis
    of the largest trained point, the study's question; widths in decades of FLOPs) or 'at' (the prediction
    at ``at``, default the paper's scenario on the run database; widths in accuracy points or y units).
    ``candidates``: None (the grid's neighbours), a CSV path, a grid spec ('arch=vit_h14;data_hours=5000,
    50000'), a DataFrame of candidate rows or a list of ``Candidate``. ``budget``: a cap on a candidate's
    pretraining FLOPs, priced as ``scaling.project`` and ``scaling.plan`` price a point (``training_length``:
    'grid' by default, 'passes=P' or 'images=N'; ``passes=P`` for short).
    ``n_boot`` resamples, ``n_outcomes`` simulated outcomes per candidate; ``warm=False``
    refits every resample from scratch (the benchmark's baseline); ``workers`` > 1 forks processes (same
    results).
    """

    t0 = time.perf_counter()
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise ScalingError(f"the budget must be a positive number of FLOPs; got {budget:g}")
    if top < 1:
        raise ScalingError(f"top must be at least 1; got {top}")
    (lv,) = check_levels([level])
    fit, tgt = _resolve(runs_or_fit, target, form, metric, y, axes, kind)
    frame = fit.data.reset_index(drop=True)  # type: ignore[union-attr]
    on_runs = is_runs_grid(frame)
    model = _cost(fit, frame, cost)
    rule = parse_training_length(training_length, frame if on_runs else None, passes=passes)
    if question == "at" and at is None:
        at = PAPER_SCENARIO if on_runs else {a: float(pd.to_numeric(frame[a]).max()) for a in fit.axes}
    value = quantity_fn(fit, question, tgt.value, at, exponents)
    sigma, sigma_source = seed_sigma(fit, frame)
    grp, _ = resolve_group(frame, group)

    cands = load_candidates(candidates, frame, fit.axes, model, rule)
    n_all = len(cands)
    notes: list[str] = []
    if on_runs and model is None and rule is not None:
        notes.append(f"training length: {rule.describe()}")
    corpus = [c for c in cands if c.run.get("beyond_corpus")]
    if corpus:
        notes.append(f"{len(corpus)} candidates need more video than the corpus holds "
                     f"({corpus[0].run.get('corpus_hours') or 0:,.0f} h): a new corpus, no config is written for them")
    nan_cost = [c for c in cands if not (math.isfinite(c.flops) and c.flops > 0)]
    if nan_cost:
        notes.append(f"{len(nan_cost)} candidates without a FLOPs estimate left out ({nan_cost[0].label}, ...)")
    cands = [c for c in cands if math.isfinite(c.flops) and c.flops > 0]
    over = [c for c in cands if budget is not None and c.flops > budget]
    cands = [c for c in cands if c not in over]
    if not cands:
        raise ScalingError(f"no candidate within the budget of {budget:g} FLOPs (the cheapest of {n_all} costs "
                           f"{min(c.flops for c in over):.3g})" if over else "no candidates to rank")
    pre = Preposterior(fit, frame, value, n_boot=n_boot, seed=seed, level=lv, sigma=sigma, group=grp,
                       n_outcomes=n_outcomes, warm=warm)
    if question == "scale":
        to_flops = _flops_along_scale(fit, model, exponents, rule)

        def shown(iv: Interval) -> tuple[tuple[float, float], float]:
            lo, hi = to_flops(iv.lower), to_flops(iv.upper)
            width = math.log10(hi) - math.log10(lo) if lo > 0 and hi > 0 else math.nan
            return (lo, hi), width

        unit, quantity = "decades of FLOPs", f"pretraining FLOPs to reach {tgt.name} scaling every axis"
        estimate = to_flops(value(fit))
    else:
        scale = fit.direction.scale

        def shown(iv: Interval) -> tuple[tuple[float, float], float]:
            return (iv.lower, iv.upper), scale * iv.width

        unit = "accuracy points" if fit.direction.is_fraction else f"{fit.y} units"
        quantity = "prediction at " + ", ".join(f"{a}={at[a]:g}" for a in fit.axes)  # type: ignore[index]
        estimate = value(fit)
    before, width_before = shown(pre.before)
    if not math.isfinite(width_before):
        notes.append("the interval before is unbounded (the target is unreachable in more than the tail share of "
                     "resamples): shrinkage cannot be measured; use question='at' or another form")
    scored: list[tuple[Candidate, tuple[float, float], float, int]] = []
    tick = None if progress is None else (lambda done, total: progress("suggest", done, total))
    for c, iv in zip(cands, after_all(pre, [c.point for c in cands], workers=workers, progress=tick), strict=True):
        after, width = shown(iv)
        scored.append((c, after, width, iv.n_ok))

    def key(item: tuple[Candidate, tuple[float, float], float, int]) -> float:
        v = (width_before - item[2]) / item[0].flops
        return -v if math.isfinite(v) else math.inf

    scored.sort(key=key)
    scores = tuple(CandidateScore(r, c.label, c.point, c.flops, c.beyond, c.run, after, width, width_before - width,
                                  (width_before - width) / c.flops, n_ok)
                   for r, (c, after, width, n_ok) in enumerate(scored, start=1))
    if over:
        notes.append(f"{len(over)} of {n_all} candidates cost more than the budget of {budget:g} FLOPs")
    if n_boot < 100:
        notes.append(f"only {n_boot} resamples: the percentile bounds are noisy (try 200 or more)")
    dropped = [p for p in get_form(fit.form).param_names(fit.axes) if p not in fit.params]
    if dropped:  # the warm refits solve for the terms the current fit kept
        notes.append(f"warm refits keep the terms of the current fit: {', '.join(dropped)} (aliased now) stay dropped "
                     "after a run")
    return SuggestResult(
        target=tgt, form=fit.form, question=question, quantity=quantity, unit=unit, level=lv, n_boot=n_boot,
        n_outcomes=len(pre.draws), seed=seed, sigma=sigma, sigma_source=sigma_source, before=before,
        width_before=width_before, estimate=estimate, scores=scores, n_candidates=n_all, budget=budget,
        over_budget=len(over), top=top, method=METHOD, notes=tuple(notes), seconds=time.perf_counter() - t0,
        refits=pre.refits, fit=fit, grid=frame,
    )
