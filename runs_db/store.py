"""Writing validated run records into an open transaction, with the idempotence and conflict rules.

For each record, by run id:

- new id: insert the run, its evals, tags and history;
- stored, same content (every run column except ``source_file``/``imported_at``): unchanged; evals and
  tags with new keys are added (e.g. a later OOD evaluation), an existing key with another value is a
  ``ConflictError``; history points are added where missing;
- stored with other content: if the stored run is RUNNING or FAILED, the new record supersedes it (the
  life cycle of one run: a record written at start, another at the end); if it is COMPLETED, this is a
  ``ConflictError`` and nothing is written. A completed run is never overwritten.

The caller owns the transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``/``ROLLBACK``), so an error anywhere
in an import leaves the database as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ConflictError
from .types import Evaluation
from .validate import NON_CONTENT_FIELDS, RUN_FIELDS, RunRecord, eval_key_of, same_eval, same_value

RUN_COLUMNS = ("run_id", *RUN_FIELDS, "imported_at", "config_json")
EVAL_COLUMNS = ("run_id", "protocol", "eval_set", "metric", "selection", "value", "epoch", "n_epochs",
                "source_file")


@dataclass
class WriteCounts:
    runs_added: int = 0
    runs_unchanged: int = 0
    runs_updated: int = 0
    evals_added: int = 0
    history_added: int = 0


def _conflict(rec: RunRecord, column: str, message: str) -> ConflictError:
    return ConflictError(message, file=rec.loc.file, row=rec.loc.row, column=f"{rec.loc.prefix}{column}")


def _label(rec: RunRecord) -> str:
    return f"run {rec.run_id}" + (f" ({rec.run['name']})" if rec.run.get("name") else "")


def _insert_run(conn: sqlite3.Connection, rec: RunRecord, imported_at: str, *, replace: bool) -> None:
    values = {"run_id": rec.run_id, **rec.run, "imported_at": imported_at, "config_json": rec.config_json}
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    placeholders = ", ".join("?" for _ in RUN_COLUMNS)
    conn.execute(f"{verb} INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})",
                 [values[c] for c in RUN_COLUMNS])


def evaluation_of_row(row: sqlite3.Row) -> Evaluation:
    """An ``evals`` row as an ``Evaluation`` (without its run id)."""
    return Evaluation(protocol=row["protocol"], eval_set=row["eval_set"], metric=row["metric"],
                      selection=row["selection"], value=row["value"], epoch=row["epoch"], n_epochs=row["n_epochs"],
                      source_file=row["source_file"])


def _insert_evals(conn: sqlite3.Connection, rec: RunRecord, evals: Iterable[Mapping[str, object]]) -> int:
    rows = [[rec.run_id, *(ev[c] for c in EVAL_COLUMNS[1:])] for ev in evals]
    marks = ", ".join("?" * len(EVAL_COLUMNS))
    conn.executemany(f"INSERT INTO evals ({', '.join(EVAL_COLUMNS)}) VALUES ({marks})", rows)
    return len(rows)


def _insert_history(conn: sqlite3.Connection, rec: RunRecord, verb: str) -> int:
    before = conn.total_changes
    conn.executemany(
        f"{verb} INTO history (run_id, phase, key, step, segment, value) VALUES (?, ?, ?, ?, ?, ?)",
        [(rec.run_id, *point) for point in rec.history],
    )
    return conn.total_changes - before


def _first_difference(stored: sqlite3.Row, rec: RunRecord) -> str | None:
    for column in RUN_FIELDS:
        if column in NON_CONTENT_FIELDS:
            continue
        if not same_value(stored[column], rec.run[column]):
            return column
    if stored["config_json"] != rec.config_json:  # same hash prefix, other config: a true collision
        return "config"
    return None


def write_record(conn: sqlite3.Connection, rec: RunRecord, imported_at: str, counts: WriteCounts) -> None:
    stored = conn.execute("SELECT * FROM runs WHERE run_id = ?", (rec.run_id,)).fetchone()
    if stored is None:
        _insert_run(conn, rec, imported_at, replace=False)
        counts.runs_added += 1
        counts.evals_added += _insert_evals(conn, rec, rec.evals)
        conn.executemany("INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                         [(rec.run_id, k, v) for k, v in rec.tags.items()])
        counts.history_added += _insert_history(conn, rec, "INSERT")
        return

    column = _first_difference(stored, rec)
    if column is not None:
        if stored["status"] == "COMPLETED":
            old = stored[column] if column != "config" else stored["config_json"]
            new = rec.run[column] if column != "config" else rec.config_json
            raise _conflict(rec, column, f"{_label(rec)} is already stored (COMPLETED) with "
                                         f"{column}={old!r}; this input has {new!r}; nothing was changed")
        # A RUNNING/FAILED run superseded by a newer record of the same run. REPLACE on runs would cascade
        # deletes; update in place instead, then replace evals and tags wholesale.
        assignments = ", ".join(f"{c} = ?" for c in RUN_COLUMNS[1:])
        values = {**rec.run, "imported_at": imported_at, "config_json": rec.config_json}
        conn.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?",
                     [values[c] for c in RUN_COLUMNS[1:]] + [rec.run_id])
        conn.execute("DELETE FROM evals WHERE run_id = ?", (rec.run_id,))
        counts.evals_added += _insert_evals(conn, rec, rec.evals)
        conn.executemany("INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                         [(rec.run_id, k, v) for k, v in rec.tags.items()])
        counts.history_added += _insert_history(conn, rec, "INSERT OR REPLACE")
        counts.runs_updated += 1
        return

    counts.runs_unchanged += 1
    stored_evals = {
        eval_key_of(old): old
        for old in map(evaluation_of_row, conn.execute("SELECT * FROM evals WHERE run_id = ?", (rec.run_id,)))
    }
    new_evals = []
    for ev, loc in zip(rec.evals, rec.eval_locs, strict=True):
        eval_key = eval_key_of(ev)
        old_ev = stored_evals.get(eval_key)
        if old_ev is None:
            new_evals.append(ev)
        elif not same_eval(old_ev, ev):
            raise ConflictError(
                f"{_label(rec)} already has {'/'.join(eval_key)} = {old_ev['value']!r} (epoch {old_ev['epoch']}); "
                f"this input has {ev['value']!r} (epoch {ev['epoch']}); nothing was changed",
                file=loc.file, row=loc.row, column=f"{loc.prefix}value")
    counts.evals_added += _insert_evals(conn, rec, new_evals)
    stored_tags = dict(conn.execute("SELECT key, value FROM tags WHERE run_id = ?", (rec.run_id,)).fetchall())
    for key, value in rec.tags.items():
        if key in stored_tags and stored_tags[key] != value:
            raise _conflict(rec, "tags", f"{_label(rec)} already has tag {key}={stored_tags[key]!r}; "
                                         f"this input has {value!r}; nothing was changed")
    conn.executemany("INSERT OR IGNORE INTO tags (run_id, key, value) VALUES (?, ?, ?)",
                     [(rec.run_id, k, v) for k, v in rec.tags.items()])
    if rec.history:
        counts.history_added += _insert_history(conn, rec, "INSERT OR IGNORE")


def write_records(conn: sqlite3.Connection, records: Iterable[RunRecord], imported_at: str) -> WriteCounts:
    counts = WriteCounts()
    for rec in records:
        write_record(conn, rec, imported_at, counts)
    return counts
