"""Many small bound-constrained minimisations solved together: a projected, damped Newton method on stacks.

A bootstrap refits one law to hundreds of resamples of the same rows. Each refit is a problem of a few
parameters on a few dozen rows, where a scalar optimiser (scipy's L-BFGS-B, one call per resample) spends
its time in Python and in the overhead of small numpy calls, not in arithmetic. Here B problems share one
loop: every iteration evaluates the B objectives, gradients and Hessians with one set of numpy calls (the
form supplies them, analytic) and takes one damped Newton step in each problem:

- the step solves (H + lambda D) s = -g in the variables that are free (a variable at a bound whose
  gradient points out of the box is held there, as in projected Newton methods, Bertsekas 1982), D the
  diagonal of |H| (Marquardt's scaling), then is projected onto the box;
- lambda (Levenberg-Marquardt) shrinks after a step that the quadratic model predicted well and grows after
  a poor one; a step that does not lower the objective is refused and retried with a larger lambda;
- a problem stops when its projected gradient is below ``gtol`` relative to its objective (converged), or
  when no step lowers it any more; then it counts as converged when its projected gradient is below
  ``accept_gtol`` (the test of ``scaling.forms.varpro.refine``), else as failed: the caller falls back to
  its per-resample solver for it.

Each problem's iterations depend on its own numbers only, so the result of one problem does not depend on
which others share its batch (nor on how a bootstrap splits resamples between worker processes).

A resample as weights: drawing rows with replacement gives the full rows with integer weights (how often
each row was drawn), so the B problems share one design and differ only in their weights (``counts``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# (theta (m, P), which (m,) problem indices) -> objective (m,), gradient (m, P), Hessian (m, P, P); an
# objective of +inf marks a point outside the problem's domain.
Evaluate = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]

GTOL = 1e-10  # converged: max |projected gradient| <= GTOL * max(1, |objective|)
ACCEPT_GTOL = 1e-5  # when no step helps any more: converged if below this (scipy-based refiners' test)
LAMBDA0, LAMBDA_MIN, LAMBDA_MAX = 1e-3, 1e-12, 1e10
EVAL_ROWS = 20_000  # problems x data rows per call of a form's evaluate (``chunked``)


@dataclass(frozen=True)
class BatchResult:
    theta: np.ndarray  # (B, P) the last accepted point of each problem
    value: np.ndarray  # (B,) its objective
    ok: np.ndarray  # (B,) converged
    iterations: np.ndarray  # (B,) Newton steps tried


def counts(idx: Sequence[np.ndarray], n: int) -> np.ndarray:
    """(B, n) how often each of n rows is in each resample (row-index arrays drawn with replacement)."""
    out = np.zeros((len(idx), n))
    for b, rows in enumerate(idx):
        out[b] = np.bincount(rows, minlength=n)
    return out


def chunked(evaluate: Evaluate, width: int, rows: int = EVAL_ROWS) -> Evaluate:
    """``evaluate`` on at most ``rows`` // ``width`` problems at a time (``width``: data rows per problem).
    Each problem's numbers do not depend on the others, so the results are the same to the last bit; the
    temporaries stay small and in the cache, where large ones would cost a fresh mapping of memory (and
    its page faults) on every call: on 1,000 Chinchilla-sized resamples the Newton steps take half the time.
    """
    step = max(1, rows // max(1, width))

    def run(theta: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if len(which) <= step:
            return evaluate(theta, which)
        parts = [evaluate(theta[i : i + step], which[i : i + step]) for i in range(0, len(which), step)]
        f, g, H = zip(*parts, strict=True)
        return np.concatenate(f), np.concatenate(g), np.concatenate(H)

    return run


def projected_gradient(theta: np.ndarray, g: np.ndarray, lo: np.ndarray,
                       hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(free mask, projected gradient): a variable at a bound with its gradient pointing out is not free."""
    at_lo = (theta <= lo + 1e-14 * (1.0 + np.abs(lo))) & (g > 0)
    at_hi = (theta >= hi - 1e-14 * (1.0 + np.abs(hi))) & (g < 0)
    free = ~(at_lo | at_hi)
    return free, np.where(free, g, 0.0)


def damped_step(H: np.ndarray, g: np.ndarray, free: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """-(H + lam D)^-1 g in the free variables, 0 for fixed ones. D is Marquardt's diagonal of |H|, raised to
    |g| where that is larger: where the loss is locally linear (every residual outside Huber's band) H has
    no curvature to scale a step, and each variable then moves by about 1 / lam, a trust region that lam
    sets. An indefinite H can give a poor step; the caller refuses it and raises lam until it pays."""
    P = g.shape[1]
    ii = np.arange(P)
    diag = np.abs(H[:, ii, ii])
    d = np.maximum(np.maximum(diag, np.abs(g)), np.maximum(1e-12 * diag.max(axis=1, keepdims=True), 1e-300))
    M = np.where(free[:, :, None] & free[:, None, :], H, 0.0)
    M[:, ii, ii] = np.where(free, M[:, ii, ii] + lam[:, None] * d, 1.0)
    rhs = np.where(free, g, 0.0)[..., None]
    try:
        return -np.linalg.solve(M, rhs)[..., 0]
    except np.linalg.LinAlgError:  # an exactly singular system somewhere: least squares, one at a time
        return -np.stack([np.linalg.lstsq(Mi, ri, rcond=None)[0] for Mi, ri in zip(M, rhs, strict=True)])[..., 0]


def minimise(evaluate: Evaluate, theta0: np.ndarray, lo: np.ndarray, hi: np.ndarray, *, gtol: float = GTOL,
             accept_gtol: float = ACCEPT_GTOL, max_iter: int = 300) -> BatchResult:
    """Minimise B problems from ``theta0`` (B, P) inside the box [lo, hi] ((P,) or one box per problem,
    (B, P)) (module docstring)."""
    B = theta0.shape[0]
    lo, hi = np.broadcast_to(lo, theta0.shape), np.broadcast_to(hi, theta0.shape)
    start = np.clip(np.asarray(theta0, dtype=float), lo, hi)
    st = _State(start, *evaluate(start.copy(), np.arange(B)))
    lam = np.full(B, LAMBDA0)
    ok = np.zeros(B, dtype=bool)
    done = ~np.isfinite(st.f)  # a start outside the domain: failed
    iters = np.zeros(B, dtype=int)
    for _ in range(max_iter):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        free, pg = projected_gradient(st.theta[act], st.g[act], lo[act], hi[act])
        scale = np.maximum(1.0, np.abs(st.f[act]))
        small = np.max(np.abs(pg), axis=1) <= gtol * scale
        done[act[small]], ok[act[small]] = True, True
        act, free, scale = act[~small], free[~small], scale[~small]
        if act.size == 0:
            break
        iters[act] += 1
        g, H = st.g[act], st.H[act]
        trial = np.clip(st.theta[act] + damped_step(H, g, free, lam[act]), lo[act], hi[act])
        s = trial - st.theta[act]
        pred = -(np.einsum("mp,mp->m", g, s) + 0.5 * np.einsum("mp,mp->m", np.matmul(H, s[..., None])[..., 0], s))
        # Only a step the quadratic model expects to pay is evaluated; the others raise lambda at once.
        tried = pred > 1e-14 * scale
        gain = np.full(act.size, -np.inf)
        if tried.any():
            gain[tried] = st.accept(act[tried], trial[tried], *evaluate(trial[tried], act[tried]))
        better = gain > 0
        ratio = np.where(better, gain / np.where(tried, pred, 1.0), 0.0)
        lam[act] = np.where(ratio > 0.75, np.maximum(lam[act] / 3.0, LAMBDA_MIN),
                            np.where(ratio > 0.25, lam[act], lam[act] * np.where(better, 2.0, 4.0)))
        # No progress left: the model promises no gain above rounding, a step gained next to nothing, or
        # lambda is at its cap. Converged then if the projected gradient passes the looser test.
        stalled = (np.abs(pred) <= 1e-14 * scale) | (better & (gain <= 1e-15 * scale)) | (lam[act] >= LAMBDA_MAX)
        done[act[stalled]] = True
    left = np.flatnonzero(~ok)  # stalled, or out of iterations: the looser test
    _, pg_left = projected_gradient(st.theta[left], st.g[left], lo[left], hi[left])
    ok[left] = np.max(np.abs(pg_left), axis=1, initial=0.0) <= accept_gtol * np.maximum(1.0, np.abs(st.f[left]))
    return BatchResult(st.theta, st.f, ok & np.isfinite(st.f), iters)


@dataclass
class _State:
    """The current point of every problem with its objective, gradient and Hessian."""

    theta: np.ndarray
    f: np.ndarray
    g: np.ndarray
    H: np.ndarray

    def accept(self, which: np.ndarray, theta: np.ndarray, f: np.ndarray, g: np.ndarray,
               H: np.ndarray) -> np.ndarray:
        """Move the problems ``which`` to ``theta`` where it lowers their objective; returns the gains."""
        gain = np.where(np.isfinite(f), self.f[which] - f, -np.inf)
        up = gain > 0
        w = which[up]
        self.theta[w], self.f[w], self.g[w], self.H[w] = theta[up], f[up], g[up], H[up]
        return gain
