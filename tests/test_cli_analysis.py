"""CLI: fit/project --bootstrap, project --optimal, backtest and compare (JSON contracts, tables, errors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling.cli import app
from tests.cli_helpers import invoke, ok_json, one_line_error, runner


@pytest.mark.parametrize("command", [["backtest"], ["compare"]])
def test_help_has_examples(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.stdout


def test_fit_bootstrap_json_keeps_fit_keys_and_adds_intervals(published_db_path: Path) -> None:
    plain = ok_json(published_db_path, "fit", "--form", "poly1")
    doc = ok_json(published_db_path, "fit", "--form", "poly1", "--bootstrap", "200", "--seed", "3")
    assert doc["schema"] == "scaling.fit/v1" and doc["fit"] == plain["fit"]
    boot = doc["bootstrap"]
    assert boot["schema"] == "scaling.bootstrap/v1" and boot["n_ok"] == 200 and boot["group"] == ["run_id"]
    assert boot["n_groups"] == 78 and boot["levels"] == [0.9, 0.95]
    for name, est in doc["fit"]["params"].items():
        iv90 = boot["params"][name]["intervals"]["0.9"]
        iv95 = boot["params"][name]["intervals"]["0.95"]
        assert iv95["lower"] <= iv90["lower"] <= iv90["upper"] <= iv95["upper"]
        # the OLS estimate lies inside its own 95% interval, and the interval is about +-2 standard errors
        assert iv95["lower"] < est < iv95["upper"]
        se = doc["fit"]["stderr"][name]
        assert 2.0 * se < iv95["upper"] - iv95["lower"] < 8.0 * se
    again = ok_json(published_db_path, "fit", "--form", "poly1", "--bootstrap", "200", "--seed", "3")
    assert again["bootstrap"]["params"] == boot["params"]  # same seed, same intervals


def test_fit_bootstrap_table_and_groups(published_db_path: Path) -> None:
    result = invoke(published_db_path, "fit", "--form", "logit1", "--bootstrap", "50", "--level", "0.8",
                    "--group", "data_fraction,subset_seed")
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # captions wrap
    assert "80% interval" in text and "groups by data_fraction, subset_seed" in text
    assert "13 groups" in text  # 4 fractions x 3 seeds + the full set


def test_project_bootstrap_reports_intervals_and_reachability(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "project", "--form", "powerlaw", "--target", "45%", "--metric", "top1",
                  "--bootstrap", "40", "--seed", "1")
    boot = doc["bootstrap"]
    assert {"at.predicted", "scale.factor", "scale.flops", "solve.data_hours", "solve.flops"} <= set(boot["derived"])
    probs = boot["probabilities"]
    assert {"ceiling_passes_target", "scale.reachable", "solve.reachable", "at.meets_target"} <= set(probs)
    assert all(0.0 <= p["share"] <= 1.0 for p in probs.values())
    at = next(p for p in doc["projections"] if p["mode"] == "at")
    assert boot["derived"]["at.predicted"]["estimate"] == pytest.approx(at["predicted"], rel=1e-12)
    iv = boot["derived"]["at.predicted"]["intervals"]["0.9"]
    assert iv["lower"] < at["predicted"] < iv["upper"]
    assert boot["n_ok"] + boot["n_failed"] == 40


def test_project_optimal_json_and_table(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "project", "--form", "logit1", "--target", "60%", "--metric", "top1",
                  "--mode", "at", "--optimal", "--bounds", "image_px=224:952", "--frontier-rows", "5")
    opt = doc["optimal"]
    assert opt["schema"] == "scaling.optimal/v1" and opt["bounds"]["image_px"] == [224.0, 952.0]
    assert opt["optimum"]["cost_model"] == "flops" and opt["optimum"]["reachable"]
    assert opt["optimum"]["predicted"] == pytest.approx(0.6, abs=1e-6)
    closed, num = opt["proportional"]["closed_form"], opt["proportional"]["numerical"]
    for a in ("n_params", "data_hours", "image_px"):
        assert closed["point"][a] == pytest.approx(num["point"][a], rel=1e-3)
    assert len(opt["frontier"]) == 5
    table = invoke(published_db_path, "project", "--form", "logit1", "--target", "60%", "--metric", "top1",
                   "--mode", "at", "--optimal", "--bounds", "image_px=224:952", "--frontier-rows", "3")
    assert table.exit_code == 0, table.output
    assert "Compute-optimal allocation" in table.stdout and "Iso-target frontier" in table.stdout
    assert "closed form" in table.stdout


def test_backtest_json(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "backtest", "--forms", "poly1,logit1")
    assert doc["schema"] == "scaling.backtest/v1"
    assert doc["recommended"] in ("poly1", "logit1") and doc["recommended"] == doc["ranking"][0]
    assert doc["seed_noise"]["replicated_configurations"] == 24
    names = {s["name"] for s in doc["splits"]}
    assert {"largest n_params", "largest data_hours", "largest image_px", "joint: largest of every axis"} <= names
    skipped = [r for r in doc["results"] if not r["ok"]]
    assert skipped and all(r["reason"] for r in skipped)


def _table_rows(text: str, n_cells: int) -> list[list[str]]:
    """The one-line rows of the rich tables in ``text`` that have ``n_cells`` cells."""
    rows = [[c.strip() for c in ln.strip().strip("│").split("│")] for ln in text.splitlines() if ln.startswith("│")]
    return [r for r in rows if len(r) == n_cells]


def test_backtest_cli_and_api_print_the_same_numbers(published_db_path: Path) -> None:
    """`scaling backtest --json` is ``scaling.backtest(...).to_dict()``, and the CLI's ranking table prints
    the rows of ``summary()``: the same means, each beside the count of splits it averages."""
    import json

    import scaling
    from scaling.selection.backtest import RANKING_COLUMNS

    forms = ["poly1", "logit1", "poly2"]
    doc = ok_json(published_db_path, "backtest", "--forms", ",".join(forms))
    api = scaling.backtest(scaling.load_runs(published_db_path), forms)
    assert doc == json.loads(json.dumps(api.to_dict()))
    assert doc["summary"]["poly1"]["splits_averaged"] == doc["common_splits"] == ["largest data_hours",
                                                                                 "rolling: data_hours <= 49.89"]
    assert len(doc["summary"]["poly1"]["splits_fitted"]) == doc["summary"]["poly1"]["n_ok"] == 4

    result = invoke(published_db_path, "backtest", "--forms", ",".join(forms))
    assert result.exit_code == 0, result.output
    ranking = [r for r in _table_rows(result.stdout, len(RANKING_COLUMNS)) if r[0].isdigit() or r[0] == "-"]
    assert ranking == api.ranking_rows()
    text = " ".join(result.stdout.split())
    assert f"on {api.ranked_on()}" in text and "the 2 of 6 splits every form fits" in text
    assert " ok," not in text  # the old "4 ok, 2 skipped" beside a 2-split mean
    lines = [ln.split() for ln in api.summary().splitlines()]
    summary = {w[1]: w for w in lines if len(w) > 1 and (w[0].isdigit() or w[0] == "-") and w[1] in forms}
    assert len(summary) == len(forms)
    for cells in ranking:
        assert summary[cells[1]] == " ".join(cells).split()


def test_backtest_table_on_a_csv(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e8, 1e10, 5)))
    loss = 1.7 + 400 * n**-0.34 + 400 * d**-0.28
    csv = tmp_path / "loss.csv"
    pd.DataFrame({"n_params": n, "tokens": d, "loss": loss * np.exp(0.002 * rng.standard_normal(25))}).to_csv(
        csv, index=False)
    result = invoke(tmp_path / "unused.sqlite", "backtest", "--data", str(csv), "--y", "loss", "--axes",
                    "n_params,tokens", "--kind", "loss", "--rolling", "tokens", "--forms", "poly1,powerlaw")
    assert result.exit_code == 0, result.output
    assert "recommended: powerlaw" in " ".join(result.stdout.split())
    assert "no replicated configurations" in " ".join(result.stderr.split())


def test_compare_json(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "compare", "--forms", "poly1,logit1,powerlaw", "--bootstrap", "30",
                  "--target", "50%")
    assert doc["schema"] == "scaling.compare/v1"
    assert doc["point"] == {"n_params": 2.5e9, "data_hours": 20000.0, "image_px": 952.0}
    forms = {f["form"]: f for f in doc["forms"]}
    assert set(forms) == {"poly1", "logit1", "powerlaw"}
    assert doc["recommended"] == min(forms, key=lambda k: forms[k]["backtest"]["rmse"])
    assert min(f["delta_aicc"] for f in forms.values()) == 0.0
    for f in forms.values():
        iv = f["interval"]["0.95"]
        assert iv["lower"] <= f["predicted"] <= iv["upper"] and 0 <= f["p_meets_target"] <= 1


def test_compare_table_says_which_form_is_recommended(published_db_path: Path) -> None:
    result = invoke(published_db_path, "compare", "--forms", "poly1,logit1", "--bootstrap", "0")
    assert result.exit_code == 0, result.output
    assert "recommended:" in result.stdout and "backtest RMSE" in result.stdout
    # the backtest column says which splits it averages; the own-splits mean sits beside its own count
    text = " ".join(result.stdout.split())
    assert ("backtest RMSE and bias: means over the 4 of 6 splits every form fits: largest data_hours; largest "
            "image_px; rolling: data_hours <= 4.989; rolling: data_hours <= 49.89") in text
    rows = {r[0]: r for r in _table_rows(result.stdout, 13)}
    assert rows["logit1"][6:10] == ["3.56", "-2.16", "3.56", "4 of 6"]


def test_bad_inputs_are_one_line_errors(published_db_path: Path) -> None:
    assert "bogus" in one_line_error(invoke(published_db_path, "fit", "--bootstrap", "5", "--group", "bogus"))
    assert "--level" in one_line_error(invoke(published_db_path, "fit", "--bootstrap", "5", "--level", "1.5"))
    assert "unknown form" in one_line_error(invoke(published_db_path, "backtest", "--forms", "poly1,nope"))
    assert "--bounds" in one_line_error(invoke(published_db_path, "project", "--optimal", "--bounds", "n_params=1"))
    assert "--at" in one_line_error(invoke(published_db_path, "compare", "--at", "n_params=1e9"))
    assert invoke(published_db_path, "fit", "--bootstrap", "-1").exit_code == 2
