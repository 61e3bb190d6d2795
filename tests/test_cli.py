"""The `scaling` CLI through Typer's runner: JSON contracts, tables, and one-line errors (exit 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scaling.cli import app
from tests.cli_helpers import invoke, ok_json, one_line_error, runner


@pytest.mark.parametrize("command", [[], ["fit"], ["project"], ["forms"], ["targets"], ["runs", "list"],
                                     ["runs", "show"], ["runs", "import"], ["runs", "export"],
                                     ["runs", "validate"]])
def test_help_has_examples(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("scaling ")


def test_forms_and_targets_list_sources(published_db_path: Path) -> None:
    forms = ok_json(published_db_path, "forms")
    assert forms["schema"] == "scaling.forms/v1"
    names = {f["name"] for f in forms["forms"]}
    assert {"poly1", "poly2", "logit1", "logit2", "powerlaw", "powerlaw_chance"} <= names
    assert all(f["source"] for f in forms["forms"])
    targets = ok_json(published_db_path, "targets")
    human = next(t for t in targets["targets"] if t["name"] == "human-top5")
    assert human["value"] == pytest.approx(0.949) and "Russakovsky" in human["source"]


def test_runs_list_and_show(published_db_path: Path) -> None:
    listing = ok_json(published_db_path, "runs", "list")
    assert listing["count"] == 78
    h476 = [r for r in listing["runs"] if r["image_px"] == 476 and r["data_fraction"] == 1.0]
    assert len(h476) == 1 and h476[0]["n_params"] == 631_916_800
    shown = ok_json(published_db_path, "runs", "show", h476[0]["run_id"][:10])
    assert shown["run"]["run_id"] == h476[0]["run_id"]
    table = invoke(published_db_path, "runs", "list", "--arch", "vit_h14", "--image-px", "476")
    assert table.exit_code == 0, table.output
    assert "13 runs" in table.stdout


@pytest.mark.parametrize("form", ["poly1", "logit1", "powerlaw"])
def test_fit_json_on_published_grid(published_db_path: Path, form: str) -> None:
    doc = ok_json(published_db_path, "fit", "--form", form)
    assert doc["schema"] == "scaling.fit/v1"
    fit = doc["fit"]
    assert fit["form"] == form and fit["n_points"] == 78
    assert fit["converged"] is True
    assert fit["stats"]["rmse"] < 0.03  # within 3 accuracy points on the 78 runs
    assert {"aicc", "bic"} <= set(fit["stats"])


def test_project_json_answers_three_questions(published_db_path: Path) -> None:
    doc = ok_json(published_db_path, "project", "--form", "poly1")
    assert doc["schema"] == "scaling.project/v1"
    assert doc["target"]["name"] == "human-top5" and doc["data"]["metric"] == "top5"
    modes = [p["mode"] for p in doc["projections"]]
    assert modes == ["scale", "solve", "at"]
    at = doc["projections"][2]
    assert at["point"] == {"n_params": 2.5e9, "data_hours": 20000.0, "image_px": 952.0}
    # Largest trained point (raw logs): 631,916,800 parameters (ViT-H/14 at 476 px), 4,988.6 h, 476 px;
    # the scenario reaches furthest along data hours: log10(20000 / 4988.6) = 0.603 decades.
    beyond = [np.log10(2.5e9 / 631_916_800), np.log10(20000 / 4988.596), np.log10(952 / 476)]
    assert at["max_decades_beyond"] == pytest.approx(max(beyond), rel=1e-4)
    assert max(beyond) == beyond[1]
    assert at["compute"]["flops"] > 1e20
    scale = doc["projections"][0]
    if scale["reachable"]:
        assert scale["predicted"] == pytest.approx(0.949, abs=1e-6)
        assert scale["scale_factor"] > 1


def test_project_table_names_units(published_db_path: Path) -> None:
    result = invoke(published_db_path, "project", "--form", "poly1")
    assert result.exit_code == 0, result.output
    for word in ["parameters", "data", "pretraining FLOPs", "decades beyond data", " px", " h"]:
        assert word in result.stdout


def test_fit_a_loss_table_from_csv(tmp_path: Path) -> None:
    # Chinchilla approach-3 parameters (Hoffmann et al. 2022): L = E + A/N^alpha + B/D^beta
    n, d = np.meshgrid(np.logspace(7.5, 10, 6), np.logspace(9, 11.5, 6))
    loss = 1.69 + 406.4 / n**0.34 + 410.7 / d**0.28
    csv = tmp_path / "chinchilla.csv"
    pd.DataFrame({"n_params": n.ravel(), "tokens": d.ravel(), "loss": loss.ravel()}).to_csv(csv, index=False)
    doc = ok_json(tmp_path / "unused.sqlite", "fit", "--data", str(csv), "--y", "loss", "--axes",
                  "n_params,tokens", "--kind", "loss", "--form", "powerlaw")
    params = doc["fit"]["params"]
    exps = sorted(v for k, v in params.items() if k.startswith("alpha"))
    assert exps == pytest.approx([0.28, 0.34], rel=1e-3)


def test_bad_inputs_are_one_line_errors(published_db_path: Path, tmp_path: Path) -> None:
    assert "unknown form" in one_line_error(invoke(published_db_path, "fit", "--form", "nope"))
    assert "bogus" in one_line_error(invoke(published_db_path, "fit", "--axes", "n_params,bogus"))
    assert "target" in one_line_error(invoke(published_db_path, "project", "--target", "1.5"))
    assert "top1" in one_line_error(invoke(published_db_path, "project", "--target", "human-top5",
                                           "--metric", "top1"))
    one_line_error(invoke(published_db_path, "runs", "show", "zzzzzzzz"))
    one_line_error(invoke(published_db_path, "fit", "--data", str(tmp_path / "missing.csv"), "--y", "loss"))
    usage = invoke(published_db_path, "project", "--mode", "bogus")
    assert usage.exit_code == 2


def test_bad_import_leaves_database_unchanged(tmp_path: Path, published_db_path: Path) -> None:
    db = tmp_path / "copy.sqlite"
    db.write_bytes(published_db_path.read_bytes())
    before = ok_json(db, "runs", "list")["count"]
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,n_params\nvit_s14,-5\n")
    one_line_error(invoke(db, "runs", "import", str(bad)))
    assert ok_json(db, "runs", "list")["count"] == before


def test_export_then_import_adds_nothing(tmp_path: Path, published_db_path: Path) -> None:
    db = tmp_path / "copy.sqlite"
    db.write_bytes(published_db_path.read_bytes())
    out = tmp_path / "runs.csv"
    exported = ok_json(db, "runs", "export", str(out))
    assert exported["rows"] > 0 and out.exists()
    report = ok_json(db, "runs", "import", str(out))
    assert report["runs_added"] == 0 and report["runs_unchanged"] == 78


def test_project_writes_its_figure(published_db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "projection.png"
    doc = ok_json(published_db_path, "project", "--figure", str(out))
    assert doc["figure"] == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    # the same answer drawn twice gives the same bytes (fixed metadata)
    again = tmp_path / "again.png"
    ok_json(published_db_path, "project", "--figure", str(again))
    assert again.read_bytes() == out.read_bytes()


def test_project_figure_with_a_bad_suffix_fails_before_work(published_db_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "projection.gif"
    assert ".png, .pdf or .svg" in one_line_error(invoke(published_db_path, "project", "--figure", str(out)))
    assert not out.exists()


def test_runs_list_shows_the_chosen_evaluation(published_db_path: Path) -> None:
    top5 = invoke(published_db_path, "runs", "list", "--arch", "vit_s14", "--with-metric", "top5")
    assert top5.exit_code == 0, top5.output
    assert "imagenet-val top5 (best)" in top5.stdout and "%" in top5.stdout
    # a protocol these runs were never evaluated under leaves the column empty rather than borrowing another
    other = invoke(published_db_path, "runs", "list", "--arch", "vit_s14", "--protocol", "finetune-digits-20pct",
                   "--eval-set", "digits-val")
    assert other.exit_code == 0, other.output
    assert "digits-val top5 (best)" in other.stdout and "%" not in other.stdout
