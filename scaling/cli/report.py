"""``scaling report --html study.html``: the study on one self-contained page (one call of ``scaling.report``,
written by ``StudyReport.save_html``); without --html the sections' headlines, with --json their numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scaling.cli import validate
from scaling.cli.common import domain_errors, split_csv
from scaling.cli.options import (
    AllowLargeOpt,
    DataOpt,
    EvalSetOpt,
    FormOpt,
    JsonOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    YOpt,
    load_table,
)
from scaling.cli.plot_options import TableAxesOpt, TableKindOpt, TargetOpt
from scaling.cli.progress import progress_bar
from scaling.cli.render import print_json, stderr_console, stdout_console, table
from scaling.defaults import (
    DEFAULT_FORM,
    DEFAULT_TARGET,
    REPORT_FORMS,
    REPORT_N_BOOT,
    REPORT_SUGGEST_N_BOOT,
    REPORT_SUGGEST_OUTCOMES,
    REPORT_SUGGEST_TOP,
)
from scaling.errors import ScalingError


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)


@domain_errors
def report_cmd(
    ctx: typer.Context,
    html: Annotated[Path | None, typer.Option("--html", help="Write the page here (.html): figures embedded, "
                                                             "nothing fetched.")] = None,
    target: TargetOpt = None,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target \\[default: the target's].")] = None,
    form: FormOpt = DEFAULT_FORM,
    forms: Annotated[str, typer.Option("--forms", help="Forms side by side and backtested, comma-separated.")]
    = ",".join(REPORT_FORMS),
    cost: Annotated[str | None, typer.Option(help="Cost of a --data table's candidate runs: '6nd' or an expression "
                                                  "of the axes (without it a table's suggestions are left out).",
                                             callback=validate.cost)] = None,
    n_boot: Annotated[int, typer.Option("--bootstrap", min=2, help="Resamples of each bootstrap.",
                                        callback=validate.bootstrap)] = REPORT_N_BOOT,
    suggest_n_boot: Annotated[int, typer.Option("--suggest-bootstrap", min=20, help="Resamples of the suggestion.",
                                                callback=validate.bootstrap)] = REPORT_SUGGEST_N_BOOT,
    outcomes: Annotated[int, typer.Option(min=1, help="Simulated outcomes per candidate.",
                                          callback=validate.outcomes)] = REPORT_SUGGEST_OUTCOMES,
    top: Annotated[int, typer.Option(min=1, help="Candidates shown.", callback=validate.top)] = REPORT_SUGGEST_TOP,
    seed: SeedOpt = 0,
    title: Annotated[str | None, typer.Option(help="The page's title \\[default: the study's target and data].")]
    = None,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    data: DataOpt = None,
    y: YOpt = None,
    axes: TableAxesOpt = None,
    kind: TableKindOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The study on one page: the projection, the forms side by side, the backtest, the iso map and what to
    train next, as one self-contained HTML file (figures embedded as data URIs, no script, nothing fetched)
    for sharing a study.

    Small settings keep it to seconds (about 15-25 s for the shipped grid on 2 cores): 3 forms,
    --bootstrap 100 resamples per bootstrap, a suggestion from 20 resamples x 1 outcome, the top 5 shown.
    A section the data cannot give (no target on a table, no --cost for a table's candidates) is left out
    with its reason.

    [bold]Examples[/bold]

      scaling report --html study.html
      scaling report --form logit1 --bootstrap 200 --html study.html
      scaling report --data lm.csv --y loss --axes params,tokens --kind loss \\
          --form powerlaw --target 2.2 --cost 6nd --html lm-study.html
      scaling report --json
    """
    import scaling  # lazy: keeps `scaling --help` fast

    if html is not None:
        _check_html(html)
    if data is None and (y is not None or axes is not None or kind is not None):
        raise ScalingError("--y, --axes and --kind describe a table: give it with --data FILE")
    if data is not None and axes is None:
        raise ScalingError("--data needs --axes naming the axis columns (e.g. --axes params,tokens)")
    tgt = None if data is not None else scaling.resolve_target(target or DEFAULT_TARGET, metric=metric,
                                                              eval_set=eval_set, protocol=protocol)
    frame = load_table(ctx, data=data, y=y, protocol=tgt.protocol if tgt else None,
                       eval_set=tgt.eval_set if tgt else None, metric=tgt.metric if tgt else None,
                       selection=selection)
    names = split_csv(forms)
    if len(names) < 2:
        raise ScalingError("--forms names at least two forms to set side by side")
    with progress_bar() as update:
        result = scaling.report(frame, tgt if tgt is not None else target, form=form, forms=names, metric=metric,
                                y=y, axes=split_csv(axes) if axes else None, kind=kind, cost=cost, n_boot=n_boot,
                                seed=seed, suggest_n_boot=suggest_n_boot, n_outcomes=outcomes, top=top, title=title,
                                progress=update)
        if html is not None:
            result.save_html(html)
    if as_json:
        print_json({**result.to_dict(), "html": None if html is None else str(html)})
        return
    rows = [[s.title, "yes" if s.ok else "left out", f"{s.seconds:.1f} s", s.headline()] for s in result.sections]
    stdout_console().print(table(result.title, ["section", "shown", "time", "headline"], rows,
                                 caption=f"{result.seconds:.1f} s in all"))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    if html is not None:
        print(html)


def _check_html(path: Path) -> None:
    """Before the work: an .html file in a folder that exists."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise typer.BadParameter(f"{path}: the report is written as .html (got {path.suffix or 'no suffix'!r})",
                                 param_hint="--html")
    if not path.absolute().parent.is_dir():
        raise ScalingError(f"--html {path}: folder {path.absolute().parent} does not exist")
    if path.is_dir():
        raise ScalingError(f"--html {path}: is a folder")
