"""``scaling runs list | show | import | export | validate``: inspect and extend the run database."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from scaling.cli.common import domain_errors, emit_json, open_database
from scaling.cli.render import (
    fmt_hours,
    fmt_number,
    fmt_params,
    fmt_percent,
    printable,
    stderr_console,
    stdout_console,
    table,
)
from scaling.defaults import DEFAULT_EVAL_SET, DEFAULT_METRIC, DEFAULT_PROTOCOL

runs_app = typer.Typer(
    help="Inspect and extend the run database.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto | mae-logs | csv | run-json | jsonl | parquet.")]

EVAL_COLUMNS = ["protocol", "eval_set", "metric", "selection", "value"]
LIST_COLUMNS = ["run_id", "arch", "n_params", "image_px", "data_hours", "data_fraction", "subset_seed",
                "samples_seen", "pretrain_flops", "status", "source"]


@runs_app.command("list")
@domain_errors
def list_cmd(
    ctx: typer.Context,
    arch: Annotated[str | None, typer.Option(help="Only this architecture, e.g. vit_h14.")] = None,
    image_px: Annotated[int | None, typer.Option(help="Only this image size (px).")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source, e.g. published:orhan2023.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status: COMPLETED, RUNNING or FAILED.")] = None,
    with_metric: Annotated[
        str, typer.Option(help="Show this metric (best epoch) beside each run: top1 or top5.")
    ] = DEFAULT_METRIC,
    protocol: Annotated[
        str, typer.Option(help="... under this evaluation protocol, e.g. finetune-digits-20pct for the demo.")
    ] = DEFAULT_PROTOCOL,
    eval_set: Annotated[str, typer.Option(help="... on this eval set, e.g. digits-val.")] = DEFAULT_EVAL_SET,
    as_json: JsonOpt = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV: one row per run, every run column, and the "
                                                       "evaluation shown (protocol, eval_set, metric, selection, "
                                                       "value as a fraction).")] = False,
) -> None:
    """List the runs (one per pretraining grid point).

    --json prints one document like every command's: {"schema", "db", "count", "runs": [one object per run]}.
    --csv prints a table for a spreadsheet or pandas (`pd.read_csv`), with the evaluation shown beside each run.

    [bold]Examples[/bold]

      scaling runs list
      scaling runs list --arch vit_h14 --image-px 476
      scaling runs list --json | jq '.runs | length'
      scaling runs list --json | jq -r '.runs[].run_id'
      scaling runs list --csv > runs.csv
      scaling runs list --arch vit_nano8 --protocol finetune-digits-20pct \\
          --eval-set digits-val
    """
    if as_json and as_csv:
        raise typer.BadParameter("--json and --csv: choose one", param_hint="--csv")
    db = open_database(ctx)
    filters: dict[str, Any] = {k: v for k, v in
                               {"arch": arch, "image_px": image_px, "source": source, "status": status}.items()
                               if v is not None}
    frame = db.list_with_eval(protocol=protocol, eval_set=eval_set, metric=with_metric, **filters)
    if as_csv:
        sys.stdout.write(printable(frame.to_csv(index=False, lineterminator="\n")))
        return
    acc = dict(zip(frame["run_id"], frame["value"], strict=True))
    if as_json:
        records = json.loads(frame.drop(columns=EVAL_COLUMNS).to_json(orient="records"))
        emit_json("scaling.runs/v1", {"db": str(db.path), "count": len(records), "runs": records})
        return
    rows = []
    for r in frame.to_dict("records"):
        rows.append([
            str(r["run_id"]), str(r["arch"]), fmt_params(r["n_params"]), f"{r['image_px']} px",
            fmt_hours(r["data_hours"]), fmt_number(r.get("data_fraction")), fmt_number(r.get("subset_seed")),
            fmt_number(r.get("samples_seen")), fmt_number(r.get("pretrain_flops")), str(r["status"]),
            str(r["source"]), fmt_percent(_fraction(acc.get(r["run_id"]))),
        ])
    cols = ["run id", "arch", "parameters", "image", "data", "fraction", "subset seed", "images seen",
            "pretraining FLOPs", "status", "source", f"{eval_set} {with_metric} (best)"]
    stdout_console().print(table(f"{len(rows)} runs in {db.path}", cols, rows))


def _fraction(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


@runs_app.command("show")
@domain_errors
def show_cmd(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one run: its columns, config, evaluations and history summary.

    [bold]Examples[/bold]

      scaling runs show 3f2a9c
      scaling runs show 3f2a9c --json
    """
    db = open_database(ctx)
    record = db.get_run(run_id)
    if as_json:
        emit_json("scaling.run/v1", {"run": record})
        return
    console = stdout_console()
    scalars = [(k, v if isinstance(v, str) else json.dumps(v, default=str))
               for k, v in record.items() if not isinstance(v, list | dict)]
    console.print(table(f"Run {record.get('run_id')}", ["field", "value"], scalars))
    evals = record.get("evals") or []
    if evals:
        keys = list(evals[0].keys())
        console.print(table("Evaluations", keys, [[str(e.get(k, "")) for k in keys] for e in evals]))
    for key, value in record.items():
        if isinstance(value, dict) and value:
            console.print(table(key, ["key", "value"], [(str(k), json.dumps(v, default=str))
                                                        for k, v in value.items()]))


@runs_app.command("import")
@domain_errors
def import_cmd(
    ctx: typer.Context,
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Files or folders: MAE log folders, CSV or Parquet tables, run.json.", show_default=False)] = None,
    fmt: FormatOpt = "auto",
    from_csv: Annotated[Path | None, typer.Option(
        "--from-csv", metavar="FILE", help="A W&B or hand-made CSV export, read through --map.")] = None,
    from_mlflow: Annotated[str | None, typer.Option(
        "--from-mlflow", metavar="URI", help="An MLflow tracking store: a folder (./mlruns), a file:, sqlite: or "
                                             "http(s): URI (needs the mlflow extra).")] = None,
    experiment: Annotated[str | None, typer.Option(
        help="The MLflow experiment to import (with --from-mlflow).")] = None,
    mapping: Annotated[str | None, typer.Option(
        "--map", metavar="SPEC|FILE", help="COLUMN=TARGET,... or a .toml/.json mapping file: which source column is "
                                           "which run field (arch, image_px, data_hours, n_params, name, ...), "
                                           "evaluation (EVAL_SET/METRIC, e.g. imagenet-val/top5), foreign_id, "
                                           "config.KEY or tag.KEY.")] = None,
    constants: Annotated[str | None, typer.Option(
        "--set", metavar="F=V,...", help="Fields the same for every run, comma-separated: e.g. "
                                        "protocol=finetune-in1k-2pct, selection=best-epoch.")] = None,
    percent: Annotated[bool, typer.Option(
        "--percent", help="The source's evaluations are percents (0-100), stored as fractions.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import runs in one transaction: all of them land, or none (the database is left unchanged).

    Importing the same runs twice adds nothing; a run id that exists with different content is an error.
    Runs kept elsewhere come in through a column mapping: --from-csv reads a W&B or hand-made export (one
    row per run, or per run and evaluation), --from-mlflow an MLflow experiment, whose params named as run
    fields and metrics named EVAL_SET/METRIC need no mapping. Every row is checked as any import is, and
    an error names the source's own column.

    [bold]Examples[/bold]

      scaling runs import out/run-0001/run.json
      scaling runs import results.csv runs.parquet
      scaling runs import path/to/humanlike-vits/logs --format mae-logs
      scaling runs import --from-csv wandb.csv --percent --map \\
          'arch=arch,px=image_px,h=data_hours,acc5=imagenet-val/top5' \\
          --set protocol=finetune-in1k-2pct,selection=best-epoch
      scaling runs import --from-csv wandb.csv --map wandb-map.toml
      scaling runs import --from-mlflow ./mlruns --experiment mae-grid \\
          --set protocol=finetune-in1k-2pct,selection=last-epoch
    """
    sources = [name for name, given in (("paths", bool(paths)), ("--from-csv", from_csv is not None),
                                        ("--from-mlflow", from_mlflow is not None)) if given]
    if len(sources) != 1:
        raise typer.BadParameter("give the paths to import, or --from-csv FILE, or --from-mlflow URI --experiment "
                                 "NAME" + (f" (not {' and '.join(sources)} together)" if sources else ""))
    if from_mlflow is not None and not experiment:
        raise typer.BadParameter("--from-mlflow needs --experiment NAME", param_hint="--experiment")
    if paths and (mapping or constants or percent or experiment):
        raise typer.BadParameter("--map, --set, --percent and --experiment go with --from-csv or --from-mlflow")
    db = open_database(ctx)
    if from_csv is not None:
        report = db.import_table(from_csv, mapping or "", constants=constants, percent=percent)
    elif from_mlflow is not None:
        report = db.import_mlflow(from_mlflow, str(experiment), mapping, constants=constants, percent=percent)
    else:
        report = db.import_paths(paths or [], fmt=fmt)
    payload = dict(report.__dict__)
    if as_json:
        emit_json("scaling.import/v1", {"db": str(db.path), **payload})
        return
    source = (f"{from_mlflow} ({experiment})" if from_mlflow is not None else str(from_csv) if from_csv is not None
              else f"{payload['files']} files")
    stdout_console().print(table(f"Imported into {db.path}", ["from", "runs added", "runs unchanged",
                                                               "runs updated", "evaluations added"],
                                 [[source, payload["runs_added"], payload["runs_unchanged"],
                                   payload["runs_updated"], payload["evals_added"]]]))


@runs_app.command("export")
@domain_errors
def export_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Output file: .csv, .jsonl or .parquet.")],
    fmt: Annotated[str | None, typer.Option(
        "--format", help="csv, jsonl or parquet (pyarrow: the parquet extra) \\[default: from the suffix].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export every run with its evaluations (written atomically: whole, or not at all).

    CSV and Parquet hold one row per run and evaluation, typed in Parquet (`pd.read_parquet`); JSON lines one
    run.json record per run, with its curves. Each re-imports as unchanged. An existing file is replaced only
    with --force; the run database itself never is.

    [bold]Examples[/bold]

      scaling runs export grid.csv
      scaling runs export runs.jsonl
      scaling runs export runs.parquet
      scaling runs export grid.csv --force
    """
    db = open_database(ctx)
    n = db.export(path, fmt=fmt, overwrite=force)
    if as_json:
        emit_json("scaling.export/v1", {"db": str(db.path), "path": str(path), "rows": n})
        return
    stdout_console().print(f"wrote {n} rows to {path}")


@runs_app.command("validate")
@domain_errors
def validate_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to check without importing.")],
    fmt: FormatOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Check files as an import would, without writing anything; every problem is listed in one pass.

    Each bad row, record, log or file is one line on stderr (file, row, column, what is wrong); the exit code
    is 1 if there is any. With --json, stdout has the same list (file, row, column, message of each problem).

    [bold]Examples[/bold]

      scaling runs validate results.csv
      scaling runs validate out/ --json
    """
    from runs_db import ValidationErrors, validate_paths  # lazy: keeps `scaling --help` fast

    try:
        report = validate_paths(paths, fmt=fmt)
    except ValidationErrors as exc:
        if as_json:
            problems = [{"file": e.file, "row": e.row, "column": e.column, "message": e.message}
                        for e in exc.errors]
            emit_json("scaling.validate/v1", {"valid": False, "problems": problems})
        console = stderr_console()
        for e in exc.errors:
            console.print(f"error: {e}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if as_json:
        emit_json("scaling.validate/v1", {"valid": True, "problems": [], **report.__dict__})
        return
    stdout_console().print(f"ok: {report.files} files, {report.runs_added} runs, {report.evals_added} evaluations")
