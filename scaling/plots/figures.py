"""The study's figures in one call each: the data is computed by the library (fits, projections, backtests,
bootstraps), the figure is drawn on demand. ``scaling plot KIND`` renders these.

    from scaling import plots
    fig = plots.iso_figure(target="human-top5")       # a FigureResult
    fig.plot(ax)                                        # draw on your own axes, or
    fig.save("iso.png")                                 # write .png/.pdf/.svg byte-reproducibly
    fig.to_dict()                                       # the numbers behind it (what --json prints)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from runs_db import RunDB, open_db
from scaling.allocation.mae import optimal_allocation
from scaling.allocation.methods import compute_optimal
from scaling.compute.costs import cost_model
from scaling.compute.training_length import from_grid
from scaling.core.direction import direction
from scaling.core.jsonable import jsonable
from scaling.core.targets import default_target_for, resolve_target
from scaling.data.tables import load_runs
from scaling.defaults import (
    DEFAULT_BACKTEST_FORMS,
    DEFAULT_EVAL_SET,
    DEFAULT_FORM,
    DEFAULT_METRIC,
    DEFAULT_PROTOCOL,
    DEFAULT_SELECTION,
    PAPER_SCENARIO,
)
from scaling.errors import ScalingError
from scaling.fitting import fit
from scaling.forms import get_form
from scaling.plots.curves_data import CurvesData, accuracy_curves_data, metric_label
from scaling.plots.diagnostics_data import (
    BacktestPanels,
    ComputeDistribution,
    FrontierData,
    LossCurves,
    backtest_panels,
    compute_distribution_from_bootstrap,
    default_split,
    frontier_data,
    loss_curves_data,
)
from scaling.plots.draw_diagnostics import (
    backtest_figsize,
    plot_backtest_splits,
    plot_compute_distribution,
    plot_frontier,
    plot_loss_curves,
)
from scaling.plots.draw_fits import ISO_FIGSIZE, plot_accuracy_curves, plot_iso_accuracy
from scaling.plots.iso_data import IsoData, PointInterval, bootstrap_interval, iso_accuracy_data
from scaling.plots.isoflop_figure import ISOFLOP_FIGSIZE, IsoflopFigure, isoflop_data, plot_isoflop
from scaling.plots.labels import axis_label
from scaling.plots.style import figure_format, new_figure, png_bytes, save_figure
from scaling.questions.derived import projection_quantities
from scaling.questions.projection import project_at, project_axis, project_scale, reference_point
from scaling.questions.workflow import target_of
from scaling.selection.workflow import backtest
from scaling.uncertainty.resampling import fitted_frame, resample

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from scaling.compute.training_length import TrainingLength
    from scaling.core.targets import Target
    from scaling.forms.result import FitResult
    from scaling.questions.projection import Projection

BAND_KINDS = ("confidence", "prediction", "none")
ISO_MODES = ("scale", "solve", "at", "none")
INTERVALS = ("auto", "band", "bootstrap", "none")
QUESTIONS = ("scale", "solve")
# What a figure draws from: the data object of each kind.
FigureData: TypeAlias = (CurvesData | IsoData | BacktestPanels | ComputeDistribution | FrontierData | LossCurves
                         | IsoflopFigure)


@dataclass(frozen=True)
class FigureResult:
    """One figure's data and how to draw it."""

    kind: str  # data | resolution | iso | backtest | bootstrap | frontier | loss
    data: FigureData = field(repr=False)  # the figure's data object
    info: dict[str, Any] = field(default_factory=dict, repr=False)  # more numbers behind it (form, notes, ...)
    figsize: tuple[float, float] | None = None
    draw_options: dict[str, Any] = field(default_factory=dict, repr=False)
    path: str | None = None  # where ``save`` wrote it

    @property
    def schema(self) -> str:
        return f"scaling.plot.{self.kind}/v1"

    @property
    def notes(self) -> list[str]:
        return list(self.numbers().get("notes", []) or [])

    def numbers(self) -> dict[str, Any]:
        """The numbers behind the figure (the data's summary and the extra items)."""
        return {**self.data.summary(), **self.info}

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``scaling plot KIND --json`` prints."""
        return jsonable({"schema": self.schema, "path": self.path, **self.numbers()})

    def to_frame(self) -> pd.DataFrame:
        """The scalar numbers behind the figure, one row each."""
        flat = {k: v for k, v in self.numbers().items() if not isinstance(v, dict | list | tuple)}
        return pd.DataFrame({"value": pd.Series(flat, dtype=object)})

    def summary(self) -> str:
        return "\n".join([f"figure {self.kind}" + (f" -> {self.path}" if self.path else ""),
                          self.to_frame().to_string()])

    def plot(self, ax: Axes | None = None) -> Axes | np.ndarray:
        """Draw on ``ax`` (a new figure when None); returns the Axes (multi-panel figures, ``backtest`` over
        several splits and ``loss`` at several image sizes, put their panels in its place and return them)."""
        if ax is None:
            _, ax = new_figure(figsize=self.figsize)
        return _DRAW[self.kind](self.data, ax, **self.draw_options)

    def save(self, path: str | Path, *, dpi: float | None = None) -> FigureResult:
        """Write the figure to ``path`` (.png, .pdf or .svg, chosen by the suffix); the result records it."""
        figure_format(path)
        fig, ax = new_figure(figsize=self.figsize)
        self.plot(ax)
        save_figure(fig, path, dpi=dpi)
        return replace(self, path=str(path))

    def _repr_png_(self) -> bytes:
        """Jupyter shows the figure inline (IPython's display hook for images)."""
        fig, ax = new_figure(figsize=self.figsize)
        self.plot(ax)
        return png_bytes(fig)

    def __repr__(self) -> str:
        return f"FigureResult(kind={self.kind!r}{', path=' + repr(self.path) if self.path else ''})"


# kind -> the function that draws its data
_DRAW: dict[str, Callable[..., Any]] = {
    "data": plot_accuracy_curves, "resolution": plot_accuracy_curves, "iso": plot_iso_accuracy,
    "backtest": plot_backtest_splits, "bootstrap": plot_compute_distribution, "frontier": plot_frontier,
    "loss": plot_loss_curves, "isoflop": plot_isoflop}


def _choice(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ScalingError(f"unknown {what} {value!r}; use {', '.join(allowed[:-1])} or {allowed[-1]}")
    return value


def _runs(runs: pd.DataFrame | None, *, metric: str, selection: str, protocol: str | None,
          eval_set: str | None) -> pd.DataFrame:
    """``runs``, or the run database's evaluations of ``metric`` when none are given."""

    if runs is not None:
        return runs
    return load_runs(metric=metric, protocol=protocol or DEFAULT_PROTOCOL, eval_set=eval_set or DEFAULT_EVAL_SET,
                     selection=selection)


def _fit(runs: pd.DataFrame | None, *, metric: str, form: str, selection: str, protocol: str | None,
         eval_set: str | None, table: Table | None = None) -> FitResult:
    """``form`` fitted to the run database's ``metric`` (``runs``, else the database's), or to a table
    (``table``: its response, axes and kind, with ``runs`` the table)."""
    if table is not None:
        if runs is None:
            raise ScalingError(f"y={table.y!r} names a column of a table: pass the table")
        return fit(runs, form, y=table.y, axes=table.axes, kind=table.kind)
    return fit(_runs(runs, metric=metric, selection=selection, protocol=protocol, eval_set=eval_set), form,
               metric=metric)


@dataclass(frozen=True)
class Table:
    """A table's response, axes and kind (``y=``, ``axes=``, ``kind=`` of the figure functions)."""

    y: str
    axes: tuple[str, ...] | None = None
    kind: str | None = None

    @classmethod
    def of(cls, y: str | None, axes: Sequence[str] | None, kind: str | None) -> Table | None:
        """The table named by ``y``/``axes``/``kind``, or None (the run database) without ``y``."""
        if y is None:
            if axes is not None or kind is not None:
                raise ScalingError("axes= and kind= describe a table: name its response with y= too")
            return None
        return cls(y, None if axes is None else tuple(axes), kind)


def _target_fit(runs: pd.DataFrame | None, *, target: str, metric: str | None, form: str, selection: str,
                protocol: str | None, eval_set: str | None) -> tuple[Target, FitResult]:
    """The target, and ``form`` fitted on the target's metric, protocol and eval set (to ``runs``, or to the run
    database's evaluations)."""
    tgt = resolve_target(target, metric=metric, eval_set=eval_set, protocol=protocol)
    return tgt, _fit(runs, metric=tgt.metric, form=form, selection=selection, protocol=tgt.protocol,
                     eval_set=tgt.eval_set)


def _target_words(tgt: Target, fit: FitResult | None = None) -> str:
    """'human-top5 (95.0% top5)'; a loss target by its name ('loss 2.2')."""
    if fit is not None and not direction(fit.kind).is_fraction:
        return tgt.name
    return f"{tgt.name} ({100 * tgt.value:.1f}% {tgt.metric})"


def _training(fit: FitResult) -> TrainingLength:
    """The training-length rule of the grid ``fit`` was fitted to (the compute model)."""
    training = from_grid(fitted_frame(fit))
    if training is None:
        raise ScalingError("the grid has no samples_seen to derive passes over the data from (compute model)")
    return training


def _curves_figure(kind: str, runs: pd.DataFrame | None, *, group_by: str | None, where: Mapping[str, float | str],
                   metric: str, form: str, band: str, level: float, selection: str, protocol: str | None,
                   eval_set: str | None, table: Table | None = None, x_axis: str | None = None) -> FigureResult:
    """Figures 1 and 2: ``form`` fitted on ``metric`` (or on ``table``), one curve per ``group_by`` over the runs
    where ``where`` holds, with its ``band`` ('none': no band)."""
    _choice(band, BAND_KINDS, "band")
    fit = _fit(runs, metric=metric, form=form, selection=selection, protocol=protocol, eval_set=eval_set,
               table=table)
    data = accuracy_curves_data(fitted_frame(fit), fit, group_by=group_by, where=where, x_axis=x_axis,
                                band=None if band == "none" else band, level=level)
    return FigureResult(kind, data)


def accuracy_figure(runs: pd.DataFrame | None = None, *, metric: str = DEFAULT_METRIC, form: str = DEFAULT_FORM,
                    band: str = "confidence", level: float = 0.95, image_px: float = 224,
                    selection: str = DEFAULT_SELECTION, protocol: str | None = None,
                    eval_set: str | None = None, y: str | None = None, axes: Sequence[str] | None = None,
                    kind: str | None = None, x_axis: str | None = None, group_by: str | None = None,
                    where: Mapping[str, float] | None = None) -> FigureResult:
    """Figure 1: accuracy vs pretraining hours at ``image_px``, one colour per model size, fit and band.

    Of any table (``runs`` the table, ``y``, ``axes`` and ``kind`` as ``scaling.fit`` takes them): its response
    against ``x_axis`` (default its last axis), one curve per level of ``group_by`` (default its first other
    axis), the rows where ``where`` holds, in the table's words (a loss in its units, levels as N=3.2e7)."""

    table = Table.of(y, axes, kind)
    if table is not None:
        return _curves_figure("data", runs, group_by=group_by, where=dict(where or {}), metric=metric, form=form,
                              band=band, level=level, selection=selection, protocol=protocol, eval_set=eval_set,
                              table=table, x_axis=x_axis)
    return _curves_figure("data", runs, group_by=group_by or "arch", where={"image_px": image_px, **(where or {})},
                          metric=metric, form=form, band=band, level=level, selection=selection, protocol=protocol,
                          eval_set=eval_set, x_axis=x_axis)


def resolution_figure(runs: pd.DataFrame | None = None, *, metric: str = DEFAULT_METRIC, form: str = DEFAULT_FORM,
                      band: str = "confidence", level: float = 0.95, arch: str = "vit_h14",
                      selection: str = DEFAULT_SELECTION, protocol: str | None = None,
                      eval_set: str | None = None) -> FigureResult:
    """Figure 2: the effect of image resolution for one model size (ViT-H/14 at 224, 448 and 476 px)."""

    return _curves_figure("resolution", runs, group_by="image_px", where={"arch": arch}, metric=metric, form=form,
                          band=band, level=level, selection=selection, protocol=protocol, eval_set=eval_set)


def iso_figure(runs: pd.DataFrame | None = None, *, target: str | None = None, metric: str | None = None,
               form: str = DEFAULT_FORM, mode: str = "scale", axis: str | None = None,
               at: Mapping[str, float] | None = None, image_px: float | None = None, interval: str = "auto",
               level: float = 0.95, n_boot: int = 1000, seed: int = 0, group: str | None = "auto",
               selection: str = DEFAULT_SELECTION, protocol: str | None = None, eval_set: str | None = None,
               progress: Callable[[str, int, int], None] | None = None, y: str | None = None,
               axes: Sequence[str] | None = None, kind: str | None = None, map_axes: Sequence[str] | None = None,
               held: Mapping[str, float] | None = None) -> FigureResult:
    """Figure 3: iso-accuracy contours over (parameters, hours) with the target and the projection
    (``mode``: scale | solve | at | none) and its interval (band | bootstrap | none | auto).

    ``target`` defaults to the data's own (human-top5 on the run database; none on a table, whose map then has
    no target contour and no projection but ``mode='at'``'s); ``axis`` (solve) and ``at`` to the data's too.
    Of any table (``y``, ``axes``, ``kind``): the map over ``map_axes`` (across, up; default its last and first
    axes), its other axes at ``held`` (default the projection's values), in the table's words."""

    _choice(mode, ISO_MODES, "mode")
    _choice(interval, INTERVALS, "interval")
    table = Table.of(y, axes, kind)
    tgt: Target | None
    if table is None:
        tgt, fit = _target_fit(runs, target=target or default_target_for(eval_set), metric=metric, form=form,
                               selection=selection, protocol=protocol, eval_set=eval_set)
    else:
        fit = _fit(runs, metric=DEFAULT_METRIC, form=form, selection=selection, protocol=None, eval_set=None,
                   table=table)
        tgt = target_of(fit, target, metric)
    axis = axis or (fit.dataset.solve_axis if fit.dataset is not None else "data_hours")
    projection = _iso_projection(fit, tgt, mode, axis, at)
    if interval == "auto":
        interval = "band" if get_form(form).has_band else "bootstrap"
    chosen: PointInterval | str | None = None if interval == "none" or tgt is None else "band"
    if interval == "bootstrap" and tgt is not None and projection is not None and projection.point is not None:
        derived = projection_quantities(tgt.value, reference=reference_point(fit), at=projection.point,
                                        scale=mode == "scale", solve_axis=axis if mode == "solve" else None)
        boot = resample(fit, n_boot=n_boot, seed=seed, levels=(level,), group=group, derived=derived, progress=progress)
        chosen = bootstrap_interval(boot, projection, level=level, map_axes=map_axes)
    data = iso_accuracy_data(fit, grid=fit.data, image_px=image_px, target=tgt, projection=projection,
                             interval=chosen, level=level, map_axes=map_axes, held=held)
    if tgt is None and mode in ("scale", "solve"):
        data = replace(data, notes=(*data.notes, f"no target: no {mode} projection drawn (give a target)"))
    return FigureResult("iso", data, figsize=ISO_FIGSIZE)


def _iso_projection(fit: FitResult, tgt: Target | None, mode: str, axis: str, at: Mapping[str, float] | None
                    ) -> Projection | None:
    """The projection the map draws: every axis scaled, one axis solved (both need a target), or the surface at
    ``at`` (default: the data's evaluation point, the paper's scenario on the run database); None for 'none'."""
    if mode == "at":
        point = dict(at) if at is not None else (fit.dataset.evaluation_point if fit.dataset is not None
                                                 else dict(PAPER_SCENARIO))
        return project_at(fit, point, target=None if tgt is None else tgt.value)
    if tgt is None or mode == "none":
        return None
    return project_scale(fit, tgt.value) if mode == "scale" else project_axis(fit, tgt.value, axis)


def backtest_figure(runs: pd.DataFrame | None = None, *, forms: Sequence[str] | None = DEFAULT_BACKTEST_FORMS,
                    split: str | None = None, metric: str = DEFAULT_METRIC, selection: str = DEFAULT_SELECTION,
                    protocol: str | None = None, eval_set: str | None = None, y: str | None = None,
                    axes: Sequence[str] | None = None, kind: str | None = None,
                    **options: Any) -> FigureResult:
    """Figure 4: backtest parity, each form fitted without the held-out runs, predicted vs observed: one panel
    per split that some form could fit (``split``: only that split, a name or a pooled kind). Of any table
    (``runs`` the table, ``y``, ``axes``, ``kind``) in its units; ``options`` go to ``scaling.backtest``
    (rolling_axis, level_tol, ...)."""

    table = Table.of(y, axes, kind)
    if table is None:
        runs = _runs(runs, metric=metric, selection=selection, protocol=protocol, eval_set=eval_set)
        result = backtest(runs, forms, metric=metric, **options)
        frame = runs[runs["metric"] == metric].reset_index(drop=True)
        label = metric_label(frame)
    else:
        if runs is None:
            raise ScalingError(f"y={table.y!r} names a column of a table: pass the table")
        result = backtest(runs, forms, y=table.y, axes=table.axes, kind=table.kind or "accuracy", **options)
        frame, label = result.data if result.data is not None else runs, ""
    data = backtest_panels(result, frame, split=split, metric_label=label)
    info = {"split": split or default_split(result), "notes": list(result.notes), "ranking": result.ranking,
            "common_splits": result.common_splits}
    return FigureResult("backtest", data, info, figsize=backtest_figsize(data))


def bootstrap_figure(runs: pd.DataFrame | None = None, *, target: str | None = None, metric: str | None = None,
                     form: str = DEFAULT_FORM, question: str = "scale", n_boot: int = 1000, seed: int = 0,
                     group: str | None = "auto", level: float = 0.90, selection: str = DEFAULT_SELECTION,
                     protocol: str | None = None, eval_set: str | None = None,
                     progress: Callable[[str, int, int], None] | None = None, y: str | None = None,
                     axes: Sequence[str] | None = None, kind: str | None = None,
                     axis: str | None = None) -> FigureResult:
    """Figure 5: the bootstrap distribution of the pretraining compute needed to reach the target (default:
    the data's own). A table (``y``, ``axes``, ``kind``) has no compute model: the figure shows the value of
    ``axis`` (default the table's solved axis) that ``question='solve'`` needs, or the factor on every axis
    that ``'scale'`` needs, in the table's words."""

    _choice(question, QUESTIONS, "question")
    table = Table.of(y, axes, kind)
    if table is None:
        tgt, fit = _target_fit(runs, target=target or default_target_for(eval_set), metric=metric, form=form,
                               selection=selection, protocol=protocol, eval_set=eval_set)
        compute: Any = _training(fit)
        axis = "data_hours"
    else:
        fit = _fit(runs, metric=DEFAULT_METRIC, form=form, selection=selection, protocol=None, eval_set=None,
                   table=table)
        found = target_of(fit, target, metric)
        if found is None:
            raise ScalingError("the bootstrap figure shows what reaching a target needs: give a target (--target, "
                               "target=) for a table")
        tgt, compute = found, None
        axis = axis or (fit.dataset.solve_axis if fit.dataset is not None else fit.axes[-1])
    derived = projection_quantities(tgt.value, reference=reference_point(fit), scale=question == "scale",
                                    solve_axis=axis if question == "solve" else None, compute=compute)
    boot = resample(fit, n_boot=n_boot, seed=seed, levels=(level,), group=group, derived=derived, progress=progress)
    key = f"{question}.flops" if compute is not None else ("scale.factor" if question == "scale" else f"solve.{axis}")
    data = compute_distribution_from_bootstrap(boot, key=key, target=tgt.value, target_label=_target_words(tgt, fit),
                                               level=level)
    what = ("", "FLOPs") if compute is not None else (
        ("Scale factor on every axis", "x") if question == "scale" else (axis_label(axis), ""))
    data = replace(data, form=fit.form, question=question, what=what)
    info = {"form": fit.form, "question": question, "seed": seed, "n_ok": boot.n_ok, "notes": list(boot.notes)}
    return FigureResult("bootstrap", data, info, figsize=(6.4, 4.6))


def frontier_figure(runs: pd.DataFrame | None = None, *, target: str | None = None, metric: str | None = None,
                    form: str = DEFAULT_FORM, rows: int = 9, selection: str = DEFAULT_SELECTION,
                    protocol: str | None = None, eval_set: str | None = None) -> FigureResult:
    """The compute-optimal frontier: at each parameter count, the cheapest (hours, px) reaching the target
    (default: the eval set's human target, ``scaling.core.targets.default_target_for``)."""

    tgt, fit = _target_fit(runs, target=target or default_target_for(eval_set), metric=metric, form=form,
                           selection=selection, protocol=protocol, eval_set=eval_set)
    training = _training(fit)
    result = optimal_allocation(fit, tgt.value, training.for_allocation(reference_point(fit)), frontier_rows=rows)
    data = frontier_data(result, target_label=_target_words(tgt))
    return FigureResult("frontier", data, {"form": fit.form, "notes": list(result.notes)})


def loss_figure(db: RunDB | str | Path | None = None, *, runs: Sequence[str] | None = None, fraction: float = 1.0,
                seed: int = 1, key: str = "train_loss", phase: str = "pretrain", log_x: bool = True) -> FigureResult:
    """Figure 6: MAE pretraining loss curves from the run database's history, coloured by model size.
    ``db``: a ``runs_db.RunDB``, a path, or None (the default database)."""

    database = db if isinstance(db, RunDB) else open_db(db)
    data = loss_curves_data(database, runs=list(runs) if runs else None, data_fraction=fraction, subset_seed=seed,
                            key=key, phase=phase)
    two = data.frame["image_px"].round().nunique() > 1  # 224 px and larger images in two panels
    return FigureResult("loss", data, figsize=(10.0, 4.9) if two else None, draw_options={"log_x": log_x})


def isoflop_figure(data: pd.DataFrame, *, y: str, axes: Sequence[str], kind: str = "loss", cost: str | None = None,
                   budget: float | None = None, method: str = "all", **options: Any) -> FigureResult:
    """The IsoFLOP figure of ``scaling.compute_optimal`` on ``data`` (``options``: its keywords) at ``budget``
    (default: the table's largest cost, or its largest --budget-column value)."""
    if budget is None:
        column = options.get("budget_column")
        values = (data[column] if column in data.columns else None) if column else \
            (cost_model(cost, axes).cost({a: data[a].to_numpy(dtype=float) for a in axes}) if cost else None)
        if values is None:
            raise ScalingError("the IsoFLOP figure needs budgets: a cost model (--cost) or a --budget-column")
        budget = float(np.nanmax(pd.to_numeric(pd.Series(np.ravel(values)), errors="coerce")))
    res = compute_optimal(data, budget, method=method, y=y, axes=axes, kind=kind, cost=cost, **options)
    notes = [f"{a.method}: no answer ({a.reason})" for a in res.answers if not a.available]
    return FigureResult("isoflop", isoflop_data(res), {"notes": notes}, ISOFLOP_FIGSIZE)
