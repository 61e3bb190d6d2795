"""The answer of several forms at once (an ensemble), or of one form with calibrated intervals: per quantity
the combined estimate and intervals, each form's beside it, and what kind of interval it is.

``scaling.ensemble`` builds it (weights from the backtest, the forms' bootstrap distributions mixed, the
intervals widened by split-conformal calibration on request); a ``ProjectionReport`` carries it as
``combined`` and renders it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from scaling.core.jsonable import JSONDict, jsonable

Interval = tuple[float, float]


@dataclass(frozen=True)
class CombinedQuantity:
    """One derived quantity (``at.predicted``, ``scale.flops``, ...) of the combined answer."""

    name: str
    estimate: float | None  # the median of the weighted mixture of the forms' bootstrap distributions
    intervals: dict[float, Interval]  # level -> the mixture's percentile interval
    per_form: dict[str, tuple[float | None, dict[float, Interval]]]  # form -> (its estimate, its intervals)
    calibrated: dict[float, Interval] | None = None  # level -> the calibrated interval (None: not calibrated)

    def shown(self, level: float) -> Interval:
        """The interval a report shows at ``level``: the calibrated one when there is one."""
        return (self.calibrated or self.intervals)[level]

    def to_dict(self) -> JSONDict:
        def ivs(d: dict[float, Interval]) -> dict[str, dict[str, float]]:
            return {f"{lvl:g}": {"lower": lo, "upper": hi} for lvl, (lo, hi) in d.items()}

        return {"estimate": self.estimate, "intervals": ivs(self.intervals),
                "calibrated": None if self.calibrated is None else ivs(self.calibrated),
                "per_form": {f: {"estimate": e, "intervals": ivs(i)} for f, (e, i) in self.per_form.items()}}


@dataclass(frozen=True)
class CombinedAnswer:
    """The combined answer: the forms' weights, each quantity combined, and what the intervals are."""

    method: str  # how the weights were chosen (one form: weight 1)
    weights: dict[str, float]
    quantities: dict[str, CombinedQuantity]
    probabilities: dict[str, float]  # event -> weighted share of resamples in which it holds
    interval_kind: str  # 'bootstrap' or 'calibrated (split-conformal on N held-out errors ...)'
    levels: tuple[float, ...]
    disagreement: tuple[str, ...] = ()  # plain sentences where the forms' intervals do not overlap
    notes: tuple[str, ...] = ()
    weighting: JSONDict = field(default_factory=dict)  # the weights' provenance (splits, scales, score)

    @property
    def calibrated(self) -> bool:
        return self.interval_kind.startswith("calibrated")

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity: the combined estimate and interval at the widest level, each form's estimate."""
        level = max(self.levels)
        rows = []
        for name, q in self.quantities.items():
            lo, hi = q.shown(level)
            row: dict[str, object] = {"quantity": name, "estimate": q.estimate if q.estimate is not None else math.nan,
                                      f"lower_{100 * level:g}": lo, f"upper_{100 * level:g}": hi}
            row.update({f"{f} (w={self.weights[f]:.2f})": e if e is not None else math.nan
                        for f, (e, _) in q.per_form.items()})
            rows.append(row)
        return pd.DataFrame(rows).set_index("quantity")

    def summary(self) -> str:
        weights = ", ".join(f"{f} {w:.2f}" for f, w in sorted(self.weights.items(), key=lambda kv: -kv[1]))
        lines = [f"combined answer: {self.method}; weights {weights}; intervals: {self.interval_kind}",
                 self.to_frame().to_string(float_format=lambda v: f"{v:.4g}")]
        lines += list(self.disagreement)
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> JSONDict:
        return jsonable({"method": self.method, "weights": self.weights, "interval_kind": self.interval_kind,
                         "levels": list(self.levels),
                         "quantities": {k: v.to_dict() for k, v in self.quantities.items()},
                         "probabilities": self.probabilities, "disagreement": list(self.disagreement),
                         "notes": list(self.notes), "weighting": self.weighting})
