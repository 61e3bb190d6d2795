"""What ``scaling.suggest`` returns: the candidates ranked by expected shrinkage of a projection's interval
per pretraining FLOP (``SuggestResult``), one ``CandidateScore`` each."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from scaling.core.display import Text, new_axes
from scaling.core.jsonable import jsonable
from scaling.core.results import Result
from scaling.core.targets import Target
from scaling.forms.result import FitResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.suggest/v1"


@dataclass(frozen=True)
class CandidateScore:
    """One candidate run: what it costs and what it is expected to do to the interval."""

    rank: int
    label: str
    point: dict[str, float]
    flops: float  # pretraining FLOPs of the run
    beyond: tuple[str, ...]  # axes on which it lies past the trained grid
    run: dict[str, Any]
    after: tuple[float, float]  # expected interval after training it (mean bounds over the simulated outcomes)
    width_after: float  # in the result's unit
    shrinkage: float  # width before - expected width after, in the result's unit
    value_per_flop: float  # shrinkage / FLOPs
    n_ok: int  # resamples refitted (the fewest over the outcome draws)

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "label": self.label, "point": self.point, "pretrain_flops": self.flops,
                "beyond": list(self.beyond), "run": self.run,
                "interval_after": {"lower": self.after[0], "upper": self.after[1]},
                "width_after": self.width_after, "shrinkage": self.shrinkage,
                "value_per_flop": self.value_per_flop, "resamples_fitted": self.n_ok}


@dataclass(frozen=True)
class SuggestResult(Result):
    """Candidate runs ranked by expected shrinkage of the projection's interval per pretraining FLOP."""

    target: Target
    form: str
    question: str  # 'scale' | 'at'
    quantity: str  # what the interval is of, in words
    unit: str  # unit of widths and shrinkage
    level: float
    n_boot: int
    n_outcomes: int
    seed: int
    sigma: float  # seed-to-seed noise of y used to simulate outcomes
    sigma_source: str
    before: tuple[float, float]  # the interval now
    width_before: float
    estimate: float | None  # the quantity on the full data
    scores: tuple[CandidateScore, ...]  # ranked, best first
    n_candidates: int  # before the budget
    budget: float | None
    over_budget: int
    top: int
    method: str
    notes: tuple[str, ...]
    seconds: float
    refits: int
    fit: FitResult | None = field(repr=False, compare=False, default=None)  # the fit of the current data
    grid: pd.DataFrame | None = field(repr=False, compare=False, default=None)

    @property
    def best(self) -> CandidateScore | None:
        return self.scores[0] if self.scores else None

    @property
    def chosen(self) -> tuple[CandidateScore, ...]:
        """The top candidates (``top`` of them)."""
        return self.scores[: self.top]

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate, ranked: FLOPs, the interval after, its width, shrinkage and value per FLOP."""
        rows = []
        for s in self.scores:
            rows.append({"rank": s.rank, "candidate": s.label, **{f"x.{k}": v for k, v in s.point.items()},
                         "pretrain_flops": s.flops, "beyond": ",".join(s.beyond),
                         "lower_after": s.after[0], "upper_after": s.after[1], "width_after": s.width_after,
                         "width_before": self.width_before, "shrinkage": s.shrinkage,
                         "value_per_flop": s.value_per_flop})
        return pd.DataFrame(rows).set_index("rank") if rows else pd.DataFrame()

    def to_dict(self) -> dict[str, Any]:
        """Exactly what ``scaling suggest --json`` prints."""
        return jsonable({
            "schema": SCHEMA,
            "target": self.target.to_dict() if self.target is not None else None,
            "form": self.form,
            "question": self.question,
            "quantity": self.quantity,
            "unit": self.unit,
            "level": self.level,
            "method": self.method,
            "n_resamples": self.n_boot,
            "n_outcomes": self.n_outcomes,
            "seed": self.seed,
            "seed_noise": {"sigma": self.sigma, "source": self.sigma_source},
            "estimate": self.estimate,
            "interval_before": {"lower": self.before[0], "upper": self.before[1]},
            "width_before": self.width_before,
            "budget": self.budget,
            "n_candidates": self.n_candidates,
            "over_budget": self.over_budget,
            "top": self.top,
            "candidates": [s.to_dict() for s in self.scores],
            "notes": list(self.notes),
            "refits": self.refits,
            "seconds": self.seconds,
        })

    def summary(self) -> Text:
        lo, hi = self.before
        head = (f"What to train next for {self.quantity} ({self.form}, {100 * self.level:g}% interval now "
                f"[{_fmt(lo)}, {_fmt(hi)}], width {_fmt(self.width_before)} {self.unit}); "
                f"{len(self.scores)} candidates ranked by expected shrinkage per pretraining FLOP")
        lines = [head]
        for s in self.chosen:
            lines.append(f"{s.rank:>3}. {s.label}: {s.flops:.3g} FLOPs, width after {_fmt(s.width_after)}, "
                         f"shrinkage {_fmt(s.shrinkage)} {self.unit}, {s.value_per_flop:.3g} per FLOP")
        lines.append(f"outcomes simulated from the bootstrap fits plus seed noise sigma={self.sigma:.3g} "
                     f"({self.sigma_source}); {self.n_boot} resamples, {self.n_outcomes} outcome draws each")
        lines += [f"note: {n}" for n in self.notes]
        return Text("\n".join(lines))

    def __repr__(self) -> str:
        best = self.best.label if self.best else None
        return (f"SuggestResult(form={self.form!r}, question={self.question!r}, candidates={len(self.scores)}, "
                f"width_before={self.width_before:.3g}, best={best!r})")

    def plot(self, ax: Axes | None = None) -> Axes:
        """The candidates on the iso-accuracy map (``scaling.plots.suggest_figure``); returns the Axes."""
        from scaling.plots.draw_fits import ISO_FIGSIZE  # lazy: drawing (matplotlib) is optional
        from scaling.plots.suggest_figure import (  # lazy: drawing (matplotlib) is optional
            plot_suggest_map,
            suggest_map_data,
        )

        return plot_suggest_map(suggest_map_data(self), ax if ax is not None else new_axes(figsize=ISO_FIGSIZE))


def _fmt(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:.3g}"
