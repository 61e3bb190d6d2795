"""The bootstrap of a fit as the workflows ask for it: a ``Bootstrap`` spec (how many resamples, which seed,
levels and groups) and ``bootstrap_fit``, which resamples the rows a ``scaling.fit`` result was fitted to.

    import scaling
    fit = scaling.fit(runs, "powerlaw", metric="top5")
    boot = scaling.bootstrap(fit, n_boot=1000, seed=1)          # BootstrapResult
    rep = scaling.project(fit, uncertainty=scaling.Bootstrap(n_boot=1000, seed=1))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from scaling.defaults import DEFAULT_GROUP, DEFAULT_LEVELS, DEFAULT_N_BOOT
from scaling.errors import ScalingError
from scaling.forms.result import FitResult
from scaling.uncertainty.bootstrap import BootstrapResult, DerivedFn, bootstrap, check_levels

Progress = Callable[[str, int, int], None]  # progress(label, done, total)
AUTO = "auto"


@dataclass(frozen=True)
class Bootstrap:
    """Percentile intervals from ``n_boot`` resamples of whole groups of rows (``group``: 'auto' is whole
    runs where the data have ``run_id``, else single rows), refitted warm; ``workers`` > 1 forks."""

    n_boot: int = DEFAULT_N_BOOT
    seed: int = 0
    levels: tuple[float, ...] = DEFAULT_LEVELS
    group: str | tuple[str, ...] | None = AUTO
    workers: int = 1

    def __post_init__(self) -> None:
        if self.n_boot < 1:
            raise ScalingError(f"the bootstrap needs at least 1 resample; got {self.n_boot}")
        if self.seed < 0:
            raise ScalingError(f"the seed must be a non-negative integer; got {self.seed}")
        if self.workers < 1:
            raise ScalingError(f"workers must be at least 1; got {self.workers}")
        object.__setattr__(self, "levels", check_levels(self.levels))
        if isinstance(self.group, list):
            object.__setattr__(self, "group", tuple(self.group))

    @classmethod
    def of(cls, n_boot: int = DEFAULT_N_BOOT, *, seed: int = 0, levels: Sequence[float] | None = None,
           group: str | Sequence[str] | None = AUTO, workers: int = 1) -> Bootstrap:
        """A spec from the keyword options of the workflows (levels None: the defaults)."""
        return cls(n_boot, seed, check_levels(levels), group if group is None or isinstance(group, str)
                   else tuple(group), workers)


def resolve_group(frame: pd.DataFrame, group: str | Sequence[str] | None) -> tuple[str | tuple[str, ...] | None, str]:
    """The bootstrap's grouping columns and a note: ``"auto"`` is whole runs (``run_id``) when the data
    have them, else single rows; ``None`` or ``"none"`` is single rows."""
    if isinstance(group, str) and group.strip().lower() == AUTO:
        if DEFAULT_GROUP in frame.columns:
            return DEFAULT_GROUP, ""
        return None, f"no {DEFAULT_GROUP} column: every row is resampled on its own (pass a group to cluster rows)"
    if group is None or (isinstance(group, str) and group.strip().lower() == "none"):
        return None, ""
    cols = tuple(c.strip() for c in group.split(",") if c.strip()) if isinstance(group, str) else tuple(group)
    if not cols:
        raise ScalingError("the bootstrap group needs a column name (or 'none')")
    return (cols[0] if len(cols) == 1 else cols), ""


def labelled(progress: Progress | None, label: str) -> Callable[[int, int], None] | None:
    """``progress`` with its label bound (the engines report (done, total))."""
    return None if progress is None else (lambda done, total: progress(label, done, total))


def fitted_frame(fit: FitResult) -> pd.DataFrame:
    """The rows ``fit`` was fitted to (a fit by ``scaling.fit`` carries them)."""
    if fit.data is None:
        raise ScalingError("this fit carries no data (fit it with scaling.fit to bootstrap or project it)")
    return fit.data


def bootstrap_fit(fit: FitResult, spec: Bootstrap | None = None, *, derived: DerivedFn | None = None,
                  keep_samples: bool = True, progress: Progress | None = None) -> BootstrapResult:
    """Bootstrap ``fit`` (a result of ``scaling.fit``) as ``spec`` says: percentile intervals on every
    parameter, the ceiling and the ``derived`` quantities (``scaling.questions.derived``)."""
    spec = spec or Bootstrap()
    frame = fitted_frame(fit)
    grp, _ = resolve_group(frame, spec.group)
    return bootstrap(frame, fit.form, y=fit.y, axes=fit.axes, kind=fit.kind, weights=fit.weights, n_boot=spec.n_boot,
                     seed=spec.seed, group=grp, levels=spec.levels, derived=derived, full=fit,
                     keep_samples=keep_samples, progress=labelled(progress, f"bootstrap {fit.form}"),
                     workers=spec.workers, **fit.fit_options)


def resample(
    fit: FitResult,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    derived: DerivedFn | None = None,
    workers: int = 1,
    keep_samples: bool = True,
    progress: Progress | None = None,
) -> BootstrapResult:
    """``scaling.bootstrap``: bootstrap ``fit`` with ``n_boot`` resamples of whole groups of rows, refitted
    warm; percentile intervals on every parameter, the ceiling and ``derived`` quantities. Same seed, same
    intervals; ``workers`` > 1 forks."""
    spec = Bootstrap.of(n_boot, seed=seed, levels=levels, group=group, workers=workers)
    return bootstrap_fit(fit, spec, derived=derived, keep_samples=keep_samples, progress=progress)
