"""``scaling suggest``: which runs to train next, ranked by expected shrinkage of the projection's interval per
pretraining FLOP (one call of ``scaling.suggest``, rendered)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from scaling.cli import validate
from scaling.cli.common import domain_errors, parse_assignments
from scaling.cli.options import (
    AllowLargeOpt,
    DataOpt,
    EvalSetOpt,
    FormOpt,
    GroupOpt,
    JsonOpt,
    KindOpt,
    PassesOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    TrainingLengthOpt,
    WorkersOpt,
    YOpt,
    cli_group,
    load_table,
)
from scaling.cli.progress import progress_bar
from scaling.cli.render import fmt_flops, print_json, stderr_console, stdout_console, table
from scaling.core.targets import default_target_for
from scaling.defaults import DEFAULT_FORM, DEFAULT_TARGET
from scaling.errors import ScalingError


def register(app: typer.Typer) -> None:
    app.command("suggest")(suggest_cmd)


def _fmt(v: float | None) -> str:
    return "-" if v is None or v != v else f"{v:.3g}"


@domain_errors
def suggest_cmd(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option(
        help=f"Named target (see `scaling targets`) or a value, e.g. 0.9 \\[default: {DEFAULT_TARGET}; on an OOD "
             "--eval-set such as mvh-sketch, its human target].")] = None,
    form: FormOpt = DEFAULT_FORM,
    metric: Annotated[str | None, typer.Option(help="Metric \\[default: the target's].")] = None,
    question: Annotated[
        str, typer.Option(help="scale: FLOPs needed to reach the target scaling every axis (the study's "
                               "question); at: the prediction at --at.")
    ] = "scale",
    at: Annotated[str | None, typer.Option(help="Point of --question at, NAME=VALUE,... naming every axis "
                                                "\\[default: the paper's 2.5B parameters, 20,000 h, 952 px].",
                                           callback=validate.at)] = None,
    budget: Annotated[float | None, typer.Option(help="Cap on a candidate run's pretraining FLOPs, e.g. 1e20.",
                                                 callback=validate.budget)] = None,
    candidates: Annotated[
        str | None, typer.Option(help="A CSV of candidate runs (arch, image_px, data_hours[, subset_seed, "
                                      "pretrain_flops]) or a grid spec 'arch=vit_h14; image_px=476; "
                                      "data_hours=5000,50000' \\[default: the grid's neighbours one step beyond it].")
    ] = None,
    n_boot: Annotated[int, typer.Option("--bootstrap", min=20, help="Bootstrap resamples per candidate.",
                                        callback=validate.bootstrap)] = 200,
    outcomes: Annotated[int, typer.Option(min=1, help="Simulated outcomes per candidate (antithetic pairs).",
                                          callback=validate.outcomes)] = 2,
    top: Annotated[int, typer.Option(min=1, help="How many of the best candidates to show and write.",
                                     callback=validate.top)] = 5,
    level: Annotated[float, typer.Option(help="Level of the projection's interval.", callback=validate.level)] = 0.9,
    seed: SeedOpt = 0,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    write_config: Annotated[
        Path | None, typer.Option("--write-config", help="Write a `scaling train point` config (TOML) for each of "
                                                         "the --top candidates into this directory (an existing "
                                                         "config with other content needs --force).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Let --write-config replace configs that differ.")] = False,
    figure: Annotated[Path | None, typer.Option(help="Draw the candidates on the iso-accuracy map (.png/.pdf/.svg).")]
    = None,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    data: DataOpt = None,
    y: YOpt = None,
    axes: Annotated[str | None, typer.Option(help="Axis columns of --data, comma-separated.")] = None,
    kind: KindOpt = "accuracy",
    cost: Annotated[str | None, typer.Option(help="Cost of a --data candidate: '6nd' or an expression of the axes "
                                                  "\\[default on the run database: the MAE FLOPs model].",
                                             callback=validate.cost)] = None,
    passes: PassesOpt = None,
    training_length: TrainingLengthOpt = None,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Which runs to train next: candidates ranked by expected shrinkage of the projection's interval per FLOP.

    For each candidate run (by default the trained grid's neighbours one step beyond it along architecture,
    px, hours and subset seed, and jointly) its outcome is simulated from the current bootstrap fits plus
    seed-to-seed noise (pooled SD across the grid's replicate subset seeds), every resample is refitted warm
    with the run added, and the projection's interval is measured again (a preposterior analysis). The
    table shows each run's pretraining FLOPs, the interval before and expected after, and the shrinkage per
    FLOP. A run's FLOPs are those `scaling project` and `scaling plan` give the same point: FLOPs per image
    x the images of the training-length rule (--training-length; the grid's recipe by default).

    [bold]Examples[/bold]

      scaling suggest --target human-top5
      scaling suggest --form logit1 --budget 1e20 --top 3 \\
        --write-config next-runs/
      scaling suggest --json \\
        --candidates 'arch=vit_h14; image_px=476,952; data_hours=5000,50000'
      scaling suggest --candidates candidates.csv --figure suggest.png \\
        --bootstrap 400 --workers 2
      scaling suggest --question at \\
        --at n_params=2.5e9,data_hours=20000,image_px=952
    """
    import scaling  # lazy: keeps `scaling --help` fast
    from scaling.plots.style import figure_format  # lazy: drawing (matplotlib) is optional

    if figure is not None:
        figure_format(figure)  # a bad suffix fails before the work
    if write_config is not None:
        from scaling.design.configs import check_directory  # lazy: keeps `scaling --help` fast

        check_directory(write_config)  # before the work, not after
    point = parse_assignments(at, "--at") if at else None
    if question not in ("scale", "at"):
        raise ScalingError(f"--question must be scale or at; got {question!r}")
    tgt = None if data is not None else scaling.resolve_target(target or default_target_for(eval_set), metric=metric,
                                                              eval_set=eval_set, protocol=protocol)
    frame = load_table(ctx, data=data, y=y, protocol=protocol or (tgt.protocol if tgt else None),
                       eval_set=eval_set or (tgt.eval_set if tgt else None),
                       metric=metric or (tgt.metric if tgt else None), selection=selection)
    axis_list = [a.strip() for a in axes.split(",") if a.strip()] if axes else None
    if data is not None and not axis_list:
        raise ScalingError("--data needs --axes naming its axis columns")
    with progress_bar() as update:
        chosen = tgt if tgt is not None else (target or DEFAULT_TARGET)
        result = scaling.suggest(frame, chosen, form=form, metric=metric,
                                 question=question, at=point, budget=budget, candidates=candidates, n_boot=n_boot,
                                 n_outcomes=outcomes, seed=seed, top=top, level=level, group=cli_group(group),
                                 cost=cost, y=y, axes=axis_list, kind=kind, training_length=training_length,
                                 passes=passes, workers=workers, progress=update)
    written = scaling.write_configs(result, write_config, top=top, force=force) if write_config is not None else None
    if figure is not None:
        from scaling.plots.draw_fits import ISO_FIGSIZE  # lazy: drawing (matplotlib) is optional
        from scaling.plots.style import new_figure, save_figure  # lazy: drawing (matplotlib) is optional

        fig, ax = new_figure(figsize=ISO_FIGSIZE)
        result.plot(ax)
        save_figure(fig, figure)
    if as_json:
        doc = result.to_dict()
        if written is not None:
            doc["configs"] = written.to_dict()
        doc["figure"] = None if figure is None else str(figure)
        print_json(doc)
        return
    unit = result.unit
    show = (lambda v: fmt_flops(v)) if result.question == "scale" else (lambda v: f"{v:.4g}")
    lo, hi = result.before
    cols = ["rank", "candidate", "beyond the grid", "pretraining FLOPs", f"{100 * result.level:g}% interval after",
            "width after", "shrinkage", "shrinkage / FLOP"]
    rows = [[str(s.rank), s.label, ", ".join(s.beyond) or "-", fmt_flops(s.flops),
             f"[{show(s.after[0])}, {show(s.after[1])}]", _fmt(s.width_after), _fmt(s.shrinkage),
             f"{s.value_per_flop:.3g}"] for s in result.chosen]
    caption = (f"now: [{show(lo)}, {show(hi)}], width {_fmt(result.width_before)} {unit}; "
               f"{len(result.scores)} candidates ranked ({result.over_budget} over the budget); "
               f"seed noise sigma {result.sigma:.3g} ({result.sigma_source}); {result.n_boot} resamples x "
               f"{result.n_outcomes} simulated outcomes per candidate")
    stdout_console().print(table(f"What to train next for {result.quantity} ({result.form}; widths and shrinkage "
                                 f"in {unit})", cols, rows,
                                 caption=caption))
    err = stderr_console()
    if written is not None:
        for p in written.paths:
            err.print(f"wrote {p}", markup=False, soft_wrap=True)
        for label, why in written.skipped:
            err.print(f"no config for {label}: {why}", markup=False, soft_wrap=True)
    if figure is not None:
        err.print(f"wrote {figure}", markup=False, soft_wrap=True)
    for note in result.notes:
        err.print(f"note: {note}", markup=False, soft_wrap=True)
