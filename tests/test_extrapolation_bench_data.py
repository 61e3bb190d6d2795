"""The shipped learning curves of the extrapolation benchmark (bench/data/extrapolation/): they load, hold
the promised curves and sources, split each curve into a fitting part and a later tail, and carry their
licences. The benchmark itself (bench/bench_extrapolation.py) runs outside the suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "extrapolation"
SOURCES = {"alabdulmohsin2022": 28, "muennighoff2023": 16, "choshen2025": 6}


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shipped() -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(DATA / "manifest.csv"), pd.read_csv(DATA / "curves.csv")


def test_curves_and_sources_as_promised(shipped: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    manifest, points = shipped
    assert manifest["curve"].is_unique
    assert manifest.groupby("source").size().to_dict() == SOURCES  # >= 20 curves from >= 3 sources
    assert set(points["curve"]) == set(manifest["curve"])
    assert set(points["split"]) == {"fit", "tail"}
    m = manifest.set_index("curve")
    by_split = points.groupby(["curve", "split"]).size().unstack().loc[m.index]
    assert (by_split["fit"] == m["n_fit"]).all() and (by_split["tail"] == m["n_tail"]).all()
    assert (m["n_tail"] <= 30).all() and (m["n_tail"] <= m["n_tail_released"]).all()
    assert (m.loc[m["n_tail_released"] <= 30, "n_tail"] == m.loc[m["n_tail_released"] <= 30, "n_tail_released"]).all()
    # the data-constrained law needs each curve's tokens per epoch; no other source has them
    assert m.loc[m["source"] == "muennighoff2023", "unique_tokens"].gt(0).all()
    assert m.loc[m["source"] != "muennighoff2023", "unique_tokens"].isna().all()


def test_each_curve_is_fitted_on_its_early_part_and_predicts_a_later_tail(
        shipped: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    manifest, points = shipped
    assert np.isfinite(points[["x", "y"]].to_numpy()).all() and (points[["x", "y"]] > 0).all().all()
    quantity = manifest.set_index("curve")["quantity"]
    for curve, g in points.groupby("curve"):
        fit, tail = g[g["split"] == "fit"], g[g["split"] == "tail"]
        assert fit["x"].nunique() >= 6 and len(tail) >= 1, curve
        assert fit["x"].max() < tail["x"].min(), curve
        assert not g.duplicated(["x", "y"]).any(), curve
        if quantity[curve] == "error":
            assert g["y"].lt(1).all(), curve
    # the tail reaches about a factor of 2 in x beyond the fitted part, for every source (the released split
    # of the first source: 2.0-2.2; the others: fit at or below half the last x, so at least 2)
    span = points.groupby(["curve", "split"])["x"].max().unstack()
    assert ((span["tail"] / span["fit"]).between(2.0, 2.4)).all()


def test_the_bench_loader_reads_the_same_curves(shipped: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    manifest, points = shipped
    data = bench_module("extrapolation_data")
    curves = data.load()
    assert [c.id for c in curves] == manifest["curve"].tolist()
    c = next(c for c in curves if c.source == "muennighoff2023")
    g = points[points["curve"] == c.id]
    assert len(c.fit) == (g["split"] == "fit").sum() and c.fit["x"].is_monotonic_increasing
    assert c.unique_tokens is not None and c.unique_tokens > 0
    assert len(data.load(("choshen2025",))) == SOURCES["choshen2025"]
    with pytest.raises(ValueError, match="unknown source"):
        data.load(("nosuch",))


def test_tail_thinning_keeps_the_ends_and_spaces_evenly_in_log_x() -> None:
    subset = bench_module("extrapolation_data").log_spaced_subset
    # dense in log x everywhere (log spacing <= 0.0047), denser still at the top
    x = np.unique(np.concatenate([np.geomspace(1.0, 100.0, 1000), np.linspace(1.0, 100.0, 500)]))
    idx = subset(x, 30)
    assert idx[0] == 0 and idx[-1] == len(x) - 1 and len(idx) == len(set(idx)) == 30
    # each pick is the point nearest its target, so within half the local spacing of it
    targets = np.linspace(0.0, np.log(100.0), 30)
    assert np.abs(np.log(x[idx]) - targets).max() <= 0.0047 / 2
    assert subset(x[:7], 30).tolist() == list(range(7))


def test_the_licences_and_sources_are_shipped() -> None:
    readme = (DATA / "README.md").read_text()
    assert "Apache License" in (DATA / "LICENSE-Apache-2.0.txt").read_text()
    assert "International Business Machines" in (DATA / "LICENSE-MIT-ColPret.txt").read_text()
    for needle in ("google-research/google-research", "9853680c781781bd8d3de20aa61c7373ce059913", "IBM/ColPret",
                   "16f23bbe054277ddc4afd07a972dd7cfbe3f48c3", "huggingface/datablations", "arXiv 2209.06640",
                   "arXiv 2305.16264", "arXiv 2410.11840", "Apache-2.0", "MIT"):
        assert needle in readme, needle
