"""``scaling runs list | show | import | export | validate``: inspect and extend the run database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from scaling.cli.common import domain_errors, emit_json, open_database
from scaling.cli.render import fmt_hours, fmt_number, fmt_params, fmt_percent, stderr_console, stdout_console, table
from scaling.defaults import DEFAULT_EVAL_SET, DEFAULT_METRIC, DEFAULT_PROTOCOL

runs_app = typer.Typer(
    help="Inspect and extend the run database.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
FormatOpt = Annotated[str, typer.Option("--format", help="auto | mae-logs | csv | run-json.")]

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
) -> None:
    """List the runs (one per pretraining grid point).

    --json prints one document like every command's: {"schema", "db", "count", "runs": [one object per run]}.

    [bold]Examples[/bold]

      scaling runs list
      scaling runs list --arch vit_h14 --image-px 476
      scaling runs list --json | jq '.runs | length'
      scaling runs list --json | jq -r '.runs[].run_id'
      scaling runs list --arch vit_nano8 --protocol finetune-digits-20pct \\
          --eval-set digits-val
    """
    db = open_database(ctx)
    filters: dict[str, Any] = {k: v for k, v in
                               {"arch": arch, "image_px": image_px, "source": source, "status": status}.items()
                               if v is not None}
    frame = db.list_runs(**filters)
    grid = db.grid(protocol=protocol, eval_set=eval_set, metric=with_metric)
    acc = dict(zip(grid["run_id"], grid["value"], strict=True)) if not grid.empty else {}
    if as_json:
        records = json.loads(frame.to_json(orient="records"))
        emit_json("scaling.runs/v1", {"db": str(db.path), "count": len(records), "runs": records})
        return
    rows = []
    for r in frame.to_dict("records"):
        rows.append([
            str(r["run_id"]), str(r["arch"]), fmt_params(r["n_params"]), f"{r['image_px']} px",
            fmt_hours(r["data_hours"]), fmt_number(r.get("data_fraction")), fmt_number(r.get("subset_seed")),
            fmt_number(r.get("samples_seen")), fmt_number(r.get("pretrain_flops")), str(r["status"]),
            str(r["source"]), fmt_percent(acc.get(r["run_id"])),
        ])
    cols = ["run id", "arch", "parameters", "image", "data", "fraction", "subset seed", "images seen",
            "pretraining FLOPs", "status", "source", f"{eval_set} {with_metric} (best)"]
    stdout_console().print(table(f"{len(rows)} runs in {db.path}", cols, rows))


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
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: MAE log folders, CSV tables, run.json.")],
    fmt: FormatOpt = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Import runs in one transaction: all files land, or none (the database is left unchanged).

    Importing the same runs twice adds nothing; a run id that exists with different content is an error.

    [bold]Examples[/bold]

      scaling runs import out/run-0001/run.json
      scaling runs import results.csv
      scaling runs import path/to/humanlike-vits/logs --format mae-logs
    """
    db = open_database(ctx)
    report = db.import_paths(paths, fmt=fmt)
    payload = dict(report.__dict__)
    if as_json:
        emit_json("scaling.import/v1", {"db": str(db.path), **payload})
        return
    stdout_console().print(table(f"Imported into {db.path}", ["files", "runs added", "runs unchanged",
                                                               "evaluations added"],
                                 [[payload["files"], payload["runs_added"], payload["runs_unchanged"],
                                   payload["evals_added"]]]))


@runs_app.command("export")
@domain_errors
def export_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Output file: .csv or .jsonl.")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or jsonl \\[default: from the suffix].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Export every run with its evaluations (written atomically: whole, or not at all).

    An existing file is replaced only with --force; the run database itself never is.

    [bold]Examples[/bold]

      scaling runs export grid.csv
      scaling runs export runs.jsonl
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
