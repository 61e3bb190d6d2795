"""The questions a projection asks of a fit, as objects. A projection is a loop over them.

    import scaling
    from scaling import At, AtBudget, Bootstrap, Cheapest, Scale, Solve
    rep = scaling.project(fit, "human-top5", [Scale(), Solve("data_hours"), At({"n_params": 2.5e9, ...})],
                          uncertainty=Bootstrap(n_boot=1000, seed=1))
    scaling.project(loss_fit, questions=[AtBudget(1e21)], cost="6nd")      # Chinchilla's question alone

Each question says whether it needs a target, answers from a fit and a ``Context`` (the target, the
largest trained point, the training-length rule that prices a run, the cost model), and lists the
quantities a bootstrap refits for it (``quantities``). Defaults that depend on the data (the axis solved
for, the evaluation point) come from the fit's ``Dataset``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np

from scaling.allocation import cheapest_allocation
from scaling.allocation.budget import CostOptimum, best_at_budget
from scaling.allocation.consistency import consistency_check
from scaling.allocation.mae import OptimalResult, flops_cost
from scaling.compute.costs import CostModel
from scaling.compute.training_length import TrainingLength
from scaling.defaults import ISOFLOP_BUDGET_TOL
from scaling.errors import ProjectionError
from scaling.forms.result import FitResult
from scaling.questions import derived
from scaling.questions.projection import Projection, project_at, project_axis, project_scale
from scaling.uncertainty.bootstrap import DerivedFn

Answer = Projection | OptimalResult | CostOptimum


@dataclass(frozen=True)
class Context:
    """What every question of one projection shares."""

    fit: FitResult
    target: float | None
    reference: dict[str, float]  # the largest trained point
    training: TrainingLength | None  # prices a run on the MAE FLOPs model (None off the run database's axes)
    cost: CostModel | None  # what an allocation minimises; a named cost also prices every answer
    priced_by_cost: bool = False  # the user named ``cost``: answers carry their cost under it
    seed: int = 0

    def require_target(self, question: Question) -> float:
        if self.target is None:
            raise ProjectionError(f"'{question.label}' asks what reaches a target: give a target (--target, target=)")
        return self.target

    def require_cost(self, question: Question) -> CostModel:
        if self.cost is None:
            raise ProjectionError("allocating compute on these axes needs a cost model: cost='6nd' (C = 6 N D over the "
                                  "first two axes) or an expression of the axes such as '6*params*tokens' (--cost)")
        return self.cost

    def priced(self, p: Projection) -> Projection:
        """``p`` with its cost under the named cost model in its details (the cost column and the JSON)."""
        if not self.priced_by_cost or self.cost is None or p.point is None:
            return p
        value = float(np.asarray(self.cost.cost(p.point)).ravel()[0])
        return replace(p, details={**p.details, "cost": {"model": self.cost.formula, "value": value}})


class Question(ABC):
    """One question a projection answers."""

    key: ClassVar[str]  # the prefix of its bootstrap quantities, and its name in the CLI ('scale', ...)
    needs_target: ClassVar[bool] = False

    @property
    @abstractmethod
    def label(self) -> str:
        """How the table names it ('scale every axis', 'solve data_hours', ...)."""

    def resolved(self, fit: FitResult) -> Question:
        """The question with its data-dependent defaults filled in from ``fit``'s dataset."""
        return self

    @abstractmethod
    def answer(self, ctx: Context) -> Answer:
        """The answer on the full data."""

    @abstractmethod
    def quantities(self, ctx: Context, answer: Answer) -> DerivedFn | None:
        """What a bootstrap refits on every resample for this question (None: nothing)."""


@dataclass(frozen=True)
class Scale(Question):
    """The smallest common factor k on every axis of the largest trained point (axis i by k**exponents[i])
    that reaches the target: the study's question."""

    exponents: Mapping[str, float] | None = None
    key: ClassVar[str] = "scale"
    needs_target: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return "scale every axis"

    def answer(self, ctx: Context) -> Projection:
        target = ctx.require_target(self)
        return ctx.priced(project_scale(ctx.fit, target, exponents=self.exponents, compute=ctx.training))

    def quantities(self, ctx: Context, answer: Answer) -> DerivedFn:
        return derived.scale_quantities(ctx.require_target(self), reference=ctx.reference, exponents=self.exponents,
                                        compute=ctx.training)


@dataclass(frozen=True)
class Solve(Question):
    """The value of one axis (default: the data's own, data hours on the run database) that reaches the
    target with the others at the largest trained point."""

    axis: str | None = None
    key: ClassVar[str] = "solve"
    needs_target: ClassVar[bool] = True

    def axis_of(self, fit: FitResult) -> str:
        if self.axis is not None:
            return self.axis
        return fit.dataset.solve_axis if fit.dataset is not None else fit.axes[-1]

    def resolved(self, fit: FitResult) -> Solve:
        return replace(self, axis=self.axis_of(fit))

    @property
    def label(self) -> str:
        return f"solve {self.axis}" if self.axis else "solve"

    def answer(self, ctx: Context) -> Projection:
        target = ctx.require_target(self)
        return ctx.priced(project_axis(ctx.fit, target, self.axis_of(ctx.fit), compute=ctx.training))

    def quantities(self, ctx: Context, answer: Answer) -> DerivedFn:
        return derived.solve_quantities(ctx.require_target(self), self.axis_of(ctx.fit), reference=ctx.reference,
                                        compute=ctx.training)


@dataclass(frozen=True)
class At(Question):
    """The prediction at a point (default: the data's evaluation point, the paper's 2.5B parameters,
    20,000 h, 952 px on the run database); whether it meets the target when there is one."""

    point: Mapping[str, float] | None = None
    key: ClassVar[str] = "at"

    def point_of(self, fit: FitResult) -> dict[str, float]:
        if self.point is not None:
            return dict(self.point)
        if fit.dataset is not None:
            return fit.dataset.evaluation_point
        return {a: float(fit.axis_ranges[a][1]) for a in fit.axes}

    def resolved(self, fit: FitResult) -> At:
        return replace(self, point=self.point_of(fit))

    @property
    def label(self) -> str:
        return "at point"

    def answer(self, ctx: Context) -> Projection:
        return ctx.priced(project_at(ctx.fit, self.point_of(ctx.fit), target=ctx.target, compute=ctx.training))

    def quantities(self, ctx: Context, answer: Answer) -> DerivedFn:
        return derived.at_quantities(self.point_of(ctx.fit), ctx.target)


@dataclass(frozen=True)
class Cheapest(Question):
    """The point reaching the target for the least cost within ``bounds`` (default: the smallest observed
    value of each axis to 1e6 x its largest, 8 x for image px). Under the MAE FLOPs model also the
    proportional-cost cross-check, the closed forms and the iso-target frontier (``frontier_rows``)."""

    bounds: Mapping[str, tuple[float, float]] | None = None
    frontier_rows: int = 9
    budget_column: str | None = None  # the IsoFLOP budgets of the consistency check (default: from the cost)
    budget_tol: float = ISOFLOP_BUDGET_TOL
    key: ClassVar[str] = "cheapest"
    needs_target: ClassVar[bool] = True

    @property
    def label(self) -> str:
        return "cheapest"

    def answer(self, ctx: Context) -> OptimalResult | CostOptimum:
        out = cheapest_allocation(ctx.fit, ctx.require_target(self), ctx.require_cost(self), self.bounds,
                                  frontier_rows=self.frontier_rows, seed=ctx.seed)
        if not isinstance(out, CostOptimum):  # the MAE model's answer (three axes): no IsoFLOP check
            return out
        return checked(out, ctx, self.bounds, self.budget_column, self.budget_tol)

    def quantities(self, ctx: Context, answer: Answer) -> DerivedFn:
        target = ctx.require_target(self)
        if isinstance(answer, OptimalResult):  # the MAE model: refit through its spline, as the answer was found
            assumptions = ctx.require_cost(self).assumptions
            return derived.optimal_quantities(target, flops_cost(assumptions, answer.bounds), answer.bounds,  # type: ignore[arg-type]
                                              answer.optimum.point)
        assert isinstance(answer, CostOptimum)
        return derived.cheapest_quantities(target, ctx.require_cost(self), answer.bounds, answer.point)


@dataclass(frozen=True)
class AtBudget(Question):
    """The best point (highest accuracy, lowest loss) whose cost is at most ``budget``, within ``bounds``:
    Chinchilla's question. Needs no target."""

    budget: float
    bounds: Mapping[str, tuple[float, float]] | None = field(default=None)
    budget_column: str | None = None  # the IsoFLOP budgets of the consistency check (default: from the cost)
    budget_tol: float = ISOFLOP_BUDGET_TOL
    key: ClassVar[str] = "budget"

    @property
    def label(self) -> str:
        return f"best at a cost of {self.budget:.3g}"

    def answer(self, ctx: Context) -> CostOptimum:
        out = best_at_budget(ctx.fit, self.budget, ctx.require_cost(self), self.bounds, seed=ctx.seed)
        return checked(out, ctx, self.bounds, self.budget_column, self.budget_tol)

    def quantities(self, ctx: Context, answer: Answer) -> DerivedFn:
        assert isinstance(answer, CostOptimum)
        return derived.budget_quantities(self.budget, ctx.require_cost(self), answer.bounds, answer.point)


def checked(answer: CostOptimum, ctx: Context, bounds: Mapping[str, tuple[float, float]] | None, column: str | None,
            tol: float) -> CostOptimum:
    """A parametric allocation under a named cost with its consistency check against the IsoFLOP vertices of
    the fitted data (``scaling.allocation.consistency``)."""
    if ctx.cost is None:
        return answer
    return replace(answer, consistency=consistency_check(ctx.fit, ctx.cost, budget_column=column, tol=tol,
                                                         bounds=bounds))


def default_questions(target: float | None, *, budget: float | None = None) -> list[Question]:
    """What a projection asks when the caller names no questions: with a target, scale, solve and at; with
    none, only what needs none (the prediction at the evaluation point; with a budget, just the budget)."""
    if target is not None:
        return [Scale(), Solve(), At()]
    return [] if budget is not None else [At()]
