"""``scaling project``: invert a fitted form (or several) for a target, and render the report's tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scaling.cli import validate
from scaling.cli.common import db_path, domain_errors, open_database, parse_assignments, split_csv
from scaling.cli.options import (
    DEFAULT_AXES,
    AllowLargeOpt,
    AlphaMaxOpt,
    AxesOpt,
    BootstrapOpt,
    ChanceOpt,
    DataOpt,
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
    curves_table,
    load_table,
)
from scaling.cli.progress import progress_bar
from scaling.cli.render import (
    fmt_flops,
    fmt_hours,
    fmt_interval,
    fmt_number,
    fmt_params,
    fmt_percent,
    fmt_px,
    fmt_value,
    print_json,
    render_bootstrap,
    stderr_console,
    stdout_console,
    table,
)
from scaling.core import work
from scaling.defaults import DEFAULT_EVAL_SET, DEFAULT_FORM, DEFAULT_TARGET, ISOFLOP_BUDGET_TOL
from scaling.errors import ScalingError
from scaling.questions import Mode

if TYPE_CHECKING:
    from scaling.forms.result import FitResult
    from scaling.questions.projection import Projection




def register(app: typer.Typer) -> None:
    app.command("project")(project_cmd)


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
    eval_set: Annotated[str | None, typer.Option(
        help=f"Evaluation set \\[default: {DEFAULT_EVAL_SET}]. On an out-of-distribution set of Geirhos et al. "
             "2021 (mvh-sketch, ..., mvh-mean: `scaling targets`) the default target is its human accuracy.")] = None,
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
    ensemble: Annotated[
        bool, typer.Option("--ensemble", help="Answer with every form that applies (or --ensemble-forms), weighted by "
                                              "how well each predicted held-out larger runs; their bootstrap "
                                              "distributions mixed (--bootstrap, default 1000 resamples).")
    ] = False,
    ensemble_forms: Annotated[
        str | None, typer.Option(help=r"The ensemble's forms, comma-separated \[default: every form that applies].")
    ] = None,
    weighting: Annotated[
        str, typer.Option(help="How the ensemble weighs its forms: stacking or pseudo-bma+ (Yao et al. 2018).")
    ] = "stacking",
    calibrated: Annotated[
        bool, typer.Option("--calibrated", help="Widen each interval by the form's (or ensemble's) held-out errors "
                                                "at that distance beyond the data (split-conformal).")
    ] = False,
    allow_large_work: AllowLargeOpt = False,
    method: Annotated[
        str | None, typer.Option(help="The compute-optimal allocation at --budget by: parametric (the law, "
                                      "approach 3), isoflop (a parabola per budget, approach 2), envelope (of "
                                      "training curves, approach 1) or all, side by side with intervals.")
    ] = None,
    budget_column: Annotated[
        str | None, typer.Option(help="A column holding each point's compute: its IsoFLOP budget, or a curve step's "
                                      "FLOPs for the envelope \\[default: from --cost, budgets within --budget-tol; "
                                      "with --curves: pretrain_flops].")
    ] = None,
    budget_tol: Annotated[
        float, typer.Option(help="Costs within this fraction of each other share a budget.")
    ] = ISOFLOP_BUDGET_TOL,
    run_column: Annotated[
        str | None, typer.Option(help="The envelope's runs \\[default: run_id, else one run per model size].")
    ] = None,
    curves: Annotated[
        str | None, typer.Option(help="With --method envelope: the run database's pretraining curves of this key "
                                      "(e.g. train_loss) instead of --data, priced by each step's FLOPs.")
    ] = None,
    where: Annotated[str | None, typer.Option(help="With --curves: only the runs with these values, NAME=VALUE,...",
                                              callback=validate.where)] = None,
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

    --ensemble answers with several forms weighted by their backtest (stacking of predictive
    distributions, or pseudo-BMA+), each form's answer beside the combined one, and says when the forms'
    intervals do not overlap. --calibrated widens intervals by split-conformal quantiles of held-out
    errors at the answer's distance beyond the data; every table says which kind of interval it shows.

    [bold]Examples[/bold]

      scaling project
      scaling project --target 80% --metric top1 --form logit1
      scaling project --eval-set mvh-mean --form logit1
      scaling project --mode solve --axis n_params --json
      scaling project --mode scale --exponents image_px=0.5
      scaling project --mode at \\
          --at n_params=2.5e9,data_hours=20000,image_px=952
      scaling project --form powerlaw --bootstrap 1000 --seed 1
      scaling project --form logit1 --optimal --bounds image_px=224:952
      scaling project --figure projection.png
      scaling project --plan
      scaling project --ensemble --calibrated --bootstrap 200
      scaling project --ensemble --ensemble-forms poly1,logit1,powerlaw \\
          --weighting pseudo-bma+ --figure forms.png
      scaling project --form logit1 --calibrated
      scaling project --data lm.csv --y loss --axes params,tokens \\
          --kind loss --form powerlaw --target 2.2 --optimal --cost 6nd \\
          --budget 1e21
      scaling project --method envelope --curves train_loss \\
          --where data_fraction=1,image_px=224 --budget 5e19
      scaling project --data sweep.csv --y loss --axes params,tokens \\
          --kind loss --budget 1e21 --cost 6nd --method all

    --method answers Chinchilla's question at --budget by each method; the parametric answer (with or
    without --method) says whether the law's N* agrees with the IsoFLOP parabola vertices of its data.
    """
    import scaling  # lazy: keeps `scaling --help` fast

    if (curves is not None or where is not None) and method != "envelope":
        raise typer.BadParameter("--curves and --where give the envelope's training curves: add --method envelope",
                                 param_hint="--curves")
    if method is not None:
        _project_methods(ctx, method, data=data, y=y, axes=axes, kind=kind, form=form, cost=cost, budget=budget,
                         bounds=bounds, budget_column=budget_column, budget_tol=budget_tol, run_column=run_column,
                         n_bootstrap=n_bootstrap, seed=seed, level=level, group=group, workers=workers,
                         huber_delta=huber_delta, alpha_max=alpha_max, as_json=as_json, curves=curves,
                         where=where)
        return

    frame = None if data is None else load_table(ctx, data=data, y=y, protocol=None, eval_set=None, metric=None,
                                                 selection=selection)
    spec = None
    if ensemble or ensemble_forms:
        spec = scaling.Ensemble(None if ensemble_forms is None else tuple(split_csv(ensemble_forms)), weighting)
    if n_bootstrap:  # the library's project() leaves its bootstrap unestimated: bounded here, before the fit
        rows = len(frame) if frame is not None else open_database(ctx).count_runs()
        work.check(work.bootstrap(n_bootstrap, rows, n_quantities=16, workers=workers,
                                  what=f"--bootstrap {n_bootstrap:,} (resamples of {rows:,} rows)"))
    with progress_bar() as update:
        report = scaling.project(
            frame, target, ensemble=spec, calibrated=calibrated, db=db_path(ctx), form=form, metric=metric,
            eval_set=eval_set, protocol=protocol,
            selection=selection, y=y, axes=split_csv(axes), kind=kind, chance=chance, huber_delta=huber_delta,
            alpha_max=alpha_max, mode=mode, at=parse_assignments(at, "--at") if at else None, axis=axis,
            exponents=parse_assignments(exponents, "--exponents") if exponents else None, passes=passes,
            training_length=training_length, n_boot=n_bootstrap, seed=seed, levels=cli_levels(level),
            group=cli_group(group), workers=workers, optimal=optimal, bounds=parse_bounds(bounds) if bounds else None,
            frontier_rows=frontier_rows, cost=cost, budget=budget, figure=figure, plan=plan, progress=update,
            budget_column=budget_column, budget_tol=budget_tol)
    if as_json:
        print_json(report.to_dict())
        return
    render_report(report)


def _project_methods(ctx: typer.Context, method: str, *, data: Path | None, y: str | None, axes: str, kind: str,
                     form: str, cost: str | None, budget: float | None, bounds: str | None, n_bootstrap: int,
                     seed: int, level: list[float] | None, group: str | None, workers: int, as_json: bool,
                     curves: str | None, where: str | None, **options: Any) -> None:
    """``--method``: one call of ``scaling.compute_optimal``, its table (or JSON); with ``--curves``, on the run
    database's step table (``scaling.data.curves.load_curves``), each step priced by its FLOPs."""
    import scaling  # lazy: keeps `scaling --help` fast
    from scaling.cli.allocation_render import render_methods  # lazy: keeps `scaling --help` fast
    from scaling.defaults import (  # lazy: keeps `scaling --help` fast
        ALLOCATION_FORM,
        ALLOCATION_N_BOOT,
        CURVE_AXES,
        CURVE_COST,
        CURVE_KEY,
    )

    if budget is None:
        raise typer.BadParameter("--method compares ways to find the best allocation at a cost: give --budget C",
                                 param_hint="--method")
    given = {p: getattr(ctx.get_parameter_source(p), "name", "DEFAULT") != "DEFAULT" for p in ("form", "n_bootstrap")}
    if curves is not None or where is not None:
        y, axes, kind = curves or CURVE_KEY, ",".join(CURVE_AXES), "loss"
        frame = curves_table(ctx, y, where)
        options["budget_column"] = options.get("budget_column") or CURVE_COST
    else:
        frame = load_table(ctx, data=data, y=y, protocol=None, eval_set=None, metric=None, selection="best-epoch")
    extra = {k: v for k, v in options.items() if v is not None}
    with progress_bar() as update:
        result = scaling.compute_optimal(
            frame, budget, method=method, y=y, axes=split_csv(axes), kind=kind, cost=cost,
            form=form if given["form"] else ALLOCATION_FORM, bounds=parse_bounds(bounds) if bounds else None,
            n_boot=n_bootstrap if given["n_bootstrap"] else ALLOCATION_N_BOOT, seed=seed, levels=cli_levels(level),
            group=cli_group(group), workers=workers, progress=update, **extra)
    if as_json:
        print_json(result.to_dict())
        return
    render_methods(result)


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
    if boot is not None and report.combined is None:
        render_bootstrap(boot, boot.derived, f"Bootstrap intervals ({result.form}; bootstrap only)",
                         _quantity_format(kind), limit_name=result.direction.limit_name)
        _render_probabilities(boot)
    if report.combined is not None:
        render_combined(report.combined, _quantity_format(kind))
    if report.plans is not None:
        render_plans(report.plans)


def _value_text(v: float | None, fmt: Any) -> str:
    if v is None or math.isnan(v):
        return "-"
    return ("inf" if v > 0 else "-inf") if math.isinf(v) else str(fmt(v))


def render_combined(combined: Any, fmt_for: Any) -> None:
    """The combined answer: per quantity the estimate and the interval shown (calibrated where it is), then
    each form's estimate under its weight; the disagreement sentence and the notes."""
    level = max(combined.levels)
    forms = list(combined.weights)
    rows = []
    for name, q in combined.quantities.items():
        fmt = fmt_for(name)
        est = _value_text(q.estimate, fmt)
        lo, hi = q.shown(level)
        per = [_value_text(q.per_form[f][0], fmt) for f in forms]
        rows.append([name, est, fmt_interval(lo, hi, fmt=fmt), *per])
    cols = ["quantity", "combined", f"{100 * level:g}% interval",
            *[f"{f} (weight {combined.weights[f]:.2f})" for f in forms]]
    caption = f"weights: {combined.method}. Intervals: {combined.interval_kind}."
    title = "Combined answer" if len(forms) > 1 else f"Calibrated answer ({forms[0]})"
    stdout_console().print(table(title, cols, rows, caption=caption))
    for sentence in combined.disagreement:
        stdout_console().print(sentence, markup=False, soft_wrap=True)
    for note in combined.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


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
    from scaling.cli.allocation_render import check_cell, print_check  # lazy: keeps `scaling --help` fast

    pred = fmt_value(kind)(a.predicted)
    cols = [*a.point, "predicted", "cost", "at bounds", "IsoFLOP check"]
    rows = [[*[fmt_number(v) for v in a.point.values()], pred, f"{a.cost:.3e}", ", ".join(a.at_bounds),
             check_cell(a.consistency)]]
    stdout_console().print(table(title, cols, rows, caption=f"cost model: {a.cost_model['formula']}"))
    print_check(a.consistency)


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
