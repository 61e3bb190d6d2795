"""What the ``scaling plot`` commands share: their options (typed once, with their validators), the table a
figure is drawn from (the run database, or ``--data`` with ``--y``/``--axes``/``--kind``) and the steps around
the drawing (check ``--out`` first, bound a bootstrap, write the file, print its path or its numbers)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scaling.cli import validate
from scaling.cli.common import split_csv
from scaling.cli.options import load_table
from scaling.cli.render import print_json, stderr_console
from scaling.defaults import DEFAULT_BACKTEST_FORMS
from scaling.errors import ScalingError

if TYPE_CHECKING:
    import pandas as pd

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="File to write: .png, .pdf or .svg.")]
MetricOpt = Annotated[str, typer.Option(help="Metric: top1 or top5 (default: that of the default target, human-top5).")]
BandOpt = Annotated[
    str, typer.Option(help="Band around the fit: confidence (mean surface), prediction (a new run) or none.")
]
LevelOpt = Annotated[float, typer.Option(help="Level of the band or interval.", callback=validate.level)]
DpiOpt = Annotated[float | None, typer.Option(help="Resolution of .png files \\[default: 150].", callback=validate.dpi)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the numbers behind the figure as one JSON document.")]
ResamplesOpt = Annotated[int, typer.Option("--bootstrap", min=2, help="Bootstrap resamples.",
                                           callback=validate.bootstrap)]
BACKTEST_FORMS = ",".join(DEFAULT_BACKTEST_FORMS)
TableAxesOpt = Annotated[str | None, typer.Option("--axes", help="Comma-separated axis columns of --data.",
                                                  callback=validate.axes)]
TableKindOpt = Annotated[str | None, typer.Option("--kind", help="What --y is: accuracy (a fraction, higher is "
                                                  "better), error (a fraction, lower) or loss (lower) "
                                                  "\\[default: accuracy].")]
TargetOpt = Annotated[str | None, typer.Option(
    help="A named target (see `scaling targets`) or a number: 0.8 or 80%; a loss's value for a loss table "
         "\\[default: human-top5 on the run database, none on --data].")]


def table_of(ctx: typer.Context, data: Path | None, y: str | None, axes: str | None, kind: str | None
           ) -> tuple[pd.DataFrame | None, dict[str, Any]]:
    """--data as the figure functions take a table (the frame, and y/axes/kind), or (None, {}) for the run
    database (where --y, --axes and --kind are refused)."""
    if data is None:
        if y is not None or axes is not None or kind is not None:
            flag = "--y" if y is not None else ("--axes" if axes is not None else "--kind")
            raise ScalingError(f"{flag} describes a table: give it with --data FILE")
        return None, {}
    if axes is None:
        raise ScalingError("--data needs --axes naming the axis columns (e.g. --axes params,tokens)")
    frame = load_table(ctx, data=data, y=y, protocol=None, eval_set=None, metric=None, selection="best-epoch")
    return frame, {"y": y, "axes": split_csv(axes), "kind": kind or "accuracy"}


def check_out(out: Path) -> None:
    from scaling.plots.style import figure_format  # lazy: drawing (matplotlib) is optional

    try:
        figure_format(out)
    except ScalingError as exc:
        raise typer.BadParameter(str(exc), param_hint="--out") from None
    # Fail before drawing (seconds), not after: the nearest existing ancestor must be a folder.
    parent = out.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ScalingError(f"--out {out}: {parent} is not a folder")


def finish(result: Any, out: Path, dpi: float | None, as_json: bool) -> None:
    saved = result.save(out, dpi=dpi)
    for note in saved.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    if as_json:
        print_json(saved.to_dict())
    else:
        print(out)


def run_grid(ctx: typer.Context, *, metric: str, selection: str, protocol: str | None,
          eval_set: str | None) -> pd.DataFrame:
    return load_table(ctx, data=None, y=None, protocol=protocol, eval_set=eval_set, metric=metric,
                      selection=selection)


def bounded(n_boot: int, frame: pd.DataFrame) -> None:
    """The figure's bootstrap within the work limits, before it starts (``scaling.core.work``)."""
    from scaling.core import work  # lazy: keeps `scaling --help` fast

    work.check(work.bootstrap(n_boot, len(frame), n_quantities=4, what=f"--bootstrap {n_boot:,} (resamples of "
                                                                       f"{len(frame):,} rows)"))


def band_choice(band: str) -> str:
    if band not in ("confidence", "prediction", "none"):
        raise typer.BadParameter(f"unknown band {band!r}; use confidence, prediction or none", param_hint="--band")
    return band
