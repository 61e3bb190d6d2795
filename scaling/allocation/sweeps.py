"""IsoFLOP sweeps and training curves drawn from known loss laws, with their true compute-optimal allocation:
the reference the allocation methods (``scaling.allocation.methods``) are checked against.

Two laws of a loss L(N, D) over parameters N and training tokens D, priced by C = 6 N D:

- ``chinchilla``: L = E + A N^-alpha + B D^-beta, the parametric form of approach 3 (Hoffmann et al. 2022,
  arXiv 2203.15556, eq. 2; their fitted E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28, §D.2);
- ``kaplan``: L = E + [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D, the form of Kaplan et al. 2020
  (arXiv 2001.08361, eq. 1.5; alpha_N = 0.076, alpha_D = 0.095, N_c = 8.8e13, D_c = 5.4e13, §1.2), in which
  N and D interact: no sum of a term in N and a term in D states it. An irreducible E = 1.0 is added so that
  the losses look like the other law's.

The true N*(C) minimises L(N, C / (6 N)) over N (bounded scalar search in ln N to 1e-10). A sweep trains
``sizes`` model sizes log-spaced over ``width`` decades around ``center`` x N*(C) at each budget (an
experimenter's guess, off by ``center``), with Gaussian noise of ``noise`` on the loss. Every draw is seeded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from scaling.errors import ScalingError

LAWS: dict[str, dict[str, float]] = {
    "chinchilla": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "kaplan": {"E": 1.0, "N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095},
}


def _chinchilla(p: dict[str, float], n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return np.asarray(p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * d ** -p["beta"])


def _kaplan(p: dict[str, float], n: np.ndarray, d: np.ndarray) -> np.ndarray:
    return np.asarray(p["E"] + ((p["N_c"] / n) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / d) ** p["alpha_D"])


_LOSS = {"chinchilla": _chinchilla, "kaplan": _kaplan}


@dataclass(frozen=True)
class LossLaw:
    """A loss law over (N, D) and its compute-optimal allocation under C = 6 N D."""

    name: str
    params: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, **overrides: float) -> LossLaw:
        if name not in LAWS:
            raise ScalingError(f"unknown law {name!r}; laws: {', '.join(LAWS)}")
        return cls(name, {**LAWS[name], **overrides})

    def loss(self, n: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        return _LOSS[self.name](self.params, np.asarray(n, dtype=float), np.asarray(d, dtype=float))

    def n_opt(self, budget: float) -> float:
        """The N minimising the loss at compute ``budget`` (C = 6 N D)."""
        lo, hi = math.log(1e3), math.log(budget / 6.0) - math.log(1e3)
        res = minimize_scalar(lambda u: float(self.loss(math.exp(u), budget / (6.0 * math.exp(u)))),
                              bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
        return float(math.exp(res.x))

    def d_opt(self, budget: float) -> float:
        return budget / (6.0 * self.n_opt(budget))

    def exponent(self, budget: float) -> float:
        """d ln N* / d ln C at ``budget`` (constant for both laws: beta/(alpha+beta); 1/(1+alpha_N/alpha_D))."""
        h = math.log(10.0)
        return (math.log(self.n_opt(budget * math.e ** h)) - math.log(self.n_opt(budget / math.e ** h))) / (2 * h)


def isoflop_sweep(law: LossLaw, budgets: Sequence[float], *, sizes: int = 9, width: float = 1.6,
                  center: float = 1.0, noise: float = 0.01, seed: int = 0) -> pd.DataFrame:
    """One row per trained point: ``params``, ``tokens``, ``budget`` (6 N D exactly), ``loss``."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        mid = math.log10(law.n_opt(c) * center)
        for n in 10 ** np.linspace(mid - width / 2, mid + width / 2, sizes):
            d = c / (6.0 * n)
            rows.append({"params": float(n), "tokens": float(d), "budget": float(c),
                         "loss": float(law.loss(n, d)) + noise * float(rng.normal())})
    return pd.DataFrame(rows)


def training_curves(law: LossLaw, sizes: Sequence[float], *, tokens_per_param: tuple[float, float] = (0.5, 400.0),
                    points: int = 40, noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """Per-step curves: one run per size in ``sizes``, logged at ``points`` token counts log-spaced from
    ``tokens_per_param[0]`` to ``[1]`` tokens per parameter; the loss at D tokens is the law's at (N, D) (as
    if every point ended its own learning-rate schedule, approach 1's assumption). Columns ``run_id``,
    ``params``, ``tokens``, ``loss``."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(sizes):
        for d in n * np.geomspace(*tokens_per_param, points):
            rows.append({"run_id": f"run{i:02d}", "params": float(n), "tokens": float(d),
                         "loss": float(law.loss(n, d)) + noise * float(rng.normal())})
    return pd.DataFrame(rows)
