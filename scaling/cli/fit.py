"""``scaling forms | targets | fit | project``: fit a named form and invert it for a target."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer

from scaling.cli.common import domain_errors, emit_json, open_database, parse_assignments, split_csv
from scaling.errors import ScalingError
from scaling.cli.render import (
    fmt_flops,
    fmt_hours,
    fmt_number,
    fmt_params,
    fmt_percent,
    fmt_px,
    stderr_console,
    stdout_console,
    table,
)
from scaling.targets import DEFAULT_EVAL_SET, DEFAULT_PROTOCOL, DEFAULT_TARGET, list_targets, resolve_target

if TYPE_CHECKING:
    from scaling.fitting import FitResult
    from scaling.projection import Projection

DEFAULT_FORM = "poly1"  # the study's form (reconstructed); `scaling compare` ranks forms by backtest
DEFAULT_AXES = "n_params,data_hours,image_px"
# The paper's headline scenario (Orhan 2023 abstract): 2.5B parameters, 20,000 h of video, 952 px.
PAPER_SCENARIO = "n_params=2.5e9,data_hours=20000,image_px=952"
N_CLASSES_DEFAULT = 1000  # ImageNet-1k

FormOpt = Annotated[str, typer.Option("--form", "-f", help="Functional form (see `scaling forms`).")]
AxesOpt = Annotated[str, typer.Option(help="Comma-separated axis columns (x variables).")]
ProtocolOpt = Annotated[str | None, typer.Option(help=f"Evaluation protocol [default: {DEFAULT_PROTOCOL}].")]
EvalSetOpt = Annotated[str | None, typer.Option(help=f"Evaluation set [default: {DEFAULT_EVAL_SET}].")]
SelectionOpt = Annotated[str, typer.Option(help="Which fine-tuning epoch: best-epoch or last-epoch.")]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", help="Fit a CSV table instead of the run database (needs --y; any numeric axes)."),
]
YOpt = Annotated[str | None, typer.Option("--y", help="Response column of --data.")]
KindOpt = Annotated[
    str, typer.Option(help="accuracy (fraction, higher is better) or loss (positive, lower is better).")
]
ChanceOpt = Annotated[
    float | None,
    typer.Option(help="Chance error for chance-ceiling forms [default: 1 - k/1000 for top-k on ImageNet]."),
]
HuberOpt = Annotated[float | None, typer.Option(help="Huber delta of power-law fits in log space [default: 1e-3].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
BootstrapOpt = Annotated[
    int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for percentile intervals (0: none; try 1000).")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the bootstrap resampling (same seed, same intervals).")]
LevelOpt = Annotated[
    list[float] | None, typer.Option("--level", help="Interval level, repeatable [default: 0.9 and 0.95].")
]
GroupOpt = Annotated[
    str | None,
    typer.Option(help="Column(s) whose rows are resampled together, comma-separated, or 'none' for single rows "
                 "[default: run_id when the data have it]."),
]
WorkersOpt = Annotated[
    int, typer.Option(min=1, help="Processes for the bootstrap (results do not depend on it; 2 on 2 cores).")
]
DEFAULT_LEVELS = (0.9, 0.95)


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
    from scaling.forms import list_forms

    forms = list_forms()
    if as_json:
        emit_json("scaling.forms/v1", {"forms": [f.__dict__ for f in forms]})
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


def default_chance(metric: str, n_classes: int = N_CLASSES_DEFAULT) -> float | None:
    """Chance error of top-k: 1 - k / classes."""
    m = re.fullmatch(r"top(\d+)", metric)
    return 1.0 - int(m.group(1)) / n_classes if m else None


def load_data(
    ctx: typer.Context,
    *,
    data: Path | None,
    y: str | None,
    axes: list[str],
    protocol: str,
    eval_set: str,
    metric: str,
    selection: str,
) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """The frame to fit, its response column and a description of where it came from."""
    if data is not None:
        if y is None:
            raise ScalingError("--data needs --y naming the response column")
        try:
            frame = pd.read_csv(data)
        except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise ScalingError(f"{data}: cannot read CSV ({exc})") from None
        missing = [c for c in [y, *axes] if c not in frame.columns]
        if missing:
            raise ScalingError(f"{data}: missing column {missing[0]!r} (columns: {', '.join(frame.columns)})")
        return frame, y, {"source": str(data), "y": y}
    db = open_database(ctx)
    frame = db.grid(protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
    if frame.empty:
        raise ScalingError(
            f"no completed runs with {protocol}/{eval_set}/{metric}/{selection} in {db.path}; "
            "see `scaling runs list` and `scaling runs import`"
        )
    missing = [a for a in axes if a not in frame.columns]
    if missing:
        raise ScalingError(f"unknown axis {missing[0]!r}; run-database axes include n_params, data_hours, image_px")
    source = {"db": str(db.path), "protocol": protocol, "eval_set": eval_set, "metric": metric,
              "selection": selection}
    return frame, "value", source


def form_options(form: str, metric: str, chance: float | None, huber_delta: float | None) -> dict[str, Any]:
    """The fit options the CLI passes to ``form`` (Huber delta of power laws, chance of chance laws)."""
    from scaling.forms import get_form

    info = get_form(form)
    options: dict[str, Any] = {}
    if info.family == "powerlaw" and huber_delta is not None:
        options["huber_delta"] = huber_delta
    if "chance" in info.name:
        c = chance if chance is not None else default_chance(metric)
        if c is None:
            raise ScalingError(f"form {form!r} needs --chance (chance-level error) for metric {metric!r}")
        options["chance"] = c
    return options


def run_fit(
    frame: pd.DataFrame, form: str, y: str, axes: list[str], kind: str, metric: str,
    chance: float | None, huber_delta: float | None,
) -> FitResult:
    from scaling.fitting import fit

    options = form_options(form, metric, chance, huber_delta)
    return fit(frame, form, y=y, axes=axes, kind=kind, **options)  # type: ignore[arg-type]


def resolve_group(frame: pd.DataFrame, group: str | None) -> tuple[str | tuple[str, ...] | None, str]:
    """The bootstrap's grouping columns and a note (the default falls back to single rows without run_id)."""
    if group is None:
        if "run_id" in frame.columns:
            return "run_id", ""
        return None, "no run_id column: every row is resampled on its own (pass --group to cluster rows)"
    if group.strip().lower() == "none":
        return None, ""
    cols = tuple(split_csv(group))
    if not cols:
        raise ScalingError("--group needs a column name (or 'none')")
    return (cols[0] if len(cols) == 1 else cols), ""


def check_levels(levels: list[float] | None) -> tuple[float, ...]:
    out = tuple(levels) if levels else DEFAULT_LEVELS
    bad = [x for x in out if not 0.0 < x < 1.0]
    if bad:
        raise ScalingError(f"--level must be in (0, 1); got {bad[0]:g}")
    return tuple(sorted(set(out)))


def run_bootstrap(frame: pd.DataFrame, result: FitResult, *, n: int, seed: int, levels: tuple[float, ...],
                  group: str | None, options: dict[str, Any], derived: Any = None, workers: int = 1) -> Any:
    """The bootstrap of ``result`` with a progress bar on stderr (when it is a terminal)."""
    from scaling.resampling import bootstrap
    from scaling.cli.progress import progress_bar

    grp, note = resolve_group(frame, group)
    if note:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    with progress_bar() as update:
        return bootstrap(frame, result.form, y=result.y, axes=result.axes, kind=result.kind, n=n, seed=seed,
                         group=grp, levels=levels, derived=derived, full=result,
                         progress=lambda d, t: update(f"bootstrap {result.form}", d, t), workers=workers,
                         **options)


def fmt_interval(lo: float | None, hi: float | None, fmt: Any = fmt_number) -> str:
    def one(v: float | None) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return "inf" if math.isinf(v) else fmt(v)

    return f"{one(lo)} .. {one(hi)}"


def render_bootstrap(boot: Any, summaries: dict[str, Any], title: str, fmt_for: Any = None) -> None:
    """One table of estimate, median and intervals; notes and failures on stderr."""
    rows = []
    for name, s in summaries.items():
        fmt = fmt_for(name) if fmt_for is not None else fmt_number
        est = "-" if s.estimate is None else ("inf" if math.isinf(s.estimate) else fmt(s.estimate))
        med = "inf" if math.isinf(s.median) else (fmt(s.median) if not math.isnan(s.median) else "-")
        cells = [fmt_interval(*s.intervals[lvl], fmt=fmt) for lvl in boot.levels]
        rows.append([name, est, med, *cells, str(s.n_infinite) if s.n_infinite else ""])
    cols = ["quantity", "estimate", "median", *[f"{100 * lvl:g}% interval" for lvl in boot.levels], "unbounded"]
    group = ", ".join(boot.group) if boot.group else "single rows"
    caption = (f"{boot.n_ok} of {boot.n_requested} resamples fitted (seed {boot.seed}; resampling {boot.n_groups} "
               f"groups by {group}; refits: {', '.join(f'{k} {v}' for k, v in boot.paths.items())})")
    stdout_console().print(table(title, cols, rows, caption=caption))
    for note in boot.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


def _render_fit(result: FitResult, source: dict[str, Any]) -> None:
    console = stdout_console()
    rows = []
    for name, value in result.params.items():
        se = (result.stderr or {}).get(name)
        rows.append((name, repr(float(value)), fmt_number(se), "yes" if name in result.at_bound else ""))
    where = ", ".join(f"{k}={v}" for k, v in source.items())
    console.print(table(f"Fit {result.form}: {result.y} ~ {', '.join(result.axes)} ({result.kind})",
                        ["parameter", "value", "std. error", "at bound"], rows, caption=where))
    s = result.stats
    stat_rows = [(k, fmt_number(v)) for k, v in s.items()]
    stat_rows += [("n points", str(result.n_points)), ("converged", "yes" if result.converged else "no"),
                  ("ceiling", fmt_number(result.ceiling))]
    console.print(table(None, ["statistic", "value"], stat_rows))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


@domain_errors
def fit_cmd(
    ctx: typer.Context,
    form: FormOpt = DEFAULT_FORM,
    metric: Annotated[str, typer.Option(help="Metric to fit: top1 or top5.")] = "top1",
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    n_bootstrap: BootstrapOpt = 0,
    seed: SeedOpt = 0,
    level: LevelOpt = None,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    as_json: JsonOpt = False,
) -> None:
    """Fit a named functional form to the run database (or to a CSV table).

    Parameters are printed unrounded, with residual statistics, AICc/BIC on the response scale,
    convergence and any parameter at a bound. --bootstrap N adds percentile intervals on every parameter
    and on the ceiling, from N resamples of whole runs (--group), refitted (a progress bar on stderr).

    [bold]Examples[/bold]

      scaling fit                                    # poly1 (the study's form), ImageNet top-1, best epoch
      scaling fit --form poly1 --metric top5 --json
      scaling fit --form logit2 --selection last-epoch
      scaling fit --data chinchilla.csv --y loss --axes n_params,tokens --kind loss
      scaling fit --form powerlaw --bootstrap 1000 --seed 1 --level 0.9 --workers 2
      scaling fit --form poly1 --bootstrap 1000 --group data_fraction,subset_seed
    """
    axis_list = split_csv(axes)
    levels = check_levels(level)
    frame, ycol, source = load_data(
        ctx, data=data, y=y, axes=axis_list, protocol=protocol or DEFAULT_PROTOCOL,
        eval_set=eval_set or DEFAULT_EVAL_SET, metric=metric, selection=selection,
    )
    result = run_fit(frame, form, ycol, axis_list, kind, metric, chance, huber_delta)
    boot = None
    if n_bootstrap:
        boot = run_bootstrap(frame, result, n=n_bootstrap, seed=seed, levels=levels, group=group,
                             options=form_options(form, metric, chance, huber_delta), workers=workers)
    if as_json:
        payload: dict[str, Any] = {"data": source, "fit": result.to_dict()}
        if boot is not None:
            payload["bootstrap"] = boot.to_dict()
        emit_json("scaling.fit/v1", payload)
        return
    _render_fit(result, source)
    if boot is not None:
        render_bootstrap(boot, boot.params, f"Bootstrap intervals ({result.form})")


def _point_cells(p: Projection) -> list[str]:
    pt = p.point or {}
    n = fmt_params(pt["n_params"]) if "n_params" in pt else "-"
    d = fmt_hours(pt["data_hours"]) if "data_hours" in pt else "-"
    r = fmt_px(pt.get("image_px"))
    return [n, d, r]


def _render_projections(projections: list[tuple[str, Projection]], target_desc: str, fit: FitResult,
                        compute_note: str) -> None:
    console = stdout_console()
    pct = fit.kind == "accuracy"
    rows = []
    for label, p in projections:
        pred = fmt_percent(p.predicted) if pct else fmt_number(p.predicted)
        if not p.reachable and p.point is None:
            rows.append([label, "-", "-", "-", "-", "unreachable", "-", "-", "-"])
            continue
        scale = f"x{p.scale_factor:.3g}" if p.scale_factor is not None else "-"
        beyond = f"{p.max_decades_beyond:.2f}" if p.max_decades_beyond is not None else "-"
        flops = fmt_flops(p.compute.flops) if p.compute else "-"
        rows.append([label, *_point_cells(p), pred, "yes" if p.reachable else "no", scale, beyond, flops])
    cols = ["question", "parameters", "data", "image", "predicted", "target met", "scale",
            "decades beyond data", "pretraining FLOPs"]
    caption = (f"form {fit.form} fitted to {fit.n_points} runs ({fit.y} ~ {', '.join(fit.axes)}); "
               f"ceiling {fmt_percent(fit.ceiling) if pct else fmt_number(fit.ceiling)}. {compute_note}")
    console.print(table(f"What reaches {target_desc}?", cols, rows, caption=caption))
    for label, p in projections:
        for line in (p.reason, p.details.get("compute_note", "")):
            if line:
                stderr_console().print(f"{label}: {line}", markup=False, soft_wrap=True)


@domain_errors
def project_cmd(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Option(help="A named target (see `scaling targets`) or a number: 0.8 or 80%.")
    ] = DEFAULT_TARGET,
    form: FormOpt = DEFAULT_FORM,
    mode: Annotated[
        str, typer.Option(help="all | scale (common factor on every axis) | solve (one axis) | at (a point).")
    ] = "all",
    metric: Annotated[str | None, typer.Option(help="Metric of a numeric target [default: top1].")] = None,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    axis: Annotated[str, typer.Option(help="Axis to solve for in --mode solve.")] = "data_hours",
    at: Annotated[str, typer.Option(help="Point for --mode at, as NAME=VALUE,...")] = PAPER_SCENARIO,
    exponents: Annotated[
        str | None,
        typer.Option(help="Scale axis i by k**w_i in --mode scale, e.g. image_px=0.5 (others 1).")
    ] = None,
    passes: Annotated[
        float | None,
        typer.Option(help="Passes over the pretraining frames for compute [default: those of the reference run]."),
    ] = None,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
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
        typer.Option(help="Bounds of --optimal as AXIS=LO:HI,... [default: smallest observed value to 1e6 x the "
                     "largest for n_params and data_hours, 8 x for image_px]."),
    ] = None,
    frontier_rows: Annotated[int, typer.Option(min=0, help="Rows of the iso-target frontier of --optimal.")] = 9,
    figure: Annotated[
        Path | None,
        typer.Option("--figure", help="Also write the iso-accuracy map with the projection: .png, .pdf or .svg."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Invert a fitted form: what scale (and compute) reaches the target?

    --mode all answers three questions: the common scale factor on every axis from the largest trained
    point, the data hours needed at the largest model and resolution, and the prediction at the
    paper's scenario (2.5B parameters, 20,000 h, 952 px). Compute uses the MAE FLOPs model
    (`scaling.compute`) with the passes over the data of the reference run.

    --bootstrap N adds percentile intervals on the prediction at the point, the scale factor and axis
    values needed, their FLOPs, and the share of resamples in which the target is reachable at all.
    --optimal adds the allocation that reaches the target with the least pretraining FLOPs within
    --bounds (numerical, under the FLOPs model), the same under the proportional cost
    C = k N D (R/p)^rho in closed form where the form has one, and the iso-target frontier.

    [bold]Examples[/bold]

      scaling project                                   # human top-5 (94.9%), all three questions
      scaling project --target 80% --metric top1 --form logit1
      scaling project --mode solve --axis n_params --json
      scaling project --mode scale --exponents image_px=0.5
      scaling project --mode at --at n_params=2.5e9,data_hours=20000,image_px=952
      scaling project --form powerlaw --bootstrap 1000 --seed 1
      scaling project --form logit1 --optimal --bounds image_px=224:952
      scaling project --figure projection.png           # and the iso-accuracy map of the answer
    """
    from scaling.projection import (
        ComputeAssumptions,
        compute_assumptions_from_grid,
        project_at,
        project_axis,
        project_scale,
        reference_point,
    )

    if mode not in {"all", "scale", "solve", "at"}:
        raise typer.BadParameter(f"unknown mode {mode!r}; use all, scale, solve or at", param_hint="--mode")
    if figure is not None:
        from scaling.plots.style import figure_format

        figure_format(figure)  # a bad suffix fails before any work
    tgt = resolve_target(target, metric=metric, eval_set=eval_set, protocol=protocol, kind=kind)
    axis_list = split_csv(axes)
    levels = check_levels(level)
    bound_map = parse_bounds(bounds) if bounds else None
    frame, ycol, source = load_data(
        ctx, data=data, y=y, axes=axis_list, protocol=tgt.protocol, eval_set=tgt.eval_set,
        metric=tgt.metric, selection=selection,
    )
    result = run_fit(frame, form, ycol, axis_list, kind, tgt.metric, chance, huber_delta)
    ref = reference_point(result)
    assumptions = compute_assumptions_from_grid(frame, ref)
    if passes is not None:
        if passes <= 0:
            raise ScalingError(f"--passes must be positive, got {passes}")
        base = assumptions or ComputeAssumptions(passes=passes)
        assumptions = ComputeAssumptions(passes, base.mask_ratio, base.patch_px, "--passes")
    exps = parse_assignments(exponents, "--exponents") if exponents else None

    out: list[tuple[str, Projection]] = []
    point = parse_assignments(at, "--at") if mode in {"all", "at"} else None
    if mode in {"all", "scale"}:
        out.append(("scale every axis", project_scale(result, tgt.value, exponents=exps, compute=assumptions)))
    if mode in {"all", "solve"}:
        out.append((f"solve {axis}", project_axis(result, tgt.value, axis, compute=assumptions)))
    if point is not None:
        out.append(("at point", project_at(result, point, target=tgt.value, compute=assumptions)))

    opt = None
    if optimal:
        from scaling.allocation import optimal_allocation

        if assumptions is None:
            raise ScalingError("--optimal needs the compute model: axes n_params, data_hours, image_px and --passes")
        opt = optimal_allocation(result, tgt.value, assumptions, bounds=bound_map, frontier_rows=frontier_rows,
                                 seed=seed)
    boot = None
    if n_bootstrap:
        from scaling.resampling import projection_quantities

        opt_spec = None
        if opt is not None:
            from scaling.allocation import flops_cost

            opt_spec = {"cost": flops_cost(assumptions, opt.bounds), "bounds": opt.bounds,  # type: ignore[arg-type]
                        "start": opt.optimum.point}
        derived = projection_quantities(
            tgt.value, reference=ref, at=point, solve_axis=axis if mode in {"all", "solve"} else None,
            scale=mode in {"all", "scale"}, exponents=exps, compute=assumptions, optimal=opt_spec)
        boot = run_bootstrap(frame, result, n=n_bootstrap, seed=seed, levels=levels, group=group,
                             options=form_options(form, tgt.metric, chance, huber_delta), derived=derived,
                             workers=workers)

    if figure is not None:
        _save_figure(figure, result, out, tgt, frame, boot)
    if as_json:
        payload: dict[str, Any] = {
            "figure": None if figure is None else str(figure),
            "target": tgt.to_dict(),
            "data": source,
            "fit": result.to_dict(),
            "compute_assumptions": None if assumptions is None else assumptions.__dict__,
            "projections": [{"question": label, **p.to_dict()} for label, p in out],
        }
        if opt is not None:
            payload["optimal"] = opt.to_dict()
        if boot is not None:
            payload["bootstrap"] = boot.to_dict()
        emit_json("scaling.project/v1", payload)
        return
    compute_note = "" if assumptions is None else (
        f"Compute: {assumptions.passes:.3g} passes over the frames, mask ratio {assumptions.mask_ratio:g} "
        f"({assumptions.source}).")
    desc = f"{tgt.name} = {fmt_percent(tgt.value) if kind == 'accuracy' else tgt.value} {tgt.metric}"
    _render_projections(out, desc, result, compute_note)
    if opt is not None:
        _render_optimal(opt, desc, kind)
    if boot is not None:
        render_bootstrap(boot, boot.derived, f"Bootstrap intervals ({result.form})", _quantity_format(kind))
        _render_probabilities(boot)


def _save_figure(path: Path, fit: Any, out: list[tuple[str, Projection]], target: Any, frame: Any,
                 boot: Any) -> None:
    """The iso-accuracy map of the first answer that reached the target (else the first answer).

    Its interval is the bootstrap's when one ran, else the closed-form confidence band of linear forms.
    """
    from scaling import plots
    from scaling.forms import get_form

    if not {"n_params", "data_hours"} <= set(fit.axes):
        raise ScalingError("--figure maps n_params x data_hours: fit with those axes")
    reached = [p for _, p in out if p.reachable and p.point is not None]
    projection = reached[0] if reached else (out[0][1] if out else None)
    interval: Any = "band" if get_form(fit.form).family == "linear" else None
    if boot is not None and projection is not None and projection.mode in {"scale", "solve"} and projection.point:
        interval = plots.bootstrap_interval(boot, projection, level=max(boot.levels))
    plots.save_projection_figure(fit, projection, target, path, grid=frame, interval=interval)


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
            return fmt_percent if kind == "accuracy" else fmt_number
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


def _render_optimal(opt: Any, target_desc: str, kind: str) -> None:
    console = stdout_console()
    rows = [["FLOPs model (the answer)", "numerical", *_alloc_cells(opt.optimum)],
            ["proportional C = k N D (R/p)^rho", "numerical", *_alloc_cells(opt.proportional_numerical)]]
    if opt.proportional_closed is not None:
        rows.append(["proportional C = k N D (R/p)^rho", "closed form", *_alloc_cells(opt.proportional_closed)])
    bounds = "; ".join(f"{a} {lo:.3g}..{hi:.3g}" for a, (lo, hi) in opt.bounds.items())
    console.print(table(f"Compute-optimal allocation reaching {target_desc}",
                        ["cost model", "method", "parameters", "data", "image", "cost (FLOPs)", "reached",
                         "at bounds / reason"], rows, caption=f"bounds: {bounds}"))
    if opt.frontier:
        frows = [[fmt_params(r.n_params), *_alloc_cells(r.allocation)[1:4],
                  f"x{r.relative_cost:.3f}" if r.relative_cost is not None else "not reachable within the bounds"]
                 for r in opt.frontier]
        console.print(table("Iso-target frontier (cheapest data and resolution at each parameter count)",
                            ["parameters", "data", "image", "FLOPs", "vs optimum"], frows))
    for note in opt.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
