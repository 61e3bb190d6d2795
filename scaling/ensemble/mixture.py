"""Mixtures of the forms' bootstrap distributions: each form's resamples weigh its ensemble weight in total,
so a form with 1,000 resamples and one with 200 count by their weights, not their counts."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from scaling.questions.combined import Interval


def mixture_quantile(samples: Mapping[str, np.ndarray], weights: Mapping[str, float], q: float) -> float:
    """The q-quantile of the weighted mixture (the smallest value whose weighted share at or below it
    reaches q; +-inf kept, NaN dropped); NaN when no form has a value."""
    values, mass = [], []
    for f, w in weights.items():
        v = np.asarray(samples.get(f, ()), dtype=float)
        v = v[~np.isnan(v)]
        if v.size and w > 0:
            values.append(v)
            mass.append(np.full(v.size, w / v.size))
    if not values:
        return math.nan
    v, m = np.concatenate(values), np.concatenate(mass)
    order = np.argsort(v, kind="stable")
    cum = np.cumsum(m[order]) / float(np.sum(m))
    i = int(np.searchsorted(cum, q - 1e-12, side="left"))
    return float(v[order][min(i, v.size - 1)])


def mixture_interval(samples: Mapping[str, np.ndarray], weights: Mapping[str, float], level: float) -> Interval:
    """The central ``level`` interval of the mixture."""
    return (mixture_quantile(samples, weights, (1 - level) / 2), mixture_quantile(samples, weights, (1 + level) / 2))


def overlap(a: Interval, b: Interval) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def gap_decades(a: Interval, b: Interval) -> float | None:
    """How many decades apart two disjoint positive intervals are (None when either is not positive)."""
    lo, hi = (a, b) if a[1] < b[0] else (b, a)
    if lo[1] <= 0 or not math.isfinite(hi[0]) or not math.isfinite(lo[1]):
        return None
    return math.log10(hi[0] / lo[1])
