"""Bootstrap refits of the additive and chance-ceiling power laws, many resamples at once.

The batched counterpart of ``scaling.forms.varpro.solve_warm`` (the per-resample reference), with the same
decisions on every resample:

1. warm: from the full-data solution, minimise the summed log-Huber objective to convergence (the
   reference refines twice with L-BFGS-B; here a batched damped Newton method, ``scaling.forms.batch``,
   with the analytic gradient and Hessian below);
2. screen: the same screen for other basins (local minima of a coarse exponent grid and of a fine scan of
   each exponent, amplitudes by IRLS least squares), batched over resamples; the best ``screen_refine``
   candidates whose screened objective is within ``screen_margin`` of the warm one are minimised too;
3. the best converged run wins ('warm' or 'screen'); a resample where none converged is handed back
   (None) and its caller runs the reference, whose own fallback is the cold VarPro fit ('cold').

Every resample is the full rows with integer weights (``scaling.forms.batch.counts``), so the rows are
normalised once, by the full data's geometric means (a normalisation is only a parametrisation), and each
resample keeps the rows it drew (``Drawn``: about 63% of them), padded with weightless rows to the width of
its batch. theta = (ln E, ln A_k, alpha_k) with the reference's bounds (``varpro._bounds``).

Derivatives (``evaluate`` in the linear amplitudes, ``evaluate_log`` in their logarithms), with p the
prediction of err, r = ln p - ln err, psi = clip(r, -d, d) / d and phi = [|r| <= d] / d for the Huber
delta d, and J = grad ln p: the objective is sum_i w_i huber(r_i) / d,
its gradient sum_i w_i psi_i J_i and its Hessian sum_i w_i [(phi_i - psi_i) J_i J_i' + psi_i H(p_i) / p_i],
where H(p) is the Hessian of p. With s = sum_k A_k x_k^-alpha_k: p = E + s (additive; p_E = p_s = 1) or
p = (E + c s) / (1 + s) (chance), and s has d s / d A_k = x_k^-alpha_k, d s / d alpha_k = -A_k x_k^-alpha_k
ln x_k, d2 s / d A_k d alpha_k = -x_k^-alpha_k ln x_k, d2 s / d alpha_k^2 = A_k x_k^-alpha_k ln^2 x_k.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scaling.forms.batch import BatchResult, chunked, counts, minimise
from scaling.forms.varpro import LOG_CEIL, LOG_FLOOR, ZERO_REL, Solution, huber

CHUNK_ROWS = 50_000  # screen work per numpy pass: resamples x exponent rows x data rows


@dataclass(frozen=True)
class Rows:
    """The full rows, normalised once: ln(x / sx), ln(err / se), err / se, the chance level / se."""

    lx: np.ndarray  # (n, k)
    y: np.ndarray  # (n,)
    err: np.ndarray  # (n,)
    log_sx: np.ndarray
    log_se: float
    delta: float
    chance: float | None

    @property
    def k(self) -> int:
        return self.lx.shape[1]



@dataclass(frozen=True)
class Drawn:
    """The rows each resample drew (weight > 0) in their order, padded with weightless rows to one width:
    ln x (B, k, m), ln err and err (B, m), the weights (B, m)."""

    lx: np.ndarray
    y: np.ndarray
    err: np.ndarray
    W: np.ndarray

    def take(self, which: np.ndarray) -> Drawn:
        return Drawn(self.lx[which], self.y[which], self.err[which], self.W[which])

    def fw(self, chance: float | None) -> np.ndarray:
        """Feature multiplier of the linearised law (``varpro._feature_weight``), (B, m)."""
        if chance is None:
            return np.ones_like(self.err)
        return np.maximum(chance - self.err, 1e-6 * chance)


def drawn(rows: Rows, W: np.ndarray) -> Drawn:
    """Each resample's drawn rows (weights W (B, n)), padded to the most any resample drew."""
    used = W > 0
    order = np.argsort(~used, axis=1, kind="stable")[:, : max(1, int(used.sum(axis=1).max()))]
    return Drawn(rows.lx[order].transpose(0, 2, 1).copy(), rows.y[order], rows.err[order],
                 np.take_along_axis(W, order, axis=1))


def make_rows(X: np.ndarray, err: np.ndarray, delta: float, chance: float | None) -> Rows:
    lx, le = np.log(np.asarray(X, dtype=float)), np.log(np.asarray(err, dtype=float))
    log_sx, log_se = lx.mean(axis=0), float(le.mean())
    y = le - log_se
    return Rows(lx - log_sx, y, np.exp(y), log_sx, log_se, float(delta),
                None if chance is None else chance / math.exp(log_se))


def box(rows: Rows, alpha_max: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of theta = (ln E, ln A_k, alpha_k), those of ``varpro._bounds`` (E below chance)."""
    k = rows.k
    top_e = LOG_CEIL if rows.chance is None else math.log(rows.chance) - 1e-9
    return (np.array([LOG_FLOOR] * (1 + k) + [0.0] * k), np.array([top_e] + [LOG_CEIL] * k + [alpha_max] * k))


def log_theta(E: np.ndarray, A: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(ln E, ln A_k, alpha_k) rows from normalised amplitudes, those below exp(LOG_FLOOR) at the floor."""
    amps = np.maximum(np.column_stack([E, A]), math.exp(LOG_FLOOR))
    return np.column_stack([np.log(amps), alpha])


def to_theta(sol: Solution, rows: Rows) -> np.ndarray:
    """``sol`` (user units) as theta in ``rows``' normalisation (``varpro._normalised_theta``)."""
    se = math.exp(rows.log_se)
    A = sol.A * np.exp(-sol.alpha * rows.log_sx)
    if rows.chance is None:
        A = A / se
    return log_theta(np.array([sol.E / se]), A[None], sol.alpha[None])[0]


@dataclass(frozen=True)
class Prediction:
    """p (m, n) and what its derivatives need: T = x^-alpha and S = A T (m, k, n), and the partial derivatives
    of p in (E, s): p_E, p_s (1 for the additive law), p_Es and p_ss (None: 0 for the additive law)."""

    p: np.ndarray
    T: np.ndarray
    S: np.ndarray
    pE: np.ndarray | float
    ps: np.ndarray | float
    pEs: np.ndarray | None
    pss: np.ndarray | None


def _prediction(theta: np.ndarray, d: Drawn, rows: Rows) -> Prediction:
    k = rows.k
    E, A, alpha = theta[:, :1], theta[:, 1 : 1 + k], theta[:, 1 + k :]
    T = np.exp(-alpha[:, :, None] * d.lx)
    S = A[:, :, None] * T
    s = S[:, 0].copy()
    for j in range(1, k):
        s += S[:, j]
    if rows.chance is None:
        return Prediction(E + s, T, S, 1.0, 1.0, None, None)
    c, q = rows.chance, 1.0 + s
    return Prediction((E + c * s) / q, T, S, 1.0 / q, (c - E) / q**2, -1.0 / q**2, -2.0 * (c - E) / q**3)


def evaluate(theta: np.ndarray, data: Drawn, rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective / delta, gradient and Hessian of the weighted log-Huber loss at theta (m, P) in linear
    amplitudes, each problem on its drawn rows. Arrays keep the data rows on their last axis (numpy loops
    over them, not over the few parameters)."""
    k, d = rows.k, rows.delta
    m, n = theta.shape[0], data.y.shape[1]
    lxT, W = data.lx, data.W
    with np.errstate(all="ignore"):
        pr = _prediction(theta, data, rows)
        p, T, S, pE, ps, pEs, pss = pr.p, pr.T, pr.S, pr.pE, pr.ps, pr.pEs, pr.pss
        bad = ~np.all((p > 0) & np.isfinite(p), axis=1)
        if bad.any():
            p[bad] = 1.0
        r = np.log(p) - data.y
    f = np.sum(W * huber(r, d), axis=1) / d
    f[bad] = np.inf
    psi = np.clip(r, -d, d) / d
    phi = (np.abs(r) <= d) / d
    q = ps / p  # d ln p / d s
    SL = S * lxT  # -d s / d alpha_k
    J = np.empty((m, 1 + 2 * k, n))  # d ln p / d theta
    J[:, 0] = pE / p
    np.multiply(T, q[:, None, :], out=J[:, 1 : 1 + k])
    np.multiply(SL, -q[:, None, :], out=J[:, 1 + k :])
    wpsi = W * psi
    g = np.matmul(J, wpsi[:, :, None])[..., 0]
    H = np.matmul(J * (W * phi - wpsi)[:, None, :], J.transpose(0, 2, 1))
    a = (wpsi * q)[:, :, None]  # weight of the Hessian of s in H(p) / p
    cross = -np.matmul(T * lxT, a)[..., 0]
    jA, ja = np.arange(1, 1 + k), np.arange(1 + k, 1 + 2 * k)
    H[:, jA, ja] += cross
    H[:, ja, jA] += cross
    H[:, ja, ja] += np.matmul(SL * lxT, a)[..., 0]
    if pss is not None and pEs is not None:  # the chance law: p is not linear in (E, s)
        ds = J[:, 1:] / q[:, None, :]  # d s / d (A, alpha)
        b = wpsi / p
        H[:, 1:, 1:] += np.matmul(ds * (b * pss)[:, None, :], ds.transpose(0, 2, 1))
        v = np.matmul(ds, (b * pEs)[:, :, None])[..., 0]
        H[:, 0, 1:] += v
        H[:, 1:, 0] += v
    if bad.any():
        g[bad], H[bad] = 0.0, 0.0
    return f, g, H


def evaluate_log(theta: np.ndarray, data: Drawn, rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``evaluate`` in theta = (ln E, ln A_k, alpha_k), the reference's parametrisation: for u = ln a,
    d f / d u = a f_a and d2 f / d u d v = a b f_ab (+ a f_a where u = v)."""
    k = rows.k
    lin = theta.copy()
    lin[:, : 1 + k] = np.exp(theta[:, : 1 + k])
    f, g, H = evaluate(lin, data, rows)
    scale = np.ones_like(theta)
    scale[:, : 1 + k] = lin[:, : 1 + k]
    g *= scale
    H *= scale[:, :, None] * scale[:, None, :]
    ii = np.arange(1 + k)
    H[:, ii, ii] += g[:, ii]
    return f, g, H


def minimise_rows(theta0: np.ndarray, data: Drawn, rows: Rows, alpha_max: float) -> BatchResult:
    lo, hi = box(rows, alpha_max)
    return minimise(chunked(lambda t, which: evaluate_log(t, data.take(which), rows), data.W.shape[1]), theta0,
                    lo, hi)


# -- the screen for other basins, batched over resamples ------------------------------------------------


def screen(rows: Rows, data: Drawn, alphas: np.ndarray, irls: int) -> tuple[np.ndarray, np.ndarray]:
    """``varpro.screen`` for each resample b (its drawn rows) and its exponent rows alphas[b] (B, C, k), or
    the same rows for every resample (alphas (1, C, k)): amplitudes (B, C, k + 1) and screened log-Huber
    objectives (B, C), in chunks of resamples. The resamples go through in the order of how many rows they
    drew, so that each chunk is padded only to its own widest resample (a weightless row adds nothing)."""
    B, C = len(data.W), alphas.shape[1]
    used = np.count_nonzero(data.W, axis=1)
    order = np.argsort(used, kind="stable")
    coefs, values = np.empty((B, C, rows.k + 1)), np.empty((B, C))
    step = max(1, CHUNK_ROWS // max(1, C * data.W.shape[1]))
    for i in range(0, B, step):
        which = order[i : i + step]
        width = max(1, int(used[which].max()))
        part = Drawn(data.lx[which, :, :width], data.y[which, :width], data.err[which, :width],
                     data.W[which, :width])
        coefs[which], values[which] = _screen(rows, part, alphas if len(alphas) == 1 else alphas[which], irls)
    return coefs, values


def _screen(rows: Rows, data: Drawn, alphas: np.ndarray, irls: int) -> tuple[np.ndarray, np.ndarray]:
    """The weighted normal equations of ``varpro.screen``: with z = (1, fw x^-alpha) / err a row of the
    linearised law (target 1), each IRLS pass needs the sums of u z_a z_b and u z_a over the data rows for
    weights u; the products z_a z_b do not change between passes, so they are formed once (``P``) and every
    pass is one matrix-vector product per problem, with the data rows on the last axis."""
    d, W = rows.delta, data.W
    inv_e = 1.0 / data.err  # (B, n)
    h = inv_e if rows.chance is None else data.fw(rows.chance) * inv_e  # z_j = h x_j^-alpha_j
    F = np.exp(-alphas[:, :, :, None] * data.lx[:, None, :, :])  # (B, C, k, n) raw features
    P, pairs = _products(inv_e, h, F)
    z = P[:, :, len(pairs) :]  # (B, C, k + 1, n): the rows z_a of the linearised law
    use_e = np.ones(P.shape[:2], dtype=bool)
    failed = np.zeros(len(W), dtype=bool)
    sums = np.matmul(P, W[:, None, :, None])[..., 0]  # the first two solves share the weights W
    for it in range(irls + 2):
        coef, singular = _solve(*_normal(sums, pairs, use_e))
        failed |= singular
        if it == 0:  # the second solve only drops E where it was < 0
            use_e = coef[..., 0] >= 0
            continue
        with np.errstate(all="ignore"):
            if rows.chance is None:  # p / err = z . coef
                r = np.log(np.matmul(coef[..., None, :], z)[..., 0, :])
            else:
                s = np.matmul(coef[..., None, 1:], F)[..., 0, :]
                r = np.log((coef[..., :1] + rows.chance * s) / (1.0 + s)) - data.y[:, None, :]
        a = np.abs(r)
        if it < irls + 1:  # the next IRLS weights, W min(1, delta / |r|) (|r| = 1 where r is nan)
            nan = np.isnan(a)
            if nan.any():
                a[nan] = 1.0
            np.maximum(a, d, out=a)
            np.divide(d, a, out=a)
            a *= W[:, None, :]
            sums = np.matmul(P, a[..., None])[..., 0]
    m = np.minimum(a, d)  # huber(r) = m (|r| - m / 2), m = min(|r|, delta): varpro.huber's numbers
    a -= 0.5 * m
    a *= m
    with np.errstate(all="ignore"):
        v = np.matmul(a, W[:, :, None])[..., 0]
    ok = np.all(coef >= 0, axis=2) & np.isfinite(v) & ~failed[:, None]
    if rows.chance is not None:
        ok &= coef[..., 0] < rows.chance
    return coef, np.where(ok, v, np.inf)


def _products(inv_e: np.ndarray, h: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """P (B, C, q, n): the products z_a z_b (a <= b, in the order of ``pairs``), then the rows z_a, for
    z = (1 / err, h F_1, .., h F_k)."""
    B, C, k, n = F.shape
    pairs = [(a, b) for a in range(k + 1) for b in range(a, k + 1)]
    P = np.empty((B, C, len(pairs) + k + 1, n))
    z = P[:, :, len(pairs) :]
    z[:, :, 0] = inv_e[:, None, :]
    np.multiply(F, h[:, None, None, :], out=z[:, :, 1:])
    for q, (a, b) in enumerate(pairs):
        np.multiply(z[:, :, a], z[:, :, b], out=P[:, :, q])
    return P, pairs


def _normal(sums: np.ndarray, pairs: list[tuple[int, int]],
            use_e: np.ndarray) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """The normal equations (G + 1e-12 I) x = rhs from the weighted sums, G's lower triangle and rhs as
    (B, C) arrays; where E is not used its row and column are those of the identity (E = 0)."""
    K = len(sums[0, 0]) - len(pairs)
    G: list[list[np.ndarray]] = [[np.empty(0)] * K for _ in range(K)]
    for q, (a, b) in enumerate(pairs):
        v = sums[..., q]
        if a == 0:
            v = np.where(use_e, v, 1.0 if b == 0 else 0.0)
        G[b][a] = v + 1e-12 if a == b else v
    rhs = [np.where(use_e, sums[..., len(pairs)], 0.0)] + [sums[..., len(pairs) + a] for a in range(1, K)]
    return G, rhs


def _solve(G: list[list[np.ndarray]], rhs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The (B, C) symmetric systems G x = rhs (G's lower triangle: G[i][j], j <= i, each (B, C)), by
    LDL' without pivoting (the systems are Gram matrices plus a ridge), vectorised over the systems, and
    which resamples had an exactly singular one: ``varpro.screen`` then discards every row of that
    resample's screen."""
    K = len(rhs)
    L: list[list[np.ndarray]] = [[np.empty(0)] * K for _ in range(K)]
    D: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for j in range(K):  # L[i][j] holds L_ij d_j until d_j is known
            for i in range(j, K):
                v = G[i][j]
                for p in range(j):
                    v = v - L[i][p] * (L[j][p] * D[p])
                L[i][j] = v
            D.append(L[j][j])
            for i in range(j + 1, K):
                L[i][j] = L[i][j] / D[j]
        y: list[np.ndarray] = []
        for i in range(K):
            v = rhs[i]
            for p in range(i):
                v = v - L[i][p] * y[p]
            y.append(v)
        x: list[np.ndarray] = [np.empty(0)] * K
        for i in reversed(range(K)):
            v = y[i] / D[i]
            for p in range(i + 1, K):
                v = v - L[p][i] * x[p]
            x[i] = v
    singular = np.any(np.stack(D) == 0.0, axis=(0, 2))
    return np.stack(x, axis=-1), singular


def _local_minima(values: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """``varpro._local_minima`` along ``axes`` of a stack of arrays (axis 0: the resamples)."""
    ok = np.isfinite(values)
    for axis in axes:
        for shift in (1, -1):
            nb = np.roll(values, shift, axis=axis)
            edge: list[slice | int] = [slice(None)] * values.ndim
            edge[axis] = 0 if shift == 1 else -1
            nb[tuple(edge)] = np.inf
            ok &= values <= nb
    return ok


@dataclass(frozen=True)
class Screened:
    rows: np.ndarray  # (B, C, k) exponents
    coefs: np.ndarray  # (B, C, k + 1) amplitudes
    values: np.ndarray  # (B, C) screened objectives; inf where not a candidate


def candidates(rows: Rows, data: Drawn, alpha_w: np.ndarray, alpha_max: float, coarse: int, fine: int,
               irls: int) -> Screened:
    """``varpro._screen_candidates`` for every resample: local minima of the coarse product grid and of the
    fine scan of each exponent around the warm exponents ``alpha_w`` (B, k), away from them (> 0.1)."""
    B, k = alpha_w.shape
    parts_r, parts_c, parts_v = [], [], []
    if coarse >= 2:
        grid = np.array(list(itertools.product(np.linspace(0.0, alpha_max, coarse), repeat=k)))
        coefs, values = screen(rows, data, grid[None], irls)  # the same rows for every resample
        al = np.broadcast_to(grid[None], (B, *grid.shape))
        mask = _local_minima(values.reshape((B,) + (coarse,) * k), axes=range(1, k + 1)).reshape(B, -1)
        parts_r.append(al)
        parts_c.append(coefs)
        parts_v.append(np.where(mask, values, np.inf))
    if fine >= 2:
        line = np.linspace(0.0, alpha_max, fine)
        al = np.repeat(alpha_w[:, None, :], k * fine, axis=1)
        for j in range(k):
            al[:, j * fine : (j + 1) * fine, j] = line
        coefs, values = screen(rows, data, al, irls)
        mask = _local_minima(values.reshape(B, k, fine), axes=(2,)).reshape(B, -1)
        parts_r.append(al)
        parts_c.append(coefs)
        parts_v.append(np.where(mask, values, np.inf))
    if not parts_r:
        return Screened(np.empty((B, 0, k)), np.empty((B, 0, k + 1)), np.empty((B, 0)))
    al, coefs, values = (np.concatenate(p, axis=1) for p in (parts_r, parts_c, parts_v))
    near = np.max(np.abs(al - alpha_w[:, None, :]), axis=2) <= 0.1  # the warm basin itself
    return Screened(al, coefs, np.where(near, np.inf, values))


# -- the warm refit of many resamples --------------------------------------------------------------------


def solutions(theta: np.ndarray, data: Drawn, rows: Rows, paths: Sequence[str],
              refined: np.ndarray) -> list[Solution]:
    """Each resample's solution in user units, amplitudes that move no prediction by ZERO_REL reported as 0
    (``varpro._finish``: the share of each prediction a term carries, over the rows drawn)."""
    k = rows.k
    t = theta.copy()
    t[:, : 1 + k] = np.exp(t[:, : 1 + k])
    pr = _prediction(t, data, rows)
    p, S = pr.p, pr.S
    pE, ps = np.broadcast_to(pr.pE, p.shape), np.broadcast_to(pr.ps, p.shape)
    carried = np.concatenate([(t[:, :1] * pE)[:, None, :], ps[:, None, :] * S], axis=1) / p[:, None]
    share = np.max(np.where(data.W[:, None, :] > 0, np.abs(carried), 0.0), axis=2)
    t[:, : 1 + k] = np.where(share < ZERO_REL, 0.0, t[:, : 1 + k])
    f = evaluate(t, data, rows)[0] * rows.delta
    se = math.exp(rows.log_se)
    A = t[:, 1 : 1 + k] * np.exp(t[:, 1 + k :] * rows.log_sx) * (se if rows.chance is None else 1.0)
    with np.errstate(divide="ignore"):
        snapped = np.concatenate([np.log(t[:, : 1 + k]), t[:, 1 + k :]], axis=1)
    chance = None if rows.chance is None else rows.chance * se
    return [Solution(E=float(t[b, 0] * se), A=A[b], alpha=t[b, 1 + k :].copy(), chance=chance, objective=float(f[b]),
                     converged=True, message=f"warm start ({paths[b]}) converged", theta=snapped[b],
                     info={"path": paths[b], "refined": int(refined[b])}) for b in range(len(t))]


def solve_warm_batch(X: np.ndarray, err: np.ndarray, init: Solution, idx: Sequence[np.ndarray], *,
                     weights: np.ndarray | None = None, delta: float, alpha_max: float, screen_coarse: int = 3,
                     screen_fine: int = 21, screen_margin: float = 0.01, screen_irls: int = 3,
                     screen_refine: int = 2) -> list[Solution | None]:
    """``varpro.solve_warm`` on every resample ``idx[b]`` (row indices into X, err) at once (module
    docstring); None where no run converged (the caller runs the reference there)."""
    rows = make_rows(X, err, delta, init.chance)
    data = drawn(rows, counts(idx, len(err)) * (1.0 if weights is None else np.asarray(weights, dtype=float)))
    B, k = len(idx), rows.k
    warm = minimise_rows(np.tile(to_theta(init, rows), (B, 1)), data, rows, alpha_max)
    sc = candidates(rows, data, warm.theta[:, 1 + k :], alpha_max, screen_coarse, screen_fine, screen_irls)
    bar = np.where(warm.ok, warm.value * delta, np.inf)
    order = np.argsort(sc.values, axis=1, kind="stable")[:, :screen_refine]
    first = np.take_along_axis(sc.values, order, axis=1)
    b_of, j_of = np.nonzero(np.isfinite(first) & (first <= bar[:, None] * (1.0 + screen_margin)))
    c = order[b_of, j_of]
    theta, value = warm.theta.copy(), np.where(warm.ok, warm.value, np.inf)
    screened = np.zeros(B, dtype=bool)
    if len(b_of):
        cand = minimise_rows(log_theta(sc.coefs[b_of, c, 0], sc.coefs[b_of, c, 1:], sc.rows[b_of, c]),
                             data.take(b_of), rows, alpha_max)
        for i in np.flatnonzero(cand.ok):  # in order: the first of equal values wins, as in ``varpro._pick``
            if cand.value[i] < value[b_of[i]]:
                theta[b_of[i]], value[b_of[i]], screened[b_of[i]] = cand.theta[i], cand.value[i], True
    found = np.flatnonzero(np.isfinite(value))
    refined = 1 + np.bincount(b_of, minlength=B)
    sols = solutions(theta[found], data.take(found), rows, ["screen" if screened[b] else "warm" for b in found],
                     refined[found])
    out: list[Solution | None] = [None] * B
    for b, sol in zip(found, sols, strict=True):
        out[b] = sol
    return out
