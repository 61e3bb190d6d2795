"""Figures: the arrays behind each one (curves, bands, contour levels, the projected point and its interval),
a smoke render of every kind, byte-reproducible files, and the `scaling plot` commands."""

from __future__ import annotations

import itertools
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from scaling import plots
from scaling.core.targets import resolve_target
from scaling.errors import ScalingError
from scaling.forms.result import FitResult, fit
from scaling.plots.style import (
    SIZES,
    fmt_count,
    fmt_hours_tick,
    resolution_colour,
    save_figure,
    size_colour,
)
from scaling.questions.projection import Projection, project_at, project_scale

AXES = ["n_params", "data_hours", "image_px"]
runner = CliRunner()


@pytest.fixture(scope="module")
def grids(published_db_path: Path) -> dict[str, pd.DataFrame]:
    from runs_db import open_db

    db = open_db(published_db_path)
    return {m: db.grid(metric=m) for m in ("top1", "top5")}


@pytest.fixture(scope="module")
def poly1(grids: dict[str, pd.DataFrame]) -> dict[str, FitResult]:
    return {m: fit(g, "poly1", y="value", axes=AXES) for m, g in grids.items()}


@pytest.fixture(scope="module")
def human(poly1: dict[str, FitResult]) -> tuple[Any, Projection]:
    target = resolve_target("human-top5")
    return target, project_scale(poly1["top5"], target.value)


# -- style


def test_fixed_distinct_colours_and_formatters() -> None:
    colours = [c for _, c, _ in SIZES.values()]
    assert len(set(colours)) == len(colours)
    assert size_colour("vith14") == size_colour("vit_h14") == SIZES["vit_h14"][1]
    assert len({resolution_colour(px) for px in (224, 448, 476)}) == 3
    assert fmt_count(21_619_584) == "21.6M" and fmt_count(2.5e9) == "2.5B" and fmt_count(631_916_800) == "632M"
    assert fmt_hours_tick(0.5) == "0.5" and fmt_hours_tick(4988.6) == "4,989" and fmt_hours_tick(1e6) == "$10^{6}$"


# -- figures 1 and 2


def test_accuracy_vs_data_curves(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult]) -> None:
    grid, f = grids["top1"], poly1["top1"]
    data = plots.accuracy_curves_data(grid, f, where={"image_px": 224}, band="confidence", extend_decades=1.0)
    assert [c.key for c in data.curves] == ["vit_s14", "vit_b14", "vit_l14", "vit_h14"]
    h = data.curve("vit_h14")
    assert h.fixed == {"n_params": 630_764_800.0, "image_px": 224.0}
    assert h.x[0] == pytest.approx(grid["data_hours"].min())
    assert h.x[-1] == pytest.approx(10 * grid["data_hours"].max())
    np.testing.assert_allclose(h.predicted, f.predict({"n_params": h.fixed["n_params"], "data_hours": h.x,
                                                       "image_px": 224.0}))
    # Seeds: 3 per fraction below 100%, one at 100%; the large marker is their mean.
    obs = data.observed[data.observed["group"] == "vit_h14"]
    assert len(obs) == 13
    mean = data.means[(data.means["group"] == "vit_h14")].sort_values("x")
    assert mean["n"].tolist() == [3, 3, 3, 3, 1]
    assert mean["value"].iloc[0] == pytest.approx(np.mean([0.18916, 0.19118, 0.18344]), abs=1e-6)
    # Band: positive, contains the fit, narrowest inside the data and wider beyond it.
    width = h.band_width
    assert width is not None and np.all(width > 0)
    assert np.all((h.lower <= h.predicted) & (h.predicted <= h.upper))
    inside = h.x <= h.x_max_observed
    assert width[-1] > width[inside].min() * 1.5
    assert data.band == "confidence" and data.summary()["groups"][3]["label"] == "ViT-H/14"


def test_prediction_band_is_wider_than_confidence_band(grids: dict[str, pd.DataFrame],
                                                       poly1: dict[str, FitResult]) -> None:
    conf = plots.accuracy_curves_data(grids["top1"], poly1["top1"], where={"image_px": 224}, band="confidence")
    pred = plots.accuracy_curves_data(grids["top1"], poly1["top1"], where={"image_px": 224}, band="prediction")
    for c, p in zip(conf.curves, pred.curves, strict=True):
        assert np.all(p.band_width > c.band_width)
    # The prediction band of the study's fit is several points wide (seed noise): about +-2.5 points.
    assert 0.04 < float(np.median(pred.curve("vit_b14").band_width)) < 0.08


def test_resolution_curves(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult]) -> None:
    data = plots.accuracy_curves_data(grids["top1"], poly1["top1"], group_by="image_px", where={"arch": "vith14"})
    assert [c.key for c in data.curves] == [224, 448, 476]
    assert [c.label for c in data.curves] == ["224 px", "448 px", "476 px"]
    # Larger images add accuracy at every data size (the resolution coefficient is positive).
    c224, c448 = data.curve(224), data.curve(448)
    assert np.all(c448.predicted > c224.predicted + 0.03)
    top = data.means[(data.means["group"] == 476)].sort_values("x").iloc[-1]
    assert top["value"] == pytest.approx(0.44114)


def test_curves_refuse_mixed_groups_and_note_missing_band(grids: dict[str, pd.DataFrame],
                                                          poly1: dict[str, FitResult]) -> None:
    with pytest.raises(ScalingError, match="arch=vit_h14 has 3 values"):  # ViT-H has three resolutions
        plots.accuracy_curves_data(grids["top1"], poly1["top1"], where={"arch": "vit_h14"})
    with pytest.raises(ScalingError, match="no runs"):
        plots.accuracy_curves_data(grids["top1"], poly1["top1"], where={"image_px": 300})
    sub = grids["top1"][grids["top1"]["image_px"] == 224]
    pl = fit(sub, "powerlaw", y="value", axes=["n_params", "data_hours"])
    data = plots.accuracy_curves_data(sub, pl, band="confidence")
    assert data.band is None and all(c.lower is None for c in data.curves)
    assert "no closed-form" in data.notes[0]


# -- figure 3


def test_iso_accuracy_data_and_projection(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult],
                                          human: tuple[Any, Projection]) -> None:
    target, proj = human
    f = poly1["top5"]
    iso = plots.iso_accuracy_data(f, grid=grids["top5"], target=target, projection=proj, n=80)
    assert proj.point is not None
    # Drawn at the projection's resolution, so the projected point lies on the target contour.
    assert iso.image_px == pytest.approx(proj.point["image_px"])
    assert iso.predicted == pytest.approx(target.value, abs=1e-6)
    assert iso.target == pytest.approx(0.949) and "human-top5" in iso.target_label
    np.testing.assert_allclose(iso.levels, [0.5, 0.6, 0.7, 0.8, 0.9])
    assert iso.accuracy.shape == (80, 80)
    i, j = 17, 61
    expected = f.predict({"n_params": iso.n_params[i], "data_hours": iso.data_hours[j], "image_px": iso.image_px})
    assert iso.accuracy[i, j] == pytest.approx(float(expected))
    # Accuracy grows with both axes on this form.
    assert np.all(np.diff(iso.accuracy, axis=0) > 0) and np.all(np.diff(iso.accuracy, axis=1) > 0)
    # The trained grid is a full factorial: its hull is the (N, D) box of the runs.
    g = grids["top5"]
    assert iso.hull[:, 0].min() == pytest.approx(g["n_params"].min())
    assert iso.hull[:, 1].max() == pytest.approx(g["data_hours"].max())
    n_in = (iso.n_params >= g["n_params"].min()) & (iso.n_params <= g["n_params"].max())
    d_in = (iso.data_hours >= g["data_hours"].min()) & (iso.data_hours <= g["data_hours"].max())
    np.testing.assert_array_equal(~iso.outside, np.outer(n_in, d_in))
    assert iso.decades_beyond == pytest.approx(proj.decades_beyond)
    assert any("beyond the largest trained resolution" in n for n in iso.notes)
    # The interval: the confidence band at the point brackets it; along the path from the largest run the
    # optimistic bound reaches the target before the point, the pessimistic one after it.
    iv = iso.interval
    assert iv is not None and iv.accuracy is not None and iv.near is not None and iv.far is not None
    assert iv.accuracy[0] < target.value < iv.accuracy[1]
    assert iv.near["n_params"] < proj.point["n_params"] < iv.far["n_params"]
    assert iv.near["data_hours"] < proj.point["data_hours"] < iv.far["data_hours"]
    _, hi = f.predict_interval({**{k: np.array([v]) for k, v in iv.near.items()},
                                "image_px": np.array([iso.image_px])})
    assert float(hi[0]) == pytest.approx(target.value, abs=2e-4)
    assert iso.target_band is not None and np.all(iso.target_band[0] <= iso.accuracy + 1e-12)
    # The map covers the interval's ends.
    assert iso.n_params[-1] > iv.far["n_params"] and iso.data_hours[-1] > iv.far["data_hours"]


def test_iso_at_paper_scenario_and_options(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult]) -> None:
    f = poly1["top5"]
    proj = project_at(f, {"n_params": 2.5e9, "data_hours": 20_000, "image_px": 952}, target=0.949)
    iso = plots.iso_accuracy_data(f, grid=grids["top5"], target=0.949, projection=proj, levels=[0.6, 0.949, 0.8],
                                  interval=None, n=40)
    assert iso.image_px == 952 and iso.interval is None and iso.target_band is None
    np.testing.assert_allclose(iso.levels, [0.6, 0.8])  # the target is drawn on its own
    assert iso.predicted == pytest.approx(proj.predicted)
    assert 0.84 < iso.predicted < 0.88  # poly1 top-5 at 2.5B / 20,000 h / 952 px (notes-paper §5.1: 85.8%)
    plain = plots.iso_accuracy_data(f, image_px=224, n=30)
    assert plain.point is None and plain.image_px == 224 and plain.outside.any() and not plain.outside.all()
    with pytest.raises(ScalingError, match="interval"):
        plots.iso_accuracy_data(f, interval="bootstrap")


def test_iso_without_closed_form_band(grids: dict[str, pd.DataFrame]) -> None:
    sub = grids["top5"][grids["top5"]["image_px"] == 224]
    pl = fit(sub, "powerlaw", y="value", axes=["n_params", "data_hours"])
    proj = project_at(pl, {"n_params": 2.5e9, "data_hours": 20_000})
    iso = plots.iso_accuracy_data(pl, grid=sub, target=0.9, projection=proj, n=30)
    assert iso.image_px is None and iso.interval is None
    assert any("no closed-form band" in n for n in iso.notes)


# -- figures 4 and 5 (plain inputs)


def synthetic_backtest() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    obs = rng.uniform(0.15, 0.7, 12)
    return pd.DataFrame({
        "form": ["poly1"] * 12 + ["powerlaw"] * 12,
        "observed": np.concatenate([obs, obs]),
        "predicted": np.concatenate([obs + 0.01, obs - np.linspace(0, 0.06, 12)]),
        "held_out": [f"run{i}" for i in range(12)] * 2,
    })


def test_parity_data() -> None:
    data = plots.parity_data(synthetic_backtest())
    assert data.forms == ("poly1", "powerlaw")
    assert data.stats.loc["poly1", "rmse"] == pytest.approx(0.01)
    assert data.stats.loc["poly1", "bias"] == pytest.approx(0.01)
    assert data.stats.loc["powerlaw", "max_abs"] == pytest.approx(0.06)
    assert data.stats.loc["powerlaw", "n"] == 12
    lo, hi = data.limits
    assert lo < data.frame[["observed", "predicted"]].min().min() and hi > data.frame["observed"].max()
    assert "held_out" in data.frame.columns
    with pytest.raises(ScalingError, match="predicted"):
        plots.parity_data(synthetic_backtest().drop(columns="predicted"))


def test_compute_distribution() -> None:
    samples = np.logspace(21, 23, 1000)
    data = plots.compute_distribution_data(samples, target=0.949, point_estimate=1e22, level=0.9)
    assert data.n_total == 1000 and data.n_unreachable == 0
    assert data.interval[0] == pytest.approx(10 ** 21.1, rel=0.01)
    assert data.interval[1] == pytest.approx(10 ** 22.9, rel=0.01)
    assert data.interval[0] == pytest.approx(np.quantile(samples, 0.05), rel=1e-12)  # numpy's linear percentiles
    assert data.median == pytest.approx(1e22, rel=0.01)
    assert data.counts.sum() == 1000 and len(data.bin_edges) == len(data.counts) + 1
    # Unreachable resamples rank above every finite one: 10% unreachable opens the 90% interval's top end.
    mixed = np.concatenate([samples[:900], np.full(60, np.inf), np.full(40, np.nan)])
    data = plots.compute_distribution_data(mixed, level=0.9)
    assert data.n_unreachable == 60 and data.n_missing == 40
    assert math.isinf(data.interval[1]) and math.isfinite(data.median)  # 60 of 960 > 5% unreachable
    assert data.summary()["interval"][1] is None
    with pytest.raises(ScalingError):
        plots.compute_distribution_data([np.nan], level=0.9)


# -- wired to scaling.uncertainty.bootstrap / backtest / optimal


@pytest.fixture(scope="module")
def boot(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult], human: tuple[Any, Projection]) -> Any:
    from scaling.compute.training_length import from_grid
    from scaling.questions.derived import projection_quantities
    from scaling.questions.projection import reference_point
    from scaling.uncertainty.bootstrap import bootstrap

    target, proj = human
    f = poly1["top5"]
    ref = reference_point(f)
    derived = projection_quantities(target.value, reference=ref, at=proj.point,
                                    compute=from_grid(grids["top5"]).at(ref))
    return bootstrap(grids["top5"], "poly1", y="value", axes=AXES, n_boot=200, seed=3, full=f, derived=derived)


def test_bootstrap_interval_of_the_projection(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult],
                                              human: tuple[Any, Projection], boot: Any) -> None:
    target, proj = human
    iv = plots.bootstrap_interval(boot, proj, level=0.95)
    assert "bootstrap" in iv.method and iv.level == 0.95
    assert iv.accuracy == pytest.approx(boot.interval("at.predicted", 0.95))
    assert iv.accuracy[0] < target.value < iv.accuracy[1]
    # Every axis of a scale projection moves by one factor: the bounds lie on the projection's path.
    ref = proj.reference
    for end in (iv.near, iv.far):
        assert end["n_params"] / ref["n_params"] == pytest.approx(end["data_hours"] / ref["data_hours"])
    assert iv.near["n_params"] < proj.point["n_params"] < iv.far["n_params"]
    assert iv.near["n_params"] == pytest.approx(boot.interval("scale.n_params", 0.95)[0])
    assert len(iv.samples) == boot.n_ok == 200
    iso = plots.iso_accuracy_data(poly1["top5"], grid=grids["top5"], target=target, projection=proj, interval=iv,
                                  n=40)
    assert iso.interval is iv and iso.target_band is None
    with pytest.raises(ScalingError, match=r"no 0\.5 intervals"):
        plots.bootstrap_interval(boot, proj, level=0.5)
    # The bootstrap evaluated the surface at the scale projection's point, not at another projection's.
    other = project_at(poly1["top5"], {"n_params": 2.5e9, "data_hours": 20_000, "image_px": 952}, target=0.949)
    assert plots.bootstrap_interval(boot, other, level=0.95).accuracy is None


def test_compute_distribution_from_bootstrap(human: tuple[Any, Projection], boot: Any) -> None:
    data = plots.compute_distribution_from_bootstrap(boot, key="scale.flops", target=0.949, level=0.9)
    assert data.point_estimate == pytest.approx(boot.derived["scale.flops"].estimate)
    assert data.interval == pytest.approx(boot.interval("scale.flops", 0.9))  # what `project --bootstrap` prints
    assert data.n_total == boot.n_ok and data.n_unreachable == 0
    assert data.interval[0] < data.point_estimate < data.interval[1]
    with pytest.raises(ScalingError, match=r"solve\.flops"):
        plots.compute_distribution_from_bootstrap(boot, key="solve.flops")


def test_backtest_parity_frame(grids: dict[str, pd.DataFrame]) -> None:
    from scaling.selection.backtest import backtest

    grid = grids["top1"]
    result = backtest(grid, ["poly1", "logit1"], y="value", axes=AXES)
    split = plots.default_split(result)
    assert split == "rolling: data_hours <= 4.989"  # predict 50-5,000 h from the 0.5 and 5 h runs
    frame = plots.backtest_parity_frame(result, grid)
    assert frame.groupby("form").size().to_dict() == {"poly1": 42, "logit1": 42}
    assert frame["data_hours"].min() > 40
    merged = frame.merge(grid[["run_id", "value"]], on="run_id")
    np.testing.assert_allclose(merged["observed"], merged["value"])
    data = plots.parity_data(frame)
    for r in result.results:
        if r.split == split:
            assert 100 * data.stats.loc[r.form, "rmse"] == pytest.approx(r.rmse)
            assert 100 * data.stats.loc[r.form, "bias"] == pytest.approx(r.bias)
    pooled = plots.backtest_parity_frame(result, grid, split="leave-largest-out")
    assert set(pooled["split"]) == {"largest data_hours", "largest image_px"}  # largest n_params: no fit
    assert "42" in plots.backtest_title(result) and "pooled" in plots.backtest_title(result, "leave-largest-out")
    with pytest.raises(ScalingError, match="no backtest split"):
        plots.backtest_parity_frame(result, grid, split="nope")
    with pytest.raises(ScalingError, match="not those the backtest ran on"):
        plots.backtest_parity_frame(result, grid.iloc[:60], split=split)


def test_frontier_data(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult]) -> None:
    from scaling.allocation.mae import optimal_allocation
    from scaling.compute.training_length import from_grid
    from scaling.questions.projection import reference_point

    f = poly1["top5"]
    result = optimal_allocation(f, 0.949, from_grid(grids["top5"]).at(reference_point(f)),
                                frontier_rows=5)
    data = plots.frontier_data(result)
    assert len(data.frame) == 5 and data.frame["reachable"].all()
    assert data.frame["relative_cost"].min() == pytest.approx(1.0, abs=1e-3)  # the middle row is the optimum
    assert data.frame["relative_cost"].max() > 1.05
    best = data.frame.loc[data.frame["relative_cost"].idxmin()]
    assert best["n_params"] == pytest.approx(data.optimum["n_params"], rel=1e-6)
    _, ax = plots.new_figure()
    assert plots.plot_frontier(data, ax) is ax


# -- figure 6


def test_loss_curves_from_history(published_db_path: Path) -> None:
    from runs_db import open_db

    db = open_db(published_db_path)
    data = plots.loss_curves_data(db)
    names = set(data.frame["name"])
    assert names == {"vits14_1.0_1", "vitb14_1.0_1", "vitl14_1.0_1", "vith14_1.0_1", "vith14@448_1.0_1",
                     "vith14@476_1.0_1"}
    h476 = data.frame[data.frame["name"] == "vith14@476_1.0_1"]
    assert h476["x"].max() == pytest.approx(640_000 * 136)  # steps x global batch = images seen
    assert h476["value"].iloc[0] > 1.0 > h476["value"].iloc[-1]  # MAE loss falls from ~2.6 to ~0.1
    two = plots.loss_curves_data(db, runs=["vits14_0.01_2", "vitb14_0.01_2"])
    assert set(two.frame["name"]) == {"vits14_0.01_2", "vitb14_0.01_2"}
    with pytest.raises(ScalingError, match="history"):
        plots.loss_curves_data(db, key="no_such_key")


# -- rendering and files


def render_all(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult], human: tuple[Any, Projection],
               db_path: Path) -> dict[str, Any]:
    from runs_db import open_db

    target, proj = human
    figs = {}
    fig, ax = plots.new_figure()
    assert plots.plot_accuracy_curves(plots.accuracy_curves_data(grids["top1"], poly1["top1"],
                                                                 where={"image_px": 224}), ax) is ax
    figs["data"] = fig
    fig, ax = plots.new_figure()
    plots.plot_accuracy_curves(plots.accuracy_curves_data(grids["top1"], poly1["top1"], group_by="image_px",
                                                          where={"arch": "vit_h14"}, band="prediction"), ax)
    figs["resolution"] = fig
    fig, ax = plots.new_figure(figsize=plots.ISO_FIGSIZE)
    assert plots.plot_iso_accuracy(plots.iso_accuracy_data(poly1["top5"], grid=grids["top5"], target=target,
                                                           projection=proj, n=60), ax) is ax
    figs["iso"] = fig
    fig, ax = plots.new_figure()
    assert plots.plot_backtest_parity(plots.parity_data(synthetic_backtest()), ax) is ax
    figs["backtest"] = fig
    fig, ax = plots.new_figure()
    samples = np.concatenate([np.logspace(21, 23, 300), [np.inf] * 5])
    assert plots.plot_compute_distribution(plots.compute_distribution_data(samples, target=0.949,
                                                                           point_estimate=2e22), ax) is ax
    figs["bootstrap"] = fig
    fig, ax = plots.new_figure(figsize=(10.0, 4.8))
    axes = plots.plot_loss_curves(plots.loss_curves_data(open_db(db_path)), ax)
    assert axes.shape == (1, 2) and len(fig.axes) == 2  # 224 px beside 448/476 px, in the place of ax
    figs["loss"] = fig
    return figs


def test_every_kind_renders_and_files_are_byte_reproducible(
        tmp_path: Path, grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult], human: tuple[Any, Projection],
        published_db_path: Path) -> None:
    first = render_all(grids, poly1, human, published_db_path)
    second = render_all(grids, poly1, human, published_db_path)
    for i, kind in enumerate(first):
        fmt = ("png", "pdf", "svg")[i % 3]
        a, b = tmp_path / f"{kind}-a.{fmt}", tmp_path / f"{kind}-b.{fmt}"
        save_figure(first[kind], a, dpi=60)
        save_figure(second[kind], b, dpi=60)
        assert a.stat().st_size > 1000
        assert a.read_bytes() == b.read_bytes(), kind
    # The other two formats for one figure, and no software or date stamps in any.
    for fmt in ("png", "pdf", "svg"):
        a, b = tmp_path / f"iso-1.{fmt}", tmp_path / f"iso-2.{fmt}"
        save_figure(first["iso"], a, dpi=60)
        save_figure(first["iso"], b, dpi=60)
        assert a.read_bytes() == b.read_bytes()
        assert b"CreationDate" not in a.read_bytes() and b"Software" not in a.read_bytes()
    with pytest.raises(ScalingError, match=r"\.png, \.pdf or \.svg"):
        save_figure(first["iso"], tmp_path / "x.jpg")
    with pytest.raises(ScalingError, match="does not exist"):
        save_figure(first["iso"], tmp_path / "missing" / "x.png")


def test_save_projection_figure(tmp_path: Path, grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult],
                                human: tuple[Any, Projection]) -> None:
    target, proj = human
    out = tmp_path / "projection.svg"
    data = plots.save_projection_figure(poly1["top5"], proj, target, out, grid=grids["top5"])
    assert out.read_bytes().startswith(b"<?xml") and data.interval is not None
    assert data.predicted == pytest.approx(0.949, abs=1e-6)


# -- the CLI


def invoke(db: Path, *args: str) -> Any:
    from scaling.cli import app

    return runner.invoke(app, ["--db", str(db), "plot", *args])


@pytest.mark.parametrize("kind", ["data", "resolution", "iso", "backtest", "bootstrap", "frontier", "loss", "all"])
def test_plot_help_has_examples(kind: str) -> None:
    from scaling.cli import app

    result = runner.invoke(app, ["plot", kind, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.stdout


def test_plot_iso_command_json(tmp_path: Path, published_db_path: Path) -> None:
    out = tmp_path / "iso.png"
    result = invoke(published_db_path, "iso", "--metric", "top5", "--out", str(out), "--dpi", "50", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "scaling.plot.iso/v1" and doc["path"] == str(out)
    assert doc["target"] == pytest.approx(0.949) and doc["levels"] == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert doc["predicted"] == pytest.approx(0.949, abs=1e-6)
    assert doc["interval"]["accuracy"][0] < 0.949 < doc["interval"]["accuracy"][1]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "beyond the largest trained resolution" in result.stderr


def test_plot_commands_write_files_and_fail_in_one_line(tmp_path: Path, published_db_path: Path) -> None:
    for kind, name in [("data", "d.pdf"), ("resolution", "r.svg"), ("loss", "l.png")]:
        result = invoke(published_db_path, kind, "--out", str(tmp_path / name), "--dpi", "40")
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == str(tmp_path / name) and (tmp_path / name).stat().st_size > 1000
    bad = invoke(published_db_path, "iso", "--out", str(tmp_path / "x.jpg"))
    assert bad.exit_code == 2
    wrong = invoke(published_db_path, "iso", "--metric", "top1", "--out", str(tmp_path / "x.png"))
    assert wrong.exit_code == 1 and "Traceback" not in wrong.output
    assert [ln for ln in wrong.stderr.splitlines() if ln.strip()] == [
        "error: target 'human-top5' is defined on metric 'top5', not 'top1'"]
    unknown = invoke(published_db_path, "data", "--form", "nope", "--out", str(tmp_path / "x.png"))
    assert unknown.exit_code == 1 and "unknown form" in unknown.stderr


def test_plot_analysis_commands(tmp_path: Path, published_db_path: Path) -> None:
    out = tmp_path / "bt.png"
    result = invoke(published_db_path, "backtest", "--forms", "poly1,logit1", "--out", str(out), "--dpi", "40",
                    "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "scaling.plot.backtest/v1" and doc["split"] == "rolling: data_hours <= 4.989"
    assert doc["stats"]["logit1"]["n"] == 42 and doc["ranking"][0] in {"poly1", "logit1"}
    result = invoke(published_db_path, "bootstrap", "--bootstrap", "100", "--seed", "2", "--out",
                    str(tmp_path / "bs.svg"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["n_total"] == doc["n_ok"] == 100 and doc["interval"][0] < doc["point_estimate"] < doc["interval"][1]
    result = invoke(published_db_path, "frontier", "--rows", "3", "--out", str(tmp_path / "fr.pdf"), "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["frontier"]) == 3
    result = invoke(published_db_path, "iso", "--metric", "top5", "--interval", "bootstrap", "--bootstrap", "50",
                    "--out", str(tmp_path / "iso.png"), "--dpi", "40", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["interval"]["method"].startswith("bootstrap 95% percentile")
    bad = invoke(published_db_path, "backtest", "--forms", "poly1", "--split", "nope", "--out", str(out))
    assert bad.exit_code == 1 and "no backtest split" in bad.stderr


def test_plot_all(tmp_path: Path, published_db_path: Path) -> None:
    result = invoke(published_db_path, "all", "--out-dir", str(tmp_path / "figs"), "--dpi", "40",
                    "--forms", "poly1,logit1", "--bootstrap", "50")
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert written == sorted(f"{k}.png" for k in ("accuracy-vs-data", "resolution", "iso-accuracy", "backtest",
                                                   "bootstrap-compute", "frontier", "loss-curves"))


# The README's main figure is generated by this command; regenerate it when this test fails:
#   scaling --db /tmp/published.sqlite plot iso --metric top5 --dpi 120 --out docs/figures/iso-accuracy.png
README_FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "iso-accuracy.png"
README_FIGURE_MATPLOTLIB = "3.11.2"  # the bytes depend on matplotlib's renderer (and its freetype)


def test_readme_figure_is_current(tmp_path: Path, published_db_path: Path) -> None:
    import matplotlib

    if matplotlib.__version__ != README_FIGURE_MATPLOTLIB:
        pytest.skip(f"README figure was rendered with matplotlib {README_FIGURE_MATPLOTLIB}")
    out = tmp_path / "iso-accuracy.png"
    result = invoke(published_db_path, "iso", "--metric", "top5", "--dpi", "120", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == README_FIGURE.read_bytes(), (
        "docs/figures/iso-accuracy.png is stale: regenerate it with the command above")


# -- what a reader sees (issue 12): labels, panels, notes


def test_figures_display_inline_and_tables_read_well() -> None:
    fig, ax = plots.new_figure()
    ax.plot([1, 2], [3, 4])
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"  # what Jupyter shows instead of '<Figure size ...>'
    dist = plots.compute_distribution_data(np.logspace(21, 23, 50), point_estimate=1e22)
    result = plots.FigureResult("bootstrap", dist)
    assert result._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.DataFrame({"n_params": [2.920918e9], "data_hours": [23058.86], "image_px": [2200.22],
                          "FLOPs": [6.10901e22], "relative_cost": [1.2039], "note": ["x"]})
    shown = plots.readable_frame(table, {"relative_cost": "x{:.2f}"})
    assert shown.iloc[0].tolist() == ["2.92B", "23,059 h", "2,200 px", "6.11e+22", "x1.20", "x"]
    assert table["n_params"].dtype == float  # the original keeps its numbers


def test_loss_curves_leave_out_single_iteration_records(published_db_path: Path) -> None:
    from runs_db import open_db

    data = plots.loss_curves_data(open_db(published_db_path))
    f = data.frame
    single = f[f["single_step"]]
    # One per job: the first record of every segment (jobs resumed 3-15 times in the published logs).
    assert len(single) == f.groupby("name")["segment"].nunique().sum() == 48
    for _, r in single[single["segment"] > 0].iterrows():
        prev = f[(f["name"] == r["name"]) & (f["segment"] == r["segment"] - 1)]
        assert r["step"] == prev["step"].max()  # written where the previous job's last record was
    # They are the spikes: far further from the mean of their two neighbours than the window means are.
    dev = []
    for _, run in f[f["x"] > 0].groupby("name"):
        v = run["value"].to_numpy()
        rel = np.abs(v[1:-1] / ((v[:-2] + v[2:]) / 2) - 1)
        dev.append(pd.DataFrame({"rel": rel, "single": run["single_step"].to_numpy()[1:-1]}))
    dev = pd.concat(dev)
    assert dev[dev["single"]]["rel"].median() > 5 * dev[~dev["single"]]["rel"].median()
    fig, ax = plots.new_figure(figsize=(10.0, 4.8))
    axes = plots.plot_loss_curves(data, ax)
    drawn = sum(len(line.get_xdata()) for a in axes.ravel() for line in a.get_lines())
    assert drawn == int(((f["x"] > 0) & ~f["single_step"]).sum())
    assert "left out: the first record of each job (48)" in fig.get_suptitle()
    assert {a.get_title(loc="left") for a in axes.ravel()} == {"runs at 224 px", "runs at 448 and 476 px"}
    assert "train_loss" not in fig.get_suptitle() and "mean squared error" in fig.get_suptitle()


def test_curves_state_what_is_held_and_keep_overlapping_series_visible(grids: dict[str, pd.DataFrame],
                                                                       poly1: dict[str, FitResult]) -> None:
    _, ax = plots.new_figure()
    plots.plot_accuracy_curves(plots.accuracy_curves_data(grids["top1"], poly1["top1"], where={"image_px": 224}), ax)
    assert "runs at 224 px only" in ax.get_title(loc="left") and "all 78 runs" in ax.get_title(loc="left")
    data = plots.accuracy_curves_data(grids["top1"], poly1["top1"], group_by="image_px", where={"arch": "vit_h14"})
    _, ax = plots.new_figure()
    plots.plot_accuracy_curves(data, ax, dodge_decades=0.05)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # poly1 is linear in log10(px): 16.9 points per decade x log10(476 / 448) = +0.4 points.
    assert "476 px (fit +0.4 points vs 448 px: the lines nearly coincide)" in labels
    means = [c for c in ax.collections if c.get_sizes().size and c.get_sizes()[0] == 46]
    x448, x476 = (np.sort(m.get_offsets()[:, 0]) for m in means[1:])
    np.testing.assert_allclose(x476 / x448, 10**0.05)  # the two series' markers side by side
    assert "ViT-H/14 only" in ax.get_title(loc="left")


def test_iso_labels_upright_with_colour_bar(grids: dict[str, pd.DataFrame], poly1: dict[str, FitResult],
                                            human: tuple[Any, Projection]) -> None:
    target, proj = human
    fig, ax = plots.new_figure(figsize=plots.ISO_FIGSIZE)
    plots.plot_iso_accuracy(plots.iso_accuracy_data(poly1["top5"], grid=grids["top5"], target=target,
                                                    projection=proj, n=40), ax)
    labels = [t for t in ax.texts if t.get_text().endswith("%")]
    assert {t.get_text() for t in labels} >= {"60%", "70%", "80%", "90%", "94.9%"}
    assert all(t.get_rotation() == 0 for t in labels)
    bar = [a for a in fig.axes if a is not ax]
    assert len(bar) == 1 and "Predicted ImageNet top-5, % (at 2200 px)" in bar[0].get_ylabel()
    assert "trained runs (224-476 px) are marked at their (parameters, hours) on this 2200 px surface" \
        in ax.get_title(loc="left")


def test_backtest_figure_shows_every_split(grids: dict[str, pd.DataFrame]) -> None:
    from scaling.selection.backtest import backtest

    grid = grids["top1"]
    result = backtest(grid, ["poly1", "logit1"], y="value", axes=AXES)
    data = plots.backtest_panels(result, grid, metric_label=plots.metric_label(grid))
    assert len(data.panels) + len(data.skipped) == len(result.splits) == 6
    assert [s for s, _ in data.skipped] == ["largest n_params", "joint: largest of every axis"]
    assert all("distinct values of axis 'image_px'" in reason for _, reason in data.skipped)
    assert data.main is data.panels[data.splits.index(plots.default_split(result))]
    for split, panel in zip(data.splits, data.panels, strict=True):
        for r in result.results:
            if r.split == split and r.ok:
                assert 100 * panel.stats.loc[r.form, "rmse"] == pytest.approx(r.rmse)
    summary = data.summary()
    assert summary["stats"] == data.main.summary()["stats"] and len(summary["panels"]) == 4
    fig, ax = plots.new_figure(figsize=(10, 11))
    axes = plots.plot_backtest_splits(data, ax)
    assert axes.shape == (2, 2) and len({a.get_xlim() for a in axes.ravel()}) == 1  # one scale for all
    assert "ImageNet top-1 (2% fine-tune, best epoch)" in fig.get_suptitle()
    assert "not drawn: split 'largest n_params'" in fig.get_suptitle()
    # One marker per held-out configuration (seeds share a prediction): 6 configurations x 50, 500, 5,000 h.
    from matplotlib.collections import PathCollection

    panel = axes[1, 0]
    assert "rolling: data_hours <= 4.989" in panel.get_title(loc="left")
    assert [len(c.get_offsets()) for c in panel.collections if isinstance(c, PathCollection)] == [18, 18]
    assert panel.get_xlabel() == "Observed ImageNet top-1 of the held-out runs, %"


def test_frontier_and_bootstrap_say_what_they_show(grids: dict[str, pd.DataFrame],
                                                   poly1: dict[str, FitResult]) -> None:
    from scaling.allocation.mae import optimal_allocation
    from scaling.compute.training_length import from_grid
    from scaling.questions.projection import reference_point

    f = poly1["top5"]
    result = optimal_allocation(f, 0.949, from_grid(grids["top5"]).at(reference_point(f)),
                                frontier_rows=9)
    data = plots.frontier_data(result)
    assert data.optimum_at_bounds == ("image_px upper",) and data.bounds["image_px"][1] == pytest.approx(3808)
    fig, ax = plots.new_figure()
    plots.plot_frontier(data, ax)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("image_px at its upper search bound (3,808 px)" in t for t in legend)
    labels = [t.get_text() for t in ax.texts]
    assert len(labels) == 9 and all(re.fullmatch(r"[\d,]+ h\n[\d,]+ px", t) for t in labels), labels
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()  # no label box crosses the line between the points
    fig.draw(renderer)
    line = ax.get_lines()[0]
    xy = ax.transData.transform(np.column_stack(line.get_data()))
    dense = np.concatenate([np.linspace(a, b, 200) for a, b in itertools.pairwise(xy)])
    for t in ax.texts:
        box = t.get_window_extent(renderer)
        inside = (dense[:, 0] > box.x0) & (dense[:, 0] < box.x1) & (dense[:, 1] > box.y0) & (dense[:, 1] < box.y1)
        assert not inside.any(), t.get_text()
    dist = plots.compute_distribution_data(np.logspace(21.5, 22.5, 400), point_estimate=10**22.001)
    from dataclasses import replace

    fig, ax = plots.new_figure()
    plots.plot_compute_distribution(replace(dist, form="poly1", question="scale", target_label="human-top5"), ax)
    title = ax.get_title(loc="left")
    assert "by scaling every axis by one factor (fit poly1)" in title.lower() and "human-top5" in title
    point, median = (ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2)  # the two vertical lines
    assert point.get_xdata()[0] == dist.point_estimate and median.get_xdata()[0] == dist.median
    assert median.get_zorder() > point.get_zorder()  # the median is drawn over the point estimate
