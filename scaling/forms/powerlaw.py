"""The ``powerlaw`` and ``powerlaw_chance`` forms: FitResult, standard errors and notes around the
numpy core of ``scaling.forms.varpro``.

Parameters are reported in the user's units as ``E``, then ``A_<axis>`` and ``alpha_<axis>`` per axis.
Standard errors are a Gauss-Newton approximation on the log residuals (sigma^2 (J'WJ)^-1 with sigma^2
from the residuals); they ignore the Huber weighting and the bounds, so they are indicative only and
parameters at a bound get none. Use the bootstrap for intervals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaling.errors import FitError
from scaling.fitting import FitData, FitResult, IntervalKind, check_options, make_result
from scaling.forms.varpro import BOUND_TOL, Solution, predict_error, solve_chance, solve_powerlaw
from scaling.forms import FormInfo, register_form

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
        err = predict_error(self.sol, X)
        return 1.0 - err if self.kind == "accuracy" else err

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> None:
        return None  # no closed-form band for a nonlinear robust fit; bootstrap comes later


def param_names(axes: tuple[str, ...]) -> list[str]:
    names = ["E"]
    for a in axes:
        names += [f"A_{a}", f"alpha_{a}"]
    return names


def _params(sol: Solution, axes: tuple[str, ...]) -> dict[str, float]:
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


def _stderr(sol: Solution, data: FitData, err: np.ndarray, at_bound: list[str], delta: float) -> dict | None:
    """Gauss-Newton standard errors in user units, from d log(pred) / d(E, A_k, alpha_k)."""
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
        return None
    # Column scaling keeps the normal matrix well conditioned whatever the units of A (1e-3 .. 1e6).
    scale = np.linalg.norm(J, axis=0)
    Js = J / scale
    H = Js.T @ (w[:, None] * Js)
    if np.linalg.cond(H) > 1e14:
        return None
    cov = np.linalg.inv(H) * (float(np.sum(w * r**2)) / dof) / np.outer(scale, scale)
    out = {nm: math.nan for nm in names}
    for i, se in zip(free, np.sqrt(np.maximum(np.diag(cov), 0.0)), strict=True):
        out[names[i]] = float(se)
    return out


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
    alpha_max = float(options.get("alpha_max", 2.0))
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
            if data.kind != "accuracy":
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
    stderr = _stderr(sol, data, err, at_bound, delta)
    if stderr is None:
        notes.append("standard errors unavailable: the parameters are not identified (singular Jacobian)")
    limit = _limit(sol)
    return make_result(
        data,
        form=form,
        model=PowerLawModel(sol, data.kind),
        params=_params(sol, data.axes),
        stderr=stderr,
        n_params=n_params,
        at_bound=at_bound,
        converged=sol.converged,
        message=sol.message,
        objective=sol.objective,
        ceiling=1.0 - limit if data.kind == "accuracy" else limit,
        notes=notes,
        options=resolved,
    )


def _fit_powerlaw(data: FitData, **options: Any) -> FitResult:
    return _fit(data, "powerlaw", False, dict(options))


def _fit_chance(data: FitData, **options: Any) -> FitResult:
    return _fit(data, "powerlaw_chance", True, dict(options))


register_form(
    FormInfo(
        "powerlaw", "err = E + sum_k A_k x_k^-alpha_k (log-space Huber, VarPro)", CHINCHILLA, "powerlaw"
    ),
    _fit_powerlaw,
)
register_form(
    FormInfo(
        "powerlaw_chance",
        "err = E + (c - E) s/(1 + s), s = sum_k A_k x_k^-alpha_k; err -> chance c for tiny x",
        CHANCE_SOURCE,
        "powerlaw",
    ),
    _fit_chance,
)
