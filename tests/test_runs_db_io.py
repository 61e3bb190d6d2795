"""Imports, exports, idempotence, conflicts and bad input of the run database."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import runs_db
from runs_db import ConflictError, RunsDBError, ValidationError

LOGS = runs_db.published_logs_dir()


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "runs.sqlite"
    runs_db.open_db(path).close()
    return path


@pytest.fixture
def db(seeded_template: Path, tmp_path: Path) -> runs_db.RunDB:
    path = tmp_path / "runs.sqlite"
    shutil.copy(seeded_template, path)  # closed cleanly: the WAL was checkpointed into the main file
    with runs_db.open_db(path) as opened:
        yield opened


def checksum(db: runs_db.RunDB) -> str:
    h = hashlib.sha256()
    conn = db._conn
    order = {"runs": "1", "evals": "1, 2, 3, 4, 5", "history": "1, 2, 3, 4, 5", "tags": "1, 2"}
    for table, key in order.items():
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY {key}"):
            h.update(repr(tuple(row)).encode())
    return h.hexdigest()


def make_record(i: int, **overrides: Any) -> dict[str, Any]:
    config = {"arch": "vit_t14", "image_px": 224, "data_fraction": 0.001, "subset_seed": i, "lr": 1e-3}
    record: dict[str, Any] = {
        "schema": "runs_db/run.json@1",
        "name": f"tiny_{i}",
        "status": "COMPLETED",
        "arch": "vit_t14",
        "image_px": 224,
        "data_frames": 17_959,
        "data_fraction": 0.001,
        "subset_seed": i,
        "pretrain_steps": 1000,
        "global_batch": 64,
        "mask_ratio": 0.75,
        "code_version": "git:0123abc",
        "package_versions": {"numpy": "2.0"},
        "host": "node1",
        "started_at": "2025-01-01T10:00:00Z",
        "finished_at": "2025-01-01T12:00:00+00:00",
        "config": config,
        "evals": [
            {"protocol": "finetune-in1k-2pct", "eval_set": "imagenet-val", "metric": "top1",
             "selection": "best-epoch", "value": 0.05 + i / 1000, "epoch": 3, "n_epochs": 5},
            {"protocol": "finetune-in1k-2pct", "eval_set": "imagenet-val", "metric": "top1",
             "selection": "last-epoch", "value": 0.04 + i / 1000, "epoch": 4, "n_epochs": 5},
        ],
        "history": [{"phase": "pretrain", "key": "train_loss", "step": s, "value": 1 / (s + 1)}
                    for s in range(0, 1000, 100)],
        "tags": {"note": "test"},
    }
    record.update(overrides)
    return record


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


CSV_HEADER = ["arch", "image_px", "data_hours", "data_fraction", "subset_seed", "protocol", "eval_set",
              "metric", "selection", "value"]


def csv_row(seed: int = 1, value: Any = 0.2, **over: Any) -> list[Any]:
    row = {"arch": "vit_s14", "image_px": 224, "data_hours": 4.98, "data_fraction": 0.001,
           "subset_seed": seed, "protocol": "finetune-in1k-2pct", "eval_set": "imagenet-val",
           "metric": "top1", "selection": "best-epoch", "value": value, **over}
    return [row[c] for c in CSV_HEADER]


# ------------------------------------------------------------------------------------------- run.json
def test_run_json_directory_import_is_idempotent(db: runs_db.RunDB, tmp_path: Path) -> None:
    for i in range(3):
        write_json(tmp_path / "out" / f"run{i}" / "run.json", make_record(i))
    # Other files in a training output tree are not run records and are left alone.
    (tmp_path / "out" / "run0" / "metrics.csv").write_text("step,loss\n0,1.0\n")
    (tmp_path / "out" / "run0" / "config.json").write_text("{}")
    report = db.import_paths([tmp_path / "out"])
    assert (report.files, report.runs_added, report.runs_unchanged, report.evals_added) == (3, 3, 0, 6)
    assert db.count_runs() == 81
    before = checksum(db)
    again = db.import_paths([tmp_path / "out"])
    assert (again.runs_added, again.runs_unchanged, again.evals_added) == (0, 3, 0)
    assert checksum(db) == before

    rid = runs_db.run_id_for(make_record(1)["config"])
    assert len(rid) == 16
    run = db.get_run(rid[:7])
    assert run["run_id"] == rid
    assert run["n_params"] == runs_db.archs.encoder_params(runs_db.archs.get_arch("vit_t14"), 224)
    assert run["data_hours"] == pytest.approx(17_959 / 3600)
    assert run["samples_seen"] == 64_000
    assert run["flops_method"] == "analytic:mae-matmul-v1 x samples_seen"
    assert run["package_versions"] == {"numpy": "2.0"} and run["tags"] == {"note": "test"}
    assert run["finished_at"] == "2025-01-01T12:00:00Z"
    assert run["history"] == [{"phase": "pretrain", "key": "train_loss", "n": 10, "first_step": 0,
                               "last_step": 900}]
    assert len(db.history(rid)) == 10
    assert len(db.grid().query("source == 'local'")) == 3


def test_insert_run_record_lifecycle_and_conflict(db: runs_db.RunDB) -> None:
    running = make_record(7, status="RUNNING", evals=[], pretrain_steps=100)
    rid = runs_db.insert_run_record(db, running)
    assert rid == runs_db.run_id_for(running["config"])
    assert runs_db.insert_run_record(db, running) == rid  # idempotent
    assert db.get_run(rid)["status"] == "RUNNING"
    # The same run finishing supersedes its RUNNING record.
    done = make_record(7)
    assert runs_db.insert_run_record(db, done) == rid
    run = db.get_run(rid)
    assert run["status"] == "COMPLETED" and run["pretrain_steps"] == 1000 and len(run["evals"]) == 2
    before = checksum(db)
    # A completed run is never overwritten.
    with pytest.raises(ConflictError) as err:
        runs_db.insert_run_record(db, make_record(7, pretrain_steps=2000))
    assert "pretrain_steps" in str(err.value) and "\n" not in str(err.value)
    altered = make_record(7)
    altered["evals"][0]["value"] = 0.5
    with pytest.raises(ConflictError, match=r"evals\[0\]\.value"):
        runs_db.insert_run_record(db, altered)
    assert checksum(db) == before
    # A new evaluation of an existing completed run is added.
    more = make_record(7)
    more["evals"].append({"protocol": "finetune-in1k-2pct", "eval_set": "imagenet-sketch", "metric": "top1",
                          "selection": "best-epoch", "value": 0.01})
    report = db.import_records([runs_db.records.record_from_json(more, runs_db.validate.Loc("x"))])
    assert (report.runs_unchanged, report.evals_added) == (1, 1)


def test_insert_run_record_into_a_path(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite"
    rid = runs_db.insert_run_record(path, make_record(1))
    with runs_db.open_db(path) as db:
        assert db.count_runs() == 79  # the new file was seeded with the published grid
        assert db.get_run(rid)["name"] == "tiny_1"


# --------------------------------------------------------------------------------------- CSV / export
def test_csv_import_groups_rows_by_run(db: runs_db.RunDB, tmp_path: Path) -> None:
    rows = [csv_row(1, 0.2), csv_row(1, 0.4, metric="top5"), csv_row(2, 0.25)]
    report = db.import_paths([write_csv(tmp_path / "t.csv", CSV_HEADER, rows)])
    assert (report.files, report.runs_added, report.evals_added) == (1, 2, 3)
    runs = db.list_runs(source="import:csv")
    assert len(runs) == 2 and set(runs.status) == {"COMPLETED"} and set(runs.n_params) == {21_619_584}
    again = db.import_paths([tmp_path / "t.csv"])
    assert (again.runs_added, again.runs_unchanged, again.evals_added) == (0, 2, 0)


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_export_round_trips(db: runs_db.RunDB, tmp_path: Path, suffix: str) -> None:
    write_json(tmp_path / "runs" / "a" / "run.json", make_record(3))
    db.import_paths([tmp_path / "runs"])
    out = tmp_path / f"export.{suffix}"
    n = db.export(out)
    assert n == (79 * 4 - 2 if suffix == "csv" else 79)  # one row per run x eval; the tiny run has 2 evals
    assert not list(tmp_path.glob(".export*"))  # no temp file left behind
    before = checksum(db)
    report = db.import_paths([out])
    assert (report.runs_added, report.runs_unchanged, report.evals_added) == (0, 79, 0)
    assert checksum(db) == before

    with runs_db.open_db(tmp_path / "copy.sqlite", seed_published=False) as copy:
        report = copy.import_paths([out])
        assert (report.runs_added, report.evals_added) == (79, 79 * 4 - 2)
        for metric in ("top1", "top5"):
            for selection in ("best-epoch", "last-epoch"):
                a = db.grid(metric=metric, selection=selection)
                b = copy.grid(metric=metric, selection=selection)
                assert a.equals(b)
        assert copy.list_runs().drop(columns="imported_at").equals(db.list_runs().drop(columns="imported_at"))
        name = "vith14@476_1.0_1"
        rid = db.list_runs(name=name).run_id.iloc[0]
        assert copy.get_run(rid)["tags"] == db.get_run(rid)["tags"]
        if suffix == "jsonl":
            assert copy.history(rid).equals(db.history(rid))
        assert (copy.export(tmp_path / f"again.{suffix}")) == n


def test_list_runs_filters_and_ids(db: runs_db.RunDB) -> None:
    assert len(db.list_runs(arch="vit_h14")) == 39
    assert len(db.list_runs(arch=["vits14", "vit_b14"], subset_seed=2)) == 8
    assert len(db.list_runs(status="FAILED")) == 0
    with pytest.raises(RunsDBError, match="unknown run column"):
        db.list_runs(colour="red")
    ids = list(db.list_runs().run_id)
    first = next(c for c in "0123456789abcdef" if sum(i.startswith(c) for i in ids) > 1)
    with pytest.raises(runs_db.UnknownRunError, match="ambiguous"):
        db.get_run(first)
    with pytest.raises(runs_db.UnknownRunError, match="no run"):
        db.get_run("zzzz")
    with pytest.raises(RunsDBError, match="export format"):
        db.export("out.txt")


# -------------------------------------------------------------------------------------------- bad input
def expect_one_line(err: RunsDBError, file: str, row: int | None, column: str | None) -> None:
    line = str(err)
    assert "\n" not in line
    assert line.startswith(file), line
    if row is not None:
        assert f"row {row}" in line, line
    if column is not None:
        assert f"column '{column}'" in line, line


BAD_CSVS = {
    "missing-column": ([c for c in CSV_HEADER if c != "value"], [csv_row()[:-1]], 1, "value", "missing"),
    "nan": (CSV_HEADER, [csv_row(1), csv_row(2, data_hours="nan")], 3, "data_hours", "NaN"),
    "non-positive-size": (CSV_HEADER, [csv_row(image_px=0)], 2, "image_px", "positive"),
    "negative-hours": (CSV_HEADER, [csv_row(data_hours=-1)], 2, "data_hours", "positive"),
    "percent": (CSV_HEADER, [csv_row(value=43.97)], 2, "value", "looks like a percent"),
    "conflicting-duplicate": (CSV_HEADER, [csv_row(1, 0.2), csv_row(1, 0.3)], 3, "value", "duplicate"),
    "conflicting-run-column": ([*CSV_HEADER, "samples_seen"], [[*csv_row(1), 1000], [*csv_row(1), 2000]], 3,
                               "samples_seen", "conflicts with row 2"),
    "not-a-number": (CSV_HEADER, [csv_row(value="high")], 2, "value", "expected a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_bad_csv_gives_one_line_and_changes_nothing(db: runs_db.RunDB, tmp_path: Path, case: str) -> None:
    header, rows, row, column, words = BAD_CSVS[case]
    good = write_json(tmp_path / "good" / "run.json", make_record(1))
    bad = write_csv(tmp_path / f"{case}.csv", header, rows)
    before = checksum(db), db.count_runs()
    with pytest.raises(ValidationError) as err:
        db.import_paths([good, bad])  # the good file is not imported either: one transaction
    expect_one_line(err.value, str(bad), row, column)
    if words:
        assert words in str(err.value)
    assert (checksum(db), db.count_runs()) == before
    with pytest.raises(ValidationError) as err2:
        runs_db.validate_paths([bad])
    assert str(err2.value) == str(err.value)


def test_bad_run_json_cases(db: runs_db.RunDB, tmp_path: Path) -> None:
    before = checksum(db)
    nan_record = make_record(1)
    nan_record["evals"][0]["value"] = float("nan")
    nan = write_json(tmp_path / "nan" / "run.json", nan_record)  # json.dumps writes a bare NaN
    cases = [
        (nan, "evals[0].value", "NaN"),
        (write_json(tmp_path / "pct" / "run.json", make_record(1, evals=[
            {"protocol": "p", "eval_set": "s", "metric": "top1", "selection": "best-epoch", "value": 21.1}])),
         "evals[0].value", "percent"),
        (write_json(tmp_path / "frames" / "run.json", make_record(1, data_frames=0)),
         "data_frames", "positive"),
        (write_json(tmp_path / "noconf" / "run.json",
                    {k: v for k, v in make_record(1).items() if k != "config"}), "config", "missing"),
        (write_json(tmp_path / "typo" / "run.json", make_record(1, statsu="COMPLETED")), "statsu", "unknown"),
        (write_json(tmp_path / "status" / "run.json", make_record(1, status="DONE")), "status", "status"),
        (write_json(tmp_path / "params" / "run.json", make_record(1, n_params=123)), "n_params", "differs"),
        (write_json(tmp_path / "id" / "run.json", make_record(1, run_id="0" * 16)), "run_id", "hash"),
        (write_json(tmp_path / "sel" / "run.json", make_record(1, evals=[
            {"protocol": "p", "eval_set": "s", "metric": "top1", "selection": "max", "value": 0.2}])),
         "evals[0].selection", "selection"),
    ]
    for path, column, words in cases:
        with pytest.raises(ValidationError) as err:
            db.import_paths([path])
        expect_one_line(err.value, str(path), None, column)
        assert words in str(err.value), str(err.value)
    assert checksum(db) == before


def test_conflict_in_a_later_file_rolls_back_earlier_files(db: runs_db.RunDB, tmp_path: Path) -> None:
    out = tmp_path / "grid.csv"
    db.export(out)
    with out.open(newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    value_col = header.index("value")
    rows[5][value_col] = repr(float(rows[5][value_col]) + 0.01)
    tampered = write_csv(tmp_path / "tampered.csv", header, rows[1:])
    good = write_json(tmp_path / "new" / "run.json", make_record(9))
    before = checksum(db)
    with pytest.raises(ConflictError) as err:
        db.import_paths([good, tampered])
    expect_one_line(err.value, str(tampered), 6, "value")
    assert "nothing was changed" in str(err.value)
    assert checksum(db) == before and db.count_runs() == 78
    # validate_paths checks the files alone: the tampered file is self-consistent.
    assert runs_db.validate_paths([good, tampered]).runs_added == 79


def test_bad_mae_logs(db: runs_db.RunDB, tmp_path: Path) -> None:
    name = "vitb14_0.01_2"
    root = tmp_path / "logs"
    for kind in ("pretraining", "finetuning"):
        src = LOGS / f"{kind}_logs" / "vitb14_logs" / f"{name}_log.txt"
        dst = root / f"{kind}_logs" / "vitb14_logs" / src.name
        dst.parent.mkdir(parents=True)
        shutil.copy(src, dst)
    assert runs_db.validate_paths([root]).runs_added == 1
    ft = root / "finetuning_logs" / "vitb14_logs" / f"{name}_log.txt"
    good_text = ft.read_text()
    lines = good_text.splitlines()
    before = checksum(db)

    lines[2] = lines[2].replace('"test_acc1": ', '"test_acc1": NaN, "x": ')
    ft.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValidationError) as err:
        db.import_paths([root])
    expect_one_line(err.value, f"logs/finetuning_logs/vitb14_logs/{name}_log.txt", 3, "test_acc1")

    ft.write_text(good_text.replace('"n_parameters": 86475496', '"n_parameters": 86475497'))
    with pytest.raises(ValidationError, match="n_parameters") as err:
        db.import_paths([root])
    assert "85,706,496 (encoder)" in str(err.value)
    assert checksum(db) == before


def test_validate_paths_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runs_db.DB_ENV_VAR, str(tmp_path / "never.sqlite"))
    write_json(tmp_path / "in" / "run.json", make_record(1))
    report = runs_db.validate_paths([tmp_path / "in", LOGS])
    assert (report.files, report.runs_added, report.evals_added) == (157, 79, 314)
    assert not (tmp_path / "never.sqlite").exists()
    with pytest.raises(ValidationError, match="no such file"):
        runs_db.validate_paths([tmp_path / "missing.csv"])
