"""Whether a fitted quantity rises or falls with scale: the one place that decides "better".

An accuracy (a fraction, kind='accuracy') rises with scale towards a ceiling; a loss or error rate
(kind='loss') falls towards a floor. Every comparison with a target, every "best prediction" and every
conversion to the error that power laws model goes through a ``Direction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from scaling.errors import FitError

Kind = Literal["accuracy", "loss"]
KINDS: tuple[str, ...] = ("accuracy", "loss")


@dataclass(frozen=True)
class Direction:
    kind: Kind

    @property
    def higher_is_better(self) -> bool:
        return self.kind == "accuracy"

    @property
    def limit_name(self) -> str:
        """What the form's limit as every axis grows is called: 'ceiling' (accuracy) or 'floor' (loss)."""
        return "ceiling" if self.higher_is_better else "floor"

    def meets(self, value: ArrayLike, target: float, tol: float = 0.0) -> np.ndarray:
        """Elementwise: does ``value`` reach ``target`` (within ``tol`` on the good side)?"""
        v = np.asarray(value, dtype=float)
        return v >= target - tol if self.higher_is_better else v <= target + tol

    def meets_one(self, value: float, target: float, tol: float = 0.0) -> bool:
        return bool(self.meets(np.array([value]), target, tol)[0])

    def best(self, values: ArrayLike) -> float:
        """The best of ``values``, ignoring NaN."""
        v = np.asarray(values, dtype=float)
        return float(np.nanmax(v) if self.higher_is_better else np.nanmin(v))

    def sign(self) -> float:
        """+1 where larger is better, -1 where smaller is: ``sign * (value - target) >= 0`` meets the target."""
        return 1.0 if self.higher_is_better else -1.0

    def error(self, y: ArrayLike) -> np.ndarray:
        """The quantity that falls with scale: 1 - accuracy, or the loss itself."""
        v = np.asarray(y, dtype=float)
        return 1.0 - v if self.higher_is_better else v

    def from_error(self, err: ArrayLike) -> np.ndarray:
        """The inverse of ``error``."""
        e = np.asarray(err, dtype=float)
        return 1.0 - e if self.higher_is_better else e

    def impossible(self, value: float | None) -> str:
        """Why ``value`` cannot be a value of this quantity ('' when it can): an accuracy outside [0, 1], a
        negative loss. Polynomial surfaces extrapolate past these limits; such predictions are flagged."""
        if value is None or not np.isfinite(value):
            return ""
        if self.higher_is_better and not 0.0 <= value <= 1.0:
            return f"impossible prediction: accuracy {100 * value:.1f}% is outside [0, 100%]"
        if not self.higher_is_better and value < 0.0:
            return f"impossible prediction: negative {self.kind} {value:.4g}"
        return ""

    @property
    def is_fraction(self) -> bool:
        """Values are fractions in (0, 1) (accuracies), shown as percents; else any positive number."""
        return self.higher_is_better

    def target_metric(self, metric: str | None, y: str) -> str | None:
        """What a numeric target of this quantity is named after: the run database's metric, else a loss
        table's own column (an accuracy table's target borrows the default metric's name)."""
        return metric or (None if self.is_fraction else y)

    @property
    def unit(self) -> str:
        """Unit of differences on this scale in reports: accuracy points (100 x fraction) or loss units."""
        return "accuracy points" if self.higher_is_better else "loss units"

    @property
    def scale(self) -> float:
        """Multiplier from the fitted scale to ``unit``."""
        return 100.0 if self.higher_is_better else 1.0


def direction(kind: str) -> Direction:
    """The Direction of ``kind``; one-line FitError for anything but 'accuracy' or 'loss'."""
    if kind not in KINDS:
        raise FitError(f"kind must be 'accuracy' or 'loss'; got {kind!r}")
    return Direction(kind)  # type: ignore[arg-type]
