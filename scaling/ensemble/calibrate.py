"""``scaling.calibrate``: how often nominal intervals cover held-out runs, per form and for the ensembles.

On every split that all compared forms fit (the backtest's common splits) each form is fitted to the
training rows and bootstrapped (``n_boot`` resamples of whole runs) with its predictions at the held-out rows
as the derived quantities. For each held-out row and level:

- bootstrap only: the percentile interval of the form's resampled predictions (an ensemble: of the weighted
  mixture of its forms');
- calibrated: the union of that interval with prediction +- h(level, d) (``scaling.selection.conformal``),
  where the conformal scale comes from the *other* splits' held-out errors only (leave one split out), and
  an ensemble's weights are learnt on the other splits too, so no row helps calibrate its own interval.

Coverage is the share of held-out rows inside the interval. Held-out rows of different splits can be the same
runs (the rolling origins and the largest-data split both predict the largest runs), each from its own fit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.data.dataset import Dataset
from scaling.data.tables import check_chance, select
from scaling.ensemble.calibration import point_interval
from scaling.ensemble.mixture import mixture_interval
from scaling.ensemble.predict import row_samples
from scaling.ensemble.spec import METHODS
from scaling.ensemble.workflow import backtest_forms, conformal_of, ensemble_weights
from scaling.errors import ScalingError
from scaling.fitting import fit_dataset
from scaling.forms.options import form_names
from scaling.selection.backtest import BacktestResult
from scaling.selection.splits import Split, distances_beyond, make_splits
from scaling.uncertainty.resampling import AUTO, Bootstrap

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.calibrate/v1"
CALIBRATION_LEVELS: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95)
DEFAULT_CALIBRATION_BOOT = 200
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Coverage:
    """One predictor's coverage of held-out rows at one level, by one kind of interval."""

    predictor: str  # a form, or 'ensemble (stacking)'
    interval: str  # 'bootstrap' or 'calibrated'
    level: float
    covered: int
    n: int
    median_width: float  # of the intervals, in the response's units

    @property
    def coverage(self) -> float:
        return self.covered / self.n if self.n else math.nan


@dataclass(frozen=True)
class CalibrationResult(Result):
    y: str
    kind: str
    splits: tuple[str, ...]  # the held-out splits scored (the backtest's common splits)
    n_rows: int  # held-out rows scored, over all splits
    n_boot: int
    levels: tuple[float, ...]
    coverage: tuple[Coverage, ...]
    notes: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per (predictor, interval kind, level): rows covered, rows, coverage, median width."""
        return pd.DataFrame([{"predictor": c.predictor, "interval": c.interval, "nominal": c.level,
                              "covered": c.covered, "n": c.n, "coverage": c.coverage,
                              "median_width": c.median_width} for c in self.coverage])

    def table(self) -> pd.DataFrame:
        """Coverage (%) per predictor and interval kind (rows) at each nominal level (columns)."""
        f = self.to_frame()
        f["coverage"] = 100 * f["coverage"]
        wide = f.pivot_table(index=["predictor", "interval"], columns="nominal", values="coverage", sort=False)
        wide.columns = [f"{100 * c:g}%" for c in wide.columns]
        return wide

    def summary(self) -> Text:
        lines = [f"Coverage of nominal intervals on {self.n_rows} held-out rows of {len(self.splits)} splits "
                 f"({'; '.join(self.splits)}); {self.n_boot} resamples per fit; calibrated: split-conformal "
                 "from the other splits only",
                 self.table().to_string(float_format=lambda v: f"{v:.1f}")]
        lines += [f"note: {n}" for n in self.notes]
        return Text("\n".join(lines))

    def to_dict(self) -> JSONDict:
        return jsonable({"schema": SCHEMA, "data": dict(self.source), "y": self.y, "kind": self.kind,
                         "splits": list(self.splits), "n_rows": self.n_rows, "n_boot": self.n_boot,
                         "levels": list(self.levels),
                         "coverage": [{**dataclasses.asdict(c), "coverage": c.coverage} for c in self.coverage],
                         "notes": list(self.notes)})

    def reliability_data(self) -> pd.DataFrame:
        """What the reliability figure draws: nominal against observed coverage per predictor and kind."""
        return self.to_frame()[["predictor", "interval", "nominal", "coverage", "n"]]

    def plot(self, ax: Axes | None = None) -> Axes:
        """The reliability figure: observed against nominal coverage (the diagonal is calibrated)."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        ax = ax if ax is not None else new_axes(figsize=(5.6, 5.4))
        return plots.plot_reliability(self.reliability_data(), ax, title=f"Coverage of held-out {self.y} "
                                      f"({self.n_rows} rows, {len(self.splits)} splits)")

    def __repr__(self) -> str:
        return (f"CalibrationResult(y={self.y!r}, splits={len(self.splits)}, rows={self.n_rows}, "
                f"predictors={sorted({c.predictor for c in self.coverage})})")


def _row_samples(sel: Dataset, form: str, opts: Mapping[str, Any], split: Split, spec: Bootstrap,
                 progress: Progress | None) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """The form fitted to the split's training rows: its resampled predictions at each held-out row, and its
    predictions there on the training rows' full fit."""
    train = dataclasses.replace(sel, frame=sel.frame[split.train].reset_index(drop=True))
    test = sel.frame[split.test].reset_index(drop=True)
    fitted, samples = row_samples(fit_dataset(train, form, **opts), test, spec, progress)
    return {i: samples[:, i] for i in range(len(test))}, fitted


def calibrate(
    data: pd.DataFrame | None = None,
    forms: Sequence[str] | None = None,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    methods: Sequence[str] = METHODS,
    levels: Sequence[float] = CALIBRATION_LEVELS,
    n_boot: int = DEFAULT_CALIBRATION_BOOT,
    seed: int = 0,
    group: str | Sequence[str] | None = AUTO,
    chance: float | None = None,
    huber_delta: float | None = None,
    alpha_max: float | None = None,
    min_weight: float = 0.01,
    progress: Progress | None = None,
) -> CalibrationResult:
    """Coverage of nominal ``levels`` intervals on held-out splits, bootstrap-only and calibrated, for each
    form (default: every form that applies) and for each ensemble ``methods`` builds from them (see the
    module docstring)."""
    names = form_names(forms)
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    spec = Bootstrap.of(n_boot, seed=seed, levels=levels, group=group)
    bt, opts = backtest_forms(sel, names, {"chance": chance, "huber_delta": huber_delta, "alpha_max": alpha_max},
                              progress)
    if len(bt.common_splits) < 2:
        raise ScalingError(f"calibration leaves one split out: it needs at least 2 splits every form fits; these "
                           f"forms share {len(bt.common_splits)} (compare fewer forms, e.g. --forms poly1,logit1)")
    splits = [s for s in make_splits(sel.frame, sel.axes, rolling_axis=sel.rolling_axis, level_tol=sel.level_tol)
              if s.name in bt.common_splits]
    rows, dropped = _collect(sel, bt, opts, splits, spec, progress)
    splits = [s for s in splits if s.name not in dropped]
    if len(splits) < 2:
        raise ScalingError("calibration leaves one split out: fewer than 2 splits could be bootstrapped ("
                           + "; ".join(f"{k}: {v}" for k, v in dropped.items()) + ")")
    coverage, notes = _coverage(bt, splits, rows, methods, spec.levels, min_weight, sel)
    notes = [f"split {k} left out: {v}" for k, v in dropped.items()] + notes
    return CalibrationResult(sel.y, sel.kind, tuple(s.name for s in splits), sum(s.n_test for s in splits),
                             n_boot, spec.levels, tuple(coverage), (*sel.notes, *notes), dict(sel.source))


Samples = dict[tuple[str, str], tuple[dict[int, np.ndarray], np.ndarray]]  # (form, split) -> rows' samples, fit


def _collect(sel: Dataset, bt: BacktestResult, opts: Mapping[str, Mapping[str, Any]], splits: Sequence[Split],
             spec: Bootstrap, progress: Progress | None) -> tuple[Samples, dict[str, str]]:
    """Every ranked form's resampled predictions on every split; the splits that could not be bootstrapped
    (too few runs to resample, a form that failed on every resample) with the reason."""
    out: Samples = {}
    dropped: dict[str, str] = {}
    for s in splits:
        for f in bt.ranking:
            try:
                out[(f, s.name)] = _row_samples(sel, f, opts[f], s, spec, progress)
            except ScalingError as exc:
                dropped[s.name] = f"{f}: {str(exc).splitlines()[0]}"
                break
    return out, dropped


def _covers(lo: float, hi: float, y: float) -> bool:
    return lo <= y <= hi


def _score(name: str, intervals: Intervals, observed: np.ndarray,
           levels: Sequence[float]) -> list[Coverage]:
    """Coverage records of one predictor from its per-row intervals (key: f'{kind}:{level}')."""
    out = []
    for kind in ("bootstrap", "calibrated"):
        for lvl in levels:
            ivs = intervals[f"{kind}:{lvl}"]
            covered = sum(_covers(lo, hi, y) for (lo, hi), y in zip(ivs, observed, strict=True))
            widths = [hi - lo for lo, hi in ivs]
            out.append(Coverage(name, kind, lvl, int(covered), len(ivs), float(np.median(widths))))
    return out


Intervals = dict[str, list[tuple[float, float]]]  # f'{kind}:{level}' -> one interval per held-out row


def _predictor_intervals(weights: Mapping[str, float], bt: BacktestResult, splits: Sequence[Split],
                         samples: Samples, levels: Sequence[float], sel: Dataset) -> Intervals:
    """Per-row intervals of one predictor (a form: weight 1), every split's scale learnt on the others."""
    d = bt.direction
    out: Intervals = {f"{k}:{lvl}": [] for k in ("bootstrap", "calibrated") for lvl in levels}
    for s in splits:
        scale = conformal_of(bt, weights, exclude=[s.name])
        train, test = sel.frame[s.train], sel.frame[s.test]
        dist = distances_beyond(train, test, sel.axes)
        centre = np.sum([w * samples[(f, s.name)][1] for f, w in weights.items()], axis=0)
        for i in range(s.n_test):
            rows = {f: samples[(f, s.name)][0][i] for f in weights}
            for lvl in levels:
                b = mixture_interval(rows, weights, lvl)
                c = point_interval(float(centre[i]), scale.half_width(lvl, float(dist[i])), d)
                out[f"bootstrap:{lvl}"].append(b)
                out[f"calibrated:{lvl}"].append((min(b[0], c[0]), max(b[1], c[1])))
    return out


def _distances(train: pd.DataFrame, test: pd.DataFrame, axes: Sequence[str]) -> np.ndarray:
    from scaling.selection.splits import distances_beyond  # lazy: keeps the names apart

    return distances_beyond(train, test, axes)


def _coverage(bt: BacktestResult, splits: Sequence[Split], samples: Samples, methods: Sequence[str],
              levels: Sequence[float], min_weight: float, sel: Dataset) -> tuple[list[Coverage], list[str]]:
    observed = np.concatenate([pd.to_numeric(sel.frame[s.test][sel.y]).to_numpy(dtype=float) for s in splits])
    out: list[Coverage] = []
    for f in bt.ranking:
        out += _score(f, _predictor_intervals({f: 1.0}, bt, splits, samples, levels, sel), observed, levels)
    notes = []
    for m in methods:
        ivs: Intervals = {}
        for s in splits:  # the weights of each split's ensemble are learnt on the other splits
            weights, _ = ensemble_weights(bt, min_weight, exclude=[s.name], method=m)
            part = _predictor_intervals(weights, bt, [s], samples, levels, sel)
            for k, v in part.items():
                ivs.setdefault(k, []).extend(v)
        out += _score(f"ensemble ({m})", ivs, observed, levels)
    if len(splits) == 2:
        notes.append("two splits: each split's calibration and weights rest on the other one alone")
    return out, notes
