"""Several processes writing one database at once lose nothing and never see "database is locked".

Six spawned processes race to create the (not yet existing) database, which also races the seeding of
the published grid, then each imports its own run.json records plus records shared by all of them, one
import call per record (many short write transactions), alternating ``import_paths`` and
``insert_run_record``. A second variant turns SQLite's own busy wait off, so that only the retry loop
with backoff stands between the writers and "database is locked".
"""

from __future__ import annotations

import json
import multiprocessing as mp
import traceback
from pathlib import Path
from typing import Any

import pytest

import runs_db

N_WORKERS = 6
OWN = 4  # records only one worker imports
SHARED = 4  # records every worker imports


def record(key: str) -> dict[str, Any]:
    seed = sum(map(ord, key))
    return {
        "status": "COMPLETED",
        "arch": "vit_t14",
        "image_px": 224,
        "data_hours": 1.5,
        "config": {"arch": "vit_t14", "key": key},
        "evals": [{"protocol": "finetune-in1k-2pct", "eval_set": "imagenet-val", "metric": "top1",
                   "selection": "best-epoch", "value": (seed % 100) / 100}],
        "history": [{"phase": "pretrain", "key": "train_loss", "step": s, "value": 1.0 / (1 + s)}
                    for s in range(20)],
    }


def worker(db_path: str, files: list[str], barrier: Any, errors: Any, busy_timeout_s: float | None) -> None:
    try:
        if busy_timeout_s is not None:
            # No SQLite-level waiting: every lock clash goes through runs_db's retry-with-backoff loop.
            runs_db.db.BUSY_TIMEOUT_S = busy_timeout_s
        barrier.wait(timeout=60)
        with runs_db.open_db(db_path) as db:
            for i, f in enumerate(files):
                if i % 2:
                    db.import_paths([f])
                else:
                    runs_db.insert_run_record(db, json.loads(Path(f).read_text()))
    except BaseException:
        errors.put(traceback.format_exc())


@pytest.mark.parametrize("busy_timeout_s", [None, 0.0], ids=["busy-timeout", "retry-loop-only"])
def test_concurrent_writers_lose_nothing(tmp_path: Path, busy_timeout_s: float | None) -> None:
    def write(key: str) -> str:
        path = tmp_path / "records" / key / "run.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record(key)))
        return str(path)

    shared = [write(f"shared{j}") for j in range(SHARED)]
    plans = [[write(f"w{w}_{j}") for j in range(OWN)] + shared[w % 2:] + shared[: w % 2]
             for w in range(N_WORKERS)]

    db_path = tmp_path / "db" / "runs.sqlite"
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(N_WORKERS)
    errors = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(str(db_path), plan, barrier, errors, busy_timeout_s))
             for plan in plans]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert not failures, failures[0]
    assert all(p.exitcode == 0 for p in procs)

    expected_new = N_WORKERS * OWN + SHARED
    with runs_db.open_db(db_path) as db:
        assert db.count_runs() == 78 + expected_new
        conn = db._conn
        assert conn.execute("SELECT COUNT(*) FROM evals").fetchone()[0] == 78 * 4 + expected_new
        local_history = conn.execute("SELECT COUNT(*) FROM history WHERE run_id IN "
                                     "(SELECT run_id FROM runs WHERE source = 'local')").fetchone()[0]
        assert local_history == 20 * expected_new
        assert conn.execute("SELECT COUNT(*) FROM meta WHERE key = 'published_seeded'").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        ids = {runs_db.run_id_for(record(Path(f).parent.name)["config"]) for plan in plans for f in plan}
        assert ids <= set(db.list_runs().run_id)
