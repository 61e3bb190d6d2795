"""Issue 23's rules, each against an independent reference: the shared checks, guarded cost expressions
(closed forms), work estimates (their formulas, and the memory a bootstrap really keeps), exports that never
overwrite, damaged databases, configs that are not replaced silently, escaped text, a box with every axis
pinned. The malformed inputs of every command are in ``tests/test_fuzz_inputs.py``."""

from __future__ import annotations

import json
import math
import sqlite3
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import runs_db
import scaling
from scaling.allocation.budget import best_at_budget, cheapest
from scaling.cli.render import printable
from scaling.compute.costs import cost_model
from scaling.core import checks, work
from scaling.defaults import COST_MAX_CHARS, COST_MAX_DEPTH, WORK_MAX_BYTES
from tests.cli_helpers import invoke, one_line_error
from tests.golden_cases import LM_CSV

AXES = ("params", "tokens")


# -- the shared checks --------------------------------------------------------------------------------------------
def test_checks_accept_what_is_legal_and_name_what_is_not() -> None:
    assert checks.seed("42", "--seed") == 42 and checks.seed(3.0, "seed") == 3 and checks.seed(2**63 - 1) == 2**63 - 1
    for bad in (-1, 1.5, "1.5", 2**63, "1e30", "x", True, float("nan")):
        with pytest.raises(scaling.ScalingError, match="--seed must be an integer from 0"):
            checks.seed(bad, "--seed")
    assert checks.positive("2.5e9", "--params") == 2.5e9
    for bad in (0, -1, "nan", "inf", float("-inf"), "", None, 10**400):
        with pytest.raises(scaling.ScalingError, match="--params"):
            checks.positive(bad, "--params")
    assert checks.count("300", "--gpus") == 300 and checks.count(0, "rows", minimum=0) == 0
    assert checks.fraction(1.0, "--mfu", closed=True) == 1.0
    with pytest.raises(scaling.ScalingError, match=r"in \(0, 1\)"):
        checks.fraction(1.0, "--level")
    axes = ["n_params", "data_hours"]
    assert checks.point({"data_hours": "2e4", "n_params": 1e9}, axes, "--at") == {"n_params": 1e9, "data_hours": 2e4}
    for bad, words in [({"n_params": 1e9}, "lacks axis 'data_hours'"),
                       ({"n_params": 1e9, "data_hours": 1.0, "px": 2}, "names 'px', which is not an axis"),
                       ({"n_params": float("nan"), "data_hours": 1.0}, "n_params must be a finite positive")]:
        with pytest.raises(scaling.ScalingError, match=words):
            checks.point(bad, axes, "--at")
    with pytest.raises(scaling.ScalingError, match="lower 2 is above upper 1"):
        checks.box({"n_params": (2, 1)}, axes, "bounds")
    assert checks.alpha_max(100) == 100 and checks.level_tol(0) == 0
    with pytest.raises(scaling.ScalingError, match="at most 100"):
        checks.alpha_max(101)


# -- cost expressions ----------------------------------------------------------------------------------------------
def test_cost_expressions_evaluate_as_their_closed_form_in_float64() -> None:
    expr = cost_model("2*params*tokens + 1e9*tokens**0.5 - params/params", AXES)
    n, d = np.array([1e8, 1e9]), np.array([1e10, 4e12])
    np.testing.assert_allclose(expr.cost({"params": n, "tokens": d}), 2 * n * d + 1e9 * np.sqrt(d) - 1, rtol=1e-15)
    # Constants are float64: a huge power is inf (then refused as a cost), never an OverflowError.
    for text in ("params*10**10**10", "params*(1/0)", "params**tokens", "params*1e400"):
        with pytest.raises(scaling.ScalingError, match=r"is inf at params=1e\+07, tokens=1e\+09"):
            cost_model(text, AXES).cost({"params": 1e7, "tokens": 1e9})


def test_cost_expressions_are_bounded_in_length_and_depth() -> None:
    assert cost_model("+".join(["params*tokens"] * 40), AXES).cost({"params": 2.0, "tokens": 3.0}) == 240.0
    with pytest.raises(scaling.ScalingError, match=f"at most {COST_MAX_CHARS:,}"):
        cost_model("-" * 100_000 + "params", AXES)
    with pytest.raises(scaling.ScalingError, match=rf"nests \d+ levels deep; .* at most {COST_MAX_DEPTH}"):
        cost_model("-" * (COST_MAX_DEPTH + 1) + "params", AXES)
    with pytest.raises(scaling.ScalingError, match="too large"):
        cost_model("1" * 400 + "*params", AXES)


def test_a_cost_must_be_finite_and_positive_over_the_bounds() -> None:
    bounds = {"params": (1e7, 1e13), "tokens": (1e9, 1e15)}
    cost_model("6*params*tokens", AXES).check_box(bounds)
    cost_model("6nd", AXES).check_box(bounds)
    # Positive at the lower corner, negative inside the box: found by the diagonal and the axis sweeps.
    with pytest.raises(scaling.ScalingError, match=r"'params\*tokens - 1e29' is -"):
        cost_model("params*tokens - 1e29", AXES).check_box({"params": (1e7, 1e13), "tokens": (1e9, 1e15)})
    for text, value in [("params-params", "0"), ("-6*params*tokens", "-6e\\+16")]:
        with pytest.raises(scaling.ScalingError, match=f"is {value} at params=1e\\+07, tokens=1e\\+09"):
            cost_model(text, AXES).check_box(bounds)


@pytest.fixture(scope="module")
def lm() -> scaling.FitResult:
    return scaling.fit(pd.read_csv(LM_CSV), y="loss", axes=list(AXES), kind="loss", form="powerlaw")


def test_allocations_refuse_a_bad_cost_and_answer_a_pinned_box_exactly(lm: scaling.FitResult) -> None:
    with pytest.raises(scaling.ScalingError, match="a cost must be finite and positive"):
        best_at_budget(lm, 1e21, cost_model("params-params", AXES))
    with pytest.raises(scaling.ScalingError, match="a cost must be finite and positive"):
        cheapest(lm, 2.5, cost_model("params*(1/0)", AXES))
    # Every axis pinned: the box is one point, its cost 6 N D and its prediction the fit's there.
    n, d = 1e9, 1e11
    got = best_at_budget(lm, 1e21, cost_model("6nd", AXES), {"params": (n, n), "tokens": (d, d)})
    assert got.reachable and got.point == pytest.approx({"params": n, "tokens": d}, rel=1e-14)  # exp(log x)
    assert got.cost == pytest.approx(6 * n * d, rel=1e-12)
    assert got.predicted == pytest.approx(float(lm.predict({"params": [n], "tokens": [d]})[0]), rel=1e-12)
    over = best_at_budget(lm, 1e20, cost_model("6nd", AXES), {"params": (n, n), "tokens": (d, d)})
    assert not over.reachable and "below the cost at the lower bounds" in over.reason


# -- bounded work ----------------------------------------------------------------------------------------------------
def test_work_estimates_are_their_formulas_and_refuse_past_the_limits() -> None:
    w = work.bootstrap(1000, 78)
    assert w.bytes == 1000 * (8 * 78 + work.RESAMPLE_BYTES) and w.seconds == pytest.approx(1000 * work.RESAMPLE_S)
    assert work.raster(6.4, 4.4, 150).bytes == pytest.approx(6.4 * 4.4 * 150**2 * work.RASTER_BYTES_PER_PIXEL)
    assert work.check(w) is w
    n = math.ceil(WORK_MAX_BYTES / (8 * 78 + work.RESAMPLE_BYTES)) + 1
    with pytest.raises(work.WorkLimitError, match=r"resamples of 78 rows would need about 2 GiB .*--allow-large"):
        work.check(work.bootstrap(n, 78))
    with pytest.raises(work.WorkLimitError, match="without output"):
        work.check(work.frontier(10_000))
    with work.allow_large_work():
        work.check(work.frontier(10_000))
    with pytest.raises(work.WorkLimitError):
        work.check(work.frontier(10_000))  # the allowance ends with its block


def test_the_bootstrap_memory_estimate_bounds_what_it_keeps(published_db_path: Path) -> None:
    """tracemalloc's peak over a fit with 2,000 resamples, less the same fit without: the estimate per
    resample (RESAMPLE_BYTES + 8 B a row) is at least what is kept, and not far above it."""
    runs = scaling.load_runs(published_db_path, metric="top5")
    scaling.fit(runs, "poly1")  # imports and caches outside the measurement

    def peak(n_boot: int) -> int:
        tracemalloc.start()
        scaling.fit(runs, "poly1", n_boot=n_boot, seed=1)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    kept = (peak(2000) - peak(0)) / 2000
    estimate = work.bootstrap(1, len(runs)).bytes
    assert 0.3 * estimate < kept <= estimate, (kept, estimate)


def test_allow_large_lifts_the_limit_for_that_command(published_db_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(work, "WORK_SILENT_MAX_S", 0.0)  # every frontier is now too long to run silently
    args = ("project", "--optimal", "--mode", "at", "--frontier-rows", "2", "--json")
    assert "--allow-large" in one_line_error(invoke(published_db_path, *args))
    ok = invoke(published_db_path, *args, "--allow-large")
    assert ok.exit_code == 0, ok.output
    assert len(json.loads(ok.stdout)["optimal"]["frontier"]) == 2
    assert "--allow-large" in one_line_error(invoke(published_db_path, *args))  # not left lifted


# -- files: exports, configs, damaged databases -----------------------------------------------------------------
def test_export_never_overwrites_unasked_and_writes_whole(published_db_path: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    db = runs_db.open_db(published_db_path)
    out = tmp_path / "grid.csv"
    n = db.export(out)
    first = out.read_bytes()
    with pytest.raises(runs_db.RunsDBError, match="exists; pass --force"):
        db.export(out)
    with pytest.raises(runs_db.RunsDBError, match="onto the run database itself"):
        db.export(published_db_path, fmt="csv", overwrite=True)
    assert db.export(out, overwrite=True) == n and out.read_bytes() == first

    def fail(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("runs_db.records.os.replace", fail)
    with pytest.raises(runs_db.RunsDBError, match="No space left on device"):
        db.export(out, overwrite=True)
    assert out.read_bytes() == first and sorted(p.name for p in tmp_path.iterdir()) == ["grid.csv"]


def test_a_damaged_database_is_one_line_naming_the_cell(published_db_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "damaged.sqlite"
    path.write_bytes(published_db_path.read_bytes())
    conn = sqlite3.connect(path)
    rid = conn.execute("SELECT min(run_id) FROM runs").fetchone()[0]
    conn.execute("PRAGMA ignore_check_constraints = 1")
    conn.execute("UPDATE runs SET image_px = 'big' WHERE run_id = ?", (rid,))
    conn.commit()
    conn.close()
    db = runs_db.open_db(path)
    for read in (db.list_runs, db.grid, lambda: db.get_run(rid)):
        with pytest.raises(runs_db.RunsDBError, match=f"runs.image_px of run {rid} is 'big', not a number"):
            read()


def test_configs_are_not_replaced_silently(published_db_path: Path, tmp_path: Path) -> None:
    runs = scaling.load_runs(published_db_path, metric="top5")
    res = scaling.suggest(runs, n_boot=20, n_outcomes=1, top=2,
                          candidates="arch=vit_h14; image_px=476; data_hours=1000,2000")
    first = scaling.write_configs(res, tmp_path)
    again = scaling.write_configs(res, tmp_path)  # the same content: left as it is
    assert again.paths == first.paths and len(first.paths) == 2
    Path(first.paths[0]).write_text("# edited by hand\n")
    with pytest.raises(scaling.ScalingError, match="exists with other content; pass --force"):
        scaling.write_configs(res, tmp_path)
    assert Path(first.paths[0]).read_text() == "# edited by hand\n"
    scaling.write_configs(res, tmp_path, force=True)
    assert Path(first.paths[0]).read_text().startswith("# suggested by `scaling suggest`")
    with pytest.raises(scaling.ScalingError, match="is a file, not a directory"):
        scaling.write_configs(res, Path(first.paths[0]) / "below")


def test_a_legal_grid_spec_longer_than_a_file_name_is_read_as_a_spec(published_db_path: Path) -> None:
    hours = ",".join(str(1000 + 10 * k) for k in range(60))
    spec = f"arch=vit_h14; image_px=476; data_hours={hours}"
    assert len(spec) > 255
    runs = scaling.load_runs(published_db_path, metric="top5")
    res = scaling.suggest(runs, n_boot=20, n_outcomes=1, top=1, candidates=spec)
    assert res.n_candidates == 60


# -- text -----------------------------------------------------------------------------------------------------------
def test_printable_escapes_control_characters_and_bidi_overrides() -> None:
    assert printable("a\x1b[31mb\x07\u202ec") == "a\\x1b[31mb\\x07\\u202ec"
    assert printable("two\nlines\tok") == "two\nlines\tok"
    assert printable("two\nlines\tok", cell=True) == "two\\nlines\\tok"
    assert printable("ViT-H/14 é 2.5B") == "ViT-H/14 é 2.5B"
