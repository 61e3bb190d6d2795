"""``scaling forms | targets | fit | project``: fit a named form and invert it for a target."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scaling.cli import validate
from scaling.cli.common import db_path, domain_errors, emit_json, open_database, parse_assignments, split_csv
from scaling.cli.options import (
    DEFAULT_AXES,
    AllowLargeOpt,
    AlphaMaxOpt,
    AxesOpt,
    BootstrapOpt,
    ChanceOpt,
    DataOpt,
    EvalSetOpt,
    FormOpt,
    GroupOpt,
    HuberOpt,
    JsonOpt,
    KindOpt,
    LevelOpt,
    PassesOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    TrainingLengthOpt,
    WorkersOpt,
    YOpt,
    cli_group,
    cli_levels,
    load_table,
)
from scaling.cli.progress import progress_bar
from scaling.cli.render import (
    fmt_estimate,
    fmt_flops,
    fmt_hours,
    fmt_number,
    fmt_params,
    fmt_percent,
    fmt_px,
    fmt_stderr,
    fmt_value,
    print_json,
    render_bootstrap,
    stderr_console,
    stdout_console,
    table,
)
from scaling.core import work
from scaling.core.targets import list_targets
from scaling.defaults import DEFAULT_FORM, DEFAULT_METRIC, DEFAULT_TARGET
from scaling.errors import ScalingError
from scaling.questions import Mode

if TYPE_CHECKING:
    from scaling.forms.result import FitResult
    from scaling.questions.projection import Projection


def register(app: typer.Typer) -> None:
    app.command("forms")(forms_cmd)
    app.command("targets")(targets_cmd)
    app.command("fit")(fit_cmd)
    app.command("project")(project_cmd)


@domain_errors
def forms_cmd(as_json: JsonOpt = False) -> None:
    """List the functional forms, each with its source.

    [bold]Examples[/bold]

      scaling forms
      scaling forms --json
    """
    from scaling.forms import list_forms  # lazy: keeps `scaling --help` fast

    forms = list_forms()
    if as_json:
        emit_json("scaling.forms/v1", {"forms": [f.to_dict() for f in forms]})
        return
    rows = [(f.name, f.family, f.description, f.source) for f in forms]
    stdout_console().print(table("Functional forms", ["name", "family", "description", "source"], rows))


@domain_errors
def targets_cmd(as_json: JsonOpt = False) -> None:
    """List the named projection targets, each with its citation.

    Any number is a target too: `--target 0.8` or `--target 80%` with `--metric`.

    [bold]Examples[/bold]

      scaling targets
      scaling project --target 80% --metric top1
    """
    targets = list_targets()
    if as_json:
        emit_json("scaling.targets/v1", {"default": DEFAULT_TARGET, "targets": [t.to_dict() for t in targets]})
        return
    rows = [(t.name, fmt_percent(t.value), t.metric, t.eval_set, t.protocol, t.description, t.source)
            for t in targets]
    cols = ["name", "value", "metric", "eval set", "protocol", "description", "source"]
    stdout_console().print(table(f"Targets (default: {DEFAULT_TARGET})", cols, rows))


# Table labels of FitResult.stats (the JSON keys stay); "n_params" there counts the form's free parameters,
# not the axis of that name.
STAT_LABELS = {"rmse": "RMSE", "mae": "mean |residual|", "max_abs": "max |residual|", "r2": "R^2",
               "loglik": "log-likelihood", "aicc": "AICc", "bic": "BIC", "n_params": "free parameters"}


def _render_fit(result: FitResult) -> None:
    console = stdout_console()
    source = result.source
    rows = []
    for name, value in result.params.items():
        se = (result.stderr or {}).get(name)
        rows.append((name, fmt_estimate(value, se), fmt_stderr(se), "yes" if name in result.at_bound else ""))
    where = ", ".join(f"{k}={v}" for k, v in source.items())
    console.print(table(f"Fit {result.form}: {result.y} ~ {', '.join(result.axes)} ({result.kind})",
                        ["parameter", "value", "std. error", "at bound"], rows, caption=where))
    s = result.stats
    stat_rows = [(STAT_LABELS.get(k, k), fmt_number(v)) for k, v in s.items()]
    limit = "none" if result.ceiling is None else fmt_number(result.ceiling)
    stat_rows += [("points fitted", str(result.n_points)), ("converged", "yes" if result.converged else "no"),
                  (f"{result.direction.limit_name} as every axis grows", limit)]
    console.print(table(None, ["statistic", "value"], stat_rows,
                        caption="values rounded to their standard error's second digit; --json has them unrounded"))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


@domain_errors
def fit_cmd(
    ctx: typer.Context,
    form: FormOpt = DEFAULT_FORM,
    metric: Annotated[
        str, typer.Option(help="Metric to fit: top1 or top5 (default: that of the default target, human-top5).")
    ] = DEFAULT_METRIC,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    alpha_max: AlphaMaxOpt = None,
    n_bootstrap: BootstrapOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = None,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit a named functional form to the run database (or to a CSV table).

    Parameters are printed rounded to the precision of their standard errors (--json: unrounded), with
    residual statistics, AICc/BIC on the response scale, convergence and any parameter at a bound.
    --bootstrap N adds percentile intervals on every parameter and on the ceiling (or floor), from N
    resamples of whole runs (--group), refitted (a progress bar on stderr); the table says how many
    resamples each interval uses.

    [bold]Examples[/bold]

      scaling fit
      scaling fit --form poly1 --metric top5 --json
      scaling fit --form logit2 --selection last-epoch
      scaling fit --data chinchilla.csv --y loss --axes n_params,tokens \\
          --kind loss
      scaling fit --form powerlaw --bootstrap 1000 --seed 1 --level 0.9 \\
          --workers 2
      scaling fit --bootstrap 1000 --group data_fraction,subset_seed
    """
    import scaling  # lazy: keeps `scaling --help` fast

    frame = load_table(ctx, data=data, y=y, protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
    with progress_bar() as update:
        result = scaling.fit(frame, form, metric=metric, y=y, axes=split_csv(axes), kind=kind, chance=chance,
                             huber_delta=huber_delta, alpha_max=alpha_max,
                             n_boot=n_bootstrap, seed=seed, levels=cli_levels(level),
                             group=cli_group(group), workers=workers, progress=update)
    if as_json:
        print_json(result.to_dict())
        return
    _render_fit(result)
    if result.bootstrap is not None:
        render_bootstrap(result.bootstrap, result.bootstrap.params, f"Bootstrap intervals ({result.form})",
                         limit_name=result.direction.limit_name)


RUN_AXES = {"n_params": ("parameters", fmt_params), "data_hours": ("data", fmt_hours), "image_px": ("image", fmt_px)}


def _axis_columns(fit: FitResult) -> list[tuple[str, str, Any]]:
    """(axis, column title, formatter): the run database's three axes with their units, else each axis."""
    if set(fit.axes) <= set(RUN_AXES):
        return [(a, *RUN_AXES[a]) for a in RUN_AXES]
    return [(a, a, fmt_number) for a in fit.axes]


def _point_cells(p: Projection, columns: list[tuple[str, str, Any]]) -> list[str]:
    pt = p.point or {}
    return [fmt(pt[a]) if a in pt else "-" for a, _, fmt in columns]


def _limit_text(value: float | None, pct: bool) -> str:
    if value is None:
        return "none"
    return fmt_percent(value) if pct else fmt_number(value)


def _render_projections(report: Any) -> None:
    console = stdout_console()
    fit = report.fit
    pct = fit.direction.is_fraction
    columns = _axis_columns(fit)
    priced = report.cost_model is not None
    rows = []
    for label, p in report.projections:
        pred = fmt_percent(p.predicted) if pct else fmt_number(p.predicted)
        if not p.reachable and p.point is None:
            rows.append([label, *["-"] * (len(columns) + 1), "unreachable", "-", "-", "-"])
            continue
        met = "-" if p.target is None else ("yes" if p.reachable else "no")
        scale = f"x{p.scale_factor:.3g}" if p.scale_factor is not None else "-"
        beyond = f"{p.max_decades_beyond:.2f}" if p.max_decades_beyond is not None else "-"
        beyond += " (far)" if p.caution else ""
        if priced:
            cost = p.details.get("cost", {}).get("value")
            flops = "-" if cost is None else f"{cost:.3g}"
        else:
            flops = fmt_flops(p.compute.flops) if p.compute else "-"
        rows.append([label, *_point_cells(p, columns), pred, met, scale, beyond, flops])
    cost_title = f"cost ({report.cost_model['formula']})" if priced else "pretraining FLOPs"
    cols = ["question", *[title for _, title, _ in columns], "predicted", "target met", "scale",
            "decades beyond data", cost_title]
    limit = fit.direction.limit_name
    what = "runs" if fit.source.get("db") else "points"
    caption = (f"form {fit.form} fitted to {fit.n_points} {what} ({fit.y} ~ {', '.join(fit.axes)}); "
               f"{limit} {_limit_text(fit.ceiling, pct)}.")
    if report.training_length is not None and not priced:
        caption += f" {report.training_note()}."
    if rows:
        console.print(table(report.title(), cols, rows, caption=caption))
    for label, p in report.projections:
        for line in (p.reason, p.details.get("compute_note", ""), p.caution and f"caution: {p.caution}"):
            if line:
                stderr_console().print(f"{label}: {line}", markup=False, soft_wrap=True)


@domain_errors
def project_cmd(
    ctx: typer.Context,
    target: Annotated[
        str | None, typer.Option(help="A named target (see `scaling targets`) or a number: 0.8 or 80% \\[default: "
                                      f"{DEFAULT_TARGET} on the run database; none for a --data table].")
    ] = None,
    form: FormOpt = DEFAULT_FORM,
    mode: Annotated[
        Mode, typer.Option(metavar="<str>",
                           help="all | scale (common factor on every axis) | solve (one axis) | at (a point).")
    ] = "all",
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target \\[default: top1].")] = None,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    axis: Annotated[
        str | None, typer.Option(help="Axis to solve for in --mode solve \\[default: data_hours; the last --axes "
                                      "of a --data table].")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Point for --mode at, as NAME=VALUE,... naming every axis \\[default: the "
                                      "paper's 2.5B parameters, 20,000 h, 952 px; the largest point of a --data "
                                      "table].", callback=validate.at)
    ] = None,
    exponents: Annotated[
        str | None,
        typer.Option(help="Scale axis i by k**w_i in --mode scale, e.g. image_px=0.5 (others 1).",
                     callback=validate.exponents)
    ] = None,
    passes: PassesOpt = None,
    training_length: TrainingLengthOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    alpha_max: AlphaMaxOpt = None,
    n_bootstrap: BootstrapOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = None,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    optimal: Annotated[
        bool, typer.Option("--optimal", help="Also find the compute-optimal (parameters, data, resolution).")
    ] = False,
    bounds: Annotated[
        str | None,
        typer.Option(help="Bounds of --optimal as AXIS=LO:HI,... \\[default: smallest observed value to 1e6 x the "
                     "largest for n_params and data_hours, 8 x for image_px].", callback=validate.bounds),
    ] = None,
    frontier_rows: Annotated[int, typer.Option(min=0, help="Rows of the iso-target frontier of --optimal.",
                                               callback=validate.frontier_rows)] = 9,
    cost: Annotated[
        str | None,
        typer.Option(help="Cost model of --optimal and --budget: mae (the MAE FLOPs model; default on the run "
                          "database), 6nd (C = 6 N D over the first two --axes) or an expression of the axes, "
                          "e.g. '6*params*tokens'.", callback=validate.cost),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(help="Also find the best allocation of the axes at this cost (e.g. 1e21 FLOPs): the lowest "
                          "loss or highest accuracy the form predicts for it.", callback=validate.budget),
    ] = None,
    figure: Annotated[
        Path | None,
        typer.Option("--figure", help="Also write the iso-accuracy map with the projection: .png, .pdf or .svg."),
    ] = None,
    plan: Annotated[
        bool, typer.Option("--plan", help="Also plan training each answer's point on one H200: memory per GPU, the "
                                          "batch that fits, GPU-hours (more options: `scaling plan`).")
    ] = False,
    allow_large_work: AllowLargeOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Invert a fitted form: what scale (and compute) reaches the target?

    --mode all answers three questions: the common scale factor on every axis from the largest trained
    point, the data hours needed at the largest model and resolution, and the prediction at the
    paper's scenario (2.5B parameters, 20,000 h, 952 px). Compute uses the MAE FLOPs model
    (`scaling.compute.flops`) with the passes over the data of the reference run.

    --bootstrap N adds percentile intervals on the prediction at the point, the scale factor and axis
    values needed, their FLOPs, and the share of resamples in which the target is reachable at all.
    --optimal adds the allocation that reaches the target with the least pretraining FLOPs within
    --bounds (numerical, under the FLOPs model), the same under the proportional cost
    C = k N D (R/p)^rho in closed form where the form has one, and the iso-target frontier.

    [bold]Examples[/bold]

      scaling project
      scaling project --target 80% --metric top1 --form logit1
      scaling project --mode solve --axis n_params --json
      scaling project --mode scale --exponents image_px=0.5
      scaling project --mode at \\
          --at n_params=2.5e9,data_hours=20000,image_px=952
      scaling project --form powerlaw --bootstrap 1000 --seed 1
      scaling project --form logit1 --optimal --bounds image_px=224:952
      scaling project --figure projection.png
      scaling project --plan
      scaling project --data lm.csv --y loss --axes params,tokens \\
          --kind loss --form powerlaw --target 2.2 --optimal --cost 6nd \\
          --budget 1e21
    """
    import scaling  # lazy: keeps `scaling --help` fast

    frame = None if data is None else load_table(ctx, data=data, y=y, protocol=None, eval_set=None, metric=None,
                                                 selection=selection)
    if n_bootstrap:  # the library's project() leaves its bootstrap unestimated: bounded here, before the fit
        rows = len(frame) if frame is not None else open_database(ctx).count_runs()
        work.check(work.bootstrap(n_bootstrap, rows, n_quantities=16, workers=workers,
                                  what=f"--bootstrap {n_bootstrap:,} (resamples of {rows:,} rows)"))
    with progress_bar() as update:
        report = scaling.project(
            frame, target, db=db_path(ctx), form=form, metric=metric, eval_set=eval_set, protocol=protocol,
            selection=selection, y=y, axes=split_csv(axes), kind=kind, chance=chance, huber_delta=huber_delta,
            alpha_max=alpha_max, mode=mode, at=parse_assignments(at, "--at") if at else None, axis=axis,
            exponents=parse_assignments(exponents, "--exponents") if exponents else None, passes=passes,
            training_length=training_length, n_boot=n_bootstrap, seed=seed, levels=cli_levels(level),
            group=cli_group(group), workers=workers, optimal=optimal, bounds=parse_bounds(bounds) if bounds else None,
            frontier_rows=frontier_rows, cost=cost, budget=budget, figure=figure, plan=plan, progress=update)
    if as_json:
        print_json(report.to_dict())
        return
    render_report(report)


def render_report(report: Any) -> None:
    """The tables of a ``ProjectionReport``: the answers, the allocations, the bootstrap and the plans."""
    from scaling.allocation.mae import OptimalResult  # lazy: keeps `scaling --help` fast
    from scaling.cli.plan import render_plans  # lazy: keeps `scaling --help` fast

    result, opt, boot, tgt, kind = report.fit, report.optimal, report.bootstrap, report.target, report.fit.kind
    desc = "" if tgt is None else (f"{tgt.name} = {fmt_percent(tgt.value)} {tgt.metric}"
                                   if result.direction.is_fraction else tgt.name)
    _render_projections(report)
    for note in result.notes:  # e.g. runs left out of the fit (an accuracy of exactly 0 or 1)
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    if isinstance(opt, OptimalResult):
        _render_optimal(opt, desc, kind)
    elif opt is not None:
        _render_cost_optimum(opt, f"Cheapest allocation reaching {desc}", kind)
    if report.budget is not None:
        _render_cost_optimum(report.budget, f"Best allocation at a cost of {report.budget.budget:.3g}", kind)
    if boot is not None:
        render_bootstrap(boot, boot.derived, f"Bootstrap intervals ({result.form})", _quantity_format(kind),
                         limit_name=result.direction.limit_name)
        _render_probabilities(boot)
    if report.plans is not None:
        render_plans(report.plans)


def parse_bounds(text: str) -> dict[str, tuple[float, float]]:
    """'n_params=1e8:1e12,image_px=224:952' -> {'n_params': (1e8, 1e12), 'image_px': (224.0, 952.0)}."""
    out: dict[str, tuple[float, float]] = {}
    for part in split_csv(text):
        name, sep, rng = part.partition("=")
        lo, sep2, hi = rng.partition(":")
        if not sep or not sep2:
            raise ScalingError(f"--bounds: expected AXIS=LOW:HIGH, got {part!r}")
        try:
            out[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise ScalingError(f"--bounds: {part!r} has a bound that is not a number") from None
    return out


def _quantity_format(kind: str) -> Any:
    def fmt_for(name: str) -> Any:
        if name == "at.predicted":
            return fmt_value(kind)
        if name.endswith("flops"):
            return fmt_flops
        if name.endswith("n_params"):
            return fmt_params
        if name.endswith("data_hours"):
            return fmt_hours
        if name.endswith("image_px"):
            return fmt_px
        if name.endswith("factor"):
            return lambda v: f"x{v:.3g}"
        return fmt_number

    return fmt_for


_EVENT_TEXT = {
    "ceiling_passes_target": "the form's ceiling passes the target (reachable at all)",
    "scale.reachable": "scaling every axis reaches it (within 1e12 x)",
    "solve.reachable": "the solved axis reaches it (within 1e12 x)",
    "at.meets_target": "the point meets the target",
    "optimal.reachable": "reachable within the --optimal bounds",
}


def _render_probabilities(boot: Any) -> None:
    rows = [(_EVENT_TEXT.get(k, k), f"{100 * v:.1f}%", fmt_number(boot.probability_estimates.get(k)))
            for k, v in boot.probabilities.items()]
    if rows:
        stdout_console().print(table("Share of resamples in which ...", ["event", "share", "on the full data"], rows))


def _alloc_cells(a: Any) -> list[str]:
    if not a.reachable or a.point is None:
        return ["-", "-", "-", "-", "no", a.reason]
    pt = a.point
    return [fmt_params(pt["n_params"]), fmt_hours(pt["data_hours"]), fmt_px(pt["image_px"]),
            fmt_flops(a.cost), "yes", ", ".join(a.at_bounds)]


def _render_cost_optimum(a: Any, title: str, kind: str) -> None:
    """One allocation under a named or expression cost: the axes, the prediction, the cost, the bounds hit."""
    if not a.reachable or a.point is None:
        stdout_console().print(table(title, ["reached", "reason"], [["no", a.reason]]))
        return
    pred = fmt_value(kind)(a.predicted)
    cols = [*a.point, "predicted", "cost", "at bounds"]
    rows = [[*[fmt_number(v) for v in a.point.values()], pred, f"{a.cost:.3e}", ", ".join(a.at_bounds)]]
    stdout_console().print(table(title, cols, rows, caption=f"cost model: {a.cost_model['formula']}"))


def _render_optimal(opt: Any, target_desc: str, kind: str) -> None:
    console = stdout_console()
    rows = [["MAE FLOPs (the answer)", "numerical", *_alloc_cells(opt.optimum)],
            ["proportional", "numerical", *_alloc_cells(opt.proportional_numerical)]]
    if opt.proportional_closed is not None:
        rows.append(["proportional", "closed form", *_alloc_cells(opt.proportional_closed)])
    bounds = "; ".join(f"{a} {lo:.3g}..{hi:.3g}" for a, (lo, hi) in opt.bounds.items())
    console.print(table(f"Compute-optimal allocation reaching {target_desc}",
                        ["cost model", "method", "parameters", "data", "image", "cost (FLOPs)", "reached",
                         "at bounds / reason"], rows,
                        caption=f"proportional: C = k N D (R/p)^rho; bounds: {bounds}", key=2))
    if opt.frontier:
        frows = [[fmt_params(r.n_params), *_alloc_cells(r.allocation)[1:4],
                  f"x{r.relative_cost:.3f}" if r.relative_cost is not None else "not reachable within the bounds"]
                 for r in opt.frontier]
        console.print(table("Iso-target frontier (cheapest data and resolution at each parameter count)",
                            ["parameters", "data", "image", "FLOPs", "vs optimum"], frows))
    for note in opt.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
