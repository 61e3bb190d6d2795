"""The Python API: short calls work with the CLI's defaults, result and report objects are frozen and render
as text, tables, JSON and figures, and ``to_dict()`` is exactly what the matching command prints with --json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.axes import Axes

import scaling
from tests.cli_helpers import ok_json
from tests.golden_cases import LM_CSV


@pytest.fixture(scope="module")
def runs(published_db_path: Path) -> pd.DataFrame:
    return scaling.load_runs(published_db_path)


def same_json(library: dict[str, Any], cli: dict[str, Any]) -> None:
    drop = {"seconds"}  # timings

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in drop}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    assert clean(json.loads(json.dumps(library))) == clean(cli)


def check_report(obj: Any, *, plots: bool = True) -> None:
    """Frozen; summary() text; to_frame() a DataFrame; to_dict() JSON with a schema; a one-screen repr."""
    assert dataclasses.is_dataclass(obj)
    field = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, None)
    text = obj.summary()
    assert isinstance(text, str) and len(text.splitlines()) >= 2
    assert isinstance(obj.to_frame(), pd.DataFrame) and not obj.to_frame().empty
    doc = obj.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["schema"].startswith("scaling.") and doc["schema"].endswith("/v1")
    r = repr(obj)
    assert "\n" not in r and len(r) < 400
    if plots:
        assert isinstance(obj.plot(), Axes)


def test_load_runs_has_every_metric_and_says_where_from(runs: pd.DataFrame, published_db_path: Path) -> None:
    assert set(runs["metric"]) == {"top1", "top5"} and len(runs) == 2 * 78
    assert runs.attrs["scaling.source"]["db"] == str(published_db_path)


def test_fit_report_matches_cli_json(runs: pd.DataFrame, published_db_path: Path) -> None:
    fit = scaling.fit(runs, form="logit1", metric="top5")
    check_report(fit)
    same_json(fit.to_dict(), ok_json(published_db_path, "fit", "--form", "logit1", "--metric", "top5"))
    # statsmodels' own intervals for an OLS form: conf_int is the same Wald interval
    ci = fit.conf_int(0.9)
    ols = fit.model.results.conf_int(alpha=0.1)
    assert ci["lower"].to_numpy() == pytest.approx(ols[:, 0], rel=1e-10)
    assert fit.to_frame().loc["log10(n_params)", "estimate"] == fit.params["log10(n_params)"]


def test_fit_with_bootstrap_matches_cli_json(runs: pd.DataFrame, published_db_path: Path) -> None:
    fit = scaling.fit(runs, form="poly1", n_boot=30, seed=3)
    assert fit.bootstrap is not None and fit.bootstrap.n_ok == 30
    check_report(fit.bootstrap)
    assert "boot95_lower" in fit.to_frame().columns
    same_json(fit.to_dict(), ok_json(published_db_path, "fit", "--bootstrap", "30", "--seed", "3"))


def test_project_report_matches_cli_json(runs: pd.DataFrame, published_db_path: Path) -> None:
    fit = scaling.fit(runs, metric="top5")
    rep = scaling.project(fit, target="human-top5")
    check_report(rep)
    same_json(rep.to_dict(), ok_json(published_db_path, "project"))
    # the short call fits the run database itself with the target's metric
    assert scaling.project(runs).to_dict()["projections"] == rep.to_dict()["projections"]
    with pytest.raises(scaling.ScalingError, match="top5"):
        scaling.project(scaling.fit(runs, metric="top1"), target="human-top5")


def test_optimal_and_bootstrapped_projection(runs: pd.DataFrame, published_db_path: Path) -> None:
    fit = scaling.fit(runs, form="logit1", metric="top5")
    rep = scaling.project(fit, optimal=True, bounds={"image_px": (224, 952)}, frontier_rows=3, n_boot=10)
    check_report(rep.optimal)
    check_report(rep.bootstrap)
    cli = ok_json(published_db_path, "project", "--form", "logit1", "--optimal", "--bounds", "image_px=224:952",
                  "--frontier-rows", "3", "--bootstrap", "10")
    same_json(rep.to_dict(), cli)


def test_backtest_and_compare_match_cli_json(runs: pd.DataFrame, published_db_path: Path) -> None:
    bt = scaling.backtest(runs, ["poly1", "logit1"], metric="top5")
    check_report(bt)
    assert bt.recommended == bt.ranking[0] and "recommended" in bt.summary()
    same_json(bt.to_dict(), ok_json(published_db_path, "backtest", "--forms", "poly1,logit1", "--metric", "top5"))
    cmp = scaling.compare(runs, ["poly1", "logit1"], metric="top5", n_boot=10, target="human-top5")
    check_report(cmp)
    cli = ok_json(published_db_path, "compare", "--forms", "poly1,logit1", "--metric", "top5", "--bootstrap", "10",
                  "--target", "human-top5")
    same_json(cmp.to_dict(), cli)


def test_any_table_fits_and_projects_as_a_loss(tmp_path: Path) -> None:
    lm = scaling.fit(pd.read_csv(LM_CSV), y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw")
    # Chinchilla's law generated the table (tests/golden_cases.py): E = 1.69 within the 1% noise
    assert lm.params["E"] == pytest.approx(1.69, abs=0.05) and lm.direction.limit_name == "floor"
    check_report(lm)
    rep = scaling.project(lm, target=2.2, mode="solve", axis="tokens")
    assert rep.answer("solve tokens").predicted == pytest.approx(2.2, rel=1e-9)
    # at the largest model (1e9 params) more tokens cannot pass E + A_params 1e9^-alpha_params (about 2.13)
    stuck = lm.params["E"] + lm.params["A_params"] * 1e9 ** -lm.params["alpha_params"]
    assert 2.05 < stuck < 2.2
    lost = scaling.project(lm, target=2.0, mode="solve", axis="tokens").answer("solve tokens")
    assert not lost.reachable and lost.point is None
    with pytest.raises(scaling.ScalingError, match="axes="):
        scaling.fit(pd.read_csv(LM_CSV), y="loss")


def test_figures_in_one_call(runs: pd.DataFrame, tmp_path: Path) -> None:
    from scaling import plots

    fig = plots.iso_figure(runs[runs["metric"] == "top5"], target="human-top5")
    saved = fig.save(tmp_path / "iso.png")
    assert saved.path == str(tmp_path / "iso.png") and (tmp_path / "iso.png").read_bytes()[:4] == b"\x89PNG"
    assert saved.to_dict()["schema"] == "scaling.plot.iso/v1" and isinstance(fig.plot(), Axes)


def test_everything_is_reachable_from_import_scaling() -> None:
    import subprocess
    import sys

    code = ("import scaling\nfor n in scaling.__all__: getattr(scaling, n)\n"
            "assert callable(scaling.plots.iso_figure) and scaling.defaults.AXES\nprint('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "ok", proc.stderr
