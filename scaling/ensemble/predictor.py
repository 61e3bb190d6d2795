"""The ensemble as one predictor: the weighted mean of its forms' predictions (``EnsembleFit``), which the
questions answer like any fit, and its residuals on a backtest's held-out rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaling.core.direction import Direction, direction
from scaling.forms.result import FitResult
from scaling.selection.backtest import BacktestResult
from scaling.selection.splits import ranked_residuals


@dataclass(frozen=True)
class EnsembleFit:
    """sum_f w_f * prediction_f: the point prediction an ensemble's calibrated intervals are centred on
    (``scaling.forms.result.FitLike``). Its limit is the weighted limits when every form has one."""

    fits: tuple[FitResult, ...] = field(repr=False)
    weights: tuple[float, ...]
    form: str = "ensemble"

    @property
    def axes(self) -> tuple[str, ...]:
        return self.fits[0].axes

    @property
    def kind(self) -> str:
        return self.fits[0].kind

    @property
    def direction(self) -> Direction:
        return direction(self.kind)

    @property
    def axis_ranges(self) -> dict[str, tuple[float, float]]:
        return self.fits[0].axis_ranges

    @property
    def ceiling(self) -> float | None:
        limits = [f.ceiling for f in self.fits]
        known = [c for c in limits if c is not None]
        if len(known) < len(limits):
            return None
        return float(sum(w * c for w, c in zip(self.weights, known, strict=True)))

    def predict(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray:
        return np.sum([w * np.asarray(f.predict(X), dtype=float) for w, f in zip(self.weights, self.fits,
                                                                                  strict=True)], axis=0)


def ensemble_residuals(bt: BacktestResult, weights: Mapping[str, float],
                       splits: Sequence[str]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per split: the weighted mean prediction's residuals on the ranked scale, and the rows' distances."""
    d = direction(bt.kind)
    by = {(r.form, r.split): r for r in bt.results}
    res: dict[str, list[float]] = {}
    dist: dict[str, list[float]] = {}
    for s in splits:
        rows = [by[(f, s)] for f in weights]
        pred = np.sum([w * np.asarray(r.predictions, dtype=float) for w, r in zip(weights.values(), rows,
                                                                                  strict=True)], axis=0)
        obs = np.asarray(rows[0].observed, dtype=float)
        res[s] = ranked_residuals(pred, obs, d).tolist()
        dist[s] = list(rows[0].distances or [])
    return res, dist


def form_residuals(bt: BacktestResult, form: str,
                   splits: Sequence[str]) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per split: one form's residuals on the ranked scale and the rows' distances beyond the data."""
    by = {r.split: r for r in bt.results if r.form == form and r.ok}
    return ({s: list(by[s].residuals or []) for s in splits if s in by},
            {s: list(by[s].distances or []) for s in splits if s in by})
