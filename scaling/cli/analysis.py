"""``scaling backtest | compare``: how well each form extrapolates, and every form side by side."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from scaling.cli import validate
from scaling.cli.common import domain_errors, parse_assignments
from scaling.cli.options import (
    DEFAULT_AXES,
    AllowLargeOpt,
    AlphaMaxOpt,
    AxesOpt,
    ChanceOpt,
    DataOpt,
    EvalSetOpt,
    GroupOpt,
    HuberOpt,
    JsonOpt,
    KindOpt,
    LevelOpt,
    LevelTolOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    WorkersOpt,
    YOpt,
    cli_group,
    cli_levels,
    forms_list,
    load_table,
)
from scaling.cli.progress import progress_bar
from scaling.cli.render import (
    fmt_interval,
    fmt_number,
    fmt_value,
    print_json,
    stderr_console,
    stdout_console,
    table,
)
from scaling.core import checks
from scaling.core.direction import direction
from scaling.defaults import DEFAULT_METRIC

FormsOpt = Annotated[str, typer.Option("--forms", help="Comma-separated forms, or 'all' (see `scaling forms`).")]
MetricOpt = Annotated[str, typer.Option(help="Metric: top1 or top5 (default: that of the default target, human-top5).")]
RollingOpt = Annotated[
    str, typer.Option(help="Axis of the rolling-origin splits, 'none' for none, or 'auto': data_hours on the run "
                           "database, the last --axes of a --data table.")
]


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_cmd)
    app.command("compare")(compare_cmd)


def split_axes(text: str) -> list[str]:
    return [a.strip() for a in text.split(",") if a.strip()]


def _rolling(text: str) -> str | None:
    return None if text.strip().lower() == "none" else text


def _resamples(boot: Any) -> str:
    """How many resamples an interval rests on: the fitted ones of those drawn."""
    return "-" if boot is None else f"{boot.n_ok} of {boot.n_requested}"


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


@domain_errors
def backtest_cmd(
    ctx: typer.Context,
    forms: FormsOpt = "all",
    metric: MetricOpt = DEFAULT_METRIC,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    rolling: RollingOpt = "auto",
    level_tol: LevelTolOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    alpha_max: AlphaMaxOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit each form on the smaller part of the grid and predict the held-out larger part.

    Splits: leave-largest-out along each axis, all axes jointly, and rolling origin along --rolling.
    Errors on the held-out runs: RMSE and signed bias (prediction - observation) in accuracy points,
    RMSE of log error, and RMSE in units of seed-to-seed noise (pooled SD across runs that share every
    axis level). A split that leaves a form too few points or distinct values is listed with its reason.
    Forms are ranked by mean held-out RMSE over the splits every form could fit, named above the ranking
    ("splits averaged"); beside it, each form's means over its own splits, every split it could fit
    ("splits fitted"), which do not change with the forms compared.

    [bold]Examples[/bold]

      scaling backtest
      scaling backtest --forms poly1,logit1,powerlaw --metric top5 --json
      scaling backtest --data runs.csv --y loss --axes n_params,tokens \\
          --kind loss --rolling tokens
    """
    import scaling  # lazy: keeps `scaling --help` fast
    from scaling.selection.backtest import RANKING_COLUMNS  # lazy: keeps `scaling --help` fast

    frame = load_table(ctx, data=data, y=y, protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
    with progress_bar() as update:
        result = scaling.backtest(frame, forms_list(forms), metric=metric, y=y, axes=split_axes(axes), kind=kind,
                                  chance=chance, huber_delta=huber_delta, alpha_max=alpha_max,
                                  rolling_axis=_rolling(rolling),
                                  level_tol=level_tol, progress=update)
    if as_json:
        print_json(result.to_dict())
        return
    console = stdout_console()
    d = direction(kind)
    unit = "pts" if d.is_fraction else "loss"
    noise = result.noise
    sigma = "-" if noise.sigma is None else (f"{100 * noise.sigma:.2f} pts" if d.is_fraction
                                             else fmt_number(noise.sigma))
    rows = []
    for split in result.splits:
        for r in (x for x in result.results if x.split == split["name"]):
            if r.ok:
                rows.append([r.split, r.form, str(r.n_train), str(r.n_test), _fmt(r.rmse), _fmt(r.bias),
                             _fmt(r.rmse_log), _fmt(r.noise_units), r.reason])
            else:
                rows.append([r.split, r.form, str(r.n_train), str(r.n_test), "-", "-", "-", "-",
                             f"skipped: {r.reason}"])
    cols = ["split", "form", "train", "test", f"RMSE ({unit})", f"bias ({unit})", "RMSE log err", "x seed noise",
            "note"]
    console.print(table("Backtests (fit the smaller part, predict the held-out larger part)", cols, rows,
                        caption=f"seed-to-seed noise: {sigma} (pooled over {noise.n_groups} replicated "
                                f"configurations, {noise.dof} dof)", key=2))
    caption = ("mean RMSE, bias, RMSE log err and x seed noise: means over the splits averaged (those above); "
               "own-splits RMSE and bias: each form's means over every split it fits (splits fitted). "
               + (f"recommended: {result.recommended} (lowest mean held-out RMSE over the splits averaged)"
                  if result.recommended else "no recommendation"))
    headers = {"mean RMSE": f"mean RMSE ({unit})", "mean bias": f"mean bias ({unit})",
               "own-splits RMSE": f"own-splits RMSE ({unit})", "own-splits bias": f"own-splits bias ({unit})"}
    console.print(table(f"Forms ranked by backtest error, on {result.ranked_on()}",
                        [headers.get(c, c) for c in RANKING_COLUMNS], result.ranking_rows(), caption=caption, key=2))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


@domain_errors
def compare_cmd(
    ctx: typer.Context,
    forms: FormsOpt = "all",
    metric: MetricOpt = DEFAULT_METRIC,
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = DEFAULT_AXES,
    at: Annotated[
        str | None, typer.Option(help="Point of the projection, as NAME=VALUE,... naming every axis \\[default: the "
                                      "paper's 2.5B parameters, 20,000 h, 952 px; the largest point of a --data "
                                      "table].", callback=validate.at)
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Also report the share of resamples meeting this target (e.g. 80%).")
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples per form for the interval (0: none).",
                          callback=validate.bootstrap)
    ] = 200,
    seed: SeedOpt = 0,
    level: LevelOpt = None,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    rolling: RollingOpt = "auto",
    level_tol: LevelTolOpt = None,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    alpha_max: AlphaMaxOpt = None,
    allow_large_work: AllowLargeOpt = False,
    cost: Annotated[
        str | None, typer.Option(help="Also check each form's allocation against the table's IsoFLOP parabola "
                                      "vertices under this cost: 6nd or an expression of the axes.")
    ] = None,
    budget_column: Annotated[
        str | None, typer.Option(help="A column holding each point's IsoFLOP budget \\[default: from --cost].")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every form side by side: in-sample fit, AICc/BIC, backtest error, projection with its interval.

    The projection is the prediction at --at (default: the paper's 2.5B parameters, 20,000 h, 952 px)
    with a bootstrap percentile interval (--bootstrap resamples of whole runs per form). The
    recommended form is the one with the lowest backtest error (see `scaling backtest`), not the
    lowest AICc: information criteria measure in-sample fit, not extrapolation.

    [bold]Examples[/bold]

      scaling compare
      scaling compare --metric top5 --target human-top5 --bootstrap 1000 --json
      scaling compare --forms poly1,logit1,powerlaw \\
          --at n_params=1e9,data_hours=5000,image_px=476
      scaling compare --data sweep.csv --y loss --axes params,tokens \\
          --kind loss --forms powerlaw,saturating --cost 6nd

    With --cost, each form's best allocation at every training budget is compared with the table's
    IsoFLOP parabola vertices, and the output says whether the law fits those sweeps.
    """
    import scaling  # lazy: keeps `scaling --help` fast

    point = checks.point(parse_assignments(at, "--at"), split_axes(axes), "--at") if at else None
    frame = load_table(ctx, data=data, y=y, protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
    with progress_bar() as update:
        result = scaling.compare(frame, forms_list(forms), metric=metric, y=y, axes=split_axes(axes), kind=kind,
                                 at=point, target=target, chance=chance,
                                 huber_delta=huber_delta, alpha_max=alpha_max,
                                 n_boot=n_bootstrap, seed=seed, levels=cli_levels(level),
                                 group=cli_group(group), workers=workers, rolling_axis=_rolling(rolling),
                                 level_tol=level_tol, progress=update, cost=cost, budget_column=budget_column)
    if as_json:
        print_json(result.to_dict())
        return
    _render_compare(result, kind, n_bootstrap, seed)


def _render_compare(result: Any, kind: str, n_bootstrap: int, seed: int) -> None:
    tgt, point, levels, ycol, axis_list = result.target_spec, result.point, result.levels, result.backtest.y, \
        list(result.backtest.axes)
    pct = direction(kind).is_fraction
    fmt_y = fmt_value(kind)
    unit = "pts" if pct else "loss"
    where = ", ".join(f"{k}={v:g}" for k, v in point.items())
    cols = ["form", "recommended", "free params", f"in-sample RMSE ({unit})", "dAICc", "dBIC",
            f"backtest RMSE ({unit})", f"backtest bias ({unit})", f"own-splits backtest RMSE ({unit})",
            "backtest splits fitted", "predicted",
            *[f"{100 * lvl:g}% interval" for lvl in levels],
            *([] if tgt is None else [f"P(>= {tgt.name})"]), *(["resamples used"] if n_bootstrap else []), "note"]
    rows = []
    n_splits = len(result.backtest.splits)
    for r in result.rows:
        bt = result.backtest.by_form.get(r.form)
        if not r.ok or r.fit is None:
            rows.append([r.form, "", *["-"] * (len(cols) - 3), f"fit failed: {r.reason}"])
            continue
        s = r.fit.stats
        cells = [fmt_interval(lo, hi, fmt=fmt_y) for lo, hi in (r.interval[lvl] for lvl in levels)] if r.interval \
            else ["-"] * len(levels)
        rows.append([r.form, "yes" if r.form == result.recommended else "", str(int(s["n_params"])),
                     _fmt(100 * s["rmse"] if pct else s["rmse"]),
                     _fmt(r.delta_aicc, 4), _fmt(r.delta_bic, 4), _fmt(bt.rmse if bt else None),
                     _fmt(bt.bias if bt else None), _fmt(bt.own_rmse if bt else None),
                     f"{bt.n_ok} of {n_splits}" if bt else "-", fmt_y(r.predicted), *cells,
                     *([] if tgt is None else ["-" if r.p_meets_target is None else f"{100 * r.p_meets_target:.0f}%"]),
                     *([_resamples(r.bootstrap)] if n_bootstrap else []),
                     "; ".join(filter(None, [r.reason, ", ".join(r.fit.at_bound) and
                                             f"at bound: {', '.join(r.fit.at_bound)}"]))])
    if all(not row[-1] for row in rows):  # no form has a note: no empty column
        cols, rows = cols[:-1], [row[:-1] for row in rows]
    rec = result.recommended
    caption = (f"predicted at {where}; backtest RMSE and bias: means over {result.backtest.ranked_on()}; "
               "own-splits backtest RMSE: each form's mean over every split it fits (backtest splits fitted); "
               + (f"recommended: {rec} (lowest backtest RMSE over the common splits)" if rec
                  else "no recommendation: no common split"))
    if n_bootstrap:
        caption += f". Intervals: {n_bootstrap} bootstrap resamples per form, seed {seed}."
    stdout_console().print(table(f"Forms compared ({ycol} ~ {', '.join(axis_list)})", cols, rows, caption=caption))
    for form, check in result.isoflop_checks.items():
        stdout_console().print(f"{form}: {check.verdict}", markup=False)
    for line in result.notes:
        stderr_console().print(f"note: {line}", markup=False, soft_wrap=True)
