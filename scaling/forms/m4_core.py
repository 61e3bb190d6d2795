"""Numerical core of M4 (Alabdulmohsin, Neyshabur, Zhai 2022, arXiv 2209.06640), on numpy arrays only.

    (L - L_inf) / (L0 - L)^alpha = s(x),   s(x) = sum_k beta_k x_k^c_k,   c_k <= 0, alpha >= 0

L is the error (1 - accuracy) or the loss. For alpha > 0 the left side rises monotonically from 0 to
infinity as L goes from L_inf to L0, so each s > 0 has one L in (L_inf, L0) (``solve_level``): the curve
starts at L0 (chance) for tiny x and falls to L_inf. For alpha = 0 it is M2, L = L_inf + s, with no
ceiling at L0 (the paper's predictor does the same for alpha ~ 0).

Estimator. The paper's (google-research ``revisiting_neural_scaling_laws``, method m4) minimises the
squared residual of the implicit equation in logs, log(L - L_inf) - alpha log(L0 - L) - log(beta x^c),
alternating a regression for (log beta, c, alpha) with gradient and Newton steps on L_inf <= min L -
1e-3 and L0 >= max L + 1e-3 (L0 started at chance). Ours minimises by default what a forecast is judged
by, the summed Huber loss of log(predicted L) - log(observed L) (``implicit=True``: the paper's
residual, to its optimum), by bounded trust-region least squares (scipy ``least_squares``; Jacobian by
implicit differentiation) from several starts (``solve_m4``). Internally each axis is divided by its
geometric mean and L by its largest value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import least_squares
from scipy.special import expit

from scaling.core.threads import single_threaded_blas
from scaling.defaults import HUBER_DELTA, SLOPE_MAX
from scaling.errors import FitError
from scaling.forms.varpro import Refined, huber, solve_powerlaw

LOG2 = math.log(2.0)
MARGIN = 1e-3  # L_inf <= min L (1 - MARGIN), L0 >= max L (1 + MARGIN): the paper's 1e-3 margin, relative
SNAP = 1e-9  # E (in units of max L), alpha or -c below this is reported as exactly 0
LOG_BETA = 40.0  # |log beta| bound in normalised units: keeps exp() finite
START_ALPHAS = (0.0, 0.5, 1.0, 2.0, 3.0)
START_L0S = np.array([0.02, 0.2, 1.0])  # fitted L0: these shares of its range (max L, l0_max]
M2_GRID = {1: 51, 2: 21, 3: 11}  # exponent grid of the M2 start (a start only: coarser than powerlaw's)


@dataclass(frozen=True)
class M4Solution:
    """A fitted M4 law in the user's units (L_inf = E; beta in L^(1 - alpha) units)."""

    E: float
    L0: float
    alpha: float
    beta: np.ndarray  # (k,)
    c: np.ndarray  # (k,), <= 0
    objective: float  # summed Huber loss of the log residuals (half their squares for delta = inf)
    converged: bool
    message: str
    l0_fixed: bool
    info: dict[str, Any] = field(default_factory=dict)


def solve_level(E: float, L0: float, alpha: float, s: np.ndarray,
                y0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(L, L - E, L0 - L, y) solving (L - E) / (L0 - L)^alpha = s elementwise (s >= 0; s = 0 gives L = E).

    In u = (L - E) / (L0 - E) the equation is log u - alpha log(1 - u) = log s + (alpha - 1) log(L0 - E),
    solved for y = logit(u) (``_solve_phi``); L comes from u or 1 - u, whichever is small, so it stays
    exact next to L_inf and next to L0. y (None for alpha = 0) is a guess ``y0`` for the next call."""
    s = np.asarray(s, dtype=float)
    b = L0 - E
    if alpha <= 0.0:
        return E + s, s.copy(), b - s, None
    with np.errstate(divide="ignore"):
        t = np.log(s) + (alpha - 1.0) * math.log(b)
    finite = np.isfinite(t)
    y = _solve_phi(np.where(finite, t, 0.0), alpha, y0)
    u, u1 = expit(y), expit(-y)
    if not finite.all():
        u = np.where(t == -np.inf, 0.0, np.where(t == np.inf, 1.0, u))
        u1 = np.where(finite, u1, 1.0 - u)
    w, v = b * u, b * u1
    return np.where(u <= 0.5, E + w, L0 - v), w, v, y


def _solve_phi(t: np.ndarray, alpha: float, y0: np.ndarray | None = None, iters: int = 100) -> np.ndarray:
    """y with phi(y) = alpha softplus(y) - softplus(-y) = t, i.e. log u - alpha log(1 - u) = t for
    u = expit(y). phi rises with slope between min(1, alpha) and max(1, alpha), and alpha y+ - y- - log 2 <=
    phi(y) <= alpha y+ - y- + alpha log 2, so the root lies between the inverses of those piecewise-linear
    bounds: Newton steps inside that bracket, bisection when a step leaves it, converge for every t."""

    def inverse(p: np.ndarray) -> np.ndarray:
        return np.where(p >= 0, p / alpha, p)

    lo, hi = inverse(t - alpha * LOG2), inverse(t + LOG2)
    y = np.clip(inverse(t) if y0 is None or y0.shape != t.shape else y0, lo, hi)
    fin = np.zeros(t.shape, dtype=bool)  # converged elements stay where they are
    for _ in range(iters):
        q = np.exp(-np.abs(y))  # softplus(+-y) = max(+-y, 0) + log1p(q); sigmoid(y) from q too
        lq = np.log1p(q)
        f = alpha * (np.maximum(y, 0.0) + lq) - (np.maximum(-y, 0.0) + lq) - t
        sig = np.where(y >= 0, 1.0, q) / (1.0 + q)
        lo, hi = np.where(f < 0, y, lo), np.where(f > 0, y, hi)
        new = y - f / (alpha * sig + (1.0 - sig))
        new = np.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
        small = np.abs(f) <= 4e-16 * (1.0 + np.abs(t))  # the residual is at rounding level
        new = np.where(fin | small, y, new)
        fin |= small | (np.abs(new - y) <= 1e-12 * (1.0 + np.abs(y)))
        y = new
        if fin.all():
            break
    return y


def terms(sol: M4Solution, X: np.ndarray) -> np.ndarray:
    """beta_k x_k^c_k, (n, k), user units."""
    return sol.beta * np.asarray(X, dtype=float) ** sol.c


def predict_error(sol: M4Solution, X: np.ndarray) -> np.ndarray:
    return solve_level(sol.E, sol.L0, sol.alpha, terms(sol, X).sum(axis=1))[0]


def limit_error(sol: M4Solution, tol: float = 1e-9) -> float:
    """L as every axis grows: terms with c_k < 0 vanish; a term with c_k = 0 stays as a constant."""
    s0 = float(np.sum(sol.beta[sol.c >= -tol]))
    return float(solve_level(sol.E, sol.L0, sol.alpha, np.array([s0]))[0][0])


@dataclass(frozen=True)
class Problem:
    """Normalised data and bounds. theta = (E, [L0], alpha, log beta_k, c_k) with E, L0 in units of max L."""

    lx: np.ndarray
    err: np.ndarray
    w: np.ndarray
    delta: float
    log_sx: np.ndarray
    se: float
    l0: float | None  # fixed L0 (normalised), or None when fitted
    lo: np.ndarray
    hi: np.ndarray
    implicit: bool

    @property
    def k(self) -> int:
        return self.lx.shape[1]

    @property
    def off(self) -> int:  # index of alpha in theta
        return 1 if self.l0 is not None else 2


def make_problem(X: np.ndarray, err: np.ndarray, weights: np.ndarray | None, *, delta: float, l0: float | None,
                 l0_max: float, alpha_max: float, c_max: float, implicit: bool) -> Problem:
    lx = np.log(np.asarray(X, dtype=float))
    log_sx, se, k = lx.mean(axis=0), float(np.max(err)), lx.shape[1]
    e = np.asarray(err, dtype=float) / se
    lo, hi = [0.0], [float(e.min()) * (1.0 - MARGIN)]
    if l0 is None:
        lo, hi = [*lo, 1.0 + MARGIN], [*hi, max(l0_max / se, 1.0 + 2 * MARGIN)]
    lo += [0.0] + [-LOG_BETA] * k + [-c_max] * k
    hi += [alpha_max] + [LOG_BETA] * k + [0.0] * k
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=float)
    return Problem(lx - log_sx, e, w, float(delta), log_sx, se, None if l0 is None else l0 / se,
                   np.array(lo), np.array(hi), implicit)


def _unpack(theta: np.ndarray, prob: Problem) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    o, k = prob.off, prob.k
    L0 = prob.l0 if prob.l0 is not None else float(theta[1])
    return float(theta[0]), float(L0), float(theta[o]), theta[o + 1 : o + 1 + k], theta[o + 1 + k :]


def _model(theta: np.ndarray, prob: Problem,
           y0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Log residuals r, their Jacobian d r / d theta (prediction or implicit residual) and the solver's
    logit (a guess for the next call, ``y0``)."""
    E, L0, alpha, lb, c = _unpack(theta, prob)
    S = np.exp(lb + prob.lx * c)  # (n, k)
    s = S.sum(axis=1)
    share = S / s[:, None]
    cols: list[np.ndarray] = []
    if prob.implicit:
        e = prob.err
        v = L0 - e
        lv = np.log(v)
        r = np.log(e - E) - alpha * lv - np.log(s)
        cols.append(-1.0 / (e - E))
        if prob.l0 is None:
            cols.append(-alpha / v)
        cols.append(-lv)
        J = np.column_stack([*cols, -share, -share * prob.lx])
        return r, J, None
    pred, w, v, y = solve_level(E, L0, alpha, s, y0)
    # Implicit differentiation of log w - alpha log v = log s; D > 0 whenever the root exists.
    D = v + alpha * w
    common = w * v / D
    cols.append(v / D)
    if prob.l0 is None:
        cols.append(alpha * w / D)
    cols.append(common * np.log(np.maximum(v, 1e-300)))
    dS = common[:, None] * share
    J = np.column_stack([*cols, dS, dS * prob.lx]) / pred[:, None]
    return np.log(pred) - np.log(prob.err), J, y


def objective(theta: np.ndarray, prob: Problem) -> float:
    """Summed weighted Huber loss of the residuals (half the sum of squares when delta is infinite)."""
    with np.errstate(all="ignore"):
        value = float(prob.w @ huber(_model(theta, prob)[0], prob.delta))
    return value if math.isfinite(value) else math.inf


def _weighted_huber(wt: np.ndarray) -> Any:
    """scipy's loss callable: rho(z), rho'(z), rho''(z) of the Huber loss in z = (r / delta)^2, weighted."""

    def loss(z: np.ndarray) -> np.ndarray:
        big = z > 1.0
        zb = np.where(big, z, 1.0)
        sz = np.sqrt(zb)
        return wt * np.array([np.where(big, 2.0 * sz - 1.0, z), np.where(big, 1.0 / sz, 1.0),
                              np.where(big, -0.5 / (sz * zb), 0.0)])

    return loss


def refine(theta0: np.ndarray, prob: Problem, max_nfev: int = 1000) -> Refined:
    """Bounded trust-region least squares from theta0. Converged: scipy's ftol/xtol/gtol test was met."""
    span = prob.hi - prob.lo
    x0 = np.clip(theta0, prob.lo + 1e-9 * span, prob.hi - 1e-9 * span)
    cache: dict[str, Any] = {}

    def model(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if cache.get("theta") is None or not np.array_equal(cache["theta"], theta):
            with np.errstate(all="ignore"):
                r, J, y = _model(theta, prob, cache.get("y"))
            if not (np.all(np.isfinite(r)) and np.all(np.isfinite(J))):
                r, J = np.full_like(r, 1e6), np.zeros_like(J)  # outside the domain: a wall
            cache.update(theta=theta.copy(), r=r, J=J, y=y)
        return cache["r"], cache["J"]

    d, sw = prob.delta, np.sqrt(prob.w)
    if math.isinf(d):  # plain least squares on sqrt(w) r
        fun, jac, loss = (lambda t: sw * model(t)[0]), (lambda t: sw[:, None] * model(t)[1]), "linear"
    else:  # Huber: residuals r / delta, and rho(z) = z or 2 sqrt(z) - 1 times the point's weight
        fun, jac, loss = (lambda t: model(t)[0] / d), (lambda t: model(t)[1] / d), _weighted_huber(prob.w)
    try:
        res = least_squares(fun, x0, jac=jac, bounds=(prob.lo, prob.hi), method="trf", loss=loss, x_scale="jac",
                            ftol=1e-12, xtol=1e-12, gtol=1e-10, max_nfev=max_nfev)
    except (ValueError, np.linalg.LinAlgError) as exc:
        return Refined(x0, math.inf, False, str(exc).splitlines()[0])
    value = objective(res.x, prob)
    return Refined(res.x, value, bool(res.status > 0 and math.isfinite(value)), str(res.message))


def _theta(prob: Problem, E: float, L0: float, alpha: float, lb: np.ndarray, c: np.ndarray) -> np.ndarray:
    head = [E] if prob.l0 is not None else [E, L0]
    return np.concatenate([head, [alpha], lb, c])


def _m2_starts(X: np.ndarray, prob: Problem, alpha_max: float) -> list[np.ndarray]:
    """The M2 fit (VarPro) at alpha = 0, and mapped onto other alpha and L0: dividing beta by
    (L0 - median L)^alpha makes both laws agree in the middle of the data."""
    delta = prob.delta if math.isfinite(prob.delta) else 0.1
    try:
        m2 = solve_powerlaw(X, prob.err * prob.se, weights=prob.w, delta=delta, alpha_max=float(-prob.lo[-1]),
                            grid_points=M2_GRID.get(prob.k, 9), n_refine=1, n_starts=5)
    except FitError:
        return []
    E = min(m2.E / prob.se, float(prob.hi[0]))
    A = np.maximum(m2.A * np.exp(-m2.alpha * prob.log_sx) / prob.se, 1e-12)
    mid = float(np.median(prob.err))
    out, l0s = [], [prob.l0] if prob.l0 is not None else list(prob.lo[1] + (prob.hi[1] - prob.lo[1]) * START_L0S)
    for L0 in l0s:
        for a in START_ALPHAS:
            if a <= alpha_max and (a > 0.0 or L0 == l0s[-1]):  # at alpha = 0, L0 plays no part: once
                out.append(_theta(prob, E, L0, a, np.log(A) - a * math.log(L0 - mid), -m2.alpha))
    return out


def _implicit_grid_starts(prob: Problem, alpha_max: float, count: int = 3) -> list[np.ndarray]:
    """One axis: on a grid of (L_inf, L0) the paper's residual is linear in (log beta, c, alpha); solve
    each by weighted least squares (clipped to the bounds) and keep the best ``count`` grid points."""
    e, lx, sw = prob.err, prob.lx[:, 0], np.sqrt(prob.w)
    Es = float(prob.hi[0]) * (1.0 - np.geomspace(1e-3, 1.0, 12))
    grid = np.concatenate([[0.0], np.geomspace(1e-3, 1.0, 7)])
    L0s = [prob.l0] if prob.l0 is not None else list(prob.lo[1] + (prob.hi[1] - prob.lo[1]) * grid)
    found = []
    for L0 in L0s:
        lv = np.log(L0 - e)
        F = sw[:, None] * np.column_stack([np.ones_like(e), lx, lv])
        for E in Es:
            y = np.log(e - E)
            coef = np.linalg.lstsq(F, sw * y, rcond=None)[0]
            c = float(np.clip(coef[1], prob.lo[-1], 0.0))
            a = float(np.clip(coef[2], 0.0, alpha_max))
            lb = float(np.average(y - c * lx - a * lv, weights=prob.w))
            r = y - lb - c * lx - a * lv
            found.append((float(prob.w @ r**2), _theta(prob, float(E), float(L0), a, np.array([lb]), np.array([c]))))
    found.sort(key=lambda p: p[0])
    return [t for _, t in found[:count]]


def _finish(best: Refined, prob: Problem, message: str, info: dict[str, Any]) -> M4Solution:
    E, L0, alpha, lb, c = _unpack(best.theta, prob)
    # The trust region keeps iterates strictly inside the bounds: snap what is at a zero bound to it
    # (alpha -> 0 is M2, as in the paper's predictor; the change is below the optimiser's tolerance).
    E, alpha, c = (0.0 if E < SNAP else E), (0.0 if alpha < SNAP else alpha), np.where(c > -SNAP, 0.0, c)
    # Undo the normalisation: s = beta_n (x/sx)^c in units of se^(1 - alpha).
    beta = np.exp(lb - c * prob.log_sx) * prob.se ** (1.0 - alpha)
    return M4Solution(E * prob.se, L0 * prob.se, alpha, beta, c.copy(), best.value, best.ok, message,
                      prob.l0 is not None, info)


def to_theta(sol: M4Solution, prob: Problem) -> np.ndarray:
    """``sol`` (user units) in ``prob``'s normalisation (the inverse of ``_finish``), clipped to the bounds."""
    lb = np.log(np.maximum(sol.beta, 1e-300)) + sol.c * prob.log_sx - (1.0 - sol.alpha) * math.log(prob.se)
    theta = _theta(prob, sol.E / prob.se, sol.L0 / prob.se, sol.alpha, lb, sol.c)
    return np.clip(theta, prob.lo, prob.hi)


def _pick(runs: list[Refined]) -> Refined | None:
    """The best converged run; the best finite one when none converged."""
    finite = [r for r in runs if math.isfinite(r.value)]
    ok = [r for r in finite if r.ok] or finite
    return min(ok, key=lambda r: r.value) if ok else None


def _rough_runs(starts: list[np.ndarray], rough: Problem, prob: Problem,
                agree: int = 3) -> list[tuple[float, float, np.ndarray]]:
    """(true objective, least-squares value, theta) of short least-squares runs from the starts, most
    promising first, until ``agree`` of them reach the same best value (no better basin left, usually)."""
    out: list[tuple[float, float, np.ndarray]] = []
    for t in sorted(starts, key=lambda t: objective(t, rough)):
        r = refine(t, rough, 60)
        out.append((objective(r.theta, prob), r.value, r.theta))
        top = min(v for _, v, _ in out)
        if sum(v <= top * (1 + 1e-6) + 1e-20 for _, v, _ in out) >= agree:
            break
    return out


def _polish(theta: np.ndarray, prob: Problem) -> Refined:
    """Refine a least-squares solution for the Huber loss via a delta 10 times the target's: straight to
    a small delta (nearly L1) the trust region can stall at a kink next to the start."""
    if math.isfinite(prob.delta):
        theta = refine(theta, dataclasses.replace(prob, delta=10.0 * prob.delta)).theta
    return refine(theta, prob)


def _distinct(pre: list[tuple[float, float, np.ndarray]], count: int) -> list[np.ndarray]:
    """The ``count`` best thetas by true objective, one per least-squares optimum: runs whose values are
    within 0.1% are taken to share one (unfinished runs in one flat valley differ by about that much;
    distinct basins that close would fit about equally well)."""
    chosen: list[tuple[float, np.ndarray]] = []
    for v_true, v_ls, theta in sorted(pre, key=lambda p: p[0]):
        if len(chosen) >= count or not math.isfinite(v_true):
            break
        if all(abs(v_ls - u) > 1e-3 * abs(u) + 1e-20 for u, _ in chosen):
            chosen.append((v_ls, theta))
    return [t for _, t in chosen]


def solve_m4(X: np.ndarray, err: np.ndarray, *, weights: np.ndarray | None = None, delta: float = HUBER_DELTA,
             l0: float | None = None, l0_max: float = math.inf, alpha_max: float = SLOPE_MAX, c_max: float = 2.0,
             implicit: bool = False, n_polish: int = 2) -> M4Solution:
    """Fit M4 to err > 0 (X: (n, k) > 0); ``l0`` fixed or (None) fitted in (max err, l0_max].

    Starts: the M2 fit by variable projection (alpha = 0), that curve mapped onto alpha in {0.5, 1, 2, 3}
    and a few L0, and for one axis the best points of a grid over (L_inf, L0), where the paper's
    regression for (log beta, c, alpha) is linear and solved exactly.
    Every start is first run by plain least squares for a few dozen evaluations (fast, and close to the
    Huber optimum; ``_rough_runs``); the ``n_polish`` best distinct ones by the true objective are then
    refined to convergence. FitError when no start gives a finite objective."""
    with single_threaded_blas():  # tiny BLAS calls: threads only add synchronisation (scaling.core.threads)
        prob = make_problem(X, err, weights, delta=delta, l0=l0, l0_max=l0_max, alpha_max=alpha_max, c_max=c_max,
                            implicit=implicit)
        starts = _m2_starts(X, prob, alpha_max)
        if prob.k == 1:
            starts += _implicit_grid_starts(prob, alpha_max)
        rough = dataclasses.replace(prob, delta=math.inf)
        pre = _rough_runs(starts, rough, prob)
        runs = [_polish(t, prob) for t in _distinct(pre, n_polish)]
        best = _pick(runs)
    if best is None:
        raise FitError(f"m4 found no finite fit from {len(starts)} starts")
    values = sorted(r.value for r in runs if r.ok)
    optima = sum(1 for i, v in enumerate(values) if i == 0 or v > values[i - 1] * (1 + 1e-6) + 1e-15)
    info = {"starts": len(starts), "started": len(pre), "polished": len(runs), "converged": len(values),
            "distinct_optima": optima}
    message = "trust-region least squares converged" if best.ok else "no start converged; best objective kept"
    return _finish(best, prob, message, info)


def solve_m4_warm(X: np.ndarray, err: np.ndarray, init: M4Solution, *, weights: np.ndarray | None = None,
                  delta: float = HUBER_DELTA, l0_max: float = math.inf, alpha_max: float = SLOPE_MAX,
                  c_max: float = 2.0, implicit: bool = False) -> M4Solution:
    """Refit data close to ``init``'s (a bootstrap resample) from ``init`` alone; the full multi-start
    fit when that does not converge. ``info['path']`` is 'warm' or 'cold'."""
    l0 = init.L0 if init.l0_fixed else None
    kw: dict[str, Any] = {"delta": delta, "l0_max": l0_max, "alpha_max": alpha_max, "c_max": c_max,
                          "implicit": implicit}
    with single_threaded_blas():
        prob = make_problem(X, err, weights, l0=l0, **kw)
        run = _polish(to_theta(init, prob), prob)
    if run.ok:
        return _finish(run, prob, "warm start converged", {"path": "warm"})
    sol = solve_m4(X, err, weights=weights, l0=l0, **kw)
    return dataclasses.replace(sol, info={**sol.info, "path": "cold"})
