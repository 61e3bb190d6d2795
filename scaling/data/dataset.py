"""The one object that knows what the data is: the run database's grid, or any table with a response, axes and
a kind, and the defaults each carries. No workflow asks "is this the run database?": it asks the dataset.

=====================  ==========================================  =========================================
default                 the run database's grid                     any other table
=====================  ==========================================  =========================================
target                  human-top5 (``defaults.DEFAULT_TARGET``;    none (a loss never borrows an accuracy)
                        an OOD eval set's human target)
axis solved for         ``data_hours``                               its last axis
evaluation point        the paper's scenario (2.5B, 20,000 h, 952)  its largest value of every axis
cost of a point         the MAE FLOPs model (``mae``)               none: name one (``6nd``, an expression)
training length         the grid's recipe (``compute.training_length``)  none (no runs to learn it from)
rolling backtest axis   ``data_hours``                               its last axis
axis levels within      5% (``DEFAULT_LEVEL_TOL``: ViT-H's px)       exact
resampling groups       whole runs (``run_id``)                      a ``run_id`` column, else single rows
=====================  ==========================================  =========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from scaling.core.direction import direction
from scaling.core.targets import default_target_for
from scaling.defaults import (
    COMPUTE_AXES,
    DEFAULT_GROUP,
    DEFAULT_LEVEL_TOL,
    PAPER_SCENARIO,
)


@dataclass(frozen=True)
class Dataset:
    """The rows, response column, axes and kind of one fit; where they came from; and their defaults."""

    frame: pd.DataFrame
    y: str
    axes: tuple[str, ...]
    source: dict[str, Any]
    metric: str | None  # the run database's metric; None for any other table (even if metric= was given)
    notes: tuple[str, ...] = ()  # rows left out, and why (results carry these notes)
    kind: str = "accuracy"  # accuracy (a fraction, higher is better) or loss (lower is better)

    @property
    def is_run_grid(self) -> bool:
        """Rows are runs of the run database (evaluations of one metric), with their recipes."""
        return self.metric is not None

    @property
    def default_target(self) -> str | None:
        """The run database's human target on its eval set (human-top5 on ImageNet, ``human-ood-<set>`` on an OOD
        set of Geirhos et al. 2021); none for any other table."""
        if not (self.is_run_grid and direction(self.kind).is_fraction):
            return None
        return default_target_for(self.source.get("eval_set"))

    @property
    def solve_axis(self) -> str:
        return "data_hours" if self.is_run_grid and "data_hours" in self.axes else self.axes[-1]

    @property
    def evaluation_point(self) -> dict[str, float]:
        if self.is_run_grid and set(self.axes) <= set(PAPER_SCENARIO):
            return {a: PAPER_SCENARIO[a] for a in self.axes}
        return self.largest_point

    @property
    def largest_point(self) -> dict[str, float]:
        return {a: float(pd.to_numeric(self.frame[a]).max()) for a in self.axes}

    @property
    def default_cost(self) -> str | None:
        """'mae' where the MAE FLOPs model prices a point (the run database's three axes), else none."""
        return "mae" if self.is_run_grid and set(COMPUTE_AXES) <= set(self.axes) else None

    @property
    def rolling_axis(self) -> str:
        return "data_hours" if self.is_run_grid and "data_hours" in self.axes else self.axes[-1]

    @property
    def level_tol(self) -> float:
        return DEFAULT_LEVEL_TOL if self.is_run_grid else 0.0

    @property
    def group(self) -> str | None:
        return DEFAULT_GROUP if DEFAULT_GROUP in self.frame.columns else None

    @property
    def runs_frame(self) -> pd.DataFrame | None:
        """The rows as runs with their recipes (for the training-length rule), or None for another table."""
        return self.frame if self.is_run_grid else None
