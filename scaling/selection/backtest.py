"""Backtests: fit on the smaller part of a grid, predict the held-out larger part.

Splits (``make_splits``), on *levels* of each axis (values within ``level_tol`` of each other, relative,
count as one level: the ViT-H runs at 224, 448 and 476 px differ in parameter count only by their
position embeddings, 0.2%, and are one model size):

- leave-largest-out along each axis: train on rows below the axis's largest level, test on that level;
- joint: train on rows below the largest level of every axis, test on the rows at the largest level of
  any axis;
- rolling origin along one axis (default data hours; OLMo-core's ``ScalingLawRollout``): for every
  origin k from the second level, train on levels <= k and test on the levels above (the last origin
  is the leave-largest-out split of that axis and is not repeated).

Errors on the held-out rows, per split: RMSE and signed bias (prediction - observation) in accuracy
points (100 x fraction; raw units for kind='loss'), RMSE of log error (log(1 - y) for accuracy, log y
for loss), and the RMSE in units of seed-to-seed noise: the pooled standard deviation of y across rows
that share every axis level (the published grid has 3 subset seeds per point). A split that leaves a
form too few points or distinct values is reported as skipped with the form's reason, never dropped.

Forms are ranked by a weighted mean held-out error over the *common* splits, those every compared form could
fit, so that no form is rewarded for the splits it could not attempt. The error ranked is the RMSE in accuracy
points for an accuracy, and the RMSE of log error for a loss or an error rate (scale-free: a loss of 2.3 and
one of 0.23 are ranked alike; ``Direction.ranks_on_log``). Each split is weighted by its training rows, so the
earliest rolling origins, fitted on the fewest points and predicting furthest, do not dominate the mean
(``split_weights``). The recommended form follows the one-standard-error rule (Breiman et al. 1984): among the
forms whose mean is within one standard error of the best (the weighted spread of the best form's split errors
over the root of the effective number of splits), the one with the fewest parameters. The common splits depend
on which forms are compared (backtesting ``poly1`` and ``logit1`` alone, they are the four splits both fit;
beside the power laws, which cannot fit the 5 h rolling origin nor the held-out resolution, the two every form
fits), so every mean says which splits it averages (``FormSummary.splits_averaged``,
``BacktestResult.ranked_on``). Each form also has its mean over its *own* splits, every split it could fit
(``FormSummary.own_rmse``, ...): that number does not depend on the other forms compared.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.core.direction import Direction, direction
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.core.threads import single_threaded_blas
from scaling.defaults import DEFAULT_LEVEL_TOL
from scaling.errors import ScalingError
from scaling.forms import get_form
from scaling.forms.result import FitResult, fit
from scaling.selection.splits import (
    SeedNoise,
    Split,
    axis_levels,
    distances_beyond,
    make_splits,
    ranked_residuals,
    seed_noise,
)
from scaling.selection.weights import one_se_choice, split_weights, weighted_mean, weighted_se

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["RANKING_COLUMNS", "BacktestResult", "FormSummary", "SeedNoise", "Split", "SplitResult", "axis_levels",
           "backtest", "make_splits", "seed_noise"]

SCHEMA = "scaling.backtest/v1"
MIN_TEST_ROWS = 1


@dataclass(frozen=True)
class SplitResult:
    form: str
    split: str
    kind: str
    n_train: int
    n_test: int
    ok: bool
    reason: str = ""
    rmse: float | None = None  # accuracy points (or loss units)
    bias: float | None = None
    max_abs: float | None = None
    rmse_log: float | None = None
    noise_units: float | None = None
    predictions: list[float] | None = None
    observed: list[float] | None = None  # the held-out rows' values, in the order of ``predictions``
    # Per held-out row: prediction - observation on the ranked scale (y for an accuracy, log error for a loss
    # or an error rate), and how far beyond the training rows it lies (decades, Euclidean over the axes).
    residuals: list[float] | None = None
    distances: list[float] | None = None

    def to_dict(self) -> JSONDict:
        return {k: getattr(self, k) for k in ("form", "split", "kind", "n_train", "n_test", "ok", "reason", "rmse",
                                              "bias", "max_abs", "rmse_log", "noise_units")}


@dataclass(frozen=True)
class FormSummary:
    """A form's mean held-out errors over two sets of splits, each named: ``rmse``, ``bias``, ``rmse_log`` and
    ``noise_units`` average the splits in ``splits_averaged`` (the common splits, on which the forms are
    ranked; none for a form left out of the ranking); ``own_*`` average ``splits_fitted``, every split the
    form could fit (``n_ok`` of them), whichever other forms are compared."""

    form: str
    rmse: float | None  # mean over splits_averaged (the common splits)
    bias: float | None
    rmse_log: float | None
    noise_units: float | None
    n_ok: int  # splits fitted
    n_skipped: int
    splits_averaged: tuple[str, ...] = ()
    splits_fitted: tuple[str, ...] = ()
    own_rmse: float | None = None  # mean over splits_fitted (the form's own splits)
    own_bias: float | None = None
    own_rmse_log: float | None = None
    own_noise_units: float | None = None
    score: float | None = None  # what the ranking compares: rmse (an accuracy) or rmse_log (a loss, an error rate)
    score_se: float | None = None  # its standard error over the splits averaged (the one-SE rule)
    parameters: int = 0  # free parameters of the form on these axes (the one-SE rule prefers fewer)

    @property
    def n_averaged(self) -> int:
        return len(self.splits_averaged)

    def to_dict(self) -> JSONDict:
        return {"form": self.form, "score": self.score, "score_se": self.score_se, "parameters": self.parameters,
                "rmse": self.rmse, "bias": self.bias, "rmse_log": self.rmse_log,
                "noise_units": self.noise_units, "splits_averaged": list(self.splits_averaged), "n_ok": self.n_ok,
                "n_skipped": self.n_skipped, "splits_fitted": list(self.splits_fitted), "own_rmse": self.own_rmse,
                "own_bias": self.own_bias, "own_rmse_log": self.own_rmse_log,
                "own_noise_units": self.own_noise_units}


# The ranking as a table, one row per form (``BacktestResult.ranking_rows``): the means over the common splits
# beside how many splits they average, the means over the form's own splits beside how many it fitted.
RANKING_COLUMNS = ("rank", "form", "splits averaged", "mean RMSE", "mean bias", "RMSE log err", "x seed noise",
                   "splits fitted", "own-splits RMSE", "own-splits bias")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


@dataclass(frozen=True)
class BacktestResult(Result):
    y: str
    kind: str
    axes: tuple[str, ...]
    unit: str
    splits: list[dict[str, Any]]
    results: list[SplitResult]
    common_splits: list[str]
    by_form: dict[str, FormSummary]  # form -> mean held-out errors over the common splits and its own splits
    ranking: list[str]
    recommended: str | None
    noise: SeedNoise
    level_tol: float
    notes: tuple[str, ...]
    source: dict[str, Any] = field(default_factory=dict)  # where the data came from (scaling.data.tables)
    data: pd.DataFrame | None = field(default=None, repr=False, compare=False)  # the rows backtested
    split_weights: dict[str, float] = field(default_factory=dict)  # each split's weight in the means

    def to_frame(self) -> pd.DataFrame:
        """One row per (split, form): sizes, whether it could be fitted (and why not), its errors, and whether
        the split is one of the common splits that the ranking averages (``in_ranking``)."""
        frame = pd.DataFrame([r.to_dict() for r in self.results])
        frame["in_ranking"] = frame["split"].isin(self.common_splits) & frame["form"].isin(self.ranking)
        return frame

    def ordered_forms(self) -> list[str]:
        """The ranked forms best first, then the forms left out of the ranking."""
        return self.ranking + [f for f in self.by_form if f not in self.ranking]

    def ranked_on(self) -> str:
        """Which splits the ranking's means average: "the 2 of 6 splits every form fits: largest data_hours; ..."."""
        n, total = len(self.common_splits), len(self.splits)
        who = "every form" if set(self.ranking) == set(self.by_form) else "every ranked form"
        if not n:
            return f"none of the {total} splits: no split is fitted by every form"
        return f"the {n} of {total} split{'s' if total != 1 else ''} {who} fits: {'; '.join(self.common_splits)}"

    def ranking_frame(self) -> pd.DataFrame:
        """One row per form, best first: the mean held-out errors over the common splits (``rmse`` ...) beside
        how many splits they average (``n_averaged``, their names in ``splits_averaged``), then the means over
        the form's own splits (``own_rmse`` ...) beside how many it fitted (``n_ok``, names in ``splits_fitted``)."""
        rows = []
        for f in self.ordered_forms():
            s = self.by_form[f]
            rows.append({"form": f, "rank": self.ranking.index(f) + 1 if f in self.ranking else None,
                         "rmse": s.rmse, "bias": s.bias, "rmse_log": s.rmse_log, "noise_units": s.noise_units,
                         "n_averaged": s.n_averaged, "splits_averaged": "; ".join(s.splits_averaged),
                         "n_ok": s.n_ok, "n_skipped": s.n_skipped, "splits_fitted": "; ".join(s.splits_fitted),
                         "own_rmse": s.own_rmse, "own_bias": s.own_bias, "own_rmse_log": s.own_rmse_log,
                         "own_noise_units": s.own_noise_units})
        return pd.DataFrame(rows).set_index("form")

    def ranking_rows(self) -> list[list[str]]:
        """The ranking as text cells under ``RANKING_COLUMNS`` (what ``summary()`` and ``scaling backtest``
        print): the counts "2 of 6" sit beside the means over those splits."""
        total = len(self.splits)
        rows = []
        for f in self.ordered_forms():
            s = self.by_form[f]
            rank = str(self.ranking.index(f) + 1) if f in self.ranking else "-"
            rows.append([rank, f, f"{s.n_averaged} of {total}", _fmt(s.rmse), _fmt(s.bias), _fmt(s.rmse_log),
                         _fmt(s.noise_units), f"{s.n_ok} of {total}", _fmt(s.own_rmse), _fmt(s.own_bias)])
        return rows

    def summary(self) -> Text:
        """The ranking as text, with the splits each mean averages, the rule, the seed-to-seed noise and the
        notes (the numbers of ``scaling backtest``'s ranking table)."""
        noise = self.noise.sigma
        noise_text = "-" if noise is None else f"{self.direction.scale * noise:.3g} {self.unit}"
        table = pd.DataFrame(self.ranking_rows(), columns=list(RANKING_COLUMNS)).to_string(index=False)
        parts = [f"Backtest of {len(self.by_form)} forms ({self.y} ~ {', '.join(self.axes)}); errors in {self.unit}",
                 f"ranked on {self.ranked_on()}\n"
                 "mean RMSE, bias, RMSE log err and x seed noise: means over those splits (splits averaged); "
                 "own-splits RMSE and bias: each form's means over every split it fits (splits fitted)",
                 table,
                 f"recommended: {self.recommended or 'none'} ({self.ranked_by}; the fewest parameters within one "
                 "standard error of the best); "
                 f"seed-to-seed noise {noise_text}"]
        if self.notes:
            parts.append("\n".join(f"note: {n}" for n in self.notes))
        return Text("\n\n".join(parts))

    @property
    def direction(self) -> Direction:
        return direction(self.kind)

    @property
    def ranked_by(self) -> str:
        """What the ranking compares, in words."""
        what = "RMSE of log error" if self.direction.ranks_on_log else f"RMSE in {self.unit}"
        return f"{what}, mean over the common splits weighted by their training rows"

    def __repr__(self) -> str:
        return (f"BacktestResult(y={self.y!r}, forms={list(self.by_form)}, splits={len(self.splits)}, "
                f"ranking={self.ranking}, recommended={self.recommended!r})")

    def plot(self, ax: Axes | None = None, split: str | None = None) -> Axes:
        """Parity of held-out predictions against observations on ``split`` (a name or kind; default the
        common split with the most held-out rows). Returns the Axes."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        if self.data is None:
            raise ScalingError("this backtest carries no data to draw (run it with scaling.backtest)")
        rows = plots.backtest_parity_frame(self, self.data, split=split)
        data = plots.parity_data(rows, forms=[f for f in self.by_form if f in set(rows["form"])],
                                 title=plots.backtest_title(self, split), quantity=plots.backtest_quantity(self))
        ax = ax if ax is not None else new_axes(figsize=(5.6, 5.8))
        return plots.plot_backtest_parity(data, ax)

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling backtest --json`` prints: where the data came from, then ``describe()``."""
        body = self.describe()
        return {"schema": body.pop("schema"), "data": jsonable(dict(self.source)), **body}

    def describe(self) -> JSONDict:
        """The backtest alone as JSON-ready data (also the ``backtest`` member of a comparison)."""
        return jsonable({
            "schema": SCHEMA,
            "y": self.y,
            "kind": self.kind,
            "axes": list(self.axes),
            "unit": self.unit,
            "level_tol": self.level_tol,
            "seed_noise": self.noise.to_dict(),
            "splits": self.splits,
            "results": [r.to_dict() for r in self.results],
            "common_splits": self.common_splits,
            "summary": {k: v.to_dict() for k, v in self.by_form.items()},
            "ranking": self.ranking,
            "recommended": self.recommended,
            "ranked_by": self.ranked_by,
            "split_weights": self.split_weights,
            "notes": list(self.notes),
        })


def _scores(r: FitResult | None, train: pd.DataFrame, test: pd.DataFrame, y: str, kind: str, scale: float,
            sigma: float | None) -> dict[str, Any]:
    assert r is not None
    obs = pd.to_numeric(test[y]).to_numpy(dtype=float)
    pred = np.asarray(r.predict(test), dtype=float)
    d = pred - obs
    e_obs, e_pred = direction(kind).error(obs), direction(kind).error(pred)
    with np.errstate(all="ignore"):
        logd = np.log(e_pred) - np.log(e_obs)
    rmse = float(np.sqrt(np.mean(d**2)))
    return {
        "rmse": scale * rmse,
        "bias": scale * float(np.mean(d)),
        "max_abs": scale * float(np.max(np.abs(d))),
        # A prediction past 100% accuracy (polynomials can) has no log error: None, not a number.
        "rmse_log": float(np.sqrt(np.mean(logd**2))) if np.all(np.isfinite(logd)) else None,
        "noise_units": rmse / sigma if sigma else None,
        "predictions": pred.tolist(),
        "observed": obs.tolist(),
        "residuals": ranked_residuals(pred, obs, direction(kind)).tolist(),
        "distances": distances_beyond(train, test, list(r.axes)).tolist(),
    }


def _run(data: pd.DataFrame, forms: Sequence[str], splits: list[Split], results: list[SplitResult], *, y: str,
         axes: tuple[str, ...], kind: str, weights: str | None, options: Mapping[str, Mapping[str, Any]] | None,
         scale: float, sigma: float | None, progress: Callable[[int, int], None] | None,
         unavailable: Mapping[str, str]) -> None:
    total, done = len(forms) * len(splits), 0
    for form in forms:
        opts = dict((options or {}).get(form, {}))
        for s in splits:
            base: dict[str, Any] = {"form": form, "split": s.name, "kind": s.kind, "n_train": s.n_train,
                                    "n_test": s.n_test}
            if form in unavailable:
                results.append(SplitResult(**base, ok=False, reason=unavailable[form]))
            elif s.n_test < MIN_TEST_ROWS:
                results.append(SplitResult(**base, ok=False, reason="no held-out rows"))
            else:
                try:
                    r = fit(data[s.train], form, y=y, axes=axes, kind=kind, weights=weights, **opts)  # type: ignore[arg-type]
                except ScalingError as exc:
                    results.append(SplitResult(**base, ok=False, reason=str(exc).splitlines()[0]))
                else:
                    sc = _scores(r, data[s.train], data[s.test], y, kind, scale, sigma)
                    reason = "" if r.converged else "fit did not converge"
                    results.append(SplitResult(**base, ok=True, reason=reason, **sc))
            done += 1
            if progress is not None:
                progress(done, total)


TIE_REL = 1e-6  # held-out errors this close (relative) are a tie: nested laws that ended at the same fit


def _order(ranking: list[str], summary: Mapping[str, FormSummary]) -> list[str]:
    """Break ties of equal held-out error by the number of parameters, fewer first: ``m4`` at alpha = 0 is
    ``saturating`` is ``powerlaw``, and the simpler statement of the same fit should be recommended."""
    out = list(ranking)
    for i in range(1, len(out)):
        j = i
        while j > 0:
            a, b = summary[out[j - 1]].score, summary[out[j]].score
            assert a is not None and b is not None  # only forms with a mean are ranked
            simpler = summary[out[j]].parameters < summary[out[j - 1]].parameters
            if abs(a - b) > TIE_REL * max(abs(a), abs(b)) or not simpler:
                break
            out[j - 1], out[j] = out[j], out[j - 1]
            j -= 1
    return out


def _summarise(form: str, is_ranked: bool, splits: Sequence[Split], common: Sequence[str],
               results: Sequence[SplitResult], weight: Mapping[str, float], d: Direction,
               axes: Sequence[str]) -> FormSummary:
    """A form's weighted means over the common splits (none when it is left out of the ranking: its splits
    differ from the ranked forms') and over its own splits, with the ranked score and its standard error."""
    averaged = [s.name for s in splits if s.name in common] if is_ranked else []
    fitted = [r.split for r in results if r.form == form and r.ok]
    by_split = {r.split: r for r in results if r.form == form}

    def mean(key: str, names: list[str]) -> float | None:
        return weighted_mean([getattr(by_split[n], key) for n in names], [weight[n] for n in names])

    key = "rmse_log" if d.ranks_on_log else "rmse"
    return FormSummary(form, mean("rmse", averaged), mean("bias", averaged), mean("rmse_log", averaged),
                       mean("noise_units", averaged), len(fitted), len(splits) - len(fitted), tuple(averaged),
                       tuple(fitted), mean("rmse", fitted), mean("bias", fitted), mean("rmse_log", fitted),
                       mean("noise_units", fitted), score=mean(key, averaged),
                       score_se=weighted_se([getattr(by_split[n], key) for n in averaged],
                                            [weight[n] for n in averaged]),
                       parameters=len(get_form(form).param_names(axes)))


def _rankable(forms: Sequence[str], splits: list[Split],
              results: list[SplitResult]) -> tuple[list[str], list[str], list[str]]:
    """The forms to rank, the splits they all fit (the common splits) and the forms left out.

    The rule, stated up front: forms are compared on the splits that every compared form could fit. A
    form that fits no split is not compared. While no split is common to the rest, the form that fits the
    fewest splits (the later one on ties) is left out, so that one form that cannot fit a split never
    empties the ranking of the others.
    """
    ok = {f: {r.split for r in results if r.form == f and r.ok} for f in forms}
    ranked = [f for f in forms if ok[f]]
    dropped = [f for f in forms if not ok[f]]

    def common_of(fs: list[str]) -> list[str]:
        return [s.name for s in splits if all(s.name in ok[f] for f in fs)]

    while len(ranked) > 1 and not common_of(ranked):
        worst = min(reversed(ranked), key=lambda f: len(ok[f]))
        ranked.remove(worst)
        dropped.append(worst)
    common = common_of(ranked) if ranked else []
    return ranked, common, [f for f in forms if f in dropped]


def backtest(
    data: pd.DataFrame,
    forms: Sequence[str],
    *,
    y: str,
    axes: Sequence[str],
    kind: str = "accuracy",
    weights: str | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    rolling_axis: str | None = "data_hours",
    level_tol: float = DEFAULT_LEVEL_TOL,
    progress: Callable[[int, int], None] | None = None,
    unavailable: Mapping[str, str] | None = None,
) -> BacktestResult:
    """Backtest every form in ``forms`` on the splits of ``make_splits`` (see the module docstring).

    ``options[form]`` are the form's fit options (e.g. ``{"powerlaw_chance": {"chance": 0.999}}``);
    ``unavailable[form]`` says why a form cannot be tried on these data at all (it is listed as skipped on
    every split with that reason, and not ranked).
    """
    if not forms:
        raise ScalingError("backtest needs at least one form")
    data = data.reset_index(drop=True)
    axes = tuple(axes)
    for c in [y, *axes]:
        if c not in data.columns:
            raise ScalingError(f"column {c!r} not in data; columns: {', '.join(map(str, data.columns))}")
    splits = make_splits(data, axes, rolling_axis=rolling_axis, level_tol=level_tol)
    if not splits:
        raise ScalingError("no backtest split: every axis has a single level")
    noise = seed_noise(data, y, axes, level_tol)
    d = direction(kind)
    scale = d.scale
    results: list[SplitResult] = []
    with single_threaded_blas():
        _run(data, forms, splits, results, y=y, axes=axes, kind=kind, weights=weights, options=options,
             scale=scale, sigma=noise.sigma, progress=progress, unavailable=dict(unavailable or {}))
    ranked, common, dropped = _rankable(forms, splits, results)
    weight = split_weights(splits)
    summary = {form: _summarise(form, form in ranked, splits, common, results, weight, d, axes) for form in forms}
    with_mean = [f for f in ranked if summary[f].score is not None]
    ranking = _order(sorted(with_mean, key=lambda f: float(summary[f].score or 0.0)), summary)
    notes = []
    if dropped:
        notes.append("not ranked (fitted on too few splits to compare with the others): "
                     + "; ".join(f"{f} ({summary[f].n_ok} of {len(splits)} splits)" for f in dropped))
    skipped = [s.name for s in splits if s.name not in common]
    if skipped:
        notes.append(f"not every form could be fitted on: {'; '.join(skipped)} (those splits are not ranked)")
    if not common:
        notes.append("no split could be fitted by every form: no ranking")
    if noise.sigma is None:
        notes.append("no replicated configurations: the error in units of seed noise is unavailable")
    split_info = [{"name": s.name, "kind": s.kind, "axis": s.axis, "n_train": s.n_train, "n_test": s.n_test}
                  for s in splits]
    return BacktestResult(y, kind, axes, d.unit, split_info,
                          results, common, summary, ranking, one_se_choice(ranking, summary), noise, level_tol,
                          tuple(notes), split_weights={s.name: weight[s.name] for s in splits})
