"""Grids drawn from laws that no registered form states, for measuring how often intervals cover the truth.

Each law gives the error rate e = 1 - accuracy of a configuration from its parameters N, hours D and pixels R,
each divided by the grid's smallest (n, d, r >= 1), with an irreducible floor E:

- ``product``:  e = E + A n^-a d^-b r^-c                      (one multiplicative term, not a sum of terms)
- ``minimum``:  e = E + max(A n^-a, B d^-b) + C r^-c          (the scarcer of model and data binds)
- ``broken``:   e = E + A n^-a + B d^-b (1 + d / d_b)^-(b2 - b) + C r^-c   (data's slope steepens after d_b)
- ``power``:    e = E + (A n^-a + B d^-b + C r^-c)^p, p != 1  (the terms add inside a power)

Coefficients are drawn, then scaled so the grid's smallest configuration sits at 15-30% accuracy, and the
draw is kept only if the largest sits between 55% and 90% (grids like the study's). Observations add
normal noise of the grid's seed-to-seed standard deviation. Every draw is seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaling.errors import ScalingError

LAWS = ("product", "minimum", "broken", "power")
SEED_NOISE = 0.0183  # the published grid's pooled seed-to-seed standard deviation of top-5 (1.83 points)
AXES = ("n_params", "data_hours", "image_px")


@dataclass(frozen=True)
class SyntheticLaw:
    """One drawn law: its family, parameters and the grid minima it normalises by."""

    family: str
    params: dict[str, float]
    minima: dict[str, float]

    def error(self, points: Mapping[str, np.ndarray | float]) -> np.ndarray:
        n, d, r = (np.asarray(points[a], dtype=float) / self.minima[a] for a in AXES)
        return _FAMILIES[self.family](self.params, n, d, r)

    def accuracy(self, points: Mapping[str, np.ndarray | float]) -> np.ndarray:
        return 1.0 - self.error(points)


def _product(p: Mapping[str, float], n: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * n ** -p["a"] * d ** -p["b"] * r ** -p["c"]


def _minimum(p: Mapping[str, float], n: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * np.maximum(n ** -p["a"], p["B"] * d ** -p["b"]) + p["A"] * p["C"] * r ** -p["c"]


def _broken(p: Mapping[str, float], n: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    data = p["B"] * d ** -p["b"] * (1.0 + d / p["d_b"]) ** -(p["b2"] - p["b"])
    return p["E"] + p["A"] * (n ** -p["a"] + data + p["C"] * r ** -p["c"])


def _power(p: Mapping[str, float], n: np.ndarray, d: np.ndarray, r: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * (n ** -p["a"] + p["B"] * d ** -p["b"] + p["C"] * r ** -p["c"]) ** p["p"]


_FAMILIES: dict[str, Callable[..., np.ndarray]] = {"product": _product, "minimum": _minimum, "broken": _broken,
                                                   "power": _power}


def draw_law(family: str, design: pd.DataFrame, rng: np.random.Generator, *, tries: int = 200) -> SyntheticLaw:
    """A law of ``family`` whose accuracies over ``design`` (columns n_params, data_hours, image_px) look like
    the study's (see the module docstring)."""
    if family not in _FAMILIES:
        raise ScalingError(f"unknown synthetic law {family!r}; known: {', '.join(LAWS)}")
    minima = {a: float(design[a].min()) for a in AXES}
    for _ in range(tries):
        p = {"E": rng.uniform(0.02, 0.12), "A": 1.0, "a": rng.uniform(0.1, 0.5), "b": rng.uniform(0.08, 0.35),
             "c": rng.uniform(0.2, 0.8), "B": rng.uniform(0.5, 2.0), "C": rng.uniform(0.2, 1.0),
             "b2": rng.uniform(0.4, 0.9), "d_b": float(10 ** rng.uniform(1.0, 3.5)), "p": rng.uniform(0.6, 1.6)}
        law = SyntheticLaw(family, p, minima)
        corner = {a: np.array([minima[a]]) for a in AXES}
        start = 1.0 - rng.uniform(0.15, 0.30)  # the smallest configuration's error
        excess = float(law.error(corner)[0]) - p["E"]
        if excess <= 0:
            continue
        # Scale the reducible part so the smallest configuration has the drawn error.
        scale = (start - p["E"]) / excess
        p = p | ({"A": p["A"] * scale ** (1.0 / p["p"])} if family == "power" else {"A": p["A"] * scale})
        law = SyntheticLaw(family, p, minima)
        acc = law.accuracy({a: design[a].to_numpy(dtype=float) for a in AXES})
        if 0.55 <= float(acc.max()) <= 0.90 and float(acc.min()) > 0.05:
            return law
    raise ScalingError(f"no {family} law in {tries} draws gave a grid like the study's")


def synthetic_grid(design: pd.DataFrame, law: SyntheticLaw, rng: np.random.Generator,
                   noise: float = SEED_NOISE) -> pd.DataFrame:
    """``design`` (a run-database frame: one row per run) with each run's value drawn from ``law`` plus normal
    noise of standard deviation ``noise``, clipped inside (0, 1)."""
    truth = law.accuracy({a: design[a].to_numpy(dtype=float) for a in AXES})
    out = design.copy()
    out["value"] = np.clip(truth + rng.normal(0.0, noise, len(truth)), 1e-4, 1 - 1e-4)
    out.attrs = dict(design.attrs)
    return out


def truth_at(law: SyntheticLaw, point: Mapping[str, float]) -> float:
    """The law's accuracy at ``point`` (no noise)."""
    return float(law.accuracy({a: np.array([float(point[a])]) for a in AXES})[0])
