"""Behaviour is unchanged by refactors: every recorded CLI case gives the recorded JSON and figure bytes.

The record (``tests/golden/*.json``) was made by ``python tests/golden_cases.py record`` before the code
moved; see ``tests/golden_cases.py``. Re-record only for a change an issue asks for, and say so in the commit.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import pytest

from tests.golden_cases import CASES, GOLDEN_DIR, assert_close, run_case


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_case_unchanged(name: str, published_db_path: Path, tmp_path: Path) -> None:
    recorded = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    got = run_case(name, published_db_path, tmp_path)
    assert got["args"] == recorded["args"]
    assert_close(got["json"], recorded["json"])
    if "png_sha256" in recorded and matplotlib.__version__ == recorded["matplotlib"]:
        # The bytes depend on matplotlib's renderer (and its freetype): compare them where it is the same.
        assert got["png_sha256"] == recorded["png_sha256"], f"{name}: figure bytes changed"
