"""Bootstrap refits of M4, many resamples at once: the batched counterpart of ``m4_core.solve_m4_warm``.

The reference refines the full-data solution on each resample by trust-region least squares, first with a
Huber delta 10 times the target's and then with the target's (``m4_core._polish``), and runs the cold
multi-start fit when that does not converge. Here the same two stages run on every resample together, by
the batched damped Newton method of ``scaling.forms.batch`` with the analytic gradient and Hessian below; a
resample that does not converge is handed back (None) and its caller runs the reference. Only the
prediction objective with a finite delta is batched (the paper's implicit residual is refitted per resample).

Every resample is the full rows with integer weights, normalised once (x by its geometric mean, L by the
largest error of the full data), and keeps the rows it drew, padded with weightless rows to the width of its
batch (``Drawn``); the bounds that depend on the rows drawn (L_inf below the smallest error drawn, a fitted
L0 above the largest) are set per resample, as the reference sets them on its rows.

Derivatives. L solves G(L, theta) = ln w - alpha ln v - ln s = 0 with w = L - L_inf, v = L0 - L and
s = sum_k exp(ln beta_k + c_k ln x_k); G_L = 1/w + alpha/v = D / (w v), D = v + alpha w, and K = 1 / G_L.
Implicit differentiation gives grad L = -K grad_theta G and, differentiating G(L(theta), theta) = 0 twice,
Hess L = -K [G_LL grad L grad L' + grad L a' + a grad L' + Hess_theta G], where a = grad_theta G_L (at fixed L):
G_LL = alpha/v^2 - 1/w^2; a_Linf = 1/w^2, a_L0 = -alpha/v^2, a_alpha = 1/v; Hess_theta G has G_LinfLinf =
-1/w^2, G_L0L0 = alpha/v^2, G_L0alpha = -1/v and -Hess ln s in (ln beta, c). The objective is the summed
Huber loss of r = ln L - ln err, so with psi, phi and J = grad ln L as in ``scaling.forms.varpro_batch``,
its Hessian is sum_i w_i [(phi_i - psi_i) J_i J_i' + psi_i Hess L_i / L_i].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit

from scaling.forms.batch import BatchResult, counts, minimise
from scaling.forms.m4_core import LOG_BETA, MARGIN, SNAP, M4Solution
from scaling.forms.varpro import huber

LOG2 = math.log(2.0)


@dataclass(frozen=True)
class Rows:
    """The full rows, normalised once; ``l0`` a fixed start level in the same units, or None (fitted)."""

    lx: np.ndarray  # (k, n): ln(x / sx), rows last
    e: np.ndarray  # (n,) err / se
    le: np.ndarray  # ln e
    log_sx: np.ndarray
    se: float
    delta: float
    l0: float | None

    @property
    def k(self) -> int:
        return self.lx.shape[0]

    @property
    def off(self) -> int:  # index of alpha in theta
        return 1 if self.l0 is not None else 2


@dataclass(frozen=True)
class Drawn:
    """The rows each resample drew (weight > 0), padded with weightless rows to one width: ln x (B, k, m),
    err / se and its logarithm (B, m), the weights (B, m)."""

    lx: np.ndarray
    e: np.ndarray
    le: np.ndarray
    W: np.ndarray

    def take(self, which: np.ndarray) -> Drawn:
        return Drawn(self.lx[which], self.e[which], self.le[which], self.W[which])


def drawn(rows: Rows, W: np.ndarray) -> Drawn:
    used = W > 0
    order = np.argsort(~used, axis=1, kind="stable")[:, : max(1, int(used.sum(axis=1).max()))]
    return Drawn(rows.lx.T[order].transpose(0, 2, 1).copy(), rows.e[order], rows.le[order],
                 np.take_along_axis(W, order, axis=1))


def make_rows(X: np.ndarray, err: np.ndarray, delta: float, l0: float | None) -> Rows:
    lx = np.log(np.asarray(X, dtype=float))
    log_sx, se = lx.mean(axis=0), float(np.max(err))
    e = np.asarray(err, dtype=float) / se
    return Rows((lx - log_sx).T.copy(), e, np.log(e), log_sx, se, float(delta), None if l0 is None else l0 / se)


def boxes(rows: Rows, W: np.ndarray, *, l0_max: float, alpha_max: float, c_max: float) -> tuple[np.ndarray, ...]:
    """Per-resample bounds of theta = (L_inf, [L0], alpha, ln beta_k, c_k), as ``m4_core.make_problem``
    sets them on the rows drawn (W > 0)."""
    used = W > 0
    e_min = np.min(np.where(used, rows.e, np.inf), axis=1)
    e_max = np.max(np.where(used, rows.e, -np.inf), axis=1)
    B, k = len(W), rows.k
    lo, hi = [np.zeros(B)], [e_min * (1.0 - MARGIN)]
    if rows.l0 is None:
        lo.append(e_max * (1.0 + MARGIN))
        hi.append(np.maximum(l0_max / rows.se, e_max * (1.0 + 2 * MARGIN)))
    lo += [np.zeros(B)] + [np.full(B, -LOG_BETA)] * k + [np.full(B, -c_max)] * k
    hi += [np.full(B, alpha_max)] + [np.full(B, LOG_BETA)] * k + [np.zeros(B)] * k
    return np.column_stack(lo), np.column_stack(hi)


def to_theta(sol: M4Solution, rows: Rows) -> np.ndarray:
    """``sol`` (user units) in ``rows``' normalisation (``m4_core.to_theta``, before clipping)."""
    lb = np.log(np.maximum(sol.beta, 1e-300)) + sol.c * rows.log_sx - (1.0 - sol.alpha) * math.log(rows.se)
    head = [sol.E / rows.se] + ([] if rows.l0 is not None else [sol.L0 / rows.se])
    return np.concatenate([head, [sol.alpha], lb, sol.c])


def solve_phi(t: np.ndarray, alpha: np.ndarray, y0: np.ndarray | None, iters: int = 100) -> np.ndarray:
    """``m4_core._solve_phi`` with one alpha (> 0) per row of t (m, n): y with alpha softplus(y) -
    softplus(-y) = t, by Newton steps kept inside the bracket of the piecewise-linear bounds."""

    def inverse(p: np.ndarray) -> np.ndarray:
        return np.where(p >= 0, p / alpha, p)

    lo, hi = inverse(t - alpha * LOG2), inverse(t + LOG2)
    y = np.clip(inverse(t) if y0 is None else y0, lo, hi)
    fin = np.zeros(t.shape, dtype=bool)
    for _ in range(iters):
        q = np.exp(-np.abs(y))
        lq = np.log1p(q)
        f = alpha * (np.maximum(y, 0.0) + lq) - (np.maximum(-y, 0.0) + lq) - t
        sig = np.where(y >= 0, 1.0, q) / (1.0 + q)
        lo, hi = np.where(f < 0, y, lo), np.where(f > 0, y, hi)
        new = y - f / (alpha * sig + (1.0 - sig))
        new = np.where((new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
        small = np.abs(f) <= 4e-16 * (1.0 + np.abs(t))
        new = np.where(fin | small, y, new)
        fin |= small | (np.abs(new - y) <= 1e-12 * (1.0 + np.abs(y)))
        y = new
        if fin.all():
            break
    return y


def level(E: np.ndarray, L0: np.ndarray, alpha: np.ndarray, s: np.ndarray,
          y0: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """``m4_core.solve_level`` with one (L_inf, L0, alpha) per row (m, 1): (L, w, v, y); alpha = 0 is M2."""
    b = L0 - E
    m2 = alpha[:, 0] <= 0.0
    a = np.where(m2[:, None], 1.0, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(s) + (a - 1.0) * np.log(b)
    y = solve_phi(np.where(np.isfinite(t), t, 0.0), a, y0)
    u, u1 = expit(y), expit(-y)
    w, v = b * u, b * u1
    L = np.where(u <= 0.5, E + w, L0 - v)
    if m2.any():
        L[m2], w[m2], v[m2] = (E + s)[m2], s[m2], (b - s)[m2]
    return L, w, v, y


def _split(theta: np.ndarray, rows: Rows) -> tuple[np.ndarray, ...]:
    o, k = rows.off, rows.k
    L0 = np.full((len(theta), 1), rows.l0) if rows.l0 is not None else theta[:, 1:2]
    return theta[:, :1], L0, theta[:, o : o + 1], theta[:, o + 1 : o + 1 + k], theta[:, o + 1 + k :]


def evaluate(theta: np.ndarray, data: Drawn, rows: Rows, y0: np.ndarray | None,
             delta: float) -> tuple[np.ndarray, ...]:
    """Objective / delta, gradient, Hessian (module docstring) and the solver's logits (the next guess), each
    problem on its drawn rows."""
    o, k = rows.off, rows.k
    m, n = theta.shape[0], data.W.shape[1]
    W, lx = data.W, data.lx
    E, L0, alpha, lb, c = _split(theta, rows)
    with np.errstate(all="ignore"):
        S = np.exp(lb[:, :, None] + c[:, :, None] * lx)  # (m, k, n)
        s = S.sum(axis=1)
        L, w, v, y = level(E, L0, alpha, s, y0)
        lv = np.log(np.maximum(v, 1e-300))
        r = np.log(L) - data.le
        K = w * v / (v + alpha * w)
    bad = ~np.all(np.isfinite(r) & np.isfinite(K) & (L > 0), axis=1)
    r, K, w, v, L = (np.where(bad[:, None], 1.0, a) for a in (r, K, w, v, L))
    f = np.sum(W * huber(r, delta), axis=1) / delta
    f[bad] = np.inf
    psi, phi = np.clip(r, -delta, delta) / delta, (np.abs(r) <= delta) / delta
    with np.errstate(all="ignore"):
        share = S / s[:, None, :]
    dL = np.empty((m, o + 1 + 2 * k, n))  # grad L
    dL[:, 0] = K / w
    if rows.l0 is None:
        with np.errstate(all="ignore"):
            dL[:, 1] = alpha * K / v
    dL[:, o] = K * lv
    np.multiply(share, K[:, None, :], out=dL[:, o + 1 : o + 1 + k])
    np.multiply(dL[:, o + 1 : o + 1 + k], lx, out=dL[:, o + 1 + k :])
    J = dL / L[:, None, :]
    wpsi = W * psi
    g = np.matmul(J, wpsi[:, :, None])[..., 0]
    H = np.matmul(J * (W * phi - wpsi)[:, None, :], J.transpose(0, 2, 1))
    with np.errstate(all="ignore"):
        H -= _implicit_terms(dL, wpsi * K / L, w, v, alpha, share, lx, rows)
    if bad.any():
        g[bad], H[bad] = 0.0, 0.0
    return f, g, H, y


def _implicit_terms(dL: np.ndarray, cw: np.ndarray, w: np.ndarray, v: np.ndarray, alpha: np.ndarray,
                    share: np.ndarray, lx: np.ndarray, rows: Rows) -> np.ndarray:
    """sum_i cw_i [G_LL grad L grad L' + grad L a' + a grad L' + Hess_theta G] (module docstring)."""
    o, k = rows.off, rows.k
    H = np.matmul(dL * (cw * (alpha / v**2 - 1.0 / w**2))[:, None, :], dL.transpose(0, 2, 1))
    a = {0: 1.0 / w**2, o: 1.0 / v}
    if rows.l0 is None:
        a[1] = -alpha / v**2
    for j, aj in a.items():
        col = np.matmul(dL, (cw * aj)[:, :, None])[..., 0]
        H[:, j, :] += col
        H[:, :, j] += col
    H[:, 0, 0] -= np.sum(cw / w**2, axis=1)
    if rows.l0 is None:
        H[:, 1, 1] += np.sum(cw * alpha / v**2, axis=1)
        H[:, 1, o] -= np.sum(cw / v, axis=1)
        H[:, o, 1] -= np.sum(cw / v, axis=1)
    # -Hess ln s: ln s = ln sum_k exp(ln beta_k + c_k ln x_k); grad ln s = (share_k, share_k ln x_k).
    ds = np.concatenate([share, share * lx], axis=1)  # (m, 2k, n)
    blk = slice(o + 1, o + 1 + 2 * k)
    H[:, blk, blk] += np.matmul(ds * cw[:, None, :], ds.transpose(0, 2, 1))
    jb, jc = np.arange(o + 1, o + 1 + k), np.arange(o + 1 + k, o + 1 + 2 * k)
    d1 = np.matmul(share, cw[:, :, None])[..., 0]
    d2 = np.matmul(share * lx, cw[:, :, None])[..., 0]
    d3 = np.matmul(share * lx**2, cw[:, :, None])[..., 0]
    H[:, jb, jb] -= d1
    H[:, jb, jc] -= d2
    H[:, jc, jb] -= d2
    H[:, jc, jc] -= d3
    return H


@dataclass
class _Objective:
    """The batched objective of each resample on its drawn rows, remembering its last logits (the level
    equation's next guess)."""

    rows: Rows
    data: Drawn
    delta: float

    def __post_init__(self) -> None:
        self.Y = np.zeros(self.data.W.shape)
        self.seen = np.zeros(len(self.data.W), dtype=bool)

    def __call__(self, theta: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        guess = self.Y[which] if self.seen[which].all() else None
        f, g, H, y = evaluate(theta, self.data.take(which), self.rows, guess, self.delta)
        self.Y[which], self.seen[which] = y, True
        return f, g, H


def _polish(theta0: np.ndarray, data: Drawn, rows: Rows, lo: np.ndarray, hi: np.ndarray) -> BatchResult:
    """``m4_core._polish``: minimise with 10 delta, then with delta from there."""
    span = hi - lo
    start = np.clip(theta0, lo + 1e-9 * span, hi - 1e-9 * span)  # as ``m4_core.refine`` starts
    rough = minimise(_Objective(rows, data, 10.0 * rows.delta), start, lo, hi)
    return minimise(_Objective(rows, data, rows.delta), rough.theta, lo, hi)


def solution(theta: np.ndarray, value: float, rows: Rows, l0: float | None) -> M4Solution:
    """``m4_core._finish``: snap what is at a zero bound, undo the normalisation (user units)."""
    E, L0, alpha, lb, c = (a[0] for a in _split(theta[None], rows))
    E0, a0 = (0.0 if E[0] < SNAP else float(E[0])), (0.0 if alpha[0] < SNAP else float(alpha[0]))
    c = np.where(c > -SNAP, 0.0, c)
    beta = np.exp(lb - c * rows.log_sx) * rows.se ** (1.0 - a0)
    return M4Solution(E0 * rows.se, float(L0[0]) * rows.se, a0, beta, c.copy(), value, True, "warm start converged",
                      l0 is not None, {"path": "warm"})


def solve_m4_warm_batch(X: np.ndarray, err: np.ndarray, init: M4Solution, idx: Sequence[np.ndarray], *,
                        weights: np.ndarray | None = None, delta: float, l0_max: float, alpha_max: float,
                        c_max: float) -> list[M4Solution | None]:
    """``m4_core.solve_m4_warm`` on every resample ``idx[b]`` at once (module docstring); None where the
    warm start did not converge (the caller runs the reference there, whose fallback is the cold fit)."""
    l0 = init.L0 if init.l0_fixed else None
    rows = make_rows(X, err, delta, l0)
    W = counts(idx, len(err)) * (1.0 if weights is None else np.asarray(weights, dtype=float))
    lo, hi = boxes(rows, W, l0_max=l0_max, alpha_max=alpha_max, c_max=c_max)
    res = _polish(np.tile(to_theta(init, rows), (len(idx), 1)), drawn(rows, W), rows, lo, hi)
    out: list[M4Solution | None] = []
    for b in range(len(idx)):
        out.append(solution(res.theta[b], float(res.value[b] * delta), rows, l0) if res.ok[b] else None)
    return [None if o is None else replace(o, info={"path": "warm"}) for o in out]
