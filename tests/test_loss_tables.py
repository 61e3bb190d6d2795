"""Loss tables are first-class (issue 10): the wording, the defaults taken from the table, lower-is-better
targets, forms that cannot apply skipped with their reason, and rankings that survive them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.selection.backtest import backtest
from tests.cli_helpers import invoke, ok_json, one_line_error
from tests.golden_cases import LM_CSV

LOSS = ["--data", str(LM_CSV), "--y", "loss", "--axes", "params,tokens", "--kind", "loss"]


def test_project_a_loss_table_in_its_own_words(tmp_path: Path) -> None:
    result = invoke(tmp_path / "db.sqlite", "project", *LOSS, "--form", "powerlaw", "--target", "2.2")
    assert result.exit_code == 0, result.output
    assert "What reaches loss 2.2?" in result.stdout and "floor" in result.stdout and "%" not in result.stdout
    doc = ok_json(tmp_path / "db.sqlite", "project", *LOSS, "--form", "powerlaw", "--target", "2.2")
    answers = {p["question"]: p for p in doc["projections"]}
    # defaults from the table: solve its last axis, evaluate at its largest point
    assert set(answers) == {"scale every axis", "solve tokens", "at point"}
    assert answers["at point"]["point"] == {"params": 1e9, "tokens": 3e10}
    solved = answers["solve tokens"]
    assert solved["point"]["tokens"] > 3e10 and solved["predicted"] == pytest.approx(2.2)
    assert doc["target"]["name"] == "loss 2.2" and doc["target"]["metric"] == "loss"


def test_bad_targets_and_options_for_a_loss_are_one_line(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    assert "accuracy" in one_line_error(invoke(db, "project", *LOSS, "--form", "powerlaw", "--target",
                                               "human-top5"))
    assert "percent" in one_line_error(invoke(db, "project", *LOSS, "--form", "powerlaw", "--target", "80%"))
    assert "chance-level" in one_line_error(invoke(db, "fit", *LOSS, "--form", "powerlaw_chance"))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "cannot read" in one_line_error(invoke(db, "fit", "--data", str(empty), "--y", "loss"))
    header = tmp_path / "header.csv"
    header.write_text("params,tokens,loss\n")
    assert "no data" in one_line_error(invoke(db, "fit", "--data", str(header), "--y", "loss", "--axes",
                                              "params,tokens", "--kind", "loss"))


def test_backtest_and_compare_rank_the_forms_that_apply(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    bt = ok_json(db, "backtest", *LOSS)
    assert bt["level_tol"] == 0.0 and bt["seed_noise"]["sigma"] is None  # exact levels: no replicates here
    # The table was drawn from Chinchilla's additive power law. powerlaw, saturating (the same law) and m4
    # (which ends at alpha = 0, the same law) tie to 1e-6; the tie goes to the fewest parameters.
    assert bt["recommended"] == "powerlaw" and bt["ranking"][:3] == ["powerlaw", "saturating", "m4"]
    skipped = {r["form"]: r["reason"] for r in bt["results"] if not r["ok"]}
    assert "chance-level" in skipped["powerlaw_chance"] and "logit1" in skipped
    assert "powerlaw_chance" not in bt["ranking"] and len(bt["ranking"]) >= 3
    assert any(s["kind"] == "rolling-origin" and s["axis"] == "tokens" for s in bt["splits"])
    cmp = ok_json(db, "compare", *LOSS, "--bootstrap", "0")
    rows = {r["form"]: r for r in cmp["forms"]}
    assert cmp["recommended"] == "powerlaw" and not rows["powerlaw_chance"]["ok"]
    assert cmp["point"] == {"params": 1e9, "tokens": 3e10}


def test_a_form_that_fits_no_split_does_not_empty_the_ranking() -> None:
    rng = np.random.default_rng(0)
    x = np.repeat([1e1, 1e2, 1e3, 1e4, 1e5], 2)
    loss = 2.0 + 5.0 * x**-0.3 + rng.normal(0, 0.01, len(x))  # losses above 1: no logit form can fit them
    table = pd.DataFrame({"x": x, "loss": loss})
    r = backtest(table, ["logit1", "powerlaw", "poly1"], y="loss", axes=["x"], kind="loss", rolling_axis="x",
                 level_tol=0.0)
    assert r.by_form["logit1"].n_ok == 0 and "logit1" not in r.ranking
    assert r.ranking[0] == "powerlaw" and r.common_splits
    assert any("not ranked" in n and "logit1" in n for n in r.notes)


def test_library_defaults_follow_the_table() -> None:
    table = pd.read_csv(LM_CSV)
    fit = scaling.fit(table, form="poly1", y="loss", axes=["params", "tokens"], kind="loss")
    rep = scaling.project(fit, target=2.3)
    assert [q for q, _ in rep.projections] == ["scale every axis", "solve tokens", "at point"]
    assert rep.answer("at point").point == {"params": 1e9, "tokens": 3e10}
    with pytest.raises(scaling.ScalingError, match="accuracy"):
        scaling.project(fit, target="human-top5")  # an accuracy is no target for a loss
    # no target given: a loss table borrows none, and answers only what needs none (issue 17)
    alone = scaling.project(fit)
    assert alone.target is None and [q for q, _ in alone.projections] == ["at point"]
    assert alone.answer("at point").target is None
    with pytest.raises(scaling.ScalingError, match="give a target"):
        scaling.project(fit, mode="solve")


def test_predictions_that_cannot_exist_are_flagged() -> None:
    """A straight line in log x passes 100% accuracy far enough out: the projection, the comparison and the
    bootstrap say so instead of printing 104% silently."""
    x = np.repeat([1e1, 1e2, 1e3, 1e4], 3)
    rng = np.random.default_rng(1)
    acc = 0.5 + 0.1 * np.log10(x) + rng.normal(0, 0.01, len(x))
    table = pd.DataFrame({"x": x, "acc": acc, "run_id": np.arange(len(x))})
    fit = scaling.fit(table, form="poly1", y="acc", axes=["x"])
    far = scaling.project(fit, target=0.9, mode="at", at={"x": 1e7}).answer("at point")
    assert far.predicted > 1.0 and "impossible" in far.details["impossible"] and "impossible" in far.reason
    near = scaling.project(fit, target=0.9, mode="at", at={"x": 1e4}).answer("at point")
    assert "impossible" not in near.details
    cmp = scaling.compare(table, ["poly1"], y="acc", axes=["x"], at={"x": 1e7}, n_boot=20)
    assert "impossible" in cmp.rows[0].reason
    boot = scaling.project(fit, target=0.9, mode="at", at={"x": 1e7}, n_boot=20).bootstrap
    assert any("cannot exist" in n for n in boot.notes)
