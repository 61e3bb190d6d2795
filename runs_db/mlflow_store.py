"""Runs of an MLflow tracking store, read through the ``mlflow`` client (the ``mlflow`` extra: mlflow-skinny).

Each run of the experiment is one source row, keyed as ``mlflow.search_runs`` names its columns: ``run_id``,
``run_name``, ``status``, ``start_time``, ``end_time`` (ISO-8601, UTC), ``params.KEY``, ``metrics.KEY`` (the
latest value MLflow keeps for the key) and ``tags.KEY``. Without a mapping for them, these are read as:

- ``run_name`` -> name, ``run_id`` -> foreign_id (the run's identity here), ``status`` -> status,
  ``start_time``/``end_time`` -> started_at/finished_at;
- ``params.KEY`` (else ``tags.KEY``) whose KEY is a run field (``arch``, ``image_px``, ``data_hours``, ...) or
  ``protocol``, ``selection``, ``epoch``, ``n_epochs`` -> that field;
- ``metrics.EVAL_SET/METRIC`` (a metric logged as ``imagenet-val/top5``) -> that evaluation.

A mapping (``runs_db.foreign``) adds to these or replaces them. Reading never writes: a store that does not
exist is an error (the client would create an empty one), and a local file store (``./mlruns``), which MLflow
3 refuses unless ``MLFLOW_ALLOW_FILE_STORE`` is set, is read with that opt-out for the duration of the read.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from .errors import ValidationError
from .foreign import EVAL_TARGETS, ColumnMap, records_from_table
from .validate import RUN_FIELDS, Loc, RunRecord

INSTALL_HINT = "reading MLflow needs the mlflow client: pip install 'humanlike-scaling[mlflow]' (mlflow-skinny)"
PAGE = 1000
FIXED = (("run_name", "name"), ("run_id", "foreign_id"), ("status", "status"), ("start_time", "started_at"),
         ("end_time", "finished_at"))
# Param/tag keys read as fields without a mapping: run fields (not the import's own provenance) and the
# evaluation fields that a run shares across its metrics.
AUTO_KEYS = tuple(f for f in (*RUN_FIELDS, *EVAL_TARGETS)
                  if f not in ("source", "source_file", "status", "name", "started_at", "finished_at", "value",
                               "eval_set", "metric"))


def _local_path(uri: str) -> tuple[str, Path | None]:
    """('file' | 'sqlite' | 'other', the local path of a file or SQLite store)."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file") or (len(parsed.scheme) == 1 and uri[1:3] in (":\\", ":/")):
        return "file", Path(unquote(parsed.path) if parsed.scheme == "file" else uri).expanduser()
    if parsed.scheme == "sqlite":
        return "sqlite", Path(unquote(uri[len("sqlite:///"):])) if uri.startswith("sqlite:///") else None
    return "other", None


@contextmanager
def _file_store_allowed() -> Iterator[None]:
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old


def _iso(ms: object) -> str | None:
    if not isinstance(ms, int | float) or isinstance(ms, bool):
        return None
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).isoformat().replace("+00:00", "Z")


def _row(run: Any) -> dict[str, object]:
    info, data = run.info, run.data
    row: dict[str, object] = {"run_id": info.run_id, "run_name": info.run_name, "status": info.status,
                              "start_time": _iso(info.start_time), "end_time": _iso(info.end_time)}
    row.update({f"params.{k}": v for k, v in data.params.items()})
    row.update({f"metrics.{k}": v for k, v in data.metrics.items()})
    row.update({f"tags.{k}": v for k, v in data.tags.items()})
    return row


def _fetch(uri: str, experiment: str) -> list[dict[str, object]]:
    try:
        from mlflow import MlflowClient  # lazy: an optional extra, and a heavy import
        from mlflow.exceptions import MlflowException  # lazy: as above
    except ImportError:
        raise ValidationError(INSTALL_HINT, file=uri) from None
    try:
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = sorted(e.name for e in client.search_experiments(max_results=50))
            raise ValidationError(f"no experiment named {experiment!r} (there: {', '.join(names) or 'none'})",
                                  file=uri)
        rows: list[dict[str, object]] = []
        token = None
        while True:
            page = client.search_runs([exp.experiment_id], max_results=PAGE, page_token=token,
                                      order_by=["attributes.start_time ASC"])
            rows += [_row(r) for r in page]
            token = page.token
            if not token:
                return rows
    except MlflowException as e:
        raise ValidationError(f"MLflow: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=uri) from None


def mlflow_rows(uri: str, experiment: str) -> list[dict[str, object]]:
    """The runs of ``experiment`` in the store at ``uri`` as source rows (see the module docstring)."""
    kind, path = _local_path(uri)
    if path is not None and not (path.is_dir() if kind == "file" else path.is_file()):
        raise ValidationError(f"no MLflow {'file' if kind == 'file' else 'SQLite'} store there", file=uri)
    if kind == "sqlite" and importlib.util.find_spec("sqlalchemy") is None:
        raise ValidationError("an SQLite MLflow store needs the full MLflow package (its database layer, "
                              "sqlalchemy): pip install mlflow; mlflow-skinny reads file stores and servers", file=uri)
    if kind == "file":
        with _file_store_allowed():
            rows = _fetch(uri, experiment)
    else:
        rows = _fetch(uri, experiment)
    if not rows:
        raise ValidationError(f"experiment {experiment!r} has no runs: nothing to import", file=uri)
    return rows


def auto_map(rows: list[dict[str, object]]) -> list[tuple[str, str]]:
    """The mapping MLflow's own names give (see the module docstring), over every key the runs have."""
    keys = sorted({k for row in rows for k in row})
    out = list(FIXED)
    params = {k.partition(".")[2] for k in keys if k.startswith("params.")}
    for key in keys:
        kind, _, name = key.partition(".")
        if kind in ("params", "tags") and name in AUTO_KEYS and (kind == "params" or name not in params):
            out.append((key, name))
        elif kind == "metrics" and "/" in name:
            out.append((key, name))
    return out


def read_mlflow(uri: str, experiment: str, cmap: ColumnMap | None = None) -> list[RunRecord]:
    """Validated run records of every run of ``experiment`` at ``uri``, read through MLflow's names and ``cmap``."""
    rows = mlflow_rows(uri, experiment)
    full = (cmap or ColumnMap()).under(auto_map(rows))
    table: list[tuple[Loc, Mapping[str, object]]] = [(Loc(f"{uri} run {row['run_id']}"), row) for row in rows]
    return records_from_table(table, full, source="import:mlflow")
