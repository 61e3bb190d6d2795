"""SQLite schema of the run database and its migrations.

The schema version is SQLite's ``PRAGMA user_version``. ``MIGRATIONS[i]`` takes a database at version
``i`` to ``i + 1``; ``migrate`` applies the missing ones inside the caller's write transaction, so a
half-migrated file never exists. A file newer than this code is refused rather than guessed at.

Tables (version 2):

``runs``: one pretraining run = one grid point. Units: sizes in px, data in frames (1 frame/s) and hours,
FLOPs as counted by ``runs_db.archs`` (matmul only, 2 per multiply-add, forward + backward).
``n_params`` is the encoder including the class token and the (1 + L)-row position embedding, excluding
the classification head and the MAE decoder; ``n_params_nonembed`` is the same without the position
embedding (which grows with the image size); ``n_params_with_head`` adds the 1000-way fine-tune head (the
``n_parameters`` of the fine-tune logs). ``config_json`` is the frozen config whose hash is ``run_id``.

``evals``: one number per (run, protocol, eval set, metric, selection); ``value`` is a fraction in
[0, 1]; ``epoch`` is the 0-based fine-tune epoch the value was read at, ``n_epochs`` the epochs run.

``history``: curves, one value per (run, phase, key, step, segment); ``segment`` counts resumed jobs.

``tags``: free-form text facts and caveats about a run (how a column was derived, known anomalies).

``meta``: key/value facts about the database itself (e.g. when the published grid was seeded).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .errors import RunsDBError

STATUSES = ("RUNNING", "COMPLETED", "FAILED")
PHASES = ("pretrain", "finetune")
SELECTIONS = ("best-epoch", "last-epoch")

_V1 = """
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE runs (
  run_id             TEXT PRIMARY KEY,
  name               TEXT,
  arch               TEXT NOT NULL,
  n_params           INTEGER NOT NULL CHECK (n_params > 0),
  n_params_nonembed  INTEGER CHECK (n_params_nonembed > 0),
  n_params_with_head INTEGER CHECK (n_params_with_head > 0),
  patch_px           INTEGER NOT NULL CHECK (patch_px > 0),
  image_px           INTEGER NOT NULL CHECK (image_px > 0),
  dataset            TEXT,
  data_frames        INTEGER CHECK (data_frames > 0),
  data_hours         REAL NOT NULL CHECK (data_hours > 0),
  data_fraction      REAL CHECK (data_fraction > 0 AND data_fraction <= 1),
  subset_seed        INTEGER,
  train_seed         INTEGER,
  pretrain_steps     INTEGER CHECK (pretrain_steps >= 0),
  global_batch       INTEGER CHECK (global_batch > 0),
  samples_seen       INTEGER CHECK (samples_seen >= 0),
  pretrain_flops     REAL CHECK (pretrain_flops >= 0),
  flops_method       TEXT,
  mask_ratio         REAL CHECK (mask_ratio >= 0 AND mask_ratio < 1),
  status             TEXT NOT NULL CHECK (status IN ('RUNNING', 'COMPLETED', 'FAILED')),
  source             TEXT NOT NULL,
  source_file        TEXT,
  code_version       TEXT,
  package_versions   TEXT,
  host               TEXT,
  started_at         TEXT,
  finished_at        TEXT,
  imported_at        TEXT NOT NULL,
  config_json        TEXT NOT NULL
);
CREATE TABLE evals (
  run_id      TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  protocol    TEXT NOT NULL,
  eval_set    TEXT NOT NULL,
  metric      TEXT NOT NULL,
  selection   TEXT NOT NULL CHECK (selection IN ('best-epoch', 'last-epoch')),
  value       REAL NOT NULL CHECK (value >= 0 AND value <= 1),
  epoch       INTEGER CHECK (epoch >= 0),
  n_epochs    INTEGER CHECK (n_epochs > 0),
  source_file TEXT,
  PRIMARY KEY (run_id, protocol, eval_set, metric, selection)
);
CREATE TABLE history (
  run_id  TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  phase   TEXT NOT NULL CHECK (phase IN ('pretrain', 'finetune')),
  key     TEXT NOT NULL,
  step    INTEGER NOT NULL,
  segment INTEGER NOT NULL DEFAULT 0,
  value   REAL,
  PRIMARY KEY (run_id, phase, key, step, segment)
);
"""

_V2 = """
CREATE TABLE tags (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (run_id, key)
);
CREATE INDEX evals_by_key ON evals (protocol, eval_set, metric, selection);
CREATE INDEX runs_by_axes ON runs (arch, image_px, data_fraction);
"""


def _script(sql: str) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        # executescript() would COMMIT the caller's transaction; run statement by statement instead.
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)

    return apply


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _script(_V1),  # 0 -> 1: runs, evals, history, meta
    _script(_V2),  # 1 -> 2: tags; indexes for the grid query
]
SCHEMA_VERSION = len(MIGRATIONS)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, *, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to ``target``; the caller holds the write transaction. Returns the old version."""
    current = user_version(conn)
    if current > SCHEMA_VERSION:
        raise RunsDBError(
            f"database schema version {current} is newer than this runs_db (version {SCHEMA_VERSION}); "
            "upgrade the package"
        )
    for version in range(current, target):
        MIGRATIONS[version](conn)
        # user_version is part of the database header, so it commits or rolls back with the migration.
        conn.execute(f"PRAGMA user_version = {version + 1}")
    return current
