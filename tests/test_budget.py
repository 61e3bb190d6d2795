"""Cost models by name or expression, and the two budget questions on any axes (issue 10), checked against
Chinchilla's closed form (Hoffmann et al. 2022, eq. 4) and the MAE FLOPs model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.allocation.budget import best_at_budget, cheapest
from scaling.compute.costs import cost_model
from tests.cli_helpers import ok_json
from tests.golden_cases import LM_CSV

LOSS = ["--data", str(LM_CSV), "--y", "loss", "--axes", "params,tokens", "--kind", "loss", "--form", "powerlaw"]


@pytest.fixture(scope="module")
def lm() -> scaling.FitResult:
    return scaling.fit(pd.read_csv(LM_CSV), y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw")


def chinchilla_optimum(fit: scaling.FitResult, flops: float) -> tuple[float, float]:
    """N_opt = G (C/6)^(b/(a+b)), D_opt = (C/6) / N_opt, G = (a A / (b B))^(1/(a+b)) (their eq. 4)."""
    p = fit.params
    a, b, A, B = p["alpha_params"], p["alpha_tokens"], p["A_params"], p["A_tokens"]
    G = (a * A / (b * B)) ** (1 / (a + b))
    n = G * (flops / 6) ** (b / (a + b))
    return n, flops / 6 / n


def test_best_at_a_budget_is_chinchillas_closed_form(lm: scaling.FitResult) -> None:
    cost = cost_model("6nd", lm.axes)
    for flops in (1e19, 1e21, 1e23):
        got = best_at_budget(lm, flops, cost)
        n, d = chinchilla_optimum(lm, flops)
        assert got.reachable and not got.at_bounds
        assert got.point["params"] == pytest.approx(n, rel=2e-3) and got.point["tokens"] == pytest.approx(d, rel=2e-3)
        assert got.cost == pytest.approx(flops, rel=1e-6)


def test_cheapest_point_for_a_target_sits_on_the_budget_optimum(lm: scaling.FitResult) -> None:
    """The cheapest point reaching L is the budget optimum at its own cost (the same Lagrange conditions)."""
    cost = cost_model("6*params*tokens", lm.axes)
    c = cheapest(lm, 2.2, cost)
    n, d = chinchilla_optimum(lm, c.cost)
    assert c.predicted == pytest.approx(2.2, abs=1e-6)
    assert c.point["params"] == pytest.approx(n, rel=2e-3) and c.point["tokens"] == pytest.approx(d, rel=2e-3)
    assert not cheapest(lm, 1.5, cost).reachable  # below the fitted floor E


def test_cost_expressions_are_arithmetic_of_the_axes_only() -> None:
    axes = ("params", "tokens")
    expr = cost_model("6*params*tokens", axes)
    assert float(expr.cost({"params": 2e9, "tokens": 3e10})) == pytest.approx(6 * 2e9 * 3e10)
    assert float(cost_model("2*params*tokens + 1e9*tokens**0.5", axes).cost({"params": 1.0, "tokens": 4.0})) == \
        pytest.approx(8 + 2e9)
    for bad, words in [("__import__('os').system('true')", "only numbers"), ("6*params*tokns", "unknown name"),
                       ("6 *", "neither"), ("42", "does not depend"), ("params.real", "only numbers")]:
        with pytest.raises(scaling.ScalingError, match=words):
            cost_model(bad, axes)
    with pytest.raises(scaling.ScalingError, match="two axes"):
        cost_model("6nd", ("params",))


def test_mae_cost_is_the_flops_model(published_db_path: Path) -> None:
    from scaling.compute.flops import ComputeAssumptions, pretrain_compute

    a = ComputeAssumptions(passes=4.0, mask_ratio=0.8)
    cost = cost_model("mae", ("n_params", "data_hours", "image_px"), assumptions=a)
    want = pretrain_compute(2.5e9, 2e4, 952, passes=4.0, mask_ratio=0.8).flops
    assert float(cost.cost({"n_params": 2.5e9, "data_hours": 2e4, "image_px": 952})) == pytest.approx(want, rel=1e-12)
    with pytest.raises(scaling.ScalingError, match="MAE FLOPs"):
        cost_model("mae", ("params", "tokens"), assumptions=a)


def test_cli_budget_with_bootstrap_intervals(tmp_path: Path, lm: scaling.FitResult) -> None:
    doc = ok_json(tmp_path / "db.sqlite", "project", *LOSS, "--target", "2.2", "--mode", "at", "--optimal",
                  "--cost", "6nd", "--budget", "1e21", "--bootstrap", "30", "--seed", "1")
    n, _ = chinchilla_optimum(lm, 1e21)
    assert doc["budget"]["point"]["params"] == pytest.approx(n, rel=2e-3)
    assert doc["optimal"]["question"] == "cheapest" and doc["optimal"]["predicted"] == pytest.approx(2.2, abs=1e-6)
    derived = doc["bootstrap"]["derived"]
    lo, hi = (derived["budget.params"]["intervals"]["0.95"][k] for k in ("lower", "upper"))
    assert lo < n < hi and math.isfinite(hi)
    assert derived["cheapest.cost"]["estimate"] == pytest.approx(doc["optimal"]["cost"], rel=1e-9)
    assert np.isfinite(derived["budget.predicted"]["median"])
