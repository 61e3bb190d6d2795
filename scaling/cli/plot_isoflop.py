"""``scaling plot isoflop``: the IsoFLOP parabolas of a sweep, their vertices and N*(C) by each method."""

from __future__ import annotations

from typing import Annotated

import typer

from scaling.cli.common import domain_errors, split_csv
from scaling.cli.options import BootstrapOpt, DataOpt, FormOpt, KindOpt, SeedOpt, YOpt, load_table
from scaling.cli.plot_options import DpiOpt, JsonOpt, OutOpt, check_out, finish
from scaling.cli.progress import progress_bar
from scaling.defaults import ALLOCATION_FORM, ALLOCATION_N_BOOT, ISOFLOP_BUDGET_TOL
from scaling.errors import ScalingError


def register(plot_app: typer.Typer) -> None:
    plot_app.command("isoflop")(isoflop_cmd)


@domain_errors
def isoflop_cmd(
    ctx: typer.Context,
    out: OutOpt,
    data: DataOpt = None,
    y: YOpt = None,
    axes: Annotated[str, typer.Option(help="The two axis columns, N then D (e.g. params,tokens).")] = "params,tokens",
    kind: KindOpt = "loss",
    cost: Annotated[str | None, typer.Option(help="Cost model: 6nd or an expression of the axes.")] = None,
    budget: Annotated[
        float | None, typer.Option(help="Budget of the intervals drawn \\[default: the largest in the table].")
    ] = None,
    method: Annotated[str, typer.Option(help="parametric, isoflop, envelope or all.")] = "all",
    budget_column: Annotated[
        str | None, typer.Option(help="A column holding each point's budget \\[default: from --cost].")
    ] = None,
    budget_tol: Annotated[
        float, typer.Option(help="Costs within this fraction of each other share a budget.")
    ] = ISOFLOP_BUDGET_TOL,
    run_column: Annotated[str | None, typer.Option(help="The envelope's runs \\[default: run_id].")] = None,
    form: FormOpt = ALLOCATION_FORM,
    n_bootstrap: BootstrapOpt = ALLOCATION_N_BOOT,
    seed: SeedOpt = 0,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """IsoFLOP parabolas (loss against model size at each budget), their vertices, and N*(C) by each method
    with its interval at --budget; the parametric law's N* at each training budget where it was checked.

    [bold]Examples[/bold]

      scaling plot isoflop --data sweep.csv --y loss \\
          --axes params,tokens --cost 6nd --out isoflop.png
      scaling plot isoflop --data sweep.csv --y loss \\
          --budget-column flops --method isoflop --out isoflop.pdf
      scaling plot isoflop --data sweep.csv --y loss --cost 6nd \\
          --budget 1e22 --bootstrap 1000 --json --out isoflop.svg
    """
    from scaling.plots.figures import isoflop_figure  # lazy: drawing (matplotlib) is optional

    if data is None:
        raise ScalingError("the IsoFLOP figure is of a sweep table: give --data FILE.csv with --y")
    check_out(out)
    frame = load_table(ctx, data=data, y=y, protocol=None, eval_set=None, metric=None, selection="best-epoch")
    assert y is not None  # load_table refuses a --data table without --y
    with progress_bar() as update:
        result = isoflop_figure(frame, y=y, axes=split_csv(axes), kind=kind, cost=cost, budget=budget, method=method,
                                budget_column=budget_column, budget_tol=budget_tol, run_column=run_column, form=form,
                                n_boot=n_bootstrap, seed=seed, progress=update)
    finish(result, out, dpi, as_json)

