"""Intervals calibrated on the data's own track record: split-conformal prediction (Vovk et al. 2005; Lei et
al. 2018, JASA 113) with a score that grows with how far an answer lies beyond the data.

A backtest gives held-out errors at known extrapolation distances: the residual r (prediction - observation
on the ranked scale: y for an accuracy, log error for a loss or an error rate) of a held-out row that lies
d decades beyond its training rows. The distance of a point beyond the data is Euclidean in decades over
the axes it exceeds, d = sqrt(sum_k d_k^2) with d_k = max(0, log10(x_k / max_k)): the backtest splits
extrapolate one axis at a time (where d is that axis's decades), while an answer often lies beyond the
data on several axes at once, and errors of independent extrapolations add in quadrature. (The maximum
over the axes, used first, under-covered: 74% for a nominal 90% on the first 23 synthetic replications
of ``bench/bench_coverage.py``; the Euclidean distance is the change that followed, and the replications
after it are its check.) The nonconformity score is s = |r| / max(d, D0): the error per decade of
extrapolation (D0 = 0.1 decades keeps rows inside or near the training range from dividing by zero). For a
new answer d decades beyond the data, the calibrated half-width at level p is

    h(p, d) = q_p(s) * max(d, D0),   q_p = the ceil((n + 1) p)-th smallest of the n scores

(the split-conformal quantile; +inf when n is too small for the level). Under exchangeability of the scores
the interval prediction +- h covers a new observation with probability at least p. The intervals a report
calls *calibrated* are the union of the bootstrap interval and this one: calibration only widens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

D0 = 0.1  # decades: the smallest extrapolation distance a score is divided by


def euclidean_decades(decades: Sequence[float]) -> float:
    """A point's distance beyond the data from its decades beyond the largest value of each axis (negative:
    inside the range on that axis): sqrt of the summed squares of the positive parts; +inf if any is."""
    total = 0.0
    for d in decades:
        if math.isinf(d) and d > 0:
            return math.inf
        total += max(float(d), 0.0) ** 2
    return math.sqrt(total)


@dataclass(frozen=True)
class ConformalScale:
    """Scores of held-out errors per decade of extrapolation, and the half-widths they give."""

    scores: tuple[float, ...]
    source: str  # what the scores came from, in words

    @property
    def n(self) -> int:
        return len(self.scores)

    def quantile(self, level: float) -> float:
        """The split-conformal quantile of the scores at ``level`` (+inf with too few scores)."""
        k = math.ceil((self.n + 1) * level)
        if self.n == 0 or k > self.n:
            return math.inf
        return float(np.sort(self.scores)[k - 1])

    def half_width(self, level: float, distance: float) -> float:
        """h(level, distance): the calibrated half-width on the ranked scale at ``distance`` decades."""
        return self.quantile(level) * max(float(distance), D0)

    def describe(self) -> str:
        return f"split-conformal on {self.n} held-out errors ({self.source}), scaled by decades beyond the data"

    def to_dict(self) -> dict[str, object]:
        return {"method": "split-conformal, |residual| / max(decades beyond, 0.1)", "n": self.n,
                "source": self.source, "q90": self.quantile(0.9), "q95": self.quantile(0.95)}


def scores(residuals: Sequence[float], distances: Sequence[float]) -> list[float]:
    """|r| / max(d, D0) for each held-out row with a finite residual."""
    out = []
    for r, d in zip(residuals, distances, strict=True):
        if math.isfinite(r):
            out.append(abs(float(r)) / max(float(d), D0))
    return out


def conformal_scale(residuals: Sequence[Sequence[float]], distances: Sequence[Sequence[float]],
                    source: str) -> ConformalScale:
    """The scale of the held-out rows of several splits (one list of residuals and distances per split)."""
    out: list[float] = []
    for r, d in zip(residuals, distances, strict=True):
        out += scores(r, d)
    return ConformalScale(tuple(out), source)
