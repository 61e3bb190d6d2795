"""The ``scaling`` command line: thin commands over the library; rendering only.

Errors in the user's input or data exit 1 with one line on stderr; usage errors exit 2 (Click).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from scaling import __version__
from scaling.cli import analysis as cli_analysis
from scaling.cli import calibrate as cli_calibrate
from scaling.cli import fit as cli_fit
from scaling.cli import plan as cli_plan
from scaling.cli import plot as cli_plot
from scaling.cli import plot_isoflop as cli_plot_isoflop
from scaling.cli import project as cli_project
from scaling.cli import report as cli_report
from scaling.cli import runs as cli_runs
from scaling.cli import suggest as cli_suggest
from scaling.cli import train as cli_train
from scaling.cli.render import printable, reflow_app_help

app = typer.Typer(
    name="scaling",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"scaling {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Run database (SQLite file). Default: $SCALING_DB, else "
                     "~/.local/share/scaling/runs.sqlite, built from the shipped published grid on first use.",
                     envvar="SCALING_DB", show_envvar=False),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Fit scaling surfaces to MAE runs and project what it takes to reach a target.

    `scaling project` says what reaches human-level top-5 on the published grid, `scaling compare` backtests
    every form side by side, and `scaling train demo` trains a tiny real-data grid point (the train extra).

    [bold]Examples[/bold]

      scaling project
      scaling project --figure projection.png --bootstrap 1000
      scaling compare --metric top5
      scaling fit --form powerlaw --metric top1
      scaling plot iso --out iso.png
      scaling runs list --arch vit_h14
      scaling suggest --target human-top5 --budget 1e20
      scaling report --html study.html
      scaling train demo
    """
    ctx.obj = {"db": db}


app.add_typer(cli_runs.runs_app, name="runs")
cli_fit.register(app)
cli_project.register(app)
cli_train.register(app)
cli_plot.register(app)
cli_plot_isoflop.register(cli_plot.plot_app)
cli_analysis.register(app)
cli_calibrate.register(app)
cli_plan.register(app)
cli_suggest.register(app)
cli_report.register(app)
reflow_app_help(app)  # prose paragraphs of every --help wrap at the terminal; examples keep their lines


def main() -> None:
    """Run the CLI; usage errors (an unknown option or command, a bad value) are one line on stderr, exit 2."""
    # Typer vendors Click: its UsageError is the base of the public typer.BadParameter.
    usage_error: Any = typer.BadParameter.__mro__[1]  # Click's UsageError (show, exit_code, format_message)
    try:
        code = app(standalone_mode=False)  # without standalone mode Click returns typer.Exit's code
    except usage_error as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `scaling` alone (or a group alone): the help, as Click does
            exc.show()
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        message = " ".join(exc.format_message().split())  # Click may wrap a long message: keep one line
        print(f"error: {printable(message)}{hint}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(1)
    except typer.Exit as exc:  # typer.Exit(code) from a command
        sys.exit(exc.exit_code)
    if isinstance(code, int) and code:
        sys.exit(code)
