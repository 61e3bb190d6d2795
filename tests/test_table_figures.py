"""Figures of any table carry that table's quantity, units and axis names (issue 21): a loss in its own units,
never "ImageNet %", axes named by their columns, levels as N=3.2e7, the iso map over any two axes. Figures
are checked through what they draw (labels, tick labels, legend texts, drawn values), never by bytes; the
drawn numbers against the law that made the table."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes

import scaling
from scaling import plots
from scaling.plots.labels import fmt_level
from tests.cli_helpers import invoke, one_line_error
from tests.golden_cases import LM_CSV, capturing_figures

# A loss table drawn from a known law with no noise: every fitted number is the law's to the solver's tolerance.
E, A, ALPHA, B, BETA = 1.8, 400.0, 0.34, 600.0, 0.28
PARAMS = [1e7, 10**7.5, 1e8, 10**8.5, 1e9]
TOKENS = [1e9, 10**9.5, 1e10, 10**10.5, 3e10]


def law(n: Any, d: Any) -> Any:
    return E + A * np.asarray(n, dtype=float) ** -ALPHA + B * np.asarray(d, dtype=float) ** -BETA


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    n, d = np.meshgrid(PARAMS, TOKENS, indexing="ij")
    return pd.DataFrame({"params": n.ravel(), "tokens": d.ravel(), "loss": law(n, d).ravel()})


@pytest.fixture(scope="module")
def loss_fit(table: pd.DataFrame) -> Any:
    return scaling.fit(table, y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw")


def texts(ax: Axes) -> list[str]:
    """Every string an Axes shows: labels, title, legend entries, tick labels (formatted as drawn)."""
    ax.figure.canvas.draw()
    legend = ax.get_legend()
    return [ax.get_xlabel(), ax.get_ylabel(), ax.get_title(loc="left"),
            *([t.get_text() for t in legend.get_texts()] if legend is not None else []),
            *(t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels())]


def no_accuracy_words(strings: list[str]) -> None:
    """No ImageNet, no accuracy, and no percent as a unit (a tick '250%', a label 'loss, %')."""
    for s in strings:
        assert "ImageNet" not in s and "accuracy" not in s.lower(), s
        assert ", %" not in s and not s.rstrip().endswith("%"), s


def test_levels_are_short() -> None:
    assert fmt_level(31622776.60168379) == "3.2e7" and fmt_level(1e9) == "1e9" and fmt_level(3e10) == "3e10"
    assert fmt_level(0.5) == "0.5" and fmt_level(224.0) == "224" and fmt_level(5000.0) == "5000"
    assert plots.level_text("N", 10**7.5) == "N=3.2e7"


def test_curves_of_a_loss_table(table: pd.DataFrame, loss_fit: Any) -> None:
    data = plots.accuracy_curves_data(table, loss_fit, y="loss")
    # the table's own axes: its last across, one curve per level of its first, legend entries as N=3.2e7
    assert (data.x_axis, data.group_by) == ("tokens", "params")
    assert [c.label for c in data.curves] == ["params=1e7", "params=3.2e7", "params=1e8", "params=3.2e8", "params=1e9"]
    # the drawn curve is the law (VarPro on noiseless data recovers it)
    for c in data.curves:
        np.testing.assert_allclose(c.predicted, law(c.fixed["params"], c.x), rtol=1e-4)
    try:
        ax = plots.plot_accuracy_curves(data)
        shown = texts(ax)
        assert ax.get_ylabel() == "loss" and ax.get_xlabel() == "Training tokens (tokens), log scale"
        assert "params=3.2e7" in shown and "loss vs training tokens by params" in ax.get_title(loc="left")
        no_accuracy_words(shown)
        # y tick labels are the tick values themselves, in the loss's units
        for tick in ax.get_yticklabels():
            if tick.get_text():
                assert float(tick.get_text()) == pytest.approx(tick.get_position()[1])
    finally:
        plt.close("all")


def test_fit_plot_of_a_table_draws_its_curves(loss_fit: Any) -> None:
    try:
        ax = loss_fit.plot()
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[:5] == ["params=1e7", "params=3.2e7", "params=1e8", "params=3.2e8", "params=1e9"]
        no_accuracy_words(texts(ax))
    finally:
        plt.close("all")


def test_backtest_plot_of_a_loss_table(table: pd.DataFrame) -> None:
    bt = scaling.backtest(table, ["poly1", "powerlaw"], y="loss", axes=["params", "tokens"], kind="loss")
    try:
        ax = bt.plot()
        shown = texts(ax)
        assert ax.get_xlabel() == "Observed loss of the held-out rows"
        no_accuracy_words(shown)
        # ticks span the losses (about 2-4), not 150-350 "%"
        lo, hi = ax.get_xlim()
        assert table["loss"].min() - 0.5 < lo < hi < table["loss"].max() + 0.5
        # each form's legend RMSE is that of its held-out rows, in loss units
        rows = plots.backtest_parity_frame(bt, bt.data)
        for form in ("poly1", "powerlaw"):
            sub = rows[rows["form"] == form]
            rmse = math.sqrt(float(np.mean((sub["predicted"] - sub["observed"]) ** 2)))
            assert any(t.startswith(f"{form}: RMSE {rmse:.3g},") and "rows)" in t for t in shown), form
    finally:
        plt.close("all")


def test_iso_map_over_any_two_axes() -> None:
    """Three axes; the map over two of them, the third held: the surface is the law there."""
    n, d, r = np.meshgrid(PARAMS[::2], TOKENS[::2], [1.0, 2.0, 4.0], indexing="ij")
    loss = law(n, d) + 0.5 * r**-0.5
    frame = pd.DataFrame({"params": n.ravel(), "tokens": d.ravel(), "epochs": r.ravel(), "loss": loss.ravel()})
    f = scaling.fit(frame, y="loss", axes=["params", "tokens", "epochs"], kind="loss", form="powerlaw")
    for across, up, held in [("tokens", "params", {"epochs": 2.0}), ("epochs", "params", {"tokens": 1e10})]:
        iso = plots.iso_accuracy_data(f, grid=frame, map_axes=(across, up), held=held, n=25)
        assert (iso.x_axis, iso.y_axis, iso.held) == (across, up, held)
        i, j = 7, 19
        at = {across: iso.x[j], up: iso.y[i], **held}
        want = law(at["params"], at["tokens"]) + 0.5 * at["epochs"] ** -0.5
        assert iso.surface[i, j] == pytest.approx(float(want), rel=1e-4)
        assert all(lv > 1 for lv in iso.levels)  # round loss values, not 10% steps
        try:
            ax = plots.plot_iso_accuracy(iso)
            assert ax.get_xlabel() == plots.axis_label(across) + ", log scale"
            assert ax.get_ylabel() == "Parameters (params), log scale"
            bar = ax.figure.axes[-1]
            held_text = ", ".join(plots.level_text(a, v) for a, v in held.items())
            assert bar.get_ylabel() == f"Predicted loss (at {held_text})"
            no_accuracy_words(texts(ax))
        finally:
            plt.close("all")
    with pytest.raises(scaling.ScalingError, match="cannot hold 'tokens'"):
        plots.iso_accuracy_data(f, map_axes=("tokens", "epochs"), held={"params": 1e8, "tokens": 1e9})
    with pytest.raises(scaling.ScalingError, match="two different axes"):
        plots.iso_accuracy_data(f, map_axes=("tokens", "tokens"))


def test_report_plot_of_a_loss_table(loss_fit: Any) -> None:
    rep = scaling.project(loss_fit, 2.2)
    scale = rep.answer("scale every axis")
    iso = rep.iso_data(n=40)
    assert (iso.x_axis, iso.y_axis) == ("tokens", "params") and iso.target == 2.2
    assert iso.point == scale.point and iso.predicted == pytest.approx(2.2, abs=1e-6)
    assert float(law(scale.point["params"], scale.point["tokens"])) == pytest.approx(2.2, rel=1e-4)
    try:
        ax = rep.plot()
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[0] == "loss 2.2" and "beyond the data (params, tokens)" in legend
        p = scale.point
        where = f"projection: {plots.level_text('params', p['params'])}, {plots.level_text('tokens', p['tokens'])}"
        assert any(t.startswith(where) and "predicted 2.2" in t for t in legend)
        no_accuracy_words(texts(ax))
    finally:
        plt.close("all")


def test_the_run_database_keeps_its_words(published_db_path: Path) -> None:
    runs = scaling.load_runs(published_db_path, metric="top5")
    f = scaling.fit(runs, form="poly1", metric="top5")
    iso = scaling.project(f, "human-top5").iso_data(n=30)
    assert (iso.x_axis, iso.y_axis) == ("data_hours", "n_params") and iso.image_px is not None
    try:
        ax = plots.plot_iso_accuracy(iso)
        assert ax.get_xlabel() == "Pretraining data (hours of video at 1 frame/s), log scale"
        assert ax.figure.axes[-1].get_ylabel().startswith("Predicted ImageNet top-5, % (at ")
    finally:
        plt.close("all")


LOSS = ["--data", str(LM_CSV), "--y", "loss", "--axes", "params,tokens", "--kind", "loss"]


def _drawn(db: Path, *args: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The --json of a `scaling plot` command and what its figure draws."""
    with capturing_figures() as seen:
        result = invoke(db, "plot", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), seen[-1]


def test_scaling_plot_draws_a_table(tmp_path: Path) -> None:
    db, out = tmp_path / "db.sqlite", str(tmp_path / "f.png")
    _, fig = _drawn(db, "data", *LOSS, "--form", "powerlaw", "--out", out)
    ax = fig["axes"][0]
    assert ax["ylabel"] == "loss" and ax["legend"][0] == "params=1e7" and ax["legend"][1] == "params=3e7"
    doc, fig = _drawn(db, "iso", *LOSS, "--form", "poly1", "--target", "2.5", "--map-axes", "params,tokens",
                      "--out", out)
    ax = fig["axes"][0]
    assert doc["map_axes"] == ["params", "tokens"] and doc["target"] == 2.5 and doc["held"] == {}
    assert ax["xlabel"] == "Parameters (params), log scale" and ax["ylabel"] == "Training tokens (tokens), log scale"
    assert ax["legend"][0] == "loss 2.5"
    doc, fig = _drawn(db, "backtest", *LOSS, "--forms", "poly1,powerlaw", "--out", out)
    assert all(a["xlabel"] in ("", "Observed loss of the held-out rows") for a in fig["axes"])
    assert "Backtest of loss" in fig["suptitle"]
    doc, fig = _drawn(db, "bootstrap", *LOSS, "--form", "powerlaw", "--target", "2.2", "--question", "solve",
                      "--bootstrap", "20", "--out", out)
    assert fig["axes"][0]["xlabel"] == "Training tokens (tokens) needed to reach the target, log scale"
    assert doc["n_total"] == 20 and doc["target"] == 2.2
    for a in fig["axes"]:
        no_accuracy_words([a["xlabel"], a["ylabel"], *a["legend"]])


def test_scaling_plot_all_of_a_table(tmp_path: Path) -> None:
    out = tmp_path / "figs"
    result = invoke(tmp_path / "db.sqlite", "plot", "all", "--out-dir", str(out), *LOSS, "--form", "poly1",
                    "--target", "2.5", "--bootstrap", "20")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["accuracy-vs-data.png", "backtest.png", "bootstrap-compute.png",
                                                     "iso-accuracy.png"]


def test_scaling_plot_refuses_what_a_table_cannot_draw(tmp_path: Path) -> None:
    db, out = tmp_path / "db.sqlite", str(tmp_path / "f.png")
    assert "--y describes a table" in one_line_error(invoke(db, "plot", "iso", "--y", "loss", "--out", out))
    assert "needs --axes" in one_line_error(invoke(db, "plot", "data", *LOSS[:4], "--out", out))
    assert "give a target" in one_line_error(invoke(db, "plot", "bootstrap", *LOSS, "--out", out))
    assert "is an accuracy" in one_line_error(invoke(db, "plot", "iso", *LOSS, "--target", "human-top5",
                                                     "--out", out))
    assert "two different axes" in one_line_error(invoke(db, "plot", "iso", *LOSS, "--map-axes", "params",
                                                         "--out", out))
    usage = invoke(db, "plot", "resolution", *LOSS, "--out", out)  # a run-database figure: no --data
    assert usage.exit_code == 2 and "No such option: --data" in usage.stderr
    assert not Path(out).exists()
