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
    assert "[default: those of the reference run]" in " ".join(out.replace("│", " ").split())


def test_export_under_a_file_is_one_line(published_db_path: Path, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    proc = scaling(["runs", "export", str(tmp_path / "afile" / "x.csv")], published_db_path)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "cannot write the file" in proc.stderr
    assert (tmp_path / "afile").read_text() == "not a folder"
