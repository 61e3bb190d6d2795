"""Polynomial surfaces in log10 of each axis, on y (``poly1``, ``poly2``) or on logit(y) (``logit1/2``).

These are linear least-squares models, fitted by statsmodels OLS (WLS with weights), so they come with
exact standard errors and with confidence and prediction bands from ``get_prediction``. On real grids
some terms are aliased: in the humanlike-ViTs grid resolution varies only within ViT-H, so the
log N x log R interaction is an exact linear combination of the other terms. Such terms are found by
Gram-Schmidt in a fixed order (constant, linear, squares, interactions) and dropped with a note, instead
of letting a rank-deficient solve return arbitrary coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit, logit

from scaling.compute.allocations import answer, log_box, unreachable
from scaling.core.direction import direction
from scaling.core.saved import TRANSIENT
from scaling.defaults import COMPUTE_AXES
from scaling.errors import FitError, ProjectionError
from scaling.forms.base import Form, Refit, Replicate, check_resample
from scaling.forms.result import FitData, FitResult, IntervalKind, check_options, make_result

if TYPE_CHECKING:
    from scaling.compute.allocations import Allocation, ProportionalLike

ORHAN = (
    "Orhan 2023, 'Scaling may be all you need for achieving human-level object recognition capacity "
    "with human-like visual experience', arXiv 2308.03712 (polynomial in log data/size/resolution; "
    "exact form not public, reconstructed)"
)
LOGIT_SOURCE = (
    ORHAN + "; logit link as in Ruan, Maddison, Hashimoto 2024, 'Observational scaling laws', "
    "arXiv 2405.10938"
)
DEFAULT_ALIAS_TOL = 1e-7  # relative residual norm below which a term counts as aliased
COND_NOTE = 1e8  # condition number above which the retained design is reported as near-collinear


def term_names(axes: Sequence[str], degree: int) -> list[str]:
    """Names of the columns of ``design``, in its order (constant, linear, squares, interactions)."""
    names = ["const", *(f"log10({a})" for a in axes)]
    if degree == 2:
        names += [f"log10({a})^2" for a in axes]
        names += [f"log10({a})*log10({b})" for a, b in combinations(axes, 2)]
    return names


def design(X: np.ndarray, axes: tuple[str, ...], degree: int) -> tuple[np.ndarray, list[str]]:
    """Columns and names of the degree-1 or degree-2 polynomial in log10 of each axis."""
    L = np.log10(X)
    cols = [np.ones(len(X))]
    for j in range(len(axes)):
        cols.append(L[:, j])
    if degree == 2:
        for j in range(len(axes)):
            cols.append(L[:, j] ** 2)
        for i, j in combinations(range(len(axes)), 2):
            cols.append(L[:, i] * L[:, j])
    return np.column_stack(cols), term_names(axes, degree)


def independent_columns(D: np.ndarray, tol: float) -> list[int]:
    """Indices of columns kept by greedy Gram-Schmidt; a column whose component orthogonal to the kept
    ones is below ``tol`` of its own norm is aliased. Earlier columns win, so simpler terms are kept."""
    basis: list[np.ndarray] = []
    keep: list[int] = []
    for j in range(D.shape[1]):
        c = D[:, j]
        norm = np.linalg.norm(c)
        if norm == 0:
            continue
        r = c.copy()
        for _ in range(2):  # re-orthogonalise once: classical Gram-Schmidt loses orthogonality
            for q in basis:
                r -= (q @ r) * q
        rn = np.linalg.norm(r)
        if rn > tol * norm:
            basis.append(r / rn)
            keep.append(j)
    return keep


@dataclass(frozen=True, eq=False)
class LinearModel:
    """A fitted least-squares surface: its coefficients and their covariance, the residual variance and
    degrees of freedom (what confidence and prediction bands need), and how to rebuild its design for new
    points. ``results`` is statsmodels' results object of a fresh fit (not saved with the fit)."""

    beta: np.ndarray
    cov: np.ndarray
    scale: float  # residual variance (of unit weight)
    df_resid: float
    axes: tuple[str, ...]
    degree: int
    keep: tuple[int, ...]
    link: str  # 'identity' | 'logit'
    results: Any = field(default=None, repr=False, metadata=TRANSIENT)  # statsmodels RegressionResults

    def _exog(self, X: np.ndarray) -> np.ndarray:
        return design(X, self.axes, self.degree)[0][:, list(self.keep)]

    def _inverse(self, z: np.ndarray) -> np.ndarray:
        return expit(z) if self.link == "logit" else z

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._inverse(np.asarray(self._exog(X) @ self.beta, dtype=float))

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> tuple[np.ndarray, np.ndarray]:
        """t intervals of the mean (confidence) or of a new point (prediction), as statsmodels'
        ``get_prediction(exog).summary_frame`` computes them (unit weight for a new point)."""
        from scipy.stats import t as student_t  # lazy: keeps import scaling cheap (scipy.stats takes ~0.3 s)

        exog = self._exog(X)
        mean = exog @ self.beta
        var = (exog * (self.cov @ exog.T).T).sum(1) + (self.scale if kind == "prediction" else 0.0)
        q = float(student_t.ppf(1 - (1 - level) / 2, self.df_resid))
        half = q * np.sqrt(var)
        # The inverse link is monotone, so mapping the bounds maps the interval (and keeps its level).
        return self._inverse(mean - half), self._inverse(mean + half)


def fit_polynomial(data: FitData, *, form: str, degree: int, link: str, **options: Any) -> FitResult:
    check_options(form, options, ["alias_tol"])
    tol = float(options.get("alias_tol", DEFAULT_ALIAS_TOL))
    data.require_distinct(form, degree + 1)
    if link == "logit":
        bad = int(np.sum((data.y <= 0) | (data.y >= 1)))
        if bad:
            raise FitError(
                f"form {form!r} needs y in (0, 1); column {data.y_name!r} has {bad} values outside"
            )
        z = logit(data.y)
    else:
        z = data.y
    D, names = design(data.X, data.axes, degree)
    keep = independent_columns(D, tol)
    notes = [
        f"dropped aliased term {names[j]!r} (a linear combination of the retained terms)"
        for j in range(len(names))
        if j not in keep
    ]
    data.require_points(form, len(keep))
    exog = D[:, keep]
    # Condition number of the column-scaled design: large means coefficients are poorly determined.
    scaled = exog / np.linalg.norm(exog, axis=0)
    cond = float(np.linalg.cond(scaled))
    if cond > COND_NOTE:
        notes.append(f"design is near-collinear (condition number {cond:.3g}); coefficients are unstable")
    if data.weights is None:
        results = sm.OLS(z, exog).fit()
        solver = "OLS"
    else:
        results = sm.WLS(z, exog, weights=data.weights).fit()
        solver = "WLS"
        notes.append("prediction bands use the unit-weight residual variance (statsmodels #8781)")
    kept = [names[j] for j in keep]
    model = LinearModel(beta=np.asarray(results.params, dtype=float), cov=np.asarray(results.cov_params(), dtype=float),
                        scale=float(results.scale), df_resid=float(results.df_resid), axes=data.axes, degree=degree,
                        keep=tuple(keep), link=link, results=results)
    scale = "logit(y)" if link == "logit" else "y"
    return make_result(
        data,
        form=form,
        model=model,
        params=dict(zip(kept, np.asarray(results.params, dtype=float), strict=True)),
        stderr=dict(zip(kept, np.asarray(results.bse, dtype=float), strict=True)),
        cov=pd.DataFrame(model.cov, index=kept, columns=kept),
        n_params=len(keep),
        converged=True,
        message=f"{solver} closed form on {scale}",
        objective=float(results.ssr),
        ceiling=None,  # a polynomial has no limit as the axes grow
        notes=notes,
        options={"solver": solver, "scale": scale, "degree": degree, "alias_tol": tol},
    )


class PolynomialForm(Form):
    """A polynomial of ``degree`` in log10 of each axis, on y (link 'identity') or on logit(y)."""

    family = "linear"
    option_names = ("alias_tol",)
    has_limit = False  # a polynomial has no limit as the axes grow
    has_band = True  # OLS/WLS: closed-form confidence and prediction bands

    def __init__(self, name: str, degree: int, link: str, description: str, source: str) -> None:
        self.name, self.degree, self.link = name, degree, link
        self.description, self.source = description, source
        self.requires_fraction = link == "logit"  # logit(y) needs a fraction: an accuracy or an error rate

    def fit(self, data: FitData, **options: Any) -> FitResult:
        return fit_polynomial(data, form=self.name, degree=self.degree, link=self.link, **options)

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return term_names(axes, self.degree)

    def refitter(self, full: FitResult, X: np.ndarray, y: np.ndarray, w: np.ndarray | None, *,
                 options: Mapping[str, Any] | None = None) -> Refit:
        """Weighted least squares on the full fit's retained design columns (statsmodels' fit is closed
        form too; this skips its bookkeeping). ``options`` are those of ``full``, which it carries."""
        model = full.require_model()
        if not isinstance(model, LinearModel):
            raise FitError(f"fit of form {full.form!r} carries no polynomial model to refit")
        keep = list(model.keep)
        degree, axes, link = self.degree, full.axes, self.link
        D = design(X, axes, degree)[0][:, keep]
        z = logit(y) if link == "logit" else y
        names = list(full.params.index)
        sw = np.ones(len(y)) if w is None else np.sqrt(w)
        inverse = expit if link == "logit" else (lambda v: v)

        def predict_with(beta: np.ndarray) -> Any:
            return lambda M: inverse(design(M, axes, degree)[0][:, keep] @ beta)

        def refit(idx: np.ndarray) -> Replicate:
            check_resample(X[idx], axes, min_distinct=degree + 1, n_params=len(keep), what="terms")
            A = D[idx] * sw[idx, None]
            beta, _, rank, _ = np.linalg.lstsq(A, z[idx] * sw[idx], rcond=None)
            if rank < len(keep):
                raise FitError("design is rank-deficient in this resample (terms aliased)")
            return Replicate(dict(zip(names, beta.tolist(), strict=True)), None, predict_with(beta), "linear")

        return refit

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        """The surface with other coefficients (those of ``fit``'s retained terms)."""
        model = fit.require_model()
        if not isinstance(model, LinearModel):
            return None
        beta = np.asarray([params[n] for n in fit.params.index], dtype=float)
        return lambda M: model._inverse(np.asarray(model._exog(M) @ beta, dtype=float))

    def closed_form_allocation(self, fit: Any, target: float, cost: ProportionalLike,
                               bounds: Mapping[str, tuple[float, float]]) -> Allocation | None:
        """Degree 1 only: a linear program in log x (see ``closed_linear``)."""
        if self.degree != 1 or getattr(fit, "params", None) is None:
            return None
        return closed_linear(fit, target, cost, bounds, link=self.link)


def closed_linear(fit: Any, target: float, cost: ProportionalLike, bounds: Mapping[str, tuple[float, float]], *,
                  link: str) -> Allocation:
    """y (or logit y) = const + sum_i b_i log10 x_i under ln C = const + sum_i c_i ln x_i: a linear program
    in ln x, whose optimum raises axes in order of benefit per unit of log cost (b_i / c_i) until the
    target is met (fractional knapsack)."""

    method = "closed form"
    c = np.array([cost.exponents()[a] for a in COMPUTE_AXES])
    lo, hi = log_box(bounds)
    p = dict(fit.params)
    if not direction(fit.kind).higher_is_better:
        raise ProjectionError(f"form {fit.form!r}: the closed-form allocation is for kind='accuracy'")
    if link == "logit":
        if not 0 < target < 1:
            return unreachable(cost, method, "a logit surface needs a target in (0, 1)")
        t = float(logit(target))
    else:
        t = target
    # y (or logit y) = const + sum_i b_i log10 x_i = const + sum_i (b_i / ln 10) ln x_i
    b = np.array([p.get(f"log10({a})", 0.0) for a in COMPUTE_AXES]) / math.log(10)
    need = t - p.get("const", 0.0) - float(b @ lo)
    x = lo.copy()
    if need <= 0:
        return answer(fit, target, x, cost, bounds, method, {"note": "target met at the lower bounds"})
    order = [int(i) for i in np.argsort(-(b / c), kind="stable") if b[i] > 0]
    for i in order:
        gain = b[i] * (hi[i] - lo[i])
        if gain >= need:
            x[i] = lo[i] + need / b[i]
            return answer(fit, target, x, cost, bounds, method,
                          {"note": "linear program: axes raised by benefit per unit log cost",
                           "order": [COMPUTE_AXES[j] for j in order]})
        x[i] = hi[i]
        need -= gain
    return unreachable(cost, method, "not reachable within the bounds (every useful axis at its upper bound)")


FORMS: list[Form] = [
    PolynomialForm("poly1", 1, "identity", "y = c0 + sum_k b_k log10(x_k) (OLS/WLS)", ORHAN),
    PolynomialForm(
        "poly2",
        2,
        "identity",
        "y = quadratic in log10(x_k) with squares and pairwise interactions (OLS/WLS)",
        ORHAN,
    ),
    PolynomialForm("logit1", 1, "logit", "logit(y) = c0 + sum_k b_k log10(x_k); y in (0, 1)", LOGIT_SOURCE),
    PolynomialForm(
        "logit2",
        2,
        "logit",
        "logit(y) = quadratic in log10(x_k) with squares and pairwise interactions; y in (0, 1)",
        LOGIT_SOURCE,
    ),
]
