"""Allocating compute: the MAE compute-optimal allocation with its proportional-cost cross-check and
frontier (``mae``), and the budget questions under any cost model (``budget``).
"""

from __future__ import annotations

from collections.abc import Mapping

from scaling.allocation.budget import CostOptimum, cheapest
from scaling.allocation.mae import OptimalResult, optimal_allocation
from scaling.compute.costs import CostModel
from scaling.forms.result import FitResult


def cheapest_allocation(fit: FitResult, target: float, cost: CostModel,
                        bounds: Mapping[str, tuple[float, float]] | None = None, *, frontier_rows: int = 9,
                        seed: int = 0) -> OptimalResult | CostOptimum:
    """The point reaching ``target`` for the least ``cost`` within ``bounds``: one numerical engine
    (``box.minimise``) for every cost; under the MAE FLOPs model (a cost that carries its compute
    assumptions) also the proportional-cost cross-check, the form's closed form and the iso-target frontier."""
    if cost.assumptions is not None:
        return optimal_allocation(fit, target, cost.assumptions, bounds=bounds, frontier_rows=frontier_rows, seed=seed)
    return cheapest(fit, target, cost, bounds, seed=seed)
