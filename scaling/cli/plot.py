"""``scaling plot KIND --out FILE``: the study's figures from the run database (.png, .pdf or .svg).

Every command loads the grid and fits it as ``scaling fit`` does, computes the figure's data with
``scaling.plots`` and writes the file byte-reproducibly. stdout gets the path written (or, with --json,
the numbers behind the figure); notes go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scaling.cli.common import domain_errors, emit_json, parse_assignments, split_csv
from scaling.cli.fit import (
    DEFAULT_AXES,
    DEFAULT_FORM,
    PAPER_SCENARIO,
    EvalSetOpt,
    FormOpt,
    GroupOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    form_options,
    load_data,
    run_bootstrap,
    run_fit,
)
from scaling.errors import ScalingError
from scaling.cli.render import stderr_console
from scaling.targets import DEFAULT_EVAL_SET, DEFAULT_PROTOCOL, DEFAULT_TARGET, resolve_target

if TYPE_CHECKING:
    import pandas as pd

    from scaling.fitting import FitResult

plot_app = typer.Typer(
    name="plot",
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Draw the study's figures to .png, .pdf or .svg files (byte-reproducible).",
)

OutOpt = Annotated[Path, typer.Option("--out", "-o", help="File to write: .png, .pdf or .svg.")]
MetricOpt = Annotated[str, typer.Option(help="Metric: top1 or top5.")]
BandOpt = Annotated[
    str, typer.Option(help="Band around the fit: confidence (mean surface), prediction (a new run) or none.")
]
LevelOpt = Annotated[float, typer.Option(help="Level of the band or interval.")]
DpiOpt = Annotated[float | None, typer.Option(help="Resolution of .png files [default: 150].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the numbers behind the figure as one JSON document.")]
ResamplesOpt = Annotated[int, typer.Option("--bootstrap", min=2, help="Bootstrap resamples.")]
DEFAULT_BACKTEST_FORMS = "poly1,logit1,powerlaw"  # one form of each family


def register(app: typer.Typer) -> None:
    app.add_typer(plot_app, name="plot")


def _check_out(out: Path) -> None:
    from scaling.plots.style import figure_format

    try:
        figure_format(out)
    except ScalingError as exc:
        raise typer.BadParameter(str(exc), param_hint="--out") from None


def _finish(fig: Any, out: Path, dpi: float | None, summary: dict[str, Any], schema: str, as_json: bool) -> None:
    from scaling.plots.style import save_figure

    save_figure(fig, out, dpi=dpi)
    for note in summary.get("notes", []) or []:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    if as_json:
        emit_json(schema, {"path": str(out), **summary})
    else:
        print(out)


def _grid_and_fit(ctx: typer.Context, *, metric: str, form: str, selection: str, protocol: str | None,
                  eval_set: str | None) -> tuple[pd.DataFrame, FitResult]:
    axes = split_csv(DEFAULT_AXES)
    frame, y, _ = load_data(ctx, data=None, y=None, axes=axes, protocol=protocol or DEFAULT_PROTOCOL,
                            eval_set=eval_set or DEFAULT_EVAL_SET, metric=metric, selection=selection)
    return frame, run_fit(frame, form, y, axes, "accuracy", metric, None, None)


def _band(band: str) -> str | None:
    if band not in ("confidence", "prediction", "none"):
        raise typer.BadParameter(f"unknown band {band!r}; use confidence, prediction or none", param_hint="--band")
    return None if band == "none" else band


@plot_app.command("data")
@domain_errors
def data_cmd(
    ctx: typer.Context,
    out: OutOpt,
    metric: MetricOpt = "top1",
    form: FormOpt = DEFAULT_FORM,
    band: BandOpt = "confidence",
    level: LevelOpt = 0.95,
    image_px: Annotated[float, typer.Option(help="Resolution of the runs shown (all sizes exist at 224).")] = 224,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Figure 1: accuracy vs pretraining hours, one colour per model size, with the fitted curves and band.

    Subset seeds are small markers and their mean a large one; the fit is solid over the data and dashed
    beyond it.

    [bold]Examples[/bold]

      scaling plot data --out fig1-data.png
      scaling plot data --metric top5 --band prediction --out fig1-top5.pdf
      scaling plot data --form powerlaw --band none --out fig1-powerlaw.svg
    """
    from scaling import plots

    _check_out(out)
    grid, fit = _grid_and_fit(ctx, metric=metric, form=form, selection=selection, protocol=protocol,
                              eval_set=eval_set)
    data = plots.accuracy_curves_data(grid, fit, where={"image_px": image_px}, band=_band(band), level=level)
    fig, ax = plots.new_figure()
    plots.plot_accuracy_curves(data, ax)
    _finish(fig, out, dpi, data.summary(), "scaling.plot.data/v1", as_json)


@plot_app.command("resolution")
@domain_errors
def resolution_cmd(
    ctx: typer.Context,
    out: OutOpt,
    metric: MetricOpt = "top1",
    form: FormOpt = DEFAULT_FORM,
    band: BandOpt = "confidence",
    level: LevelOpt = 0.95,
    arch: Annotated[str, typer.Option(help="Model size whose resolutions are compared.")] = "vit_h14",
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Figure 2: the effect of image resolution: ViT-H/14 at 224, 448 and 476 px vs pretraining hours.

    [bold]Examples[/bold]

      scaling plot resolution --out fig2-resolution.png
      scaling plot resolution --metric top5 --band prediction --out fig2-top5.pdf
    """
    from scaling import plots

    _check_out(out)
    grid, fit = _grid_and_fit(ctx, metric=metric, form=form, selection=selection, protocol=protocol,
                              eval_set=eval_set)
    data = plots.accuracy_curves_data(grid, fit, group_by="image_px", where={"arch": arch}, band=_band(band),
                                      level=level)
    fig, ax = plots.new_figure()
    plots.plot_accuracy_curves(data, ax)
    _finish(fig, out, dpi, data.summary(), "scaling.plot.resolution/v1", as_json)


@plot_app.command("iso")
@domain_errors
def iso_cmd(
    ctx: typer.Context,
    out: OutOpt,
    target: Annotated[
        str, typer.Option(help="A named target (see `scaling targets`) or a number: 0.8 or 80%.")
    ] = DEFAULT_TARGET,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target [default: top1].")] = None,
    form: FormOpt = DEFAULT_FORM,
    mode: Annotated[
        str, typer.Option(help="Projection drawn: scale (every axis by one factor), solve (one axis), at (a point) "
                               "or none.")
    ] = "scale",
    axis: Annotated[str, typer.Option(help="Axis to solve for in --mode solve.")] = "data_hours",
    at: Annotated[str, typer.Option(help="Point for --mode at, as NAME=VALUE,...")] = PAPER_SCENARIO,
    image_px: Annotated[
        float | None, typer.Option(help="Resolution of the map [default: the projection's, else 476].")
    ] = None,
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
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Figure 3: iso-accuracy contours over (parameters, hours), the target highlighted, and the projection.

    The map is drawn at the projection's resolution, so the projected point sits on the target contour.
    Trained runs are overlaid, the region beyond them is hatched, and the projection carries its interval.
    With the closed-form band (linear forms): the dashed target contours of the band and, along the path
    from the largest trained run, where its optimistic and pessimistic bounds reach the target. With the
    bootstrap: the percentile interval of the projected point and of the accuracy there.

    [bold]Examples[/bold]

      scaling plot iso --metric top5 --out docs/figures/iso-accuracy.png
      scaling plot iso --target 80% --metric top1 --form logit1 --out iso-top1.pdf
      scaling plot iso --mode at --at n_params=2.5e9,data_hours=20000,image_px=952 --out paper-scenario.png
      scaling plot iso --mode none --image-px 224 --out iso-224.svg
      scaling plot iso --metric top5 --interval bootstrap --bootstrap 1000 --seed 1 --out iso-boot.png
    """
    from scaling import plots
    from scaling.projection import project_at, project_axis, project_scale

    _check_out(out)
    if mode not in {"scale", "solve", "at", "none"}:
        raise typer.BadParameter(f"unknown mode {mode!r}; use scale, solve, at or none", param_hint="--mode")
    if interval not in {"auto", "band", "bootstrap", "none"}:
        raise typer.BadParameter(f"unknown interval {interval!r}; use auto, band, bootstrap or none",
                                 param_hint="--interval")
    tgt = resolve_target(target, metric=metric, eval_set=eval_set, protocol=protocol)
    grid, fit = _grid_and_fit(ctx, metric=tgt.metric, form=form, selection=selection, protocol=tgt.protocol,
                              eval_set=tgt.eval_set)
    projection = None
    if mode == "scale":
        projection = project_scale(fit, tgt.value)
    elif mode == "solve":
        projection = project_axis(fit, tgt.value, axis)
    elif mode == "at":
        projection = project_at(fit, parse_assignments(at, "--at"), target=tgt.value)
    if interval == "auto":
        from scaling.forms import get_form

        interval = "band" if get_form(form).family == "linear" else "bootstrap"
    chosen: Any = None if interval == "none" else "band"
    if interval == "bootstrap" and projection is not None and projection.point is not None:
        from scaling.resampling import projection_quantities
        from scaling.projection import reference_point

        ref = reference_point(fit)
        derived = projection_quantities(
            tgt.value, reference=ref, at=projection.point, scale=mode == "scale",
            solve_axis=axis if mode == "solve" else None)
        boot = run_bootstrap(grid, fit, n=n_boot, seed=seed, levels=(level,), group=group,
                             options=form_options(form, tgt.metric, None, None), derived=derived)
        chosen = plots.bootstrap_interval(boot, projection, level=level)
    data = plots.iso_accuracy_data(fit, grid=grid, image_px=image_px, target=tgt, projection=projection,
                                   interval=chosen, level=level)
    fig, ax = plots.new_figure(figsize=plots.ISO_FIGSIZE)
    plots.plot_iso_accuracy(data, ax)
    _finish(fig, out, dpi, data.summary(), "scaling.plot.iso/v1", as_json)


@plot_app.command("backtest")
@domain_errors
def backtest_cmd(
    ctx: typer.Context,
    out: OutOpt,
    forms: Annotated[
        str, typer.Option("--forms", help="Comma-separated forms, or 'all' (the power laws take a while).")
    ] = DEFAULT_BACKTEST_FORMS,
    split: Annotated[
        str | None,
        typer.Option(help="A split's name or kind (joint, leave-largest-out, rolling-origin: pooled) [default: the "
                          "split every form could fit with the most held-out runs]."),
    ] = None,
    metric: MetricOpt = "top1",
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Figure 4: backtest parity: each form fitted without the held-out runs, predicted vs observed.

    The splits are those of `scaling backtest` (fit on the smaller part of the grid, predict the larger);
    the legend gives each form's held-out RMSE and bias on the split drawn.

    [bold]Examples[/bold]

      scaling plot backtest --out fig4-backtest.png
      scaling plot backtest --forms all --split "largest data_hours" --out fig4-all.pdf
      scaling plot backtest --forms poly1,logit1 --split rolling-origin --metric top5 --out fig4-top5.svg
    """
    from scaling import plots
    from scaling.backtesting import backtest
    from scaling.forms import get_form, list_forms

    _check_out(out)
    names = [f.name for f in list_forms()] if forms.strip().lower() == "all" else split_csv(forms)
    if not names:
        raise ScalingError("--forms needs at least one form (or 'all')")
    for name in names:
        get_form(name)
    axes = split_csv(DEFAULT_AXES)
    frame, y, _ = load_data(ctx, data=None, y=None, axes=axes, protocol=protocol or DEFAULT_PROTOCOL,
                            eval_set=eval_set or DEFAULT_EVAL_SET, metric=metric, selection=selection)
    result = backtest(frame, names, y=y, axes=axes, options={f: form_options(f, metric, None, None) for f in names})
    rows = plots.backtest_parity_frame(result, frame, split=split)
    data = plots.parity_data(rows, forms=[f for f in names if f in set(rows["form"])],
                             title=plots.backtest_title(result, split))
    fig, ax = plots.new_figure(figsize=(5.6, 5.8))
    plots.plot_backtest_parity(data, ax)
    summary = {**data.summary(), "split": split or plots.default_split(result), "notes": list(result.notes),
               "ranking": result.ranking}
    _finish(fig, out, dpi, summary, "scaling.plot.backtest/v1", as_json)


@plot_app.command("bootstrap")
@domain_errors
def bootstrap_cmd(
    ctx: typer.Context,
    out: OutOpt,
    target: Annotated[
        str, typer.Option(help="A named target (see `scaling targets`) or a number: 0.8 or 80%.")
    ] = DEFAULT_TARGET,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target [default: top1].")] = None,
    form: FormOpt = DEFAULT_FORM,
    question: Annotated[
        str, typer.Option(help="scale (every axis by one factor from the largest run) or solve (data hours only).")
    ] = "scale",
    n_boot: ResamplesOpt = 1000,
    seed: SeedOpt = 0,
    group: GroupOpt = None,
    level: LevelOpt = 0.90,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Figure 5: the bootstrap distribution of the pretraining compute needed to reach the target.

    Each resample of whole runs is refitted and projected as `scaling project --bootstrap` does; the
    histogram is over log FLOPs, with the point estimate, the median and the percentile interval.
    Resamples that never reach the target are counted in the legend (and open the interval's upper end
    when there are enough of them).

    [bold]Examples[/bold]

      scaling plot bootstrap --out fig5-compute.png
      scaling plot bootstrap --form powerlaw --bootstrap 500 --seed 1 --out fig5-powerlaw.pdf
      scaling plot bootstrap --question solve --level 0.95 --out fig5-solve.svg
    """
    from scaling import plots
    from scaling.resampling import projection_quantities
    from scaling.projection import compute_assumptions_from_grid, reference_point

    _check_out(out)
    if question not in {"scale", "solve"}:
        raise typer.BadParameter(f"unknown question {question!r}; use scale or solve", param_hint="--question")
    tgt = resolve_target(target, metric=metric, eval_set=eval_set, protocol=protocol)
    grid, fit = _grid_and_fit(ctx, metric=tgt.metric, form=form, selection=selection, protocol=tgt.protocol,
                              eval_set=tgt.eval_set)
    ref = reference_point(fit)
    assumptions = compute_assumptions_from_grid(grid, ref)
    if assumptions is None:
        raise ScalingError("the grid has no samples_seen to derive passes over the data from (compute model)")
    derived = projection_quantities(tgt.value, reference=ref, scale=question == "scale",
                                    solve_axis="data_hours" if question == "solve" else None, compute=assumptions)
    boot = run_bootstrap(grid, fit, n=n_boot, seed=seed, levels=(level,), group=group,
                         options=form_options(form, tgt.metric, None, None), derived=derived)
    data = plots.compute_distribution_from_bootstrap(boot, key=f"{question}.flops", target=tgt.value,
                                                     target_label=f"{tgt.name} ({100 * tgt.value:.1f}% {tgt.metric})",
                                                     level=level)
    fig, ax = plots.new_figure(figsize=(6.4, 4.6))
    plots.plot_compute_distribution(data, ax)
    summary = {**data.summary(), "form": fit.form, "question": question, "seed": seed, "n_ok": boot.n_ok,
               "notes": list(boot.notes)}
    _finish(fig, out, dpi, summary, "scaling.plot.bootstrap/v1", as_json)


@plot_app.command("frontier")
@domain_errors
def frontier_cmd(
    ctx: typer.Context,
    out: OutOpt,
    target: Annotated[
        str, typer.Option(help="A named target (see `scaling targets`) or a number: 0.8 or 80%.")
    ] = DEFAULT_TARGET,
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target [default: top1].")] = None,
    form: FormOpt = DEFAULT_FORM,
    rows: Annotated[int, typer.Option(min=2, help="Parameter counts on the frontier.")] = 9,
    selection: SelectionOpt = "best-epoch",
    protocol: ProtocolOpt = None,
    eval_set: EvalSetOpt = None,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The compute-optimal frontier: at each parameter count, the cheapest (hours, px) reaching the target.

    Compute is the MAE FLOPs model with the passes over the data of the largest trained run, as
    `scaling project --optimal` (default bounds); the optimum is starred.

    [bold]Examples[/bold]

      scaling plot frontier --out frontier.png
      scaling plot frontier --form logit1 --rows 13 --out frontier-logit1.pdf
    """
    from scaling import plots
    from scaling.allocation import optimal_allocation
    from scaling.projection import compute_assumptions_from_grid, reference_point

    _check_out(out)
    tgt = resolve_target(target, metric=metric, eval_set=eval_set, protocol=protocol)
    grid, fit = _grid_and_fit(ctx, metric=tgt.metric, form=form, selection=selection, protocol=tgt.protocol,
                              eval_set=tgt.eval_set)
    assumptions = compute_assumptions_from_grid(grid, reference_point(fit))
    if assumptions is None:
        raise ScalingError("the grid has no samples_seen to derive passes over the data from (compute model)")
    result = optimal_allocation(fit, tgt.value, assumptions, frontier_rows=rows)
    data = plots.frontier_data(result, target_label=f"{tgt.name} ({100 * tgt.value:.1f}% {tgt.metric})")
    fig, ax = plots.new_figure()
    plots.plot_frontier(data, ax)
    _finish(fig, out, dpi, {**data.summary(), "form": fit.form, "notes": list(result.notes)},
            "scaling.plot.frontier/v1", as_json)


@plot_app.command("loss")
@domain_errors
def loss_cmd(
    ctx: typer.Context,
    out: OutOpt,
    runs: Annotated[str | None, typer.Option(help="Comma-separated run names or ids [default: by --fraction].")] = None,
    fraction: Annotated[float, typer.Option(help="Data fraction of the runs shown (1.0: all ~5,000 h).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Subset seed of the runs shown.")] = 1,
    key: Annotated[str, typer.Option(help="History key to draw.")] = "train_loss",
    phase: Annotated[str, typer.Option(help="History phase: pretrain or finetune.")] = "pretrain",
    linear_x: Annotated[bool, typer.Option("--linear-x", help="Linear x axis (default: log).")] = False,
    dpi: DpiOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Figure 6: MAE pretraining loss curves from the run database's history, coloured by model size.

    [bold]Examples[/bold]

      scaling plot loss --out fig6-loss.png
      scaling plot loss --fraction 0.001 --seed 2 --out loss-5h.png
      scaling plot loss --runs vith14@476_1.0_1,vits14_1.0_1 --linear-x --out loss-two.svg
    """
    from scaling import plots
    from scaling.cli.common import open_database

    _check_out(out)
    db = open_database(ctx)
    data = plots.loss_curves_data(db, runs=split_csv(runs) if runs else None, data_fraction=fraction,
                                  subset_seed=seed, key=key, phase=phase)
    fig, ax = plots.new_figure()
    plots.plot_loss_curves(data, ax, log_x=not linear_x)
    _finish(fig, out, dpi, data.summary(), "scaling.plot.loss/v1", as_json)


@plot_app.command("all")
@domain_errors
def all_cmd(
    ctx: typer.Context,
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Directory to write the figures to (created).")],
    fmt: Annotated[str, typer.Option("--format", help="png, pdf or svg.")] = "png",
    forms: Annotated[str, typer.Option("--forms", help="Forms of the backtest figure.")] = DEFAULT_BACKTEST_FORMS,
    n_boot: ResamplesOpt = 1000,
    dpi: DpiOpt = None,
) -> None:
    """Every figure with its default options, into one directory.

    [bold]Examples[/bold]

      scaling plot all --out-dir figures
      scaling plot all --out-dir figures --format pdf --forms all
    """
    from scaling.plots.style import FORMATS

    if fmt not in FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r}; use png, pdf or svg", param_hint="--format")
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[str, Any, dict[str, Any]]] = [
        ("accuracy-vs-data", data_cmd, {}),
        ("resolution", resolution_cmd, {}),
        ("iso-accuracy", iso_cmd, {"metric": "top5"}),
        ("backtest", backtest_cmd, {"forms": forms}),
        ("bootstrap-compute", bootstrap_cmd, {"n_boot": n_boot}),
        ("frontier", frontier_cmd, {}),
        ("loss-curves", loss_cmd, {}),
    ]
    for name, command, extra in jobs:
        command(ctx, out=out_dir / f"{name}.{fmt}", dpi=dpi, **extra)
