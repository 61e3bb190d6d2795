"""The answer to "what does it take?": a frozen report of a fit's projections, with the compute they imply,
the optional compute-optimal allocation and bootstrap intervals, as text, a table, JSON and a figure.

``scaling.project`` builds it; ``scaling project`` prints ``to_dict()`` with ``--json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scaling.core.display import Text, new_axes, offscreen
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.errors import ScalingError
from scaling.forms import get_form
from scaling.questions.projection import Projection

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes

    from scaling.compute.flops import ComputeAssumptions
    from scaling.core.targets import Target
    from scaling.forms.result import FitResult
    from scaling.questions.objects import Answer, Context, Question

SCHEMA = "scaling.project/v1"


@dataclass(frozen=True)
class ProjectionReport(Result):
    target: Target | None  # None: a table with no target asked (only the prediction and the budget answer)
    fit: FitResult = field(repr=False)
    compute_assumptions: ComputeAssumptions | None  # the training-length rule's at the reference point
    projections: tuple[tuple[str, Projection], ...]  # (question, answer)
    optimal: Any = None  # scaling.allocation.mae.OptimalResult
    bootstrap: Any = None  # scaling.uncertainty.bootstrap.BootstrapResult
    figure: str | None = None  # the file the iso-accuracy map was written to
    budget: Any = None  # scaling.allocation.budget.CostOptimum: the best allocation at a given compute
    plans: Any = None  # ((question, scaling.planning.planner.PlanReport or the reason there is none), ...) with plan=
    training_length: Any = None  # scaling.compute.training_length.TrainingLength: the images every answer's run sees
    cost_model: dict[str, Any] | None = None  # the cost the user named (--cost), which prices every answer
    combined: Any = None  # scaling.questions.combined.CombinedAnswer: several forms' answer, or calibrated intervals

    @classmethod
    def of(cls, target: Target | None, ctx: Context, answers: Sequence[tuple[Question, Answer]], bootstrap: Any,
           figure: str | Path | None) -> ProjectionReport:
        """The report of a projection's answers (``scaling.questions.workflow.project``)."""
        fit = ctx.fit
        return cls(
            target=target, fit=fit,
            compute_assumptions=ctx.training.at(ctx.reference) if ctx.training is not None else None,
            projections=tuple((q.label, a) for q, a in answers if isinstance(a, Projection)),
            optimal=next((a for q, a in answers if q.key == "cheapest"), None), bootstrap=bootstrap,
            figure=None if figure is None else str(figure),
            budget=next((a for q, a in answers if q.key == "budget"), None), training_length=ctx.training,
            cost_model=ctx.cost.describe() if ctx.priced_by_cost and ctx.cost is not None else None)

    def answer(self, question: str) -> Projection:
        """The answer to one question ('scale every axis', 'solve data_hours', 'at point')."""
        for label, p in self.projections:
            if label == question:
                return p
        raise KeyError(f"{question!r}; questions: {', '.join(q for q, _ in self.projections)}")

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling project --json`` prints."""
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "figure": self.figure,
            "target": None if self.target is None else self.target.to_dict(),
            "data": dict(self.fit.source),
            "fit": self.fit.describe(),
            "compute_assumptions": None if self.compute_assumptions is None else self.compute_assumptions.__dict__,
            "training_length": None if self.training_length is None else self.training_length.to_dict(),
            "cost_model": self.cost_model,
            "projections": [{"question": label, **p.to_dict()} for label, p in self.projections],
        }
        if self.optimal is not None:
            out["optimal"] = self.optimal.to_dict()
        if self.budget is not None:
            out["budget"] = self.budget.to_dict()
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap.to_dict()
        out["interval_kind"] = self.interval_kind
        if self.combined is not None:
            out["combined"] = self.combined.to_dict()
        if self.plans is not None:
            out["plans"] = [{"question": q, "plan": p if isinstance(p, str) else p.to_dict()} for q, p in self.plans]
        return jsonable(out)

    def to_frame(self) -> pd.DataFrame:
        """One row per question: the point (parameters, hours, px), the prediction there, whether it meets
        the target, the scale factor, decades beyond the data and pretraining FLOPs; with a bootstrap, the
        widest interval of the quantities it resampled for that question."""
        rows = []
        for label, p in self.projections:
            pt = p.point or {}
            row: dict[str, Any] = {"question": label}
            row.update({a: pt.get(a, math.nan) for a in self.fit.axes})
            row.update({
                "predicted": p.predicted if p.predicted is not None else math.nan,
                "meets_target": bool(p.reachable),
                "scale_factor": p.scale_factor if p.scale_factor is not None else math.nan,
                "decades_beyond_data": p.max_decades_beyond if p.max_decades_beyond is not None else math.nan,
                "pretraining_flops": p.compute.flops if p.compute else math.nan,
            })
            if self.cost_model is not None:
                row["cost"] = p.details.get("cost", {}).get("value", math.nan)
            row["caution"] = p.caution or ""
            rows.append(row)
        return pd.DataFrame(rows).set_index("question")

    def summary(self) -> Text:
        """The answers as text: what reaches the target, under which form, and the caveats."""
        t, f = self.target, self.fit
        pct = f.direction.higher_is_better
        frame = self.to_frame().drop(columns="caution")
        metric = t.metric if t is not None else f.source.get("metric") or f.y
        if pct:
            frame["predicted"] = 100 * frame["predicted"]
            frame = frame.rename(columns={"predicted": f"predicted {metric} (%)"})
        lines = [self.title(), frame.to_string(float_format=lambda v: f"{v:.4g}"),
                 f"form {f.form} fitted to {f.n_points} points ({f.y} ~ {', '.join(f.axes)}); "
                 f"{f.direction.limit_name} {'none' if f.ceiling is None else f'{f.ceiling:.4g}'}"]
        if self.training_length is not None:
            lines.append(self.training_note())
        for label, p in self.projections:
            for line in (p.reason, p.caution and f"caution: {p.caution}"):
                if line:
                    lines.append(f"{label}: {line}")
        if self.optimal is not None:
            o = getattr(self.optimal, "optimum", self.optimal)  # OptimalResult (MAE FLOPs) or CostOptimum
            if o.point:
                lines.append("compute-optimal: " + ", ".join(f"{k}={v:.4g}" for k, v in o.point.items())
                             + f" for a cost of {o.cost:.3g}")
        if self.budget is not None:
            lines.append(self.budget.summary())
        if self.bootstrap is not None:
            b = self.bootstrap
            level = max(b.levels)
            lines.append(f"bootstrap of {f.form} ({b.n_ok} of {b.n_requested} resamples, {100 * level:g}% intervals, "
                         "bootstrap only):")
            for name, s in b.derived.items():
                lo, hi = s.intervals[level]
                lines.append(f"  {name}: {s.estimate if s.estimate is not None else math.nan:.4g} "
                             f"[{lo:.4g}, {hi:.4g}]")
        if self.combined is not None:
            lines.append(self.combined.summary())
        for question, p in self.plans or ():
            lines.append(f"{question}: {p}" if isinstance(p, str) else f"{question}: {p.summary()}")
        return Text("\n".join(lines))

    @property
    def interval_kind(self) -> str | None:
        """Which intervals the report shows: 'bootstrap' (resampling runs only), 'calibrated (...)' (widened by
        held-out errors at the answer's distance), or None (no interval)."""
        if self.combined is not None:
            return str(self.combined.interval_kind)
        return "bootstrap" if self.bootstrap is not None else None

    def title(self) -> str:
        """The question the report answers, in words."""
        t = self.target
        if t is None:
            what = self.fit.source.get("metric") or self.fit.y
            return (f"Best allocation at a cost of {self.budget.budget:.3g}" if self.budget is not None
                    and not self.projections else f"Predicted {what} (no target given)")
        if not self.fit.direction.higher_is_better:
            return f"What reaches {t.name}?"  # 'loss 2.2'
        return f"What reaches {t.name} = {100 * t.value:.1f}% {t.metric}?"

    def training_note(self) -> str:
        """Which training-length rule priced the answers, and what it gave each (passes, mask ratio)."""
        rule = self.training_length
        used = [(p.compute.passes, p.compute.mask_ratio, p.compute.training)
                for _, p in self.projections if p.compute is not None]
        if not used and self.compute_assumptions is not None:
            a = self.compute_assumptions
            used = [(a.passes, a.mask_ratio, a.source)]
        parts = [f"{passes:.3g} passes over the frames, mask ratio {mask:g}"
                 + (f", {src.removeprefix('grid: ')}" if rule.rule == "grid" else "")
                 for passes, mask, src in dict.fromkeys(used)]
        head = {"grid": "the grid's recipe", "passes": "fixed passes", "images": f"{rule.value or 0:g} images per run"}
        return f"Training length: {head[rule.rule]} ({'; '.join(parts)})"

    def __repr__(self) -> str:
        answers = "; ".join(
            f"{label}: {'unreachable' if p.point is None else ('meets' if p.reachable else 'misses')}"
            for label, p in self.projections)
        extra = (" +optimal" if self.optimal is not None else "")
        extra += " +budget" if self.budget is not None else ""
        extra += " +bootstrap" if self.bootstrap is not None else ""
        extra += f" +combined({len(self.combined.weights)} forms)" if self.combined is not None else ""
        name = None if self.target is None else self.target.name
        return f"ProjectionReport(target={name!r}, form={self.fit.form!r}, {answers}{extra})"

    def figure_projection(self) -> Projection | None:
        """The answer the figure shows: the first that reached the target, else the first."""
        reached = [p for _, p in self.projections if p.reachable and p.point is not None]
        return reached[0] if reached else (self.projections[0][1] if self.projections else None)

    def iso_data(self, *, projection: Projection | None = None, n: int | None = None,
                 level: float | None = None, map_axes: Sequence[str] | None = None,
                 held: dict[str, float] | None = None) -> Any:
        """The data of the iso map of an answer (``scaling.plots.IsoData``): by default the first that reached
        the target; ``n`` mesh points per axis; ``level`` of the band; ``map_axes`` (across, up; default hours
        and parameters on the run database, a table's last and first axes otherwise) and ``held`` (the other
        axes' values; default the answer's). A table without a target gets the map without a target contour.

        Its interval is the bootstrap's when one ran and resampled that answer, else the closed-form
        confidence band where the form has one."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        if len(self.fit.axes) < 2:
            raise ScalingError(f"the iso map is over two axes; this fit has one ({self.fit.axes[0]})")
        projection = projection or self.figure_projection()
        interval: Any = "band" if get_form(self.fit.form).has_band and self.target is not None else None
        boot = self.bootstrap
        if boot is not None and projection is not None and projection.mode in {"scale", "solve"} and projection.point:
            interval = plots.bootstrap_interval(boot, projection, level=level or max(boot.levels), map_axes=map_axes)
        extra: dict[str, Any] = {} if n is None else {"n": n}
        return plots.iso_accuracy_data(self.fit, grid=self.fit.data, target=self.target, projection=projection,
                                       interval=interval, level=level or 0.95, map_axes=map_axes, held=held,
                                       **extra)

    def plot(self, ax: Axes | None = None, **options: Any) -> Axes:
        """Draw the answer on ``ax`` (a new figure when None); returns the Axes. With a combined answer (an
        ensemble, or calibrated intervals): each form's interval beside the combined one for ``quantity``
        (``scaling.plots.combined_data``); else the iso map (over any two axes of any table), ``options`` going
        to ``iso_data`` (projection, n, level, map_axes, held)."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        if self.combined is not None:
            data = plots.combined_data(self.combined, self.fit.kind, options.get("quantity"))
            ax = ax if ax is not None else new_axes(figsize=(8.5, 2.4 + 0.45 * len(data.rows)))
            return plots.plot_combined(data, ax)
        ax = ax if ax is not None else new_axes(figsize=plots.ISO_FIGSIZE)
        return plots.plot_iso_accuracy(self.iso_data(**options), ax)

    def save_figure(self, path: str | Path, *, dpi: float | None = None) -> Path:
        """Write the report's figure (``plot``) to ``path`` (.png, .pdf or .svg, byte-reproducible)."""
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        with offscreen():  # a figure pyplot does not keep
            ax = self.plot()
        return plots.save_figure(ax.figure, path, dpi=dpi)  # type: ignore[arg-type]
