"""Data of the diagnostic figures over plain inputs: backtest parity (4), the bootstrap distribution of
compute (5), MAE pretraining loss curves (6) and the compute-optimal frontier. A parity plot takes rows
(form, observed, predicted); the compute figure an array of FLOPs samples (inf or NaN for a resample that
never reaches the target). Drawn by ``scaling.plots.draw_diagnostics``."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.data.tables import RUNS_Y, is_runs_frame
from scaling.errors import ScalingError
from scaling.plots.labels import Quantity, metric_label
from scaling.plots.style import fmt_flops
from scaling.selection.backtest import make_splits
from scaling.uncertainty.bootstrap import quantile

if TYPE_CHECKING:
    from runs_db import RunDB
    from scaling.allocation.mae import OptimalResult
    from scaling.selection.backtest import BacktestResult
    from scaling.uncertainty.bootstrap import BootstrapResult


@dataclass(frozen=True)
class ParityData:
    frame: pd.DataFrame  # form, observed, predicted, residual (= predicted - observed), plus any extra columns
    forms: tuple[str, ...]
    stats: pd.DataFrame  # index form: n, rmse, mae, bias, max_abs (fractions)
    limits: tuple[float, float]
    title: str = ""
    metric_label: str = ""  # what accuracy is predicted, for the axis labels ("ImageNet top-1 (...)")
    not_fitted: tuple[tuple[str, str], ...] = ()  # (form, reason): forms of the backtest without a fit here
    # form -> the backtest splits whose held-out runs its stats pool (when the rows name their split)
    splits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    quantity: Quantity | None = None  # what is predicted (name, percent or not); None: accuracy of runs

    @property
    def shown(self) -> Quantity:
        """The quantity on the axes (the run database's accuracy, named by ``metric_label``, when none was
        recorded)."""
        return self.quantity or Quantity(self.metric_label or "accuracy")

    def form_stats(self) -> dict[str, dict[str, float]]:
        """Each form's error statistics (n, rmse, mae, bias, max_abs) as floats."""
        return {str(f): {str(k): float(v) for k, v in row.items()} for f, row in self.stats.iterrows()}

    def summary(self) -> dict[str, Any]:
        def stats(form: str, values: dict[str, float]) -> dict[str, Any]:
            return values | ({"splits": list(self.splits[form])} if form in self.splits else {})

        return {"forms": list(self.forms), "limits": list(self.limits),
                "stats": {f: stats(f, values) for f, values in self.form_stats().items()}}


@dataclass(frozen=True)
class BacktestPanels:
    """Figure 4 over several splits: one parity panel per split that some form could fit, the splits that
    none could with the reason, and the main split (the default one) whose numbers head the summary."""

    panels: tuple[ParityData, ...]
    splits: tuple[str, ...]  # the split (or pooled kind) of each panel
    skipped: tuple[tuple[str, str], ...]  # (split, reason): no form could be fitted
    main: ParityData
    metric_label: str
    quantity: Quantity | None = None

    @property
    def shown(self) -> Quantity:
        return self.quantity or Quantity(self.metric_label or "accuracy")

    def summary(self) -> dict[str, Any]:
        return {**self.main.summary(),
                "panels": [{"split": s, **p.summary()} for s, p in zip(self.splits, self.panels, strict=True)],
                "skipped": [{"split": s, "reason": r} for s, r in self.skipped]}


def backtest_panels(result: BacktestResult, data: pd.DataFrame, *, forms: Sequence[str] | None = None,
                    split: str | None = None, metric_label: str = "",
                    quantity: Quantity | None = None) -> BacktestPanels:
    """Figure 4's data: every split of a ``BacktestResult`` (or only ``split``, a name or pooled kind), each as
    ``parity_data`` of the forms fitted there; splits no form could fit are listed in ``skipped``.
    ``quantity``: what the backtest predicted (default: ``backtest_quantity`` of the result and ``data``)."""
    quantity = quantity or backtest_quantity(result, data, metric_label)
    names = [split] if split else [s["name"] for s in result.splits]
    main_split = split or default_split(result)
    order = list(forms) if forms is not None else list(result.by_form)
    panels, shown, skipped = [], [], []
    main = None
    for name in names:
        fitted = {r.form for r in result.results if r.split == name and r.ok}
        if not split and not fitted:
            # "form 'poly1' needs >= 2 distinct values ..." once per reason, not once per form
            reasons = {re.sub(r"^form '[^']*' ", "", r.reason) for r in result.results if r.split == name and r.reason}
            skipped.append((name, "; ".join(sorted(reasons)) or "no form could be fitted"))
            continue
        rows = backtest_parity_frame(result, data, split=name)
        here = [f for f in order if f in set(rows["form"])]
        missing = tuple((r.form, r.reason or "not fitted") for r in result.results
                        if r.split == name and not r.ok and r.form in order)
        panel = parity_data(rows, forms=here, title=backtest_title(result, name), metric_label=quantity.name,
                            quantity=quantity)
        panel = replace(panel, not_fitted=missing)
        panels.append(panel)
        shown.append(name)
        if name == main_split:
            main = panel
    if not panels:
        raise ScalingError("no backtest split could be fitted by any form")
    return BacktestPanels(tuple(panels), tuple(shown), tuple(skipped), main or panels[0], quantity.name, quantity)


def backtest_quantity(result: BacktestResult, data: pd.DataFrame | None = None, label: str = "") -> Quantity:
    """What a backtest predicted, in its data's words: the run database's metric (``label``, else from the
    rows), or the table's response column (a loss in its own units)."""
    frame = data if data is not None else result.data
    if frame is not None and is_runs_frame(frame) and result.y == RUNS_Y:
        return Quantity(label or metric_label(frame), result.kind, runs=True)
    return Quantity(result.y, result.kind, runs=False)


def parity_data(
    frame: pd.DataFrame,
    *,
    form: str = "form",
    observed: str = "observed",
    predicted: str = "predicted",
    forms: Sequence[str] | None = None,
    title: str = "",
    metric_label: str = "",
    quantity: Quantity | None = None,
) -> ParityData:
    """Predicted vs observed held-out points, per form, with each form's error statistics (pooled over the
    rows; when the frame has a ``split`` column, ``ParityData.splits`` names each form's splits).
    ``quantity``: what is predicted, for the labels (default: an accuracy named ``metric_label``)."""
    missing = [c for c in (form, observed, predicted) if c not in frame.columns]
    if missing:
        columns = ", ".join(map(str, frame.columns))
        raise ScalingError(f"backtest table lacks column {missing[0]!r} (columns: {columns})")
    df = frame.rename(columns={form: "form", observed: "observed", predicted: "predicted"}).copy()
    df["observed"] = pd.to_numeric(df["observed"], errors="coerce")
    df["predicted"] = pd.to_numeric(df["predicted"], errors="coerce")
    df = df[np.isfinite(df["observed"]) & np.isfinite(df["predicted"])]
    if forms is not None:
        df = df[df["form"].isin(list(forms))]
    if df.empty:
        raise ScalingError("no held-out points with finite observed and predicted values")
    order = list(forms) if forms is not None else list(dict.fromkeys(df["form"]))
    order = [f for f in order if f in set(df["form"])]
    df["residual"] = df["predicted"] - df["observed"]
    g = df.groupby("form", sort=False)["residual"]
    stats = pd.DataFrame({
        "n": g.size().astype(float),
        "rmse": g.apply(lambda r: float(np.sqrt(np.mean(r**2)))),
        "mae": g.apply(lambda r: float(np.mean(np.abs(r)))),
        "bias": g.mean(),
        "max_abs": g.apply(lambda r: float(np.max(np.abs(r)))),
    }).loc[order]
    both = np.concatenate([df["observed"].to_numpy(), df["predicted"].to_numpy()])
    span = float(both.max() - both.min()) or 0.05
    limits = (float(both.min() - 0.05 * span), float(both.max() + 0.05 * span))
    # Rows of a backtest name their split: each form's statistics say which splits they pool.
    splits = {f: tuple(dict.fromkeys(map(str, df.loc[df["form"] == f, "split"]))) for f in order} \
        if "split" in df.columns else {}
    return ParityData(df.reset_index(drop=True), tuple(order), stats, limits, title,
                      metric_label or (quantity.name if quantity else ""), (), splits, quantity)


def default_split(result: BacktestResult) -> str:
    """The split every form could fit with the most held-out rows (on the published grid: predicting
    50-5,000 h from the 0.5 and 5 h runs)."""
    common = [s for s in result.splits if s["name"] in result.common_splits]
    if not common:
        raise ScalingError("no backtest split could be fitted by every form; name one with split=")
    return str(max(common, key=lambda s: s["n_test"])["name"])


def _chosen_splits(result: BacktestResult, split: str) -> list[dict[str, Any]]:
    return [s for s in result.splits if s["name"] == split] or [s for s in result.splits if s["kind"] == split]


def backtest_parity_frame(result: BacktestResult, data: pd.DataFrame, *, split: str | None = None) -> pd.DataFrame:
    """Held-out rows of a ``scaling.selection.backtest.BacktestResult``: form, split, observed, predicted, run
    columns.

    ``data`` is the frame the backtest ran on. ``split`` is a split's name (``largest data_hours``), a kind
    (``joint``, ``leave-largest-out``, ``rolling-origin``: every split of that kind, pooled) or None
    (``default_split``). Forms that could not be fitted on a split have no rows for it.
    """

    split = split or default_split(result)
    chosen = _chosen_splits(result, split)
    if not chosen:
        names = "; ".join(s["name"] for s in result.splits)
        raise ScalingError(f"no backtest split {split!r}; splits: {names}; kinds: joint, leave-largest-out, "
                           "rolling-origin")
    data = data.reset_index(drop=True)
    rolling = next((s["axis"] for s in result.splits if s["kind"] == "rolling-origin"), None)
    masks = {s.name: s for s in make_splits(data, result.axes, rolling_axis=rolling, level_tol=result.level_tol)}
    frames = []
    for info in chosen:
        mask = masks.get(info["name"])
        if mask is None or mask.n_test != info["n_test"] or mask.n_train != info["n_train"]:
            raise ScalingError("the data are not those the backtest ran on (its splits differ)")
        test = data[mask.test]
        keep = [c for c in ("run_id", "name", "arch", "n_params", "data_hours", "image_px") if c in test.columns]
        for r in result.results:
            if r.split != info["name"] or not r.ok or r.predictions is None:
                continue
            frame = test[keep].copy()
            frame.insert(0, "split", r.split)
            frame.insert(0, "form", r.form)
            frame["observed"] = pd.to_numeric(test[result.y]).to_numpy(dtype=float)
            frame["predicted"] = np.asarray(r.predictions, dtype=float)
            frames.append(frame)
    if not frames:
        raise ScalingError(f"no form could be fitted on backtest split {split!r}")
    return pd.concat(frames, ignore_index=True)


def backtest_title(result: BacktestResult, split: str | None = None) -> str:
    split = split or default_split(result)
    chosen = _chosen_splits(result, split)
    rows = backtest_quantity(result).rows if result.data is not None else "runs"
    if len(chosen) == 1:
        s = chosen[0]
        return f"Backtest, split {s['name']!r}:\nfitted on {s['n_train']} {rows}, predicting the other {s['n_test']}"
    return f"Backtest, {len(chosen)} {split} splits pooled:\npredicted vs observed held-out {rows}"


@dataclass(frozen=True)
class ComputeDistribution:
    samples: np.ndarray  # finite, positive FLOPs of the resamples that reach the target (sorted)
    n_total: int
    n_unreachable: int  # resamples that never reach the target (+inf)
    n_missing: int  # resamples without a value (NaN: no fit, no compute estimate); left out of the interval
    target: float | None
    target_label: str
    point_estimate: float | None
    level: float
    interval: tuple[float, float]  # percentile interval; upper end inf when too many are unreachable
    median: float
    bin_edges: np.ndarray  # log-spaced FLOPs
    counts: np.ndarray
    form: str = ""  # the fitted form and the question answered (for the title; not in the summary)
    question: str = ""
    # What the samples are, when not pretraining compute: ('tokens', 'tokens') for a table's solved axis,
    # ('scale factor', 'x') for the factor on every axis; (name, unit).
    what: tuple[str, str] = ("", "FLOPs")

    def fmt(self, value: float) -> str:
        """A sample in its unit: '4.85e+22 FLOPs', '1.4e+11 tokens'."""
        name, unit = self.what
        if not name:
            return fmt_flops(value)
        return f"{value:.3g}" + (f" {unit}" if unit else "")

    def summary(self) -> dict[str, Any]:
        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else float(v)

        return {"n_total": self.n_total, "n_unreachable": self.n_unreachable, "n_missing": self.n_missing,
                "target": self.target, "target_label": self.target_label,
                "point_estimate": num(self.point_estimate), "level": self.level,
                "interval": [num(v) for v in self.interval], "median": num(self.median)}


def compute_distribution_data(
    samples: Sequence[float] | np.ndarray,
    *,
    target: float | None = None,
    target_label: str = "",
    point_estimate: float | None = None,
    level: float = 0.90,
    bins: int = 40,
) -> ComputeDistribution:
    """Histogram (log bins) and percentile interval of bootstrap compute samples.

    ``+inf`` marks a resample that never reaches the target: it ranks above every finite sample, so the
    interval's upper end is inf when more than (1 - level) / 2 of the resamples are unreachable (the
    percentiles are those of ``scaling.uncertainty.bootstrap.quantile``, as ``scaling project --bootstrap`` prints).
    NaN marks a resample without a value; it is counted and left out.
    """

    if not 0.0 < level < 1.0:
        raise ScalingError(f"interval level must be in (0, 1); got {level}")
    arr = np.asarray(samples, dtype=float).ravel()
    missing = np.isnan(arr)
    ranked = arr[~missing]
    if ranked.size == 0:
        raise ScalingError("no bootstrap samples with a value")
    if np.any(ranked <= 0):
        raise ScalingError("compute samples must be positive (or +inf for an unreachable target)")
    finite = np.sort(ranked[np.isfinite(ranked)])
    alpha = (1.0 - level) / 2.0
    interval = (quantile(ranked, alpha), quantile(ranked, 1.0 - alpha))
    median = quantile(ranked, 0.5)
    if finite.size:
        lo, hi = math.log10(finite[0]), math.log10(finite[-1])
        if hi - lo < 0.2:
            lo, hi = lo - 0.1, hi + 0.1
        edges = np.logspace(lo, hi, bins + 1)
        counts, _ = np.histogram(finite, bins=edges)
    else:
        edges, counts = np.array([]), np.array([], dtype=int)
    tval = None if target is None else float(target)
    if not target_label and tval is not None:
        target_label = f"{100 * tval:.1f}%"
    return ComputeDistribution(finite, int(arr.size), int(np.isinf(ranked).sum()), int(missing.sum()), tval,
                               target_label, None if point_estimate is None else float(point_estimate), level,
                               interval, median, edges, counts)


def compute_distribution_from_bootstrap(boot: BootstrapResult, *, key: str = "scale.flops", target: float | None = None,
                                        target_label: str = "", level: float = 0.90,
                                        bins: int = 40) -> ComputeDistribution:
    """Figure 5's data from a ``scaling.uncertainty.bootstrap.BootstrapResult`` that kept its samples.

    ``key`` is a derived compute quantity of ``projection_quantities``: ``scale.flops``, ``solve.flops`` or
    ``optimal.flops``; the point estimate is its value on the full data.
    """
    if key not in boot.samples:
        have = ", ".join(k for k in boot.samples if k.endswith("flops")) or "none"
        raise ScalingError(f"the bootstrap has no samples of {key!r} (compute quantities: {have})")
    summary = boot.derived.get(key)
    est = None if summary is None else summary.estimate
    return compute_distribution_data(boot.samples[key], target=target, target_label=target_label,
                                     point_estimate=est, level=level, bins=bins)


@dataclass(frozen=True)
class LossCurves:
    frame: pd.DataFrame  # run_id, name, arch, image_px, n_params, data_hours, step, x, value, segment, single_step
    x_label: str
    key: str
    phase: str

    def summary(self) -> dict[str, Any]:
        last = self.frame.sort_values("x").groupby("name").tail(1)
        return {"key": self.key, "phase": self.phase, "x_label": self.x_label,
                "runs": {r["name"]: {"final": float(r["value"]), "x": float(r["x"])} for _, r in last.iterrows()}}


def loss_curves_data(
    db: RunDB,
    *,
    runs: Sequence[str] | None = None,
    data_fraction: float | None = 1.0,
    subset_seed: int | None = 1,
    key: str = "train_loss",
    phase: str = "pretrain",
) -> LossCurves:
    """Curves of ``key`` from the run database's history table.

    ``runs`` are run ids (or unique prefixes) or run names; otherwise every run with ``data_fraction``
    and ``subset_seed`` (None: any) is taken. The x axis is images seen (step x global batch) when every
    run records its global batch, else optimiser steps (cumulative across resumed segments).
    """
    table = db.list_runs()
    if runs:
        wanted = []
        for r in runs:
            hit = table[table["name"] == r]
            wanted.append(hit["run_id"].iloc[0] if len(hit) else db.resolve_id(r))
        table = table[table["run_id"].isin(wanted)]
    else:
        if data_fraction is not None:
            table = table[np.isclose(table["data_fraction"].astype(float), data_fraction)]
        if subset_seed is not None:
            table = table[table["subset_seed"] == subset_seed]
    if table.empty:
        raise ScalingError("no runs match the selection for loss curves")
    frames = []
    for _, run in table.iterrows():
        h = db.history(run["run_id"], phase=phase)
        h = h[h["key"] == key]
        if h.empty:
            continue
        h = h.assign(name=run["name"], arch=run["arch"], image_px=run["image_px"], n_params=run["n_params"],
                     data_hours=run["data_hours"], global_batch=run.get("global_batch"))
        frames.append(h)
    if not frames:
        raise ScalingError(f"none of the {len(table)} selected runs has {phase!r} history with key {key!r}")
    df = pd.concat(frames, ignore_index=True)
    batch = pd.to_numeric(df["global_batch"], errors="coerce")
    if batch.notna().all():
        df["x"] = df["step"].astype(float) * batch
        x_label = "Images seen in pretraining (steps x global batch)"
    else:
        df["x"] = df["step"].astype(float)
        x_label = "Pretraining steps (cumulative over resumed segments)"
    df = df.sort_values(["arch", "image_px", "data_hours", "name", "step", "segment"], kind="stable")
    df["single_step"] = _single_step_records(df)
    cols = ["run_id", "name", "arch", "image_px", "n_params", "data_hours", "step", "x", "value", "segment",
            "single_step"]
    return LossCurves(df[cols].reset_index(drop=True), x_label, key, phase)


def _single_step_records(df: pd.DataFrame) -> np.ndarray:
    """True for the record a job writes at its start (``it == 0``): the loss of that single iteration, where
    every other record of an MAE log is the mean over the iterations since the previous one (1,000-10,000).

    Such a record opens each segment at the step where the previous segment ended (step 0 for the first
    one): in the published logs it sits 2-7% below its neighbours at most resumptions, the downward spikes
    of a raw plot. A log whose first record is a window mean (``scaling train`` writes those) has none.
    """
    flags = np.zeros(len(df), dtype=bool)
    for _, run in df.groupby("name", sort=False):
        last_step = 0.0
        for segment, rows in run.groupby("segment", sort=True):
            first = rows.index[0]
            if float(rows.loc[first, "step"]) == (0.0 if segment == run["segment"].min() else last_step):
                flags[df.index.get_loc(first)] = True
            last_step = float(rows["step"].max())
    return flags


@dataclass(frozen=True)
class FrontierData:
    frame: pd.DataFrame  # n_params, data_hours, image_px, flops, relative_cost, reachable, at_bounds
    optimum: dict[str, float] | None
    optimum_flops: float | None
    target: float
    target_label: str
    cost_model: str
    optimum_at_bounds: tuple[str, ...] = ()  # "image_px upper": the optimum sits on the search box there
    bounds: dict[str, tuple[float, float]] | None = None  # the search box (axis -> (low, high))

    def summary(self) -> dict[str, Any]:
        return {"target": self.target, "target_label": self.target_label, "optimum": self.optimum,
                "optimum_flops": self.optimum_flops, "cost_model": self.cost_model,
                "frontier": self.frame.to_dict(orient="records")}


def frontier_data(result: OptimalResult, *, target_label: str = "") -> FrontierData:
    """The iso-target frontier of a ``scaling.allocation.mae.OptimalResult``: at each parameter count, the cheapest
    (hours, resolution) that reaches the target, and its compute relative to the optimum."""
    rows = []
    for r in result.frontier:
        a = r.allocation
        p = a.point or {}
        rows.append({"n_params": r.n_params, "data_hours": p.get("data_hours", math.nan),
                     "image_px": p.get("image_px", math.nan),
                     "flops": a.cost if a.cost is not None else math.nan,
                     "relative_cost": r.relative_cost if r.relative_cost is not None else math.nan,
                     "reachable": bool(a.reachable), "at_bounds": ", ".join(a.at_bounds)})
    frame = pd.DataFrame(rows, columns=["n_params", "data_hours", "image_px", "flops", "relative_cost", "reachable",
                                        "at_bounds"])
    opt = result.optimum
    label = target_label or f"{100 * result.target:.1f}%"
    return FrontierData(frame, dict(opt.point) if opt.point else None,
                        result.optimum_flops_exact if result.optimum_flops_exact is not None else opt.cost,
                        float(result.target), label, opt.cost_model, tuple(opt.at_bounds),
                        {a: (float(lo), float(hi)) for a, (lo, hi) in dict(getattr(result, "bounds", {})).items()})
