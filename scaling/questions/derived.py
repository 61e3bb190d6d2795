"""Quantities derived from each bootstrap resample's fit: the projections of ``scaling.questions.projection`` (and the
compute-optimal allocation) evaluated on every refitted resample, so that each answer gets an interval.

``scaling.uncertainty.bootstrap.bootstrap(..., derived=projection_quantities(...))`` calls the function once per
resample (and once on the full data for the estimate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scaling.core.direction import direction


@dataclass(frozen=True)
class Derived:
    """What a callback computes on one fit: real values (intervals) and events (probabilities)."""

    values: dict[str, float] = field(default_factory=dict)
    events: dict[str, bool] = field(default_factory=dict)


DerivedFn = Callable[[Any], Derived]


def projection_quantities(
    target: float | None,
    *,
    reference: Mapping[str, float],
    at: Mapping[str, float] | None = None,
    solve_axis: str | None = None,
    scale: bool = True,
    exponents: Mapping[str, float] | None = None,
    compute: Any = None,
    optimal: Mapping[str, Any] | None = None,
) -> DerivedFn:
    """A ``derived`` callback for ``bootstrap``: the projections of ``scaling.questions.projection`` on each resample.

    Values (``+inf`` where the target is not reached, so "needed" quantities are unbounded there):
    ``at.predicted``; ``scale.factor``, ``scale.<axis>``, ``scale.flops``; ``solve.<axis>``, ``solve.flops``;
    ``optimal.<axis>``, ``optimal.flops`` (with ``optimal = {"cost": Cost, "bounds": ..., "start": point}``).
    Events: ``ceiling_passes_target`` (the form's limit as every axis grows passes the target; a form
    without a ceiling counts as passing), ``scale.reachable``, ``solve.reachable``, ``at.meets_target``,
    ``optimal.reachable``.
    The reference point (and the passes of the compute model) are those of the full data in every
    resample, so each quantity answers the same question.
    """
    from scaling.questions.projection import project_at, project_axis, project_scale

    def flops(p: Any) -> float:
        return p.compute.flops if p.compute is not None else math.nan

    def fn(f: Any) -> Derived:
        values: dict[str, float] = {}
        events: dict[str, bool] = {}
        if at is not None:
            p = project_at(f, at, target=target, compute=None)
            values["at.predicted"] = float(p.predicted)
            if target is not None:
                events["at.meets_target"] = bool(p.reachable)
        if target is None:
            return Derived(values, events)
        c = f.ceiling
        events["ceiling_passes_target"] = c is None or direction(f.kind).meets_one(c, target)
        if scale:
            p = project_scale(f, target, exponents=exponents, reference=reference, compute=compute)
            events["scale.reachable"] = p.reachable and p.point is not None
            values["scale.factor"] = p.scale_factor if events["scale.reachable"] else math.inf
            for a in f.axes:
                values[f"scale.{a}"] = p.point[a] if events["scale.reachable"] else math.inf
            if compute is not None:
                values["scale.flops"] = flops(p) if events["scale.reachable"] else math.inf
        if solve_axis is not None:
            p = project_axis(f, target, solve_axis, fixed=reference, compute=compute)
            events["solve.reachable"] = p.reachable and p.point is not None
            values[f"solve.{solve_axis}"] = p.point[solve_axis] if events["solve.reachable"] else math.inf
            if compute is not None:
                values["solve.flops"] = flops(p) if events["solve.reachable"] else math.inf
        if optimal is not None:
            from scaling.allocation.mae import optimal_numerical

            start = [optimal["start"]] if optimal.get("start") else []
            alloc = optimal_numerical(f, target, optimal["cost"], optimal["bounds"], starts=start, n_random=2,
                                      generic_if_needed=True)
            events["optimal.reachable"] = alloc.reachable
            for a in f.axes:
                values[f"optimal.{a}"] = alloc.point[a] if alloc.point else math.inf
            values["optimal.flops"] = alloc.cost if alloc.cost is not None else math.inf
        return Derived(values, events)

    return fn



def cost_quantities(cost: Any, bounds: Mapping[str, tuple[float, float]], *, target: float | None = None,
                    budget: float | None = None, starts: Mapping[str, Mapping[str, float]] | None = None) -> DerivedFn:
    """A ``derived`` callback for the budget questions of ``scaling.allocation.budget`` under ``cost``.

    Values: ``cheapest.<axis>`` and ``cheapest.cost`` (+inf where the target is not reached within the
    bounds), ``budget.<axis>`` and ``budget.predicted`` (NaN where no point fits the budget). Events:
    ``cheapest.reachable``. ``starts`` ('cheapest', 'budget' -> point) warm-start each resample from the
    full-data answer.
    """
    from scaling.allocation.budget import best_at_budget, cheapest

    given = dict(starts or {})

    def fn(f: Any) -> Derived:
        values: dict[str, float] = {}
        events: dict[str, bool] = {}
        if target is not None:
            start = [given["cheapest"]] if given.get("cheapest") else []
            a = cheapest(f, target, cost, bounds, starts=start, n_random=1)
            events["cheapest.reachable"] = a.reachable
            for ax in f.axes:
                values[f"cheapest.{ax}"] = a.point[ax] if a.point else math.inf
            values["cheapest.cost"] = a.cost if a.cost is not None else math.inf
        if budget is not None:
            start = [given["budget"]] if given.get("budget") else []
            b = best_at_budget(f, budget, cost, bounds, starts=start, n_random=1)
            for ax in f.axes:
                values[f"budget.{ax}"] = b.point[ax] if b.point else math.nan
            values["budget.predicted"] = b.predicted if b.predicted is not None else math.nan
        return Derived(values, events)

    return fn


def combine(*fns: DerivedFn | None) -> DerivedFn | None:
    """One callback computing what each of ``fns`` computes (None where none is given)."""
    given = [f for f in fns if f is not None]
    if not given:
        return None

    def fn(f: Any) -> Derived:
        values: dict[str, float] = {}
        events: dict[str, bool] = {}
        for g in given:
            out = g(f)
            values |= out.values
            events |= out.events
        return Derived(values, events)

    return fn
