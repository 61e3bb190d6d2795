"""The ``bnsl`` form: a smoothly broken power law in one axis (Caballero et al. 2022), with its number
of breaks chosen by held-out error, around the numpy core of ``scaling.forms.bnsl_core``.

    err = a + b x^-c0 prod_{i=1..n} (1 + (x / d_i)^(1/f_i))^(-c_i f_i),   n = 0..3 breaks

Parameters: ``a`` (the floor of err), ``b``, ``c0`` (the slope before the first break) and ``c<i>``
(the change of slope at break i), ``d<i>`` (its position, in x units) and ``f<i>`` (its width in ln x:
small is sharp), breaks in increasing x. ``a``, ``b`` >= 0 and every segment slope c0 + ... + c_k lies
in [0, alpha_max] (default 10, ``BNSL_SLOPE_MAX``: real breaks are steep, e.g. 5.7 after the break of the
authors' 4-digit addition curve): err does not rise with x between well-separated breaks (no double
descent; widely overlapping breaks of different widths can still make a small bump) and always has a limit. A
break sits between the second-smallest and the third-largest distinct x (``bnsl_core.break_range``).

The number of breaks (option ``breaks='auto'``, the default) is chosen by held-out error inside the
fit: fits on all rows but those at the largest 15% and 30% of the distinct x values predict the rows
held out, scored by the RMSE of log err; every number of breaks up to ``max_breaks`` (2; 3 costs about a
second more per fit) is scored, and the fewest whose error no more breaks cut by more than ``select_tol``
(20%) is taken (``select_breaks``).

The fitting space is ours, not the paper's: the summed Huber loss of log(pred) - log(err), no offset (a
loss or error rate is fitted for its relative error; ``tests/test_bnsl_extrapolation.py`` checks that a
fit of 10 x err is the fit of err with a and b times 10).
'auto' may choose 0 breaks: the plain saturating power law a + b x^-c0, which extrapolates better
than a break fitted to noise. ``breaks=0..3`` fixes the number.

BNSL is a one-axis law. We found no natural multi-axis version (the additive sum of one BNSL per axis
has 3 + 3n parameters per axis and no shared break), so data with more axes is refused with one line.
A full fit is solved again with twice the slope bound: when that fit needs a steeper slope and is more than
5% better, a note names the bound as the reason for the fit (``_basin_check``).
Standard errors are a Gauss-Newton approximation on the log residuals, as for ``powerlaw``; the
bootstrap (``refitter``: a warm start from the full fit with its number of breaks) gives intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaling.core.direction import direction
from scaling.defaults import ALPHA_MAX_LIMIT, BNSL_SLOPE_MAX, HUBER_DELTA
from scaling.errors import FitError
from scaling.forms import bnsl_core as core
from scaling.forms.base import BatchRefit, Form, Refit, Replicate, batched_or_each, check_resample, unfittable_each
from scaling.forms.result import FitData, FitResult, IntervalKind, check_options, make_result
from scaling.forms.varpro import BOUND_TOL

SOURCE = (
    "Caballero, Gupta, Rish, Krueger 2022, 'Broken neural scaling laws', arXiv 2210.14891; fitted here by a "
    "grid over break positions with (a, b) by NNLS (variable projection, as VPNLS, Open-Athena, arXiv "
    "2603.22339), log-space Huber (delta 1e-3) and L-BFGS-B refinement; breaks chosen by held-out error"
)
OPTIONS = ["breaks", "max_breaks", "select_tol", "huber_delta", "alpha_max", "grid_points", "n_refine",
           "n_starts", "seed"]
MAX_BREAKS = 3
BASIN_GAIN = 0.05  # how much lower a fit under twice the slope bound must reach for the bound to be named
FOLD_FRACTIONS = (0.15, 0.3)  # the largest fractions of the distinct x values held out by the folds


@dataclass(frozen=True)
class BnslModel:
    sol: core.Solution
    kind: str

    def predict(self, X: np.ndarray) -> np.ndarray:
        return direction(self.kind).from_error(core.predict_error(self.sol, np.asarray(X, dtype=float)[:, 0]))

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> None:
        return None  # no closed-form band for a nonlinear robust fit: use the bootstrap


def param_names(axes: Sequence[str]) -> list[str]:
    return ["a", "b", "c0", *[f"{p}{i}" for i in range(1, MAX_BREAKS + 1) for p in "cdf"]]


def _params(sol: core.Solution) -> dict[str, float]:
    out = {"a": sol.a, "b": sol.b, "c0": float(sol.c[0])}
    for i in range(sol.n_breaks):
        out |= {f"c{i + 1}": float(sol.c[i + 1]), f"d{i + 1}": float(sol.d[i]), f"f{i + 1}": float(sol.f[i])}
    return out


# -- how many breaks --------------------------------------------------------------------------------


def feasible(x: np.ndarray, n: int) -> bool:
    """Whether rows at ``x`` can support n breaks: n_params distinct x values and n_params + 2 rows."""
    return len(np.unique(x)) >= core.n_params(n) and len(x) >= core.n_params(n) + 2


def holdout_masks(x: np.ndarray) -> list[np.ndarray]:
    """Training masks of the selection folds: every row but those at the largest FOLD_FRACTIONS of the
    distinct x values (at least one value, more for each later fold, never all but one)."""
    levels = np.unique(x)
    masks, h_prev = [], 0
    for frac in FOLD_FRACTIONS:
        h = max(h_prev + 1, round(frac * len(levels)))
        if h >= len(levels) - 1:
            break
        masks.append(x <= levels[-h - 1])
        h_prev = h
    return masks


def fold_errors(x: np.ndarray, err: np.ndarray, w: np.ndarray | None, n: int, masks: dict[int, np.ndarray],
                **kw: Any) -> dict[int, float]:
    """Per fold: the RMSE of log err on its held-out (larger-x) rows, inf where the fit fails."""
    out = {}
    kw = {**kw, "n_refine": min(int(kw.get("n_refine", 3)), 2)}  # scoring needs predictions, not the last digit
    for i, train in masks.items():
        try:
            sol = core.solve(x[train], err[train], n, weights=None if w is None else w[train], **kw)
        except FitError:
            out[i] = math.inf
            continue
        r = np.log(core.predict_error(sol, x[~train])) - np.log(err[~train])
        out[i] = float(np.sqrt(np.mean(r**2)))
    return out


def select_breaks(x: np.ndarray, err: np.ndarray, w: np.ndarray | None, max_breaks: int, tol: float,
                  **kw: Any) -> tuple[int, dict[int, float]]:
    """Every n from 0 to ``max_breaks`` that the rows (and some fold) can support is scored by its mean
    held-out error over the folds that support the largest of them; the choice is the smallest n whose
    score no larger n cuts by more than ``tol`` (a parsimony rule: a break must earn its three parameters).
    Scoring every n, not stopping at the first that does not help, keeps a curve whose one-break fits
    extrapolate worse than none but whose two-break fits do better (a break and its saturation) from
    stopping at none. Returns (n, the mean held-out error of each n scored)."""
    masks = holdout_masks(x)
    usable = {n: {i: m for i, m in enumerate(masks) if feasible(x[m], n)} for n in range(max_breaks + 1)}
    tried = [n for n in range(max_breaks + 1) if usable[n] and (n == 0 or feasible(x, n))]
    if not tried:
        return 0, {}
    common = usable[tried[-1]]
    per = {n: fold_errors(x, err, w, n, common, **kw) for n in tried}
    score = {n: float(np.mean(list(v.values()))) for n, v in per.items()}
    best = min(score.values())
    chosen = next(n for n in tried if best >= (1.0 - tol) * score[n])
    return chosen, score


# -- reporting --------------------------------------------------------------------------------------


def _at_bound(sol: core.Solution, x: np.ndarray, slope_max: float) -> list[str]:
    out = ["a"] if sol.a == 0.0 else []
    for k, s in enumerate(sol.slopes):
        if s <= BOUND_TOL or s >= slope_max - BOUND_TOL:
            out.append(f"c{k}")
    lo, hi = core.break_range(np.log(x))
    for i in range(sol.n_breaks):
        if not lo + 1e-6 < math.log(sol.d[i]) < hi - 1e-6:
            out.append(f"d{i + 1}")
        if not core.F_MIN * (1 + 1e-6) < sol.f[i] < core.F_MAX * (1 - 1e-6):
            out.append(f"f{i + 1}")
    return out


def _notes(sol: core.Solution, at_bound: list[str], slope_max: float) -> list[str]:
    notes = []
    n = sol.n_breaks
    if "a" in at_bound:
        notes.append("a = 0 (at its bound): the data show no floor, so the limit is not identified")
    for k, s in enumerate(sol.slopes):
        if f"c{k}" not in at_bound:
            continue
        where = "before the first break" if k == 0 and n else ("after the last break" if k == n and n else
                                                               f"between breaks {k} and {k + 1}")
        what = "c0" if k == 0 else "c0 + ... + c" + str(k)
        if n == 0:
            where = "everywhere"
        if s <= BOUND_TOL:
            notes.append(f"the slope {where} ({what}) is 0 (at its bound): err does not fall there")
        else:
            notes.append(f"the slope {where} ({what}) is at alpha_max {slope_max}; consider a larger alpha_max")
    for i in range(1, n + 1):
        if f"d{i}" in at_bound:
            notes.append(f"d{i} at the edge of where a break may sit (from the second-smallest to the third-largest "
                         f"x): break {i}'s position is not identified")
        if f"f{i}" in at_bound:
            sharp = sol.f[i - 1] <= core.F_MIN * (1 + 1e-6)
            notes.append(f"f{i} at its {'lower' if sharp else 'upper'} bound "
                         f"{core.F_MIN if sharp else core.F_MAX}: break {i} is "
                         f"{'sharper than the data resolve (a kink)' if sharp else 'spread wider than the data'}")
    notes.append("stderr: Gauss-Newton approximation in log space (ignores Huber and bounds); use a bootstrap")
    return notes


def _basin_check(x: np.ndarray, err: np.ndarray, weights: np.ndarray | None, sol: core.Solution,
                 kw: dict[str, Any]) -> str | None:
    """Whether the slope bound chose the basin while no slope sits at it (issue 19: a bound of 5 sent the
    4-digit addition fit to another basin, 16x worse in the tail, with every slope below 5 and no note). The
    fit is solved again with twice the bound; a note when that fit needs a steeper slope than the bound allows
    and is more than ``BASIN_GAIN`` better. Full fits only (bootstrap refits start from the full fit)."""
    slope_max = float(kw["slope_max"])
    wider = min(2.0 * slope_max, ALPHA_MAX_LIMIT)
    if wider <= slope_max or np.any(sol.slopes >= slope_max - BOUND_TOL):
        return None  # a slope at the bound already has its note (``_at_bound``'s test)
    try:
        alt = core.solve(x, err, sol.n_breaks, weights=weights, **(kw | {"slope_max": wider}))
    except FitError:
        return None
    steepest = float(np.max(alt.slopes))
    if steepest <= slope_max or not alt.objective < (1.0 - BASIN_GAIN) * sol.objective:
        return None
    return (f"the slope bound alpha_max {slope_max:g} chose this fit: with {wider:g}, a segment slope of "
            f"{steepest:.3g} fits {1.0 - alt.objective / sol.objective:.0%} better (a lower objective); "
            "consider a larger alpha_max")


def _stderr(sol: core.Solution, data: FitData, err: np.ndarray,
            at_bound: list[str]) -> tuple[dict[str, float] | None, pd.DataFrame | None]:
    """Gauss-Newton standard errors from d log(pred) / d(reported parameters), free ones only, and their
    covariance."""
    lx = np.log(data.X[:, 0])
    G = np.exp(core.log_term(sol, data.X[:, 0]))
    p = sol.a + G
    cols = {"a": np.ones_like(p), "b": G / sol.b, "c0": -G * lx}
    for i in range(sol.n_breaks):
        c, d, f = sol.c[i + 1], sol.d[i], sol.f[i]
        z = (lx - math.log(d)) / f
        sp, sig = np.logaddexp(0.0, z), 0.5 * (1.0 + np.tanh(0.5 * z))
        cols |= {f"c{i + 1}": -G * f * sp, f"d{i + 1}": G * c * sig / d, f"f{i + 1}": -G * c * (sp - z * sig)}
    names = [nm for nm in cols if nm not in at_bound and np.any(cols[nm] != 0)]
    w = np.ones(len(p)) if data.weights is None else data.weights
    dof = len(p) - len(names)
    if dof <= 0 or not names:
        return None, None
    J = np.column_stack([cols[nm] for nm in names]) / p[:, None]
    scale = np.linalg.norm(J, axis=0)  # column scaling: b and d can be 1e-3 or 1e9
    Js = J / scale
    H = Js.T @ (w[:, None] * Js)
    if not np.all(np.isfinite(H)) or np.linalg.cond(H) > 1e14:
        return None, None
    r = np.log(p) - np.log(err)
    cov = np.linalg.inv(H) * (float(np.sum(w * r**2)) / dof) / np.outer(scale, scale)
    out = {nm: math.nan for nm in cols}
    out.update(zip(names, np.sqrt(np.maximum(np.diag(cov), 0.0)).tolist(), strict=True))
    return out, pd.DataFrame(cov, index=names, columns=names)


# -- the fit ----------------------------------------------------------------------------------------


def _breaks_option(value: Any, name: str) -> int | None:
    """None for 'auto', else the fixed number of breaks (one-line FitError otherwise)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if str(value).strip() != str(n) or not 0 <= n <= MAX_BREAKS:
        raise FitError(f"form 'bnsl': option {name} must be 'auto' or 0..{MAX_BREAKS}; got {value!r}")
    return n


def _check_data(data: FitData, form: str) -> np.ndarray:
    if len(data.axes) != 1:
        raise FitError(f"form {form!r} is a one-axis law (a broken power law in x); got {len(data.axes)} axes "
                       f"({', '.join(data.axes)}): fit it to one axis")
    err = data.error()
    bad = int(np.sum(err <= 0))
    if bad:
        raise FitError(f"form {form!r} needs a positive loss/error; column {data.y_name!r} has {bad} values <= 0")
    return err


def _require(x: np.ndarray, n: int, form: str, axis: str) -> None:
    k, distinct = core.n_params(n), len(np.unique(x))
    if len(x) < k + 2 or distinct < k:
        raise FitError(f"form {form!r} with {n} break(s) has {k} parameters and needs >= {k + 2} points and "
                       f">= {k} distinct values of {axis!r}; got {len(x)} points, {distinct} distinct")


def _fit(data: FitData, form: str, options: dict[str, Any]) -> FitResult:
    check_options(form, options, OPTIONS)
    err = _check_data(data, form)
    x, axis = data.X[:, 0], data.axes[0]
    fixed = _breaks_option(options.get("breaks", "auto"), "breaks")
    max_breaks = _breaks_option(options.get("max_breaks", 2), "max_breaks")
    if max_breaks is None:
        raise FitError(f"form {form!r}: option max_breaks must be 0..{MAX_BREAKS}; got 'auto'")
    try:
        delta = float(options.get("huber_delta", HUBER_DELTA))
        slope_max = float(options.get("alpha_max", BNSL_SLOPE_MAX))
        tol, grid = float(options.get("select_tol", 0.2)), options.get("grid_points")
        kw: dict[str, Any] = {"delta": delta, "slope_max": slope_max,
                              "positions": None if grid is None else int(grid),
                              "n_refine": int(options.get("n_refine", 3)),
                              "n_starts": int(options.get("n_starts", 10)), "seed": int(options.get("seed", 0))}
    except (TypeError, ValueError):
        raise FitError(f"form {form!r}: an option is not a number ({', '.join(sorted(options))})") from None
    if not (delta > 0 and slope_max > 0 and 0 <= tol < 1):
        raise FitError(f"form {form!r}: huber_delta and alpha_max must be positive and select_tol in [0, 1)")
    resolved: dict[str, Any] = {"breaks_requested": "auto" if fixed is None else fixed, "max_breaks": max_breaks,
                                "select_tol": tol, "huber_delta": delta, "alpha_max": slope_max,
                                **{k: v for k, v in kw.items() if k not in ("delta", "slope_max")}}
    notes = []
    if fixed is None:
        _require(x, 0, form, axis)
        n, scores = select_breaks(x, err, data.weights, max_breaks, tol, **kw)
        resolved["heldout_rmse_log"] = {str(k): v for k, v in scores.items()}
        resolved["breaks_rule"] = (f"the fewest breaks whose held-out RMSE of log error (folds hold out the largest "
                                   f"{FOLD_FRACTIONS[0]:.0%} and {FOLD_FRACTIONS[1]:.0%} of the distinct x) no "
                                   f"more breaks cut by more than {tol:.0%}")
        if len(scores) > 1:
            listed = ", ".join(f"{k}: {v:.3g}" for k, v in scores.items())
            notes.append(f"{n} break(s) chosen by held-out error ({listed}): {resolved['breaks_rule']}")
        else:
            notes.append(f"too few points to compare break counts by held-out error: {n} break(s)")
    else:
        n = fixed
        _require(x, n, form, axis)
    resolved["breaks"] = n
    sol = core.solve(x, err, n, weights=data.weights, **kw)
    resolved["solver"] = "break grid + VarPro (NNLS) + L-BFGS-B (+ multi-start fallback)"
    resolved.update(sol.info)
    at_bound = _at_bound(sol, x, slope_max)
    notes += _notes(sol, at_bound, slope_max)
    basin = _basin_check(x, err, data.weights, sol, kw)
    notes += [basin] if basin else []
    stderr, cov = _stderr(sol, data, err, at_bound)
    if stderr is None:
        notes.append("standard errors unavailable: the parameters are not identified (singular Jacobian)")
    return make_result(data, form=form, model=BnslModel(sol, data.kind), params=_params(sol), stderr=stderr, cov=cov,
                       n_params=core.n_params(n), at_bound=at_bound, converged=sol.converged, message=sol.message,
                       objective=sol.objective, ceiling=float(direction(data.kind).from_error(core.limit(sol))),
                       notes=notes, options=resolved)


class BnslForm(Form):
    """The smoothly broken power law of one axis (see the module docstring)."""

    name = "bnsl"
    description = ("err = a + b x^-c0 prod_i (1 + (x/d_i)^(1/f_i))^(-c_i f_i), one axis, 0-3 breaks chosen "
                   "by held-out error (break grid + VarPro)")
    source = SOURCE
    family = "bnsl"
    option_names = tuple(OPTIONS)
    has_limit = True  # segment slopes >= 0: err falls to a (or levels off when the final slope is 0)
    max_axes = 1  # a broken power law of one variable

    def fit(self, data: FitData, **options: Any) -> FitResult:
        return _fit(data, self.name, dict(options))

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return param_names(axes)

    def refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                 options: Mapping[str, Any] | None = None) -> Refit:
        """``bnsl_core.solve_warm`` from the full fit with its number of breaks (no new selection: that
        would multiply the cost by ~10; the number of breaks is held fixed across resamples)."""
        job = _BnslJob.of(full, y)

        def refit(idx: np.ndarray) -> Replicate:
            check_resample(X[idx], full.axes, min_distinct=job.k, n_params=job.k)
            return job.replicate(core.solve_warm(X[idx, 0], job.err[idx], job.sol0,
                                                 weights=None if w is None else w[idx], **job.kw))

        return refit

    def batch_refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                       options: Mapping[str, Any] | None = None) -> BatchRefit | None:
        """For a fit without breaks (what every axis of the shipped grid selects): ``bnsl_core.solve_warm_batch``,
        many resamples at once; a resample that does not converge goes to ``refitter``. With breaks, None
        (their break-grid screen is refitted per resample)."""
        job = _BnslJob.of(full, y)
        if job.sol0.n_breaks:
            return None
        one = self.refitter(full, X, y, w, options=options)
        kw = {k: job.kw[k] for k in ("delta", "slope_max")}

        def refit_all(idx: Sequence[np.ndarray]) -> list[Replicate | Exception]:
            unfit = unfittable_each(X, idx, full.axes, min_distinct=job.k, n_params=job.k)
            return batched_or_each(idx, unfit, lambda sub: core.solve_warm_batch(X[:, 0], job.err, job.sol0, sub,
                                                                                weights=w, **kw),
                                   job.replicate, one)

        return refit_all

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        """The law at other values of a, b, c0 and each break's c, d, f (as many breaks as ``params`` has)."""
        n = sum(1 for k in params if k.startswith("d"))

        def arr(p: str) -> np.ndarray:
            return np.array([params[f"{p}{i}"] for i in range(1, n + 1)], dtype=float)

        sol = core.Solution(float(params["a"]), float(params["b"]), np.concatenate([[params["c0"]], arr("c")]),
                            arr("d"), arr("f"), math.nan, True, "")
        d = direction(fit.kind)
        return lambda M: d.from_error(core.predict_error(sol, np.asarray(M, dtype=float)[:, 0]))


@dataclass(frozen=True)
class _BnslJob:
    """What every refit of resamples of ``full``'s rows shares: the full solution, the errors, the options."""

    sol0: core.Solution
    err: np.ndarray
    kw: dict[str, Any]
    kind: str

    @classmethod
    def of(cls, full: FitResult, y: np.ndarray) -> _BnslJob:
        model = full.require_model()
        if not isinstance(model, BnslModel):
            raise FitError(f"fit of form {full.form!r} carries no bnsl model to refit")
        opts = full.options
        kw: dict[str, Any] = {"delta": float(opts.get("huber_delta", HUBER_DELTA)),
                              "slope_max": float(opts.get("alpha_max", BNSL_SLOPE_MAX)),
                              "seed": int(opts.get("seed", 0))}
        return cls(model.sol, direction(full.kind).error(y), kw, full.kind)

    @property
    def k(self) -> int:
        return core.n_params(self.sol0.n_breaks)

    def replicate(self, sol: core.Solution) -> Replicate:
        d = direction(self.kind)

        def predict(M: np.ndarray) -> np.ndarray:
            return d.from_error(core.predict_error(sol, np.asarray(M, dtype=float)[:, 0]))

        return Replicate(_params(sol), float(d.from_error(core.limit(sol))), predict, str(sol.info.get("path", "warm")))


FORMS: list[Form] = [BnslForm()]
