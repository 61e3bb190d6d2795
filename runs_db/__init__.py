"""Run database of the scaling toolkit: pretraining runs, their evaluations and curves, in SQLite.

Data flows ``train`` -> ``runs_db`` -> ``scaling``; this package never imports either of the others (nor
torch). Quick start::

    import runs_db
    db = runs_db.open_db()          # $SCALING_DB or ~/.local/share/scaling/runs.sqlite; seeded on creation
    db.grid()                       # 78 published runs: best-epoch ImageNet top-1 (fraction), 2% fine-tune
    db.import_paths(["out/"])       # run.json files written by train (recursive), CSV, JSONL, Parquet or MAE logs
    db.import_table("wandb.csv", "Name=name,arch=arch,px=image_px,hours=data_hours,acc5=imagenet-val/top5",
                    constants="protocol=finetune-in1k-2pct,selection=best-epoch", percent=True)
    db.import_mlflow("mlruns", "mae-grid", constants="protocol=finetune-in1k-2pct,selection=last-epoch")

Modules: ``schema`` (DDL, migrations), ``db`` (location, transactions, ``RunDB``), ``ids`` (run ids),
``validate`` (checks and derivations), ``loading`` (paths to records by format), ``mae_logs`` (MAE
JSON-lines logs), ``records`` (run.json, CSV, JSONL formats), ``parquet`` (the export's table as Parquet),
``foreign`` (other trackers' tables through a column mapping), ``mlflow_store`` (MLflow tracking stores),
``ood`` (the 16-class OOD sets of Geirhos et al. 2021 and human accuracy on them),
``store`` (idempotence and conflict rules),
``published`` (the shipped grid), ``archs`` (ViT shapes, parameter and FLOPs counts), ``types`` (JSON,
stored values, ``Evaluation`` and ``RunDetails`` rows: annotations only).
"""

from __future__ import annotations

from .db import (
    DB_ENV_VAR,
    ImportReport,
    RunDB,
    default_db_path,
    insert_run_record,
    open_db,
    validate_paths,
)
from .errors import ConflictError, RunsDBError, UnknownRunError, ValidationError, ValidationErrors
from .foreign import ColumnMap
from .ids import run_id_for
from .published import (
    EVAL_SET_IMAGENET,
    PROTOCOL_PERMISSIVE,
    PROTOCOL_STRINGENT,
    PUBLISHED_SOURCE,
    published_logs_dir,
)
from .records import RUN_JSON_SCHEMA
from .schema import SCHEMA_VERSION
from .validate import GRID_AXES

__all__ = [
    "DB_ENV_VAR",
    "EVAL_SET_IMAGENET",
    "GRID_AXES",
    "PROTOCOL_PERMISSIVE",
    "PROTOCOL_STRINGENT",
    "PUBLISHED_SOURCE",
    "RUN_JSON_SCHEMA",
    "SCHEMA_VERSION",
    "ColumnMap",
    "ConflictError",
    "ImportReport",
    "RunDB",
    "RunsDBError",
    "UnknownRunError",
    "ValidationError",
    "ValidationErrors",
    "default_db_path",
    "insert_run_record",
    "open_db",
    "published_logs_dir",
    "run_id_for",
    "validate_paths",
]
