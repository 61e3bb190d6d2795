"""The BNSL authors' fitting recipe, written from its description, as the reference for ``bench_bnsl_authors.py``.

Caballero, Gupta, Rish, Krueger 2023, 'Broken neural scaling laws', ICLR (arXiv 2210.14891). Their code
release (github.com/ethancaballero/broken_neural_scaling_laws, whose README points to the paper's Appendix
A.6 for fitting) fits one break in three steps, which this module follows:

1. A brute-force grid over all six parameters of y = a + b x^-c0 (1 + (x / d1)^(1 / f1))^(-c1 f1):
   a in {0, 0.1, .., 0.9}; b and d1 in {1.25^k - 0.9 : k = 0, 2.5, .., 37.5} (16 values each, geometric
   from 0.1 to about 4,300); c0, c1 and f1 in {0, 0.25, 0.5, 0.75}: 163,840 points.
2. Each point is scored by the mean squared error of log(y + 1) (their 'MSLE': an offset of 1 inside the
   log, so it is neither the relative error of y nor of y - a), and the best point starts
3. an unbounded Levenberg-Marquardt least-squares fit (scipy's ``curve_fit``) of log(pred + 1) to
   log(y + 1).

The grid of d1 is in the units of their example (x from 160 to 928, dataset sizes); their README says the
grid's range may need adjusting for other data. We adjust it in one stated way: x is divided by
x_min / 160 before fitting (so every curve starts where their example does; the law is the same under a
rescaling of x, with b and d1 rescaled), and the fitted d1 is mapped back. On their own curve this is no
change. y is not rescaled (errors and losses of order 1, as theirs).

The code is ours; only the recipe (grids, objective, optimiser) follows theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import curve_fit

X_START = 160.0  # the smallest x of their example; each curve's x is rescaled to start here
A_GRID = np.arange(0.0, 1.0, 0.1)
GEOMETRIC = 1.25 ** np.arange(0.0, 40.0, 2.5) - 0.9  # b and d1
SLOPE_GRID = np.arange(0.0, 1.0, 0.25)  # c0, c1 and f1
CHUNK = 16_384  # grid points per numpy pass


def law(x: np.ndarray, a: float, b: float, c0: float, c1: float, d1: float, f1: float) -> np.ndarray:
    """The one-break BNSL, evaluated without guards (the grid's f1 = 0 and negative bases give nan or inf)."""
    return a + b * x**-c0 * (1.0 + (x / d1) ** (1.0 / f1)) ** (-c1 * f1)


def grid() -> np.ndarray:
    """Every grid point, (163840, 6) in the order a, b, c0, c1, d1, f1."""
    axes = (A_GRID, GEOMETRIC, SLOPE_GRID, SLOPE_GRID, GEOMETRIC, SLOPE_GRID)
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 6)


def grid_start(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The grid point with the least mean squared error of log(y + 1); nan or inf scores never win."""
    target = np.log1p(y)
    best, best_p = math.inf, np.full(6, np.nan)
    g = grid()
    with np.errstate(all="ignore"):
        for lo in range(0, len(g), CHUNK):
            p = g[lo:lo + CHUNK]
            pred = law(x[None, :], *(p[:, i:i + 1] for i in range(6)))
            score = np.mean((np.log1p(pred) - target) ** 2, axis=1)
            score[~np.isfinite(score)] = np.inf
            i = int(np.argmin(score))
            if score[i] < best:
                best, best_p = float(score[i]), p[i].copy()
    return best_p


@dataclass(frozen=True)
class ReferenceFit:
    """The recipe's fitted parameters in the caller's x units; ``ok`` is False where least squares failed."""

    a: float
    b: float
    c0: float
    c1: float
    d1: float
    f1: float
    ok: bool
    message: str = ""

    def predict(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            p = np.array([self.a, self.b, self.c0, self.c1, self.d1, self.f1])  # numpy floats: f1 = 0 gives inf
            return law(np.asarray(x, dtype=float), *p)


def fit(x: np.ndarray, y: np.ndarray) -> ReferenceFit:
    """The recipe on one curve (x > 0, y > -1): the grid start, then Levenberg-Marquardt on log(y + 1)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    scale = float(x.min()) / X_START
    xs = x / scale
    p0 = grid_start(xs, y)

    def log_law(u: np.ndarray, *p: float) -> np.ndarray:
        return np.log1p(law(u, *p))

    try:
        with np.errstate(all="ignore"):
            p, _ = curve_fit(log_law, xs, np.log1p(y), p0=p0, maxfev=100_000)
        ok, message = bool(np.all(np.isfinite(p))), ""
    except (RuntimeError, ValueError) as exc:  # curve_fit's 'optimal parameters not found', or nan residuals
        p, ok, message = p0, False, str(exc).splitlines()[0]
    a, b, c0, c1, d1, f1 = (float(v) for v in p)
    # Back to the caller's x: x^-c0 = (x / scale)^-c0 scale^-c0, so b absorbs scale^c0; d1 is in x / scale.
    return ReferenceFit(a, b * scale**c0, c0, c1, d1 * scale, f1, ok, message)
