"""Every form side by side: in-sample fit, AICc/BIC, backtest error and a projection with its interval.

The recommended form is the one with the lowest backtest error (mean held-out RMSE over the splits every
form could fit, ``scaling.selection.backtest``): information criteria measure in-sample fit, not extrapolation.
Which splits those are depends on the forms compared; every rendering names them (``BacktestResult.ranked_on``)
and gives each form's mean over its own splits beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from scaling.core.direction import direction
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.defaults import DEFAULT_GROUP, DEFAULT_LEVELS, DEFAULT_N_BOOT
from scaling.errors import ScalingError
from scaling.forms.result import FitResult, fit
from scaling.questions.derived import projection_quantities
from scaling.questions.projection import reference_point
from scaling.selection.backtest import DEFAULT_LEVEL_TOL, BacktestResult, backtest
from scaling.uncertainty.bootstrap import BootstrapResult, bootstrap

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.compare/v1"


@dataclass(frozen=True)
class FormRow:
    form: str
    ok: bool
    reason: str = ""
    fit: FitResult | None = field(default=None, repr=False)
    delta_aicc: float | None = None
    delta_bic: float | None = None
    predicted: float | None = None  # at the comparison point
    interval: dict[float, tuple[float, float]] | None = None
    p_meets_target: float | None = None
    bootstrap: BootstrapResult | None = field(default=None, repr=False)

    def to_dict(self) -> JSONDict:
        f = self.fit
        return {
            "form": self.form,
            "ok": self.ok,
            "reason": self.reason,
            "n_params": None if f is None else int(f.stats["n_params"]),
            "stats": None if f is None else dict(f.stats),
            "delta_aicc": self.delta_aicc,
            "delta_bic": self.delta_bic,
            "converged": None if f is None else f.converged,
            "at_bound": None if f is None else list(f.at_bound),
            "ceiling": None if f is None else f.ceiling,
            "predicted": self.predicted,
            "interval": None if self.interval is None else
            {f"{lvl:g}": {"lower": lo, "upper": hi} for lvl, (lo, hi) in self.interval.items()},
            "p_meets_target": self.p_meets_target,
            "bootstrap": None if self.bootstrap is None else {
                "n_resamples": self.bootstrap.n_requested, "n_ok": self.bootstrap.n_ok,
                "failures": self.bootstrap.failures, "seed": self.bootstrap.seed},
        }


@dataclass(frozen=True)
class CompareResult(Result):
    point: dict[str, float]
    target: float | None
    rows: list[FormRow]
    backtest: BacktestResult
    recommended: str | None
    levels: tuple[float, ...]
    notes: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)  # where the data came from (scaling.data.tables)
    target_spec: Any = None  # the scaling.core.targets.Target behind ``target``, when one was named
    # form -> its allocation's consistency check against the IsoFLOP vertices (asked with a cost model)
    isoflop_checks: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per form: in-sample RMSE, dAICc/dBIC, backtest RMSE and bias (means over the common splits,
        ``backtest_n_averaged`` of them: ``backtest.ranked_on()`` names them) and the form's own-splits means
        (over the ``backtest_n_fitted`` splits it fits), the prediction at the comparison point with its
        bootstrap interval(s), the share of resamples meeting the target."""
        rows = []
        for r in self.rows:
            bt = self.backtest.by_form.get(r.form)
            row: dict[str, Any] = {"form": r.form, "ok": r.ok, "recommended": r.form == self.recommended,
                                   "rmse_in_sample": None if r.fit is None else r.fit.stats["rmse"],
                                   "delta_aicc": r.delta_aicc, "delta_bic": r.delta_bic,
                                   "backtest_rmse": None if bt is None else bt.rmse,
                                   "backtest_bias": None if bt is None else bt.bias,
                                   "backtest_n_averaged": None if bt is None else bt.n_averaged,
                                   "backtest_own_rmse": None if bt is None else bt.own_rmse,
                                   "backtest_own_bias": None if bt is None else bt.own_bias,
                                   "backtest_n_fitted": None if bt is None else bt.n_ok,
                                   "predicted": r.predicted}
            for lvl in self.levels:
                lo, hi = (r.interval or {}).get(lvl, (None, None))
                row[f"lower_{100 * lvl:g}"], row[f"upper_{100 * lvl:g}"] = lo, hi
            row["p_meets_target"], row["reason"] = r.p_meets_target, r.reason
            rows.append(row)
        return pd.DataFrame(rows).set_index("form")

    def summary(self) -> Text:
        """Every form side by side as text, with the recommendation and the rule that made it."""
        where = ", ".join(f"{k}={v:g}" for k, v in self.point.items())
        parts = [f"Forms compared at {where}" + ("" if self.target is None else f" (target {self.target:g})"),
                 f"backtest_rmse, backtest_bias: means over {self.backtest.ranked_on()}\n"
                 "backtest_own_rmse, backtest_own_bias: each form's means over every split it fits (backtest_n_fitted)",
                 self.to_frame().to_string(float_format=lambda v: f"{v:.4g}"),
                 f"recommended: {self.recommended or 'none'} (lowest mean held-out RMSE over the common backtest "
                 f"splits; information criteria measure in-sample fit, not extrapolation)"]
        if self.isoflop_checks:
            parts.append("\n".join(f"{form}: {c.verdict}" for form, c in self.isoflop_checks.items()))
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        return Text("\n\n".join(parts))

    def __repr__(self) -> str:
        return (f"CompareResult(forms={[r.form for r in self.rows]}, point={self.point}, "
                f"recommended={self.recommended!r})")

    def plot(self, ax: Axes | None = None) -> Axes:
        """Each form's prediction at the comparison point with its widest bootstrap interval, the
        recommended form highlighted and the target drawn. Returns the Axes."""
        ax = ax if ax is not None else new_axes()
        ok = [r for r in self.rows if r.ok and r.predicted is not None]
        level = max(self.levels) if self.levels else None
        scale = direction(self.backtest.kind).scale
        for i, r in enumerate(ok):
            colour = "C3" if r.form == self.recommended else "C0"
            ax.plot([scale * float(r.predicted or 0.0)], [i], "o", color=colour)
            if r.interval and level in r.interval:
                lo, hi = r.interval[level]
                ax.plot([scale * lo, scale * hi], [i, i], color=colour, lw=2)
        if self.target is not None:
            ax.axvline(scale * self.target, color="k", ls="--", lw=1, label="target")
            ax.legend(frameon=False)
        ax.set_yticks(range(len(ok)), [r.form + (" (recommended)" if r.form == self.recommended else "") for r in ok])
        unit = ", %" if scale == 100.0 else ""  # a fraction in percent; a loss in its own units
        where = ", ".join(f"{k}={v:g}" for k, v in self.point.items())
        ax.set_xlabel(f"predicted {self.backtest.y}{unit} at {where}"
                      + ("" if level is None else f"; {100 * level:g}% bootstrap intervals"))
        return ax

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling compare --json`` prints."""
        return jsonable({
            "schema": SCHEMA,
            "data": dict(self.source),
            **({"target_spec": self.target_spec.to_dict()} if self.target_spec is not None else {}),
            "point": self.point,
            "target": self.target,
            "levels": list(self.levels),
            "recommended": self.recommended,
            "recommended_by": "lowest mean held-out RMSE over the common backtest splits",
            "forms": [r.to_dict() | {"backtest": self.backtest.by_form[r.form].to_dict()
                                     if r.form in self.backtest.by_form else None} for r in self.rows],
            "backtest": self.backtest.describe(),
            **({"isoflop_checks": {f: c.to_dict() for f, c in self.isoflop_checks.items()}}
               if self.isoflop_checks else {}),
            "notes": list(self.notes),
        })


def _labelled(progress: Callable[[str, int, int], None], label: str) -> Callable[[int, int], None]:
    return lambda done, total: progress(label, done, total)


def compare(
    data: pd.DataFrame,
    forms: Sequence[str],
    *,
    y: str,
    axes: Sequence[str],
    point: Mapping[str, float],
    kind: str = "accuracy",
    target: float | None = None,
    weights: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    group: str | Sequence[str] | None = DEFAULT_GROUP,
    levels: Sequence[float] = DEFAULT_LEVELS,
    rolling_axis: str | None = "data_hours",
    level_tol: float = DEFAULT_LEVEL_TOL,
    progress: Callable[[str, int, int], None] | None = None,
    workers: int = 1,
) -> CompareResult:
    """Fit, backtest and project every form in ``forms``; ``n_boot = 0`` skips the intervals."""
    if not forms:
        raise ScalingError("compare needs at least one form")
    options = options or {}
    rows: list[FormRow] = []
    fits: dict[str, FitResult] = {}
    for form in forms:
        try:
            fits[form] = fit(data, form, y=y, axes=axes, kind=kind, weights=weights,  # type: ignore[arg-type]
                             **dict(options.get(form, {})))
        except ScalingError as exc:
            rows.append(FormRow(form, False, str(exc).splitlines()[0]))
    fitted = [f for f in forms if f in fits]
    bt = backtest(data, fitted or list(forms), y=y, axes=axes, kind=kind, weights=weights, options=options,
                  rolling_axis=rolling_axis, level_tol=level_tol,
                  progress=None if progress is None else lambda d, t: progress("backtest", d, t))
    best_aicc = min((fits[f].stats["aicc"] for f in fitted), default=math.nan)
    best_bic = min((fits[f].stats["bic"] for f in fitted), default=math.nan)
    notes = list(bt.notes)
    for form in fitted:
        r = fits[form]
        pred = float(r.predict({a: [point[a]] for a in r.axes})[0])
        boot = None
        interval = None
        p_meets = None
        if n_boot > 0:
            derived = projection_quantities(target, reference=reference_point(r), at=point, scale=False)
            boot = bootstrap(data, form, y=y, axes=axes, kind=kind, weights=weights, n_boot=n_boot, seed=seed,
                             group=group, levels=levels, derived=derived, full=r, keep_samples=False,
                             progress=None if progress is None else _labelled(progress, form),
                             workers=workers, **dict(options.get(form, {})))
            interval = boot.derived["at.predicted"].intervals
            p_meets = boot.probabilities.get("at.meets_target")
            if boot.n_failed:
                notes.append(f"{form}: {boot.n_failed} of {boot.n_requested} resamples failed")
        d = direction(kind)
        flags = [d.impossible(pred)] + [d.impossible(v) for lo_hi in (interval or {}).values() for v in lo_hi]
        flag = next((f for f in flags if f), "")
        reason = "; ".join(x for x in ("" if r.converged else "fit did not converge", flag) if x)
        rows.append(FormRow(form, True, reason, r, r.stats["aicc"] - best_aicc, r.stats["bic"] - best_bic, pred,
                            interval, p_meets, boot))
    order = {f: i for i, f in enumerate(forms)}
    rows.sort(key=lambda row: order[row.form])
    return CompareResult(dict(point), target, rows, bt, bt.recommended, tuple(levels), tuple(notes))
