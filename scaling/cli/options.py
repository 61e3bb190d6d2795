"""The options shared by the CLI's commands (typed once, with their help and their validator from
``scaling.cli.validate``) and the one input step they share: which table to hand to the library (the run
database, or ``--data`` CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from scaling.cli import validate
from scaling.cli.common import db_path, open_database, parse_assignments, split_csv
from scaling.core import checks
from scaling.defaults import (
    ALPHA_MAX,
    AXES,
    BNSL_SLOPE_MAX,
    DEFAULT_EVAL_SET,
    DEFAULT_METRIC,
    DEFAULT_PROTOCOL,
    PAPER_SCENARIO,
    SLOPE_MAX,
    WORK_MAX_BYTES,
    WORK_MAX_S,
    WORK_SILENT_MAX_S,
)
from scaling.errors import ScalingError

DEFAULT_AXES = ",".join(AXES)
PAPER_SCENARIO_TEXT = ",".join(f"{k}={v:g}" for k, v in PAPER_SCENARIO.items())

FormOpt = Annotated[str, typer.Option("--form", "-f", help="Functional form (see `scaling forms`).")]
AxesOpt = Annotated[str, typer.Option(help="Comma-separated axis columns (x variables).", callback=validate.axes)]
ProtocolOpt = Annotated[str | None, typer.Option(help=f"Evaluation protocol \\[default: {DEFAULT_PROTOCOL}].")]
EvalSetOpt = Annotated[str | None, typer.Option(help=f"Evaluation set \\[default: {DEFAULT_EVAL_SET}].")]
SelectionOpt = Annotated[str, typer.Option(help="Which fine-tuning epoch: best-epoch or last-epoch.")]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Fit a CSV table instead of the run database (needs --y; any numeric axes)."),
]
YOpt = Annotated[str | None, typer.Option("--y", help="Response column of --data.")]
KindOpt = Annotated[
    str, typer.Option(help="accuracy (a fraction, higher is better), error (an error rate, a fraction, lower is "
                           "better) or loss (positive, lower is better).")
]
ChanceOpt = Annotated[
    float | None,
    typer.Option(help="Chance error for chance-ceiling forms \\[default: 1 - k/1000 for top-k on ImageNet]."),
]
HuberOpt = Annotated[float | None, typer.Option(help="Huber delta of power-law fits in log space \\[default: 1e-3].",
                                                callback=validate.huber_delta)]
AlphaMaxOpt = Annotated[
    float | None,
    typer.Option(help=f"Upper bound of power-law exponents, at most 100 \\[default: {ALPHA_MAX:g}; m4: {SLOPE_MAX:g}; "
                      f"bnsl: {BNSL_SLOPE_MAX:g}]; raise it when a fit says an exponent sits at its bound.",
                 callback=validate.alpha_max),
]
LevelTolOpt = Annotated[
    float | None,
    typer.Option(help="Relative tolerance within which axis values count as one level, in [0, 1) (0.05 = 5%) "
                      "\\[default: 0.05 on the run database (ViT-H at 224/448/476 px differ by 0.2% in parameters); "
                      "exact for --data].", callback=validate.level_tol)
]
AllowLargeOpt = Annotated[
    bool, typer.Option("--allow-large", help=f"Run work estimated past the limits ({WORK_MAX_BYTES / 2**30:g} GiB of "
                                             f"memory; {WORK_MAX_S / 3600:g} h, or {WORK_SILENT_MAX_S / 60:g} min "
                                             "without a progress bar) instead of refusing it.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
BootstrapOpt = Annotated[
    int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for percentile intervals (0: none; try 1000).",
                      callback=validate.bootstrap)
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap resampling (same seed, same intervals).",
                                      callback=validate.seed)]
LevelOpt = Annotated[
    list[float] | None, typer.Option("--level", help="Interval level, repeatable \\[default: 0.9 and 0.95].",
                                     callback=validate.levels)
]
GroupOpt = Annotated[
    str | None,
    typer.Option(help="Column(s) whose rows are resampled together, comma-separated, or 'none' for single rows "
                 "\\[default: run_id when the data have it]."),
]
PassesOpt = Annotated[
    float | None,
    typer.Option(help="Every run makes this many passes over its frames (short for --training-length passes=P).",
                 show_default=False, callback=validate.passes),
]
TrainingLengthOpt = Annotated[
    str | None,
    typer.Option(help="How many images a run of D hours sees: grid (as the grid trained the nearest "
                      "configuration and hours level), passes=P or images=N \\[default: grid].",
                 show_default=False),
]
WorkersOpt = Annotated[
    int, typer.Option(min=1, help="Processes for the bootstrap (results do not depend on it; 2 on 2 cores).",
                      callback=validate.workers)
]


def cli_levels(level: list[float] | None) -> list[float] | None:
    """--level as given (each checked by its validator, ``validate.levels``, when parsed)."""
    return None if level is None else [checks.fraction(x, "--level") for x in level]


def cli_group(group: str | None) -> str:
    """--group as the library takes it: not given is 'auto' (whole runs where the data have run_id)."""
    return "auto" if group is None else group


def load_table(ctx: typer.Context, *, data: Path | None, y: str | None, protocol: str | None, eval_set: str | None,
               metric: str | None, selection: str) -> pd.DataFrame:
    """The table a command fits: ``--data`` CSV (which needs --y), else the run database's grid of ``metric``."""
    from scaling.data.tables import load_runs, read_table  # lazy: keeps `scaling --help` fast

    if data is not None:
        if y is None:
            raise ScalingError("--data needs --y naming the response column")
        return read_table(data)
    db = open_database(ctx)
    return load_runs(db.path, metric=metric or DEFAULT_METRIC, protocol=protocol or DEFAULT_PROTOCOL,
                     eval_set=eval_set or DEFAULT_EVAL_SET, selection=selection)


def curves_table(ctx: typer.Context, key: str, where: str | None) -> pd.DataFrame:
    """``--curves KEY [--where ...]``: the run database's pretraining step table of KEY."""
    from scaling.data.curves import load_curves  # lazy: keeps `scaling --help` fast

    return load_curves(db_path(ctx), key=key, where=parse_assignments(where, "--where") if where else None)


def forms_list(text: str) -> list[str] | None:
    """--forms: 'all' (None: every registered form) or comma-separated names."""
    if text.strip().lower() == "all":
        return None
    names = split_csv(text)
    if not names:
        raise ScalingError("--forms needs at least one form (or 'all')")
    return names
