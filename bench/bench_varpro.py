"""Variable projection vs the plain 4,500-start L-BFGS fit of the Chinchilla approach-3 objective.

Both minimise the same summed Huber (delta 1e-3) loss of log(pred) - log(loss) for
loss = E + A N^-alpha + B D^-beta, on one 240-point noisy synthetic grid (16 model sizes x 15 data
sizes around the published Chinchilla parameters, 1% multiplicative noise, fixed seed).

- plain: the log-sum-exp parametrisation pred = LSE(a - alpha log N, b - beta log D, e), started from the
  grid alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}
  (5*5*5*6*6 = 4,500 starts; Hoffmann et al. 2022 App. D.2 as replicated by Epoch), scipy L-BFGS-B with
  an analytic gradient, best objective kept.
- varpro: ``scaling.forms.varpro.solve_powerlaw`` (exponent grid + NNLS, then L-BFGS-B refinement).

    .venv/bin/python bench/bench_varpro.py              # all 4,500 starts (about half a minute)
    .venv/bin/python bench/bench_varpro.py --starts 500 # an evenly spaced subset of the start grid
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from scaling.forms.varpro import solve_powerlaw

DELTA = 1e-3
TRUE = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}


def synthetic(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    N, D = (g.ravel() for g in np.meshgrid(np.geomspace(7e7, 1.6e10, 16), np.geomspace(5e9, 5e11, 15)))
    loss = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]
    loss = loss * np.exp(0.01 * np.random.default_rng(seed).standard_normal(len(loss)))
    return np.column_stack([N, D]), loss


def lse_objective(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray) -> tuple:
    """Summed log-space Huber loss of the LSE parametrisation (a, b, e, alpha, beta) and its gradient."""
    a, b, e, alpha, beta = theta
    terms = np.column_stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    pred = logsumexp(terms, axis=1)
    r = pred - logL
    soft = np.exp(terms - pred[:, None])  # d pred / d term
    psi = np.clip(r, -DELTA, DELTA)
    grad = np.array(
        [
            psi @ soft[:, 0],
            psi @ soft[:, 1],
            psi @ soft[:, 2],
            -psi @ (soft[:, 0] * logN),
            -psi @ (soft[:, 1] * logD),
        ]
    )
    return float(np.sum(huber(DELTA, r))), grad


def plain_fit(X: np.ndarray, loss: np.ndarray, starts: int) -> tuple[float, dict[str, float]]:
    logN, logD, logL = np.log(X[:, 0]), np.log(X[:, 1]), np.log(loss)
    grid = list(
        itertools.product(
            np.arange(0, 30, 5.0),  # a
            np.arange(0, 30, 5.0),  # b
            np.arange(-1, 1.5, 0.5),  # e
            np.arange(0, 2.5, 0.5),  # alpha
            np.arange(0, 2.5, 0.5),  # beta
        )
    )
    if starts < len(grid):
        grid = [grid[i] for i in np.linspace(0, len(grid) - 1, starts).round().astype(int)]
    best_val, best_x = np.inf, None
    for x0 in grid:
        res = minimize(lse_objective, np.array(x0), args=(logN, logD, logL), jac=True, method="L-BFGS-B")
        if res.fun < best_val:
            best_val, best_x = float(res.fun), res.x
    a, b, e, alpha, beta = best_x
    return best_val, {"E": np.exp(e), "A": np.exp(a), "alpha": alpha, "B": np.exp(b), "beta": beta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=4500, help="number of L-BFGS starts of the plain fit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    X, loss = synthetic(args.seed)

    t0 = time.perf_counter()
    sol = solve_powerlaw(X, loss, delta=DELTA)
    t_vp = time.perf_counter() - t0
    vp = {"E": sol.E, "A": sol.A[0], "alpha": sol.alpha[0], "B": sol.A[1], "beta": sol.alpha[1]}

    t0 = time.perf_counter()
    obj_plain, plain = plain_fit(X, loss, args.starts)
    t_plain = time.perf_counter() - t0

    print(f"{len(loss)} points, Huber delta {DELTA}, plain starts {min(args.starts, 4500)}")
    print(f"{'method':<8} {'objective':>14} {'seconds':>9}  " + "  ".join(f"{k:>8}" for k in TRUE))
    print(f"{'truth':<8} {'':>14} {'':>9}  " + "  ".join(f"{v:8.4g}" for v in TRUE.values()))
    for name, obj, t, p in [("varpro", sol.objective, t_vp, vp), ("plain", obj_plain, t_plain, plain)]:
        print(f"{name:<8} {obj:14.8g} {t:9.3f}  " + "  ".join(f"{p[k]:8.4g}" for k in TRUE))
    print(f"speed ratio plain/varpro: {t_plain / t_vp:.1f}x")
    print(f"objective varpro - plain: {sol.objective - obj_plain:+.3g} (<= 0: varpro at least as good)")


if __name__ == "__main__":
    main()
