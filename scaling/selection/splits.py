"""Backtest splits and what is measured across them: the levels of an axis, the leave-largest-out, joint and
rolling-origin splits (described in ``scaling.selection.backtest``), seed-to-seed noise from replicated
configurations, and each held-out row's distance beyond its training rows and residual on the ranked scale."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling.core.direction import Direction
from scaling.core.jsonable import JSONDict
from scaling.defaults import DEFAULT_LEVEL_TOL


@dataclass(frozen=True)
class Split:
    name: str
    kind: str  # 'leave-largest-out' | 'joint' | 'rolling-origin'
    axis: str | None
    train: np.ndarray = field(repr=False)  # boolean masks over the rows
    test: np.ndarray = field(repr=False)

    @property
    def n_train(self) -> int:
        return int(self.train.sum())

    @property
    def n_test(self) -> int:
        return int(self.test.sum())


def axis_levels(values: np.ndarray, tol: float = DEFAULT_LEVEL_TOL) -> np.ndarray:
    """Level index per value: sorted distinct values, a new level wherever the ratio to the previous
    distinct value exceeds 1 + tol (so nearby values chain into one level)."""
    v = np.asarray(values, dtype=float)
    distinct = np.unique(v)
    level_of = np.zeros(len(distinct), dtype=int)
    for i in range(1, len(distinct)):
        level_of[i] = level_of[i - 1] + (distinct[i] > distinct[i - 1] * (1 + tol))
    return level_of[np.searchsorted(distinct, v)]


def make_splits(data: pd.DataFrame, axes: Sequence[str], *, rolling_axis: str | None = "data_hours",
                level_tol: float = DEFAULT_LEVEL_TOL, min_train_levels: int = 2) -> list[Split]:
    """Leave-largest-out per axis, joint, and rolling origin along ``rolling_axis`` (if it is an axis)."""
    levels = {a: axis_levels(data[a].to_numpy(dtype=float), level_tol) for a in axes}
    splits = []
    top_any = np.zeros(len(data), dtype=bool)
    for a in axes:
        lv = levels[a]
        if lv.max() == 0:
            continue  # one level: nothing larger to hold out
        top = lv == lv.max()
        top_any |= top
        splits.append(Split(f"largest {a}", "leave-largest-out", a, ~top, top))
    if sum(levels[a].max() > 0 for a in axes) > 1:
        splits.append(Split("joint: largest of every axis", "joint", None, ~top_any, top_any))
    if rolling_axis is not None and rolling_axis in axes:
        lv = levels[rolling_axis]
        # The last origin (train on every level but the largest) is the leave-largest-out split above.
        for k in range(min_train_levels - 1, int(lv.max()) - 1):
            edge = float(data[rolling_axis].to_numpy(dtype=float)[lv == k].max())
            splits.append(Split(f"rolling: {rolling_axis} <= {edge:.4g}", "rolling-origin", rolling_axis,
                                lv <= k, lv > k))
    return splits


@dataclass(frozen=True)
class SeedNoise:
    sigma: float | None  # pooled std of y across replicate rows (same level on every axis)
    n_groups: int  # configurations with >= 2 replicates
    dof: int

    def to_dict(self) -> JSONDict:
        return {"sigma": self.sigma, "replicated_configurations": self.n_groups, "dof": self.dof}


def seed_noise(data: pd.DataFrame, y: str, axes: Sequence[str], level_tol: float = DEFAULT_LEVEL_TOL) -> SeedNoise:
    """Pooled within-configuration standard deviation of ``y`` (replicates share every axis level)."""
    keys = pd.DataFrame({a: axis_levels(data[a].to_numpy(dtype=float), level_tol) for a in axes})
    keys["_y"] = pd.to_numeric(data[y]).to_numpy(dtype=float)
    g = keys.groupby(list(axes))["_y"]
    n = g.count()
    var = g.var(ddof=1)
    rep = n >= 2
    dof = int((n[rep] - 1).sum())
    if dof == 0:
        return SeedNoise(None, 0, 0)
    return SeedNoise(float(math.sqrt(float(((n[rep] - 1) * var[rep]).sum()) / dof)), int(rep.sum()), dof)


def distances_beyond(train: pd.DataFrame, test: pd.DataFrame, axes: Sequence[str]) -> np.ndarray:
    """Decades each test row lies beyond the training rows: Euclidean over the axes it exceeds
    (``conformal.euclidean_decades``; one axis: its decades; 0 inside the data's range)."""
    total = np.zeros(len(test))
    for a in axes:
        top = float(pd.to_numeric(train[a]).max())
        over = np.maximum(np.log10(pd.to_numeric(test[a]).to_numpy(dtype=float) / top), 0.0)
        total = total + over**2
    return np.sqrt(total)


def ranked_residuals(pred: np.ndarray, obs: np.ndarray, d: Direction) -> np.ndarray:
    """prediction - observation on the ranked scale: y itself, or log error (NaN where the log is undefined)."""
    if not d.ranks_on_log:
        return np.asarray(pred, dtype=float) - np.asarray(obs, dtype=float)
    with np.errstate(all="ignore"):
        return np.log(d.error(pred)) - np.log(d.error(obs))
