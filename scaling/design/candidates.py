"""Candidate runs for ``scaling.suggest``: the default neighbours of a grid, a CSV file, or a grid spec.

A candidate is one run not trained yet: a point on the fit's axes, plus, on the run database, its
architecture, resolution, hours of video, subset seed and the pretraining FLOPs it would cost.

Default candidates extend the trained grid by one level beyond it along every axis, and jointly: the
levels of each axis are those trained plus one more, a geometric step above the largest (the axis's mean
step, (largest / smallest) ** (1 / (levels - 1))), and every combination of levels that is not trained is a
candidate. On the run database the axes are the architecture (a size beyond the largest registered one is
the largest's parameter count times the step, shaped by the compute model's aspect rule), image px
(rounded to the patch), data hours, and the subset seed: a configuration already trained gets its next
unused seed (a replicate, which is how seed-to-seed noise is learned).

Pretraining FLOPs of a run-database candidate are those of ``scaling project`` and ``scaling plan`` for
the same point: FLOPs per image (``scaling.compute.flops``'s MAE model) x the images the training-length rule
gives (``scaling.compute.training_length``; by default the grid's recipe: a replicate costs what its grid point
cost). A candidate that needs more video than the corpus holds is marked ``beyond_corpus`` and has no data
fraction. A ``pretrain_flops`` column in a candidates file overrides the cost (e.g. the recorded cost of a
real run).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runs_db.archs import ARCHS, encoder_params, get_arch
from runs_db.validate import PLAUSIBLE_MAX
from scaling.compute.costs import CostModel
from scaling.compute.flops import ComputeEstimate, compute_at
from scaling.compute.training_length import TrainingLength, from_grid
from scaling.core import checks
from scaling.data.tables import read_table
from scaling.errors import ScalingError

RUN_FIELDS = ("arch", "image_px", "data_hours", "subset_seed")
BEYOND = "beyond"  # the architecture label of a size past the largest registered one


@dataclass(frozen=True)
class Candidate:
    """One run that could be trained next."""

    point: dict[str, float]  # the fit's axes -> value
    flops: float  # pretraining FLOPs it would cost
    label: str
    beyond: tuple[str, ...] = ()  # axes on which it lies past the trained grid
    run: dict[str, Any] = field(default_factory=dict)  # arch, image_px, data_hours, subset_seed, data_fraction, ...

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "point": dict(self.point), "pretrain_flops": self.flops,
                "beyond": list(self.beyond), "run": dict(self.run)}


def _levels(values: Iterable[float], sig: int = 6) -> list[float]:
    """Distinct values, equal to ``sig`` significant digits counted once (hours are stored unrounded)."""
    out: list[float] = []
    for v in sorted(float(x) for x in values):
        if not out or not math.isclose(v, out[-1], rel_tol=10.0 ** -sig):
            out.append(v)
    return out


def mean_step(levels: Sequence[float]) -> float:
    """Geometric mean ratio between consecutive levels; 2 when there is one level."""
    lv = [v for v in levels if v > 0]
    if len(lv) < 2:
        return 2.0
    return (lv[-1] / lv[0]) ** (1.0 / (len(lv) - 1))


def is_runs_grid(frame: pd.DataFrame) -> bool:
    return {"arch", "image_px", "data_hours", "n_params", "run_id"} <= set(frame.columns)


# -- the run database -------------------------------------------------------------------------------


class RunRecipe:
    """What the trained grid says about training a new run: sizes, the corpus, and the training length."""

    CORPUS_SLACK = 1.01  # within 1% of the corpus (5,000 h of a 4,989 h corpus) is all of it

    def __init__(self, runs: pd.DataFrame, training: TrainingLength | None = None) -> None:
        self.runs = runs  # one row per run
        self.training = training if training is not None else from_grid(runs)

    @functools.cached_property
    def corpus_hours(self) -> float | None:
        r = self.runs.dropna(subset=["data_fraction"]) if "data_fraction" in self.runs else self.runs.iloc[:0]
        r = r[r["data_fraction"] > 0]
        return float(np.median(r["data_hours"] / r["data_fraction"])) if len(r) else None

    def n_params(self, arch: str, image_px: float, step: float) -> float:

        if arch == BEYOND:
            largest = self.largest_arch()
            return step * float(encoder_params(get_arch(largest), int(image_px)))
        return float(encoder_params(get_arch(arch), int(image_px)))

    def largest_arch(self) -> str:
        return str(self.runs.sort_values("n_params")["arch"].iloc[-1])

    def compute(self, n_params: float, image_px: float, data_hours: float) -> ComputeEstimate:
        """The run's pretraining compute under the training-length rule (as ``scaling.project`` prices it)."""
        if self.training is None:
            raise ScalingError("the grid records no images seen (samples_seen): cannot cost a candidate run")
        point = {"n_params": n_params, "image_px": image_px, "data_hours": data_hours}
        return compute_at(point, self.training.at(point))


def one_per_run(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run of a run-database frame (which has a row per run and metric)."""
    return frame.drop_duplicates(subset=["run_id"]).reset_index(drop=True)


def _run_candidate(recipe: RunRecipe, axes: Sequence[str], arch: str, px: float, hours: float, seed: int,
                   step: float, beyond: tuple[str, ...], flops: float | None = None) -> Candidate:
    n = recipe.n_params(arch, px, step)
    values = {"n_params": n, "image_px": float(px), "data_hours": float(hours)}
    missing = [a for a in axes if a not in values]
    if missing:
        raise ScalingError(f"candidates on the run database set n_params, data_hours and image_px; the fit also "
                           f"has axis {missing[0]!r}")
    corpus = recipe.corpus_hours
    over = corpus is not None and hours > corpus * recipe.CORPUS_SLACK
    name = arch if arch != BEYOND else f"{n / 1e9:.2g}B (beyond {recipe.largest_arch()})"
    compute = recipe.compute(n, float(px), float(hours))
    run = {"arch": arch if arch != BEYOND else None, "n_params": n, "image_px": float(px), "data_hours": float(hours),
           "subset_seed": int(seed), "data_fraction": None if corpus is None or over else min(hours / corpus, 1.0),
           "beyond_corpus": over, "corpus_hours": corpus, "mask_ratio": compute.mask_ratio,
           "images_seen": compute.images_seen, "passes": compute.passes, "training": compute.training}
    cost = compute.flops if flops is None else float(flops)
    label = f"{name} {px:.0f}px {hours:.4g}h seed {seed}" + (" (more video than the corpus)" if over else "")
    return Candidate({a: values[a] for a in axes}, cost, label, beyond, run)


def trained_seeds(runs: pd.DataFrame, arch: str, px: float, hours: float) -> list[int]:
    """Subset seeds trained at one configuration (architecture, px, hours)."""
    if "subset_seed" not in runs:
        return []
    same = runs[(runs["arch"] == arch) & np.isclose(runs["image_px"], px) & np.isclose(runs["data_hours"], hours,
                                                                                       rtol=1e-2)]
    return [int(s) for s in same["subset_seed"].dropna()]


def next_seed(runs: pd.DataFrame, arch: str, px: float, hours: float) -> int:
    """The next unused subset seed of a configuration (1 for a new one)."""
    seeds = trained_seeds(runs, arch, px, hours)
    return max(seeds) + 1 if seeds else 1


def default_run_candidates(frame: pd.DataFrame, axes: Sequence[str],
                           training: TrainingLength | None = None) -> list[Candidate]:
    """The trained grid extended one level beyond along architecture, px, hours and seed, and jointly."""

    runs = one_per_run(frame)
    recipe = RunRecipe(runs, training)
    trained = runs.sort_values("n_params")
    archs = list(dict.fromkeys(trained["arch"].astype(str)))
    arch_n = [float(trained.loc[trained["arch"] == a, "n_params"].min()) for a in archs]
    registered = sorted((s for s in ARCHS.values() if s.patch_px == 14), key=lambda s: s.width * s.depth)
    bigger = [s.name for s in registered if s.width * s.depth > max(ARCHS[a].width * ARCHS[a].depth
                                                                     for a in archs if a in ARCHS)]
    arch_levels = [*archs, bigger[0] if bigger else BEYOND]
    step_n = mean_step(arch_n)
    px_levels = _levels(runs["image_px"])
    px_next = 14.0 * round(px_levels[-1] * mean_step(px_levels) / 14.0)
    hour_levels = _levels(runs["data_hours"])
    hour_next = hour_levels[-1] * mean_step(hour_levels)
    out = []
    for arch, px, hours in itertools.product(arch_levels, [*px_levels, px_next], [*hour_levels, hour_next]):
        beyond = tuple(a for a, flag in (("arch", arch == arch_levels[-1]), ("image_px", px == px_next),
                                         ("data_hours", hours == hour_next)) if flag)
        seeds = trained_seeds(runs, arch, px, hours)
        seed = max(seeds) + 1 if seeds else 1
        out.append(_run_candidate(recipe, axes, arch, px, hours, seed, step_n,
                                  (*beyond, "subset_seed") if seeds else beyond))
    return out


# -- any table ----------------------------------------------------------------------------------------


def default_table_candidates(frame: pd.DataFrame, axes: Sequence[str], cost: CostModel | None) -> list[Candidate]:
    """Every untrained combination of the table's levels, each axis extended one mean step beyond."""
    levels = {a: _levels(pd.to_numeric(frame[a])) for a in axes}
    nxt = {a: lv[-1] * mean_step(lv) for a, lv in levels.items()}
    trained = {tuple(round(math.log10(float(v)), 6) for v in row) for row in frame[list(axes)].to_numpy(dtype=float)}
    out = []
    for combo in itertools.product(*[[*levels[a], nxt[a]] for a in axes]):
        if tuple(round(math.log10(v), 6) for v in combo) in trained:
            continue
        point = dict(zip(axes, (float(v) for v in combo), strict=True))
        out.append(table_candidate(point, cost, beyond=tuple(a for a in axes if point[a] == nxt[a])))
    return out


def table_candidate(point: Mapping[str, float], cost: CostModel | None, *, beyond: tuple[str, ...] = (),
                    flops: float | None = None) -> Candidate:
    """A candidate at ``point`` of a table's axes, costing ``flops`` (default: the cost model's)."""
    if flops is not None:
        c = float(flops)
    elif cost is not None:
        c = float(np.asarray(cost.cost(point)).ravel()[0])
    else:
        raise ScalingError("candidates on this table need a cost model (cost=) or a pretrain_flops column")
    label = ", ".join(f"{a}={v:.4g}" for a, v in point.items())
    return Candidate(dict(point), c, label, beyond)


# -- files and grid specs -------------------------------------------------------------------------------


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def parse_grid_spec(spec: str, fields: Sequence[str] | None = None) -> dict[str, list[str]]:
    """'arch=vit_h14,vit_l14;image_px=224,476;data_hours=5000' -> {'arch': [...], ...} (every combination).
    Each field once, and (given ``fields``) one of them."""
    out: dict[str, list[str]] = {}
    for part in (p.strip() for p in spec.split(";") if p.strip()):
        name, sep, values = part.partition("=")
        name = name.strip()
        items = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not items:
            raise ScalingError(f"grid spec {_shown(spec)}: expected NAME=V1,V2;NAME=... (got {_shown(part)})")
        if fields is not None and name not in fields:
            raise ScalingError(f"grid spec: unknown field {_shown(name)}; the fields are {', '.join(fields)}")
        if name in out:
            raise ScalingError(f"grid spec: field {name!r} is given twice")
        out[name] = items
    if not out:
        raise ScalingError("the grid spec is empty")
    return out


def spec_fields(frame: pd.DataFrame, axes: Sequence[str]) -> tuple[str, ...]:
    """The fields a candidate row may set: a run's on the run database, else the fit's axes; and its cost."""
    return (*RUN_FIELDS, "n_params", "pretrain_flops") if is_runs_grid(frame) else (*axes, "pretrain_flops")


def _number(text: Any, what: str, maximum: float | None = None) -> float:
    """A finite positive number (at most ``maximum``: a size no real run has is refused, as an import does)."""
    return checks.positive(text, what, maximum=maximum)


def _optional_number(row: Mapping[Hashable, Any], key: str, what: str) -> float | None:
    """``row[key]`` as a positive number (``_number``), None where it is missing or NaN."""
    v = row.get(key)
    return _number(v, what) if v is not None and pd.notna(v) else None


def candidates_from_rows(rows: pd.DataFrame, frame: pd.DataFrame, axes: Sequence[str], cost: CostModel | None,
                         where: str, training: TrainingLength | None = None) -> list[Candidate]:
    """Candidates from a table of rows: on the run database arch, image_px, data_hours (and optional
    subset_seed, pretrain_flops, n_params); on any table the fit's axes (and optional pretrain_flops)."""
    if rows.empty:
        raise ScalingError(f"{where}: no candidate rows")
    if is_runs_grid(frame):
        return _run_rows(rows, frame, axes, where, training)
    return _table_rows(rows, frame, axes, cost, where)


def _run_rows(rows: pd.DataFrame, frame: pd.DataFrame, axes: Sequence[str], where: str,
              training: TrainingLength | None) -> list[Candidate]:
    """Run-database candidates from rows of arch, image_px, data_hours (optional subset_seed, pretrain_flops,
    n_params), costed under ``training``."""
    missing = [c for c in ("arch", "image_px", "data_hours") if c not in rows.columns]
    if missing:
        raise ScalingError(f"{where}: missing column {missing[0]!r} (a candidate run needs arch, image_px, "
                           "data_hours; optional subset_seed, pretrain_flops)")
    recipe = RunRecipe(one_per_run(frame), training)
    out = []
    for i, r in enumerate(rows.to_dict("records"), start=1):
        at = f"{where} row {i}"
        try:
            arch = get_arch(str(r["arch"])).name
        except KeyError as exc:
            raise ScalingError(f"{at}: {str(exc).strip(chr(39) + chr(34))}") from None
        px = _number(r["image_px"], f"{at} image_px", PLAUSIBLE_MAX["image_px"])
        if px % 14:
            raise ScalingError(f"{at}: image_px {px:g} is not a multiple of the 14-px patch")
        hours = _number(r["data_hours"], f"{at} data_hours", PLAUSIBLE_MAX["data_hours"])
        given = r.get("subset_seed")
        seed = (checks.seed(given, f"{at} subset_seed") if given is not None and pd.notna(given)
                else next_seed(recipe.runs, arch, px, hours))
        flops = _optional_number(r, "pretrain_flops", f"{at} pretrain_flops")
        c = _run_candidate(recipe, axes, arch, px, hours, seed, 1.0, (), flops)
        if "n_params" in r and pd.notna(r["n_params"]):
            c = Candidate(c.point | {"n_params": _number(r["n_params"], f"{at} n_params")}, c.flops, c.label,
                          c.beyond, c.run | {"n_params": float(r["n_params"])})
        extra = {k: r[k] for k in ("run_id", "value") if k in r and pd.notna(r[k])}
        out.append(Candidate(c.point, c.flops, c.label, _beyond(c.point, frame, axes), c.run | extra))
    return out


def _table_rows(rows: pd.DataFrame, frame: pd.DataFrame, axes: Sequence[str], cost: CostModel | None,
                where: str) -> list[Candidate]:
    """Candidates on any table from rows of the fit's axes (optional pretrain_flops), costed by ``cost``."""
    missing = [a for a in axes if a not in rows.columns]
    if missing:
        raise ScalingError(f"{where}: missing column {missing[0]!r} (candidates need the fit's axes: "
                           f"{', '.join(axes)})")
    out = []
    for i, r in enumerate(rows.to_dict("records"), start=1):
        point = {a: _number(r[a], f"{where} row {i} {a}") for a in axes}
        flops = _optional_number(r, "pretrain_flops", f"{where} row {i} pretrain_flops")
        out.append(table_candidate(point, cost, flops=flops, beyond=_beyond(point, frame, axes)))
    return out


def _beyond(point: Mapping[str, float], frame: pd.DataFrame, axes: Sequence[str]) -> tuple[str, ...]:
    """Axes on which ``point`` lies past the largest trained value (0.5% tolerance: position embeddings)."""
    return tuple(a for a in axes if point[a] > float(pd.to_numeric(frame[a]).max()) * 1.005)


def load_candidates(spec: str | Path | pd.DataFrame | Sequence[Candidate] | None, frame: pd.DataFrame,
                    axes: Sequence[str], cost: CostModel | None,
                    training: TrainingLength | None = None, *,
                    check: Callable[[int], object] | None = None) -> list[Candidate]:
    """Candidates from ``spec``: None (the default neighbours), a CSV path, a grid spec (its fields:
    ``spec_fields``), a DataFrame of rows, or a list of ``Candidate``; run-database candidates are costed under
    ``training`` (default: the grid's recipe). ``check(n)`` is called with their number before any is built
    (``scaling.suggest`` bounds its work there)."""
    if spec is None:
        _check(check, default_count(frame, axes))
        return default_run_candidates(frame, axes, training) if is_runs_grid(frame) else \
            default_table_candidates(frame, axes, cost)
    if isinstance(spec, pd.DataFrame):
        _check(check, len(spec))
        return candidates_from_rows(spec, frame, axes, cost, "candidates", training)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        if not all(isinstance(c, Candidate) for c in spec):
            raise ScalingError("candidates: a list must hold scaling.design.candidates.Candidate objects")
        _check(check, len(spec))
        return list(spec)
    text = str(spec)
    path = Path(text)
    try:
        is_file = path.is_file()
    except OSError:  # a long grid spec is no file name (ENAMETOOLONG): not a file
        is_file = False
    if path.suffix.lower() == ".csv" or is_file:
        if not is_file:
            raise ScalingError(f"{path}: candidates file not found")
        rows = read_table(path)
        _check(check, len(rows))
        return candidates_from_rows(rows, frame, axes, cost, str(path), training)
    if "=" not in text:
        raise ScalingError(f"candidates {_shown(text)}: neither a CSV file nor a grid spec such as "
                           "'arch=vit_h14;image_px=476;data_hours=5000,50000'")
    grid = parse_grid_spec(text, spec_fields(frame, axes))
    _check(check, math.prod(len(v) for v in grid.values()))
    names = list(grid)
    rows = pd.DataFrame([dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())])
    return candidates_from_rows(rows, frame, axes, cost, "grid spec", training)


def _check(check: Callable[[int], object] | None, n: int) -> None:
    if check is not None:
        check(n)


def default_count(frame: pd.DataFrame, axes: Sequence[str]) -> int:
    """How many default candidates there are (every combination of the levels, each axis one more), before
    any is built."""
    if is_runs_grid(frame):
        runs = one_per_run(frame)
        return (runs["arch"].nunique() + 1) * (len(_levels(runs["image_px"])) + 1) * \
            (len(_levels(runs["data_hours"])) + 1)
    return math.prod(len(_levels(pd.to_numeric(frame[a]))) + 1 for a in axes)
