"""Bad input the run database must refuse in one line: integers SQLite cannot store, absurd sizes, control
characters, JSON nested too deeply, files with no runs, files that are not run databases; and a dry run
(``validate_paths``) that lists every bad row in one pass."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import runs_db
from runs_db import RunsDBError, ValidationError, ValidationErrors
from tests.cli_helpers import sqlite_file

HEADER = ["arch", "image_px", "data_hours", "data_fraction", "subset_seed", "protocol", "eval_set", "metric",
          "selection", "value"]


def row(seed: int, **over: Any) -> list[Any]:
    values = {"arch": "vit_s14", "image_px": 224, "data_hours": 4.98, "data_fraction": 0.001, "subset_seed": seed,
              "protocol": "p", "eval_set": "e", "metric": "top1", "selection": "best-epoch", "value": 0.2, **over}
    return [values[c] for c in HEADER]


def write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


def one_line(err: pytest.ExceptionInfo[RunsDBError]) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


@pytest.mark.parametrize(("column", "value", "words"), [
    ("subset_seed", 10**25, "integer too large (26 digits"),
    ("subset_seed", -(2**63) - 1, "integer too large"),
    ("image_px", 10**6 * 14, "beyond any real run"),
    ("data_hours", 1e308, "beyond any real run"),
    ("protocol", "fine\x00tune", "control character '\\x00'"),
])
def test_values_sqlite_or_a_fit_cannot_take(tmp_path: Path, column: str, value: Any, words: str) -> None:
    path = write_csv(tmp_path / "t.csv", [row(1), row(2, **{column: value})])
    with pytest.raises(ValidationError) as err:
        runs_db.validate_paths([path])
    line = one_line(err)
    assert line.startswith(f"{path}: row 3, column '{column}'") and words in line, line


def test_largest_storable_integer_is_accepted(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv", [row(2**63 - 1), row(-(2**63))])
    assert runs_db.validate_paths([path]).runs_added == 2


def test_derived_samples_seen_that_overflows(tmp_path: Path) -> None:
    rec = {"status": "COMPLETED", "arch": "vit_t14", "image_px": 224, "data_hours": 1.0, "pretrain_steps": 2**60,
           "global_batch": 1024, "config": {"a": 1}}
    (tmp_path / "run.json").write_text(json.dumps(rec))
    with pytest.raises(ValidationError) as err:
        runs_db.validate_paths([tmp_path / "run.json"])
    assert "column 'samples_seen': integer too large" in one_line(err)


@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_config_is_one_line(tmp_path: Path, depth: int) -> None:
    text = '{"status": "COMPLETED", "arch": "vit_t14", "image_px": 224, "data_hours": 1, "config": ' + \
        '{"a":' * depth + "1" + "}" * depth + "}"
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(ValidationError, match="nested") as err:
        runs_db.validate_paths([tmp_path / "run.json"])
    one_line(err)


def test_files_without_runs_are_errors(tmp_path: Path) -> None:
    write_csv(tmp_path / "h.csv", [])
    (tmp_path / "e.jsonl").write_text("\n\n")
    with pytest.raises(ValidationError, match="only a header"):
        runs_db.validate_paths([tmp_path / "h.csv"])
    with pytest.raises(ValidationError, match="no run records"):
        runs_db.validate_paths([tmp_path / "e.jsonl"])


def test_validate_lists_every_bad_row_in_one_pass(tmp_path: Path) -> None:
    bad_csv = write_csv(tmp_path / "t.csv", [row(1, value=43), row(2), row(3, image_px="abc"), row(2, value=0.4)])
    bad_jsonl = tmp_path / "r.jsonl"
    bad_jsonl.write_text("{oops\n[1]\n")
    with pytest.raises(ValidationErrors) as err:
        runs_db.validate_paths([bad_csv, tmp_path / "missing.csv", bad_jsonl])
    where = [(e.file, e.row, e.column) for e in err.value.errors]
    assert where == [(str(bad_csv), 2, "value"), (str(bad_csv), 4, "image_px"), (str(bad_csv), 5, "value"),
                     (str(tmp_path / "missing.csv"), None, None), (str(bad_jsonl), 1, None),
                     (str(bad_jsonl), 2, None)]
    assert str(err.value).endswith("(and 5 more problems)") and "\n" not in str(err.value)
    # An import stops at the first problem, with the same line the dry run gives first.
    with runs_db.open_db(tmp_path / "db.sqlite", seed_published=False) as db, pytest.raises(ValidationError) as first:
        db.import_paths([bad_csv])
    assert str(first.value) == str(err.value.errors[0])


def test_conflicts_between_good_records_are_listed_with_bad_rows(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "a.csv", [row(1), row(9, value="x")])
    b = write_csv(tmp_path / "b.csv", [row(1, value=0.3)])  # the same run as a.csv row 2, another value
    with pytest.raises(ValidationErrors) as err:
        runs_db.validate_paths([a, b])
    messages = [str(e) for e in err.value.errors]
    assert len(messages) == 2 and "expected a number" in messages[0] and "already has" in messages[1], messages


@pytest.mark.parametrize(("statements", "words"), [
    (("PRAGMA user_version = 2",), "table 'runs' is missing"),
    (("CREATE TABLE runs (x)",), "it has tables (runs) but no run database schema version"),
    (("PRAGMA user_version = 1",), "SQLite error: no such table"),
])
def test_files_that_are_not_run_databases(tmp_path: Path, statements: tuple[str, ...], words: str) -> None:
    path = sqlite_file(tmp_path / "x.sqlite", *statements)
    with pytest.raises(RunsDBError) as err:
        runs_db.open_db(path).list_runs()
    assert words in one_line(err)
    # A query on a damaged table is one line too (pandas' DatabaseError wraps sqlite3's).
    bad = sqlite_file(tmp_path / "w.sqlite", *(f"CREATE TABLE {t} (x)" for t in ("runs", "evals", "history", "tags",
                                                                                   "meta")), "PRAGMA user_version = 2")
    with runs_db.open_db(bad) as db, pytest.raises(RunsDBError, match="no such column") as err2:
        db.list_runs()
    one_line(err2)


def test_control_characters_in_messages_are_escaped() -> None:
    err = ValidationError("bad\x1b[31m value\nhere", file="a\x00.csv", row=2, column="c\x07")
    assert str(err) == "a\\x00.csv: row 2, column 'c\\x07': bad\\x1b[31m value here"
