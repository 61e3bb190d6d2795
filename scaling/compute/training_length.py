"""How many images a pretraining run of D hours sees: one rule for ``project``, ``plan`` and ``suggest``.

Every FLOPs number the toolkit gives for a run-database point (a projection's answer, a training plan, a
candidate run of ``suggest``) is FLOPs per image (``scaling.compute.flops``) x the images this rule says the run
sees, so the three agree for the same point. The rules (``TrainingLength``):

- ``grid`` (the default): the grid's recipe. A run is trained as the grid trained the nearest trained
  configuration: the (architecture, image px) nearest in log parameters and log px, at its trained hours
  level nearest in log hours. It makes the passes over its frames that the runs there made (the median
  over their subset seeds) with their mask ratio. At a trained point this is exactly what the grid's runs
  saw, so a replicate costs what its grid point cost; beyond the largest trained hours it keeps the passes
  of the largest runs (the projections of the shipped grid, nearest to ViT-H/14 at 476 px and 4,989 h:
  4.85 passes).
- ``passes=P``: P passes over the frames of D hours (images = P x D x 3,600 frames).
- ``images=N``: N images, whatever D is.

Why a rule is needed: the study trained by wall-clock (48-h jobs; notes-paper §2.3), so its runs made from
5 passes (ViT-H/14 at 476 px on 4,989 h) to about 150,000 (ViT-S/14 on 0.5 h): no single number of passes
or images describes the grid.

An allocation (``--optimal``, ``--budget`` under the MAE FLOPs model) searches a box of points and needs a
cost that is smooth over it: it uses the passes the rule gives at the reference point (the largest trained
point, where the answers of the shipped grid lie beyond), for every point of the box (``for_allocation``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from runs_db.archs import ARCHS, MASK_RATIO, PATCH_PX
from scaling.compute.flops import ComputeAssumptions
from scaling.core.jsonable import JSONDict
from scaling.defaults import FRAMES_PER_HOUR
from scaling.errors import ScalingError

RULES = ("grid", "passes", "images")
GRID_COLUMNS = ("arch", "n_params", "image_px", "data_hours", "samples_seen")


@dataclass(frozen=True)
class TrainedLevel:
    """One trained (architecture, px, hours) level of the grid and how its runs were trained."""

    arch: str
    n_params: float
    image_px: float
    data_hours: float
    passes: float  # median over the level's runs
    mask_ratio: float
    patch_px: int
    runs: tuple[str, ...]

    def label(self) -> str:
        shape = ARCHS.get(self.arch)
        name = shape.description.split(" (")[0].split(",")[0] if shape is not None else self.arch
        hours = f"{self.data_hours:.2g}" if self.data_hours < 10 else f"{self.data_hours:,.0f}"
        return f"{name} {self.image_px:.0f} px at {hours} h"


@dataclass(frozen=True)
class TrainingLength:
    """A training-length rule (see the module docstring): ``rule`` 'grid', 'passes' (``value`` = P) or
    'images' (``value`` = N)."""

    rule: str
    value: float | None = None
    # The grid's trained levels: the rule itself for 'grid'; for 'passes' and 'images' the mask ratio and
    # patch of the nearest configuration (MASK_RATIO and PATCH_PX without a grid).
    levels: tuple[TrainedLevel, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise ScalingError(f"unknown training-length rule {self.rule!r}; use grid, passes=P or images=N")
        if self.rule == "grid" and not self.levels:
            raise ScalingError("the grid rule needs trained runs with images seen (samples_seen)")
        if self.rule != "grid" and not (self.value is not None and math.isfinite(self.value) and self.value > 0):
            raise ScalingError(f"training length {self.rule}= must be a positive number, got {self.value}")

    # -- the rule --------------------------------------------------------------------------------------

    def level_at(self, point: Mapping[str, float]) -> TrainedLevel | None:
        """The trained level nearest ``point`` (None without a grid): the configuration (architecture, px)
        nearest in log parameters and log px, at its hours level nearest in log hours."""
        if not self.levels:
            return None
        n, px, hours = (math.log(float(point[a])) for a in ("n_params", "image_px", "data_hours"))
        configs = {(lv.arch, lv.image_px): lv for lv in self.levels}
        arch, image_px = min(configs, key=lambda c: ((math.log(configs[c].n_params) - n) ** 2
                                                      + (math.log(c[1]) - px) ** 2, c))
        same = [lv for lv in self.levels if (lv.arch, lv.image_px) == (arch, image_px)]
        return min(same, key=lambda lv: (abs(math.log(lv.data_hours) - hours), -lv.data_hours))

    def at(self, point: Mapping[str, float]) -> ComputeAssumptions:
        """Passes over the frames, mask ratio and patch of a run at ``point`` (n_params, data_hours, image_px)."""
        hours = float(point["data_hours"])
        if not (math.isfinite(hours) and hours > 0):
            raise ScalingError(f"data hours must be a positive number, got {hours}")
        level = self.level_at(point)
        mask, patch = (level.mask_ratio, level.patch_px) if level is not None else (MASK_RATIO, PATCH_PX)
        if self.rule == "grid":
            assert level is not None  # a grid rule has levels (__post_init__)
            return ComputeAssumptions(level.passes, mask, patch, f"grid: as {level.label()}")
        value = float(self.value)  # type: ignore[arg-type]
        if self.rule == "passes":
            return ComputeAssumptions(value, mask, patch, f"passes={value:g}")
        return ComputeAssumptions(value / (hours * FRAMES_PER_HOUR), mask, patch, f"images={value:g}")

    def images_seen(self, point: Mapping[str, float]) -> float:
        return self.at(point).passes * float(point["data_hours"]) * FRAMES_PER_HOUR

    def for_allocation(self, reference: Mapping[str, float]) -> ComputeAssumptions:
        """The fixed passes an allocation search uses: the rule's at ``reference`` (see the module docstring)."""
        if self.rule == "images":
            raise ScalingError("an allocation under a fixed number of images makes data free (the cost does not "
                               "grow with hours); use the grid rule or passes=P")
        return self.at(reference)

    # -- describing it -------------------------------------------------------------------------------

    def describe(self) -> str:
        if self.rule == "grid":
            return ("grid recipe: each point is trained as the grid trained its nearest configuration (log "
                    "parameters and px) at its nearest hours level: the same passes over the frames and mask ratio")
        if self.rule == "passes":
            return f"{self.value:g} passes over the frames of every run"
        return f"{self.value:g} images seen by every run, whatever its hours"

    def spec(self) -> str:
        return "grid" if self.rule == "grid" else f"{self.rule}={self.value:g}"

    def to_dict(self) -> JSONDict:
        return {"rule": self.rule, "spec": self.spec(), "value": self.value, "description": self.describe()}


def from_grid(grid: pd.DataFrame) -> TrainingLength | None:
    """The 'grid' rule of a run-database frame (one row per run and metric is fine); None when it records
    no images seen."""
    if not set(GRID_COLUMNS) <= set(grid.columns):
        return None
    # only the columns read, without the frame's attrs (pandas copies attrs on every step of the loop below)
    cols = [c for c in (*GRID_COLUMNS, "arch", "n_params", "mask_ratio", "patch_px", "run_id") if c in grid.columns]
    grid = pd.DataFrame({c: grid[c].to_numpy() for c in dict.fromkeys(cols)})
    runs = grid.drop_duplicates(subset=["run_id"]) if "run_id" in grid.columns else grid
    runs = runs.dropna(subset=list(GRID_COLUMNS))
    runs = runs[(runs["samples_seen"] > 0) & (runs["data_hours"] > 0)]
    if runs.empty:
        return None
    levels = []
    keys = [runs["arch"].astype(str), runs["image_px"].astype(float), np.round(np.log10(runs["data_hours"]), 3)]
    for _, rows in runs.groupby(keys, sort=True):
        arch, px = str(rows["arch"].iloc[0]), float(rows["image_px"].iloc[0])  # the group's key
        passes = rows["samples_seen"].astype(float) / (rows["data_hours"].astype(float) * FRAMES_PER_HOUR)
        mask = rows["mask_ratio"].dropna() if "mask_ratio" in rows else pd.Series(dtype=float)
        patch = rows["patch_px"].dropna() if "patch_px" in rows else pd.Series(dtype=float)
        levels.append(TrainedLevel(
            str(arch), float(np.median(rows["n_params"])), float(px), float(np.median(rows["data_hours"])),
            float(np.median(passes)), float(np.median(mask)) if len(mask) else MASK_RATIO,
            int(np.median(patch)) if len(patch) else PATCH_PX,
            tuple(str(r) for r in rows.get("run_id", pd.Series(dtype=str)))))
    return TrainingLength("grid", levels=tuple(levels))


def parse(spec: str | None, grid: pd.DataFrame | None = None, *, passes: float | None = None) -> TrainingLength | None:
    """The rule named by ``spec`` ('grid', 'passes=P', 'images=N'; None: the grid's when it has runs), or
    ``passes`` (the ``--passes`` shorthand). None when no rule can be made (a table that is not the run
    database)."""
    recipe = from_grid(grid) if grid is not None else None
    levels = recipe.levels if recipe is not None else ()
    if passes is not None:
        if spec is not None:
            raise ScalingError("give either --passes or --training-length, not both")
        return TrainingLength("passes", float(passes), levels)
    text = (spec or "grid").strip().lower()
    if text == "grid":
        if recipe is None and spec is not None:
            raise ScalingError("the grid rule needs a run-database grid that records images seen (samples_seen)")
        return recipe
    name, sep, value = text.partition("=")
    if not sep or name.strip() not in ("passes", "images"):
        raise ScalingError(f"training length {spec!r}: use grid, passes=P or images=N")
    try:
        number = float(value)
    except ValueError:
        raise ScalingError(f"training length {spec!r}: {value.strip()!r} is not a number") from None
    return TrainingLength(name.strip(), number, levels)
