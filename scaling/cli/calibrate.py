"""``scaling calibrate``: how often nominal intervals cover held-out runs, bootstrap-only and calibrated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scaling.cli.analysis import FormsOpt, MetricOpt, split_axes
from scaling.cli.common import domain_errors
from scaling.cli.options import (
    DEFAULT_AXES,
    AxesOpt,
    BootstrapOpt,
    ChanceOpt,
    DataOpt,
    EvalSetOpt,
    JsonOpt,
    KindOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    YOpt,
    forms_list,
    load_table,
)
from scaling.cli.progress import progress_bar
from scaling.cli.render import print_json, stderr_console, stdout_console, table
from scaling.defaults import DEFAULT_METRIC


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_cmd)


@domain_errors
def calibrate_cmd(
    ctx: typer.Context,
    forms: FormsOpt = "all",
    metric: MetricOpt = DEFAULT_METRIC,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    n_bootstrap: BootstrapOpt = 200,
    seed: SeedOpt = 0,
    figure: Annotated[
        Path | None, typer.Option("--figure", help="Also write the reliability figure: .png, .pdf or .svg.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Coverage of nominal 50/80/90/95% intervals on held-out runs, per form and for the ensembles.

    On every backtest split that all the forms fit, each form is fitted to the smaller runs and
    bootstrapped; its intervals for the held-out larger runs are scored bootstrap-only and calibrated
    (widened by split-conformal quantiles of the *other* splits' held-out errors, scaled by decades
    beyond the data). The ensembles (stacking, pseudo-BMA+) learn their weights on the other splits too.
    Coverage near the nominal level means the intervals can be trusted that far out.

    [bold]Examples[/bold]

      scaling calibrate --forms poly1,logit1
      scaling calibrate --forms poly1,logit1,m4 --figure reliability.png
      scaling calibrate --forms poly1,logit1 --json
      scaling calibrate --data lm.csv --y loss --axes params,tokens --kind loss \\
          --forms powerlaw,saturating,m4
    """
    import scaling  # lazy: keeps `scaling --help` fast

    if figure is not None:
        from scaling.plots.style import figure_format  # lazy: drawing (matplotlib) is optional

        figure_format(figure)  # a bad suffix fails before any work
    frame = load_table(ctx, data=data, y=y, protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
    with progress_bar() as update:
        result = scaling.calibrate(frame, forms_list(forms), metric=metric, y=y, axes=split_axes(axes), kind=kind,
                                   chance=chance, n_boot=n_bootstrap, seed=seed, progress=update)
    if figure is not None:
        from scaling import plots  # lazy: drawing (matplotlib) is optional

        ax = result.plot()
        plots.save_figure(ax.figure, figure)
    if as_json:
        print_json(result.to_dict())
        return
    wide = result.table()
    rows = [[name, kind_, *[f"{v:.1f}%" for v in values]] for (name, kind_), values in zip(
        wide.index, wide.to_numpy(), strict=True)]
    caption = (f"{result.n_rows} held-out rows of {len(result.splits)} splits ({'; '.join(result.splits)}); "
               f"{result.n_boot} resamples per fit")
    stdout_console().print(table("Held-out runs inside the nominal interval", ["predictor", "interval",
                                                                             *wide.columns], rows, caption=caption))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    if figure is not None:
        stderr_console().print(f"wrote {figure}", markup=False)
