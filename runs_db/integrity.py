"""What the database's readers and its export check before they trust a file: damaged contents, and where an
export may write.

A damaged database (a text value in a numeric column, a config that is not JSON: written by another program,
or edited by hand; SQLite's type affinity and CHECK constraints can be bypassed) is one ``RunsDBError``
naming the table, column and run, before any query reads the value: never a traceback in whatever reads
it. ``check_tables`` does this in one scan per table (SQLite's ``typeof`` for numbers; ``json.loads``, as the
readers parse it, for the runs' JSON text).

An export never writes onto the database itself (or its WAL and journal files), never onto a folder, and
never over an existing file unless asked (``overwrite``); ``records.atomic_write`` then writes it whole.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from .errors import RunsDBError

# The columns each reader relies on being numbers (NULL allowed where the schema allows it) or JSON text.
NUMERIC: dict[str, tuple[str, ...]] = {
    "runs": ("n_params", "n_params_nonembed", "n_params_with_head", "patch_px", "image_px", "data_frames",
             "data_hours", "data_fraction", "subset_seed", "train_seed", "pretrain_steps", "global_batch",
             "samples_seen", "pretrain_flops", "mask_ratio"),
    "evals": ("value", "epoch", "n_epochs"),
    "history": ("step", "segment", "value"),
}
JSON_TEXT: dict[str, tuple[str, ...]] = {"runs": ("config_json", "package_versions")}
NOT_NULL_JSON = ("config_json",)


def _damaged(table: str, column: str, run_id: object, value: object, kind: str) -> str:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    return (f"damaged database: {table}.{column} of run {run_id} is {shown}, not {kind} (written outside this "
            "toolkit?); fix that row with sqlite3, or rebuild the database from the runs' files")


def _first_bad_number(conn: sqlite3.Connection, table: str, where: str, params: tuple[object, ...]) -> str | None:
    """The first cell of ``table``'s numeric columns that holds text or a blob, as a message; or None."""
    tests = " ".join(f"WHEN typeof({c}) NOT IN ('integer', 'real', 'null') THEN '{c}'" for c in NUMERIC[table])
    row = conn.execute(f"SELECT rid, bad FROM (SELECT rowid AS rid, CASE {tests} END AS bad FROM {table}"
                       f"{' WHERE ' + where if where else ''}) WHERE bad IS NOT NULL LIMIT 1", params).fetchone()
    if row is None:
        return None
    column = str(row[1])
    run_id, value = conn.execute(f"SELECT run_id, {column} FROM {table} WHERE rowid = ?", (row[0],)).fetchone()
    return _damaged(table, column, run_id, value, "a number")


def _first_bad_json(conn: sqlite3.Connection, where: str, params: tuple[object, ...]) -> str | None:
    """The first run whose config (or package versions) is not JSON text, as a message; or None."""
    sql = f"SELECT run_id, {', '.join(JSON_TEXT['runs'])} FROM runs{' WHERE ' + where if where else ''}"
    for row in conn.execute(sql, params):
        for column, value in zip(JSON_TEXT["runs"], row[1:], strict=True):
            if value is None and column not in NOT_NULL_JSON:
                continue
            try:
                json.loads(value)
            except (TypeError, ValueError, RecursionError):
                return _damaged("runs", column, row[0], value, "JSON")
    return None


def check_tables(conn: sqlite3.Connection, tables: tuple[str, ...], path: str, *, run_id: str | None = None) -> None:
    """RunsDBError (one line) at the first damaged cell of ``tables`` (of one run, with ``run_id``)."""
    where, params = ("run_id = ?", (run_id,)) if run_id is not None else ("", ())
    for table in tables:
        message = _first_bad_number(conn, table, where, params) if table in NUMERIC else None
        if message is None and table in JSON_TEXT:
            message = _first_bad_json(conn, where, params)
        if message is not None:
            raise RunsDBError(message, file=path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_export_target(path: Path, db_path: str, *, overwrite: bool) -> None:
    """RunsDBError unless ``path`` may be written by an export: not the database (nor its -wal, -shm or
    -journal file), not a folder, and not an existing file unless ``overwrite``."""
    try:
        if db_path != ":memory:":
            db = Path(db_path)
            own = [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
            if any(_same_file(path, f) or path.absolute() == f.absolute() for f in own):
                raise RunsDBError("refusing to export onto the run database itself (or its journal); choose "
                                  "another file name", file=str(path))
        if path.is_dir():
            raise RunsDBError("is a folder; export to a file (.csv, .jsonl or .parquet) in it", file=str(path))
        if path.exists() and not overwrite:
            raise RunsDBError("exists; pass --force (overwrite=True) to replace it", file=str(path))
    except OSError as e:  # a name too long, a loop of links: one line
        raise RunsDBError(f"cannot use this path ({e.strerror or e})", file=str(path)) from None
