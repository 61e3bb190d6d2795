"""Allocation under any cost model (``scaling.compute.costs``) and any axes: the two questions of a compute budget.

- ``cheapest``: the point that reaches a target for the least cost (``--optimal --cost ...``);
- ``best_at_budget``: the point that is best (highest accuracy, lowest loss) at a given cost, Chinchilla's
  question (Hoffmann et al. 2022, arXiv 2203.15556: the loss-minimising N and D at fixed C).

Both work in log coordinates inside a bounds box (default: the smallest observed value of each axis to
1e6 x its largest, 8 x for image px), with SLSQP from several starts; where the answer sits on a bound it
says so. The MAE-specific answer with its closed forms and frontier stays in ``scaling.allocation.mae``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaling.allocation.box import Box, minimise
from scaling.allocation.mae import merge_bounds
from scaling.compute.allocations import at_bounds, predict_log
from scaling.compute.costs import CostModel
from scaling.core.direction import direction
from scaling.core.display import Text
from scaling.core.jsonable import JSONDict
from scaling.core.results import Result
from scaling.errors import ProjectionError

FEASIBLE_TOL = 1e-7


@dataclass(frozen=True)
class CostOptimum(Result):
    """The answer to one budget question."""

    question: str  # 'cheapest' (reach the target for the least cost) | 'budget' (best at the cost)
    cost_model: dict[str, Any]
    target: float | None
    budget: float | None
    reachable: bool
    point: dict[str, float] | None
    predicted: float | None
    cost: float | None
    bounds: dict[str, tuple[float, float]]
    at_bounds: tuple[str, ...] = ()
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # The law's N* against the IsoFLOP vertices of its data (scaling.allocation.consistency.ConsistencyCheck)
    consistency: Any = None

    def to_dict(self) -> JSONDict:
        return {"question": self.question, "cost_model": self.cost_model, "target": self.target,
                "budget": self.budget, "reachable": self.reachable, "point": self.point,
                "predicted": self.predicted, "cost": self.cost, "bounds": {a: list(b) for a, b in self.bounds.items()},
                "at_bounds": list(self.at_bounds), "reason": self.reason, "details": self.details,
                "consistency": None if self.consistency is None else self.consistency.to_dict()}

    def to_frame(self) -> pd.DataFrame:
        """One row per axis: the allocation and its bounds."""
        return pd.DataFrame({"value": {a: (self.point or {}).get(a, math.nan) for a in self.bounds},
                             "lower_bound": {a: b[0] for a, b in self.bounds.items()},
                             "upper_bound": {a: b[1] for a, b in self.bounds.items()}})

    def summary(self) -> Text:
        what = (f"cheapest point reaching {self.target:g}" if self.question == "cheapest"
                else f"best point at a cost of {self.budget:.4g}")
        head = f"{what} under cost {self.cost_model['formula']}"
        if not self.reachable or self.point is None:
            return Text(f"{head}: none ({self.reason})")
        lines = [head, self.to_frame().to_string(float_format=lambda v: f"{v:.4g}"),
                 f"predicted {self.predicted:.4g} for a cost of {self.cost:.4g}"]
        if self.at_bounds:
            lines.append(f"at bound(s): {', '.join(self.at_bounds)}; widen the bounds to see past them")
        if self.consistency is not None:
            lines.append(self.consistency.verdict)
        return Text("\n".join(lines))

    def __repr__(self) -> str:
        pt = "none" if self.point is None else ", ".join(f"{k}={v:.3g}" for k, v in self.point.items())
        return f"CostOptimum(question={self.question!r}, point=({pt}), cost={self.cost!r})"


def _starts(box: Box, given: Sequence[Mapping[str, float]], n_random: int, seed: int) -> list[np.ndarray]:
    """The given points, three points on the box's diagonal and ``n_random`` seeded random points."""
    k = box.n_free
    rng = np.random.default_rng(seed)
    return ([box.z_of(p) for p in given] + [np.full(k, 0.5), np.full(k, 0.25), np.full(k, 0.75)]
            + [rng.uniform(0.0, 1.0, k) for _ in range(n_random)])


def _predict(fit: Any, axes: Sequence[str], logx: np.ndarray) -> float:
    return float(predict_log(fit, axes, logx)[0])


def cheapest(fit: Any, target: float, cost: CostModel, bounds: Mapping[str, tuple[float, float]] | None = None, *,
             starts: Sequence[Mapping[str, float]] = (), n_random: int = 4, seed: int = 0) -> CostOptimum:
    """The point reaching ``target`` for the least ``cost`` within ``bounds``."""
    b = merge_bounds(fit, bounds)
    cost.check_box(b)  # finite and positive over the box, or one line naming where it is not
    box = Box(fit.axes, b)
    d = direction(fit.kind)
    scale = 0.01 if d.higher_is_better else max(abs(target), 1e-12) * 0.01

    def objective(z: np.ndarray) -> float:
        v = float(cost.log_cost(box.logx(z))[0])
        return v if math.isfinite(v) else 1e300

    def constraint(z: np.ndarray) -> float:
        return d.sign() * (_predict(fit, box.axes, box.logx(z)) - target) / scale

    z, n = minimise(objective, constraint, [_starts(box, starts, n_random, seed)], feasible_tol=FEASIBLE_TOL)
    if z is None:
        best = _predict(fit, box.axes, box.hi)
        reason = ("not reachable within the bounds (prediction at the upper bounds "
                  f"{best:.4g})" if not d.meets_one(best, target) else "the optimiser found no feasible point")
        return CostOptimum("cheapest", cost.describe(), target, None, False, None, None, None, b, reason=reason)
    return _answer("cheapest", fit, cost, box, b, z, target=target, budget=None, starts=n)


def best_at_budget(fit: Any, budget: float, cost: CostModel, bounds: Mapping[str, tuple[float, float]] | None = None,
                   *, starts: Sequence[Mapping[str, float]] = (), n_random: int = 4, seed: int = 0,
                   warm: bool = False) -> CostOptimum:
    """The point with the best prediction whose ``cost`` is at most ``budget``, within ``bounds``. ``warm``:
    try ``starts`` alone first, the box's own starts only when none of them ends feasible (a resample's
    refit, started from the full data's answer)."""
    if not (budget > 0 and math.isfinite(budget)):
        raise ProjectionError(f"the budget must be a positive number; got {budget}")
    b = merge_bounds(fit, bounds)
    cost.check_box(b)
    box = Box(fit.axes, b)
    d = direction(fit.kind)
    log_budget = math.log(budget)

    def objective(z: np.ndarray) -> float:
        v = _predict(fit, box.axes, box.logx(z))
        return -d.sign() * v if math.isfinite(v) else 1e300

    def constraint(z: np.ndarray) -> float:
        v = float(cost.log_cost(box.logx(z))[0])
        return log_budget - v if math.isfinite(v) else -1e300

    if not constraint(np.zeros(int(box.free.sum()))) >= 0:
        return CostOptimum("budget", cost.describe(), None, budget, False, None, None, None, b,
                           reason=f"the budget is below the cost at the lower bounds "
                                  f"({math.exp(float(cost.log_cost(box.lo)[0])):.4g})")
    rounds = ([[box.z_of(p) for p in starts], _starts(box, (), n_random, seed)] if warm and starts
              else [_starts(box, starts, n_random, seed)])
    z, n = minimise(objective, constraint, rounds, feasible_tol=FEASIBLE_TOL)
    if z is None:
        return CostOptimum("budget", cost.describe(), None, budget, False, None, None, None, b,
                           reason="the optimiser found no point within the budget")
    return _answer("budget", fit, cost, box, b, z, target=None, budget=budget, starts=n)


def _answer(question: str, fit: Any, cost: CostModel, box: Box, bounds: dict[str, tuple[float, float]],
            z: np.ndarray, *, target: float | None, budget: float | None, starts: int) -> CostOptimum:
    logx = box.logx(z)
    point = {a: float(math.exp(logx[j])) for j, a in enumerate(box.axes)}
    return CostOptimum(question, cost.describe(), target, budget, True, point, _predict(fit, box.axes, logx),
                       float(cost.cost(point)), bounds, at_bounds(point, bounds), "", {"starts": starts})
