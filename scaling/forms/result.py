"""Fit a named form to a table of runs, and the result every form reports.

``fit(data, form, y=..., axes=[...], kind=...)`` checks the data once (columns present, finite, positive
axes, accuracy in (0, 1)), hands a ``FitData`` of plain numpy arrays to the form's fitter and returns a
``FitResult``. Goodness-of-fit statistics are always computed on the y scale with a Gaussian likelihood
of the residuals, so that AICc/BIC compare across forms fitted on different scales (log, logit, linear).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from scaling.core.direction import Direction, Kind, direction
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict
from scaling.core.jsonable import jsonable as _jsonable
from scaling.core.results import Result
from scaling.data.dataset import Dataset
from scaling.errors import FitError
from scaling.forms import get_form, use_form
from scaling.forms import prediction as _pred
from scaling.forms.likelihood import gaussian_stats

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scaling.forms.base import Form

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

    def predict(self, X: Mapping[str, Any]) -> np.ndarray: ...  # axis columns (FitResult: a frame gives a Series)


@dataclass(frozen=True)
class FitResult(Result):
    """A fitted form. Besides its own report (``summary``, ``to_frame``, ``to_dict``, ``plot``, ``save``) it
    answers as a statsmodels results object does: ``params`` and ``bse`` (Series), ``conf_int(alpha=0.05)``,
    ``predict(frame)`` (a Series indexed like the frame), ``get_prediction(X).summary_frame(alpha=0.05)``,
    ``fittedvalues``, ``resid``, ``nobs``, ``df_resid``, ``llf``, ``aic``, ``bic``, ``rsquared`` and
    ``cov_params()`` (see each for what it is here)."""

    form: str
    axes: tuple[str, ...]
    y: str
    kind: Kind
    n_points: int
    params: pd.Series  # a mapping given is kept as a Series of floats, in the form's order
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
    # The covariance of the free parameters (rows and columns named), where the form gives one.
    covariance: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.params, pd.Series) and self.params.dtype == float):
            object.__setattr__(self, "params", pd.Series(dict(self.params), dtype=float))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self) if f.compare)

    @property
    def direction(self) -> Direction:
        """Whether the fitted quantity rises (accuracy) or falls (loss) with scale."""
        return direction(self.kind)

    @overload
    def predict(self, X: pd.DataFrame) -> pd.Series: ...
    @overload
    def predict(self, X: Mapping[str, ArrayLike]) -> np.ndarray: ...

    def predict(self, X: pd.DataFrame | Mapping[str, ArrayLike]) -> pd.Series | np.ndarray:
        """Prediction on the y scale: for a DataFrame a Series indexed like it (as statsmodels' ``predict``),
        for a mapping of axis columns an array of their broadcast shape."""
        M, shape = axis_matrix(X, self.axes)
        values = self.require_model().predict(M).reshape(shape)
        return pd.Series(values, index=X.index) if isinstance(X, pd.DataFrame) else values

    def predict_interval(
        self,
        X: pd.DataFrame | Mapping[str, ArrayLike],
        *,
        level: float = 0.95,
        kind: IntervalKind = "confidence",
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) on the y scale: the form's closed-form band, or for a confidence band of a form
        without one the percentile band of the fit's bootstrap resamples; None without either."""
        if not 0.0 < level < 1.0:
            raise FitError(f"interval level must be in (0, 1); got {level}")
        if kind not in ("confidence", "prediction"):
            raise FitError(f"interval kind must be 'confidence' or 'prediction'; got {kind!r}")
        M, shape = axis_matrix(X, self.axes)
        band = self.require_model().interval(M, level, kind)
        if band is None and kind == "confidence":
            band = _pred.bootstrap_band(self, M, level)
        if band is None:
            return None
        return band[0].reshape(shape), band[1].reshape(shape)

    def get_prediction(self, X: pd.DataFrame | Mapping[str, ArrayLike], *,
                       method: str = "auto") -> _pred.PredictionResult:
        """Predictions at ``X`` with intervals, as statsmodels' ``get_prediction``:
        ``.summary_frame(alpha=0.05)`` has ``mean`` and ``mean_ci_lower/upper`` (and ``obs_ci_*`` for a new run
        where the method gives them). ``method``: 'auto' (bootstrap when the fit has resamples, else the
        closed form where the form has one, else the delta method), 'bootstrap', 'closed form' or 'delta';
        the result's ``method`` and ``description`` say which made the intervals."""
        M, _ = axis_matrix(X, self.axes)
        index = X.index if isinstance(X, pd.DataFrame) else pd.RangeIndex(len(M))
        return _pred.get_prediction(self, M, index, method)

    def require_model(self) -> Model:
        if self.model is None:
            raise FitError(f"fit of form {self.form!r} carries no model to predict with")
        return self.model

    def conf_int(self, value: float | None = None, /, *, alpha: float | None = None, level: float | None = None,
                 method: str = "auto") -> pd.DataFrame:
        """Intervals of the parameters (columns lower, upper), 95% by default: ``alpha=0.05`` as in statsmodels,
        or ``level=0.95``; a bare number is a level and is refused below 0.5 (``conf_int(0.05)`` would be a 5%
        interval). ``method``: 'auto' (the bootstrap's percentile intervals when the fit has resamples, else
        Wald), 'bootstrap' or 'wald'; ``attrs["method"]`` says which. Wald: estimate -/+ t quantile x standard
        error, exact for the linear forms (OLS on their scale), a Gauss-Newton approximation for nonlinear ones;
        NaN for parameters without a standard error (at a bound, not identified)."""
        frame, how = _pred.parameter_intervals(self, _pred.resolve_level(value, alpha, level), method)
        frame.attrs["method"] = how
        return frame

    def cov_params(self) -> pd.DataFrame:
        """The covariance of the free parameters (statsmodels' ``cov_params``): OLS for the linear forms,
        Gauss-Newton for the nonlinear ones; FitError where the form gives none."""
        if self.covariance is None:
            raise FitError(f"fit of form {self.form!r} has no parameter covariance (see its notes)")
        return self.covariance.copy()

    @property
    def bse(self) -> pd.Series:
        """Standard errors of ``params`` (NaN where there is none: at a bound, not identified)."""
        return pd.Series({k: (self.stderr or {}).get(k, math.nan) for k in self.params.index}, dtype=float)

    @property
    def nobs(self) -> int:
        return self.n_points

    @property
    def df_resid(self) -> int:
        """Points minus free parameters."""
        return self.n_points - int(self.stats.get("n_params", len(self.params)))

    @property
    def fittedvalues(self) -> pd.Series:
        """The fit's predictions at its own rows (y scale), indexed like the data it was fitted to."""
        return self.predict(self.require_data())

    def require_data(self) -> pd.DataFrame:
        if self.data is None:
            raise FitError("this fit carries no data (fit it with scaling.fit)")
        return self.data

    @property
    def resid(self) -> pd.Series:
        """Observed minus fitted, on the y scale (every form: the residuals AICc/BIC and R^2 are computed from)."""
        return pd.to_numeric(self.require_data()[self.y]).astype(float) - self.fittedvalues

    @property
    def llf(self) -> float:
        """Gaussian log-likelihood of the y-scale residuals, with the variance at its maximum."""
        return self.stats["loglik"]

    @property
    def aic(self) -> float:
        """AIC = 2k - 2 llf with k = free parameters + 1: the residual variance counts as a parameter, so this is
        statsmodels' OLS AIC + 2 (which counts the coefficients only); differences between forms are the same.
        ``stats["aicc"]`` adds the small-sample correction."""
        return 2 * (self.stats["n_params"] + 1) - 2 * self.llf

    @property
    def bic(self) -> float:
        """BIC = k ln n - 2 llf, with k as in ``aic`` (statsmodels' OLS BIC + ln n)."""
        return self.stats["bic"]

    @property
    def rsquared(self) -> float:
        """1 - SS_res / SS_tot of the y-scale residuals, for every form: for the logit forms and the power laws,
        fitted on logit(y) or log(error), it is not the R^2 of that regression but of the predictions of y."""
        return self.stats["r2"]

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter: estimate, standard error, 95% Wald interval, at a bound; bootstrap
        percentile intervals too when the fit was bootstrapped."""
        ci = self.conf_int(level=0.95, method="wald")
        frame = pd.DataFrame({
            "estimate": self.params,
            "stderr": self.bse,
            "ci95_lower": ci["lower"],
            "ci95_upper": ci["upper"],
            "at_bound": [k in self.at_bound for k in self.params.index],
        })
        frame.index.name = "parameter"
        if self.bootstrap is not None:
            for level in self.bootstrap.levels:
                lo = {k: s.intervals[level][0] for k, s in self.bootstrap.params.items() if k in self.params}
                hi = {k: s.intervals[level][1] for k, s in self.bootstrap.params.items() if k in self.params}
                frame[f"boot{100 * level:g}_lower"] = pd.Series(lo, dtype=float)
                frame[f"boot{100 * level:g}_upper"] = pd.Series(hi, dtype=float)
        return frame

    def summary(self) -> Text:
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
        frame.insert(len(frame.columns), "at bound", ["yes" if k in self.at_bound else "" for k in self.params.index])
        parts = ["\n".join(head), frame.to_string(float_format=lambda v: f"{v:.6g}"), f"statistics: {stats}"]
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        if self.bootstrap is not None:
            b = self.bootstrap
            parts.append(f"bootstrap: {b.n_ok} of {b.n_requested} resamples fitted (seed {b.seed}, groups by "
                         f"{', '.join(b.group) or 'single rows'})")
        return Text("\n\n".join(parts))

    def plot(self, ax: Axes | None = None) -> Axes:
        """The fit against its data (``scaling.plots.plot_fit``): on the run database's axes, accuracy vs hours
        at 224 px with one curve per model size (figure 1); for a table of one or two axes, its response
        against its last axis, one curve per level of the other (loss vs tokens by params); else fitted vs
        observed values. Without ``ax``, on a new pyplot figure (shown inline in Jupyter)."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        return plots.plot_fit(self, ax if ax is not None else new_axes())

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


def _same(a: Any, b: Any) -> bool:
    """Field equality of results: Series and frames by content (labels, values, NaN equal to NaN)."""
    if isinstance(a, pd.Series | pd.DataFrame) or isinstance(b, pd.Series | pd.DataFrame):
        return type(a) is type(b) and a.equals(b)
    return bool(a == b)


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
    cov: pd.DataFrame | None = None,
) -> FitResult:
    """Assemble a FitResult, computing residual statistics from the model's own predictions; ``cov`` is the
    covariance of the free parameters (rows and columns named), where the form has one."""
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
        params=pd.Series({k: float(v) for k, v in params.items()}, dtype=float),
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
        covariance=cov,
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
    form: str | Form,
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
    ``weights`` names a column of positive per-point weights (e.g. inverse seed variance). ``form`` is a name
    or a ``Form`` object (``scaling.Form.from_function``), used without registering it.
    """
    form = use_form(form)
    form_obj = get_form(form)
    direction(kind)  # one-line FitError for a kind other than 'accuracy', 'error' or 'loss'
    if form_obj.kind is not None and kind != form_obj.kind:
        raise FitError(f"form {form!r} is a law of a {form_obj.kind}: fit it with kind={form_obj.kind!r}")
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
