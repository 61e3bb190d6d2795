"""Polynomial surfaces in log10 of each axis, on y (``poly1``, ``poly2``) or on logit(y) (``logit1/2``).

These are linear least-squares models, fitted by statsmodels OLS (WLS with weights), so they come with
exact standard errors and with confidence and prediction bands from ``get_prediction``. On real grids
some terms are aliased: in the humanlike-ViTs grid resolution varies only within ViT-H, so the
log N x log R interaction is an exact linear combination of the other terms. Such terms are found by
Gram-Schmidt in a fixed order (constant, linear, squares, interactions) and dropped with a note, instead
of letting a rank-deficient solve return arbitrary coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy.special import expit, logit

from scaling.errors import FitError
from scaling.fitting import FitData, FitResult, IntervalKind, check_options, make_result
from scaling.forms import FormInfo, register_form

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


def design(X: np.ndarray, axes: tuple[str, ...], degree: int) -> tuple[np.ndarray, list[str]]:
    """Columns and names of the degree-1 or degree-2 polynomial in log10 of each axis."""
    L = np.log10(X)
    cols = [np.ones(len(X))]
    names = ["const"]
    for j, a in enumerate(axes):
        cols.append(L[:, j])
        names.append(f"log10({a})")
    if degree == 2:
        for j, a in enumerate(axes):
            cols.append(L[:, j] ** 2)
            names.append(f"log10({a})^2")
        for (i, a), (j, b) in combinations(enumerate(axes), 2):
            cols.append(L[:, i] * L[:, j])
            names.append(f"log10({a})*log10({b})")
    return np.column_stack(cols), names


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


@dataclass(frozen=True)
class LinearModel:
    """A fitted statsmodels regression plus what is needed to rebuild its design for new points."""

    results: Any  # statsmodels RegressionResults
    axes: tuple[str, ...]
    degree: int
    keep: tuple[int, ...]
    link: str  # 'identity' | 'logit'

    def _exog(self, X: np.ndarray) -> np.ndarray:
        return design(X, self.axes, self.degree)[0][:, list(self.keep)]

    def _inverse(self, z: np.ndarray) -> np.ndarray:
        return expit(z) if self.link == "logit" else z

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._inverse(np.asarray(self._exog(X) @ self.results.params, dtype=float))

    def interval(self, X: np.ndarray, level: float, kind: IntervalKind) -> tuple[np.ndarray, np.ndarray]:
        frame = self.results.get_prediction(self._exog(X)).summary_frame(alpha=1.0 - level)
        prefix = "mean_ci" if kind == "confidence" else "obs_ci"
        # The inverse link is monotone, so mapping the bounds maps the interval (and keeps its level).
        lo = self._inverse(frame[f"{prefix}_lower"].to_numpy(dtype=float))
        hi = self._inverse(frame[f"{prefix}_upper"].to_numpy(dtype=float))
        return lo, hi


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
    model = LinearModel(results=results, axes=data.axes, degree=degree, keep=tuple(keep), link=link)
    scale = "logit(y)" if link == "logit" else "y"
    return make_result(
        data,
        form=form,
        model=model,
        params=dict(zip(kept, np.asarray(results.params, dtype=float), strict=True)),
        stderr=dict(zip(kept, np.asarray(results.bse, dtype=float), strict=True)),
        n_params=len(keep),
        converged=True,
        message=f"{solver} closed form on {scale}",
        objective=float(results.ssr),
        ceiling=None,  # a polynomial has no limit as the axes grow
        notes=notes,
        options={"solver": solver, "scale": scale, "degree": degree, "alias_tol": tol},
    )


def _register(name: str, degree: int, link: str, description: str, source: str) -> None:
    def fitter(data: FitData, **options: Any) -> FitResult:
        return fit_polynomial(data, form=name, degree=degree, link=link, **options)

    register_form(FormInfo(name, description, source, "linear"), fitter)


_register("poly1", 1, "identity", "y = c0 + sum_k b_k log10(x_k) (OLS/WLS)", ORHAN)
_register(
    "poly2",
    2,
    "identity",
    "y = quadratic in log10(x_k) with squares and pairwise interactions (OLS/WLS)",
    ORHAN,
)
_register("logit1", 1, "logit", "logit(y) = c0 + sum_k b_k log10(x_k); y in (0, 1)", LOGIT_SOURCE)
_register(
    "logit2",
    2,
    "logit",
    "logit(y) = quadratic in log10(x_k) with squares and pairwise interactions; y in (0, 1)",
    LOGIT_SOURCE,
)
