"""``scaling plot KIND --out FILE``: the study's figures from the run database (.png, .pdf or .svg), or a
table's (``--data FILE --y COLUMN --axes A,B --kind loss``: ``data``, ``iso``, ``backtest``, ``bootstrap``).

Every command loads the grid (or the table) and fits it as ``scaling fit`` does, computes the figure's data
with ``scaling.plots`` and writes the file byte-reproducibly. stdout gets the path written (or, with --json,
the numbers behind the figure); notes go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scaling.cli import validate
from scaling.cli.common import domain_errors, parse_assignments, split_csv
from scaling.cli.options import (
    AllowLargeOpt,
    DataOpt,
    EvalSetOpt,
    FormOpt,
    GroupOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    YOpt,
    cli_group,
)
from scaling.cli.plot_options import (
    BACKTEST_FORMS,
    BandOpt,
    DpiOpt,
    JsonOpt,
    LevelOpt,
    MetricOpt,
    OutOpt,
    ResamplesOpt,
    TableAxesOpt,
    TableKindOpt,
    TargetOpt,
    band_choice,
    bounded,
    check_out,
    finish,
    run_grid,
    table_of,
)
from scaling.cli.progress import progress_bar
from scaling.core.targets import default_target_for, resolve_target
from scaling.defaults import DEFAULT_FORM, DEFAULT_METRIC, DEFAULT_TARGET

if TYPE_CHECKING:
    pass


plot_app = typer.Typer(
    name="plot",
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Draw the study's figures to .png, .pdf or .svg files (byte-reproducible). With --data FILE --y "
         "COLUMN --axes A,B --kind loss, data, iso, backtest and bootstrap draw any table in its own words; "
         "resolution, frontier and loss are figures of the run database.",
)

def register(app: typer.Typer) -> None:
    app.add_typer(plot_app, name="plot")


@plot_app.command("data")
@domain_errors
def data_cmd(
    ctx: typer.Context,
    out: OutOpt,
    metric: MetricOpt = DEFAULT_METRIC,
    form: FormOpt = DEFAULT_FORM,
    band: BandOpt = "confidence",
    level: LevelOpt = 0.95,
    image_px: Annotated[float, typer.Option(help="Resolution of the runs shown (all sizes exist at 224).",
                                            callback=validate.image_px)] = 224,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    axes: TableAxesOpt = None,
    kind: TableKindOpt = None,
    x_axis: Annotated[str | None, typer.Option("--x-axis", help="Axis across \\[default: data_hours; a "
                                               "table's last axis].")] = None,
    group_by: Annotated[str | None, typer.Option("--group-by", help="Column with one curve per value "
                                                 "\\[default: arch; a table's first other axis].")] = None,
    where: Annotated[str | None, typer.Option(help="Only the rows with these values, NAME=VALUE,...",
                                              callback=validate.where)] = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Figure 1: accuracy vs pretraining hours, one colour per model size, with the fitted curves and band.

    Subset seeds are small markers and their mean a large one; the fit is solid over the data and dashed
    beyond it. With --data, any table: its --y against its last axis, one curve per level of its first
    (legend entries as params=3.2e7), a loss in its own units.

    [bold]Examples[/bold]

      scaling plot data --out fig1-data.png
      scaling plot data --metric top5 --band prediction --out fig1-top5.pdf
      scaling plot data --form powerlaw --band none --out fig1-powerlaw.svg
      scaling plot data --data lm.csv --y loss --axes params,tokens \\
          --kind loss --form powerlaw --out loss-curves.png
    """
    from scaling.plots.figures import accuracy_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    frame, table = table_of(ctx, data, y, axes, kind)
    if frame is None:
        frame = run_grid(ctx, metric=metric, selection=selection, protocol=protocol, eval_set=eval_set)
    result = accuracy_figure(frame, metric=metric, form=form, band=band_choice(band), level=level, image_px=image_px,
                             x_axis=x_axis, group_by=group_by,
                             where=parse_assignments(where, "--where") if where else None, **table)
    finish(result, out, dpi, as_json)


@plot_app.command("resolution")
@domain_errors
def resolution_cmd(
    ctx: typer.Context,
    out: OutOpt,
    metric: MetricOpt = DEFAULT_METRIC,
    form: FormOpt = DEFAULT_FORM,
    band: BandOpt = "confidence",
    level: LevelOpt = 0.95,
    arch: Annotated[str, typer.Option(help="Model size whose resolutions are compared.")] = "vit_h14",
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Figure 2: the effect of image resolution: ViT-H/14 at 224, 448 and 476 px vs pretraining hours.

    [bold]Examples[/bold]

      scaling plot resolution --out fig2-resolution.png
      scaling plot resolution --metric top5 --band prediction --out res.pdf
    """
    from scaling.plots.figures import resolution_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    frame = run_grid(ctx, metric=metric, selection=selection, protocol=protocol, eval_set=eval_set)
    result = resolution_figure(frame, metric=metric, form=form, band=band_choice(band), level=level, arch=arch)
    finish(result, out, dpi, as_json)


@plot_app.command("iso")
@domain_errors
def iso_cmd(
    ctx: typer.Context,
    out: OutOpt,
    target: TargetOpt = None,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target \\[default: top1].")] = None,
    form: FormOpt = DEFAULT_FORM,
    mode: Annotated[
        str, typer.Option(help="Projection drawn: scale (every axis by one factor), solve (one axis), at (a point) "
                               "or none.")
    ] = "scale",
    axis: Annotated[str | None, typer.Option(help="Axis to solve for in --mode solve \\[default: data_hours; a "
                                                  "table's last axis].")] = None,
    at: Annotated[
        str | None, typer.Option(help="Point for --mode at, as NAME=VALUE,... \\[default: the paper's scenario, "
                                      "n_params=2.5e9, data_hours=20000, image_px=952; a table's largest "
                                      "point].", callback=validate.at)
    ] = None,
    image_px: Annotated[
        float | None, typer.Option(help="Resolution of the map \\[default: the projection's, else 476].",
                                   callback=validate.image_px)
    ] = None,
    map_axes: Annotated[str | None, typer.Option("--map-axes", help="The map's two axes, ACROSS,UP "
                                                 "\\[default: data_hours,n_params; a table's last and first].",
                                                 callback=validate.map_axes)] = None,
    hold: Annotated[str | None, typer.Option(help="Values of the other axes, NAME=VALUE,... \\[default: the "
                                             "projection's, else the largest trained].",
                                             callback=validate.hold)] = None,
    interval: Annotated[
        str, typer.Option(help="Interval of the projection: band (the fit's closed-form confidence band), bootstrap, "
                               "none, or auto (band where the form has one, else bootstrap).")
    ] = "auto",
    level: LevelOpt = 0.95,
    n_boot: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
    group: GroupOpt = None,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    axes: TableAxesOpt = None,
    kind: TableKindOpt = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Figure 3: iso-accuracy contours over (parameters, hours), the target highlighted, and the projection.

    The map is drawn at the projection's resolution, so the projected point sits on the target contour.
    Trained runs are overlaid, the region beyond them is hatched, and the projection carries its interval.
    With the closed-form band (linear forms): the dashed target contours of the band and, along the path
    from the largest trained run, where its optimistic and pessimistic bounds reach the target. With the
    bootstrap: the percentile interval of the projected point and of the accuracy there. With --data, any
    table over any two of its axes (--map-axes), the others held (--hold), a loss in its own units.

    [bold]Examples[/bold]

      scaling plot iso --metric top5 --out docs/figures/iso-accuracy.png
      scaling plot iso --target 80% --metric top1 --form logit1 --out iso.pdf
      scaling plot iso --mode at \\
          --at n_params=2.5e9,data_hours=20000,image_px=952 --out scenario.png
      scaling plot iso --mode none --image-px 224 --out iso-224.svg
      scaling plot iso --metric top5 --interval bootstrap --bootstrap 1000 \\
          --seed 1 --out iso-boot.png
      scaling plot iso --data lm.csv --y loss --axes params,tokens \\
          --kind loss --form powerlaw --target 2.2 --bootstrap 200 --out lm.png
    """
    from scaling.plots.figures import iso_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    if mode not in {"scale", "solve", "at", "none"}:
        raise typer.BadParameter(f"unknown mode {mode!r}; use scale, solve, at or none", param_hint="--mode")
    if interval not in {"auto", "band", "bootstrap", "none"}:
        raise typer.BadParameter(f"unknown interval {interval!r}; use auto, band, bootstrap or none",
                                 param_hint="--interval")
    frame, table = table_of(ctx, data, y, axes, kind)
    if frame is None:
        tgt = resolve_target(target or default_target_for(eval_set), metric=metric, eval_set=eval_set,
                             protocol=protocol)
        frame = run_grid(ctx, metric=tgt.metric, selection=selection, protocol=tgt.protocol, eval_set=tgt.eval_set)
    if interval in ("bootstrap", "auto"):
        bounded(n_boot, frame)
    with progress_bar() as update:
        result = iso_figure(frame, target=target, metric=metric, form=form, mode=mode, axis=axis,
                            at=parse_assignments(at, "--at") if at else None, image_px=image_px,
                            interval=interval, level=level,
                            n_boot=n_boot, seed=seed, group=cli_group(group), selection=selection,
                            protocol=protocol, eval_set=eval_set, progress=update,
                            map_axes=split_csv(map_axes) if map_axes else None,
                            held=parse_assignments(hold, "--hold") if hold else None, **table)
    finish(result, out, dpi, as_json)


@plot_app.command("backtest")
@domain_errors
def backtest_cmd(
    ctx: typer.Context,
    out: OutOpt,
    forms: Annotated[
        str, typer.Option("--forms", help="Comma-separated forms, or 'all' (the power laws take a while).")
    ] = BACKTEST_FORMS,
    split: Annotated[
        str | None,
        typer.Option(help="A split's name or kind (joint, leave-largest-out, rolling-origin: pooled) \\[default: every "
                          "split, one panel each]."),
    ] = None,
    metric: MetricOpt = DEFAULT_METRIC,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    axes: TableAxesOpt = None,
    kind: TableKindOpt = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Figure 4: backtest parity: each form fitted without the held-out runs, predicted vs observed.

    The splits are those of `scaling backtest` (fit on the smaller part of the grid, predict the larger);
    the legend gives each form's held-out RMSE and bias on each split (in points of percent for an
    accuracy, in the table's units for a loss).

    [bold]Examples[/bold]

      scaling plot backtest --out fig4-backtest.png
      scaling plot backtest --forms all --split "largest data_hours" \\
          --out fig4-all.pdf
      scaling plot backtest --forms poly1,logit1 --split rolling-origin \\
          --metric top5 --out fig4-top5.svg
      scaling plot backtest --data lm.csv --y loss --axes params,tokens \\
          --kind loss --forms poly1,powerlaw --out lm-backtest.png
    """
    from scaling.cli.options import forms_list  # lazy: keeps `scaling --help` fast
    from scaling.plots.figures import backtest_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    frame, table = table_of(ctx, data, y, axes, kind)
    if frame is None:
        frame = run_grid(ctx, metric=metric, selection=selection, protocol=protocol, eval_set=eval_set)
    result = backtest_figure(frame, forms=forms_list(forms), split=split, metric=metric, **table)
    finish(result, out, dpi, as_json)


@plot_app.command("bootstrap")
@domain_errors
def bootstrap_cmd(
    ctx: typer.Context,
    out: OutOpt,
    target: TargetOpt = None,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target \\[default: top1].")] = None,
    form: FormOpt = DEFAULT_FORM,
    question: Annotated[
        str, typer.Option(help="scale (every axis by one factor from the largest run) or solve (data hours only; "
                               "a table's --axis).")
    ] = "scale",
    axis: Annotated[str | None, typer.Option(help="The axis a table's --question solve solves \\[default: its "
                                                  "last].")] = None,
    n_boot: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
    group: GroupOpt = None,
    level: LevelOpt = 0.90,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    axes: TableAxesOpt = None,
    kind: TableKindOpt = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Figure 5: the bootstrap distribution of the pretraining compute needed to reach the target.

    Each resample of whole runs is refitted and projected as `scaling project --bootstrap` does; the
    histogram is over log FLOPs, with the point estimate, the median and the percentile interval.
    Resamples that never reach the target are counted in the legend (and open the interval's upper end
    when there are enough of them). A table (--data) has no compute model: the figure shows the value of
    --axis needed (--question solve) or the factor on every axis (scale), and needs --target.

    [bold]Examples[/bold]

      scaling plot bootstrap --out fig5-compute.png
      scaling plot bootstrap --form powerlaw --bootstrap 500 --seed 1 \\
          --out fig5-powerlaw.pdf
      scaling plot bootstrap --question solve --level 0.95 --out fig5-solve.svg
      scaling plot bootstrap --data lm.csv --y loss --axes params,tokens \\
          --kind loss --form powerlaw --target 2.2 --question solve \\
          --bootstrap 200 --out lm-tokens.png
    """
    from scaling.plots.figures import bootstrap_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    if question not in {"scale", "solve"}:
        raise typer.BadParameter(f"unknown question {question!r}; use scale or solve", param_hint="--question")
    frame, table = table_of(ctx, data, y, axes, kind)
    if frame is None:
        tgt = resolve_target(target or default_target_for(eval_set), metric=metric, eval_set=eval_set,
                             protocol=protocol)
        frame = run_grid(ctx, metric=tgt.metric, selection=selection, protocol=tgt.protocol, eval_set=tgt.eval_set)
    bounded(n_boot, frame)
    with progress_bar() as update:
        result = bootstrap_figure(frame, target=target, metric=metric, form=form, question=question, n_boot=n_boot,
                                  seed=seed, group=cli_group(group), level=level, selection=selection,
                                  protocol=protocol, eval_set=eval_set, progress=update, axis=axis, **table)
    finish(result, out, dpi, as_json)


@plot_app.command("frontier")
@domain_errors
def frontier_cmd(
    ctx: typer.Context,
    out: OutOpt,
    target: Annotated[
        str | None, typer.Option(help="A named target (see `scaling targets`) or a number: 0.8 or 80% \\[default: "
                                      f"{DEFAULT_TARGET}, or the --eval-set's human target].")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target \\[default: top1].")] = None,
    form: FormOpt = DEFAULT_FORM,
    rows: Annotated[int, typer.Option(min=2, help="Parameter counts on the frontier.")] = 9,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The compute-optimal frontier: at each parameter count, the cheapest (hours, px) reaching the target.

    Compute is the MAE FLOPs model with the passes over the data of the largest trained run, as
    `scaling project --optimal` (default bounds); the optimum is starred.

    [bold]Examples[/bold]

      scaling plot frontier --out frontier.png
      scaling plot frontier --form logit1 --rows 13 --out frontier-logit1.pdf
    """
    from scaling.plots.figures import frontier_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    tgt = resolve_target(target or default_target_for(eval_set), metric=metric, eval_set=eval_set, protocol=protocol)
    frame = run_grid(ctx, metric=tgt.metric, selection=selection, protocol=tgt.protocol, eval_set=tgt.eval_set)
    result = frontier_figure(frame, target=target, metric=metric, form=form, rows=rows, selection=selection,
                             protocol=protocol, eval_set=eval_set)
    finish(result, out, dpi, as_json)


@plot_app.command("loss")
@domain_errors
def loss_cmd(
    ctx: typer.Context,
    out: OutOpt,
    runs: Annotated[
        str | None, typer.Option(help="Comma-separated run names or ids \\[default: by --fraction].")
    ] = None,
    fraction: Annotated[float, typer.Option(help="Data fraction of the runs shown (1.0: all ~5,000 h).",
                                            callback=validate.fraction)] = 1.0,
    seed: Annotated[int, typer.Option(help="Subset seed of the runs shown.", callback=validate.subset_seed)] = 1,
    key: Annotated[str, typer.Option(help="History key to draw.")] = "train_loss",
    phase: Annotated[str, typer.Option(help="History phase: pretrain or finetune.")] = "pretrain",
    linear_x: Annotated[bool, typer.Option("--linear-x", help="Linear x axis (default: log).")] = False,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Figure 6: MAE pretraining loss curves from the run database's history, coloured by model size.

    [bold]Examples[/bold]

      scaling plot loss --out fig6-loss.png
      scaling plot loss --fraction 0.001 --seed 2 --out loss-5h.png
      scaling plot loss --runs vith14@476_1.0_1,vits14_1.0_1 --linear-x \\
          --out loss-two.svg
    """
    from scaling.cli.common import open_database  # lazy: keeps `scaling --help` fast
    from scaling.plots.figures import loss_figure  # lazy: drawing (matplotlib) is optional

    check_out(out)
    result = loss_figure(open_database(ctx), runs=split_csv(runs) if runs else None, fraction=fraction, seed=seed,
                         key=key, phase=phase, log_x=not linear_x)
    finish(result, out, dpi, as_json)


@plot_app.command("all")
@domain_errors
def all_cmd(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Directory to write the figures to (created).")],
    fmt: Annotated[str, typer.Option("--format", help="png, pdf or svg.")] = "png",
    forms: Annotated[str, typer.Option("--forms", help="Forms of the backtest figure.")] = BACKTEST_FORMS,
    n_boot: ResamplesOpt = 1000,
    form: FormOpt = DEFAULT_FORM,
    target: TargetOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    axes: TableAxesOpt = None,
    kind: TableKindOpt = None,
    dpi: DpiOpt = None,
    allow_large_work: AllowLargeOpt = False,
) -> None:
    """Every figure with its default options, into one directory.

    With --data, a table's figures: data, iso and backtest, and bootstrap when --target is given
    (resolution, frontier and loss are the run database's).

    [bold]Examples[/bold]

      scaling plot all --out-dir figures
      scaling plot all --out-dir figures --format pdf --forms all
      scaling plot all --out-dir lm-figures --data lm.csv --y loss \\
          --axes params,tokens --kind loss --form powerlaw --target 2.2
    """
    from scaling.plots.style import FORMATS  # lazy: drawing (matplotlib) is optional

    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; use png, pdf or svg", param_hint="--format")
    table_of(ctx, data, y, axes, kind)  # checks the table's options before anything is written
    out_dir.mkdir(parents=True, exist_ok=True)
    table = {"data": data, "y": y, "axes": axes, "kind": kind}
    jobs: list[tuple[str, Any, dict[str, Any]]] = [
        ("accuracy-vs-data", data_cmd, {"form": form, **table}),
        ("iso-accuracy", iso_cmd, {"metric": "top5" if data is None else None, "form": form, "target": target,
                                   "n_boot": n_boot,
                                   **table}),
        ("backtest", backtest_cmd, {"forms": forms, **table}),
    ]
    if data is None or target is not None:
        jobs.append(("bootstrap-compute", bootstrap_cmd, {"n_boot": n_boot, "form": form, "target": target, **table}))
    if data is None:
        jobs[1:1] = [("resolution", resolution_cmd, {"form": form})]
        jobs += [("frontier", frontier_cmd, {"form": form, "target": target}),
                 ("loss-curves", loss_cmd, {})]
    for name, command, extra in jobs:
        command(ctx, out=out_dir / f"{name}.{fmt}", dpi=dpi, **extra)
