"""Behaviour is unchanged by refactors, on any machine: every recorded CLI case gives the recorded JSON and
draws the recorded figures, under the tolerance rule written in ``tests/golden_cases.py``.

The record (``tests/golden/*.json``) is made by ``python tests/golden_cases.py record``. Re-record only for a
change an issue asks for, and say so in the commit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.golden_cases import (
    CASES,
    GOLDEN_DIR,
    LM_CSV,
    PERTURBATION,
    assert_matches,
    perturb_csv,
    perturb_db,
    run_case,
    tolerance,
)


def _recorded(name: str) -> dict:
    recorded = json.loads((GOLDEN_DIR / f"{name}.json").read_text())
    assert "png_sha256" not in recorded, f"{name}: figures are compared through what they draw, never by bytes"
    return recorded


def _check(name: str, got: dict, recorded: dict) -> None:
    assert got["args"] == recorded["args"]
    assert_matches(name, {"json": got["json"], "figures": got.get("figures")},
                   {"json": recorded["json"], "figures": recorded.get("figures")})


@pytest.mark.parametrize("name", sorted(CASES))
def test_cli_case_unchanged(name: str, published_db_path: Path, tmp_path: Path) -> None:
    _check(name, run_case(name, published_db_path, tmp_path), _recorded(name))


@pytest.fixture(scope="module")
def perturbed_inputs(published_db_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shipped grid and the loss table with every input value moved by 1e-9 relative."""
    d = tmp_path_factory.mktemp("perturbed")
    db, lm = d / "runs.sqlite", d / "lm.csv"
    shutil.copy(published_db_path, db)
    perturb_db(db, PERTURBATION, seed=3)
    perturb_csv(LM_CSV, lm, PERTURBATION, seed=3)
    return db, lm


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_verdict_survives_perturbed_inputs(name: str, perturbed_inputs: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    """Inputs moved by 1e-9 relative: the same strings and counts, and numbers within the tolerances (which
    would fail if a tolerance sat at the edge of what the computation can promise)."""
    db, lm = perturbed_inputs
    _check(name, run_case(name, db, tmp_path, lm), _recorded(name))


def test_perturbation_moves_every_input(published_db_path: Path, tmp_path: Path) -> None:
    """The perturbation is real: every measured value changes, by at most 1e-9 relative, and grid levels
    that were equal stay equal."""
    import sqlite3

    db = tmp_path / "runs.sqlite"
    shutil.copy(published_db_path, db)
    perturb_db(db, PERTURBATION, seed=3)
    with sqlite3.connect(published_db_path) as a, sqlite3.connect(db) as b:
        q = "SELECT e.value, r.data_hours, r.data_fraction FROM evals e JOIN runs r USING (run_id) ORDER BY e.rowid"
        before, after = a.execute(q).fetchall(), b.execute(q).fetchall()
    assert len(before) == len(after) > 0
    for (v0, h0, _), (v1, h1, _) in zip(before, after, strict=True):
        assert v1 != v0 and abs(v1 / v0 - 1) <= 1.0000001 * PERTURBATION
        assert abs(h1 / h0 - 1) <= 1.0000001 * PERTURBATION
    hours = {}
    for (_, h0, _), (_, h1, _) in zip(before, after, strict=True):
        hours.setdefault(h0, set()).add(h1)
    assert all(len(v) == 1 for v in hours.values())


def test_tolerance_rule() -> None:
    """The rule of the module docstring: linear forms closed-form, iterative fits at the solver's
    tolerance, allocation optimisers looser."""
    assert tolerance("fit-poly1", ("json", "fit", "params", "const")) == (1e-5, 1e-12)
    assert tolerance("fit-powerlaw", ("json", "fit", "params", "E")) == (1e-4, 1e-9)
    assert tolerance("backtest", ("json", "results", "0", "rmse")) == (1e-4, 1e-9)  # powerlaw among its forms
    assert tolerance("project-optimal", ("json", "optimal", "optimum", "point", "n_params")) == (1e-3, 1e-9)
    assert tolerance("project-optimal", ("json", "projections", "0", "predicted")) == (1e-5, 1e-12)
    assert tolerance("plot-frontier", ("figures", "0", "axes", "0", "xlim", "0")) == (1e-3, 1e-9)


def test_comparison_fails_on_a_real_change() -> None:
    """The comparison can fail: a changed string, a changed count and a float moved past its tolerance."""
    want = {"json": {"form": "poly1", "n": 3, "x": 1.0}, "figures": None}
    assert_matches("fit-poly1", {"json": {"form": "poly1", "n": 3, "x": 1.0 + 5e-6}, "figures": None}, want)
    for bad in ({"form": "poly2", "n": 3, "x": 1.0}, {"form": "poly1", "n": 4, "x": 1.0},
                {"form": "poly1", "n": 3, "x": 1.0 + 2e-5}, {"form": "poly1", "n": 3.0, "x": 1.0}):
        with pytest.raises(AssertionError):
            assert_matches("fit-poly1", {"json": bad, "figures": None}, want)
