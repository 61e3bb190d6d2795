"""Bring your own runs: a W&B or hand-made CSV through a column mapping, Parquet exports, `runs list --csv`.

(MLflow stores: tests/test_own_runs_mlflow.py.) Every value read is compared with what the source file says,
and every bad input is one line with the database unchanged.
"""

from __future__ import annotations

import io
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import runs_db
from runs_db import ColumnMap
from tests.cli_helpers import invoke, ok_json, one_line_error

PROTOCOL, EVAL_SET = runs_db.PROTOCOL_PERMISSIVE, runs_db.EVAL_SET_IMAGENET
SET = f"protocol={PROTOCOL},selection=best-epoch"
# A W&B runs-table export: display name, state, config columns, summary metrics in percent.
WANDB = (
    "Name,State,Notes,arch,img,hours,lr,summary/val_acc1,summary/val_acc5\n"
    "b14-a,finished,,vit_b14,224,49.886,0.001,21.12,43.97\n"
    "b14-b,finished,,vit_b14,224,49.886,0.002,22.5,45.1\n"
    "h14-a,crashed,oom,vit_h14,224,498.86,0.001,,\n"
)
MAP = ("Name=name,State=status,arch=arch,img=image_px,hours=data_hours,lr=config.lr,"
       "summary/val_acc1=imagenet-val/top1,summary/val_acc5=imagenet-val/top5")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def dump(db_path: Path) -> list[tuple[object, ...]]:
    """Every row of every table but meta, for "nothing changed" checks."""
    conn = sqlite3.connect(db_path)
    try:
        return [row for t in ("runs", "evals", "history", "tags")
                for row in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3")]
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "runs.sqlite"
    runs_db.open_db(path, seed_published=False).close()
    return path


def test_a_wandb_export_lands_with_its_values(db_path: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "wandb.csv", WANDB)
    with runs_db.open_db(db_path) as db:
        report = db.import_table(src, MAP, constants=SET, percent=True)
        assert (report.runs_added, report.evals_added) == (3, 4)
        frame = db.list_with_eval(metric="top5").set_index("name")
        # the file's percents as fractions, its states as the database's, a crashed run without evaluations
        assert frame.loc["b14-a", "value"] == pytest.approx(0.4397, rel=1e-12)
        assert frame.loc["b14-b", "value"] == pytest.approx(0.451, rel=1e-12)
        assert math.isnan(frame.loc["h14-a", "value"])
        assert frame["status"].to_dict() == {"b14-a": "COMPLETED", "b14-b": "COMPLETED", "h14-a": "FAILED"}
        assert set(frame["source"]) == {"import:mapped-csv"}
        # registry facts are derived as for any import; the mapped learning rate is part of the identity
        assert frame.loc["b14-a", "n_params"] == 85_706_496 and frame.loc["b14-a", "patch_px"] == 14
        run = db.get_run(str(frame.loc["b14-a", "run_id"]))
        assert run["config"]["settings"] == {"lr": "0.001"} and run["config"]["name"] == "b14-a"
        top1 = {(e["eval_set"], e["metric"], e["protocol"], e["selection"]): e["value"] for e in run["evals"]}
        assert top1 == {(EVAL_SET, "top1", PROTOCOL, "best-epoch"): pytest.approx(0.2112, rel=1e-12),
                        (EVAL_SET, "top5", PROTOCOL, "best-epoch"): pytest.approx(0.4397, rel=1e-12)}
        # the same export again adds nothing
        again = db.import_table(src, MAP, constants=SET, percent=True)
        assert (again.runs_added, again.runs_unchanged, again.evals_added) == (0, 3, 0)


def test_a_long_table_and_a_mapping_file_read_the_same(db_path: Path, tmp_path: Path) -> None:
    """One row per run x evaluation, protocol and selection in columns; the same mapping as a TOML file."""
    long = write(tmp_path / "long.csv", (
        "run,model,px,frames,split,what,acc\n"
        f"r1,vit_s14,224,179590,{EVAL_SET},top1,0.2\n"
        f"r1,vit_s14,224,179590,{EVAL_SET},top5,0.41\n"
        f"r2,vit_s14,224,17959,{EVAL_SET},top5,0.3\n"))
    spec = "run=foreign_id,model=arch,px=image_px,frames=data_frames,split=eval_set,what=metric,acc=value"
    toml = write(tmp_path / "map.toml", (
        "percent = false\n[columns]\nrun = 'foreign_id'\nmodel = 'arch'\npx = 'image_px'\nframes = 'data_frames'\n"
        f"split = 'eval_set'\nwhat = 'metric'\nacc = 'value'\n[set]\nprotocol = '{PROTOCOL}'\n"
        "selection = 'last-epoch'\n"))
    assert ColumnMap.read(toml) == ColumnMap.of(spec, constants=f"protocol={PROTOCOL},selection=last-epoch")
    with runs_db.open_db(db_path) as db:
        report = db.import_table(long, toml)
        assert (report.runs_added, report.evals_added) == (2, 3)
        grid = db.grid(metric="top5", selection="last-epoch").set_index("data_frames")
        assert grid.loc[179590, "value"] == 0.41 and grid.loc[17959, "value"] == 0.3
        assert grid.loc[179590, "data_hours"] == pytest.approx(179590 / 3600, rel=1e-12)
        again = db.import_table(long, spec, constants=f"protocol={PROTOCOL},selection=last-epoch")
        assert again.runs_unchanged == 2 and again.runs_added == 0


BAD = {
    "unknown-target": (MAP.replace("img=image_px", "img=px"), SET, True, "'px' is not a run field"),
    "column-not-in-file": (MAP.replace("img=", "image="), SET, True, "column 'image': mapped column is not in"),
    "percent-without-flag": (MAP, SET, False, "column 'summary/val_acc1': 21.12 looks like a percent"),
    "no-protocol": (MAP, "selection=best-epoch", True, "no protocol: map a column to it"),
    "runs-told-apart-by-nothing": (MAP.replace("Name=name,", "").replace("lr=config.lr,", ""), SET, True,
                                   "map a column that tells them apart"),
    "text-as-size": (MAP.replace("State=status,", "").replace("img=image_px", "State=image_px"), SET, True,
                     "column 'State': expected a number, got 'finished' (read as image_px)"),
    "no-arch": (MAP.replace("arch=arch,", ""), SET, True, "no arch: map a column to it"),
    "bad-selection": (MAP, f"protocol={PROTOCOL},selection=best", True, "selection must be one of"),
    "set-a-mapped-field": (MAP, SET + ",image_px=224", True, "'image_px' is also mapped from column 'img'"),
    "two-columns-one-field": (MAP + ",Notes=arch", SET, True, "are both mapped to 'arch'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_mappings_and_rows_are_one_line_and_change_nothing(case: str, db_path: Path, tmp_path: Path) -> None:
    spec, sets, percent, words = BAD[case]
    src = write(tmp_path / "wandb.csv", WANDB)
    before = dump(db_path)
    args = ["runs", "import", "--from-csv", str(src), "--map", spec, "--set", sets, *(["--percent"] * percent)]
    line = one_line_error(invoke(db_path, *args))
    assert words in line, line
    assert dump(db_path) == before


@pytest.mark.parametrize(("text", "words"), [
    ("[columns]\nName = 3\n", "maps a column to a target name"),
    ("columns = 'x'\n", "must be tables"),
    ("[nope]\n", "holds [columns], [set] and percent"),
    ("[columns\n", "not a valid mapping file"),
])
def test_bad_mapping_files_are_one_line(text: str, words: str, db_path: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "wandb.csv", WANDB)
    line = one_line_error(invoke(db_path, "runs", "import", "--from-csv", str(src), "--map",
                                 str(write(tmp_path / "m.toml", text))))
    assert words in line, line


@pytest.mark.parametrize(("args", "words"), [
    ([], "give the paths to import"),
    (["x.csv", "--from-csv", "y.csv"], "not paths and --from-csv together"),
    (["--from-mlflow", "mlruns"], "--from-mlflow needs --experiment"),
    (["x.csv", "--map", "a=arch"], "go with --from-csv or --from-mlflow"),
])
def test_import_sources_are_usage_errors(args: list[str], words: str, db_path: Path) -> None:
    result = invoke(db_path, "runs", "import", *args)
    assert result.exit_code == 2 and words in result.output, result.output


def test_the_cli_imports_a_wandb_export(db_path: Path, tmp_path: Path) -> None:
    src = write(tmp_path / "wandb.csv", WANDB)
    report = ok_json(db_path, "runs", "import", "--from-csv", str(src), "--map", MAP, "--set", SET, "--percent")
    assert (report["runs_added"], report["evals_added"]) == (3, 4)


def test_parquet_export_is_typed_and_reimports_unchanged(published_db_path: Path, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out, csv_out = tmp_path / "runs.parquet", tmp_path / "runs.csv"
    report = ok_json(published_db_path, "runs", "export", str(out))
    db = runs_db.open_db(published_db_path)
    assert db.export(csv_out) == report["rows"] == 78 * 4  # 78 runs x top-1/top-5 x best/last epoch
    types = {f.name: str(f.type) for f in pq.read_schema(out)}
    assert types["n_params"] == "int64" and types["data_hours"] == "double" and types["value"] == "double"
    assert types["arch"] == "string" and types["epoch"] == "int64"
    # the same table as the CSV export, value for value
    a = pd.read_parquet(out)
    b = pd.read_csv(csv_out, keep_default_na=False, na_values=[""])
    for column in ("run_id", "arch", "protocol", "eval_set", "metric", "selection"):
        assert a[column].tolist() == b[column].tolist()
    for column in ("n_params", "data_hours", "value", "pretrain_flops", "epoch"):
        assert a[column].astype(float).tolist() == pytest.approx(b[column].astype(float).tolist(), rel=0, abs=0,
                                                                 nan_ok=True)
    # into a fresh database and back into the same one: the published grid, unchanged
    fresh = tmp_path / "fresh.sqlite"
    report = ok_json(fresh, "runs", "import", str(out))
    assert report["runs_unchanged"] == 78 and report["runs_added"] == 0  # a new file is seeded with the grid
    empty = runs_db.open_db(tmp_path / "empty.sqlite", seed_published=False)
    assert empty.import_paths([out]).runs_added == 78
    assert empty.export(tmp_path / "again.csv") == 78 * 4
    assert (tmp_path / "again.csv").read_text().splitlines()[0] == csv_out.read_text().splitlines()[0]
    # never over an existing file unasked
    assert "exists; pass --force" in one_line_error(invoke(published_db_path, "runs", "export", str(out)))


def test_runs_list_csv_is_the_table_with_its_evaluation(published_db_path: Path) -> None:
    result = invoke(published_db_path, "runs", "list", "--csv", "--arch", "vit_h14", "--with-metric", "top5")
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(io.StringIO(result.stdout))
    db = runs_db.open_db(published_db_path)
    grid = db.grid(metric="top5").set_index("run_id")["value"]
    assert len(frame) == 39 and set(frame["arch"]) == {"vit_h14"}  # ViT-H at 224, 448 and 476 px, 13 runs each
    assert frame["value"].tolist() == [grid[r] for r in frame["run_id"]]
    assert set(frame["metric"]) == {"top5"} and set(frame["eval_set"]) == {EVAL_SET}
    assert list(frame.columns[:3]) == ["run_id", "name", "arch"]
    assert invoke(published_db_path, "runs", "list", "--csv", "--json").exit_code == 2
