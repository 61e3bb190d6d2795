"""``scaling backtest | compare``: how well each form extrapolates, and every form side by side."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from scaling.cli.common import domain_errors, emit_json, parse_assignments, split_csv
from scaling.cli.fit import (
    PAPER_SCENARIO,
    AxesOpt,
    ChanceOpt,
    DataOpt,
    EvalSetOpt,
    GroupOpt,
    HuberOpt,
    JsonOpt,
    KindOpt,
    LevelOpt,
    ProtocolOpt,
    SeedOpt,
    SelectionOpt,
    WorkersOpt,
    YOpt,
    check_levels,
    fmt_interval,
    form_options,
    load_data,
    resolve_group,
)
from scaling.errors import ScalingError
from scaling.cli.render import fmt_number, fmt_percent, stderr_console, stdout_console, table
from scaling.targets import DEFAULT_EVAL_SET, DEFAULT_PROTOCOL

FormsOpt = Annotated[str, typer.Option("--forms", help="Comma-separated forms, or 'all' (see `scaling forms`).")]
MetricOpt = Annotated[str, typer.Option(help="Metric: top1 or top5.")]
RollingOpt = Annotated[str, typer.Option(help="Axis of the rolling-origin splits ('none' for none).")]
LevelTolOpt = Annotated[
    float, typer.Option(help="Relative tolerance within which axis values count as one level (0.05 = 5%).")
]


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest_cmd)
    app.command("compare")(compare_cmd)


def _forms(text: str) -> list[str]:
    from scaling.forms import get_form, list_forms

    if text.strip().lower() == "all":
        return [f.name for f in list_forms()]
    names = split_csv(text)
    if not names:
        raise ScalingError("--forms needs at least one form (or 'all')")
    for n in names:
        get_form(n)  # one-line error naming the known forms
    return names


def _inputs(ctx: typer.Context, *, forms: str, metric: str, eval_set: str | None, protocol: str | None,
            selection: str, axes: str, data: Any, y: str | None, chance: float | None,
            huber_delta: float | None) -> tuple[Any, str, list[str], dict[str, Any], list[str], dict[str, dict]]:
    names = _forms(forms)
    axis_list = split_csv(axes)
    frame, ycol, source = load_data(ctx, data=data, y=y, axes=axis_list, protocol=protocol or DEFAULT_PROTOCOL,
                                    eval_set=eval_set or DEFAULT_EVAL_SET, metric=metric, selection=selection)
    options = {f: form_options(f, metric, chance, huber_delta) for f in names}
    return frame, ycol, axis_list, source, names, options


def _fmt(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


@domain_errors
def backtest_cmd(
    ctx: typer.Context,
    forms: FormsOpt = "all",
    metric: MetricOpt = "top1",
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = "n_params,data_hours,image_px",
    rolling: RollingOpt = "data_hours",
    level_tol: LevelTolOpt = 0.05,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit each form on the smaller part of the grid and predict the held-out larger part.

    Splits: leave-largest-out along each axis, all axes jointly, and rolling origin along --rolling.
    Errors on the held-out runs: RMSE and signed bias (prediction - observation) in accuracy points,
    RMSE of log error, and RMSE in units of seed-to-seed noise (pooled SD across runs that share every
    axis level). A split that leaves a form too few points or distinct values is listed with its reason.
    Forms are ranked by mean held-out RMSE over the splits every form could fit.

    [bold]Examples[/bold]

      scaling backtest                              # every form, ImageNet top-1, best epoch
      scaling backtest --forms poly1,logit1,powerlaw --metric top5 --json
      scaling backtest --data runs.csv --y loss --axes n_params,tokens --kind loss --rolling tokens
    """
    from scaling.backtesting import backtest
    from scaling.cli.progress import progress_bar

    frame, ycol, axis_list, source, names, options = _inputs(
        ctx, forms=forms, metric=metric, eval_set=eval_set, protocol=protocol, selection=selection, axes=axes,
        data=data, y=y, chance=chance, huber_delta=huber_delta)
    roll = None if rolling.strip().lower() == "none" else rolling
    with progress_bar() as update:
        result = backtest(frame, names, y=ycol, axes=axis_list, kind=kind, options=options, rolling_axis=roll,
                          level_tol=level_tol, progress=lambda d, t: update("backtest", d, t))
    if as_json:
        emit_json("scaling.backtest/v1", {"data": source, **result.to_dict()})
        return
    console = stdout_console()
    unit = "pts" if kind == "accuracy" else "loss"
    noise = result.noise
    sigma = "-" if noise.sigma is None else (f"{100 * noise.sigma:.2f} pts" if kind == "accuracy"
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
                                f"configurations, {noise.dof} dof)"))
    srows = []
    for i, name in enumerate(result.ranking + [f for f in names if f not in result.ranking]):
        s = result.summary[name]
        rank = str(i + 1) if name in result.ranking else "-"
        srows.append([rank, name, _fmt(s.rmse), _fmt(s.bias), _fmt(s.rmse_log), _fmt(s.noise_units),
                      f"{s.n_ok} ok, {s.n_skipped} skipped"])
    caption = ("recommended: " + result.recommended + " (lowest mean held-out RMSE over the common splits: "
               + "; ".join(result.common_splits) + ")") if result.recommended else "no recommendation"
    console.print(table("Forms ranked by backtest error", ["rank", "form", f"mean RMSE ({unit})",
                                                           f"mean bias ({unit})", "RMSE log err", "x seed noise",
                                                           "splits"], srows, caption=caption))
    for note in result.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


@domain_errors
def compare_cmd(
    ctx: typer.Context,
    forms: FormsOpt = "all",
    metric: MetricOpt = "top1",
    eval_set: EvalSetOpt = None,
    protocol: ProtocolOpt = None,
    selection: SelectionOpt = "best-epoch",
    axes: AxesOpt = "n_params,data_hours,image_px",
    at: Annotated[str, typer.Option(help="Point of the projection, as NAME=VALUE,...")] = PAPER_SCENARIO,
    target: Annotated[
        str | None, typer.Option(help="Also report the share of resamples meeting this target (e.g. 80%).")
    ] = None,
    n_bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples per form for the interval (0: none).")
    ] = 200,
    seed: SeedOpt = 0,
    level: LevelOpt = None,
    group: GroupOpt = None,
    workers: WorkersOpt = 1,
    rolling: RollingOpt = "data_hours",
    level_tol: LevelTolOpt = 0.05,
    data: DataOpt = None,
    y: YOpt = None,
    kind: KindOpt = "accuracy",
    chance: ChanceOpt = None,
    huber_delta: HuberOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every form side by side: in-sample fit, AICc/BIC, backtest error, projection with its interval.

    The projection is the prediction at --at (default: the paper's 2.5B parameters, 20,000 h, 952 px)
    with a bootstrap percentile interval (--bootstrap resamples of whole runs per form). The
    recommended form is the one with the lowest backtest error (see `scaling backtest`), not the
    lowest AICc: information criteria measure in-sample fit, not extrapolation.

    [bold]Examples[/bold]

      scaling compare                                   # all forms, top-1, at the paper's scenario
      scaling compare --metric top5 --target human-top5 --bootstrap 1000 --json
      scaling compare --forms poly1,logit1,powerlaw --at n_params=1e9,data_hours=5000,image_px=476
    """
    from scaling.cli.progress import progress_bar
    from scaling.comparison import compare
    from scaling.targets import resolve_target

    levels = check_levels(level)
    frame, ycol, axis_list, source, names, options = _inputs(
        ctx, forms=forms, metric=metric, eval_set=eval_set, protocol=protocol, selection=selection, axes=axes,
        data=data, y=y, chance=chance, huber_delta=huber_delta)
    point = parse_assignments(at, "--at")
    missing = [a for a in axis_list if a not in point]
    if missing:
        raise ScalingError(f"--at lacks axis {missing[0]!r}; the axes are {', '.join(axis_list)}")
    tgt = resolve_target(target, metric=metric, kind=kind) if target else None
    grp, note = resolve_group(frame, group)
    if note and n_bootstrap:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
    roll = None if rolling.strip().lower() == "none" else rolling
    with progress_bar() as update:
        result = compare(frame, names, y=ycol, axes=axis_list, point=point, kind=kind,
                         target=None if tgt is None else tgt.value, options=options, n_bootstrap=n_bootstrap,
                         seed=seed, group=grp, levels=levels, rolling_axis=roll, level_tol=level_tol,
                         progress=update, workers=workers)
    if as_json:
        emit_json("scaling.compare/v1", {"data": source, **({"target_spec": tgt.to_dict()} if tgt else {}),
                                         **result.to_dict()})
        return
    pct = kind == "accuracy"
    fmt_y = fmt_percent if pct else fmt_number
    unit = "pts" if pct else "loss"
    where = ", ".join(f"{k}={v:g}" for k, v in point.items())
    cols = ["form", "recommended", "params", f"in-sample RMSE ({unit})", "dAICc", "dBIC", f"backtest RMSE ({unit})",
            f"backtest bias ({unit})", f"at {where}", *[f"{100 * lvl:g}% interval" for lvl in levels],
            *([] if tgt is None else [f"P(>= {tgt.name})"]), "note"]
    rows = []
    for r in result.rows:
        bt = result.backtest.summary.get(r.form)
        if not r.ok or r.fit is None:
            rows.append([r.form, "", *["-"] * (len(cols) - 3), f"fit failed: {r.reason}"])
            continue
        s = r.fit.stats
        cells = [fmt_interval(*r.interval[lvl], fmt=fmt_y) for lvl in levels] if r.interval else ["-"] * len(levels)
        rows.append([r.form, "yes" if r.form == result.recommended else "", str(int(s["n_params"])),
                     _fmt(100 * s["rmse"] if pct else s["rmse"]),
                     _fmt(r.delta_aicc, 4), _fmt(r.delta_bic, 4), _fmt(bt.rmse if bt else None),
                     _fmt(bt.bias if bt else None), fmt_y(r.predicted), *cells,
                     *([] if tgt is None else ["-" if r.p_meets_target is None else f"{100 * r.p_meets_target:.0f}%"]),
                     "; ".join(filter(None, [r.reason, ", ".join(r.fit.at_bound) and
                                             f"at bound: {', '.join(r.fit.at_bound)}"]))])
    rec = result.recommended
    caption = (f"recommended: {rec} (lowest backtest RMSE over {len(result.backtest.common_splits)} common splits: "
               f"{'; '.join(result.backtest.common_splits)})" if rec else "no recommendation: no common split")
    if n_bootstrap:
        caption += f". Intervals: {n_bootstrap} bootstrap resamples per form, seed {seed}."
    stdout_console().print(table(f"Forms compared ({ycol} ~ {', '.join(axis_list)})", cols, rows, caption=caption))
    for line in result.notes:
        stderr_console().print(f"note: {line}", markup=False, soft_wrap=True)
