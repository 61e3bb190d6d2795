"""Run-clustered case bootstrap of a fit, with percentile intervals on parameters and derived quantities.

Resampling unit: a *group* of rows (by default one run, ``run_id``), drawn with replacement as a whole,
because evaluations of one run (epochs, metrics, eval sets) are correlated; ``group`` can name other
columns, e.g. ``("data_fraction", "subset_seed")`` to resample pretraining subsets, which every model
size of the published grid shares. Each resample is refitted with the same form and options, by the form's own refitter
(``Form.refitter``):

- linear forms (poly/logit): weighted least squares on the full fit's retained design columns (the
  statsmodels fit is closed form too; this skips its bookkeeping);
- power laws: ``scaling.forms.varpro.solve_warm`` from the full-data solution (L-BFGS-B warm start plus a
  screen for other basins, cold VarPro fit when the warm start fails);
- any other registered form: by default its ``fit`` on the resampled rows.

A form may also refit many resamples at once (``Form.batch_refitter``: the power laws and M2 by
``scaling.forms.varpro_batch``, M4 by ``scaling.forms.m4_batch``): the same decisions on every resample, solved
together by ``scaling.forms.batch``. The bootstrap uses it by default (``batched=False``: the per-resample
path, the reference it is tested against resample by resample); a resample the batch cannot settle is
refitted by the per-resample path.

A resample that cannot be fitted (too few distinct axis values, aliased design, no convergence) is
counted by reason and reported, never silently dropped; intervals use the resamples that were fitted.
Intervals are percentile intervals (Efron); a derived quantity that does not exist in a resample (the
target is unreachable, so the scale needed is unbounded) is +inf for "how much is needed" quantities,
which makes an upper bound infinite when more than the tail share of resamples cannot reach the target.
The same seed gives the same resamples and so the same intervals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.core.direction import direction
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.defaults import DEFAULT_GROUP, DEFAULT_LEVELS, DEFAULT_N_BOOT
from scaling.errors import FitError, ScalingError
from scaling.forms.result import FitResult, fit
from scaling.uncertainty.refits import (  # re-exported: the bootstrap's callbacks and refitters live there
    BATCH,
    CHUNK,
    Derived,
    DerivedFn,
    Outcome,
    ReplicateFit,
    as_fitlike,
    combine,
    make_batch_refitter,
    make_refitter,
    run_resamples,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.bootstrap/v1"
__all__ = ["BATCH", "CHUNK", "SCHEMA", "BootstrapResult", "Derived", "DerivedFn", "Outcome", "ReplicateFit", "Summary",
           "as_fitlike", "bootstrap", "check_levels", "combine", "group_codes", "make_batch_refitter", "make_refitter",
           "quantile", "resample_indices", "summarise"]


@dataclass(frozen=True)
class Summary:
    """Bootstrap summary of one quantity."""

    name: str
    estimate: float | None  # on the full data
    median: float
    intervals: dict[float, tuple[float, float]]  # level -> (lower, upper)
    n: int  # resamples with a value (finite or infinite)
    n_infinite: int  # resamples where the quantity is unbounded (e.g. the target is unreachable)

    def to_dict(self) -> JSONDict:
        return {
            "estimate": self.estimate,
            "median": self.median,
            "intervals": {f"{lvl:g}": {"lower": lo, "upper": hi} for lvl, (lo, hi) in self.intervals.items()},
            "n": self.n,
            "n_infinite": self.n_infinite,
        }


@dataclass(frozen=True)
class BootstrapResult(Result):
    form: str
    n_requested: int
    n_ok: int
    failures: dict[str, int]  # reason -> count
    paths: dict[str, int]  # how resamples were refitted: linear / warm / screen / cold / full
    seed: int
    group: tuple[str, ...]
    n_groups: int
    levels: tuple[float, ...]
    params: dict[str, Summary]
    derived: dict[str, Summary]
    probabilities: dict[str, float]  # event -> share of fitted resamples where it holds
    probability_estimates: dict[str, bool]  # event -> on the full data
    notes: tuple[str, ...]
    seconds: float
    samples: dict[str, np.ndarray] = field(repr=False, compare=False, default_factory=dict)

    @property
    def n_failed(self) -> int:
        return self.n_requested - self.n_ok

    def interval(self, name: str, level: float) -> tuple[float, float]:
        """(lower, upper) of a parameter or derived quantity."""
        s = self.params.get(name) or self.derived.get(name)
        if s is None:
            raise KeyError(name)
        return s.intervals[level]

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity (parameters, the ceiling, derived quantities): the estimate on the full data,
        the median, the interval bounds at each level, resamples with a value and resamples where unbounded."""
        rows = []
        for kind, items in (("parameter", self.params), ("derived", self.derived)):
            for name, s in items.items():
                row: dict[str, Any] = {"quantity": name, "kind": kind,
                                       "estimate": math.nan if s.estimate is None else s.estimate, "median": s.median}
                for lvl, (lo, hi) in s.intervals.items():
                    row[f"lower_{100 * lvl:g}"], row[f"upper_{100 * lvl:g}"] = lo, hi
                row["n"], row["n_unbounded"] = s.n, s.n_infinite
                rows.append(row)
        return pd.DataFrame(rows).set_index("quantity")

    def summary(self) -> Text:
        """The intervals as text, with the shares of resamples in which each event holds and the notes."""
        group = ", ".join(self.group) if self.group else "single rows"
        parts = [f"Bootstrap of form {self.form!r}: {self.n_ok} of {self.n_requested} resamples fitted "
                 f"(seed {self.seed}; {self.n_groups} groups by {group}; percentile intervals)",
                 self.to_frame().to_string(float_format=lambda v: f"{v:.4g}")]
        if self.probabilities:
            parts.append("\n".join(f"share of resamples where {k}: {v:.3f}" for k, v in self.probabilities.items()))
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        return Text("\n\n".join(parts))

    def __repr__(self) -> str:
        names = [*self.params, *self.derived]
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        return (f"BootstrapResult(form={self.form!r}, fitted={self.n_ok}/{self.n_requested}, seed={self.seed}, "
                f"levels={list(self.levels)}, quantities=[{shown}])")

    def plot(self, ax: Axes | None = None, quantity: str | None = None) -> Axes:
        """Histogram of one quantity over the resamples (default: the first FLOPs quantity, else the first
        parameter) with its estimate and widest interval; FLOPs on a log axis. Returns the Axes."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        name = quantity or next((k for k in self.derived if k.endswith("flops")), next(iter(self.params)))
        if name not in self.samples:
            raise ScalingError(f"no samples of {name!r} kept (bootstrap with keep_samples=True); "
                               f"quantities: {', '.join(self.samples)}")
        ax = ax if ax is not None else new_axes()
        level = max(self.levels)
        if name.endswith("flops"):
            return plots.plot_compute_distribution(
                plots.compute_distribution_from_bootstrap(self, key=name, level=level), ax)
        values = self.samples[name][np.isfinite(self.samples[name])]
        ax.hist(values, bins=40, color="0.7")
        s = self.params.get(name) or self.derived[name]
        if s.estimate is not None:
            ax.axvline(s.estimate, color="k", lw=1.2, label="estimate (full data)")
        lo, hi = s.intervals[level]
        ax.axvspan(lo, hi, color="C0", alpha=0.15, label=f"{100 * level:g}% percentile interval")
        ax.set_xlabel(name)
        ax.set_ylabel("resamples")
        ax.legend(frameon=False)
        return ax

    def to_dict(self, *, include_samples: bool = False) -> JSONDict:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "method": "percentile intervals, case bootstrap resampling whole groups of rows",
            "form": self.form,
            "n_resamples": self.n_requested,
            "n_ok": self.n_ok,
            "n_failed": self.n_failed,
            "failures": dict(self.failures),
            "refit_paths": dict(self.paths),
            "seed": self.seed,
            "group": list(self.group),
            "n_groups": self.n_groups,
            "levels": list(self.levels),
            "params": {k: v.to_dict() for k, v in self.params.items()},
            "derived": {k: v.to_dict() for k, v in self.derived.items()},
            "probabilities": {
                k: {"share": v, "estimate": self.probability_estimates.get(k)} for k, v in self.probabilities.items()
            },
            "notes": list(self.notes),
            "seconds": self.seconds,
        }
        if include_samples:
            out["samples"] = {k: v.tolist() for k, v in self.samples.items()}
        return jsonable(out)


# -- percentile intervals ---------------------------------------------------------------------------


def quantile(values: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile (numpy's default) that keeps +-inf where a neighbour is infinite."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0:
        return math.nan
    h = (v.size - 1) * q
    lo, hi = math.floor(h), math.ceil(h)
    a, b = v[lo], v[hi]
    if lo == hi or a == b:
        return float(a)
    if not (math.isfinite(a) and math.isfinite(b)):
        return float(b if math.isinf(b) and h > lo else a)
    return float(a + (b - a) * (h - lo))


def summarise(name: str, values: np.ndarray, levels: Sequence[float], estimate: float | None) -> Summary:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    intervals = {lvl: (quantile(v, (1 - lvl) / 2), quantile(v, (1 + lvl) / 2)) for lvl in levels}
    est = None if estimate is None or math.isnan(estimate) else float(estimate)
    return Summary(name, est, quantile(v, 0.5), intervals, int(v.size), int(np.sum(np.isinf(v))))


def check_levels(levels: Sequence[float] | None) -> tuple[float, ...]:
    """Interval levels, each in (0, 1), sorted and without repeats (default ``DEFAULT_LEVELS``)."""
    out = tuple(sorted({float(x) for x in (DEFAULT_LEVELS if levels is None else levels)}))
    if not out or any(not 0.0 < x < 1.0 for x in out):
        raise ScalingError(f"interval levels must be in (0, 1); got {list(levels or [])}")
    return out


# -- resampling -------------------------------------------------------------------------------------


def group_codes(data: pd.DataFrame, group: str | Sequence[str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer cluster code per row; ``None`` makes every row its own cluster."""
    if group is None:
        return np.arange(len(data)), ()
    cols = (group,) if isinstance(group, str) else tuple(group)
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise ScalingError(
            f"bootstrap group column {missing[0]!r} not in data; columns: {', '.join(map(str, data.columns))}"
        )
    if data[list(cols)].isna().any().any():
        raise ScalingError(f"bootstrap group column(s) {', '.join(cols)} have missing values")
    codes = pd.MultiIndex.from_frame(data[list(cols)]).factorize()[0] if len(cols) > 1 else \
        pd.factorize(data[cols[0]])[0]
    return np.asarray(codes), cols


RESAMPLE_BLOCK = 64  # resamples gathered at once: their temporaries are a few times the indices they keep


def resample_indices(codes: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """``n`` row-index arrays, each the rows of as many groups as there are, drawn with replacement (one draw
    of the generator a resample), gathered ``RESAMPLE_BLOCK`` resamples at a time: the chosen groups' rows
    one after the other, rows[end of the group's rows - end of its run + position in the run]."""
    rng = np.random.default_rng(seed)
    n_groups = int(codes.max()) + 1
    rows = np.argsort(codes, kind="stable")  # each group's rows in order, group after group
    size = np.bincount(codes, minlength=n_groups)
    last = np.cumsum(size)
    out: list[np.ndarray] = []
    for start in range(0, n, RESAMPLE_BLOCK):
        chosen = np.stack([rng.integers(0, n_groups, n_groups) for _ in range(min(RESAMPLE_BLOCK, n - start))])
        lens = size[chosen.ravel()]
        ends = np.cumsum(lens)
        flat = rows[np.repeat(last[chosen.ravel()] - ends, lens) + np.arange(ends[-1])]
        out += np.split(flat, ends[n_groups - 1 :: n_groups][:-1])
    return out


# -- the bootstrap ----------------------------------------------------------------------------------


@dataclass
class _Samples:
    """What the resamples gave, gathered in resample order."""

    params: dict[str, list[float]]
    values: dict[str, list[float]]
    events: dict[str, int]
    failures: dict[str, int] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)
    n_ok: int = 0

    @classmethod
    def gather(cls, full: FitResult, est: Derived, outcomes: list[Outcome]) -> _Samples:
        out = cls({k: [] for k in [*full.params.index, "ceiling"]}, {k: [] for k in est.values},
                  dict.fromkeys(est.events, 0))
        for o in outcomes:  # in resample order, whatever the number of workers
            if o[0] == "fail":
                out.failures[o[1]] = out.failures.get(o[1], 0) + 1
                continue
            _, rparams, ceiling, path, values, events = o
            out.n_ok += 1
            out.paths[path] = out.paths.get(path, 0) + 1
            for k in full.params.index:
                out.params[k].append(rparams.get(k, math.nan))
            out.params["ceiling"].append(math.inf if ceiling is None else ceiling)
            for k in out.values:
                out.values[k].append(values.get(k, math.nan))
            for k in out.events:
                out.events[k] += bool(events.get(k, False))
        return out


def _notes(got: _Samples, n_boot: int, full: FitResult) -> list[str]:
    """What a reader of the intervals must know: failures, few resamples, unbounded or missing values."""
    notes = []
    if got.failures:
        notes.append(
            f"{n_boot - got.n_ok} of {n_boot} resamples could not be fitted and are excluded from the intervals "
            f"({'; '.join(f'{v}x {k}' for k, v in got.failures.items())}); if failures depend on the data, "
            "the intervals are biased"
        )
    if got.n_ok < 200:
        notes.append(f"only {got.n_ok} fitted resamples: the outer percentiles are noisy (use >= 1000)")
    if full.ceiling is None:
        notes.append("the form has no ceiling: 'ceiling' is unbounded (+inf) in every resample")
    arrays = {k: np.asarray(v, dtype=float) for k, v in got.values.items()}
    undefined = {k: c for k, v in arrays.items() if (c := int(np.sum(np.isnan(v))))}
    if undefined:
        notes.append("no value (e.g. no FLOPs estimate: the compute model has no shape there), left out of the "
                     "intervals: " + ", ".join(f"{k} in {c} resamples" for k, c in undefined.items()))
    unbounded = {k: c for k, v in arrays.items() if (c := int(np.sum(np.isinf(v))))}
    if unbounded:
        notes.append("unbounded (+inf; null in JSON) where the target is not reached: "
                     + ", ".join(f"{k} in {c} resamples" for k, c in unbounded.items()))
    return notes


def _impossible_notes(derived: Mapping[str, Summary], kind: str) -> list[str]:
    """Predictions past 100% (or below 0) inside an interval: say so."""
    d = direction(kind)
    notes = []
    for k, summary in derived.items():
        if not k.endswith("predicted"):
            continue
        flags = [f for lo_hi in summary.intervals.values() for v in lo_hi if (f := d.impossible(v))]
        if flags:
            notes.append(f"{k}: the interval reaches values that cannot exist ({flags[0]})")
    return notes


def bootstrap(
    data: pd.DataFrame,
    form: str,
    *,
    y: str,
    axes: Sequence[str],
    kind: str = "accuracy",
    weights: str | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    group: str | Sequence[str] | None = DEFAULT_GROUP,
    levels: Sequence[float] = DEFAULT_LEVELS,
    derived: DerivedFn | None = None,
    full: FitResult | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_samples: bool = True,
    workers: int = 1,
    batched: bool = True,
    **options: Any,
) -> BootstrapResult:
    """Bootstrap ``form`` fitted to ``data``: ``n_boot`` resamples of whole groups, refitted, summarised.

    ``derived(fit_like) -> Derived`` computes quantities from each refitted resample (and once from the
    full fit for the estimate column); see ``scaling.questions.derived``. ``full`` reuses a fit of the same
    data, form and options. ``progress(done, total)`` is called after every resample (every chunk with
    ``workers`` > 1, which forks worker processes where the platform can; results do not depend on it).
    ``batched`` (default) refits many resamples at once where the form has a batched refitter
    (``Form.batch_refitter``); False refits each with ``Form.refitter``, the reference it is tested against.
    """
    if n_boot < 1:
        raise ScalingError(f"the bootstrap needs at least 1 resample; got {n_boot}")
    lv = check_levels(levels)
    t0 = time.perf_counter()
    data = data.reset_index(drop=True)
    if full is None:
        full = fit(data, form, y=y, axes=axes, kind=kind, weights=weights, **options)  # type: ignore[arg-type]
    codes, cols = group_codes(data, group)
    n_groups = int(codes.max()) + 1
    if n_groups < 5:
        raise ScalingError(f"the bootstrap needs at least 5 groups to resample; got {n_groups} ({', '.join(cols)})")
    refit = make_refitter(full, data, weights, options)
    batch = make_batch_refitter(full, data, weights, options) if batched else None
    est = derived(full) if derived is not None else Derived()
    outcomes = run_resamples(refit, batch, derived, full, resample_indices(codes, n_boot, seed), workers, progress)
    got = _Samples.gather(full, est, outcomes)
    if got.n_ok == 0:
        reasons = "; ".join(f"{k} ({v})" for k, v in got.failures.items())
        raise FitError(f"no bootstrap resample of form {form!r} could be fitted: {reasons}")
    notes = ([] if cols else ["every row resampled on its own (no group column)"]) + _notes(got, n_boot, full)
    samples = {k: np.asarray(v, dtype=float) for k, v in {**got.params, **got.values}.items()}
    params = {k: summarise(k, samples[k], lv, full.params.get(k)) for k in full.params.index}
    params["ceiling"] = summarise("ceiling", samples["ceiling"], lv,
                                  math.inf if full.ceiling is None else full.ceiling)
    dsum = {k: summarise(k, samples[k], lv, est.values.get(k)) for k in got.values}
    return BootstrapResult(
        form=full.form, n_requested=n_boot, n_ok=got.n_ok, failures=got.failures, paths=got.paths, seed=seed,
        group=cols, n_groups=n_groups, levels=lv, params=params, derived=dsum,
        probabilities={k: c / got.n_ok for k, c in got.events.items()}, probability_estimates=dict(est.events),
        notes=tuple(notes + _impossible_notes(dsum, full.kind)), seconds=time.perf_counter() - t0,
        samples=samples if keep_samples else {},
    )
