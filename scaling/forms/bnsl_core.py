"""Numerical core of the ``bnsl`` form: a smoothly broken power law fitted in log space (numpy only).

    err(x) = a + b x^-c0 prod_{i=1..n} (1 + (x / d_i)^(1/f_i))^(-c_i f_i)     (Caballero et al. 2022)

``err`` is 1 - accuracy or the loss. The objective is the one of ``scaling.forms.varpro``: the SUMMED
Huber loss (delta 1e-3) of log(pred) - log(err). Inside, x enters as u = ln x - mean(ln x), err is
divided by its geometric mean, and the slopes are the *segment slopes* s_k = c0 + c_1 + ... + c_k, the
log-log slope of err - a past break k. With h_0 = u, h_i = f_i softplus((u - ln d_i) / f_i), h_{n+1} = 0,

    ln(err - a) = ln b - sum_k s_k psi_k(u),   psi_k = h_k - h_{k+1},

so for fixed breaks (d_i, f_i) and a fixed floor a the law is linear in (ln b, s_k), and for fixed
(s_k, d_i, f_i) it is linear in (a, b). Keeping every s_k in [0, slope_max] keeps err from rising in x
between well-separated breaks (no double descent) and gives the law a limit (the local slope tends to
s_n >= 0), so a target can be inverted.

Fit with n breaks (``solve``): a grid over the break positions ln d_i (``break_range``, ordered)
and a few sharpnesses f_i, with a few floors a = q min(err): at each grid point (ln b, s_k) by weighted
least squares on ln(err - a) (weights ((err - a)/err)^2, so the residual approximates the log error),
slopes clipped to their bounds, ranked by the true objective. The best separated grid points get
(a, b) by NNLS (variable projection) and are refined by L-BFGS-B on every parameter with an analytic
gradient; random starts are the fallback when none converges.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize, nnls

from scaling.core.threads import single_threaded_blas
from scaling.defaults import BNSL_SLOPE_MAX, HUBER_DELTA
from scaling.errors import FitError
from scaling.forms import varpro_batch as vb
from scaling.forms.batch import counts, minimise
from scaling.forms.varpro import BOUND_TOL, LOG_FLOOR, ZERO_REL, Refined, huber, log_huber

LOG_B = 60.0  # |ln b| bound (normalised units): keeps exp() finite
F_MIN, F_MAX = 0.01, 10.0  # break sharpness f (a width in ln x): sharper than 1% is a kink
FLOORS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)  # screened floors a, as fractions of min(err)
SHARPNESS = (0.05, 0.3, 1.5)  # screened f
DEFAULT_POSITIONS = {1: 25, 2: 13, 3: 8}  # screened break positions per break


@dataclass(frozen=True)
class Problem:
    u: np.ndarray  # ln x - mu
    le: np.ndarray  # ln err - log_se
    w: np.ndarray
    delta: float
    mu: float
    log_se: float
    slope_max: float

    @property
    def d_bounds(self) -> tuple[float, float]:
        return break_range(self.u)


def break_range(lx: np.ndarray) -> tuple[float, float]:
    """Where a break may sit, in ln x: from the second-smallest to the third-largest distinct value, so
    that at least two values lie beyond it. A break among the last points cannot be told from noise and
    its slope is free: fitted there, it extrapolates wildly (seen in held-out folds before this rule)."""
    levels = np.unique(lx)
    if len(levels) < 4:
        return float(levels[0]), float(levels[-1])
    return float(levels[1]), float(levels[-3])


def make_problem(x: np.ndarray, err: np.ndarray, weights: np.ndarray | None, delta: float,
                 slope_max: float) -> Problem:
    lx, le = np.log(np.asarray(x, dtype=float)), np.log(np.asarray(err, dtype=float))
    w = np.ones(len(le)) if weights is None else np.asarray(weights, dtype=float)
    mu, log_se = float(lx.mean()), float(le.mean())
    return Problem(lx - mu, le - log_se, w, float(delta), mu, log_se, float(slope_max))


@dataclass(frozen=True)
class Solution:
    """A fitted law in user units; ``c`` = (c0, c_1..c_n) as in the paper, breaks sorted by d."""

    a: float
    b: float
    c: np.ndarray
    d: np.ndarray
    f: np.ndarray
    objective: float  # summed log-Huber loss
    converged: bool
    message: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_breaks(self) -> int:
        return len(self.d)

    @property
    def slopes(self) -> np.ndarray:
        """Segment slopes s_k = c0 + ... + c_k (the last one is the final slope)."""
        return np.cumsum(self.c)


def log_term(sol: Solution, x: np.ndarray) -> np.ndarray:
    """ln of b x^-c0 prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i), computed stably (softplus in logs)."""
    lx = np.log(np.asarray(x, dtype=float))
    out = math.log(sol.b) - sol.c[0] * lx if sol.b > 0 else np.full(lx.shape, -np.inf)
    for ci, di, fi in zip(sol.c[1:], sol.d, sol.f, strict=True):
        out = out - ci * fi * np.logaddexp(0.0, (lx - math.log(di)) / fi)
    return out


def predict_error(sol: Solution, x: np.ndarray) -> np.ndarray:
    return sol.a + np.exp(log_term(sol, x))


def limit(sol: Solution) -> float:
    """err as x grows: a when the final slope is positive; with a flat last segment the term tends to
    b prod_i d_i^c_i (x^-c0 prod (x/d_i)^-c_i with c0 + sum c_i = 0)."""
    if sol.slopes[-1] > BOUND_TOL or sol.b == 0:
        return sol.a
    return sol.a + sol.b * math.exp(float(np.sum(sol.c[1:] * np.log(sol.d))))


# -- the objective --------------------------------------------------------------------------------


def _unpack(theta: np.ndarray, n: int) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """theta = (ln a, ln b, s_0..s_n, ln d_1..ln d_n, ln f_1..ln f_n) -> (a, ln b, s, ln d, f)."""
    return math.exp(theta[0]), theta[1], theta[2 : 3 + n], theta[3 + n : 3 + 2 * n], np.exp(theta[3 + 2 * n :])


def _features(u: np.ndarray, ld: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """psi (m, n+1), and z_i, softplus(z_i) (m, n) for breaks at ln d = ld with sharpness f."""
    z = (u[:, None] - ld[None, :]) / f[None, :]
    sp = np.logaddexp(0.0, z)
    h = np.concatenate([u[:, None], f[None, :] * sp, np.zeros((len(u), 1))], axis=1)
    return h[:, :-1] - h[:, 1:], z, sp


def objective(theta: np.ndarray, prob: Problem, n: int) -> tuple[float, np.ndarray]:
    """Summed log-Huber loss / delta and its gradient in theta (see ``_unpack``).

    Written with few numpy calls (no psi matrix): L-BFGS-B calls it hundreds of times per fit and
    numpy's per-call overhead, not arithmetic, is what it costs on a few dozen points.
    """
    a, lb, s, ld, f = _unpack(theta, n)
    u = prob.u
    z = (u[:, None] - ld) / f  # (m, n)
    ez = np.exp(-np.abs(z))
    sp = np.maximum(z, 0.0) + np.log1p(ez)  # softplus(z)
    sig = np.where(z >= 0.0, 1.0, ez) / (1.0 + ez)  # sigmoid(z)
    h = f * sp
    c = s[1:] - s[:-1]  # c_i = s_i - s_{i-1}
    lg = lb - s[0] * u - h @ c
    if lg.max() > 700:
        return math.inf, np.zeros_like(theta)
    g = np.exp(lg)
    p = a + g
    if not p.min() > 0:
        return math.inf, np.zeros_like(theta)
    d = prob.delta
    value, G = log_huber(p, prob.le, prob.w, d)  # G: d loss / d p
    Gg = G * g  # d loss / d ln g
    H = np.concatenate([[Gg @ u], Gg @ h, [0.0]])  # d loss / d s_k = -(H_k - H_{k+1})
    grad = np.concatenate([[a * G.sum(), Gg.sum()], H[1:] - H[:-1], c * (Gg @ sig), -c * f * (Gg @ (sp - z * sig))])
    return value / d, grad / d


def bounds(prob: Problem, n: int) -> list[tuple[float, float]]:
    top_a = float(prob.le.max()) + 1.0
    lo, hi = prob.d_bounds
    return ([(LOG_FLOOR, top_a), (-LOG_B, LOG_B)] + [(0.0, prob.slope_max)] * (n + 1)
            + [(lo, hi)] * n + [(math.log(F_MIN), math.log(F_MAX))] * n)


def refine(theta0: np.ndarray, prob: Problem, n: int) -> Refined:
    """L-BFGS-B from theta0; converged as in ``scaling.forms.varpro.refine`` (scipy's test, or a projected
    gradient negligible next to the objective: the nearly-L1 loss often ends in 'ABNORMAL_TERMINATION')."""
    bnd = bounds(prob, n)
    lo, hi = np.array([b[0] for b in bnd]), np.array([b[1] for b in bnd])
    x0 = np.clip(theta0, lo, hi)
    res = minimize(objective, x0, args=(prob, n), jac=True, method="L-BFGS-B", bounds=bnd,
                   options={"maxiter": 3000, "maxfun": 10000, "ftol": 1e-13, "gtol": 1e-9, "maxcor": 30})
    value, grad = objective(res.x, prob, n)
    pg = np.where((res.x <= lo + 1e-12) & (grad > 0), 0.0, grad)
    pg = np.where((res.x >= hi - 1e-12) & (pg < 0), 0.0, pg)
    small = bool(np.max(np.abs(pg)) <= 1e-5 * max(1.0, value))
    return Refined(res.x, value, bool(np.isfinite(value) and (res.success or small)), str(res.message))


# -- the grid screen ------------------------------------------------------------------------------


def screen(prob: Problem, n: int, positions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ordered choice of n break positions out of ``positions`` inside the data, every sharpness
    in SHARPNESS per break and every floor in FLOORS: (ln b, s) by weighted least squares on
    ln(err - a), slopes clipped. Returns (position indices (C, n), thetas (C, len theta), values (C,)),
    the best floor of each (positions, sharpness) row."""
    u, e = prob.u, np.exp(prob.le)
    m = len(u)
    grid = np.linspace(*prob.d_bounds, positions)
    combos, shapes = list(itertools.combinations(range(positions), n)), list(itertools.product(SHARPNESS, repeat=n))
    pos = np.array(combos, dtype=int).reshape(len(combos), n)
    sharp = np.array(shapes, dtype=float).reshape(len(shapes), n)
    P = np.repeat(pos, len(sharp), axis=0)
    F = np.tile(sharp, (len(pos), 1))
    ld = grid[P]  # (C, n)
    z = (u[None, :, None] - ld[:, None, :]) / F[:, None, :]
    h = np.concatenate([np.broadcast_to(u[None, :, None], (len(ld), m, 1)), F[:, None, :] * np.logaddexp(0.0, z),
                        np.zeros((len(ld), m, 1))], axis=2)
    psi = h[..., :-1] - h[..., 1:]  # (C, m, n+1)
    D = np.concatenate([np.ones((len(ld), m, 1)), -psi], axis=2)  # columns: ln b, s_0..s_n
    Dt = D.transpose(0, 2, 1)
    DD = (D[:, :, :, None] * D[:, :, None, :]).transpose(0, 2, 3, 1)  # (C, k, k, m): one matmul per floor
    amin = float(e.min())
    best_v = np.full(len(ld), np.inf)
    best_theta = np.zeros((len(ld), 3 + 3 * n))
    for q in FLOORS:
        a = q * amin
        y = np.log(e - a)
        om = prob.w * ((e - a) / e) ** 2  # the delta method: d ln err = (err - a)/err d ln(err - a)
        G = DD @ om + 1e-10 * np.eye(n + 2)
        coef = np.linalg.solve(G, (Dt @ (om * y))[..., None])[..., 0]
        s = np.clip(coef[:, 1:], 0.0, prob.slope_max)
        slope_part = (psi @ s[:, :, None])[..., 0]  # (C, m)
        lb = ((y[None, :] + slope_part) @ om) / om.sum()  # ln b given the clipped slopes
        lp = np.log(a + np.exp(np.clip(lb[:, None] - slope_part, -700, 700)))
        v = (huber(lp - prob.le[None, :], prob.delta) @ prob.w) / prob.delta
        better = v < best_v
        best_v = np.where(better, v, best_v)
        theta = np.concatenate([np.full((len(ld), 1), math.log(max(a, math.exp(LOG_FLOOR)))), lb[:, None], s,
                                ld, np.log(F)], axis=1)
        best_theta[better] = theta[better]
    return P, best_theta, np.where(np.isfinite(best_v), best_v, np.inf)


def separated_best(P: np.ndarray, values: np.ndarray, count: int, gap: int = 1) -> list[int]:
    """The best rows whose break positions differ by more than ``gap`` grid steps from those taken."""
    chosen: list[int] = []
    for i in np.argsort(values, kind="stable"):
        if not np.isfinite(values[i]) or len(chosen) >= count:
            break
        if all(np.max(np.abs(P[i] - P[c]), initial=0) > gap for c in chosen):
            chosen.append(int(i))
    return chosen


def project_amplitudes(theta: np.ndarray, prob: Problem, n: int) -> np.ndarray:
    """theta with (a, b) >= 0 by NNLS on the 1/err-weighted residual for its fixed (s, d, f) (VarPro),
    when that lowers the objective."""
    _, _, s, ld, f = _unpack(theta, n)
    psi, _, _ = _features(prob.u, ld, f)
    e = np.exp(prob.le)
    rho = np.sqrt(prob.w) / e
    g = np.exp(np.clip(-psi @ s, -700, 700))
    (a, b), _ = nnls(np.column_stack([rho, rho * g]), rho * e)
    if not b > 0:
        return theta
    alt = theta.copy()
    alt[0], alt[1] = math.log(max(a, math.exp(LOG_FLOOR))), math.log(b)
    return alt if objective(alt, prob, n)[0] < objective(theta, prob, n)[0] else theta


# -- fits -----------------------------------------------------------------------------------------


def n_params(n: int) -> int:
    return 3 + 3 * n  # a, b, c0 and (c_i, d_i, f_i) per break


def _finish(r: Refined, prob: Problem, n: int, message: str, info: dict[str, Any]) -> Solution:
    a, lb, s, ld, f = _unpack(r.theta, n)
    if a / (a + np.exp(lb - _features(prob.u, ld, f)[0] @ s)).min() < ZERO_REL:
        a = 0.0  # invisible at delta 1e-3; the log parametrisation only approaches 0
    order = np.argsort(ld, kind="stable")
    c = np.concatenate([[s[0]], np.diff(s)])  # c_i belongs to the break at ld[i - 1]
    c = np.concatenate([[c[0]], c[1:][order]])
    se = math.exp(prob.log_se)
    return Solution(a=a * se, b=se * math.exp(lb + s[0] * prob.mu), c=c, d=np.exp(ld[order] + prob.mu),
                    f=f[order], objective=r.value * prob.delta, converged=r.ok, message=message, info=info)


def to_theta(sol: Solution, prob: Problem) -> np.ndarray:
    """``sol`` (user units) as theta of ``prob``'s normalisation (the inverse of ``_finish``)."""
    se = math.exp(prob.log_se)
    la = math.log(max(sol.a / se, math.exp(LOG_FLOOR)))
    lb = math.log(sol.b / se) - sol.c[0] * prob.mu
    return np.concatenate([[la, lb], sol.slopes, np.log(sol.d) - prob.mu, np.log(sol.f)])


def _pick(runs: list[Refined]) -> Refined | None:
    ok = [r for r in runs if r.ok]
    return min(ok, key=lambda r: r.value) if ok else None


def _random_start(prob: Problem, n: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = prob.d_bounds
    theta = np.concatenate([[LOG_FLOOR, 0.0], rng.uniform(0.0, prob.slope_max / 2, n + 1),
                            np.sort(rng.uniform(lo, hi, n)), np.log(rng.choice(SHARPNESS, n))])
    return project_amplitudes(theta, prob, n)


def solve(x: np.ndarray, err: np.ndarray, n: int, *, weights: np.ndarray | None = None, delta: float = HUBER_DELTA,
          slope_max: float = BNSL_SLOPE_MAX, positions: int | None = None, n_refine: int = 3, n_starts: int = 10,
          seed: int = 0) -> Solution:
    """Cold fit with ``n`` breaks: grid screen, VarPro amplitudes, L-BFGS-B refinement (module docstring)."""
    with single_threaded_blas():  # tiny BLAS calls: threads only add synchronisation (scaling.core.threads)
        prob = make_problem(x, err, weights, delta, slope_max)
        g = positions or DEFAULT_POSITIONS.get(n, 8)
        if n and g < n:
            raise FitError(f"bnsl: grid_points must be >= the number of breaks; got {g}")
        P, thetas, values = screen(prob, n, g)
        picks = separated_best(P, values, n_refine)
        runs = [refine(project_amplitudes(thetas[i], prob, n), prob, n) for i in picks]
        best = _pick(runs)
        info: dict[str, Any] = {"grid_evaluations": int(len(values) * len(FLOORS)), "refined": len(runs),
                                "fallback_starts": 0}
        message = "break grid + VarPro (NNLS) + L-BFGS-B refinement converged"
        if best is None:
            rng = np.random.default_rng(seed)
            best = _pick([refine(_random_start(prob, n, rng), prob, n) for _ in range(n_starts)])
            info["fallback_starts"] = n_starts
            if best is None:
                raise FitError(f"bnsl with {n} break(s) did not converge from {len(runs)} grid refinements "
                               f"and {n_starts} random starts")
            message = "grid refinements failed; multi-start L-BFGS-B fallback converged"
        return _finish(best, prob, n, message, info)


def solve_warm(x: np.ndarray, err: np.ndarray, init: Solution, *, weights: np.ndarray | None = None,
               delta: float = HUBER_DELTA, slope_max: float = BNSL_SLOPE_MAX, margin: float = 0.01,
               seed: int = 0) -> Solution:
    """Refit ``init``'s law (same number of breaks) to data close to its own, e.g. a bootstrap resample.

    Refine from ``init``, then once more from the result (L-BFGS-B can stop early in the flat valleys of
    the nearly-L1 loss); also refine the best point of the break grid when its screened objective is
    within ``margin`` of the warm one and its breaks lie elsewhere (the optimum of a resample can move to
    another break position). The cold fit is the fallback. ``info['path']``: 'warm', 'screen', 'cold'.
    """
    n = init.n_breaks
    with single_threaded_blas():
        prob = make_problem(x, err, weights, delta, slope_max)
        first = refine(to_theta(init, prob), prob, n)
        runs = [first, refine(first.theta, prob, n)] if first.ok else [first]
        warm = _pick(runs)
        n_warm = len(runs)
        if n:
            _, thetas, values = screen(prob, n, DEFAULT_POSITIONS.get(n, 8))
            i = int(np.argmin(values))
            ld_w = (warm or first).theta[3 + n : 3 + 2 * n]
            far = np.max(np.abs(np.sort(thetas[i, 3 + n : 3 + 2 * n]) - np.sort(ld_w))) > 0.25
            bar = warm.value if warm is not None else math.inf
            if far and values[i] <= bar * (1.0 + margin):
                runs.append(refine(project_amplitudes(thetas[i], prob, n), prob, n))
        best = _pick(runs)
    if best is None:
        sol = solve(x, err, n, weights=weights, delta=delta, slope_max=slope_max, seed=seed)
        return Solution(sol.a, sol.b, sol.c, sol.d, sol.f, sol.objective, sol.converged, sol.message,
                        {**sol.info, "path": "cold"})
    path = "screen" if any(best is r for r in runs[n_warm:]) else "warm"
    return _finish(best, prob, n, f"warm start ({path}) converged", {"path": path, "refined": len(runs)})



# -- many resamples at once (no breaks) -------------------------------------------------------------


def solve_warm_batch(x: np.ndarray, err: np.ndarray, init: Solution, idx: Sequence[np.ndarray], *,
                     weights: np.ndarray | None = None, delta: float = HUBER_DELTA,
                     slope_max: float = BNSL_SLOPE_MAX) -> list[Solution | None]:
    """``solve_warm`` of a law without breaks (err = a + b x^-c0) on every resample ``idx[b]`` at once;
    None where it did not converge (the caller runs the reference there, whose fallback is the cold fit).

    Without breaks ``solve_warm`` refines from ``init`` and screens nothing; in theta = (ln a, ln b, c0)
    this is ``varpro_batch``'s additive law of one axis, minimised by its batched Newton method with this
    law's bounds: ln a up to 1 above the largest ln err drawn, as ``bounds`` sets it on the rows drawn,
    c0 in [0, slope_max] and |ln b| <= LOG_B (never reached: it keeps exp finite), the last in the full
    data's normalisation rather than the resample's."""
    if init.n_breaks:
        raise ValueError("solve_warm_batch refits a law without breaks")
    rows = vb.make_rows(np.asarray(x, dtype=float)[:, None], err, delta, None)
    W = counts(idx, len(err)) * (1.0 if weights is None else np.asarray(weights, dtype=float))
    data = vb.drawn(rows, W)
    top_a = np.max(np.where(W > 0, rows.y, -np.inf), axis=1) + 1.0  # ln(err / se) + 1 over the rows drawn
    lo = np.tile([LOG_FLOOR, -LOG_B, 0.0], (len(idx), 1))
    hi = np.column_stack([top_a, np.full(len(idx), LOG_B), np.full(len(idx), slope_max)])
    se, mu = math.exp(rows.log_se), float(rows.log_sx[0])
    theta0 = [math.log(max(init.a / se, math.exp(LOG_FLOOR))), math.log(init.b / se) - init.c[0] * mu, init.c[0]]
    res = minimise(lambda t, which: vb.evaluate_log(t, data.take(which), rows), np.tile(theta0, (len(idx), 1)),
                   lo, hi)
    out: list[Solution | None] = []
    for b in range(len(idx)):
        if not res.ok[b]:
            out.append(None)
            continue
        la, lb, c0 = res.theta[b]
        drawn_lx = data.lx[b, 0][data.W[b] > 0]
        a = math.exp(la)
        if a / float(np.min(a + np.exp(lb - c0 * drawn_lx))) < ZERO_REL:
            a = 0.0  # as ``_finish``: invisible at delta 1e-3
        out.append(Solution(a=a * se, b=se * math.exp(lb + c0 * mu), c=np.array([c0]), d=np.empty(0), f=np.empty(0),
                            objective=float(res.value[b] * delta), converged=True,
                            message="warm start (warm) converged", info={"path": "warm", "refined": 1}))
    return out
