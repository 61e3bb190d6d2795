"""A functional form from a plain Python function, as ``scipy.optimize.curve_fit`` or lmfit take one
(``scaling.Form.from_function``).

    law = scaling.Form.from_function(lambda N, D, E, A, a, B, b: E + A / N**a + B / D**b,
                                     p0={"E": 2, "A": 400, "a": 0.3, "B": 400, "b": 0.3},
                                     bounds={"E": (0, 10), "a": (0, 2), "b": (0, 2)}, kind="loss", limit="E")

- The function's first arguments are the axes, in the order of the fit's ``axes``; the others are its
  parameters (``params`` names them, else the keys of ``p0``, else the last ``len(p0)`` arguments).
- ``p0``: the start (a dict, or values in the parameters' order); without one every parameter starts at 1,
  as in curve_fit. ``bounds``: a dict name -> (lower, upper) (absent names are unbounded), or curve_fit's
  ``(lower, upper)`` of two scalars or two sequences.
- ``kind``: what the function predicts, 'accuracy' (a fraction, higher is better) or 'loss'; a fit of the
  other kind is refused. ``limit``: the parameter that is the law's value as every axis grows (its ceiling or
  floor, e.g. ``E``), if it has one: projections then know what is unreachable.
- ``scale``: 'y' fits least squares on y (curve_fit's), 'log' on log y (for laws of positive y spanning
  decades, as the built-in power laws are fitted).

The fit is one run of ``scipy.optimize.least_squares`` (trust-region reflective, within the bounds) from
``p0``, as curve_fit does: a poor start can end in a poor local optimum (``converged`` and the notes say
when the solver stopped early). Standard errors and the parameters' covariance are curve_fit's
(``absolute_sigma=False``): sigma^2 (J'WJ)^-1 at the optimum, with sigma^2 from the residuals, for the
parameters not at a bound. A bootstrap refits every resample from the full fit's parameters.

The function itself is not saved with a fit (``fit.save``): a saved fit of such a form loads when the form
is known by its name again (``scaling.load(path, forms=[law])``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from scaling.core.direction import KINDS
from scaling.core.saved import TRANSIENT
from scaling.errors import FitError
from scaling.forms.base import Form, Refit, Replicate, check_resample
from scaling.forms.result import FitData, FitResult, IntervalKind, check_options, make_result

SOURCE = "user-defined (scaling.Form.from_function)"
SCALES = ("y", "log")
COND_MAX = 1e14  # condition number of the scaled normal matrix beyond which no standard errors are given


@dataclass(frozen=True, eq=False)
class FunctionModel:
    """A fitted function form: its name, parameter values and kind. The function is found by the form's name
    (``scaling.forms.get_form``) when the model was loaded or unpickled; a model made by a fit keeps it."""

    form: str
    names: tuple[str, ...]
    values: tuple[float, ...]
    kind: str
    law: FunctionForm | None = field(default=None, repr=False, metadata=TRANSIENT)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "law"}  # a lambda cannot be pickled

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in {**state, "law": None}.items():
            object.__setattr__(self, k, v)

    def function(self) -> FunctionForm:
        if self.law is not None:
            return self.law
        from scaling.forms import get_form  # lazy: the registry imports the built-in forms, which import this

        try:
            law = get_form(self.form)
        except FitError:
            raise FitError(f"form {self.form!r} is not known in this session: make it again with "
                           "scaling.Form.from_function(...) and pass it (scaling.load(path, forms=[form]))") from None
        if not isinstance(law, FunctionForm) or law.names != self.names:
            raise FitError(f"form {self.form!r} known in this session is not the function this fit was made with "
                           f"(parameters {', '.join(self.names)})")
        return law

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.function().evaluate(np.asarray(X, dtype=float), np.asarray(self.values, dtype=float))

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> None:
        return None  # no closed-form band: delta-method or bootstrap intervals (FitResult.get_prediction)


def _parameter_names(func: Callable[..., Any], p0: Any, params: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(axis arguments, parameter names) of ``func``."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        raise FitError("Form.from_function needs a function whose arguments can be read") from None
    args = [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if params is not None:
        names = list(params)
    elif isinstance(p0, Mapping):
        names = list(p0)
    elif p0 is not None:
        names = args[len(args) - len(p0):] if len(p0) <= len(args) else []
    else:
        raise FitError("Form.from_function: say which arguments are parameters (p0 as a dict, p0 values for the "
                       "last arguments, or params=[...])")
    if not names or len(names) >= len(args) or args[len(args) - len(names):] != names:
        raise FitError(f"Form.from_function: the parameters ({', '.join(names) or 'none'}) must be the last "
                       f"arguments of the function ({', '.join(args)}), after at least one axis")
    return args[: len(args) - len(names)], names


def _start(names: Sequence[str], p0: Any) -> np.ndarray:
    if p0 is None:
        return np.ones(len(names))
    if isinstance(p0, Mapping):
        missing = [n for n in names if n not in p0]
        if missing or len(p0) != len(names):
            raise FitError(f"Form.from_function: p0 must give every parameter ({', '.join(names)}) and no other")
        values = [p0[n] for n in names]
    else:
        values = list(p0)
        if len(values) != len(names):
            raise FitError(f"Form.from_function: p0 has {len(values)} values for {len(names)} parameters")
    start = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(start)):
        raise FitError("Form.from_function: p0 must be finite numbers")
    return start


def _bounds(names: Sequence[str], bounds: Any) -> tuple[np.ndarray, np.ndarray]:
    k = len(names)
    lo, hi = np.full(k, -np.inf), np.full(k, np.inf)
    if bounds is None:
        return lo, hi
    if isinstance(bounds, Mapping):
        unknown = sorted(set(bounds) - set(names))
        if unknown:
            raise FitError(f"Form.from_function: bounds name unknown parameter(s) {', '.join(unknown)}")
        for i, n in enumerate(names):
            if n in bounds:
                low, high = bounds[n]
                lo[i] = -np.inf if low is None else float(low)
                hi[i] = np.inf if high is None else float(high)
    else:
        if len(bounds) != 2:
            raise FitError("Form.from_function: bounds is a dict name -> (lower, upper) or (lower, upper)")
        lo = np.broadcast_to(np.asarray(bounds[0], dtype=float), (k,)).copy()
        hi = np.broadcast_to(np.asarray(bounds[1], dtype=float), (k,)).copy()
    if np.any(lo >= hi):
        raise FitError("Form.from_function: every lower bound must be below its upper bound")
    return lo, hi


class FunctionForm(Form):
    """A law given as a function (see the module docstring)."""

    family = "function"

    def __init__(self, func: Callable[..., Any], *, p0: Any = None, bounds: Any = None, kind: str = "accuracy",
                 name: str | None = None, params: Sequence[str] | None = None, limit: str | None = None,
                 scale: str = "y", description: str | None = None, source: str | None = None) -> None:
        if not callable(func):
            raise FitError(f"Form.from_function needs a function; got {type(func).__name__}")
        if kind not in KINDS:
            raise FitError(f"Form.from_function: kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if scale not in SCALES:
            raise FitError(f"Form.from_function: scale must be one of {', '.join(SCALES)}; got {scale!r}")
        self.func = func
        self.axis_args, names = _parameter_names(func, p0, params)
        self.names = tuple(names)
        if limit is not None and limit not in self.names:
            raise FitError(f"Form.from_function: limit {limit!r} is not a parameter ({', '.join(names)})")
        self.p0, (self.lower, self.upper) = _start(names, p0), _bounds(names, bounds)
        if np.any(self.p0 < self.lower) or np.any(self.p0 > self.upper):
            bad = [n for n, v, lo, hi in zip(names, self.p0, self.lower, self.upper, strict=True) if not lo <= v <= hi]
            raise FitError(f"Form.from_function: p0 of {', '.join(bad)} lies outside its bounds")
        fname = getattr(func, "__name__", "")
        self.name = name or (fname if fname.isidentifier() else "custom")
        self.kind, self.limit, self.scale = kind, limit, scale
        self.description = description or f"{self.name}({', '.join(self.axis_args)}; {', '.join(names)})"
        self.source = source or SOURCE
        self.has_limit = limit is not None
        self.max_axes = len(self.axis_args)

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return list(self.names)

    def evaluate(self, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """The function at the rows of ``X`` (n, k) and parameters ``theta``, as float of shape (n,)."""
        try:
            with np.errstate(all="ignore"):
                out = self.func(*(X[:, j] for j in range(X.shape[1])), *theta.tolist())
            return np.broadcast_to(np.asarray(out, dtype=float), (X.shape[0],)).astype(float, copy=True)
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise FitError(f"form {self.name!r}: the function failed ({type(exc).__name__}: {exc})") from None

    def _residuals(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> Callable[[np.ndarray], np.ndarray]:
        sw = np.ones(len(y)) if w is None else np.sqrt(w)
        target = np.log(y) if self.scale == "log" else y

        def residuals(theta: np.ndarray) -> np.ndarray:
            pred = self.evaluate(X, theta)
            with np.errstate(all="ignore"):
                r = sw * ((np.log(pred) if self.scale == "log" else pred) - target)
            return np.where(np.isfinite(r), r, 1e10)  # outside the law's domain: far from any optimum

        return residuals

    def _solve(self, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, start: np.ndarray) -> Any:
        x0 = np.clip(start, self.lower, self.upper)
        return least_squares(self._residuals(X, y, w), x0, bounds=(self.lower, self.upper), method="trf",
                             x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=2000 * (len(x0) + 1))

    def _check(self, data: FitData) -> None:
        if len(data.axes) != len(self.axis_args):
            raise FitError(f"form {self.name!r} takes {len(self.axis_args)} axes ({', '.join(self.axis_args)}); "
                           f"got {len(data.axes)} ({', '.join(data.axes)})")
        if self.scale == "log" and np.any(data.y <= 0):
            raise FitError(f"form {self.name!r} fits log y (scale='log'): every y must be positive")

    def fit(self, data: FitData, **options: Any) -> FitResult:
        check_options(self.name, options, ())
        self._check(data)
        data.require_points(self.name, len(self.names))
        res = self._solve(data.X, data.y, data.weights, self.p0)
        theta = np.asarray(res.x, dtype=float)
        at_bound = [n for n, a in zip(self.names, res.active_mask, strict=True) if a != 0]
        stderr, cov = self._covariance(res, at_bound, len(data.y))
        notes = [f"fitted by least squares on {'log y' if self.scale == 'log' else 'y'} from p0 (one local "
                 "optimum, as curve_fit)"]
        if at_bound:
            notes.append(f"at a bound: {', '.join(at_bound)} (no standard error)")
        if stderr is None:
            notes.append("standard errors unavailable: the parameters are not identified (singular Jacobian)")
        params = dict(zip(self.names, theta.tolist(), strict=True))
        model = FunctionModel(self.name, self.names, tuple(theta.tolist()), data.kind, self)
        return make_result(data, form=self.name, model=model, params=params, stderr=stderr, cov=cov,
                           n_params=len(self.names), at_bound=at_bound, converged=bool(res.status > 0),
                           message=str(res.message), objective=float(2 * res.cost),
                           ceiling=None if self.limit is None else params[self.limit], notes=notes,
                           options=self.options_record(int(res.nfev)))

    def options_record(self, nfev: int) -> dict[str, Any]:
        return {"solver": "scipy least_squares (trf) from p0", "scale": self.scale,
                "p0": dict(zip(self.names, self.p0.tolist(), strict=True)),
                "bounds": {n: [lo, hi] for n, lo, hi in zip(self.names, self.lower.tolist(), self.upper.tolist(),
                                                            strict=True)},
                "limit": self.limit, "nfev": nfev}

    def _covariance(self, res: Any, at_bound: Sequence[str], n: int) -> tuple[dict[str, float] | None,
                                                                             pd.DataFrame | None]:
        free = [i for i, name in enumerate(self.names) if name not in at_bound]
        dof = n - len(free)
        J = np.asarray(res.jac, dtype=float)[:, free]
        if dof <= 0 or not free or not np.all(np.isfinite(J)):
            return None, None
        scale = np.linalg.norm(J, axis=0)
        if np.any(scale == 0):
            return None, None
        H = (J / scale).T @ (J / scale)
        if np.linalg.cond(H) > COND_MAX:
            return None, None
        cov = np.linalg.inv(H) * (float(np.sum(res.fun**2)) / dof) / np.outer(scale, scale)
        names = [self.names[i] for i in free]
        stderr = {name: math.nan for name in self.names}
        stderr.update(zip(names, np.sqrt(np.maximum(np.diag(cov), 0.0)).tolist(), strict=True))
        return stderr, pd.DataFrame(cov, index=names, columns=names)

    def refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                 options: Mapping[str, Any] | None = None) -> Refit:
        """Least squares on each resample from the full fit's parameters (a warm start)."""
        start = np.asarray([full.params[n] for n in self.names], dtype=float)

        def refit(idx: np.ndarray) -> Replicate:
            check_resample(X[idx], full.axes, min_distinct=2, n_params=len(self.names))
            res = self._solve(X[idx], y[idx], None if w is None else w[idx], start)
            if res.status <= 0:
                raise FitError(f"least squares did not converge ({res.message})")
            params = dict(zip(self.names, np.asarray(res.x, dtype=float).tolist(), strict=True))
            ceiling = None if self.limit is None else params[self.limit]
            theta = np.asarray(res.x, dtype=float)
            return Replicate(params, ceiling, lambda M: self.evaluate(np.asarray(M, dtype=float), theta), "warm")

        return refit

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        theta = np.asarray([params[n] for n in self.names], dtype=float)
        return lambda M: self.evaluate(np.asarray(M, dtype=float), theta)
