"""What a figure's numbers are, in the words of the table they come from.

A figure of the run database's grid says "ImageNet top-5 (2% fine-tune, best epoch), %" and "Parameters
(encoder, incl. position embeddings)"; a figure of any other table says what that table holds: its response
column ("loss", in its own units, never a percent) and its axis columns ("Parameters (params)", "tokens"),
with numbers shown as the table's quantity is (``Quantity``: a fraction in percent, anything else as it is).
Legend entries of a level of an axis read ``N=3.2e7``, not ``N=31622776.60168379`` (``level_text``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.ticker import Formatter, FuncFormatter

from scaling.core.direction import direction
from scaling.data.tables import RUNS_Y, is_runs_frame
from scaling.plots.style import COUNT_FORMATTER, HOURS_FORMATTER, PERCENT_FORMATTER, fmt_count, fmt_hours_tick, fmt_px

if TYPE_CHECKING:
    from scaling.forms.result import FitLike

# The run database's axes, with their units.
AXIS_LABELS = {
    "n_params": "Parameters (encoder, incl. position embeddings)",
    "data_hours": "Pretraining data (hours of video at 1 frame/s)",
    "image_px": "Image size (px per side)",
    "pretrain_flops": "Pretraining compute (FLOPs)",
}
# Column names that scaling-law tables commonly use, and what they count (the column's name is kept beside).
AXIS_WORDS = {
    "params": "Parameters", "parameters": "Parameters", "n": "Parameters", "model_size": "Parameters",
    "tokens": "Training tokens", "n_tokens": "Training tokens", "d": "Training data",
    "data": "Training data", "samples": "Samples seen", "examples": "Examples seen", "images": "Images seen",
    "steps": "Training steps", "flops": "Compute (FLOPs)", "compute": "Compute", "c": "Compute",
    "epochs": "Epochs", "hours": "Hours",
}


def metric_label(grid: pd.DataFrame | None = None, *, metric: str | None = None) -> str:
    """'ImageNet top-1 (2% fine-tune, best epoch)' from the grid's protocol/metric/selection columns."""
    def first(col: str) -> str | None:
        if grid is None or col not in grid.columns or grid.empty:
            return None
        values = grid[col].dropna().unique()
        return str(values[0]) if len(values) == 1 else None

    metric = metric or first("metric") or "accuracy"
    pretty = {"top1": "top-1", "top5": "top-5"}.get(metric, metric)
    protocol = first("protocol")
    eval_set = first("eval_set")
    selection = first("selection")
    where = "ImageNet" if eval_set in (None, "imagenet-val") else eval_set
    extras = []
    if protocol == "finetune-in1k-2pct":
        extras.append("2% fine-tune")
    elif protocol:
        extras.append(protocol)
    if selection:
        extras.append(selection.replace("-", " "))
    return f"{where} {pretty}" + (f" ({', '.join(extras)})" if extras else "")


def axis_label(axis: str) -> str:
    """An axis's label with its unit: the run database's words, 'Parameters (params)' for a common column
    name, else the column's own name."""
    if axis in AXIS_LABELS:
        return AXIS_LABELS[axis]
    words = AXIS_WORDS.get(axis.lower())
    return f"{words} ({axis})" if words else axis


def fmt_level(value: float) -> str:
    """A level of an axis, short: '3.2e7', '1e9', '0.5', '224', '5000' (two significant figures in
    scientific notation outside [1e-3, 1e4), up to three, or the integer part, inside)."""
    v = float(value)
    if not math.isfinite(v) or v == 0.0 or 1e-3 <= abs(v) < 1e4:
        short = f"{v:.3g}" if abs(v) < 1e3 else f"{v:.0f}"
        if "e" not in short:
            return short
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def level_text(axis: str, value: float) -> str:
    """'N=3.2e7': an axis at one value, as legends and titles name it."""
    return f"{axis}={fmt_level(value)}"


def point_text(point: dict[str, float]) -> str:
    """A point in words: '2.9B params, 23,059 h, 2200 px' on the run database's axes, 'params=1e9,
    tokens=3e10' on a table's."""
    words = {"n_params": lambda v: f"{fmt_count(v)} params", "data_hours": lambda v: f"{fmt_hours_tick(v)} h",
             "image_px": fmt_px}
    return ", ".join(words[a](v) if a in words else level_text(a, v) for a, v in point.items())


def axis_formatter(axis: str) -> Formatter:
    """Tick labels of a log axis: hours on ``data_hours``, '2.5B' style counts on every other."""
    return HOURS_FORMATTER if axis == "data_hours" else COUNT_FORMATTER


PLAIN_FORMATTER = FuncFormatter(lambda x, _pos: f"{x:.4g}")


@dataclass(frozen=True)
class Quantity:
    """The response a figure shows: its name, its kind (accuracy, error or loss: ``scaling.core.direction``)
    and whether its rows are runs of the run database (figures say "runs") or rows of a table."""

    name: str  # 'ImageNet top-5 (2% fine-tune, best epoch)', or a table's column: 'loss'
    kind: str = "accuracy"
    runs: bool = True

    @property
    def percent(self) -> bool:
        """Shown in percent: a fraction (an accuracy or an error rate); a loss is shown as it is."""
        return direction(self.kind).is_fraction

    @property
    def short(self) -> str:
        """The name without its parenthesis: 'ImageNet top-5'."""
        return self.name.split(" (")[0]

    @property
    def axis_label(self) -> str:
        """'ImageNet top-5 (2% fine-tune, best epoch), %' or 'loss'."""
        return f"{self.name}, %" if self.percent else self.name

    @property
    def formatter(self) -> Formatter:
        return PERCENT_FORMATTER if self.percent else PLAIN_FORMATTER

    @property
    def rows(self) -> str:
        """What a row is: 'runs' (the run database) or 'rows' (a table)."""
        return "runs" if self.runs else "rows"

    @property
    def scale(self) -> float:
        """Multiplier from a value to the unit that differences are read in (points of percent, or 1)."""
        return direction(self.kind).scale

    def text(self, value: float) -> str:
        """'94.9%' for a fraction, '2.2' for a loss."""
        return f"{100 * value:.1f}%" if self.percent else f"{value:.4g}"

    def tick(self, value: float) -> str:
        """A contour's label: '90%', or '2.5'."""
        return f"{100 * value:.0f}%" if self.percent else f"{value:.3g}"

    def difference(self, value: float, *, signed: bool = False) -> str:
        """A difference of two values: '1.2 pp' (points of percent) or '0.013' (the table's units)."""
        if self.percent:
            return f"{100 * value:+.1f} pp" if signed else f"{100 * value:.1f} pp"
        return f"{value:+.3g}" if signed else f"{value:.3g}"


def quantity_of(fit: FitLike | Any, grid: pd.DataFrame | None = None, *, y: str | None = None) -> Quantity:
    """The quantity ``fit`` models: on the run database's evaluations (``grid``, else the fit's own rows) the
    metric in the grid's words; on any other table, its response column ``y`` (default: the fit's)."""
    frame = grid if grid is not None else getattr(fit, "data", None)
    column = y or getattr(fit, "y", None) or RUNS_Y
    kind = str(getattr(fit, "kind", "accuracy"))
    if frame is not None and is_runs_frame(frame) and column == RUNS_Y:
        return Quantity(metric_label(frame), kind, runs=True)
    if frame is None and column == RUNS_Y:
        return Quantity(metric_label(None), kind, runs=True)
    return Quantity(column, kind, runs=False)
