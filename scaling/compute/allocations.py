"""The answer of an allocation question, shared by the forms' closed forms (``Form.closed_form_allocation``)
and the numerical engine (``scaling.allocation``): a point with its cost under the model minimised, the
prediction there and the bounds it sits at (``Allocation``, ``answer``, ``unreachable``), and the log box
of the bounds over the MAE model's axes (``log_box``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from scaling.core.jsonable import JSONDict
from scaling.defaults import COMPUTE_AXES
from scaling.errors import ProjectionError


class Predicts(Protocol):
    """Anything that predicts y at points of its axes (a fit, or a bootstrap replicate's stand-in)."""

    def predict(self, X: Mapping[str, Any]) -> np.ndarray: ...


class Cost(Protocol):
    @property
    def name(self) -> str: ...

    def log_cost(self, logx: np.ndarray) -> np.ndarray:
        """ln C at rows of ln(n_params, data_hours, image_px) (shape (m, 3) -> (m,))."""
        ...

    def describe(self) -> JSONDict: ...


class ProportionalLike(Cost, Protocol):
    """A cost C = k prod_i x_i^c_i (ln C linear in ln x): what the forms' closed forms solve under."""

    def exponents(self) -> dict[str, float]:
        """c_i of ln C = const + sum_i c_i ln x_i."""
        ...


def predict_log(fit: Any, axes: Sequence[str], logx: np.ndarray) -> np.ndarray:
    """The fit's prediction at rows of ln x (shape (m, k) or (k,), columns in ``axes`` order) -> (m,)."""
    logx = np.atleast_2d(logx)
    return np.asarray(fit.predict({a: np.exp(logx[:, j]) for j, a in enumerate(axes)}), dtype=float).ravel()


def at_bounds(point: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]) -> tuple[str, ...]:
    """The bounds ``point`` sits at: 'AXIS fixed', 'AXIS lower' or 'AXIS upper' (within 1e-6)."""
    out = []
    for a, (lo, hi) in bounds.items():
        if lo == hi:
            out.append(f"{a} fixed")
        elif point[a] <= lo * (1 + 1e-6):
            out.append(f"{a} lower")
        elif point[a] >= hi * (1 - 1e-6):
            out.append(f"{a} upper")
    return tuple(out)


def log_box(bounds: Mapping[str, tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(ln lower, ln upper) of the bounds, in the order of COMPUTE_AXES."""
    for a in COMPUTE_AXES:
        if not 0 < bounds[a][0] <= bounds[a][1]:
            raise ProjectionError(f"bounds of {a!r} must satisfy 0 < lower <= upper; got {bounds[a]}")
    lo = np.log([bounds[a][0] for a in COMPUTE_AXES])
    hi = np.log([bounds[a][1] for a in COMPUTE_AXES])
    return lo, hi


@dataclass(frozen=True)
class Allocation:
    reachable: bool
    point: dict[str, float] | None
    cost: float | None  # under the cost model that was minimised
    predicted: float | None
    method: str  # 'closed form' | 'numerical'
    cost_model: str
    at_bounds: tuple[str, ...] = ()
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> JSONDict:
        return {"reachable": self.reachable, "point": self.point, "cost": self.cost, "predicted": self.predicted,
                "method": self.method, "cost_model": self.cost_model, "at_bounds": list(self.at_bounds),
                "reason": self.reason, "details": self.details}


def answer(fit: Predicts, target: float, logx: np.ndarray, cost: Cost, bounds: Mapping, method: str,
           details: dict[str, Any] | None = None) -> Allocation:
    """The allocation at ln x = ``logx``: its point, cost, prediction and the bounds it sits at."""
    point = {a: float(math.exp(logx[j])) for j, a in enumerate(COMPUTE_AXES)}
    predicted = float(predict_log(fit, COMPUTE_AXES, logx)[0])
    return Allocation(True, point, float(math.exp(cost.log_cost(logx)[0])), predicted, method, cost.name,
                      at_bounds(point, {a: bounds[a] for a in COMPUTE_AXES}), "", details or {})


def unreachable(cost: Cost, method: str, reason: str) -> Allocation:
    """No allocation reaches the target; ``reason`` says why (one line)."""
    return Allocation(False, None, None, None, method, cost.name, (), reason)
