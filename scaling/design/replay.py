"""Replay a scaling study: would ``scaling.suggest`` have reached the full grid's answer with fewer FLOPs?

Start from part of the grid (by default the runs with at most 50 hours of video), hide the rest, and add the
hidden runs back one at a time in three orders: the suggested one (at each step, the hidden run with the
largest expected shrinkage of the projection's interval per FLOP, scored by the preposterior analysis of
``scaling.design.core`` with the run's recorded pretraining FLOPs as its cost), a naive one (largest
model first: parameters, then hours, then px) and random ones. After each addition the form is refitted on
the runs so far (their real outcomes) and two numbers are recorded against the cumulative FLOPs added:

- the error of the projection: |log10 FLOPs needed - log10 FLOPs needed on the full grid|, in decades, for
  'scale every axis' to the target (FLOPs under the full grid's compute assumptions, so all steps answer
  in the same units);
- the width of its bootstrap percentile interval, in decades of FLOPs.

``FLOPs to reach`` an error is the cumulative FLOPs after which the error stays at or below it for the
rest of the order; the ratio of an order's FLOPs to the suggested order's is the replay's answer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from scaling.compute.flops import ComputeAssumptions
from scaling.compute.training_length import from_grid
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import jsonable
from scaling.core.results import Result
from scaling.core.targets import Target, resolve_target
from scaling.data.tables import load_runs
from scaling.defaults import DEFAULT_FORM, DEFAULT_LEVELS, DEFAULT_TARGET
from scaling.design.candidates import candidates_from_rows, one_per_run
from scaling.design.core import Preposterior, after_all, flops_along_scale, quantity_fn
from scaling.design.suggest import seed_sigma
from scaling.errors import ScalingError
from scaling.fitting import fit as fit_runs
from scaling.forms.result import FitResult
from scaling.questions.projection import project_scale, reference_point

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.suggest.replay/v1"
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ReplayTrace:
    """One order: after each addition, the run added, cumulative FLOPs, error and interval width."""

    order: str  # 'suggested' | 'naive' | 'random <seed>'
    frame: pd.DataFrame  # step, run_id, label, flops_added, cumulative_flops, error_decades, width_decades

    def flops_to_reach(self, error: float) -> float:
        """Cumulative FLOPs from which the error stays <= ``error`` (inf if it never does)."""
        err = self.frame["error_decades"].to_numpy(dtype=float)
        bad = np.flatnonzero(~(err <= error))
        if len(bad) == 0:
            return float(self.frame["cumulative_flops"].iloc[0])
        if bad[-1] == len(err) - 1:
            return math.inf
        return float(self.frame["cumulative_flops"].iloc[bad[-1] + 1])


@dataclass(frozen=True)
class ReplayResult(Result):
    """The replay's traces, one per order, and what they were run with (``suggest_replay``)."""

    form: str
    target: Target
    start: str  # which runs the replay starts from
    n_start: int
    n_hidden: int
    full_flops: float  # the full grid's answer (FLOPs needed)
    threshold: float  # the error (decades) the FLOPs ratio is measured at
    traces: tuple[ReplayTrace, ...]
    n_boot: int
    seed: int
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def trace(self, order: str) -> ReplayTrace:
        return next(t for t in self.traces if t.order == order)

    @property
    def random_traces(self) -> list[ReplayTrace]:
        return [t for t in self.traces if t.order.startswith("random")]

    def flops_to_reach(self, error: float | None = None) -> dict[str, float]:
        """FLOPs each order needs to reach (and keep) ``error`` decades; 'random' is the median of the random
        orders."""
        e = self.threshold if error is None else error
        out = {t.order: t.flops_to_reach(e) for t in self.traces if not t.order.startswith("random")}
        rnd = [t.flops_to_reach(e) for t in self.random_traces]
        if rnd:
            out["random"] = float(np.median(rnd))
        return out

    def ratios(self, error: float | None = None) -> dict[str, float]:
        """FLOPs of the naive and random orders over those of the suggested order (> 1: suggesting saves)."""
        f = self.flops_to_reach(error)
        s = f["suggested"]
        return {k: (v / s if s > 0 and math.isfinite(s) else math.nan) for k, v in f.items() if k != "suggested"}

    def to_frame(self) -> pd.DataFrame:
        return pd.concat([t.frame.assign(order=t.order) for t in self.traces], ignore_index=True)

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"schema": SCHEMA, "form": self.form,
                         "target": self.target.to_dict() if self.target is not None else None,
                         "start": self.start, "n_start": self.n_start, "n_hidden": self.n_hidden,
                         "full_grid_flops": self.full_flops, "threshold_decades": self.threshold,
                         "flops_to_reach": self.flops_to_reach(), "ratios": self.ratios(), "n_resamples": self.n_boot,
                         "seed": self.seed, "notes": list(self.notes), "seconds": self.seconds,
                         "traces": {t.order: t.frame.to_dict("list") for t in self.traces}})

    def summary(self) -> Text:
        f, r = self.flops_to_reach(), self.ratios()
        lines = [f"Replay of {self.form} to {self.target.name}: start from {self.n_start} runs ({self.start}), add "
                 f"{self.n_hidden} hidden runs; full-grid answer {self.full_flops:.3g} FLOPs",
                 f"FLOPs added until the error stays <= {self.threshold:g} decades: "
                 + ", ".join(f"{k} {v:.3g}" for k, v in f.items()),
                 "ratio to the suggested order: " + ", ".join(f"{k} {v:.2f}x" for k, v in r.items())]
        return Text("\n".join(lines + [f"note: {n}" for n in self.notes]))

    def __repr__(self) -> str:
        r = ", ".join(f"{k}={v:.2f}" for k, v in self.ratios().items())
        return f"ReplayResult(form={self.form!r}, start={self.n_start}, hidden={self.n_hidden}, ratios=({r}))"

    def plot(self, ax: Axes | None = None) -> Axes:
        """Error (solid) and interval width (dashed) against cumulative FLOPs per order; returns the Axes."""
        from scaling.plots.suggest_figure import plot_replay  # lazy: drawing (matplotlib) is optional

        return plot_replay(self, ax if ax is not None else new_axes(figsize=(6.4, 4.2)))


def _answer(fit: FitResult, target: float, assumptions: ComputeAssumptions) -> float:
    """log10 FLOPs of 'scale every axis' (inf when unreachable)."""

    p = project_scale(fit, target, compute=assumptions)
    return math.log10(p.compute.flops) if p.reachable and p.compute is not None else math.inf


@dataclass(frozen=True)
class _Setup:
    """What every order of a replay shares: the split of the grid, the full grid's answer, the settings."""

    form: str
    target: Target
    start: pd.DataFrame  # the runs the replay starts from
    hidden: pd.DataFrame  # the runs it adds back
    assumptions: ComputeAssumptions  # the full grid's, at its reference point: every step answers in them
    truth: float  # log10 FLOPs needed on the full grid
    sigma: float  # seed-to-seed noise of the full grid
    n_boot: int
    seed: int
    level: float
    n_outcomes: int

    def step(self, frame: pd.DataFrame) -> tuple[FitResult, Preposterior, float, float]:
        """Fit on ``frame``; (fit, preposterior, error in decades, interval width in decades)."""

        fit = fit_runs(frame, self.form, metric=self.target.metric)
        value = quantity_fn(fit, "scale", self.target.value, None, None)
        pre = Preposterior(fit, frame, value, n_boot=self.n_boot, seed=self.seed, level=self.level, sigma=self.sigma,
                           group="run_id", n_outcomes=self.n_outcomes)
        flops = flops_along_scale(fit, None, None, self.assumptions)
        lo, hi = flops(pre.before.lower), flops(pre.before.upper)
        width = math.log10(hi) - math.log10(lo) if lo > 0 and hi > 0 else math.inf
        return fit, pre, abs(_answer(fit, self.target.value, self.assumptions) - self.truth), width


def _setup(runs: pd.DataFrame | None, target: str, form: str, start_max_hours: float, *, n_boot: int, seed: int,
           level: float, n_outcomes: int) -> _Setup:
    """The grid (one row per run), its answer under ``form`` and the split at ``start_max_hours``."""

    tgt = resolve_target(target)
    grid = one_per_run(runs[runs["metric"] == tgt.metric] if runs is not None else load_runs(metric=tgt.metric))
    if "pretrain_flops" not in grid or grid["pretrain_flops"].isna().any():
        raise ScalingError("the replay needs every run's recorded pretrain_flops")
    full = fit_runs(grid, form, metric=tgt.metric)
    training = from_grid(grid)
    if training is None:
        raise ScalingError("the replay needs every run's images seen (samples_seen)")
    # fixed: every step answers the full grid's question
    assumptions = training.at(reference_point(full))
    truth = _answer(full, tgt.value, assumptions)
    if not math.isfinite(truth):
        raise ScalingError(f"the full grid does not reach {tgt.name} under {form}: nothing to replay toward")
    sigma, _ = seed_sigma(full, grid)
    start_mask = grid["data_hours"] <= start_max_hours * (1 + 1e-9)
    start, hidden = grid[start_mask], grid[~start_mask]
    if len(hidden) == 0 or len(start) < 10:
        raise ScalingError(f"start_max_hours={start_max_hours:g} leaves {len(start)} start and {len(hidden)} hidden "
                           "runs: choose a split with both")
    return _Setup(form, tgt, start, hidden, assumptions, truth, sigma, n_boot, seed, level, n_outcomes)


# An order: (runs so far, runs still hidden, the fit and preposterior on the runs so far) -> run_id to add next.
Choose = Callable[[pd.DataFrame, pd.DataFrame, FitResult, Preposterior], str]


def _trace(setup: _Setup, order: str, choose: Choose, progress: Progress | None) -> ReplayTrace:
    """Add the hidden runs back one at a time in ``order``; the error and width after each."""

    current, remaining = setup.start.copy(), setup.hidden.copy()
    rows, cum = [], 0.0
    fit, pre, error, width = setup.step(current)
    rows.append({"step": 0, "run_id": None, "label": "start", "flops_added": 0.0, "cumulative_flops": 0.0,
                 "error_decades": error, "width_decades": width})
    n = len(setup.hidden)
    for step in range(1, n + 1):
        rid = choose(current, remaining, fit, pre)
        row = remaining[remaining["run_id"] == rid]
        current = pd.concat([current, row], ignore_index=True)
        remaining = remaining[remaining["run_id"] != rid]
        cum += float(row["pretrain_flops"].iloc[0])
        fit, pre, error, width = setup.step(current)
        r = row.iloc[0]
        rows.append({"step": step, "run_id": rid, "label": f"{r['arch']} {r['image_px']:.0f}px "
                     f"{r['data_hours']:.4g}h seed {r['subset_seed']}", "flops_added": float(r["pretrain_flops"]),
                     "cumulative_flops": cum, "error_decades": error, "width_decades": width})
        if progress is not None:
            progress(f"replay {order}", step, n)
    return ReplayTrace(order, pd.DataFrame(rows))


def _suggested(workers: int) -> Choose:
    """The hidden run with the largest expected shrinkage of the interval per recorded FLOP."""

    def pick(current: pd.DataFrame, remaining: pd.DataFrame, fit: FitResult, pre: Preposterior) -> str:
        cands = candidates_from_rows(remaining, current, fit.axes, None, "hidden runs")
        before = pre.before.width
        after = after_all(pre, [c.point for c in cands], workers=workers)
        value = [(before - iv.width) / c.flops if math.isfinite(iv.width) else -math.inf
                 for c, iv in zip(cands, after, strict=True)]
        return str(cands[int(np.argmax(value))].run["run_id"])

    return pick


def _naive(current: pd.DataFrame, remaining: pd.DataFrame, fit: FitResult, pre: Preposterior) -> str:
    """The largest model first: parameters, then hours, then px."""

    order = remaining.sort_values(["n_params", "data_hours", "image_px", "subset_seed"],
                                  ascending=[False, False, False, True])
    return str(order["run_id"].iloc[0])


def _random_order(hidden: pd.DataFrame, seed: int) -> Choose:
    """The hidden runs in a random permutation drawn with ``seed``."""

    perm = list(np.random.default_rng(seed).permutation(hidden["run_id"].to_numpy()))

    def pick(current: pd.DataFrame, remaining: pd.DataFrame, fit: FitResult, pre: Preposterior) -> str:
        left = set(remaining["run_id"])
        return str(next(r for r in perm if r in left))

    return pick


def suggest_replay(
    runs: pd.DataFrame | None = None,
    target: str = DEFAULT_TARGET,
    *,
    form: str = DEFAULT_FORM,
    start_max_hours: float = 50.0,
    n_boot: int = 100,
    n_outcomes: int = 2,
    n_random: int = 5,
    threshold: float = 0.1,
    seed: int = 0,
    level: float = DEFAULT_LEVELS[0],
    workers: int = 1,
    progress: Progress | None = None,
) -> ReplayResult:
    """Replay the run database's grid (default: the shipped one): start from the runs with at most
    ``start_max_hours`` hours, add the others back in the suggested, naive (largest model first) and
    ``n_random`` random orders; error and interval width of the 'scale every axis' FLOPs against
    cumulative FLOPs. ``threshold``: the error (decades) at which the FLOPs ratio is reported."""

    t0 = time.perf_counter()
    setup = _setup(runs, target, form, start_max_hours, n_boot=n_boot, seed=seed, level=level, n_outcomes=n_outcomes)
    orders = [("suggested", _suggested(workers)), ("naive", _naive)]
    orders += [(f"random {s}", _random_order(setup.hidden, 1000 + s)) for s in range(n_random)]
    traces = tuple(_trace(setup, order, choose, progress) for order, choose in orders)
    notes: list[str] = []
    if n_boot < 100:
        notes.append(f"only {n_boot} resamples per step: interval widths and choices are noisy")
    return ReplayResult(form, setup.target, f"data_hours <= {start_max_hours:g}", len(setup.start), len(setup.hidden),
                        10.0**setup.truth, threshold, traces, n_boot, seed, tuple(notes),
                        time.perf_counter() - t0)


def replay_thresholds(result: ReplayResult, errors: Sequence[float]) -> pd.DataFrame:
    """FLOPs to reach each error, per order, and the ratios to the suggested order."""
    rows = []
    for e in errors:
        f = result.flops_to_reach(e)
        rows.append({"error_decades": e, **{f"flops.{k}": v for k, v in f.items()},
                     **{f"ratio.{k}": v for k, v in result.ratios(e).items()}})
    return pd.DataFrame(rows)
