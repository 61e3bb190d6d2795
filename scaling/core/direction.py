"""Whether a fitted quantity rises or falls with scale: the one place that decides "better".

An accuracy (a fraction, kind='accuracy') rises with scale towards a ceiling; an error rate (a fraction,
kind='error') and a loss (any positive number, kind='loss') fall towards a floor. Every comparison with a
target, every "best prediction" and every conversion to the error that power laws model goes through a
``Direction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from scaling.errors import FitError

Kind = Literal["accuracy", "error", "loss"]
KINDS: tuple[str, ...] = ("accuracy", "error", "loss")


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
        if self.is_fraction and not 0.0 <= value <= 1.0:
            what = "accuracy" if self.higher_is_better else "error rate"
            return f"impossible prediction: {what} {100 * value:.1f}% is outside [0, 100%]"
        if value < 0.0:
            return f"impossible prediction: negative {self.kind} {value:.4g}"
        return ""

    @property
    def is_fraction(self) -> bool:
        """Values are fractions in (0, 1) (accuracies and error rates), shown as percents; else any positive
        number (a loss)."""
        return self.kind in ("accuracy", "error")

    def target_metric(self, metric: str | None, y: str) -> str | None:
        """What a numeric target of this quantity is named after: the run database's metric, else the table's
        own column (an accuracy table's target borrows the default metric's name)."""
        return metric or (None if self.higher_is_better else y)

    @property
    def ranks_on_log(self) -> bool:
        """Backtests rank held-out errors of this quantity on a log scale (scale-free: a loss, an error rate),
        or in its own units (accuracy points)."""
        return self.kind != "accuracy"

    @property
    def unit(self) -> str:
        """Unit of differences on this scale in reports: points (100 x fraction) or loss units."""
        if self.is_fraction:
            return "accuracy points" if self.higher_is_better else "error points"
        return "loss units"

    @property
    def scale(self) -> float:
        """Multiplier from the fitted scale to ``unit``."""
        return 100.0 if self.is_fraction else 1.0


def direction(kind: str) -> Direction:
    """The Direction of ``kind``; one-line FitError for anything but 'accuracy', 'error' or 'loss'."""
    if kind not in KINDS:
        raise FitError(f"kind must be 'accuracy', 'error' (an error rate) or 'loss'; got {kind!r}")
    return Direction(kind)  # type: ignore[arg-type]
