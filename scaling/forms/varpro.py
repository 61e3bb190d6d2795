"""Saturating additive power laws fitted in log space by variable projection (VarPro).

    powerlaw:         err = E + sum_k A_k x_k^(-alpha_k)
    powerlaw_chance:  err = E + (c - E) s / (1 + s),   s = sum_k A_k x_k^(-alpha_k)

``err`` is 1 - accuracy for kind='accuracy' and the loss itself for kind='loss'. The objective is the
Chinchilla approach-3 objective (Hoffmann et al. 2022, App. D.2): the SUMMED Huber loss (delta 1e-3) of
log(pred) - log(err). For fixed exponents the additive law is linear in (E, A_k), so the exponents are
searched on a grid with the amplitudes solved by non-negative least squares at each grid point (rows
weighted by 1/err, so the linear residual approximates the relative, i.e. log, error); the true
log-Huber objective ranks the grid points, and the best few are refined by L-BFGS-B on all parameters
(log amplitudes, linear exponents) with an analytic gradient. This follows VPNLS (Open-Athena, arXiv
2603.22339): a deterministic search with no initialisation grid to tune. The code here is our own.

The chance law is not linear in (E, A_k), but err (1 + s) = E + c s rearranges to
err = E + sum_k A_k (c - err) x_k^-alpha_k, which is, once the observed err stands in on the right (exact
without noise). The same grid + NNLS search on that linearisation supplies its starting points, next to
the additive fit mapped onto the chance law; the true chance-law objective ranks and refines them.
When no refinement converges, random exponents (amplitudes by NNLS) are refined instead (multi-start).

The numerical core works on numpy arrays only (``solve_powerlaw``, ``solve_chance``) so that a bootstrap
can refit many times without pandas. Internally each axis is divided by its geometric mean and err by
its geometric mean; that keeps every amplitude O(1) for the optimiser whatever the units (1e9 params).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize, nnls

from scaling.core.threads import single_threaded_blas
from scaling.defaults import ALPHA_MAX, HUBER_DELTA
from scaling.errors import FitError

LOG_FLOOR = math.log(1e-12)  # lower bound of a log amplitude (normalised units): "zero"
LOG_CEIL = 60.0  # upper bound of a log amplitude: keeps exp() finite
# An amplitude whose term moves no prediction by more than this fraction is reported as exactly 0: with
# a log-Huber delta of 1e-3 such a term is invisible, and the log parametrisation can only approach 0.
ZERO_REL = 1e-6
BOUND_TOL = 1e-7  # an exponent this close to a bound is reported as at the bound
DEFAULT_GRID = {1: 201, 2: 101, 3: 31}  # exponent grid points per axis: ~1e4 NNLS solves at most


@dataclass(frozen=True)
class Problem:
    """A normalised fitting problem: log(x / sx), log(err / se), weights, Huber delta, chance / se."""

    lx: np.ndarray
    lerr: np.ndarray
    w: np.ndarray
    delta: float
    log_sx: np.ndarray
    log_se: float
    chance: float | None = None

    @property
    def k(self) -> int:
        return self.lx.shape[1]


def make_problem(
    X: np.ndarray, err: np.ndarray, weights: np.ndarray | None, delta: float, chance: float | None = None
) -> Problem:
    lx_raw = np.log(np.asarray(X, dtype=float))
    le_raw = np.log(np.asarray(err, dtype=float))
    log_sx = lx_raw.mean(axis=0)
    log_se = float(le_raw.mean())
    w = np.ones(len(le_raw)) if weights is None else np.asarray(weights, dtype=float)
    c = None if chance is None else chance / math.exp(log_se)
    return Problem(lx_raw - log_sx, le_raw - log_se, w, float(delta), log_sx, log_se, c)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def log_huber(p: np.ndarray, log_y: np.ndarray, w: np.ndarray, delta: float) -> tuple[float, np.ndarray]:
    """The weighted Huber loss of ln p against ``log_y``, and its gradient with respect to p (p > 0)."""
    r = np.log(p) - log_y
    return float(w @ huber(r, delta)), w * np.clip(r, -delta, delta) / p


def _pred_jac(theta: np.ndarray, prob: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Normalised prediction and its derivatives w.r.t. theta = (log E, log A_k, alpha_k)."""
    k = prob.k
    E = math.exp(theta[0])
    S = np.exp(theta[1 : 1 + k] - prob.lx * theta[1 + k :])  # A_k x_k^-alpha_k, (n, k)
    if prob.chance is None:
        p = E + S.sum(axis=1)
        dp = np.column_stack([np.full(len(p), E), S, -S * prob.lx])
    else:
        s = S.sum(axis=1)
        p = (E + prob.chance * s) / (1.0 + s)
        dps = ((prob.chance - E) / (1.0 + s) ** 2)[:, None]
        dp = np.column_stack([E / (1.0 + s), dps * S, -dps * S * prob.lx])
    return p, dp


def objective(theta: np.ndarray, prob: Problem) -> tuple[float, np.ndarray]:
    """Summed log-Huber loss and its gradient, both divided by delta (better-scaled tolerances).

    The same derivatives as ``_pred_jac``, contracted without forming the (n, 2k+1) Jacobian: this runs
    thousands of times per bootstrap, where numpy call overhead dominates.
    """
    k = prob.k
    E = math.exp(theta[0])
    S = np.exp(theta[1 : 1 + k] - prob.lx * theta[1 + k :])  # A_k x_k^-alpha_k, (n, k)
    s = S.sum(axis=1)
    if prob.chance is None:
        p = E + s
    else:
        p = (E + prob.chance * s) / (1.0 + s)
    pmin = p.min()
    if not (pmin > 0 and math.isfinite(p.sum())):
        return math.inf, np.zeros_like(theta)
    d = prob.delta
    value, g = log_huber(p, prob.lerr, prob.w, d)  # g: d loss / d p
    if prob.chance is None:
        gE, gS = E * g.sum(), g
    else:
        gE, gS = E * float(g @ (1.0 / (1.0 + s))), g * (prob.chance - E) / (1.0 + s) ** 2
    gA = gS @ S
    grad = np.empty(1 + 2 * k)
    grad[0] = gE
    grad[1 : 1 + k] = gA
    grad[1 + k :] = -(gS @ (S * prob.lx))
    return value / d, grad / d


def _bounds(prob: Problem, alpha_max: float) -> list[tuple[float, float]]:
    top_e = LOG_CEIL if prob.chance is None else math.log(prob.chance) - 1e-9
    return [(LOG_FLOOR, top_e)] + [(LOG_FLOOR, LOG_CEIL)] * prob.k + [(0.0, alpha_max)] * prob.k


def _theta_from_linear(E: float, A: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    amps = np.maximum(np.concatenate([[E], A]), math.exp(LOG_FLOOR))
    return np.concatenate([np.log(amps), alpha])


def _feature_weight(prob: Problem) -> np.ndarray:
    """Per-point multiplier of the power-law features in the linearised problem.

    Additive law: err = E + sum_k A_k x^-a, so 1. Chance law: err (1 + s) = E + c s rearranges to
    err = E + sum_k A_k (c - err) x^-a, linear in (E, A_k) once the observed err stands in on the right
    (exact without noise). Points at or above chance would get a non-positive multiplier: clip them.
    """
    if prob.chance is None:
        return np.ones(len(prob.lerr))
    return np.maximum(prob.chance - np.exp(prob.lerr), 1e-6 * prob.chance)


def nnls_amplitudes(prob: Problem, alpha: np.ndarray) -> np.ndarray:
    """(E, A_1..A_k) >= 0 minimising the 1/err-weighted squared error of the linearised law at ``alpha``."""
    err = np.exp(prob.lerr)
    rho = np.sqrt(prob.w) / err
    m = (rho * _feature_weight(prob))[:, None]
    M = np.column_stack([rho, m * np.exp(-prob.lx * alpha)])
    return nnls(M, rho * err)[0]


def grid_search(prob: Problem, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """VarPro over every exponent combination: (index combos, NNLS amplitudes, log-Huber objectives)."""
    k, n = prob.k, len(prob.lerr)
    err = np.exp(prob.lerr)
    rho = np.sqrt(prob.w) / err
    target = rho * err
    T = np.exp(-grid[:, None, None] * prob.lx[None, :, :])  # (G, n, k) features per exponent
    RT = (rho * _feature_weight(prob))[None, :, None] * T
    combos = np.array(list(itertools.product(range(len(grid)), repeat=k)), dtype=int)
    coefs = np.empty((len(combos), k + 1))
    M = np.empty((n, k + 1))
    M[:, 0] = rho
    for c, idx in enumerate(combos):
        for j in range(k):
            M[:, j + 1] = RT[idx[j], :, j]
        coefs[c] = nnls(M, target)[0]
    values = np.empty(len(combos))
    for start in range(0, len(combos), 2048):  # vectorised objective, in chunks to bound memory
        sl = slice(start, start + 2048)
        s = np.zeros((len(coefs[sl]), n))
        for j in range(k):
            s = s + coefs[sl, j + 1 : j + 2] * T[combos[sl, j], :, j]
        E = coefs[sl, :1]
        p = E + s if prob.chance is None else (E + prob.chance * s) / (1.0 + s)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(p) - prob.lerr
        v = np.sum(prob.w * huber(r, prob.delta), axis=1)
        ok = np.all(p > 0, axis=1) & (True if prob.chance is None else E[:, 0] < prob.chance)
        values[sl] = np.where(ok, v, np.inf)
    return combos, coefs, values


def _separated_best(combos: np.ndarray, values: np.ndarray, count: int, gap: int = 2) -> list[int]:
    """Indices of the best grid points, skipping neighbours of ones already taken (distinct basins)."""
    chosen: list[int] = []
    for i in np.argsort(values, kind="stable"):
        if not np.isfinite(values[i]) or len(chosen) >= count:
            break
        if all(np.max(np.abs(combos[i] - combos[c])) > gap for c in chosen):
            chosen.append(int(i))
    return chosen


@dataclass(frozen=True)
class Refined:
    theta: np.ndarray
    value: float  # objective / delta
    ok: bool
    message: str


def refine(theta0: np.ndarray, prob: Problem, alpha_max: float) -> Refined:
    """L-BFGS-B from theta0. Converged means scipy's own test, or a projected gradient that is
    negligible relative to the objective: with delta = 1e-3 the loss is nearly L1 and the line search
    often stops at the optimum with 'ABNORMAL_TERMINATION' although nothing is left to gain."""
    bounds = _bounds(prob, alpha_max)
    x0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    res = minimize(
        objective,
        x0,
        args=(prob,),
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 5000, "maxfun": 20000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 30},
    )
    value, grad = objective(res.x, prob)
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    pg = np.where((res.x <= lo + 1e-12) & (grad > 0), 0.0, grad)
    pg = np.where((res.x >= hi - 1e-12) & (pg < 0), 0.0, pg)
    small = bool(np.max(np.abs(pg)) <= 1e-5 * max(1.0, value))
    ok = bool(np.isfinite(value) and (res.success or small))
    return Refined(res.x, value, ok, str(res.message))


@dataclass(frozen=True)
class Solution:
    """A fitted additive (or chance-ceiling) power law in the user's units."""

    E: float
    A: np.ndarray
    alpha: np.ndarray
    chance: float | None
    objective: float  # summed log-Huber loss (not divided by delta)
    converged: bool
    message: str
    theta: np.ndarray = field(repr=False)  # normalised (log E, log A_k, alpha_k), after snapping zeros
    info: dict[str, Any] = field(default_factory=dict)


def _finish(best: Refined, prob: Problem, message: str, info: dict[str, Any]) -> Solution:
    theta = best.theta.copy()
    k = prob.k
    amps = np.exp(theta[: 1 + k])
    p, dp = _pred_jac(theta, prob)
    # d log p / d log amplitude is the share of each prediction that the term carries.
    share = np.max(np.abs(dp[:, : 1 + k]) / p[:, None], axis=0)
    amps[share < ZERO_REL] = 0.0
    with np.errstate(divide="ignore"):
        theta[: 1 + k] = np.where(amps > 0, np.log(np.maximum(amps, 1e-300)), -np.inf)
    alpha = theta[1 + k :].copy()
    se = math.exp(prob.log_se)
    A = amps[1:] * np.exp(alpha * prob.log_sx)  # undo x normalisation: A (x/sx)^-a = A sx^a x^-a
    if prob.chance is None:
        A = A * se  # the additive law's amplitudes carry err units; the chance law's s is unitless
    value, _ = objective(np.maximum(theta, LOG_FLOOR - 50.0), prob)
    return Solution(
        E=float(amps[0] * se),
        A=A,
        alpha=alpha,
        chance=None if prob.chance is None else prob.chance * se,
        objective=value * prob.delta,
        converged=best.ok,
        message=message,
        theta=theta,
        info=info,
    )


def _multistart(prob: Problem, alpha_max: float, n_starts: int, seed: int) -> Refined | None:
    """Random exponents, amplitudes by NNLS, refined; the best converged run (or None)."""
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(n_starts):
        a = rng.uniform(0.0, alpha_max, prob.k)
        c = nnls_amplitudes(prob, a)
        runs.append(refine(_theta_from_linear(c[0], c[1:], a), prob, alpha_max))
    return _pick(runs)


def _pick(runs: list[Refined]) -> Refined | None:
    ok = [r for r in runs if r.ok]
    return min(ok, key=lambda r: r.value) if ok else None


def _varpro(prob: Problem, **kw: Any) -> Solution:
    with single_threaded_blas():  # tiny BLAS calls: threads only add synchronisation (scaling.core.threads)
        return _varpro_impl(prob, **kw)


def _varpro_impl(
    prob: Problem,
    *,
    alpha_max: float,
    grid_points: int | None,
    n_refine: int,
    n_starts: int,
    seed: int,
    extra_starts: list[np.ndarray],
    name: str,
) -> Solution:
    """Grid + NNLS, refine the best separated grid points (and ``extra_starts``), fall back to
    multi-start when none converges; FitError if nothing does."""
    g = grid_points or DEFAULT_GRID.get(prob.k, 13)
    if g < 2:
        raise FitError(f"{name}: grid_points must be >= 2; got {g}")
    grid = np.linspace(0.0, alpha_max, g)
    combos, coefs, values = grid_search(prob, grid)
    picks = _separated_best(combos, values, n_refine)
    starts = [_theta_from_linear(coefs[i, 0], coefs[i, 1:], grid[combos[i]]) for i in picks] + extra_starts
    runs = [refine(t, prob, alpha_max) for t in starts]
    best = _pick(runs)
    info: dict[str, Any] = {
        "grid_points": g,
        "grid_evaluations": len(combos),
        "grid_objective": float(values[picks[0]]) if picks else math.inf,
        "refined": len(runs),
        "fallback_starts": 0,
    }
    message = "VarPro grid + L-BFGS-B refinement converged"
    if best is None:
        best = _multistart(prob, alpha_max, n_starts, seed)
        info["fallback_starts"] = n_starts
        if best is None:
            msgs = "; ".join(sorted({r.message for r in runs}))
            raise FitError(
                f"{name} did not converge from {len(runs)} refinements and {n_starts} random starts ({msgs})"
            )
        message = "grid refinements failed; multi-start L-BFGS-B fallback converged"
    return _finish(best, prob, message, info)


def solve_powerlaw(
    X: np.ndarray,
    err: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
    alpha_max: float = ALPHA_MAX,
    grid_points: int | None = None,
    n_refine: int = 5,
    n_starts: int = 20,
    seed: int = 0,
) -> Solution:
    """VarPro fit of err = E + sum_k A_k x_k^-alpha_k (X: (n, k) > 0, err > 0)."""
    prob = make_problem(X, err, weights, delta)
    return _varpro(
        prob,
        alpha_max=alpha_max,
        grid_points=grid_points,
        n_refine=n_refine,
        n_starts=n_starts,
        seed=seed,
        extra_starts=[],
        name="power law",
    )


def solve_chance(
    X: np.ndarray,
    err: np.ndarray,
    chance: float,
    *,
    weights: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
    alpha_max: float = ALPHA_MAX,
    grid_points: int | None = None,
    n_refine: int = 5,
    n_starts: int = 20,
    seed: int = 0,
    init: Solution | None = None,
) -> Solution:
    """Fit err = E + (c - E) s / (1 + s), s = sum_k A_k x_k^-alpha_k.

    Starts: the additive power-law fit (amplitudes divided by c - E, which matches the two laws where s
    is small) and the best points of a VarPro grid on the linearised chance law (see _feature_weight).
    """
    common: dict[str, Any] = {"delta": delta, "alpha_max": alpha_max, "grid_points": grid_points,
                              "n_refine": n_refine}
    if init is None:
        init = solve_powerlaw(X, err, weights=weights, n_starts=n_starts, seed=seed, **common)
    prob = make_problem(X, err, weights, delta, chance)
    c = prob.chance
    assert c is not None  # make_problem was given a chance
    se = math.exp(prob.log_se)
    E0 = init.E / se if init.E < chance else 0.5 * c
    A0 = init.A * np.exp(-init.alpha * prob.log_sx) / se / (c - E0)
    return _varpro(
        prob,
        alpha_max=alpha_max,
        grid_points=grid_points,
        n_refine=n_refine,
        n_starts=n_starts,
        seed=seed,
        extra_starts=[_theta_from_linear(E0, A0, init.alpha)],
        name="chance-ceiling power law",
    )


def predict_error(sol: Solution, X: np.ndarray) -> np.ndarray:
    """err at the rows of X (user units)."""
    s = np.sum(sol.A * np.asarray(X, dtype=float) ** (-sol.alpha), axis=1)
    if sol.chance is None:
        return sol.E + s
    return (sol.E + sol.chance * s) / (1.0 + s)


def _normalised_theta(sol: Solution, prob: Problem) -> np.ndarray:
    """``sol`` (user units) as theta of ``prob``'s normalisation (the inverse of ``_finish``)."""
    se = math.exp(prob.log_se)
    A = sol.A * np.exp(-sol.alpha * prob.log_sx)
    if prob.chance is None:
        A = A / se
    return _theta_from_linear(sol.E / se, A, sol.alpha)


def screen(prob: Problem, alphas: np.ndarray, irls: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A cheap VarPro screen of the exponent rows ``alphas`` (C, k): amplitudes by batched least squares.

    Like ``grid_search`` but with unconstrained normal equations instead of one NNLS per row, followed by
    ``irls`` iteratively reweighted steps towards the log-Huber optimum of the amplitudes (weights
    psi(r)/r; with delta = 1e-3 the loss is nearly L1 and plain least squares overstates the objective
    by several percent). A row whose first solution has E < 0 is solved with E = 0 instead (the usual
    NNLS active set on accuracy grids, which show no floor); rows with a negative amplitude left are
    discarded (inf) rather than projected, so the screen only proposes starting points and never
    replaces the NNLS grid. Returns (amplitudes (E, A_k), log-Huber objectives), one row per row.
    """
    k, n, c = prob.k, len(prob.lerr), len(alphas)
    err = np.exp(prob.lerr)
    F = np.exp(-alphas[:, None, :] * prob.lx[None, :, :])  # (C, n, k) raw features
    base = np.concatenate([np.ones((c, n, 1)), _feature_weight(prob)[None, :, None] * F], axis=2) / err[None, :, None]
    use_e = np.ones(c, dtype=bool)
    u = np.broadcast_to(prob.w, (c, n))  # per-row IRLS weights
    coef = np.zeros((c, k + 1))
    v = np.full(c, np.inf)
    for it in range(irls + 2):
        M = base * np.sqrt(u)[:, :, None]
        M[~use_e, :, 0] = 0.0
        G = np.matmul(M.transpose(0, 2, 1), M)
        G[~use_e, 0, 0] = 1.0  # E's column is zero on these rows: pin E = 0
        b = np.matmul(M.transpose(0, 2, 1), np.sqrt(u)[:, :, None])
        try:
            coef = np.linalg.solve(G + 1e-12 * np.eye(k + 1), b)[..., 0]
        except np.linalg.LinAlgError:
            return np.zeros((c, k + 1)), np.full(c, np.inf)
        if it == 0:  # NNLS-like active set for E, then start again with unit weights
            use_e = coef[:, 0] >= 0
            continue
        s = np.matmul(F, coef[:, 1:, None])[..., 0]
        E = coef[:, :1]
        with np.errstate(all="ignore"):
            p = E + s if prob.chance is None else (E + prob.chance * s) / (1.0 + s)
            r = np.log(p) - prob.lerr
            v = np.sum(prob.w * huber(r, prob.delta), axis=1)
            u = prob.w * np.minimum(1.0, prob.delta / np.maximum(np.abs(np.nan_to_num(r, nan=1.0)), 1e-300))
    ok = np.all(coef >= 0, axis=1) & np.isfinite(v)
    if prob.chance is not None:
        ok &= coef[:, 0] < prob.chance
    return coef, np.where(ok, v, np.inf)


def _local_minima(values: np.ndarray, axes: tuple[int, ...] | None = None) -> np.ndarray:
    """Mask of the entries of an n-d array that are <= their neighbours along ``axes`` (finite only)."""
    ok = np.isfinite(values)
    for axis in range(values.ndim) if axes is None else axes:
        for shift in (1, -1):
            nb = np.roll(values, shift, axis=axis)
            edge: list[slice | int] = [slice(None)] * values.ndim
            edge[axis] = 0 if shift == 1 else -1
            nb[tuple(edge)] = np.inf  # no wrap-around
            ok &= values <= nb
    return ok


def _screen_candidates(
    prob: Problem, alpha_w: np.ndarray, alpha_max: float, coarse: int, fine: int, irls: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Starting points in other basins than the warm optimum ``alpha_w``: screened local minima of a
    coarse product grid of exponents and of a fine scan of each exponent alone (the others at their warm
    values; flat valleys along one exponent are the usual way a resample's optimum moves to another
    basin). Minima within 0.1 of ``alpha_w`` in every exponent are the warm basin itself and are dropped.
    Returns (exponent rows, amplitudes, screened objectives), best first."""
    k = len(alpha_w)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if coarse >= 2:
        rows = np.array(list(itertools.product(np.linspace(0.0, alpha_max, coarse), repeat=k)))
        coefs, values = screen(prob, rows, irls=irls)
        mask = _local_minima(values.reshape((coarse,) * k)).reshape(-1)
        found.append((rows[mask], coefs[mask], values[mask]))
    if fine >= 2:
        line = np.linspace(0.0, alpha_max, fine)
        rows = np.repeat(alpha_w[None, :], k * fine, axis=0)
        for j in range(k):
            rows[j * fine : (j + 1) * fine, j] = line
        coefs, values = screen(prob, rows, irls=irls)
        mask = _local_minima(values.reshape(k, fine), axes=(1,)).reshape(-1)
        found.append((rows[mask], coefs[mask], values[mask]))
    if not found:
        return np.empty((0, k)), np.empty((0, k + 1)), np.empty(0)
    rows = np.concatenate([f[0] for f in found])
    coefs = np.concatenate([f[1] for f in found])
    values = np.concatenate([f[2] for f in found])
    keep = np.max(np.abs(rows - alpha_w[None, :]), axis=1) > 0.1
    order = np.argsort(values[keep], kind="stable")
    return rows[keep][order], coefs[keep][order], values[keep][order]


def solve_warm(
    X: np.ndarray,
    err: np.ndarray,
    init: Solution,
    *,
    weights: np.ndarray | None = None,
    delta: float = HUBER_DELTA,
    alpha_max: float = ALPHA_MAX,
    screen_coarse: int = 3,
    screen_fine: int = 21,
    screen_margin: float = 0.01,
    screen_irls: int = 3,
    screen_refine: int = 2,
    n_refine: int = 5,
    n_starts: int = 20,
    seed: int = 0,
) -> Solution:
    """Refit the law of ``init`` (additive, or chance with ``init.chance``) to data close to its own.

    Made for bootstrap resamples. Refine from ``init`` itself (its exponents and amplitudes; then once
    more from the result, because L-BFGS-B on the nearly-L1 Huber loss can stop early in flat valleys).
    Then screen other basins (``_screen_candidates``: local minima of a coarse exponent grid and of a
    fine scan of each exponent) and also refine the best ``screen_refine`` of them whose screened
    objective is within ``screen_margin`` of the warm one: a resample whose optimum switched basin still
    finds it. When no refinement converges, the full cold fit (grid + NNLS, multi-start
    fallback) is run. ``info['path']`` says which won: 'warm', 'screen' or 'cold'.
    """
    with single_threaded_blas():  # tiny BLAS calls: threads only add synchronisation (scaling.core.threads)
        return _solve_warm(X, err, init, weights=weights, delta=delta, alpha_max=alpha_max,
                           screen_coarse=screen_coarse, screen_fine=screen_fine, screen_margin=screen_margin,
                           screen_irls=screen_irls, screen_refine=screen_refine, n_refine=n_refine,
                           n_starts=n_starts, seed=seed)


def _solve_warm(X: np.ndarray, err: np.ndarray, init: Solution, *, weights: np.ndarray | None, delta: float,
                alpha_max: float, screen_coarse: int, screen_fine: int, screen_margin: float, screen_irls: int,
                screen_refine: int, n_refine: int, n_starts: int, seed: int) -> Solution:
    prob = make_problem(X, err, weights, delta, init.chance)
    first = refine(_normalised_theta(init, prob), prob, alpha_max)
    runs = [first, refine(first.theta, prob, alpha_max)] if first.ok else [first]
    warm = _pick(runs)
    alpha_w = (warm or first).theta[1 + prob.k :]
    rows, coefs, values = _screen_candidates(prob, alpha_w, alpha_max, screen_coarse, screen_fine, screen_irls)
    bar = warm.value * prob.delta if warm is not None else math.inf
    n_warm = len(runs)
    for i in range(min(len(rows), screen_refine)):
        if values[i] > bar * (1.0 + screen_margin):
            break
        runs.append(refine(_theta_from_linear(coefs[i, 0], coefs[i, 1:], rows[i]), prob, alpha_max))
    best = _pick(runs)
    if best is None:
        name = "power law" if init.chance is None else "chance-ceiling power law"
        sol = _varpro(prob, alpha_max=alpha_max, grid_points=None, n_refine=n_refine, n_starts=n_starts,
                      seed=seed, extra_starts=[], name=name)
        return _with_info(sol, path="cold")
    path = "screen" if any(best is r for r in runs[n_warm:]) else "warm"
    return _finish(best, prob, f"warm start ({path}) converged", {"path": path, "refined": len(runs)})


def _with_info(sol: Solution, **extra: Any) -> Solution:
    return Solution(sol.E, sol.A, sol.alpha, sol.chance, sol.objective, sol.converged, sol.message, sol.theta,
                    {**sol.info, **extra})
