"""Intervals of a fit's parameters and predictions, as statsmodels users ask for them.

``fit.conf_int(alpha=0.05)`` and ``fit.get_prediction(X).summary_frame(alpha=0.05)`` say which method made
their intervals (``method``, and the frame's ``attrs["method"]``):

- ``bootstrap``: percentile intervals over the fit's bootstrap resamples (``scaling.fit(..., n_boot=N)``),
  of the parameters, or of the predictions of each resample's parameters (``Form.predictor``);
- ``closed form``: the t intervals of the linear forms' least squares (exact for OLS; on logit(y) mapped
  back through the inverse link for the logit forms), with prediction intervals for a new run;
- ``delta``: the delta method, se(y) = sqrt(g' C g) with g the gradient of the prediction in the parameters
  (central differences) and C their covariance (Gauss-Newton for the nonlinear forms), t quantile with the
  fit's residual degrees of freedom; parameters at a bound are held fixed. An approximation: prefer the
  bootstrap for nonlinear forms far from the data;
- ``wald`` (parameters): estimate -/+ t quantile x standard error.

``auto`` picks the bootstrap when the fit has resamples (with their samples kept), else the closed form
where the form has one, else the delta method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from scaling.core.display import Displayed, Text
from scaling.errors import FitError

if TYPE_CHECKING:
    from collections.abc import Callable

    from scaling.forms.result import FitResult

METHODS = ("auto", "bootstrap", "closed form", "delta", "wald")
STEP = 1e-6  # relative step of the central differences (their error is ~ STEP^2 of the curvature)


def resolve_level(value: float | None, alpha: float | None, level: float | None, *, default: float = 0.95) -> float:
    """The level of an interval from ``conf_int(value)``, ``alpha=`` or ``level=``; a bare ``value`` below 0.5
    is refused (``conf_int(0.05)`` would be a 5% interval: statsmodels users mean ``alpha=0.05``)."""
    given = [x for x in (value, alpha, level) if x is not None]
    if len(given) > 1:
        raise FitError("give the interval as one of: a level (0.95), alpha= (0.05) or level= (0.95)")
    if value is not None and value < 0.5:
        raise FitError(f"a bare {value:g} is read as a level, a {100 * value:g}% interval; write alpha={value:g} "
                       f"for a {100 * (1 - value):g}% interval (statsmodels' convention), or level={value:g}")
    out = default if not given else (1.0 - alpha if alpha is not None else float(given[0]))
    if not 0.0 < out < 1.0:
        raise FitError(f"interval level must be in (0, 1); got {out:g}" + (" (alpha must be too)" if alpha else ""))
    return out


def t_quantile(level: float, df: int) -> float:
    """The two-sided ``level`` quantile of Student's t with ``df`` degrees of freedom."""
    from scipy.stats import t as student_t  # lazy: keeps import scaling cheap (scipy.stats takes ~0.3 s)

    return float(student_t.ppf(0.5 + level / 2, df))


def as_dict(params: pd.Series) -> dict[str, float]:
    """Parameters as a plain dict (what ``Form.predictor`` and the forms' own code take)."""
    return {str(k): float(v) for k, v in params.items()}


def dof(fit: FitResult) -> int:
    """Residual degrees of freedom: points minus free parameters (at least 1)."""
    return max(fit.n_points - int(fit.stats.get("n_params", len(fit.params))), 1)


def boot_samples(fit: FitResult) -> pd.DataFrame | None:
    """The fit's bootstrap parameter samples, one row per fitted resample (None without a bootstrap or with its
    samples not kept)."""
    boot = fit.bootstrap
    samples = getattr(boot, "samples", None) or {}
    if boot is None or not all(k in samples for k in fit.params.index):
        return None
    return pd.DataFrame({k: np.asarray(samples[k], dtype=float) for k in fit.params.index})


def parameter_intervals(fit: FitResult, level: float, method: str) -> tuple[pd.DataFrame, str]:
    """(lower, upper) of every parameter and what made them."""
    if method not in ("auto", "bootstrap", "wald"):
        raise FitError(f"parameter intervals by 'auto', 'bootstrap' or 'wald'; got {method!r}")
    samples = boot_samples(fit)
    if method == "bootstrap" and samples is None:
        raise FitError("this fit has no bootstrap samples: fit it with n_boot=N (scaling.fit(..., n_boot=1000))")
    if samples is not None and method != "wald":
        lo = samples.quantile((1 - level) / 2, interpolation="linear")
        hi = samples.quantile((1 + level) / 2, interpolation="linear")
        how = f"bootstrap percentile intervals over {len(samples)} resamples"
        return pd.DataFrame({"lower": lo, "upper": hi}), how
    q = t_quantile(level, dof(fit))
    se = fit.bse
    how = f"Wald: estimate -/+ t({dof(fit)}) quantile x standard error"
    return pd.DataFrame({"lower": fit.params - q * se, "upper": fit.params + q * se}), how


def _gradient(predictor: Callable[[pd.Series], Callable[[np.ndarray], np.ndarray]], params: pd.Series,
              names: list[str], M: np.ndarray) -> np.ndarray:
    """d prediction / d parameter (m, len(names)) by central differences."""
    grads = []
    for name in names:
        h = STEP * max(abs(float(params[name])), 1e-8)
        up, down = params.copy(), params.copy()
        up[name] += h
        down[name] -= h
        grads.append((predictor(up)(M) - predictor(down)(M)) / (2 * h))
    return np.column_stack(grads) if grads else np.zeros((len(M), 0))


@dataclass(frozen=True)
class PredictionResult(Displayed):
    """Predictions of a fit at new points with their intervals (``FitResult.get_prediction``), as statsmodels'
    ``get_prediction``: ``predicted_mean``, ``summary_frame(alpha=0.05)``, ``conf_int(alpha=0.05)``."""

    predicted_mean: pd.Series
    method: str  # 'bootstrap' | 'closed form' | 'delta'
    description: str  # how the intervals are made, in words
    fit: FitResult = field(repr=False)
    matrix: np.ndarray = field(repr=False)
    se_mean: pd.Series | None = field(default=None, repr=False)  # delta method and bootstrap (std of resamples)
    resampled: np.ndarray | None = field(default=None, repr=False)  # bootstrap: (resamples, points)

    @property
    def predicted(self) -> np.ndarray:
        return self.predicted_mean.to_numpy()

    def conf_int(self, alpha: float = 0.05, *, obs: bool = False) -> pd.DataFrame:
        """(lower, upper) of the mean (or with ``obs=True`` of a new run, where the method gives it)."""
        frame = self.summary_frame(alpha)
        prefix = "obs_ci" if obs else "mean_ci"
        if f"{prefix}_lower" not in frame:
            raise FitError(f"no interval for a new run by the {self.method} method (only for the mean)")
        return frame[[f"{prefix}_lower", f"{prefix}_upper"]].set_axis(["lower", "upper"], axis=1)

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Columns ``mean``, ``mean_se`` (delta method, bootstrap), ``mean_ci_lower``, ``mean_ci_upper`` and,
        where the method gives them, ``obs_ci_lower``, ``obs_ci_upper`` (a new run, residual noise included);
        ``attrs["method"]`` says how the intervals were made."""
        level = resolve_level(None, alpha, None)
        mean = self.predicted_mean
        out = pd.DataFrame({"mean": mean})
        if self.se_mean is not None:
            out["mean_se"] = self.se_mean
        for name, (lo, hi) in self._bands(level).items():
            out[f"{name}_lower"], out[f"{name}_upper"] = lo, hi
        out.attrs["method"] = self.description
        return out

    def _bands(self, level: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if self.method == "bootstrap":
            assert self.resampled is not None
            lo, hi = np.nanquantile(self.resampled, [(1 - level) / 2, (1 + level) / 2], axis=0)
            return {"mean_ci": (lo, hi)}
        if self.method == "closed form":
            model = self.fit.require_model()
            mean_band = model.interval(self.matrix, level, "confidence")
            obs_band = model.interval(self.matrix, level, "prediction")
            assert mean_band is not None and obs_band is not None
            return {"mean_ci": mean_band, "obs_ci": obs_band}
        assert self.se_mean is not None
        q = t_quantile(level, dof(self.fit))
        mean, se = self.predicted_mean.to_numpy(), self.se_mean.to_numpy()
        s2 = self.fit.stats["rmse"] ** 2 * self.fit.n_points / dof(self.fit)  # residual variance on the y scale
        obs = np.sqrt(se**2 + s2)
        return {"mean_ci": (mean - q * se, mean + q * se), "obs_ci": (mean - q * obs, mean + q * obs)}

    def to_frame(self) -> pd.DataFrame:
        return self.summary_frame()

    def summary(self) -> str:
        return Text(f"Predictions of form {self.fit.form!r} at {len(self.predicted_mean)} points; intervals: "
                    f"{self.description}\n{self.summary_frame().to_string(float_format=lambda v: f'{v:.6g}')}")

    def __repr__(self) -> str:
        return f"PredictionResult(form={self.fit.form!r}, points={len(self.predicted_mean)}, method={self.method!r})"


def predict_resampled(fit: FitResult, M: np.ndarray) -> np.ndarray | None:
    """Predictions at ``M`` of every bootstrap resample's parameters (resamples, points), or None where the
    fit has no bootstrap samples or its form cannot rebuild predictions from parameters."""
    from scaling.forms import get_form  # lazy: the registry imports the built-in forms, which import result

    samples = boot_samples(fit)
    if samples is None:
        return None
    form = get_form(fit.form)
    rows = []
    for _, p in samples.iterrows():
        if not np.all(np.isfinite(p.to_numpy())):
            continue
        predict = form.predictor(fit, as_dict(p))
        if predict is None:
            return None
        rows.append(predict(M))
    return np.vstack(rows) if rows else None


def get_prediction(fit: FitResult, M: np.ndarray, index: pd.Index, method: str = "auto") -> PredictionResult:
    """Predictions at the axis matrix ``M`` (rows labelled by ``index``) with intervals by ``method``."""
    from scaling.forms import get_form  # lazy: the registry imports the built-in forms, which import result

    if method not in METHODS[:4]:
        raise FitError(f"prediction intervals by {', '.join(METHODS[:4])}; got {method!r}")
    mean = pd.Series(fit.require_model().predict(M), index=index)
    form = get_form(fit.form)
    if method in ("auto", "bootstrap"):
        resampled = predict_resampled(fit, M)
        if resampled is not None:
            se = pd.Series(np.nanstd(resampled, axis=0, ddof=1), index=index)
            how = (f"bootstrap percentile intervals over {len(resampled)} resamples (the predictions of each "
                   "resample's parameters)")
            return PredictionResult(mean, "bootstrap", how, fit, M, se, resampled)
        if method == "bootstrap":
            raise FitError("no bootstrap predictions: fit with n_boot=N, keeping the samples, with a form that "
                           "rebuilds predictions from parameters (Form.predictor)")
    if method in ("auto", "closed form") and fit.require_model().interval(M[:1], 0.95, "confidence") is not None:
        return PredictionResult(mean, "closed form", "closed form: t intervals of the least-squares fit on "
                                f"{fit.options.get('scale', 'y')} (dof {dof(fit)})", fit, M)
    if method == "closed form":
        raise FitError(f"form {fit.form!r} has no closed-form prediction band")
    cov = fit.covariance
    if cov is None or form.predictor(fit, as_dict(fit.params)) is None:
        raise FitError(f"no interval for form {fit.form!r}: it has no parameter covariance for the delta method; "
                       "fit with n_boot=N for bootstrap intervals")

    def at(p: pd.Series) -> Callable[[np.ndarray], np.ndarray]:
        predict = form.predictor(fit, as_dict(p))
        assert predict is not None  # checked above: the form rebuilds predictions
        return predict

    names = [str(n) for n in cov.index]
    g = _gradient(at, fit.params, names, M)
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", g, cov.to_numpy(), g), 0.0))
    held = [str(n) for n in fit.params.index if n not in cov.index]
    how = (f"delta method: the parameters' covariance ({fit.form}'s Gauss-Newton approximation) and a t({dof(fit)}) "
           "quantile; a new run adds the residual variance on the y scale"
           + (f"; held fixed: {', '.join(held)}" if held else ""))
    return PredictionResult(mean, "delta", how, fit, M, pd.Series(se, index=index))


def bootstrap_band(fit: FitResult, M: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The percentile confidence band of the mean from the fit's bootstrap resamples (None without them)."""
    resampled = predict_resampled(fit, M)
    if resampled is None:
        return None
    lo, hi = np.nanquantile(resampled, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return lo, hi

