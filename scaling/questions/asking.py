"""The questions ``scaling.project`` asks of a fit, and the inputs each needs: which target (the data's
own default, or none), which of scale / solve / at apply, what prices an answer (the MAE FLOPs model under
the training-length rule, or a named cost), the allocations, and the quantities a bootstrap refits.

Each question needs only its own inputs: a loss table has no default target, so with none given only the
prediction at a point and the best allocation at a budget are answered.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from scaling.core.targets import Target, resolve_target
from scaling.data.tables import is_runs_frame, load_runs
from scaling.defaults import DEFAULT_TARGET
from scaling.errors import ProjectionError, ScalingError
from scaling.forms.result import FitResult
from scaling.questions.projection import COMPUTE_AXES


def target_of(fit: FitResult, target: str | float | Target | None, metric: str | None, eval_set: str | None,
               protocol: str | None) -> Target | None:
    """The target of a question about ``fit``; with none given, the data's own default: human-top5 on the
    run database, none on any other table (a loss table never borrows an accuracy target)."""
    if isinstance(target, Target):
        return target
    if target is None:
        if fit.source.get("db") is None or fit.kind != "accuracy":
            return None
        target = DEFAULT_TARGET
    spec = target if isinstance(target, str) else repr(float(target))
    own = fit.source.get("metric") or (fit.y if fit.kind != "accuracy" else None)
    return resolve_target(spec, metric=metric or own, eval_set=eval_set or fit.source.get("eval_set"),
                          protocol=protocol, kind=fit.kind)


def fit_for_question(data: FitResult | pd.DataFrame | None, target: str | float | Target | None, *, form: str,
                      metric: str | None, eval_set: str | None, protocol: str | None, selection: str,
                      y: str | None, axes: Sequence[str] | None, kind: str, chance: float | None,
                      huber_delta: float | None, alpha_max: float | None) -> tuple[FitResult, Target | None]:
    """The fit a projection answers from (``data`` itself, or ``data`` fitted with ``form`` on the target's
    metric) and the target (``target_of``)."""
    from scaling.study import fit as study_fit  # the workflow fit (the study imports this module)

    options = {"y": y, "axes": axes, "kind": kind, "chance": chance, "huber_delta": huber_delta,
               "alpha_max": alpha_max}
    if isinstance(data, FitResult):
        return data, target_of(data, target, metric, eval_set, protocol)
    if data is not None and not is_runs_frame(data):  # any other table: the target is a value of its y
        result = study_fit(data, form, **options)  # type: ignore[arg-type]
        return result, target_of(result, target, metric, eval_set, protocol)
    spec = DEFAULT_TARGET if target is None else target
    tgt = spec if isinstance(spec, Target) else resolve_target(str(spec), metric=metric, eval_set=eval_set,
                                                                protocol=protocol, kind=kind)
    if data is None:
        data = load_runs(protocol=tgt.protocol, eval_set=tgt.eval_set, selection=selection, metric=tgt.metric)
    return study_fit(data, form, metric=tgt.metric, **options), tgt  # type: ignore[arg-type]


def questions_asked(mode: str, tgt: Target | None, budget: float | None, optimal: bool) -> tuple[str, ...]:
    """Which of scale, solve and at to answer: each question needs only its own inputs."""
    needs_target = {"scale": "scale every axis until the target is reached",
                    "solve": "solve an axis for the target"}
    if tgt is None:
        if mode in needs_target:
            raise ProjectionError(f"--mode {mode} asks to {needs_target[mode]}: give a target (--target, target=)")
        if optimal:
            raise ProjectionError("--optimal asks for the cheapest point reaching a target: give a target "
                                  "(--target, target=); --budget C alone asks for the best allocation at C")
        if mode == "all":
            return () if budget is not None else ("at",)  # --budget C alone: the best allocation at C
    return {"all": ("scale", "solve", "at"), "scale": ("scale",), "solve": ("solve",), "at": ("at",)}[mode]


def cost_model_of(result: FitResult, cost: str | None, on_runs: bool, optimal: bool, budget: float | None,
                rule: Any, ref: Mapping[str, float]) -> tuple[Any, Any]:
    """(the cost model a user named, or None for the MAE FLOPs model; the fixed compute assumptions of an
    allocation under the MAE model). What compute means: the MAE FLOPs model on the run database, else the
    cost the caller names."""
    from scaling.compute.costs import cost_model

    allocating = optimal or budget is not None
    spec = cost if cost is not None else ("mae" if on_runs else None)
    if allocating and spec is None:
        raise ScalingError("allocating compute on these axes needs a cost model: cost='6nd' (C = 6 N D over the "
                           "first two axes) or an expression of the axes such as '6*params*tokens' (--cost)")
    alloc = rule.for_allocation(ref) if allocating and rule is not None and set(COMPUTE_AXES) <= set(result.axes) \
        else None
    if spec is None or spec.strip().lower() == "mae":
        if spec is not None and allocating and alloc is None:
            raise ScalingError("the optimal allocation needs the compute model: axes n_params, data_hours, "
                               "image_px and passes over the data")
        return None, alloc
    return cost_model(spec, result.axes, assumptions=alloc), alloc


def priced(p: Any, model: Any) -> Any:
    """``p`` with its cost under ``model`` in its details (the cost column and the JSON)."""
    if p.point is None:
        return p
    value = float(np.asarray(model.cost(p.point)).ravel()[0])
    return dataclasses.replace(p, details={**p.details, "cost": {"model": model.formula, "value": value}})


def allocations(result: FitResult, tgt: Target | None, model: Any, alloc: Any, *, optimal: bool,
                 budget: float | None, bounds: Mapping[str, tuple[float, float]] | None, frontier_rows: int,
                 seed: int) -> tuple[Any, Any]:
    """The cheapest allocation reaching the target (``optimal``) and the best one at ``budget``."""
    opt: Any = None
    if optimal and model is None:
        from scaling.allocation.mae import optimal_allocation

        opt = optimal_allocation(result, tgt.value, alloc, bounds=bounds, frontier_rows=frontier_rows,  # type: ignore[union-attr]
                                 seed=seed)
    elif optimal:
        from scaling.allocation.budget import cheapest

        opt = cheapest(result, tgt.value, model, bounds, seed=seed)  # type: ignore[union-attr]
    at_budget = None
    if budget is not None:
        from scaling.allocation.budget import best_at_budget
        from scaling.compute.costs import cost_model

        at_budget = best_at_budget(result, budget, model or cost_model("mae", result.axes, assumptions=alloc),
                                   bounds, seed=seed)
    return opt, at_budget


def bootstrap_quantities(result: FitResult, value: float | None, ref: Mapping[str, float],
                          point: Mapping[str, float] | None, solve_axis: str | None, scale: bool,
                          exponents: Mapping[str, float] | None, compute: Any, opt: Any, alloc: Any, model: Any,
                          at_budget: Any, budget: float | None) -> Any:
    """The bootstrap's derived quantities: every answer of the report, refitted on each resample."""
    from scaling.questions.derived import combine, cost_quantities, projection_quantities

    opt_spec = None
    if opt is not None and model is None:
        from scaling.allocation.mae import flops_cost

        opt_spec = {"cost": flops_cost(alloc, opt.bounds), "bounds": opt.bounds, "start": opt.optimum.point}
    derived = projection_quantities(value, reference=ref, at=point, solve_axis=solve_axis, scale=scale,
                                    exponents=exponents, compute=compute, optimal=opt_spec)
    extra = None
    if model is not None or at_budget is not None:
        from scaling.compute.costs import cost_model

        priced = model or cost_model("mae", result.axes, assumptions=alloc)
        box = (at_budget or opt).bounds
        extra = cost_quantities(priced, box, target=value if (opt is not None and model is not None) else None,
                                budget=budget, starts={"cheapest": getattr(opt, "point", None),
                                                       "budget": getattr(at_budget, "point", None)})
    return combine(derived, extra)
