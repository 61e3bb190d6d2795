"""Every answer rests on one story (issue 17): one training-length rule for project, plan and suggest;
questions that need only their own inputs; one default metric; a caution far beyond the data."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import scaling
from runs_db.archs import ARCHS, encoder_params
from scaling.compute.training_length import TrainingLength, from_grid, parse
from scaling.core.targets import PRESETS
from scaling.defaults import DEFAULT_METRIC, DEFAULT_TARGET, FRAMES_PER_HOUR
from scaling.design.candidates import load_candidates
from tests.cli_helpers import invoke, ok_json, one_line_error
from tests.golden_cases import LM_CSV

AXES = ("n_params", "data_hours", "image_px")
LOSS = ["--data", str(LM_CSV), "--y", "loss", "--axes", "params,tokens", "--kind", "loss", "--form", "powerlaw"]


@pytest.fixture(scope="module")
def grid(published_db_path: Path) -> pd.DataFrame:
    runs = scaling.load_runs(published_db_path, metric="top5")
    return runs[runs["metric"] == "top5"].reset_index(drop=True)


@pytest.fixture(scope="module")
def fit(grid: pd.DataFrame) -> scaling.FitResult:
    return scaling.fit(grid, "poly1", metric="top5")


# -- one training-length rule ---------------------------------------------------------------------------------


def test_grid_rule_reproduces_the_grid(grid: pd.DataFrame) -> None:
    """At every trained run's point the grid rule gives the images its level's runs saw (their median), and
    beyond the largest hours the passes of the largest runs."""
    rule = from_grid(grid)
    assert rule is not None and rule.rule == "grid"
    runs = grid.drop_duplicates("run_id")
    for _, r in runs.iterrows():
        point = {a: float(r[a]) for a in AXES}
        same = runs[(runs["arch"] == r["arch"]) & (runs["image_px"] == r["image_px"])
                    & (runs["data_hours"].round(6) == round(float(r["data_hours"]), 6))]
        assert rule.images_seen(point) == pytest.approx(float(same["samples_seen"].median()), rel=1e-12)
    h476 = runs[(runs["arch"] == "vit_h14") & (runs["image_px"] == 476) & (runs["data_fraction"] == 1.0)].iloc[0]
    far = {"n_params": 2.5e9, "data_hours": 20000.0, "image_px": 952.0}
    passes = float(h476["samples_seen"]) / (float(h476["data_hours"]) * FRAMES_PER_HOUR)
    assert rule.at(far).passes == pytest.approx(passes, rel=1e-12) and passes == pytest.approx(4.85, abs=0.01)
    assert rule.at(far).mask_ratio == 0.8  # the 476-px runs' mask ratio


def test_passes_and_images_rules() -> None:
    point = {"n_params": 1e9, "data_hours": 100.0, "image_px": 224.0}
    assert TrainingLength("passes", 3.0).images_seen(point) == pytest.approx(3.0 * 100 * FRAMES_PER_HOUR, rel=1e-15)
    assert TrainingLength("images", 4e8).images_seen(point) == pytest.approx(4e8, rel=1e-15)
    assert parse("passes=2.5").value == 2.5 and parse(None, passes=7).rule == "passes"
    for bad in ("passes=0", "passes=-1", "images=nan", "epochs=3", "passes=x", "grid"):
        with pytest.raises(scaling.ScalingError):
            parse(bad)  # 'grid' without a grid is an error when asked for by name
    with pytest.raises(scaling.ScalingError, match="either"):
        parse("images=1e8", passes=3)


@pytest.mark.parametrize("arch", sorted(a for a, s in ARCHS.items() if s.patch_px == 14))
def test_project_plan_and_suggest_price_a_point_alike(arch: str, grid: pd.DataFrame,
                                                      fit: scaling.FitResult) -> None:
    """The FLOPs of one point are the same whether project, plan or suggest prices it, for every registered
    ViT/14, at a trained hours level and 10x beyond the data."""
    for hours in (49.886111, 49885.96):
        spec = f"arch={arch}; image_px=224; data_hours={hours}"
        (cand,) = load_candidates(spec, grid, AXES, None)
        point = {"n_params": float(encoder_params(ARCHS[arch], 224)), "data_hours": hours, "image_px": 224.0}
        rep = scaling.project(fit, mode="at", at=point)
        assert rep.answer("at point").compute.flops == pytest.approx(cand.flops, rel=1e-12)
        assert scaling.plan(arch=arch, image_px=224, data_hours=hours, runs=grid).flops == \
            pytest.approx(cand.flops, rel=1e-12)
        assert scaling.plan(rep, question="at point").flops == pytest.approx(cand.flops, rel=1e-12)
        assert cand.run["images_seen"] == pytest.approx(from_grid(grid).images_seen(point), rel=1e-12)
        fraction = cand.run["data_fraction"]
        assert (fraction is None) == cand.run["beyond_corpus"] and (fraction is None or 0 < fraction <= 1)


def test_suggest_costs_more_video_more(grid: pd.DataFrame) -> None:
    """The issue's example: 5,000 h and 50,000 h of ViT-H/14 at 476 px no longer cost the same."""
    five, fifty = load_candidates("arch=vit_h14; image_px=476; data_hours=5000,50000", grid, AXES, None)
    assert fifty.flops == pytest.approx(10 * five.flops, rel=1e-12)
    assert fifty.run["beyond_corpus"] and fifty.run["data_fraction"] is None and "corpus" in fifty.label
    assert not five.run["beyond_corpus"] and five.run["data_fraction"] == 1.0  # 5,000 h of a 4,989 h corpus


def test_every_answer_says_which_rule(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "project")
    assert doc["training_length"]["rule"] == "grid"
    assert all(p["compute"]["training"].startswith("grid: as ViT-H/14 476 px") for p in doc["projections"])
    fixed = ok_json(published_db_path, "project", "--mode", "at", "--passes", "3")
    assert fixed["training_length"]["spec"] == "passes=3" and fixed["projections"][0]["compute"]["passes"] == 3
    text = invoke(published_db_path, "project", "--training-length", "images=4e8", "--mode", "at")
    assert text.exit_code == 0 and "4e+08 images per run" in text.stdout.replace("\n", " ")
    assert "passes=" in one_line_error(invoke(published_db_path, "project", "--training-length", "epochs=2"))


# -- questions need only their own inputs -----------------------------------------------------------------------


def test_budget_alone_on_a_loss_table(published_db_path: Path) -> None:
    """Chinchilla's question needs no target: --budget C alone answers the best allocation at C."""
    doc = ok_json(published_db_path, "project", *LOSS, "--budget", "1e21", "--cost", "6nd")
    assert doc["target"] is None and doc["projections"] == []
    point = doc["budget"]["point"]
    assert 6 * point["params"] * point["tokens"] == pytest.approx(1e21, rel=1e-6)
    table = pd.read_csv(LM_CSV)
    fit = scaling.fit(table, "powerlaw", y="loss", axes=["params", "tokens"], kind="loss")
    api = scaling.project(fit, budget=1e21, cost="6nd")
    assert api.budget.point == pytest.approx(point, rel=1e-9)
    assert scaling.optimal(fit, budget=1e21, cost="6nd").point == pytest.approx(point, rel=1e-9)


def test_the_cost_column_follows_cost(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "project", *LOSS, "--target", "2.3", "--cost", "6nd")
    assert doc["cost_model"]["formula"] == "6*params*tokens"
    for p in doc["projections"]:
        assert p["details"]["cost"]["value"] == pytest.approx(6 * p["point"]["params"] * p["point"]["tokens"],
                                                             rel=1e-12)
    text = invoke(published_db_path, "project", *LOSS, "--target", "2.3", "--cost", "6nd")
    assert "cost (6*params*tokens)" in text.stdout


def test_optimal_takes_cost_and_budget(fit: scaling.FitResult) -> None:
    under_6nd = scaling.optimal(fit, cost="6*n_params*data_hours", bounds={"image_px": (224, 952)})
    assert under_6nd.reachable and under_6nd.cost_model["formula"] == "6*n_params*data_hours"
    at_budget = scaling.optimal(fit, budget=1e22)
    assert at_budget.question == "budget" and at_budget.cost <= 1e22 * (1 + 1e-6)


def test_a_loss_table_never_borrows_an_accuracy_target() -> None:
    fit = scaling.fit(pd.read_csv(LM_CSV), "poly1", y="loss", axes=["params", "tokens"], kind="loss")
    rep = scaling.project(fit)
    assert rep.target is None and [q for q, _ in rep.projections] == ["at point"]
    with pytest.raises(scaling.ScalingError, match="give a target"):
        scaling.project(fit, optimal=True, cost="6nd")


# -- one default metric, and a caution far out -------------------------------------------------------------------


def test_every_command_defaults_to_the_default_targets_metric(published_db_path: Path) -> None:
    assert DEFAULT_METRIC == PRESETS[DEFAULT_TARGET].metric == "top5"
    assert ok_json(published_db_path, "fit")["data"]["metric"] == "top5"
    assert ok_json(published_db_path, "backtest", "--forms", "poly1")["data"]["metric"] == "top5"
    cmp = ok_json(published_db_path, "compare", "--forms", "poly1", "--bootstrap", "0")
    assert cmp["data"]["metric"] == "top5"
    assert scaling.plots.accuracy_figure(scaling.load_runs(published_db_path)).data.y_label.count("top-5") == 1


def test_far_answers_carry_a_caution(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "project", "--form", "logit1")
    by_question = {p["question"]: p for p in doc["projections"]}
    solve = by_question["solve data_hours"]
    assert solve["max_decades_beyond"] > 6 and "7.0 decades beyond the data along data_hours" in solve["caution"]
    assert by_question["at point"]["caution"] is None  # 0.6 decades
    text = invoke(published_db_path, "project", "--form", "logit1")
    assert "6.97 (far)" in text.stdout and "caution: 7.0 decades" in text.stderr
    near = ok_json(published_db_path, "project")
    assert near["projections"][0]["max_decades_beyond"] < 1 and near["projections"][0]["caution"] is None
    assert not math.isnan(near["projections"][0]["max_decades_beyond"])
