"""Shared helpers of the CLI tests: invoke the Typer app on a database, parse --json, check one-line errors,
and make SQLite files that are not run databases."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from scaling.cli import app

runner = CliRunner()


def invoke(db: Path, *args: str) -> Any:
    return runner.invoke(app, ["--db", str(db), *args])


def ok_json(db: Path, *args: str) -> dict[str, Any]:
    result = invoke(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def one_line_error(result: Any) -> str:
    """The single stderr line of a domain error (exit 1, no traceback)."""
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def sqlite_file(path: Path, *statements: str) -> Path:
    """An SQLite file holding only what ``statements`` make (a foreign table, a bare user_version, ...)."""
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return path
