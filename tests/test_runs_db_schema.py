"""Location, schema versioning and migrations, and import isolation of ``runs_db``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import runs_db
from runs_db import schema


def test_db_path_env_var_then_xdg_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCALING_DB", str(tmp_path / "env" / "mine.sqlite"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert runs_db.default_db_path() == tmp_path / "env" / "mine.sqlite"
    monkeypatch.delenv("SCALING_DB")
    assert runs_db.default_db_path() == tmp_path / "xdg" / "scaling" / "runs.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert runs_db.default_db_path() == tmp_path / "home" / ".local" / "share" / "scaling" / "runs.sqlite"


def test_open_db_uses_scaling_db_and_seeds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "env" / "runs.sqlite"
    monkeypatch.setenv(runs_db.DB_ENV_VAR, str(target))
    with runs_db.open_db() as db:
        assert db.path == target and target.exists()
        assert db.count_runs() == 78
        conn = db._conn
        assert conn.execute("PRAGMA user_version").fetchone()[0] == runs_db.SCHEMA_VERSION == 2
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.execute("DELETE FROM runs WHERE arch = 'vit_s14'")  # cascades to evals/history/tags
        assert conn.execute("SELECT COUNT(*) FROM evals").fetchone()[0] == 65 * 4
    with runs_db.open_db() as db:  # the file exists: no reseeding
        assert db.count_runs() == 65
    with runs_db.open_db(tmp_path / "empty.sqlite", seed_published=False) as db:
        assert db.count_runs() == 0


def test_migration_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO runs (run_id, arch, n_params, patch_px, image_px, data_hours, status, source, "
        "imported_at, config_json) VALUES ('00112233aabbccdd', 'vit_s14', 21619584, 14, 224, 1.0, "
        "'COMPLETED', 'local', '2024-01-01T00:00:00Z', '{\"a\":1}')")
    conn.execute("INSERT INTO evals (run_id, protocol, eval_set, metric, selection, value) VALUES "
                 "('00112233aabbccdd', 'finetune-in1k-2pct', 'imagenet-val', 'top1', 'best-epoch', 0.2)")
    conn.commit()
    conn.close()
    with runs_db.open_db(path) as db:
        assert db._conn.execute("PRAGMA user_version").fetchone()[0] == 2
        run = db.get_run("0011")
        assert run["tags"] == {} and run["evals"][0]["value"] == 0.2
        assert db.count_runs() == 1  # an existing file is not seeded
        assert len(db.grid()) == 1


def test_failed_migration_leaves_the_old_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    schema.MIGRATIONS[0](conn)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE tags (x TEXT)")
        raise RuntimeError("boom")

    monkeypatch.setattr(schema, "MIGRATIONS", [schema.MIGRATIONS[0], broken])
    with pytest.raises(RuntimeError):
        runs_db.open_db(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'tags'").fetchone()[0] == 0
    conn.close()


def test_newer_schema_and_garbage_files_are_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(runs_db.RunsDBError, match="newer than this runs_db"):
        runs_db.open_db(newer)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_text("this is not a database " * 100)
    with pytest.raises(runs_db.RunsDBError) as err:
        runs_db.open_db(garbage)
    assert str(err.value).startswith(str(garbage)) and "\n" not in str(err.value)


def test_runs_db_imports_without_torch_scaling_or_train() -> None:
    # A meta-path finder that refuses torch & co. (sys.modules[name] = None would also block the import,
    # but libraries that probe sys.modules for torch then trip over the None).
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision', 'timm'):\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import runs_db\n"
        "db = runs_db.open_db(':memory:', seed_published=False)\n"
        "assert db.count_runs() == 0\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('scaling', 'train', 'torch')]\n"
        "assert not bad, bad\n"
    )
    root = Path(runs_db.__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_grid_axes_document_the_grid_columns() -> None:
    frame = runs_db.open_db(":memory:").grid()  # in-memory databases are seeded too
    assert len(frame) == 78
    for axis in ("n_params", "data_hours", "image_px", "pretrain_flops", "samples_seen", "value"):
        assert axis in frame.columns and axis in runs_db.GRID_AXES
