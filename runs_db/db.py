"""The run database: location, connections, transactions and the ``RunDB`` query/import API.

Location: ``$SCALING_DB`` if set, else ``$XDG_DATA_HOME/scaling/runs.sqlite``, else
``~/.local/share/scaling/runs.sqlite`` (the CLI's ``--db PATH`` overrides all three). Opening a file
that does not exist yet creates it, migrates it to the current schema and imports the published grid of
Orhan (2023) in one transaction (``seed_published=False`` skips the grid).

Concurrency: several processes may import at once (runs finishing in parallel, racing imports). The file
is in WAL mode (readers never block the writer), every connection waits up to ``BUSY_TIMEOUT_S`` for a
lock, every write is one ``BEGIN IMMEDIATE`` transaction (the write lock is taken up front, so two writers
never deadlock upgrading read locks), and a transaction that still meets "database is locked/busy" is
retried with jittered exponential backoff for up to ``RETRY_DEADLINE_S``; after that a ``RunsDBError``
(one line) is raised, never a raw ``sqlite3.OperationalError``. WAL needs a local filesystem: on NFS or
Lustre let each run write its ``run.json`` and import those instead of sharing one database file.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeAlias, TypeVar, cast

import pandas as pd

from . import records as rec_io
from .archs import PUBLISHED_ARCH_NAMES
from .errors import RunsDBError, UnknownRunError, ValidationError, ValidationErrors
from .foreign import ColumnMap, read_mapped_csv
from .integrity import check_export_target, check_tables
from .loading import load_records
from .mlflow_store import read_mlflow
from .parquet import parquet_writer
from .published import EVAL_SET_IMAGENET, PROTOCOL_PERMISSIVE, published_logs_dir, published_records
from .schema import SCHEMA_VERSION, migrate, user_version
from .store import RUN_COLUMNS, evaluation_of_row, write_records
from .types import RunDetails, Value
from .validate import RUN_FIELDS, Loc, RunRecord

DB_ENV_VAR = "SCALING_DB"
BUSY_TIMEOUT_S = 10.0
RETRY_DEADLINE_S = 120.0
MEMORY = ":memory:"
EXPORT_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}

T = TypeVar("T")
# A filter of RunDB.list_runs: a value (None: IS NULL), or a list, tuple or set of values (any of them).
RunFilter: TypeAlias = Value | list[Value] | tuple[Value, ...] | set[Value] | frozenset[Value]


def default_db_path() -> Path:
    """``$SCALING_DB``, else ``$XDG_DATA_HOME/scaling/runs.sqlite``, else ``~/.local/share/scaling/...``."""
    env = os.environ.get(DB_ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "scaling" / "runs.sqlite"


@dataclass(frozen=True)
class ImportReport:
    """What an import (or a dry run) did: files read, runs added/unchanged/updated, evals added."""

    files: int
    runs_added: int
    runs_unchanged: int
    evals_added: int
    runs_updated: int = 0
    history_added: int = 0


def _is_lock_error(e: sqlite3.OperationalError) -> bool:
    text = str(e).lower()
    return "locked" in text or "busy" in text


def _with_retry(fn: Callable[[], T], where: str) -> T:
    """Run ``fn``, retrying lock/busy errors with jittered exponential backoff up to a deadline."""
    deadline = time.monotonic() + RETRY_DEADLINE_S
    delay = 0.02
    while True:
        try:
            return fn()
        except sqlite3.IntegrityError as e:
            # A CHECK/PRIMARY KEY backstop caught what validation should have: still one line, no commit.
            raise RunsDBError(f"database constraint failed: {e}", file=where) from None
        except sqlite3.OperationalError as e:
            if not _is_lock_error(e):
                raise RunsDBError(f"SQLite error: {e}", file=where) from None
            if time.monotonic() + delay > deadline:
                raise RunsDBError(
                    f"database stayed locked for {RETRY_DEADLINE_S:.0f} s by other writers; try again",
                    file=where) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as e:
            # A damaged file or one whose tables are not a run database ("file is not a database",
            # "malformed", "no such column", pandas' wrapper of those): one line, never a traceback.
            raise RunsDBError(f"not a usable run database: {str(e).splitlines()[0] if str(e) else e}",
                              file=where) from None
        except OverflowError as e:  # an integer validation should have refused; a backstop, still one line
            raise RunsDBError(f"value too large for SQLite: {e}", file=where) from None


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------------ RunDB
class RunDB:
    """An open run database (one SQLite connection). Use ``open_db`` to get one."""

    def __init__(self, path: Path | str, conn: sqlite3.Connection) -> None:
        self.path = Path(path)
        self._conn = conn

    # -- plumbing
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> RunDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunDB({str(self.path)!r})"

    def _write(self, fn: Callable[[sqlite3.Connection], T], *, begin: str = "BEGIN IMMEDIATE") -> T:
        """Run ``fn`` in one transaction (a write one by default); roll back on any error; retry on locks."""
        conn = self._conn

        def attempt() -> T:
            conn.execute(begin)
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        return _with_retry(attempt, str(self.path))

    def _read(self, sql: str, params: Sequence[Value] = ()) -> pd.DataFrame:
        return _with_retry(lambda: pd.read_sql_query(sql, self._conn, params=list(params)), str(self.path))

    def _rows(self, sql: str, params: Sequence[Value] = ()) -> list[sqlite3.Row]:
        return _with_retry(lambda: self._conn.execute(sql, list(params)).fetchall(), str(self.path))

    def _check(self, *tables: str, run_id: str | None = None) -> None:
        """A damaged cell of ``tables`` (text in a number, a config that is not JSON) is one RunsDBError
        before a reader meets it (``runs_db.integrity``)."""
        _with_retry(lambda: check_tables(self._conn, tables, str(self.path), run_id=run_id), str(self.path))

    def _initialise(self, *, seed: bool) -> None:
        """Migrate; seed the published grid if the database had no schema yet (a new file)."""
        def state(conn: sqlite3.Connection) -> tuple[int, set[str]]:
            # Version and tables in one read transaction: a consistent snapshot even while another
            # process is creating the schema.
            names = {str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return user_version(conn), names

        version, tables = self._write(state, begin="BEGIN DEFERRED")
        if version == SCHEMA_VERSION:
            self._check_tables(tables)
            return
        if version == 0 and tables:
            raise RunsDBError(f"not a run database: it has tables ({', '.join(sorted(tables)[:3])}) but no run "
                              "database schema version (a file of another program?)", file=str(self.path))
        # Parse outside the transaction so the write lock is held only for the inserts.
        grid = published_records() if seed and version == 0 else []

        def init(conn: sqlite3.Connection) -> None:
            # Re-read under the write lock: a racing process may have created the schema meanwhile.
            old = migrate(conn)
            if grid and old == 0:
                write_records(conn, grid, _utc_now())
                conn.execute("INSERT INTO meta (key, value) VALUES ('published_seeded', ?)", (_utc_now(),))

        self._write(init)

    def _check_tables(self, names: set[str]) -> None:
        """A file claiming the current schema (``user_version``) must have its tables: else one line, not a
        "no such table" traceback on the first query."""
        missing = [t for t in ("runs", "evals", "history", "tags", "meta") if t not in names]
        if missing:
            raise RunsDBError(f"not a run database: schema version {SCHEMA_VERSION} is set but table "
                              f"{missing[0]!r} is missing (a file of another program?)", file=str(self.path))

    # -- queries
    def count_runs(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM runs")[0][0])

    def list_runs(self, **filters: RunFilter) -> pd.DataFrame:
        """One row per run (all ``runs`` columns), filtered by column equality.

        A filter value may be a scalar, a list/tuple/set (any of), or None (IS NULL); e.g.
        ``list_runs(arch='vit_h14', image_px=476)``. ``arch`` also accepts published names (``vith14``).
        """
        where: list[str] = []
        params: list[Value] = []
        for column, value in filters.items():
            if column not in RUN_COLUMNS:
                known = ", ".join(RUN_COLUMNS)
                raise RunsDBError(f"unknown run column {column!r} to filter on; known: {known}")
            if column == "arch":
                value = _arch_names(value)
            if value is None:
                where.append(f"{column} IS NULL")
            elif isinstance(value, list | tuple | set | frozenset):
                values = list(value)
                where.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "0")
                params += values
            else:
                where.append(f"{column} = ?")
                params.append(value)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY arch, image_px, data_fraction, subset_seed, name, run_id"
        self._check("runs")
        return self._read(sql, params)

    def list_with_eval(self, *, protocol: str = PROTOCOL_PERMISSIVE, eval_set: str = EVAL_SET_IMAGENET,
                       metric: str = "top1", selection: str = "best-epoch", **filters: RunFilter) -> pd.DataFrame:
        """``list_runs(**filters)`` with one evaluation beside each run: columns ``protocol``, ``eval_set``,
        ``metric``, ``selection`` and ``value`` (a fraction; NaN where the run has no such evaluation)."""
        frame = self.list_runs(**filters)
        values = self.grid(protocol=protocol, eval_set=eval_set, metric=metric, selection=selection, status=None)
        by_run = dict(zip(values["run_id"], values["value"], strict=True))
        out = frame.assign(protocol=protocol, eval_set=eval_set, metric=metric, selection=selection)
        out["value"] = [by_run.get(r, float("nan")) for r in frame["run_id"]]
        return out

    def resolve_id(self, run_id: str) -> str:
        """The full run id for an id or a unique id prefix."""
        prefix = str(run_id).strip().lower()
        if not prefix:
            raise UnknownRunError("empty run id")
        rows = self._rows("SELECT run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 3",
                          [prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"])
        if not rows:
            raise UnknownRunError(f"no run with id {run_id!r} in {self.path}")
        if len(rows) > 1:
            raise UnknownRunError(f"run id prefix {run_id!r} is ambiguous ({rows[0][0]}, {rows[1][0]}, ...)")
        return str(rows[0][0])

    def get_run(self, run_id: str) -> RunDetails:
        """Full record: run columns, ``config``, ``tags``, ``evals`` list and ``history`` summary."""
        rid = self.resolve_id(run_id)
        self._check("runs", "evals", "history", run_id=rid)
        row = self._rows("SELECT * FROM runs WHERE run_id = ?", [rid])[0]
        out: dict[str, Any] = dict(row)
        out["config"] = json.loads(out.pop("config_json"))
        if out.get("package_versions"):
            out["package_versions"] = json.loads(out["package_versions"])
        out["tags"] = {r["key"]: r["value"] for r in self._rows(
            "SELECT key, value FROM tags WHERE run_id = ? ORDER BY key", [rid])}
        out["evals"] = [evaluation_of_row(r) for r in self._rows(
            "SELECT protocol, eval_set, metric, selection, value, epoch, n_epochs, source_file FROM evals "
            "WHERE run_id = ? ORDER BY protocol, eval_set, metric, selection", [rid])]
        out["history"] = [dict(r) for r in self._rows(
            "SELECT phase, key, COUNT(*) AS n, MIN(step) AS first_step, MAX(step) AS last_step FROM history "
            "WHERE run_id = ? GROUP BY phase, key ORDER BY phase, key", [rid])]
        return cast(RunDetails, out)  # the runs columns (RunDetails lists them) and the entries added above

    def grid(
        self,
        *,
        protocol: str = PROTOCOL_PERMISSIVE,
        eval_set: str = EVAL_SET_IMAGENET,
        metric: str = "top1",
        selection: str = "best-epoch",
        status: str | None = "COMPLETED",
    ) -> pd.DataFrame:
        """The tidy frame the fitter reads: one row per run that has this evaluation (value = fraction)."""
        sql = (
            "SELECT r.run_id, r.name, r.arch, r.n_params, r.n_params_nonembed, r.n_params_with_head, "
            "r.patch_px, r.image_px, r.data_hours, r.data_frames, r.data_fraction, r.subset_seed, "
            "r.samples_seen, r.pretrain_flops, r.mask_ratio, r.source, e.protocol, e.eval_set, e.metric, "
            "e.selection, e.value, e.epoch, e.n_epochs "
            "FROM runs r JOIN evals e ON e.run_id = r.run_id "
            "WHERE e.protocol = ? AND e.eval_set = ? AND e.metric = ? AND e.selection = ?"
        )
        params: list[Value] = [protocol, eval_set, metric, selection]
        if status is not None:
            sql += " AND r.status = ?"
            params.append(status)
        sql += " ORDER BY r.arch, r.image_px, r.data_fraction, r.subset_seed, r.run_id"
        self._check("runs", "evals")
        return self._read(sql, params)

    def eval_keys(self) -> pd.DataFrame:
        """Distinct (protocol, eval_set, metric, selection) with the number of runs having each."""
        return self._read(
            "SELECT protocol, eval_set, metric, selection, COUNT(DISTINCT run_id) AS n_runs FROM evals "
            "GROUP BY protocol, eval_set, metric, selection ORDER BY protocol, eval_set, metric, selection")

    def history(self, run_id: str, phase: str | None = None) -> pd.DataFrame:
        """Curves of one run: columns run_id, phase, step, key, value, segment (sorted)."""
        rid = self.resolve_id(run_id)
        self._check("history", run_id=rid)
        sql = "SELECT run_id, phase, step, key, value, segment FROM history WHERE run_id = ?"
        params: list[Value] = [rid]
        if phase is not None:
            sql += " AND phase = ?"
            params.append(phase)
        return self._read(sql + " ORDER BY phase, key, step, segment", params)

    # -- writes
    def import_paths(self, paths: Sequence[str | Path], *, fmt: str = "auto") -> ImportReport:
        """Import files/directories in one transaction: all of them or (on any error) nothing."""
        n_files, records = load_records(paths, fmt)
        return self.import_records(records, files=n_files)

    def import_table(self, path: str | Path, mapping: ColumnMap | str | Path | Mapping[str, str], *,
                     constants: str | Mapping[str, object] | None = None, percent: bool = False) -> ImportReport:
        """Import a W&B or hand-made CSV through a column mapping (``runs_db.foreign``), all rows or none."""
        cmap = ColumnMap.of(mapping, constants=constants, percent=percent)
        return self.import_records(read_mapped_csv(path, cmap), files=1)

    def import_mlflow(self, uri: str, experiment: str, mapping: ColumnMap | str | Path | Mapping[str, str] | None
                      = None, *, constants: str | Mapping[str, object] | None = None, percent: bool = False
                      ) -> ImportReport:
        """Import every run of an MLflow experiment (``runs_db.mlflow_store``; the ``mlflow`` extra), all or none."""
        cmap = ColumnMap.of(mapping, constants=constants, percent=percent)
        return self.import_records(read_mlflow(uri, experiment, cmap), files=0)

    def import_records(self, records: Sequence[RunRecord], *, files: int = 0) -> ImportReport:
        imported_at = _utc_now()
        counts = self._write(lambda conn: write_records(conn, records, imported_at))
        return ImportReport(files=files, runs_added=counts.runs_added, runs_unchanged=counts.runs_unchanged,
                            evals_added=counts.evals_added, runs_updated=counts.runs_updated,
                            history_added=counts.history_added)

    def export(self, path: str | Path, *, fmt: str | None = None, overwrite: bool = False) -> int:
        """Write every run as CSV or Parquet (one row per run x eval) or JSON lines (one run.json object per run).

        The format comes from ``fmt`` ('csv' | 'jsonl' | 'parquet': pyarrow, the ``parquet`` extra) or the
        suffix; the file is written whole (atomically).
        It is never the database itself nor a folder, and an existing file is replaced only with ``overwrite``
        (``runs_db.integrity``); a damaged database is refused before anything is written. Returns the
        number of rows (CSV) or lines (JSONL) written.
        """
        path = Path(path)
        kind = fmt or EXPORT_SUFFIXES.get(path.suffix.lower())
        if kind not in EXPORT_SUFFIXES.values():
            raise RunsDBError("cannot tell the export format: use a .csv, .jsonl or .parquet name, or fmt=",
                              file=str(path))
        check_export_target(path, str(self.path), overwrite=overwrite)

        def snapshot(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], ...]:
            # One read transaction, so the export is a consistent snapshot.
            check_tables(conn, ("runs", "evals", "history") if kind == "jsonl" else ("runs", "evals"),
                         str(self.path))
            runs = [dict(r) for r in conn.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY arch, image_px, data_fraction, "
                "subset_seed, name, run_id")]
            evals = [dict(r) for r in conn.execute(
                "SELECT * FROM evals ORDER BY run_id, protocol, eval_set, metric, selection")]
            tags = [dict(r) for r in conn.execute("SELECT * FROM tags ORDER BY run_id, key")]
            hist = ([dict(r) for r in conn.execute(
                "SELECT run_id, phase, key, step, segment, value FROM history "
                "ORDER BY run_id, phase, key, step, segment")] if kind == "jsonl" else [])
            return runs, evals, tags, hist

        runs, evals, tags, hist = self._write(snapshot, begin="BEGIN DEFERRED")  # a read: no write lock
        evals_by: dict[str, list[dict[str, Any]]] = {}
        for e in evals:
            evals_by.setdefault(e.pop("run_id"), []).append(e)
        tags_by: dict[str, dict[str, str]] = {}
        for t in tags:
            tags_by.setdefault(t["run_id"], {})[t["key"]] = t["value"]
        hist_by: dict[str, list[dict[str, Any]]] = {}
        for h in hist:
            hist_by.setdefault(h.pop("run_id"), []).append(h)

        if kind == "parquet":
            rows = list(rec_io.csv_rows(runs, evals_by, tags_by))
            rec_io.atomic_write(path, parquet_writer(rows), binary=True)
            return len(rows)
        if kind == "csv":
            rows = list(rec_io.csv_rows(runs, evals_by, tags_by))

            def write_csv(f: TextIO) -> None:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(rec_io.CSV_COLUMNS)
                w.writerows(rows)

            rec_io.atomic_write(path, write_csv)
            return len(rows)

        def write_jsonl(f: TextIO) -> None:
            for run in runs:
                rid = run["run_id"]
                obj = rec_io.run_json_object(run, evals_by.get(rid, []), tags_by.get(rid, {}),
                                             hist_by.get(rid, []))
                f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")

        rec_io.atomic_write(path, write_jsonl)
        return len(runs)


def _arch_names(value: RunFilter) -> RunFilter:
    if isinstance(value, str):
        return PUBLISHED_ARCH_NAMES.get(value, value)
    if isinstance(value, list | tuple | set | frozenset):
        return [PUBLISHED_ARCH_NAMES.get(v, v) if isinstance(v, str) else v for v in value]
    return value


def _connect(path: Path | str) -> sqlite3.Connection:
    shown = str(path)
    try:
        # isolation_level=None: no implicit transactions; every write is an explicit BEGIN IMMEDIATE.
        conn = sqlite3.connect(shown, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as e:
        raise RunsDBError(f"cannot open database: {e}", file=shown) from None
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if shown != MEMORY:
            mode = _with_retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone()[0], shown)
            if str(mode).lower() != "wal":
                raise RunsDBError(f"could not switch to WAL journal mode (got {mode})", file=shown)
    except sqlite3.DatabaseError as e:
        conn.close()
        raise RunsDBError(f"not a usable SQLite database: {e}", file=shown) from None
    except RunsDBError:
        conn.close()
        raise
    return conn


def open_db(path: str | Path | None = None, *, seed_published: bool = True) -> RunDB:
    """Open (creating and migrating if needed) the run database at ``path`` or ``default_db_path()``.

    A new database (a file that does not exist yet, or has no schema yet) is created with the current
    schema and, unless ``seed_published`` is False, the 78 published runs, in one transaction; an
    existing one is only migrated. ``":memory:"`` gives a private in-memory database.
    """
    if path is not None and str(path) == MEMORY:
        target = MEMORY
    else:
        p = Path(path).expanduser() if path is not None else default_db_path()
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunsDBError(f"cannot create the database directory: {e}", file=str(p)) from None
        target = str(p)
    conn = _connect(target)
    db = RunDB(target, conn)
    try:
        db._initialise(seed=seed_published)
    except BaseException:
        conn.close()
        raise
    return db


def validate_paths(paths: Sequence[str | Path], *, fmt: str = "auto") -> ImportReport:
    """Parse and check inputs without touching any database (a dry run into a private in-memory one).

    Catches everything an import would, including duplicates with conflicting values across the inputs;
    it cannot know about conflicts with runs already in a particular database.
    """
    invalid: list[ValidationError] = []
    n_files, records = load_records(paths, fmt, invalid)
    errors: list[RunsDBError] = list(invalid)  # and conflicts between the inputs (ConflictError)
    with open_db(MEMORY, seed_published=False) as scratch:
        if not errors:
            try:
                return scratch.import_records(records, files=n_files)
            except RunsDBError as e:
                errors.append(e)
        # Some inputs are bad: still check the good records against each other, one at a time, so that
        # conflicts between them are listed too.
        for rec in records:
            try:
                scratch.import_records([rec], files=0)
            except RunsDBError as e:
                if str(e) not in {str(x) for x in errors}:
                    errors.append(e)
    raise ValidationErrors(errors)


def insert_run_record(db_or_path: RunDB | str | Path | None, record: Mapping[str, object]) -> str:
    """Insert one run.json-shaped dict (see ``runs_db.records``); returns its run id. Idempotent."""
    rec = rec_io.record_from_json(record, Loc("<run record>"))
    if isinstance(db_or_path, RunDB):
        db_or_path.import_records([rec], files=0)
    else:
        with open_db(db_or_path) as db:
            db.import_records([rec], files=0)
    return rec.run_id


__all__ = [
    "DB_ENV_VAR",
    "RUN_FIELDS",
    "ImportReport",
    "RunDB",
    "default_db_path",
    "insert_run_record",
    "load_records",
    "open_db",
    "published_logs_dir",
    "validate_paths",
]
