"""Usage errors of the real command line (`scaling ...`, through ``scaling.cli.main``) are one line on stderr
with exit code 2, domain errors one line with exit code 1, and help texts keep their bracketed defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CASES = [
    (["project", "--mode", "nope"], "--mode"),
    (["project", "--bootstrap", "-5"], "--bootstrap"),
    (["fit", "--workers", "0"], "--workers"),
    (["fit", "--seed", "abc"], "--seed"),
    (["runs", "list", "--image-px", "abc"], "--image-px"),
    (["plot", "nope"], "nope"),
    (["nope"], "nope"),
    (["plot", "data", "--out", "x.bmp"], ".png"),
    (["runs", "import"], "paths"),
]


def scaling(args: list[str], db: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SCALING_DB": str(db), "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "scaling", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.parametrize(("args", "word"), CASES, ids=lambda c: " ".join(c) if isinstance(c, list) else None)
def test_usage_errors_are_one_line(args: list[str], word: str, published_db_path: Path) -> None:
    proc = scaling(args, published_db_path)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_domain_errors_exit_1_and_success_exits_0(published_db_path: Path) -> None:
    bad = scaling(["fit", "--form", "nope"], published_db_path)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: unknown form 'nope'")
    assert scaling(["targets", "--json"], published_db_path).returncode == 0


def test_help_shows_bracketed_defaults(published_db_path: Path) -> None:
    """Rich markup would swallow "[default: ...]"; the help escapes it."""
    out = scaling(["project", "--help"], published_db_path).stdout
    flat = " ".join(out.replace("│", " ").split())
    assert "[default: human-top5 on the run database; none for a --data table]" in flat


def test_export_under_a_file_is_one_line(published_db_path: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    proc = scaling(["runs", "export", str(tmp_path / "afile" / "x.csv")], published_db_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "cannot write the file" in proc.stderr
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_validate_lists_every_bad_row(published_db_path: Path, tmp_path: Path) -> None:
    """`runs validate` prints one line per bad row (exit 1); --json has the same list on stdout."""
    import json

    from cli_helpers import invoke

    header = "arch,image_px,data_hours,protocol,eval_set,metric,selection,value\n"
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "vit_s14,224,5,p,e,top1,best-epoch,43\nvit_s14,abc,5,p,e,top1,best-epoch,0.2\n"
                   "vit_s14,224,5,p,e,top1,best-epoch,0.3\nvit_s14,224,-1,p,e,top1,best-epoch,0.2\n")
    result = invoke(published_db_path, "runs", "validate", str(bad))
    lines = result.stderr.splitlines()
    assert result.exit_code == 1 and len(lines) == 3, result.stderr
    assert [ln.split(": ")[2] for ln in lines] == ["row 2, column 'value'", "row 3, column 'image_px'",
                                                   "row 5, column 'data_hours'"]
    doc = json.loads(invoke(published_db_path, "runs", "validate", str(bad), "--json").stdout)
    assert doc["valid"] is False and [p["row"] for p in doc["problems"]] == [2, 3, 5]


def test_runs_list_json_is_an_envelope_with_the_runs(published_db_path: Path) -> None:
    """Like every --json: one document with a schema; `jq '.runs | length'` counts the runs (the help says so)."""
    from cli_helpers import invoke, ok_json

    doc = ok_json(published_db_path, "runs", "list")
    assert set(doc) == {"schema", "db", "count", "runs"} and doc["count"] == len(doc["runs"]) == 78
    assert "jq '.runs | length'" in invoke(published_db_path, "runs", "list", "--help").stdout
