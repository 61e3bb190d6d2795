"""The ``saturating`` (M2) and ``m4`` forms of Alabdulmohsin, Neyshabur, Zhai 2022 ('Revisiting neural
scaling laws in language and vision', NeurIPS 2022, arXiv 2209.06640), with the multi-axis version
(additive terms over the axes) that the paper does not have:

    saturating (M2):  L = L_inf + sum_k beta_k x_k^c_k
    m4:               (L - L_inf) / (L0 - L)^alpha = sum_k beta_k x_k^c_k

with c_k <= 0 and alpha >= 0; L is the error 1 - accuracy (kind='accuracy') or the loss (kind='loss').
M2 is our ``powerlaw`` form in the paper's notation (L_inf = E, beta_k = A_k, c_k = -alpha_k): it is
fitted by the same variable-projection core and refitter and only reports the paper's names, so a user
of the paper finds its estimator under its name. M4 is fitted by ``scaling.forms.m4_core``. Standard
errors are a Gauss-Newton approximation on the log residuals (like ``powerlaw``'s): indicative only;
parameters at a bound or held fixed get none. Use the bootstrap for intervals.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.core.direction import direction
from scaling.defaults import HUBER_DELTA, N_CLASSES, SLOPE_MAX
from scaling.errors import FitError
from scaling.forms import get_form, m4_batch
from scaling.forms import m4_core as core
from scaling.forms import prediction as _pred
from scaling.forms.base import BatchRefit, Form, Refit, Replicate, batched_or_each, check_resample, unfittable_each
from scaling.forms.m4_core import MARGIN, M4Solution, limit_error, predict_error, solve_level, terms
from scaling.forms.powerlaw import PowerLawForm
from scaling.forms.result import FitData, FitResult, IntervalKind, check_options, make_result

if TYPE_CHECKING:
    from scaling.compute.allocations import Allocation, ProportionalLike

SOURCE = ("Alabdulmohsin, Neyshabur, Zhai 2022, 'Revisiting neural scaling laws in language and vision', "
          "NeurIPS, arXiv 2209.06640")
M4_OPTIONS = ("l0", "l0_max", "alpha_max", "c_max", "huber_delta", "objective")
OBJECTIVES = ("prediction", "implicit")
BOUND_TOL = 1e-7


def topk_chance(metric: str | None) -> float | None:
    """The chance error of a top-k metric on ImageNet-1k, 1 - k / 1000; None for any other metric."""

    m = re.fullmatch(r"top(\d+)", metric or "")
    return None if m is None else 1.0 - int(m.group(1)) / N_CLASSES


@dataclass(frozen=True)
class M4Model:
    sol: M4Solution
    kind: str

    def predict(self, X: np.ndarray) -> np.ndarray:
        return direction(self.kind).from_error(predict_error(self.sol, X))

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> None:
        return None  # no closed-form band for a nonlinear robust fit: use the bootstrap


def m4_param_names(axes: Sequence[str]) -> list[str]:
    return ["L_inf", "L0", "alpha", *[f"{p}_{a}" for a in axes for p in ("beta", "c")]]


def _m4_params(sol: M4Solution, axes: Sequence[str]) -> dict[str, float]:
    per_axis = {f"{p}_{a}": float(v[j]) for j, a in enumerate(axes) for p, v in (("beta", sol.beta), ("c", sol.c))}
    return {"L_inf": sol.E, "L0": sol.L0, "alpha": sol.alpha, **per_axis}


@dataclass(frozen=True)
class Resolved:
    """An m4 fit's options, checked and with their data-dependent defaults filled in."""

    l0: float | None  # fixed start level, or None: fitted
    l0_max: float
    alpha_max: float
    c_max: float
    delta: float
    objective: str

    def as_dict(self) -> dict[str, Any]:
        return {"l0": "fit" if self.l0 is None else self.l0, "l0_max": self.l0_max, "alpha_max": self.alpha_max,
                "c_max": self.c_max, "huber_delta": self.delta, "objective": self.objective}


def _resolve(options: Mapping[str, Any], err: np.ndarray, kind: str) -> Resolved:
    check_options("m4", options, M4_OPTIONS)
    try:
        delta = float(options.get("huber_delta", HUBER_DELTA))
        alpha_max = float(options.get("alpha_max", SLOPE_MAX))
        c_max = float(options.get("c_max", 2.0))
        raw = options.get("l0")
        l0 = None if raw is None or (isinstance(raw, str) and raw.lower() == "fit") else float(raw)
        # An error rate cannot start above 1; a loss's start level is bounded by 10x the data's spread.
        default_max = 1.0 if direction(kind).higher_is_better else float(err.max() + 10 * (err.max() - err.min()))
        l0_max = float(options.get("l0_max", default_max))
    except (TypeError, ValueError):
        raise FitError("form 'm4': l0 must be a number or 'fit'; l0_max, alpha_max, c_max and huber_delta "
                       "numbers") from None
    objective = str(options.get("objective", "prediction"))
    if objective not in OBJECTIVES:
        raise FitError(f"form 'm4': objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
    if not (delta > 0 and alpha_max > 0 and c_max > 0):
        raise FitError("form 'm4': huber_delta, alpha_max and c_max must be positive")
    if l0 is not None:
        above = int(np.sum(err >= l0))
        if not (math.isfinite(l0) and l0 > 0):
            raise FitError(f"form 'm4': l0 must be a positive number; got {l0}")
        if above:
            raise FitError(f"form 'm4': {above} points have an error/loss at or above the start level l0 = {l0:g} "
                           "(give a larger l0, or l0='fit')")
    elif not l0_max > err.max():
        raise FitError(f"form 'm4': l0_max = {l0_max:g} is not above the largest error/loss {err.max():.6g}")
    return Resolved(l0, l0_max, alpha_max, c_max, delta, objective)


def _solve_kw(r: Resolved) -> dict[str, Any]:
    return {"delta": r.delta, "l0_max": r.l0_max, "alpha_max": r.alpha_max, "c_max": r.c_max,
            "implicit": r.objective == "implicit"}


def _m4_at_bound(sol: M4Solution, axes: Sequence[str], err: np.ndarray, r: Resolved) -> list[str]:
    out = []
    if sol.E <= 0.0 or sol.E >= float(err.min()) * (1 - MARGIN) * (1 - 1e-9):
        out.append("L_inf")
    if not sol.l0_fixed and (sol.L0 <= float(err.max()) * (1 + MARGIN) * (1 + 1e-9) or sol.L0 >= r.l0_max * (1 - 1e-9)):
        out.append("L0")
    if sol.alpha <= BOUND_TOL or sol.alpha >= r.alpha_max - BOUND_TOL:
        out.append("alpha")
    for j, a in enumerate(axes):
        if sol.c[j] >= -BOUND_TOL or sol.c[j] <= -r.c_max + BOUND_TOL:
            out.append(f"c_{a}")
    return out


def _m4_notes(sol: M4Solution, axes: Sequence[str], at_bound: list[str], r: Resolved) -> list[str]:
    notes = []
    if sol.l0_fixed:
        notes.append(f"L0 fixed at {sol.L0:.6g} (option l0); not estimated")
    if "L_inf" in at_bound:
        notes.append("L_inf = 0 (at its bound): the data show no floor" if sol.E <= 0 else
                     "L_inf at its bound just below the smallest observed error/loss: the floor is not identified")
    if "L0" in at_bound:
        where = f"its upper bound l0_max = {r.l0_max:.6g}" if sol.L0 >= r.l0_max * (1 - 1e-9) else \
            "its lower bound, just above the largest observed value"
        notes.append(f"L0 at {where}: the start level is not identified; give l0 or l0_max")
    if "alpha" in at_bound:
        notes.append("alpha = 0 (at its bound): the fit is M2 (saturating)" if sol.alpha <= BOUND_TOL else
                     f"alpha at its upper bound {r.alpha_max}; consider a larger alpha_max")
    for j, a in enumerate(axes):
        if f"c_{a}" in at_bound:
            notes.append(f"c_{a} = 0 (at its bound): no measurable effect of {a!r}" if sol.c[j] >= -BOUND_TOL else
                         f"c_{a} at its bound -{r.c_max}; consider a larger c_max")
    if r.objective == "implicit":
        notes.append("objective: the paper's residual log(L - L_inf) - alpha log(L0 - L) - log(sum beta x^c)")
    notes.append("stderr: Gauss-Newton approximation in log space (ignores Huber and bounds); use a bootstrap")
    return notes


def _m4_stderr(sol: M4Solution, data: FitData, err: np.ndarray,
               at_bound: list[str]) -> tuple[dict[str, float] | None, pd.DataFrame | None]:
    """sigma^2 (J'WJ)^-1 with J = d log(pred) / d(L_inf, [L0], alpha, beta_k, c_k), by implicit
    differentiation of log(L - L_inf) - alpha log(L0 - L) = log s, in user units: the standard errors, and the
    covariance of the parameters that have one."""
    S = terms(sol, data.X)
    s = S.sum(axis=1)
    pred, w, v, _ = solve_level(sol.E, sol.L0, sol.alpha, s)
    D = v + sol.alpha * w
    common = w * v / D
    names = m4_param_names(data.axes)
    cols = {"L_inf": v / D, "L0": sol.alpha * w / D, "alpha": common * np.log(np.maximum(v, 1e-300))}
    for j, a in enumerate(data.axes):
        cols[f"beta_{a}"] = common * S[:, j] / (s * sol.beta[j])
        cols[f"c_{a}"] = common * S[:, j] / s * np.log(data.X[:, j])
    free = [nm for nm in names if nm not in at_bound and not (nm == "L0" and sol.l0_fixed)]
    J = np.column_stack([cols[nm] for nm in free]) / pred[:, None]
    wts = np.ones(len(pred)) if data.weights is None else data.weights
    dof = len(pred) - len(free)
    if dof <= 0 or not free or not np.all(np.isfinite(J)):
        return None, None
    scale = np.linalg.norm(J, axis=0)
    if not np.all(scale > 0):
        return None, None
    Js = J / scale
    H = Js.T @ (wts[:, None] * Js)
    if np.linalg.cond(H) > 1e14:
        return None, None
    r = np.log(pred) - np.log(err)
    cov = np.linalg.inv(H) * (float(np.sum(wts * r**2)) / dof) / np.outer(scale, scale)
    out = dict.fromkeys(names, math.nan)
    out.update(zip(free, np.sqrt(np.maximum(np.diag(cov), 0.0)).tolist(), strict=True))
    return out, pd.DataFrame(cov, index=free, columns=free)


def _error_of(data: FitData, form: str) -> np.ndarray:
    err = data.error()
    bad = int(np.sum(err <= 0))
    if bad:
        raise FitError(f"form {form!r} needs a positive loss/error; column {data.y_name!r} has {bad} values <= 0")
    return err


def m4_min_distinct(k: int, l0_fixed: bool) -> int:
    """One axis must identify every parameter from its own levels; with more axes L_inf, L0 and alpha are
    shared, and each axis needs 3 levels as for ``powerlaw``."""
    return (4 if l0_fixed else 5) if k == 1 else 3


@dataclass(frozen=True)
class _M4Job:
    """What every refit of resamples of ``full``'s rows shares: the full solution, the errors, the options."""

    sol0: M4Solution
    err: np.ndarray
    kw: dict[str, Any]
    axes: tuple[str, ...]
    kind: str
    n_params: int
    min_distinct: int

    @classmethod
    def of(cls, full: FitResult, X: np.ndarray, y: np.ndarray) -> _M4Job:
        model = full.require_model()
        if not isinstance(model, M4Model):
            raise FitError(f"fit of form {full.form!r} carries no m4 model to refit")
        err = direction(full.kind).error(y)
        r = _resolve({k: v for k, v in full.options.items() if k in M4_OPTIONS}, err, full.kind)
        k = len(full.axes)
        return cls(model.sol, err, _solve_kw(r), full.axes, full.kind, 2 + 2 * k + (r.l0 is None),
                   m4_min_distinct(k, r.l0 is not None))

    def replicate(self, sol: M4Solution) -> Replicate:
        d = direction(self.kind)

        def predict(M: np.ndarray) -> np.ndarray:
            return d.from_error(predict_error(sol, M))

        return Replicate(_m4_params(sol, self.axes), float(d.from_error(limit_error(sol))), predict,
                         str(sol.info.get("path", "warm")))


class M4Form(Form):
    name = "m4"
    description = "(L - L_inf)/(L0 - L)^alpha = sum_k beta_k x_k^c_k; L from chance L0 down to L_inf"
    source = (f"{SOURCE}, estimator M4; fitted by log-space Huber on the prediction (or their implicit residual), "
              "multi-start trust-region least squares")
    family = "m4"
    option_names = M4_OPTIONS
    has_limit = True
    chance_option = "l0"  # M4's start level L0 is the chance level of an error rate

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return m4_param_names(axes)

    def default_options(self, *, metric: str | None, kind: str) -> dict[str, Any]:
        """For an accuracy of a top-k metric, L0 = its chance error 1 - k/1000 (ImageNet-1k); otherwise
        none (L0 fitted). A loss table gets no chance level from the metric name: its scale is unknown."""
        chance = topk_chance(metric)
        return {"l0": chance} if chance is not None and direction(kind).higher_is_better else {}

    def fit(self, data: FitData, **options: Any) -> FitResult:
        err = _error_of(data, self.name)
        r = _resolve(options, err, data.kind)
        k = len(data.axes)
        n_params = 2 + 2 * k + (r.l0 is None)
        data.require_points(self.name, n_params)
        data.require_distinct(self.name, m4_min_distinct(k, r.l0 is not None))
        sol = core.solve_m4(data.X, err, weights=data.weights, l0=r.l0, **_solve_kw(r))
        at_bound = _m4_at_bound(sol, data.axes, err, r)
        notes = _m4_notes(sol, data.axes, at_bound, r)
        stderr, cov = _m4_stderr(sol, data, err, at_bound)
        if stderr is None:
            notes.append("standard errors unavailable: the parameters are not identified (singular Jacobian)")
        resolved = {**r.as_dict(), "solver": "multi-start trust-region least squares (scipy least_squares)",
                    **sol.info}
        return make_result(data, form=self.name, model=M4Model(sol, data.kind), params=_m4_params(sol, data.axes),
                           stderr=stderr, cov=cov, n_params=n_params, at_bound=at_bound, converged=sol.converged,
                           message=sol.message, objective=sol.objective,
                           ceiling=float(direction(data.kind).from_error(limit_error(sol))), notes=notes,
                           options=resolved)

    def refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                 options: Mapping[str, Any] | None = None) -> Refit:
        """Warm start from the full fit's solution on every resample (one trust-region run); the full
        multi-start fit when that does not converge. L0 stays fixed when the full fit held it fixed."""
        job = _M4Job.of(full, X, y)

        def refit(idx: np.ndarray) -> Replicate:
            check_resample(X[idx], job.axes, min_distinct=job.min_distinct, n_params=job.n_params)
            return job.replicate(core.solve_m4_warm(X[idx], job.err[idx], job.sol0,
                                                    weights=None if w is None else w[idx], **job.kw))

        return refit

    def batch_refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                       options: Mapping[str, Any] | None = None) -> BatchRefit | None:
        """``scaling.forms.m4_batch``: the same two-stage warm start on many resamples at once; a resample
        that does not converge goes to ``refitter`` (and its cold fit). None for the implicit objective or
        an infinite Huber delta (refitted per resample)."""
        job = _M4Job.of(full, X, y)
        if job.kw["implicit"] or not math.isfinite(job.kw["delta"]):
            return None
        one = self.refitter(full, X, y, w, options=options)
        kw = {k: v for k, v in job.kw.items() if k != "implicit"}

        def refit_all(idx: Sequence[np.ndarray]) -> list[Replicate | Exception]:
            unfit = unfittable_each(X, idx, job.axes, min_distinct=job.min_distinct, n_params=job.n_params)
            return batched_or_each(idx, unfit, lambda sub: m4_batch.solve_m4_warm_batch(X, job.err, job.sol0, sub,
                                                                                       weights=w, **kw),
                                   job.replicate, one)

        return refit_all

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        """The law at other values of L_inf, L0, alpha, beta_k and c_k."""
        axes, d = fit.axes, direction(fit.kind)
        sol = M4Solution(float(params["L_inf"]), float(params["L0"]), float(params["alpha"]),
                         np.array([params[f"beta_{a}"] for a in axes], dtype=float),
                         np.array([params[f"c_{a}"] for a in axes], dtype=float), math.nan, True, "", True)
        return lambda M: d.from_error(predict_error(sol, M))

    def closed_form_allocation(self, fit: Any, target: float, cost: ProportionalLike,
                               bounds: Mapping[str, tuple[float, float]]) -> Allocation | None:
        """Reaching error e_t means reaching s_t = (e_t - L_inf) / (L0 - e_t)^alpha: the additive power
        law's problem with reducible error s_t, so ``powerlaw``'s closed form answers it, its reasons
        included (a target beyond the floor is unreachable; one at or above L0 is met anywhere)."""
        p = getattr(fit, "params", None)
        if p is None:
            return None
        e_t = float(direction(fit.kind).error(target))
        if e_t <= p["L_inf"]:
            s_t = e_t - p["L_inf"]  # <= 0: powerlaw's 'beyond the fitted ceiling', with E = L_inf
        elif p["alpha"] > 0 and e_t >= p["L0"]:
            s_t = math.inf
        else:
            s_t = (e_t - p["L_inf"]) / (p["L0"] - e_t) ** p["alpha"]
        axes = list(getattr(fit, "axes", ()))
        standin = {"E": e_t - s_t, **{f"A_{a}": p[f"beta_{a}"] for a in axes},
                   **{f"alpha_{a}": -p[f"c_{a}"] for a in axes}}
        return _as_powerlaw_allocation(fit, standin, target, cost, bounds)


class _Renamed:
    """``fit`` with other params: how M2/M4 borrow ``powerlaw``'s closed-form allocation."""

    def __init__(self, fit: Any, params: dict[str, float]) -> None:
        self._fit, self.params = fit, params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fit, name)


def _as_powerlaw_allocation(fit: Any, params: dict[str, float], target: float, cost: ProportionalLike,
                            bounds: Mapping[str, tuple[float, float]]) -> Allocation | None:

    try:
        return get_form("powerlaw").closed_form_allocation(_Renamed(fit, params), target, cost, bounds)
    except KeyError:  # the closed form covers the compute axes only
        return None


SAT_OPTIONS = ("huber_delta", "c_max", "grid_points", "n_refine", "n_starts", "seed")
_NOTE_RENAMES = [  # powerlaw's wording -> M2's (order matters: the bound note first)
    (re.compile(r"\balpha_(\w+) at its upper bound ([^;]+); consider a larger alpha_max"),
     r"c_\1 at its bound -\2; consider a larger c_max"),
    (re.compile(r"\bA_(\w+)"), r"beta_\1"),
    (re.compile(r"\balpha_(\w+)"), r"c_\1"),
    (re.compile(r"\bE\b"), "L_inf"),
]


def _sat_name(name: str) -> str:
    """powerlaw's parameter name -> M2's."""
    if name == "E":
        return "L_inf"
    if name.startswith("A_"):
        return "beta_" + name[2:]
    return "c_" + name[6:] if name.startswith("alpha_") else name


def _sat_params(params: Mapping[str, float]) -> dict[str, float]:
    return {_sat_name(k): (-v if k.startswith("alpha_") else v) for k, v in params.items()}


def _sat_cov(cov: pd.DataFrame | None) -> pd.DataFrame | None:
    """powerlaw's covariance in M2's names and signs (c_k = -alpha_k flips the sign of its row and column)."""
    if cov is None:
        return None
    sign = np.array([-1.0 if str(k).startswith("alpha_") else 1.0 for k in cov.index])
    names = [_sat_name(str(k)) for k in cov.index]
    return pd.DataFrame(cov.to_numpy() * np.outer(sign, sign), index=names, columns=names)


def _powerlaw_params(params: Mapping[str, float]) -> dict[str, float]:
    out = {"E": params["L_inf"]}
    for k, v in params.items():
        if k.startswith("beta_"):
            out["A_" + k[5:]] = v
        elif k.startswith("c_"):
            out["alpha_" + k[2:]] = -v
    return out


def _rename_note(note: str) -> str:
    for pattern, repl in _NOTE_RENAMES:
        note = pattern.sub(repl, note)
    return note


class SaturatingForm(Form):
    name = "saturating"
    description = "L = L_inf + sum_k beta_k x_k^c_k, c_k <= 0 (M2: powerlaw in the paper's notation)"
    source = f"{SOURCE}, estimator M2; fitted as powerlaw (log-space Huber, variable projection)"
    family = "powerlaw"
    option_names = SAT_OPTIONS
    has_limit = True

    def __init__(self) -> None:

        # An unregistered powerlaw form under this name: its errors and results name 'saturating'.
        self._inner = PowerLawForm(self.name, self.description, self.source, chance=False)

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return ["L_inf", *[f"{p}_{a}" for a in axes for p in ("beta", "c")]]

    def fit(self, data: FitData, **options: Any) -> FitResult:
        check_options(self.name, options, SAT_OPTIONS)
        opts = {("alpha_max" if k == "c_max" else k): v for k, v in options.items()}
        r = self._inner.fit(data, **opts)
        resolved = {("c_max" if k == "alpha_max" else k): v for k, v in r.options.items()}
        return dataclasses.replace(
            r, params=pd.Series(_sat_params(_pred.as_dict(r.params)), dtype=float), options=resolved,
            covariance=_sat_cov(r.covariance),
            stderr=None if r.stderr is None else {_sat_name(k): v for k, v in r.stderr.items()},
            at_bound=tuple(_sat_name(k) for k in r.at_bound), notes=tuple(_rename_note(n) for n in r.notes))

    def refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                 options: Mapping[str, Any] | None = None) -> Refit:
        """``powerlaw``'s warm-start refitter (``scaling.forms.varpro.solve_warm``), reporting M2's names."""
        opts = {("alpha_max" if k == "c_max" else k): v for k, v in full.options.items()}
        inner = self._inner.refitter(dataclasses.replace(full, options=opts), X, y, w, options=options)

        def refit(idx: np.ndarray) -> Replicate:
            rep = inner(idx)
            return dataclasses.replace(rep, params=_sat_params(rep.params))

        return refit

    def batch_refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                       options: Mapping[str, Any] | None = None) -> BatchRefit | None:
        """``powerlaw``'s batched refitter (``scaling.forms.varpro_batch``), reporting M2's names."""
        opts = {("alpha_max" if k == "c_max" else k): v for k, v in full.options.items()}
        inner = self._inner.batch_refitter(dataclasses.replace(full, options=opts), X, y, w, options=options)
        if inner is None:
            return None

        def refit_all(idx: Sequence[np.ndarray]) -> list[Replicate | Exception]:
            return [dataclasses.replace(r, params=_sat_params(r.params)) if isinstance(r, Replicate) else r
                    for r in inner(idx)]

        return refit_all

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        """``powerlaw``'s, with M2's names."""
        return self._inner.predictor(fit, _powerlaw_params(params))

    def closed_form_allocation(self, fit: Any, target: float, cost: ProportionalLike,
                               bounds: Mapping[str, tuple[float, float]]) -> Allocation | None:
        p = getattr(fit, "params", None)
        return None if p is None else _as_powerlaw_allocation(fit, _powerlaw_params(p), target, cost, bounds)


FORMS: list[Form] = [SaturatingForm(), M4Form()]
