"""What a functional form is: the ``Form`` base class that every registered form derives from.

A form object knows its name, citation and family, the options it takes and their data-dependent
defaults, how to fit a ``FitData``, the names of its parameters, whether it has a limit as every axis
grows (a ceiling for accuracies, a floor for losses: the fitted value is ``FitResult.ceiling``), how to
refit a bootstrap resample quickly, and its closed-form compute-optimal allocation when it has one. The
bootstrap, the backtest, the projections and the allocation ask the form object, so they never branch on
a form's name or read a model's fields; a new form is added by registering one object
(``scaling.forms.register_form``).

``scaling.forms.result`` and ``scaling.allocation.mae`` are imported only for type checking or inside methods:
``scaling.forms.result`` imports the registry, which imports this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from scaling.core.direction import direction
from scaling.errors import FitError, ScalingError

if TYPE_CHECKING:
    from scaling.compute.allocations import Allocation, ProportionalLike
    from scaling.forms.result import FitData, FitResult


@dataclass(frozen=True)
class Replicate:
    """One refitted bootstrap resample: parameters, ceiling and a predictor on axis matrices (y scale).

    ``path`` says how it was refitted (e.g. 'linear', 'warm', 'screen', 'cold', 'full'); the bootstrap
    reports the counts.
    """

    params: dict[str, float]
    ceiling: float | None
    predict_matrix: Callable[[np.ndarray], np.ndarray]
    path: str


Refit = Callable[[np.ndarray], Replicate]  # row indices of a resample -> its refit (FitError if impossible)
# Row indices of many resamples -> each one's refit, or the error that made it impossible (a ScalingError, or
# the numerical error its per-resample refit raised), in order.
BatchRefit = Callable[[Sequence[np.ndarray]], list[Replicate | Exception]]


# What a refit may raise when a resample cannot be fitted: counted by the bootstrap as a failure, with its reason.
REFIT_ERRORS: tuple[type[Exception], ...] = (ScalingError, np.linalg.LinAlgError, ValueError, FloatingPointError)


def attempt(refit: Refit, idx: np.ndarray) -> Replicate | Exception:
    """``refit(idx)``, or the error that made the resample impossible (``REFIT_ERRORS``) as a value."""
    try:
        return refit(idx)
    except REFIT_ERRORS as exc:
        return exc


def batched_or_each(idx: Sequence[np.ndarray], unfit: Sequence[Exception | None],
                    solve: Callable[[list[np.ndarray]], list[Any]], replicate: Callable[[Any], Replicate],
                    one: Refit) -> list[Replicate | Exception]:
    """A batched refitter's common path: resamples that cannot be fitted keep their reason (``unfit``), the
    others are solved together by ``solve`` (None where one did not converge), and each of those is refitted
    on its own by ``one`` instead."""
    good = [b for b, e in enumerate(unfit) if e is None]
    sols = dict(zip(good, solve([idx[b] for b in good]) if good else [], strict=True))
    out: list[Replicate | Exception] = []
    for b, e in enumerate(unfit):
        sol = sols.get(b)
        out.append(e if e is not None else replicate(sol) if sol is not None else attempt(one, idx[b]))
    return out


def check_resample(
    X: np.ndarray, axes: Sequence[str], *, min_distinct: int, n_params: int, what: str = "parameters"
) -> None:
    """FitError when a resample's rows ``X`` cannot support a fit (cheaper than trying it). The message is
    the failure's reason in the bootstrap report, so it names no row or value."""
    for j, a in enumerate(axes):
        if len(np.unique(X[:, j])) < min_distinct:
            raise FitError(f"fewer than {min_distinct} distinct values of {a!r}")
    if len(X) <= n_params + 1:
        raise FitError(f"too few rows for the form's {what}")


def unfittable(X: np.ndarray, axes: Sequence[str], *, min_distinct: int, n_params: int) -> FitError | None:
    """The FitError ``check_resample`` raises for these rows, or None when they can support a fit."""
    try:
        check_resample(X, axes, min_distinct=min_distinct, n_params=n_params)
    except FitError as exc:
        return exc
    return None


def unfittable_each(X: np.ndarray, idx: Sequence[np.ndarray], axes: Sequence[str], *, min_distinct: int,
                    n_params: int) -> list[FitError | None]:
    """``unfittable(X[rows], ...)`` for every resample ``rows`` of ``idx``: the distinct values of each axis
    counted for all resamples at once, and only the resamples that fail refitted by ``unfittable`` for its
    reason (so the messages are its own)."""
    if len(idx) == 0:
        return []
    lens = np.array([len(rows) for rows in idx])
    flat, which = np.concatenate(idx), np.repeat(np.arange(len(idx)), lens)
    ok = lens > n_params + 1
    for j in range(len(axes)):
        codes = np.unique(X[:, j], return_inverse=True)[1].ravel()
        seen = np.zeros((len(idx), int(codes.max(initial=0)) + 1), dtype=bool)
        seen[which, codes[flat]] = True
        ok &= np.count_nonzero(seen, axis=1) >= min_distinct
    return [None if good else unfittable(X[rows], axes, min_distinct=min_distinct, n_params=n_params)
            for good, rows in zip(ok, idx, strict=True)]


class Form(ABC):
    """A functional form of a scaling law. Subclasses set the class (or instance) attributes below and
    implement ``fit`` and ``param_names``; every other method has a correct generic default."""

    name: str
    description: str  # one line
    source: str  # citation
    family: str  # 'linear' | 'powerlaw' | any other string (a label: nothing branches on it)
    option_names: tuple[str, ...] = ()  # the fit options it takes
    # Capabilities: what a workflow may ask of the form (never its name or family).
    has_limit: bool = False  # a ceiling (accuracy) or floor (loss) as every axis grows
    has_band: bool = False  # closed-form confidence and prediction bands (``FitResult.predict_interval``)
    chance_option: str | None = None  # the option a chance level (--chance) goes to, if any
    needs_chance: bool = False  # it cannot be fitted without one (a chance-ceiling law)
    max_axes: int | None = None  # the most axes it fits at once (None: any number)
    requires_fraction: bool = False  # it models a fraction (logit(y)): an accuracy or an error rate, never a loss
    kind: str | None = None  # the kind of y it models when only one ("loss": a law of a loss); None: any

    @abstractmethod
    def fit(self, data: FitData, **options: Any) -> FitResult:
        """Fit validated data; FitError (one line) when the data cannot support the form."""

    @abstractmethod
    def param_names(self, axes: Sequence[str]) -> list[str]:
        """The parameters a fit on ``axes`` can report, in order (a fit may drop some, e.g. aliased terms)."""

    def default_options(self, *, metric: str | None, kind: str) -> dict[str, Any]:
        """Options that follow from what is fitted (the metric's name, the kind), e.g. a chance level."""
        return {}

    def limit_name(self, kind: str) -> str | None:
        """'ceiling' or 'floor' for a form with a limit as every axis grows, None without one."""
        return direction(kind).limit_name if self.has_limit else None

    def refitter(
        self,
        full: FitResult,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray | None,
        *,
        options: Mapping[str, Any] | None = None,
    ) -> Refit:
        """A function ``refit(row_indices) -> Replicate`` for bootstrap resamples of the rows (X, y, w)
        that ``full`` was fitted to. ``options`` are those ``full`` was fitted with.

        This generic one refits with ``self.fit`` on each resample; forms override it with a warm start
        from ``full`` where they have one.
        """
        from scaling.forms.result import FitData  # lazy: forms.result imports the registry, which imports this

        opts = dict(options or {})

        def refit(idx: np.ndarray) -> Replicate:
            data = FitData(X=X[idx], y=y[idx], axes=full.axes, y_name=full.y, kind=full.kind,
                           weights=None if w is None else w[idx])
            r = self.fit(data, **opts)
            return Replicate(dict(r.params), r.ceiling, r.require_model().predict, "full")

        return refit

    def batch_refitter(
        self,
        full: FitResult,
        X: np.ndarray,
        y: np.ndarray,
        w: np.ndarray | None,
        *,
        options: Mapping[str, Any] | None = None,
    ) -> BatchRefit | None:
        """Optional: a function that refits many resamples at once (``BatchRefit``), giving what ``refitter``
        gives on each, to the solver's tolerance. None (this default): the bootstrap calls ``refitter`` on
        every resample, which stays the reference that a batched path is tested against."""
        return None

    def predictor(self, fit: FitResult, params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray] | None:
        """Predictions (y scale, on axis matrices) of ``fit``'s form and options at other values of its
        parameters: a bootstrap resample's, or a step of a numerical derivative. None where the form cannot
        rebuild them; then a fit's predictions get bootstrap or delta-method intervals only through refits."""
        return None

    @classmethod
    def from_function(cls, func: Callable[..., Any], *, p0: Mapping[str, float] | Sequence[float] | None = None,
                      bounds: Any = None, kind: str = "accuracy", name: str | None = None,
                      params: Sequence[str] | None = None, limit: str | None = None, scale: str = "y",
                      description: str | None = None, source: str | None = None) -> Form:
        """A form from a plain function, as ``scipy.optimize.curve_fit`` or lmfit take one::

            law = scaling.Form.from_function(lambda N, D, E, A, a, B, b: E + A / N**a + B / D**b,
                                             p0={"E": 2, "A": 400, "a": 0.3, "B": 400, "b": 0.3},
                                             bounds={"E": (0, 10), "a": (0, 2), "b": (0, 2)}, kind="loss")
            scaling.fit(df, y="loss", axes=["params", "tokens"], kind="loss", form=law)

        The function's first arguments are the axes (the fit's ``axes``, in order), the others its parameters:
        ``params`` names them, else the keys of ``p0`` (a dict), else the last ``len(p0)`` arguments. See
        ``scaling.forms.function.FunctionForm`` for ``bounds``, ``limit`` and ``scale``."""
        from scaling.forms.function import FunctionForm  # lazy: forms.function subclasses this class

        return FunctionForm(func, p0=p0, bounds=bounds, kind=kind, name=name, params=params, limit=limit,
                            scale=scale, description=description, source=source)

    def closed_form_allocation(
        self,
        fit: Any,
        target: float,
        cost: ProportionalLike,
        bounds: Mapping[str, tuple[float, float]],
    ) -> Allocation | None:
        """The compute-optimal allocation reaching ``target`` in closed form under the proportional cost
        (``scaling.allocation.mae``), or None where the form has no closed form. ``fit`` is a FitResult or a
        stand-in with ``form``, ``kind``, ``params``, ``options``, ``axes`` and ``predict``."""
        return None

    def to_dict(self) -> dict[str, str]:
        """What ``scaling forms --json`` prints for this form."""
        return {"name": self.name, "description": self.description, "source": self.source, "family": self.family}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.family})>"
