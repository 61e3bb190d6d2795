"""Quantities derived from each bootstrap resample's fit: every question's answer evaluated on every refitted
resample, so that each answer gets an interval. One builder per question (``scale_quantities``,
``solve_quantities``, ``at_quantities``, ``optimal_quantities``, ``cheapest_quantities``,
``budget_quantities``) and the target's own event (``target_events``); ``projection_quantities`` combines
the projection ones, as the figures and ``scaling compare`` ask them.

``scaling.uncertainty.bootstrap.bootstrap(..., derived=...)`` calls the callback once per resample (and once
on the full data for the estimate). Values are ``+inf`` where the target is not reached, so "needed"
quantities are unbounded there; the reference point and the compute model are those of the full data in
every resample, so each quantity answers the same question.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scaling.allocation.budget import best_at_budget, cheapest
from scaling.allocation.mae import optimal_numerical
from scaling.core.direction import direction
from scaling.questions.projection import Projection, project_at, project_axis, project_scale
from scaling.uncertainty.bootstrap import Derived, DerivedFn, combine


def _flops(p: Projection) -> float:
    return p.compute.flops if p.compute is not None else math.nan


def target_events(target: float) -> DerivedFn:
    """``ceiling_passes_target``: the form's limit as every axis grows passes the target (a form without a
    ceiling counts as passing)."""

    def fn(f: Any) -> Derived:
        c = f.ceiling
        return Derived({}, {"ceiling_passes_target": c is None or direction(f.kind).meets_one(c, target)})

    return fn


def scale_quantities(target: float, *, reference: Mapping[str, float], exponents: Mapping[str, float] | None = None,
                     compute: Any = None) -> DerivedFn:
    """``scale.factor``, ``scale.<axis>`` and (with a compute model) ``scale.flops``; ``scale.reachable``."""

    def fn(f: Any) -> Derived:
        p = project_scale(f, target, exponents=exponents, reference=reference, compute=compute)
        ok = p.reachable and p.point is not None
        values: dict[str, float] = {"scale.factor": p.scale_factor if ok and p.scale_factor else math.inf}
        values |= {f"scale.{a}": p.point[a] if ok and p.point else math.inf for a in f.axes}
        if compute is not None:
            values["scale.flops"] = _flops(p) if ok else math.inf
        return Derived(values, {"scale.reachable": ok})

    return fn


def solve_quantities(target: float, axis: str, *, reference: Mapping[str, float], compute: Any = None) -> DerivedFn:
    """``solve.<axis>`` and (with a compute model) ``solve.flops``; ``solve.reachable``."""

    def fn(f: Any) -> Derived:
        p = project_axis(f, target, axis, fixed=reference, compute=compute)
        ok = p.reachable and p.point is not None
        values = {f"solve.{axis}": p.point[axis] if ok else math.inf}  # type: ignore[index]
        if compute is not None:
            values["solve.flops"] = _flops(p) if ok else math.inf
        return Derived(values, {"solve.reachable": ok})

    return fn


def at_quantities(point: Mapping[str, float], target: float | None = None) -> DerivedFn:
    """``at.predicted``; with a target, ``at.meets_target``."""

    def fn(f: Any) -> Derived:
        p = project_at(f, point, target=target, compute=None)
        events = {} if target is None else {"at.meets_target": bool(p.reachable)}
        return Derived({"at.predicted": float(p.predicted)}, events)  # type: ignore[arg-type]

    return fn


def optimal_quantities(target: float, cost: Any, bounds: Mapping[str, tuple[float, float]],
                       start: Mapping[str, float] | None) -> DerivedFn:
    """The MAE compute-optimal allocation on each resample (warm-started from the full-data optimum):
    ``optimal.<axis>``, ``optimal.flops``; ``optimal.reachable``."""

    def fn(f: Any) -> Derived:
        alloc = optimal_numerical(f, target, cost, bounds, starts=[start] if start else [], n_random=2,
                                  generic_if_needed=True)
        values = {f"optimal.{a}": alloc.point[a] if alloc.point else math.inf for a in f.axes}
        values["optimal.flops"] = alloc.cost if alloc.cost is not None else math.inf
        return Derived(values, {"optimal.reachable": alloc.reachable})

    return fn


def cheapest_quantities(target: float, cost: Any, bounds: Mapping[str, tuple[float, float]],
                        start: Mapping[str, float] | None) -> DerivedFn:
    """The cheapest point reaching the target under a named cost: ``cheapest.<axis>``, ``cheapest.cost``
    (+inf where it is not reached within the bounds); ``cheapest.reachable``."""

    def fn(f: Any) -> Derived:
        a = cheapest(f, target, cost, bounds, starts=[start] if start else [], n_random=1)
        values = {f"cheapest.{ax}": a.point[ax] if a.point else math.inf for ax in f.axes}
        values["cheapest.cost"] = a.cost if a.cost is not None else math.inf
        return Derived(values, {"cheapest.reachable": a.reachable})

    return fn


def budget_quantities(budget: float, cost: Any, bounds: Mapping[str, tuple[float, float]],
                      start: Mapping[str, float] | None) -> DerivedFn:
    """The best point at a cost: ``budget.<axis>``, ``budget.predicted`` (NaN where none fits the budget)."""

    def fn(f: Any) -> Derived:
        b = best_at_budget(f, budget, cost, bounds, starts=[start] if start else [], n_random=1)
        values = {f"budget.{ax}": b.point[ax] if b.point else math.nan for ax in f.axes}
        values["budget.predicted"] = b.predicted if b.predicted is not None else math.nan
        return Derived(values, {})

    return fn


def projection_quantities(
    target: float | None,
    *,
    reference: Mapping[str, float],
    at: Mapping[str, float] | None = None,
    solve_axis: str | None = None,
    scale: bool = True,
    exponents: Mapping[str, float] | None = None,
    compute: Any = None,
) -> DerivedFn:
    """The projections at once (the figures' and ``scaling compare``'s questions): ``at.predicted`` at
    ``at``; with a target, ``ceiling_passes_target`` and, where asked, the scale and solve quantities."""
    parts: list[DerivedFn | None] = [None if at is None else at_quantities(at, target)]
    if target is not None:
        parts.append(target_events(target))
        if scale:
            parts.append(scale_quantities(target, reference=reference, exponents=exponents, compute=compute))
        if solve_axis is not None:
            parts.append(solve_quantities(target, solve_axis, reference=reference, compute=compute))
    return combine(*parts) or (lambda f: Derived())
