"""The ``powerlaw`` and ``powerlaw_chance`` forms: FitResult, standard errors and notes around the
numpy core of ``scaling.forms.varpro``.

Parameters are reported in the user's units as ``E``, then ``A_<axis>`` and ``alpha_<axis>`` per axis.
Standard errors are a Gauss-Newton approximation on the log residuals (sigma^2 (J'WJ)^-1 with sigma^2
from the residuals); they ignore the Huber weighting and the bounds, so they are indicative only and
parameters at a bound get none. Use the bootstrap for intervals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq

from scaling.compute.allocations import answer, log_box, unreachable
from scaling.core.direction import direction
from scaling.defaults import ALPHA_MAX, COMPUTE_AXES, HUBER_DELTA, N_CLASSES
from scaling.errors import FitError
from scaling.forms.base import BatchRefit, Form, Refit, Replicate, batched_or_each, check_resample, unfittable_each
from scaling.forms.result import FitData, FitResult, IntervalKind, check_options, make_result
from scaling.forms.varpro import BOUND_TOL, Solution, predict_error, solve_chance, solve_powerlaw, solve_warm
from scaling.forms.varpro_batch import solve_warm_batch

if TYPE_CHECKING:
    from scaling.compute.allocations import Allocation, ProportionalLike

CHINCHILLA = (
    "Hoffmann et al. 2022, 'Training compute-optimal large language models', arXiv 2203.15556, "
    "approach 3 (log-space Huber, delta 1e-3); fitted by variable projection as in VPNLS, "
    "Open-Athena, arXiv 2603.22339"
)
CHANCE_SOURCE = (
    "our parametrisation; motivated by the random-guess envelope of Rosenfeld et al. 2020, "
    "arXiv 1909.12673, and the chance-level ceiling of M4, Alabdulmohsin et al. 2022, "
    "'Revisiting neural scaling laws in language and vision', arXiv 2209.06640"
)
OPTIONS = ["huber_delta", "alpha_max", "grid_points", "n_refine", "n_starts", "seed"]


@dataclass(frozen=True)
class PowerLawModel:
    sol: Solution
    kind: str

    def predict(self, X: np.ndarray) -> np.ndarray:
        return direction(self.kind).from_error(predict_error(self.sol, X))

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> None:
        return None  # no closed-form band for a nonlinear robust fit; bootstrap comes later


def param_names(axes: Sequence[str]) -> list[str]:
    names = ["E"]
    for a in axes:
        names += [f"A_{a}", f"alpha_{a}"]
    return names


def _params(sol: Solution, axes: Sequence[str]) -> dict[str, float]:
    out = {"E": sol.E}
    for j, a in enumerate(axes):
        out[f"A_{a}"] = float(sol.A[j])
        out[f"alpha_{a}"] = float(sol.alpha[j])
    return out


def _at_bound(sol: Solution, axes: tuple[str, ...], alpha_max: float) -> list[str]:
    out = []
    if sol.E == 0.0 or (sol.chance is not None and sol.E >= sol.chance * (1 - 1e-8)):
        out.append("E")
    for j, a in enumerate(axes):
        if sol.A[j] == 0.0:
            out.append(f"A_{a}")
        if sol.alpha[j] <= BOUND_TOL or sol.alpha[j] >= alpha_max - BOUND_TOL:
            out.append(f"alpha_{a}")
    return out


def _stderr(sol: Solution, data: FitData, err: np.ndarray, at_bound: list[str],
            delta: float) -> tuple[dict[str, float] | None, pd.DataFrame | None]:
    """Gauss-Newton standard errors in user units, from d log(pred) / d(E, A_k, alpha_k), and the covariance of
    the parameters that have one."""
    X = data.X
    k = X.shape[1]
    S = sol.A * X ** (-sol.alpha)  # (n, k)
    s = S.sum(axis=1)
    if sol.chance is None:
        p = sol.E + s
        dE, ds = np.ones_like(p), np.ones_like(p)
    else:
        p = (sol.E + sol.chance * s) / (1.0 + s)
        dE, ds = 1.0 / (1.0 + s), (sol.chance - sol.E) / (1.0 + s) ** 2
    cols = [dE]
    for j in range(k):
        cols += [ds * X[:, j] ** (-sol.alpha[j]), -ds * S[:, j] * np.log(X[:, j])]
    names = param_names(data.axes)
    J_all = np.column_stack(cols) / p[:, None]
    # At-bound parameters get no error; nor does an exponent whose amplitude is 0 (its column is 0).
    free = [i for i, nm in enumerate(names) if nm not in at_bound and np.any(J_all[:, i] != 0)]
    J = J_all[:, free]
    w = np.ones(len(p)) if data.weights is None else data.weights
    r = np.log(p) - np.log(err)
    dof = len(p) - len(free)
    if dof <= 0 or not free:
        return None, None
    # Column scaling keeps the normal matrix well conditioned whatever the units of A (1e-3 .. 1e6).
    scale = np.linalg.norm(J, axis=0)
    Js = J / scale
    H = Js.T @ (w[:, None] * Js)
    if np.linalg.cond(H) > 1e14:
        return None, None
    cov = np.linalg.inv(H) * (float(np.sum(w * r**2)) / dof) / np.outer(scale, scale)
    out = {nm: math.nan for nm in names}
    for i, se in zip(free, np.sqrt(np.maximum(np.diag(cov), 0.0)), strict=True):
        out[names[i]] = float(se)
    kept = [names[i] for i in free]
    return out, pd.DataFrame(cov, index=kept, columns=kept)


def _error_of(data: FitData, form: str) -> np.ndarray:
    err = data.error()
    bad = int(np.sum(err <= 0))
    if bad:
        raise FitError(
            f"form {form!r} needs a positive loss/error; column {data.y_name!r} has {bad} values <= 0"
        )
    return err


def _notes(sol: Solution, axes: tuple[str, ...], at_bound: list[str], alpha_max: float) -> list[str]:
    notes = []
    if "E" in at_bound and sol.E == 0.0:
        notes.append("E = 0 (at its bound): the data show no floor, so the asymptote is not identified")
    elif "E" in at_bound:
        notes.append("E at the chance ceiling: the data show no improvement with scale")
    for j, a in enumerate(axes):
        if f"A_{a}" in at_bound:
            notes.append(
                f"A_{a} = 0 (at its bound): no measurable effect of {a!r}; alpha_{a} is not identified"
            )
        elif sol.alpha[j] >= alpha_max - BOUND_TOL:
            notes.append(f"alpha_{a} at its upper bound {alpha_max}; consider a larger alpha_max")
        elif sol.alpha[j] <= BOUND_TOL:
            notes.append(f"alpha_{a} = 0 (at its bound): A_{a} acts as a constant and is confounded with E")
    notes.append(
        "stderr: Gauss-Newton approximation in log space (ignores Huber and bounds); use a bootstrap"
    )
    return notes


def _limit(sol: Solution) -> float:
    # As every axis grows, terms with a positive exponent vanish; a zero exponent leaves a constant.
    s0 = float(np.sum(sol.A[sol.alpha <= BOUND_TOL]))
    return sol.E + s0 if sol.chance is None else (sol.E + sol.chance * s0) / (1.0 + s0)


def _canonical(sol: Solution) -> tuple[Solution, bool]:
    """For the additive law a term with exponent 0 is a constant: fold it into E (same predictions)."""
    zero = (sol.alpha <= BOUND_TOL) & (sol.A > 0)
    if sol.chance is not None or not np.any(zero):
        return sol, False
    A = np.where(zero, 0.0, sol.A)
    E = sol.E + float(np.sum(sol.A[zero]))
    return Solution(
        E, A, sol.alpha, None, sol.objective, sol.converged, sol.message, sol.theta, sol.info
    ), True


def _fit(data: FitData, form: str, chance_form: bool, options: dict[str, Any]) -> FitResult:
    check_options(form, options, [*OPTIONS, "chance"] if chance_form else OPTIONS)
    delta = float(options.pop("huber_delta", 1e-3))
    alpha_max = float(options.get("alpha_max", ALPHA_MAX))
    if not delta > 0 or not alpha_max > 0:
        raise FitError(f"form {form!r}: huber_delta and alpha_max must be positive")
    n_params = 1 + 2 * len(data.axes)
    data.require_points(form, n_params)
    data.require_distinct(form, 3)
    err = _error_of(data, form)
    kw = {"weights": data.weights, "delta": delta, **options}
    resolved: dict[str, Any] = {"huber_delta": delta, "alpha_max": alpha_max, **options}
    if chance_form:
        if "chance" not in options:
            if not direction(data.kind).higher_is_better:
                raise FitError(
                    f"form {form!r} needs option 'chance' (the chance-level error) for kind='loss'"
                )
            kw["chance"] = 1.0  # an error rate cannot exceed 1 when nothing better is known
        c = float(kw.pop("chance"))
        if not c > 0:
            raise FitError(f"form {form!r}: chance must be positive; got {c}")
        resolved["chance"] = c
        sol = solve_chance(data.X, err, c, **kw)
        resolved["solver"] = "L-BFGS-B from VarPro power law (+ multi-start fallback)"
    else:
        sol = solve_powerlaw(data.X, err, **kw)
        resolved["solver"] = "VarPro grid (NNLS) + L-BFGS-B (+ multi-start fallback)"
    resolved.update({k: v for k, v in sol.info.items()})
    sol, folded = _canonical(sol)
    at_bound = _at_bound(sol, data.axes, alpha_max)
    notes = _notes(sol, data.axes, at_bound, alpha_max)
    if folded:
        notes.insert(0, "terms with exponent 0 were folded into E")
    if chance_form:
        above = int(np.sum(err > resolved["chance"]))
        if above:
            notes.insert(
                0, f"{above} points have error above chance {resolved['chance']}; they cannot be fitted"
            )
    stderr, cov = _stderr(sol, data, err, at_bound, delta)
    if stderr is None:
        notes.append("standard errors unavailable: the parameters are not identified (singular Jacobian)")
    limit = _limit(sol)
    return make_result(
        data,
        form=form,
        model=PowerLawModel(sol, data.kind),
        params=_params(sol, data.axes),
        stderr=stderr,
        cov=cov,
        n_params=n_params,
        at_bound=at_bound,
        converged=sol.converged,
        message=sol.message,
        objective=sol.objective,
        ceiling=float(direction(data.kind).from_error(limit)),
        notes=notes,
        options=resolved,
    )


@dataclass(frozen=True)
class _RefitJob:
    """What every refit of resamples of ``full``'s rows shares: the full solution, the errors, the options."""

    sol0: Solution
    err: np.ndarray
    kw: dict[str, Any]
    axes: tuple[str, ...]
    kind: str

    @classmethod
    def of(cls, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> _RefitJob:
        model = full.require_model()
        if not isinstance(model, PowerLawModel):
            raise FitError(f"fit of form {full.form!r} carries no power-law model to refit")
        opts = full.options
        kw: dict[str, Any] = {"delta": float(opts.get("huber_delta", HUBER_DELTA)),
                              "alpha_max": float(opts.get("alpha_max", ALPHA_MAX)),
                              "n_starts": int(opts.get("n_starts", 20)), "seed": int(opts.get("seed", 0))}
        return cls(model.sol, direction(full.kind).error(y), kw, full.axes, full.kind)

    @property
    def n_params(self) -> int:
        return 1 + 2 * len(self.axes)

    def replicate(self, sol: Solution) -> Replicate:
        path = str(sol.info.get("path", "warm"))
        sol, _ = _canonical(sol)
        d = direction(self.kind)

        def predict(M: np.ndarray) -> np.ndarray:
            return d.from_error(predict_error(sol, M))

        return Replicate(_params(sol, self.axes), float(d.from_error(_limit(sol))), predict, path)


class PowerLawForm(Form):
    """The additive power law in the error, or with ``chance`` its chance-ceiling variant."""

    family = "powerlaw"
    has_limit = True  # E (folded with exponent-0 terms): a floor of the error, a ceiling of accuracy

    def __init__(self, name: str, description: str, source: str, *, chance: bool) -> None:
        self.name, self.description, self.source, self.chance = name, description, source, chance
        self.option_names = (*OPTIONS, "chance") if chance else tuple(OPTIONS)
        self.chance_option = "chance" if chance else None
        self.needs_chance = chance

    def fit(self, data: FitData, **options: Any) -> FitResult:
        return _fit(data, self.name, self.chance, dict(options))

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return param_names(axes)

    def default_options(self, *, metric: str | None, kind: str) -> dict[str, Any]:
        """The chance law's ``chance``: the chance error of a top-k metric on ImageNet-1k, 1 - k / 1000
        (whatever the kind: an error rate of top-k has the same chance level)."""

        m = re.fullmatch(r"top(\d+)", metric or "")
        if not self.chance or m is None:
            return {}
        return {"chance": 1.0 - int(m.group(1)) / N_CLASSES}

    def refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                 options: Mapping[str, Any] | None = None) -> Refit:
        """``scaling.forms.varpro.solve_warm`` from the full-data solution (L-BFGS-B warm start plus a screen
        for other basins, cold VarPro fit when the warm start fails), with ``full``'s resolved options."""
        job = _RefitJob.of(full, X, y, w)

        def refit(idx: np.ndarray) -> Replicate:
            check_resample(X[idx], full.axes, min_distinct=3, n_params=job.n_params)
            return job.replicate(solve_warm(X[idx], job.err[idx], job.sol0, weights=None if w is None else w[idx],
                                            **job.kw))

        return refit

    def batch_refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                       options: Mapping[str, Any] | None = None) -> BatchRefit:
        """``scaling.forms.varpro_batch.solve_warm_batch``: the same warm start, screen and choice on many
        resamples at once; a resample where no run converged goes to ``refitter`` (and its cold fit)."""
        job = _RefitJob.of(full, X, y, w)
        one = self.refitter(full, X, y, w, options=options)

        def refit_all(idx: Sequence[np.ndarray]) -> list[Replicate | Exception]:
            unfit = unfittable_each(X, idx, full.axes, min_distinct=3, n_params=job.n_params)
            kw = {k: job.kw[k] for k in ("delta", "alpha_max")}
            return batched_or_each(idx, unfit, lambda sub: solve_warm_batch(X, job.err, job.sol0, sub, weights=w,
                                                                           **kw), job.replicate, one)

        return refit_all

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        """The law at other values of E, A_k and alpha_k (the chance law with ``fit``'s chance level)."""
        axes, d = fit.axes, direction(fit.kind)
        sol = Solution(float(params["E"]), np.array([params[f"A_{a}"] for a in axes], dtype=float),
                       np.array([params[f"alpha_{a}"] for a in axes], dtype=float),
                       float(fit.options["chance"]) if self.chance else None, math.nan, True, "", np.empty(0))
        return lambda M: d.from_error(predict_error(sol, M))

    def closed_form_allocation(self, fit: Any, target: float, cost: ProportionalLike,
                               bounds: Mapping[str, tuple[float, float]]) -> Allocation | None:
        if getattr(fit, "params", None) is None:
            return None
        chance = float(fit.options["chance"]) if self.chance else None
        return closed_powerlaw(fit, target, cost, bounds, chance=chance)


def closed_powerlaw(fit: Any, target: float, cost: ProportionalLike, bounds: Mapping[str, tuple[float, float]], *,
                    chance: float | None) -> Allocation:
    """Minimise sum_i c_i ln x_i subject to sum_i A_i x_i^-a_i = Delta (the reducible error left at the
    target; for the chance law the same sum s reaches s_t). The Lagrange conditions give
    a_i A_i x_i^-a_i / c_i = 1/lambda for every axis (Hoffmann et al. 2022's closed form, generalised to
    three axes); bounds are handled by clipping x_i(lambda) and solving one monotone equation in lambda
    (water-filling). The problem is convex in ln x, so these KKT conditions give the global optimum."""

    c = np.array([cost.exponents()[a] for a in COMPUTE_AXES])
    lo, hi = log_box(bounds)
    p = dict(fit.params)
    e_t = float(direction(fit.kind).error(target))
    E = p["E"]
    if chance is not None:
        if not e_t < chance:
            return answer(fit, target, lo, cost, bounds, "closed form", {"note": "target at or below chance"})
        delta = (e_t - E) / (chance - e_t)
    else:
        delta = e_t - E
    method = "closed form"
    if not delta > 0:
        return unreachable(cost, method, f"target beyond the fitted ceiling (E = {E:.4g} >= target error {e_t:.4g})")
    A = np.array([p[f"A_{a}"] for a in COMPUTE_AXES])
    al = np.array([p[f"alpha_{a}"] for a in COMPUTE_AXES])
    useful = (A > 0) & (al > 0)

    def terms(logx: np.ndarray) -> float:
        return float(np.sum(np.where(useful, A * np.exp(-al * logx), 0.0)))

    if terms(lo) <= delta:  # the smallest allowed point already reaches the target
        return answer(fit, target, lo, cost, bounds, method, {"note": "target met at the lower bounds"})
    if terms(hi) > delta:
        return unreachable(cost, method, "not reachable within the bounds (every useful axis at its upper bound)")

    def logx_of(log_lam: float) -> np.ndarray:
        # a_i A_i x_i^-a_i / c_i = 1/lambda  =>  ln x_i = (ln lambda + ln(a_i A_i / c_i)) / a_i, then clip.
        with np.errstate(divide="ignore"):
            free = (log_lam + np.log(np.where(useful, al * A / c, 1.0))) / np.where(useful, al, 1.0)
        return np.clip(np.where(useful, free, lo), lo, hi)

    # No bound binds: 1/lambda = Delta / sum_i (c_i / a_i) in closed form.
    log_lam = math.log(float(np.sum(c[useful] / al[useful])) / delta)
    x = logx_of(log_lam)
    note = "Lagrange conditions, no bound binding"
    if not np.all((x > lo) & (x < hi) | ~useful):
        # Water-filling: sum_i A_i x_i(lambda)^-a_i is decreasing in lambda; solve it = Delta.
        a_, b_ = log_lam, log_lam
        while terms(logx_of(a_)) < delta:
            a_ -= 5.0
        while terms(logx_of(b_)) > delta:
            b_ += 5.0
        log_lam = brentq(lambda t: terms(logx_of(t)) - delta, a_, b_, xtol=1e-14, rtol=1e-15)
        x = logx_of(log_lam)
        note = "Lagrange conditions with bounds (one monotone equation in the multiplier)"
    shares = np.where(useful, A * np.exp(-al * x), 0.0) / delta
    return answer(fit, target, x, cost, bounds, method,
                  {"note": note, "error_share": dict(zip(COMPUTE_AXES, shares.tolist(), strict=True))})


FORMS: list[Form] = [
    PowerLawForm(
        "powerlaw", "err = E + sum_k A_k x_k^-alpha_k (log-space Huber, VarPro)", CHINCHILLA, chance=False
    ),
    PowerLawForm(
        "powerlaw_chance",
        "err = E + (c - E) s/(1 + s), s = sum_k A_k x_k^-alpha_k; err -> chance c for tiny x",
        CHANCE_SOURCE,
        chance=True,
    ),
]
