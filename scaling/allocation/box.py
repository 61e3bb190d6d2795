"""The one numerical engine of every allocation question: SLSQP in the unit box of the log bounds.

A bounds box maps each free axis to z in [0, 1] over [ln lower, ln upper] (an axis with lower == upper is
pinned). ``minimise`` runs SLSQP from rounds of starts (a later round only when no start of the earlier ones
ended feasible) and keeps the feasible end with the lowest objective. ``cheapest``, ``best_at_budget``
(``scaling.allocation.budget``), the MAE optimum and its frontier (``scaling.allocation.mae``) all use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import minimize

SLSQP_OPTIONS = {"maxiter": 300, "ftol": 1e-13}  # ftol on the objective: argmins known to ~sqrt(1e-13) of the box


class Box:
    """The bounds box in unit coordinates z in [0, 1] over the free (not pinned) axes, in log space."""

    def __init__(self, axes: Sequence[str], bounds: Mapping[str, tuple[float, float]]) -> None:
        self.axes = tuple(axes)
        self.lo = np.log([bounds[a][0] for a in self.axes])
        self.hi = np.log([bounds[a][1] for a in self.axes])
        self.free = self.hi > self.lo
        self.span = np.where(self.free, self.hi - self.lo, 1.0)

    @property
    def n_free(self) -> int:
        return int(self.free.sum())

    def logx(self, z: np.ndarray) -> np.ndarray:
        out = self.lo.copy()
        out[self.free] = self.lo[self.free] + np.clip(z, 0.0, 1.0) * self.span[self.free]
        return out

    def z_of(self, point: Mapping[str, float]) -> np.ndarray:
        u = np.log([point[a] for a in self.axes])
        return np.clip((u - self.lo) / self.span, 0.0, 1.0)[self.free]

    def point(self, logx: np.ndarray) -> dict[str, float]:
        return {a: float(math.exp(logx[j])) for j, a in enumerate(self.axes)}


def minimise(objective: Callable[[np.ndarray], float], constraint: Callable[[np.ndarray], float],
             rounds: Sequence[Sequence[np.ndarray]], *, feasible_tol: float) -> tuple[np.ndarray | None, int]:
    """(the best feasible z, starts tried): SLSQP of ``objective`` subject to ``constraint(z) >= 0`` from
    each start, a round at a time; an end counts when ``constraint`` >= -``feasible_tol`` there."""
    best: tuple[float, np.ndarray] | None = None
    n = 0
    for starts in rounds:
        if best is not None:
            break
        for z0 in starts:
            n += 1
            if len(z0) == 0:  # every axis pinned: the box is one point, feasible or not
                z = np.zeros(0)
                if constraint(z) >= -feasible_tol and math.isfinite(objective(z)):
                    best = (objective(z), z)
                break
            with np.errstate(all="ignore"):
                res = minimize(objective, z0, method="SLSQP", bounds=[(0.0, 1.0)] * len(z0),
                               constraints=[{"type": "ineq", "fun": constraint}], options=SLSQP_OPTIONS)
            z = np.clip(res.x, 0.0, 1.0)
            if not np.all(np.isfinite(z)) or not constraint(z) >= -feasible_tol:
                continue
            value = objective(z)
            if math.isfinite(value) and (best is None or value < best[0]):
                best = (value, z)
    return (None if best is None else best[1]), n
