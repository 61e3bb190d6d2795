"""``scaling.predict``: predictions at any rows, with intervals, by one form or an ensemble of forms.

    out = scaling.predict(curve, at=pd.DataFrame({"x": [1e5, 1e6]}), y="loss", axes=["x"], kind="loss",
                          forms=None, ensemble="stacking", calibrated=True)
    out.to_frame()        # per row: the prediction, its intervals, each form's prediction

The forms are backtested on the data, weighted (one form: weight 1), fitted to all of it and bootstrapped with
their predictions at ``at`` as the derived quantities; the mixture of the bootstraps gives the bootstrap-only
intervals, and ``calibrated=True`` widens them by split-conformal quantiles of the predictor's held-out errors
at each row's distance beyond the data (``scaling.ensemble.calibration``): intervals for an observed value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaling.core.display import Text
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.data.tables import check_chance, select
from scaling.ensemble.calibration import point_interval
from scaling.ensemble.mixture import mixture_interval, mixture_quantile
from scaling.ensemble.workflow import backtest_forms, conformal_of, ensemble_weights
from scaling.errors import ScalingError
from scaling.fitting import fit_dataset
from scaling.forms.options import form_names
from scaling.forms.result import FitResult
from scaling.selection.splits import distances_beyond
from scaling.uncertainty.bootstrap import Derived
from scaling.uncertainty.resampling import AUTO, Bootstrap, bootstrap_fit

SCHEMA = "scaling.predict/v1"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Prediction(Result):
    """Predictions at the rows of ``at``: the weighted mean of the forms' fits (``predicted``), the mixture's
    median and intervals per level, and each form's own prediction."""

    at: pd.DataFrame
    y: str
    kind: str
    weights: dict[str, float]
    method: str
    predicted: np.ndarray
    median: np.ndarray
    intervals: dict[float, tuple[np.ndarray, np.ndarray]]  # level -> (lower, upper), per row
    per_form: dict[str, np.ndarray]
    distances: np.ndarray  # decades beyond the data, per row
    interval_kind: str  # 'bootstrap' or 'calibrated (...)'
    notes: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    # The mixture's percentile intervals before calibration (equal to ``intervals`` when not calibrated).
    bootstrap_intervals: dict[float, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        out = self.at.reset_index(drop=True).copy()
        out["predicted"] = self.predicted
        out["median"] = self.median
        for lvl, (lo, hi) in self.intervals.items():
            out[f"lower_{100 * lvl:g}"], out[f"upper_{100 * lvl:g}"] = lo, hi
        out["decades_beyond_data"] = self.distances
        for f, v in self.per_form.items():
            out[f"{f} (w={self.weights[f]:.2f})"] = v
        return out

    def summary(self) -> Text:
        weights = ", ".join(f"{f} {w:.2f}" for f, w in self.weights.items())
        lines = [f"Predicted {self.y} at {len(self.at)} rows: {self.method}; weights {weights}; intervals: "
                 f"{self.interval_kind}", self.to_frame().to_string(float_format=lambda v: f"{v:.4g}")]
        return Text("\n".join(lines + [f"note: {n}" for n in self.notes]))

    def to_dict(self) -> JSONDict:
        return jsonable({"schema": SCHEMA, "data": self.source, "y": self.y, "kind": self.kind,
                         "method": self.method, "weights": self.weights, "interval_kind": self.interval_kind,
                         "rows": self.to_frame().to_dict(orient="records"), "notes": list(self.notes)})


def row_samples(fit: FitResult, at: pd.DataFrame, spec: Bootstrap,
                progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``fit``'s predictions at the rows of ``at``, and its bootstrap's (resamples, rows) predictions there."""

    def at_rows(f: Any) -> Derived:
        return Derived({f"row.{i}": float(v) for i, v in enumerate(np.asarray(f.predict(at), dtype=float))})

    boot = bootstrap_fit(fit, spec, derived=at_rows, progress=progress)
    samples = np.column_stack([boot.samples[f"row.{i}"] for i in range(len(at))]) if len(at) else np.empty((0, 0))
    return np.asarray(fit.predict(at), dtype=float), samples


def predict(
    data: pd.DataFrame | None = None,
    at: pd.DataFrame | Mapping[str, Sequence[float]] | None = None,
    *,
    forms: Sequence[str] | str | None = None,
    ensemble: str = "stacking",
    calibrated: bool = False,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str = "accuracy",
    levels: Sequence[float] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    group: str | Sequence[str] | None = AUTO,
    chance: float | None = None,
    min_weight: float = 0.01,
    progress: Progress | None = None,
) -> Prediction:
    """Predict ``y`` at the rows of ``at`` (see the module docstring). ``forms``: one form, a list (weighted
    by ``ensemble``: 'stacking' or 'pseudo-bma+'), or None for every form that applies."""
    if at is None:
        raise ScalingError("predict needs the rows to predict at (at=, a table of the axes)")
    rows = pd.DataFrame(at).reset_index(drop=True)
    names = [forms] if isinstance(forms, str) else form_names(forms)
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    missing = [a for a in sel.axes if a not in rows.columns]
    if missing:
        raise ScalingError(f"at= lacks axis {missing[0]!r}; the axes are {', '.join(sel.axes)}")
    spec = Bootstrap.of(n_boot, seed=seed, levels=levels, group=group)
    bt, opts = backtest_forms(sel, names, {"chance": chance}, progress)
    if len(names) == 1:
        if names[0] not in bt.ranking:
            raise ScalingError(f"form {names[0]!r} fits no backtest split of these data: nothing to weigh it by")
        weights, method = {names[0]: 1.0}, f"one form ({names[0]})"
    else:
        weights, ew = ensemble_weights(bt, min_weight, method=ensemble)
        method = ew.method
    fits = {f: fit_dataset(sel, f, **opts[f]) for f in weights}
    got = {f: row_samples(fits[f], rows, spec, progress) for f in weights}
    centre = np.sum([w * got[f][0] for f, w in weights.items()], axis=0)
    dist = distances_beyond(sel.frame, rows, sel.axes)
    scale = conformal_of(bt, weights) if calibrated else None
    lower = {lvl: np.empty(len(rows)) for lvl in spec.levels}
    upper = {lvl: np.empty(len(rows)) for lvl in spec.levels}
    boot = {lvl: (np.empty(len(rows)), np.empty(len(rows))) for lvl in spec.levels}
    median = np.empty(len(rows))
    for i in range(len(rows)):
        mix = {f: got[f][1][:, i] for f in weights}
        median[i] = mixture_quantile(mix, weights, 0.5)
        for lvl in spec.levels:
            lo, hi = mixture_interval(mix, weights, lvl)
            boot[lvl][0][i], boot[lvl][1][i] = lo, hi
            if scale is not None:
                c = point_interval(float(centre[i]), scale.half_width(lvl, float(dist[i])), bt.direction)
                lo, hi = min(lo, c[0]), max(hi, c[1])
            lower[lvl][i], upper[lvl][i] = lo, hi
    kind_text = "bootstrap" if scale is None else f"calibrated ({scale.describe()})"
    thin = [lvl for lvl in spec.levels if scale is not None and math.isinf(scale.quantile(lvl))]
    notes = [f"{len(scale.scores) if scale else 0} held-out errors are too few for the "
             f"{', '.join(f'{100 * v:g}%' for v in thin)} calibrated interval: unbounded"] if thin else []
    return Prediction(rows, sel.y, sel.kind, weights, method, centre, median,
                      {lvl: (lower[lvl], upper[lvl]) for lvl in spec.levels}, {f: got[f][0] for f in weights}, dist,
                      kind_text, (*sel.notes, *notes), dict(sel.source), boot)
