"""Compute-optimal allocation by every method (issue 19): IsoFLOP parabolas (approach 2), the envelope of
training curves (approach 1) and the parametric law (approach 3), checked against closed forms and synthetic
sweeps drawn from known laws (``scaling.allocation.sweeps``), with and without an N-D interaction."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.allocation.consistency import consistency_check
from scaling.allocation.envelope import curves, envelope_fit
from scaling.allocation.isoflop import budget_groups, fit_parabola, isoflop_fit
from scaling.allocation.sweeps import LossLaw, isoflop_sweep, training_curves
from scaling.compute.costs import cost_model
from tests.cli_helpers import invoke, ok_json, one_line_error

AXES = ["params", "tokens"]
BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20, 3e20]
QUERY = 1e21  # beyond the largest training budget
COST = cost_model("6nd", AXES)


def sweep(law: str, seed: int = 0, **kw: float) -> pd.DataFrame:
    return isoflop_sweep(LossLaw.of(law), BUDGETS, center=10 ** 0.2, seed=seed, **kw)


# -- the pieces, against closed forms -------------------------------------------------------------------------


def test_a_parabola_vertex_is_the_minimum_of_an_exact_parabola() -> None:
    n = np.geomspace(1e8, 1e10, 7)
    u_star = math.log(2.2e9)
    err = 3.0 + 0.2 * (np.log(n) - u_star) ** 2
    p = fit_parabola(1e20, n, 1e20 / (6 * n), err)
    assert p.kept and p.vertex_n == pytest.approx(2.2e9, rel=1e-9)
    assert p.vertex_d == pytest.approx(1e20 / (6 * 2.2e9), rel=1e-9)  # ln D on ln N within the budget: C / 6N
    assert p.vertex_error == pytest.approx(3.0, abs=1e-12) and p.se_log10_n == pytest.approx(0.0, abs=1e-6)


def test_vertices_that_are_not_interior_minima_are_not_kept() -> None:
    n = np.geomspace(1e8, 1e10, 5)
    u = np.log(n)
    edge = fit_parabola(1e20, n, 1e20 / (6 * n), 3.0 + 0.2 * (u - math.log(5e10)) ** 2)
    assert not edge.kept and "beyond the largest size" in edge.reason and edge.vertex_n == pytest.approx(5e10)
    cap = fit_parabola(1e20, n, 1e20 / (6 * n), 3.0 - 0.2 * (u - u.mean()) ** 2)
    assert not cap.kept and "opens downward" in cap.reason
    few = fit_parabola(1e20, n[:2], 1e20 / (6 * n[:2]), np.array([3.0, 2.9]))
    assert not few.kept and "needs 3" in few.reason


def test_the_symmetric_law_puts_the_vertex_on_the_true_optimum() -> None:
    """With alpha = beta the loss along a budget is a cosh in ln N about ln N*: a parabola fitted to points
    placed symmetrically about N* has its vertex exactly there (up to the bounded search's 1e-10 in ln N)."""
    law = LossLaw.of("chinchilla", alpha=0.3, beta=0.3)
    df = isoflop_sweep(law, BUDGETS, center=1.0, noise=0.0)
    fit = isoflop_fit(df, AXES, "loss", "loss", budget_groups(df, AXES, cost=COST))
    for p in fit.parabolas:
        assert p.kept and p.vertex_n == pytest.approx(law.n_opt(p.budget), rel=1e-8)
    assert fit.n_opt is not None and fit.n_opt.exponent == pytest.approx(0.5, abs=1e-8)  # beta / (alpha + beta)
    assert fit.d_opt is not None and fit.n_opt.exponent + fit.d_opt.exponent == pytest.approx(1.0, abs=1e-12)


def test_budgets_group_costs_within_the_tolerance_or_come_from_a_column() -> None:
    df = pd.DataFrame({"params": [1e8, 2e8, 4e8, 1e8, 2e8, 3e8],
                       "tokens": [1e10, 0.52e10, 0.25e10, 1e11, 0.5e11, 1e11]})
    b = budget_groups(df, AXES, cost=COST, tol=0.1)
    assert b.n == 3 and list(b.labels) == [0, 0, 0, 1, 1, 2]
    assert b.values[0] == pytest.approx(6e18 * (1.04 * 1.0) ** (1 / 3), rel=1e-12)  # geometric mean of 6, 6.24, 6
    df["budget"] = [6e18, 6e18, 6e18, 6e19, 6e19, 6e19]
    assert budget_groups(df, AXES, column="budget").n == 2
    chain = pd.DataFrame({"params": 1e8 * 1.08 ** np.arange(6), "tokens": np.full(6, 1e10)})
    b = budget_groups(chain, AXES, cost=COST, tol=0.1)  # 8% steps, 47% overall: not one budget
    assert b.n == 0 and "not one budget" in b.notes[0]
    with pytest.raises(scaling.ScalingError, match="not in the table"):
        budget_groups(df, AXES, column="flops")


def test_the_envelope_of_noiseless_curves_is_the_law_up_to_the_size_grid() -> None:
    """Each run's point at (N, D) is the law's own loss there, so the best run at a cost is the size nearest
    the true N* on the grid of sizes (0.1 decades apart): the fitted N*(C) lies within half a step of the
    truth inside the range of the curves, and its exponent near beta / (alpha + beta)."""
    law = LossLaw.of("chinchilla")
    df = training_curves(law, np.geomspace(1e7, 1e10, 31), noise=0.0)
    runs, how = curves(df, AXES, "loss", "loss", COST)
    env = envelope_fit(runs, AXES, how)
    assert env.n_opt is not None and len(runs) == 31 and how == "runs by column 'run_id'"
    for c in (1e18, 1e19, 1e20):
        assert abs(math.log10(float(env.n_opt.at(c)) / law.n_opt(c))) < 0.05
    assert env.n_opt.exponent == pytest.approx(law.exponent(1e19), abs=0.02)


# -- every method on synthetic sweeps: within its interval -----------------------------------------------------


@pytest.fixture(scope="module")
def chinchilla() -> scaling.ComputeOptimalResult:
    return scaling.compute_optimal(sweep("chinchilla", seed=1), QUERY, y="loss", axes=AXES, cost="6nd",
                                   method="all", n_boot=100, seed=1)


def inside(answer: object, quantity: str, truth: float) -> bool:
    lo, hi = answer.interval(quantity, 0.95)  # type: ignore[attr-defined]
    return bool(lo <= truth <= hi)


def test_parametric_and_isoflop_recover_the_chinchilla_optimum(chinchilla: scaling.ComputeOptimalResult) -> None:
    law = LossLaw.of("chinchilla")
    for m in ("parametric", "isoflop"):
        a = chinchilla.answer(m)
        assert a.available and a.n_ok >= 95
        assert inside(a, "n_opt", law.n_opt(QUERY)) and inside(a, "d_opt", law.d_opt(QUERY))
        assert inside(a, "a", law.exponent(QUERY))
    assert not chinchilla.answer("envelope").available  # an IsoFLOP sweep has no training curves
    check = chinchilla.consistency
    assert check is not None and check.made and not check.fires and len(check.budgets) == 6
    assert abs(check.bias_decades) < 0.05


def test_the_envelope_recovers_the_optimum_from_training_curves() -> None:
    law = LossLaw.of("chinchilla")
    df = training_curves(law, np.geomspace(3e7, 3e9, 15), seed=3)
    res = scaling.compute_optimal(df, QUERY, y="loss", axes=AXES, cost="6nd", method="envelope", n_boot=200, seed=3)
    a = res.answer("envelope")
    assert inside(a, "n_opt", law.n_opt(QUERY)) and inside(a, "a", law.exponent(QUERY))
    assert a.resampling == "runs" and a.n_ok >= 190


@pytest.fixture(scope="module")
def kaplan() -> scaling.ComputeOptimalResult:
    return scaling.compute_optimal(sweep("kaplan", seed=2), QUERY, y="loss", axes=AXES, cost="6nd",
                                   method="all", n_boot=60, seed=2)


def test_the_check_fires_where_the_law_has_another_n_d_interaction(kaplan: scaling.ComputeOptimalResult) -> None:
    """Kaplan's law couples N and D; Chinchilla's additive law fitted to its sweeps puts N* too low at every
    training budget, and the IsoFLOP method keeps the truth inside its interval."""
    law = LossLaw.of("kaplan")
    check = kaplan.consistency
    assert check is not None and check.fires and check.bias_decades < -0.1
    assert all(b.decades is not None and b.decades < 0 for b in check.budgets)
    assert "the law does not fit these sweeps" in check.verdict
    iso = kaplan.answer("isoflop")
    assert inside(iso, "n_opt", law.n_opt(QUERY)) and inside(iso, "a", law.exponent(QUERY))
    par = kaplan.answer("parametric")
    assert math.log10(par.n_opt / law.n_opt(QUERY)) < -0.2  # the law's answer is far too low


def test_the_check_could_not_be_made_without_isoflop_structure() -> None:
    n = np.geomspace(1e7, 1e9, 12)
    n, d = np.concatenate([n, n]), np.concatenate([20 * n, 80 * n])  # two tokens-per-parameter ratios
    df = pd.DataFrame({"params": n, "tokens": d, "loss": LossLaw.of("chinchilla").loss(n, d)})
    fit = scaling.fit(df, "powerlaw", y="loss", axes=AXES, kind="loss")
    check = consistency_check(fit, COST)
    assert not check.made and "no IsoFLOP structure" in check.verdict
    assert not consistency_check(fit, None).made
    runs = scaling.fit(scaling.load_runs(), "poly1", metric="top5")
    assert "two axes" in consistency_check(runs, COST).reason


def test_a_parametric_budget_answer_carries_the_check(tmp_path: Path) -> None:
    df = sweep("kaplan", seed=4)
    rep = scaling.project(df, y="loss", axes=AXES, kind="loss", form="powerlaw", budget=QUERY, cost="6nd")
    assert rep.budget.consistency.fires and "does not fit these sweeps" in rep.budget.summary()
    df["flops"] = df["budget"]
    rep = scaling.project(df, y="loss", axes=AXES, kind="loss", form="powerlaw", budget=QUERY, cost="6nd",
                          budget_column="flops")
    assert rep.budget.consistency.budgets_from == "column 'flops'" and rep.budget.consistency.fires


# -- the command line -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kaplan_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("isoflop") / "sweep.csv"
    sweep("kaplan", seed=2).to_csv(path, index=False)
    return path


def cli(csv: Path, *extra: str) -> list[str]:
    return ["project", "--data", str(csv), "--y", "loss", "--axes", "params,tokens", "--kind", "loss",
            "--budget", "1e21", "--cost", "6nd", *extra]


def test_cli_method_isoflop_json(kaplan_csv: Path, tmp_path: Path) -> None:
    out = ok_json(tmp_path / "db.sqlite", *cli(kaplan_csv, "--method", "isoflop", "--bootstrap", "50"))
    assert out["schema"] == "scaling.compute_optimal/v1" and [m["method"] for m in out["methods"]] == ["isoflop"]
    iso = out["methods"][0]
    truth = LossLaw.of("kaplan").n_opt(QUERY)
    lo, hi = iso["intervals"]["n_opt"]["intervals"]["0.95"].values()
    assert lo <= truth <= hi and iso["n_resamples"] == 50 and iso["resampling"] == "points within budgets"
    assert len(iso["fit"]["parabolas"]) == 6 and out["budgets_from"] == "cost 6*params*tokens within 10%"


def test_cli_budget_table_says_the_law_does_not_fit(kaplan_csv: Path, tmp_path: Path) -> None:
    res = invoke(tmp_path / "db.sqlite", *cli(kaplan_csv, "--form", "powerlaw"))
    assert res.exit_code == 0, res.output
    assert "IsoFLOP check" in res.stdout and "fires (" in res.stdout
    assert "the law does not fit these sweeps" in " ".join(res.stdout.split())
    out = json.loads(invoke(tmp_path / "db.sqlite", *cli(kaplan_csv, "--form", "powerlaw"), "--json").stdout)
    assert out["budget"]["consistency"]["fires"] is True and out["budget"]["consistency"]["bias_decades"] < -0.1


def test_cli_method_errors_are_one_line(kaplan_csv: Path, tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"
    res = invoke(db, "project", "--data", str(kaplan_csv), "--y", "loss", "--axes", "params,tokens", "--kind",
                 "loss", "--method", "isoflop")
    assert res.exit_code == 2 and "give --budget" in res.stderr
    assert "unknown method" in one_line_error(invoke(db, *cli(kaplan_csv, "--method", "approach4")))
    assert "envelope:" in one_line_error(invoke(db, *cli(kaplan_csv, "--method", "envelope", "--bootstrap", "5")))
    assert "not in the table" in one_line_error(invoke(db, *cli(kaplan_csv, "--method", "isoflop",
                                                                  "--budget-column", "flops")))


@pytest.mark.slow
def test_isoflop_intervals_cover_the_truth_across_sweeps() -> None:
    """Over 40 seeded sweeps of each law, the 95% interval of N*(1e21) covers the truth in most (within-budget
    resampling of 9 points is not exact: at least 80%)."""
    for law in ("chinchilla", "kaplan"):
        truth = LossLaw.of(law).n_opt(QUERY)
        hits = [inside(scaling.compute_optimal(sweep(law, seed=s), QUERY, y="loss", axes=AXES, cost="6nd",
                                               method="isoflop", n_boot=200, seed=s).answer("isoflop"),
                       "n_opt", truth) for s in range(40)]
        assert np.mean(hits) >= 0.8, (law, np.mean(hits))


def test_the_isoflop_figure_draws_every_budget_and_each_methods_line(kaplan: scaling.ComputeOptimalResult,
                                                                     kaplan_csv: Path, tmp_path: Path) -> None:
    from scaling import plots

    data = plots.isoflop_data(kaplan)
    assert len(data.budgets) == 6 and all(b["kept"] for b in data.budgets)
    iso = kaplan.answer("isoflop")
    line = next(m for m in data.lines if m["method"] == "isoflop")
    assert line["n"][-1] == pytest.approx(iso.n_opt, rel=1e-12) and line["c"][-1] == pytest.approx(QUERY)
    assert len(data.checked) == 6 and "does not fit these sweeps" in data.check
    axes = kaplan.plot()
    assert len(axes) == 2 and axes[1].get_yscale() == "log" and axes[0].get_xlabel() == "params (model size)"
    out = ok_json(tmp_path / "db.sqlite", "plot", "isoflop", "--data", str(kaplan_csv), "--y", "loss", "--cost",
                  "6nd", "--method", "isoflop", "--bootstrap", "20", "--out", str(tmp_path / "iso.png"))
    assert out["schema"] == "scaling.plot.isoflop/v1" and (tmp_path / "iso.png").stat().st_size > 0
    assert out["budget"] == pytest.approx(3e20, rel=1e-9)  # the largest training budget by default
    assert [m["method"] for m in out["methods"]] == ["isoflop"]
    res = invoke(tmp_path / "db.sqlite", "plot", "isoflop", "--y", "loss", "--out", str(tmp_path / "x.png"))
    assert "give --data" in one_line_error(res)


def test_compare_checks_every_forms_allocation_when_given_a_cost(kaplan_csv: Path, tmp_path: Path) -> None:
    df = pd.read_csv(kaplan_csv)
    res = scaling.compare(df, ["powerlaw"], y="loss", axes=AXES, kind="loss", n_boot=0, cost="6nd", rolling_axis=None)
    assert res.isoflop_checks["powerlaw"].fires and "does not fit these sweeps" in res.summary()
    assert "isoflop_checks" not in scaling.compare(df, ["powerlaw"], y="loss", axes=AXES, kind="loss", n_boot=0,
                                                   rolling_axis=None).to_dict()
    out = ok_json(tmp_path / "db.sqlite", "compare", "--data", str(kaplan_csv), "--y", "loss", "--axes",
                  "params,tokens", "--kind", "loss", "--forms", "powerlaw", "--bootstrap", "0", "--cost", "6nd",
                  "--rolling", "none")
    assert out["isoflop_checks"]["powerlaw"]["fires"] is True
