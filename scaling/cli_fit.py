"""``scaling forms | targets | fit | project``: fit a named form and invert it for a target."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer

from scaling.cli_common import domain_errors, emit_json, open_database, parse_assignments, split_csv
from scaling.errors import ScalingError
from scaling.render import (
    fmt_flops,
    fmt_hours,
    fmt_number,
    fmt_params,
    fmt_percent,
    stderr_console,
    stdout_console,
    table,
)
from scaling.targets import DEFAULT_EVAL_SET, DEFAULT_PROTOCOL, DEFAULT_TARGET, list_targets, resolve_target

if TYPE_CHECKING:
    from scaling.fit import FitResult
    from scaling.project import Projection

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


def run_fit(
    frame: pd.DataFrame, form: str, y: str, axes: list[str], kind: str, metric: str,
    chance: float | None, huber_delta: float | None,
) -> FitResult:
    from scaling.fit import fit
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
    return fit(frame, form, y=y, axes=axes, kind=kind, **options)  # type: ignore[arg-type]


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
    as_json: JsonOpt = False,
) -> None:
    """Fit a named functional form to the run database (or to a CSV table).

    Parameters are printed unrounded, with residual statistics, AICc/BIC on the response scale,
    convergence and any parameter at a bound.

    [bold]Examples[/bold]

      scaling fit                                    # poly1 (the study's form), ImageNet top-1, best epoch
      scaling fit --form poly1 --metric top5 --json
      scaling fit --form logit2 --selection last-epoch
      scaling fit --data chinchilla.csv --y loss --axes n_params,tokens --kind loss
    """
    axis_list = split_csv(axes)
    frame, ycol, source = load_data(
        ctx, data=data, y=y, axes=axis_list, protocol=protocol or DEFAULT_PROTOCOL,
        eval_set=eval_set or DEFAULT_EVAL_SET, metric=metric, selection=selection,
    )
    result = run_fit(frame, form, ycol, axis_list, kind, metric, chance, huber_delta)
    if as_json:
        emit_json("scaling.fit/v1", {"data": source, "fit": result.to_dict()})
        return
    _render_fit(result, source)


def _point_cells(p: Projection) -> list[str]:
    pt = p.point or {}
    n = fmt_params(pt["n_params"]) if "n_params" in pt else "-"
    d = fmt_hours(pt["data_hours"]) if "data_hours" in pt else "-"
    px = pt.get("image_px")
    r = "-" if px is None else (f"{px:.0f} px" if px < 1e6 else f"{px:.2e} px")
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
    as_json: JsonOpt = False,
) -> None:
    """Invert a fitted form: what scale (and compute) reaches the target?

    --mode all answers three questions: the common scale factor on every axis from the largest trained
    point, the data hours needed at the largest model and resolution, and the prediction at the
    paper's scenario (2.5B parameters, 20,000 h, 952 px). Compute uses the MAE FLOPs model
    (`scaling.compute`) with the passes over the data of the reference run.

    [bold]Examples[/bold]

      scaling project                                   # human top-5 (94.9%), all three questions
      scaling project --target 80% --metric top1 --form logit1
      scaling project --mode solve --axis n_params --json
      scaling project --mode scale --exponents image_px=0.5
      scaling project --mode at --at n_params=2.5e9,data_hours=20000,image_px=952
    """
    from scaling.project import (
        ComputeAssumptions,
        compute_assumptions_from_grid,
        project_at,
        project_axis,
        project_scale,
        reference_point,
    )

    if mode not in {"all", "scale", "solve", "at"}:
        raise typer.BadParameter(f"unknown mode {mode!r}; use all, scale, solve or at", param_hint="--mode")
    tgt = resolve_target(target, metric=metric, eval_set=eval_set, protocol=protocol, kind=kind)
    axis_list = split_csv(axes)
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
    if mode in {"all", "scale"}:
        out.append(("scale every axis", project_scale(result, tgt.value, exponents=exps, compute=assumptions)))
    if mode in {"all", "solve"}:
        out.append((f"solve {axis}", project_axis(result, tgt.value, axis, compute=assumptions)))
    if mode in {"all", "at"}:
        point = parse_assignments(at, "--at")
        out.append(("at point", project_at(result, point, target=tgt.value, compute=assumptions)))

    if as_json:
        emit_json("scaling.project/v1", {
            "target": tgt.to_dict(),
            "data": source,
            "fit": result.to_dict(),
            "compute_assumptions": None if assumptions is None else assumptions.__dict__,
            "projections": [{"question": label, **p.to_dict()} for label, p in out],
        })
        return
    compute_note = "" if assumptions is None else (
        f"Compute: {assumptions.passes:.3g} passes over the frames, mask ratio {assumptions.mask_ratio:g} "
        f"({assumptions.source}).")
    desc = f"{tgt.name} = {fmt_percent(tgt.value) if kind == 'accuracy' else tgt.value} {tgt.metric}"
    _render_projections(out, desc, result, compute_note)
