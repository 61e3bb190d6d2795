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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from scaling import fitting as study
from scaling.compute.costs import CostModel, cost_model
from scaling.compute.training_length import TrainingLength
from scaling.compute.training_length import parse as parse_training_length
from scaling.core import checks, work
from scaling.core.targets import Target, resolve_target
from scaling.data.tables import is_runs_frame, load_runs
from scaling.defaults import DEFAULT_FORM, DEFAULT_LEVELS, DEFAULT_TARGET, PAPER_SCENARIO
from scaling.design.candidates import Candidate, is_runs_grid, load_candidates
from scaling.design.core import Interval, Preposterior, Quantity, after_all, flops_along_scale, quantity_fn
from scaling.design.result import CandidateScore, SuggestResult
from scaling.errors import ScalingError
from scaling.forms import get_form
from scaling.forms.result import FitResult
from scaling.selection.backtest import DEFAULT_LEVEL_TOL, seed_noise
from scaling.uncertainty.bootstrap import check_levels
from scaling.uncertainty.resampling import resolve_group

Progress = Callable[[str, int, int], None]
Shown = Callable[[Interval], tuple[tuple[float, float], float]]  # an interval -> its bounds and width as shown
METHOD = ("preposterior analysis: outcomes simulated from the bootstrap fits plus seed-to-seed noise (antithetic "
          "pairs), every resample refitted warm with the run added (Poisson(1) copies, common random numbers)")


def _resolve_fit(runs_or_fit: FitResult | pd.DataFrame | None, target: str | float | Target, form: str,
                 metric: str | None, y: str | None, axes: Sequence[str] | None,
                 kind: str) -> tuple[FitResult, Target]:
    """The fit to suggest runs for (given, or fitted here with ``form``) and the target, named in its metric."""

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


def _cost(fit: FitResult, frame: pd.DataFrame, cost: str | None) -> CostModel | None:
    """The cost model of candidates and of the projection's FLOPs (None on the run database: the MAE model)."""

    if is_runs_grid(frame) and cost in (None, "mae"):
        return None
    if cost is None:
        raise ScalingError("candidates on this table need a cost model (--cost, cost=): '6nd' (C = 6 N D over the "
                           "first two axes) or an expression of the axes such as '6*params*tokens'")
    return cost_model(cost, fit.axes)


@dataclass(frozen=True)
class _Problem:
    """What a suggestion is about: the fit and its data, the quantity, how runs are priced, the seed noise."""

    fit: FitResult
    target: Target
    frame: pd.DataFrame  # the fit's data
    cost: CostModel | None  # None on the run database (the MAE FLOPs model under ``training``)
    training: TrainingLength | None
    at: Mapping[str, float] | None  # the point of question 'at'
    value: Quantity
    sigma: float  # seed-to-seed noise of y
    sigma_source: str
    group: str | tuple[str, ...] | None  # the bootstrap's groups

    @property
    def on_runs(self) -> bool:
        return is_runs_grid(self.frame)


def _problem(fit: FitResult, tgt: Target, *, question: str, at: Mapping[str, float] | None,
             exponents: Mapping[str, float] | None, cost: str | None, training_length: str | None,
             passes: float | None, group: str | Sequence[str] | None) -> _Problem:
    """The fit's data, cost model, training length, quantity (``quantity_fn``), seed noise and bootstrap groups."""

    frame = fit.data.reset_index(drop=True)  # type: ignore[union-attr]  # _resolve_fit returns fits with data
    on_runs = is_runs_grid(frame)
    model = _cost(fit, frame, cost)
    rule = parse_training_length(training_length, frame if on_runs else None, passes=passes)
    if question == "at" and at is None:
        at = PAPER_SCENARIO if on_runs else {a: float(pd.to_numeric(frame[a]).max()) for a in fit.axes}
    elif question == "at" and at is not None:
        at = checks.point(at, fit.axes, "the point of question 'at'")
    value = quantity_fn(fit, question, tgt.value, at, exponents)
    sigma, sigma_source = seed_sigma(fit, frame)
    grp, _ = resolve_group(frame, group)
    return _Problem(fit, tgt, frame, model, rule, at, value, sigma, sigma_source, grp)


@dataclass(frozen=True)
class _Pool:
    """The candidates to rank (priced, within the budget) and what loading and filtering them noted."""

    kept: list[Candidate]
    n_all: int  # loaded, before filtering
    over: int  # left out for costing more than the budget
    notes: list[str]


def _candidate_pool(spec: str | Path | pd.DataFrame | Sequence[Candidate] | None, p: _Problem,
                    budget: float | None, sizes: tuple[int, int, int]) -> _Pool:
    """Load the candidates (their number bounded first, with the work of scoring them: ``sizes`` is
    resamples, outcomes, workers); leave out those without a FLOPs estimate and those over the budget."""

    n_boot, n_outcomes, workers = sizes

    def bounded(n: int) -> None:  # building them shows nothing; scoring them shows progress
        work.check(work.candidates(n, run_database=p.on_runs))
        work.check(work.suggestion(n, n_boot, n_outcomes, len(p.frame), workers=workers))

    cands = load_candidates(spec, p.frame, p.fit.axes, p.cost, p.training, check=bounded)
    n_all = len(cands)
    notes: list[str] = []
    if p.on_runs and p.cost is None and p.training is not None:
        notes.append(f"training length: {p.training.describe()}")
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
    return _Pool(cands, n_all, len(over), notes)


@dataclass(frozen=True)
class _Measure:
    """How the quantity's intervals are reported: what it is, its unit, its estimate now, and ``shown``."""

    quantity: str
    unit: str
    estimate: float
    shown: Shown


def _measure(p: _Problem, question: str, exponents: Mapping[str, float] | None) -> _Measure:
    """How intervals are shown: 'scale' in FLOPs (widths in decades), 'at' in accuracy points or y units."""

    fit = p.fit
    if question == "scale":
        to_flops = flops_along_scale(fit, p.cost, exponents, p.training)

        def in_flops(iv: Interval) -> tuple[tuple[float, float], float]:
            lo, hi = to_flops(iv.lower), to_flops(iv.upper)
            width = math.log10(hi) - math.log10(lo) if lo > 0 and hi > 0 else math.nan
            return (lo, hi), width

        return _Measure(f"pretraining FLOPs to reach {p.target.name} scaling every axis", "decades of FLOPs",
                        to_flops(p.value(fit)), in_flops)
    scale = fit.direction.scale

    def as_predicted(iv: Interval) -> tuple[tuple[float, float], float]:
        return (iv.lower, iv.upper), scale * iv.width

    assert p.at is not None  # quantity_fn refuses question 'at' without a point
    unit = "accuracy points" if fit.direction.is_fraction else f"{fit.y} units"
    quantity = "prediction at " + ", ".join(f"{a}={p.at[a]:g}" for a in fit.axes)
    return _Measure(quantity, unit, p.value(fit), as_predicted)


def _rank(pre: Preposterior, cands: Sequence[Candidate], shown: Shown, width_before: float, *, workers: int,
          progress: Progress | None) -> tuple[CandidateScore, ...]:
    """Each candidate's expected interval after training it, ranked by shrinkage per FLOP (best first)."""

    scored: list[tuple[Candidate, tuple[float, float], float, int]] = []
    tick = None if progress is None else (lambda done, total: progress("suggest", done, total))
    for c, iv in zip(cands, after_all(pre, [c.point for c in cands], workers=workers, progress=tick), strict=True):
        after, width = shown(iv)
        scored.append((c, after, width, iv.n_ok))

    def key(item: tuple[Candidate, tuple[float, float], float, int]) -> float:
        v = (width_before - item[2]) / item[0].flops
        return -v if math.isfinite(v) else math.inf

    scored.sort(key=key)
    return tuple(CandidateScore(r, c.label, c.point, c.flops, c.beyond, c.run, after, width, width_before - width,
                                (width_before - width) / c.flops, n_ok)
                 for r, (c, after, width, n_ok) in enumerate(scored, start=1))


def _notes(p: _Problem, pool: _Pool, width_before: float, budget: float | None, n_boot: int) -> list[str]:
    """What the result says about itself beyond the candidates' own notes: unbounded interval, budget, few
    resamples, terms the warm refits keep dropped."""

    notes = list(pool.notes)
    if not math.isfinite(width_before):
        notes.append("the interval before is unbounded (the target is unreachable in more than the tail share of "
                     "resamples): shrinkage cannot be measured; use question='at' or another form")
    if pool.over:
        notes.append(f"{pool.over} of {pool.n_all} candidates cost more than the budget of {budget:g} FLOPs")
    if n_boot < 100:
        notes.append(f"only {n_boot} resamples: the percentile bounds are noisy (try 200 or more)")
    dropped = [name for name in get_form(p.fit.form).param_names(p.fit.axes) if name not in p.fit.params]
    if dropped:  # the warm refits solve for the terms the current fit kept
        notes.append(f"warm refits keep the terms of the current fit: {', '.join(dropped)} (aliased now) stay dropped "
                     "after a run")
    return notes


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
    budget = None if budget is None else checks.positive(budget, "the budget (FLOPs)")
    top, seed = checks.count(top, "top"), checks.seed(seed)
    n_boot, n_outcomes = checks.count(n_boot, "n_boot", minimum=20), checks.count(n_outcomes, "n_outcomes")
    (lv,) = check_levels([level])
    fit, tgt = _resolve_fit(runs_or_fit, target, form, metric, y, axes, kind)
    p = _problem(fit, tgt, question=question, at=at, exponents=exponents, cost=cost,
                 training_length=training_length, passes=passes, group=group)
    pool = _candidate_pool(candidates, p, budget, (n_boot, n_outcomes, workers))
    pre = Preposterior(fit, p.frame, p.value, n_boot=n_boot, seed=seed, level=lv, sigma=p.sigma, group=p.group,
                       n_outcomes=n_outcomes, warm=warm)
    m = _measure(p, question, exponents)
    before, width_before = m.shown(pre.before)
    scores = _rank(pre, pool.kept, m.shown, width_before, workers=workers, progress=progress)
    return SuggestResult(
        target=tgt, form=fit.form, question=question, quantity=m.quantity, unit=m.unit, level=lv, n_boot=n_boot,
        n_outcomes=len(pre.draws), seed=seed, sigma=p.sigma, sigma_source=p.sigma_source, before=before,
        width_before=width_before, estimate=m.estimate, scores=scores, n_candidates=pool.n_all, budget=budget,
        over_budget=pool.over, top=top, method=METHOD, notes=tuple(_notes(p, pool, width_before, budget, n_boot)),
        seconds=time.perf_counter() - t0, refits=pre.refits, fit=fit, grid=p.frame,
    )
