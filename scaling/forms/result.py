"""Fit a named form to a table of runs, and the result every form reports.

``fit(data, form, y=..., axes=[...], kind=...)`` checks the data once (columns present, finite, positive
axes, accuracy in (0, 1)), hands a ``FitData`` of plain numpy arrays to the form's fitter and returns a
``FitResult``. Goodness-of-fit statistics are always computed on the y scale with a Gaussian likelihood
of the residuals, so that AICc/BIC compare across forms fitted on different scales (log, logit, linear).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scaling.core.direction import Direction, Kind, direction
from scaling.core.jsonable import JSONDict
from scaling.core.jsonable import jsonable as _jsonable
from scaling.data.dataset import Dataset
from scaling.errors import FitError
from scaling.forms import get_form

if TYPE_CHECKING:
    from matplotlib.axes import Axes

IntervalKind = Literal["confidence", "prediction"]
SCHEMA = "scaling.fit/v1"


@dataclass(frozen=True)
class FitData:
    """Validated inputs of a fit: ``X`` is (n, k) with every value finite and > 0; ``y`` is finite."""

    X: np.ndarray
    y: np.ndarray
    axes: tuple[str, ...]
    y_name: str
    kind: Kind
    weights: np.ndarray | None = None
    weights_name: str | None = None

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def error(self) -> np.ndarray:
        """The quantity that falls with scale: 1 - accuracy, or the loss itself."""
        return direction(self.kind).error(self.y)

    def y_from_error(self, err: np.ndarray) -> np.ndarray:
        return direction(self.kind).from_error(err)

    def require_points(self, form: str, n_params: int) -> None:
        if self.n <= n_params + 1:
            raise FitError(
                f"form {form!r} has {n_params} parameters and needs at least {n_params + 2} points; "
                f"got {self.n}"
            )

    def require_distinct(self, form: str, min_distinct: int) -> None:
        for j, axis in enumerate(self.axes):
            distinct = len(np.unique(self.X[:, j]))
            if distinct < min_distinct:
                raise FitError(
                    f"form {form!r} needs >= {min_distinct} distinct values of axis {axis!r}; got {distinct}"
                )


class Model(Protocol):
    """What a fitted form keeps so that it can predict new points (on the y scale)."""

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def interval(
        self, X: np.ndarray, level: float, kind: IntervalKind
    ) -> tuple[np.ndarray, np.ndarray] | None: ...


class FitLike(Protocol):
    """What a projection needs from a fit (``scaling.forms.result.FitResult`` provides it)."""

    @property
    def form(self) -> str: ...
    @property
    def axes(self) -> tuple[str, ...]: ...
    @property
    def kind(self) -> str: ...
    @property
    def ceiling(self) -> float | None: ...
    @property
    def axis_ranges(self) -> dict[str, tuple[float, float]]: ...

    def predict(self, X: pd.DataFrame | Mapping[str, Any]) -> np.ndarray: ...


@dataclass(frozen=True)
class FitResult:
    form: str
    axes: tuple[str, ...]
    y: str
    kind: Kind
    n_points: int
    params: dict[str, float]
    stderr: dict[str, float] | None
    at_bound: tuple[str, ...]
    converged: bool
    message: str
    objective: float
    stats: dict[str, float]
    ceiling: float | None
    axis_ranges: dict[str, tuple[float, float]]
    notes: tuple[str, ...]
    options: dict[str, Any]
    model: Model | None = field(default=None, repr=False, compare=False)
    # Where the data came from (the run database's protocol, eval set, metric and selection, or a file), the
    # frame that was fitted and the options given: what a bootstrap or a projection of this fit needs.
    source: dict[str, Any] = field(default_factory=dict, compare=False)
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)
    fit_options: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    weights: str | None = field(default=None, repr=False, compare=False)
    bootstrap: Any = field(default=None, repr=False, compare=False)  # a resampling.BootstrapResult
    # What the data is, with its defaults (target, solved axis, evaluation point, cost, training length).
    dataset: Dataset | None = field(default=None, repr=False, compare=False)

    @property
    def direction(self) -> Direction:
        """Whether the fitted quantity rises (accuracy) or falls (loss) with scale."""
        return direction(self.kind)

    def predict(self, X: pd.DataFrame | Mapping[str, ArrayLike]) -> np.ndarray:
        """Prediction on the y scale; the result has the broadcast shape of the axis columns."""
        M, shape = axis_matrix(X, self.axes)
        return self.require_model().predict(M).reshape(shape)

    def predict_interval(
        self,
        X: pd.DataFrame | Mapping[str, ArrayLike],
        *,
        level: float = 0.95,
        kind: IntervalKind = "confidence",
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) on the y scale, or None where the form has no closed-form band."""
        if not 0.0 < level < 1.0:
            raise FitError(f"interval level must be in (0, 1); got {level}")
        if kind not in ("confidence", "prediction"):
            raise FitError(f"interval kind must be 'confidence' or 'prediction'; got {kind!r}")
        M, shape = axis_matrix(X, self.axes)
        band = self.require_model().interval(M, level, kind)
        if band is None:
            return None
        return band[0].reshape(shape), band[1].reshape(shape)

    def require_model(self) -> Model:
        if self.model is None:
            raise FitError(f"fit of form {self.form!r} carries no model to predict with")
        return self.model

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Wald intervals of the parameters, estimate -/+ t quantile x standard error (columns lower, upper).

        Exact for the linear forms (OLS on their scale); for nonlinear forms the standard errors are a
        Gauss-Newton approximation (see the fit's notes): prefer ``scaling.bootstrap`` intervals there.
        Parameters without a standard error (at a bound, not identified) get NaN.
        """
        from scipy.stats import t as student_t  # lazy: keeps import scaling cheap (scipy.stats takes ~0.3 s)

        if not 0.0 < level < 1.0:
            raise FitError(f"interval level must be in (0, 1); got {level}")
        dof = max(self.n_points - int(self.stats.get("n_params", len(self.params))), 1)
        q = float(student_t.ppf(0.5 + level / 2, dof))
        est = pd.Series(self.params, dtype=float)
        se = pd.Series({k: (self.stderr or {}).get(k, math.nan) for k in self.params}, dtype=float)
        return pd.DataFrame({"lower": est - q * se, "upper": est + q * se})

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: estimate, standard error, 95% Wald interval, at a bound; bootstrap
        percentile intervals too when the fit was bootstrapped."""
        ci = self.conf_int(0.95)
        frame = pd.DataFrame({
            "estimate": pd.Series(self.params, dtype=float),
            "stderr": pd.Series({k: (self.stderr or {}).get(k, math.nan) for k in self.params}, dtype=float),
            "ci95_lower": ci["lower"],
            "ci95_upper": ci["upper"],
            "at_bound": [k in self.at_bound for k in self.params],
        })
        frame.index.name = "parameter"
        if self.bootstrap is not None:
            for level in self.bootstrap.levels:
                lo = {k: s.intervals[level][0] for k, s in self.bootstrap.params.items() if k in self.params}
                hi = {k: s.intervals[level][1] for k, s in self.bootstrap.params.items() if k in self.params}
                frame[f"boot{100 * level:g}_lower"] = pd.Series(lo, dtype=float)
                frame[f"boot{100 * level:g}_upper"] = pd.Series(hi, dtype=float)
        return frame

    def summary(self) -> str:
        """A readable report: the model, the parameters with errors, the fit statistics and the notes."""
        d = self.direction
        head = [
            f"Fit of form {self.form!r}: {self.y} ~ {', '.join(self.axes)} ({self.kind}, {self.n_points} points)",
            f"source: {', '.join(f'{k}={v}' for k, v in self.source.items()) or 'a data frame'}",
            f"converged: {'yes' if self.converged else 'no'} ({self.message})",
            f"{d.limit_name} as every axis grows: {'none' if self.ceiling is None else f'{self.ceiling:.6g}'}",
        ]
        stats = "  ".join(f"{k}={v:.6g}" for k, v in self.stats.items() if k != "n_params")
        frame = self.to_frame().drop(columns="at_bound")
        frame.insert(len(frame.columns), "at bound", ["yes" if k in self.at_bound else "" for k in self.params])
        parts = ["\n".join(head), frame.to_string(float_format=lambda v: f"{v:.6g}"), f"statistics: {stats}"]
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        if self.bootstrap is not None:
            b = self.bootstrap
            parts.append(f"bootstrap: {b.n_ok} of {b.n_requested} resamples fitted (seed {b.seed}, groups by "
                         f"{', '.join(b.group) or 'single rows'})")
        return "\n\n".join(parts)

    def plot(self, ax: Axes | None = None) -> Axes:
        """The fit against its data: for the run database's axes, accuracy vs hours at 224 px with one curve
        per model size (figure 1); for any other table, fitted vs observed values."""
        from scaling.plots import (  # lazy: drawing (matplotlib) is optional
            accuracy_curves_data,
            new_figure,
            plot_accuracy_curves,
        )

        if self.data is None:
            raise FitError("this fit carries no data to draw (fit it with scaling.fit)")
        if ax is None:
            _, ax = new_figure()
        if {"n_params", "data_hours", "image_px", "arch"} <= set(self.data.columns) and "data_hours" in self.axes:
            return plot_accuracy_curves(accuracy_curves_data(self.data, self, where={"image_px": 224}), ax)
        observed = pd.to_numeric(self.data[self.y]).to_numpy(dtype=float)
        fitted = self.predict(self.data)
        ax.scatter(observed, fitted, s=14)
        lo, hi = float(min(observed.min(), fitted.min())), float(max(observed.max(), fitted.max()))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
        ax.set_xlabel(f"observed {self.y}")
        ax.set_ylabel(f"fitted {self.y} ({self.form})")
        return ax

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:.4g}" for k, v in list(self.params.items())[:6])
        more = ", ..." if len(self.params) > 6 else ""
        return (f"FitResult(form={self.form!r}, y={self.y!r} ~ {', '.join(self.axes)}, n={self.n_points}, "
                f"rmse={self.stats.get('rmse', math.nan):.4g}, params=[{params}{more}])")

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling fit --json`` prints: the data's source, the fit and, if run, its bootstrap."""
        out: dict[str, Any] = {"schema": SCHEMA, "data": dict(self.source), "fit": self.describe()}
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap.to_dict()
        return _jsonable(out)

    def describe(self) -> JSONDict:
        """The fit alone as JSON-ready data (the ``fit`` member of ``to_dict()`` and of projection reports)."""
        info = get_form(self.form)
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "form": self.form,
            "form_description": info.description,
            "form_source": info.source,
            "family": info.family,
            "axes": list(self.axes),
            "y": self.y,
            "kind": self.kind,
            "n_points": self.n_points,
            "params": dict(self.params),
            "stderr": None if self.stderr is None else dict(self.stderr),
            "at_bound": list(self.at_bound),
            "converged": self.converged,
            "message": self.message,
            "objective": self.objective,
            "stats": dict(self.stats),
            "ceiling": self.ceiling,
            "axis_ranges": {k: list(v) for k, v in self.axis_ranges.items()},
            "notes": list(self.notes),
            "options": dict(self.options),
        }
        return _jsonable(out)


def axis_matrix(X: pd.DataFrame | Mapping[str, ArrayLike], axes: Sequence[str]) -> tuple[np.ndarray, tuple]:
    """Stack the axis columns of ``X`` (broadcast together) into an (m, k) matrix, and their shape."""
    missing = [a for a in axes if a not in X]
    if missing:
        raise FitError(f"prediction input lacks axis column(s) {', '.join(map(repr, missing))}")
    cols = np.broadcast_arrays(*[np.asarray(X[a], dtype=float) for a in axes])
    shape = cols[0].shape
    M = np.column_stack([c.reshape(-1) for c in cols]) if cols[0].size else np.empty((0, len(axes)))
    for j, axis in enumerate(axes):
        bad = int(np.sum(~(np.isfinite(M[:, j]) & (M[:, j] > 0))))
        if bad:
            raise FitError(f"prediction input: axis {axis!r} has {bad} non-positive or non-finite values")
    return M, shape


def gaussian_stats(
    y: np.ndarray, yhat: np.ndarray, n_params: int, weights: np.ndarray | None = None
) -> dict[str, float]:
    """Residual statistics on the y scale and AICc/BIC of a Gaussian likelihood with k = n_params + 1.

    With weights the residual variance of point i is sigma^2 / w_i (heteroscedastic Gaussian); the
    variance sigma^2 is at its maximum-likelihood value.
    """
    r = y - yhat
    n = len(y)
    w = np.ones(n) if weights is None else weights / np.mean(weights)
    ss_res = float(np.sum(r**2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    sigma2 = float(np.sum(w * r**2)) / n
    if sigma2 > 0:
        loglik = -0.5 * n * (math.log(2 * math.pi * sigma2) + 1.0) + 0.5 * float(np.sum(np.log(w)))
    else:  # an exact fit: the likelihood is unbounded
        loglik = math.inf
    k = n_params + 1
    aic = 2 * k - 2 * loglik
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf
    return {
        "rmse": math.sqrt(ss_res / n),
        "mae": float(np.mean(np.abs(r))),
        "max_abs": float(np.max(np.abs(r))),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        "loglik": loglik,
        "aicc": aicc,
        "bic": k * math.log(n) - 2 * loglik,
        "n_params": float(n_params),
    }


def make_result(
    data: FitData,
    *,
    form: str,
    model: Model,
    params: dict[str, float],
    stderr: dict[str, float] | None,
    n_params: int,
    at_bound: Sequence[str] = (),
    converged: bool = True,
    message: str = "",
    objective: float = math.nan,
    ceiling: float | None = None,
    notes: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
) -> FitResult:
    """Assemble a FitResult, computing residual statistics from the model's own predictions."""
    yhat = model.predict(data.X)
    notes = list(notes)
    if data.weights is not None:
        notes.append(f"weighted by column {data.weights_name!r}")
    return FitResult(
        form=form,
        axes=data.axes,
        y=data.y_name,
        kind=data.kind,
        n_points=data.n,
        params={k: float(v) for k, v in params.items()},
        stderr=None if stderr is None else {k: float(v) for k, v in stderr.items()},
        at_bound=tuple(at_bound),
        converged=converged,
        message=message,
        objective=float(objective),
        stats=gaussian_stats(data.y, yhat, n_params, data.weights),
        ceiling=ceiling,
        axis_ranges={
            a: (float(data.X[:, j].min()), float(data.X[:, j].max())) for j, a in enumerate(data.axes)
        },
        notes=tuple(notes),
        options=dict(options or {}),
        model=model,
    )


def _column(data: pd.DataFrame, name: str, role: str) -> np.ndarray:
    if name not in data.columns:
        raise FitError(f"{role} column {name!r} not in data; columns: {', '.join(map(str, data.columns))}")
    try:
        values = pd.to_numeric(data[name], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise FitError(f"{role} column {name!r} is not numeric") from None
    bad = int(np.sum(~np.isfinite(values)))
    if bad:
        raise FitError(f"{role} column {name!r} has {bad} NaN or infinite values")
    return values


def fit(
    data: pd.DataFrame,
    form: str,
    *,
    y: str,
    axes: Sequence[str],
    kind: Kind = "accuracy",
    weights: str | None = None,
    **options: Any,
) -> FitResult:
    """Fit ``form`` to ``data[y]`` against the ``axes`` columns; ``FitError`` when the data cannot support it.

    kind='accuracy': y is a fraction in (0, 1), higher is better (power laws model 1 - y).
    kind='loss': y is a loss or error rate, lower is better (power laws model y itself).
    ``weights`` names a column of positive per-point weights (e.g. inverse seed variance).
    """
    form_obj = get_form(form)
    direction(kind)  # one-line FitError for a kind other than 'accuracy', 'error' or 'loss'
    axes = tuple(axes)
    if not axes:
        raise FitError(f"form {form!r} needs at least one axis")
    if len(set(axes)) != len(axes) or y in axes:
        raise FitError(f"axes must be distinct columns other than y; got axes={list(axes)}, y={y!r}")
    if len(data) == 0:
        raise FitError(f"form {form!r}: no data points")
    yv = _column(data, y, "y")
    X = np.column_stack([_column(data, a, "axis") for a in axes])
    for j, axis in enumerate(axes):
        bad = int(np.sum(X[:, j] <= 0))
        if bad:
            raise FitError(f"axis column {axis!r} has {bad} non-positive values (axes are used in logs)")
    if direction(kind).is_fraction:
        bad = int(np.sum((yv <= 0) | (yv >= 1)))
        if bad:
            raise FitError(f"y column {y!r} has {bad} values outside (0, 1) for kind='accuracy'")
    w = None
    if weights is not None:
        w = _column(data, weights, "weights")
        bad = int(np.sum(w <= 0))
        if bad:
            raise FitError(f"weights column {weights!r} has {bad} non-positive values")
    fd = FitData(X=X, y=yv, axes=axes, y_name=y, kind=kind, weights=w, weights_name=weights)
    return form_obj.fit(fd, **options)


def check_options(form: str, options: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """One-line error for an option a form does not take (typos would otherwise be ignored)."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "none"
        raise FitError(f"form {form!r} does not take option(s) {', '.join(unknown)}; it takes: {takes}")
