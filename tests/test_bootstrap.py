"""Run-clustered bootstrap: resampling units, fast refits against full refits, seeds, failures, coverage."""

from __future__ import annotations

import math
from itertools import product

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from scaling.errors import ScalingError
from scaling.forms.result import fit
from scaling.forms.varpro import solve_powerlaw, solve_warm
from scaling.questions.derived import projection_quantities
from scaling.uncertainty.bootstrap import (
    bootstrap,
    group_codes,
    make_refitter,
    quantile,
    resample_indices,
)

AXES = ["n", "d"]


def linear_grid(seed: int, sigma: float = 0.01, reps: int = 2) -> pd.DataFrame:
    """acc = 0.1 + 0.05 log10 n + 0.04 log10 d + noise; 5 x 5 grid, ``reps`` runs per point."""
    rows = list(product(np.geomspace(1e7, 1e9, 5), np.geomspace(1.0, 1e3, 5), range(reps)))
    df = pd.DataFrame(rows, columns=["n", "d", "rep"])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    truth = 0.1 + 0.05 * np.log10(df["n"]) + 0.04 * np.log10(df["d"])
    df["acc"] = truth + sigma * np.random.default_rng(seed).standard_normal(len(df))
    return df


def powerlaw_grid(seed: int, sigma: float = 0.01, reps: int = 1) -> pd.DataFrame:
    """err = 0.2 + 3 n'^-0.3 + 0.4 d^-0.25 (n' = n / 1e7), multiplicative noise; 6 x 6 grid."""
    rows = list(product(np.geomspace(1e7, 1e9, 6), np.geomspace(1.0, 1e3, 6), range(reps)))
    df = pd.DataFrame(rows, columns=["n", "d", "rep"])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    err = 0.2 + 3.0 * (df["n"] / 1e7) ** -0.3 / 10 + 0.4 * df["d"] ** -0.25
    df["acc"] = 1 - err * np.exp(sigma * np.random.default_rng(seed).standard_normal(len(df)))
    return df


def test_quantile_matches_numpy_and_keeps_infinity() -> None:
    v = np.random.default_rng(0).standard_normal(101)
    for q in (0.05, 0.5, 0.975):
        assert quantile(v, q) == pytest.approx(np.quantile(v, q), abs=1e-15)
    assert quantile(np.array([1.0, 2.0, 3.0, math.inf]), 0.975) == math.inf
    assert quantile(np.array([1.0, 2.0, 3.0, math.inf]), 0.5) == pytest.approx(2.5)
    assert quantile(np.array([1.0, math.inf, math.inf]), 0.9) == math.inf


def test_resamples_keep_groups_whole() -> None:
    # 10 runs with 3 evaluations each (e.g. three epochs): a resample takes a run's rows together.
    df = pd.DataFrame({"run_id": np.repeat([f"r{i}" for i in range(10)], 3), "x": np.arange(30)})
    codes, cols = group_codes(df, "run_id")
    assert cols == ("run_id",) and codes.max() == 9
    for idx in resample_indices(codes, 50, seed=3):
        assert len(idx) == 30
        counts = pd.Series(df["run_id"].to_numpy()[idx]).value_counts()
        assert all(c % 3 == 0 for c in counts)  # whole groups only
        # the three rows of a run appear in the order they were stored, contiguously
        chunks = idx.reshape(-1, 3)
        assert np.all(np.diff(chunks, axis=1) == 1)


def test_resamples_are_the_drawn_groups_rows_in_turn() -> None:
    """Each resample is the rows of the groups one draw of the seeded generator chose, in the order drawn,
    each group's rows in their stored order; groups of unequal sizes, stored interleaved."""
    codes = np.array([2, 0, 2, 1, 0, 2, 3, 3])
    members = [np.flatnonzero(codes == g) for g in range(4)]
    rng = np.random.default_rng(11)
    want = [np.concatenate([members[g] for g in rng.integers(0, 4, 4)]) for _ in range(20)]
    got = resample_indices(codes, 20, seed=11)
    assert len(got) == 20 and all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    assert resample_indices(codes, 0, seed=11) == []


def test_group_by_several_columns_and_missing_column() -> None:
    df = pd.DataFrame({"frac": [0.1, 0.1, 0.1, 1.0], "seed": [1, 2, 1, 1]})
    codes, cols = group_codes(df, ["frac", "seed"])
    assert cols == ("frac", "seed") and list(codes) == [0, 1, 0, 2]
    with pytest.raises(ScalingError, match="bogus"):
        group_codes(df, "bogus")


def test_linear_fast_refit_equals_statsmodels_on_the_resample() -> None:
    df = linear_grid(0)
    full = fit(df, "poly1", y="acc", axes=AXES)
    refit = make_refitter(full, df, None, {})
    idx = resample_indices(np.arange(len(df)), 3, seed=1)[2]
    rep = refit(idx)
    X = sm.add_constant(np.log10(df[AXES].to_numpy()[idx]))
    ref = sm.OLS(df["acc"].to_numpy()[idx], X).fit().params
    assert list(rep.params.values()) == pytest.approx(list(ref), rel=1e-10)
    # and equal to our own full fit of the resampled frame
    again = fit(df.iloc[idx], "poly1", y="acc", axes=AXES)
    assert rep.params == pytest.approx(dict(again.params), rel=1e-10)


def test_logit_fast_refit_equals_full_fit() -> None:
    df = linear_grid(1)
    full = fit(df, "logit2", y="acc", axes=AXES)
    rep = make_refitter(full, df, None, {})(resample_indices(np.arange(len(df)), 1, seed=5)[0])
    idx = resample_indices(np.arange(len(df)), 1, seed=5)[0]
    again = fit(df.iloc[idx], "logit2", y="acc", axes=AXES)
    assert rep.params == pytest.approx(dict(again.params), rel=1e-8, abs=1e-10)


def test_warm_powerlaw_refit_reaches_the_cold_optimum() -> None:
    df = powerlaw_grid(2)
    X, err = df[AXES].to_numpy(), 1 - df["acc"].to_numpy()
    sol = solve_powerlaw(X, err)
    for idx in resample_indices(np.arange(len(df)), 3, seed=7):
        warm = solve_warm(X[idx], err[idx], sol)
        cold = solve_powerlaw(X[idx], err[idx])
        assert warm.converged
        # same objective (the cold VarPro grid is the reference), never meaningfully worse
        assert warm.objective <= cold.objective * (1 + 1e-6) + 1e-15


def test_warm_start_recovers_exact_parameters_on_noise_free_data() -> None:
    df = powerlaw_grid(0, sigma=0.0)
    X, err = df[AXES].to_numpy(), 1 - df["acc"].to_numpy()
    # start far from the truth: the screen has to find the basin
    start = solve_powerlaw(X, err * np.exp(0.05 * np.sin(np.arange(len(err)))))
    sol = solve_warm(X, err, start)
    assert sol.E == pytest.approx(0.2, rel=1e-5)
    assert sorted(sol.alpha) == pytest.approx([0.25, 0.3], rel=1e-5)


def test_same_seed_same_intervals_and_other_seed_differs() -> None:
    df = linear_grid(3)
    kw = {"y": "acc", "axes": AXES, "n_boot": 60, "group": "run_id"}
    a = bootstrap(df, "poly1", seed=11, **kw)
    b = bootstrap(df, "poly1", seed=11, **kw)
    c = bootstrap(df, "poly1", seed=12, **kw)
    assert a.to_dict()["params"] == b.to_dict()["params"]
    assert a.params["log10(n)"].intervals != c.params["log10(n)"].intervals
    assert a.n_ok == 60 and a.paths == {"linear": 60} and a.n_groups == len(df)


def test_worker_processes_give_the_same_resamples() -> None:
    df = linear_grid(6)
    derived = projection_quantities(0.5, reference={"n": 1e9, "d": 1e3}, at={"n": 3e9, "d": 3e3})
    one = bootstrap(df, "poly1", y="acc", axes=AXES, n_boot=80, seed=4, derived=derived)
    two = bootstrap(df, "poly1", y="acc", axes=AXES, n_boot=80, seed=4, derived=derived, workers=2)
    assert one.samples.keys() == two.samples.keys()
    for k in one.samples:
        assert np.array_equal(one.samples[k], two.samples[k], equal_nan=True), k
    assert one.probabilities == two.probabilities


def test_powerlaw_bootstrap_intervals_cover_truth_and_report_paths() -> None:
    df = powerlaw_grid(4, sigma=0.01)
    r = bootstrap(df, "powerlaw", y="acc", axes=AXES, n_boot=60, seed=0)
    assert r.n_ok + sum(r.failures.values()) == 60
    assert sum(r.paths.values()) == r.n_ok and set(r.paths) <= {"warm", "screen", "cold"}
    lo, hi = r.interval("E", 0.95)
    assert lo <= r.params["E"].estimate <= hi
    lo, hi = r.interval("ceiling", 0.9)
    assert 0.7 < lo <= hi < 0.9  # the true ceiling is 0.8
    d = r.to_dict()
    assert d["schema"] == "scaling.bootstrap/v1" and d["params"]["E"]["intervals"]["0.9"]["lower"] is not None


def test_failed_resamples_are_counted_with_their_reason() -> None:
    # Axis 'd' has a second value in one run only: every resample without that run cannot fit poly1.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"n": np.geomspace(1e7, 1e9, 8), "d": [1.0] * 7 + [10.0], "run_id": list("abcdefgh")})
    df["acc"] = 0.1 + 0.05 * np.log10(df["n"]) + 0.01 * rng.standard_normal(8)
    r = bootstrap(df, "poly1", y="acc", axes=AXES, n_boot=100, seed=1)
    assert r.n_failed == 100 - r.n_ok > 20  # P(run h absent) = (7/8)^8 = 34%
    assert list(r.failures) == ["fewer than 2 distinct values of 'd'"]
    assert any("could not be fitted" in note for note in r.notes)
    assert r.to_dict()["n_failed"] == r.n_failed


def test_too_few_groups_is_an_error() -> None:
    df = linear_grid(0)
    df["subset"] = df["rep"]
    with pytest.raises(ScalingError, match="at least 5 groups"):
        bootstrap(df, "poly1", y="acc", axes=AXES, n_boot=10, group="subset")


def test_projection_quantities_unreachable_is_infinite() -> None:
    df = powerlaw_grid(5, sigma=0.01)
    full = fit(df, "powerlaw", y="acc", axes=AXES)
    ref = {"n": 1e9, "d": 1e3}
    # target 0.79 sits just below the fitted ceiling (~0.8): some resamples cannot reach it
    derived = projection_quantities(0.795, reference=ref, at={"n": 1e10, "d": 1e4}, solve_axis="d")
    r = bootstrap(df, "powerlaw", y="acc", axes=AXES, n_boot=60, seed=2, derived=derived, full=full)
    p = r.probabilities["ceiling_passes_target"]
    assert 0 < p < 1
    assert r.derived["scale.factor"].n_infinite == pytest.approx((1 - r.probabilities["scale.reachable"]) * r.n_ok)
    lo, hi = r.interval("at.predicted", 0.9)
    assert lo < r.derived["at.predicted"].estimate < hi
    if r.derived["scale.factor"].n_infinite > 0.05 * r.n_ok:
        assert r.interval("scale.factor", 0.9)[1] == math.inf


def _coverage(form: str, replicates: int, n_boot: int, sigma: float, truth_at: float, at: dict, make) -> float:
    hits = 0
    for rep in range(replicates):
        df = make(100 + rep, sigma)
        derived = projection_quantities(None, reference={}, at=at, scale=False)
        r = bootstrap(df, form, y="acc", axes=AXES, n_boot=n_boot, seed=rep, derived=derived, levels=(0.9,))
        lo, hi = r.interval("at.predicted", 0.9)
        hits += lo <= truth_at <= hi
    return hits / replicates


def test_coverage_linear_fast() -> None:
    # Known truth: 0.1 + 0.05 log10(n) + 0.04 log10(d) at n = 3e9, d = 3e3 (half a decade beyond the grid).
    at = {"n": 3e9, "d": 3e3}
    truth = 0.1 + 0.05 * math.log10(3e9) + 0.04 * math.log10(3e3)
    cov = _coverage("poly1", 100, 200, 0.01, truth, at, lambda s, sg: linear_grid(s, sg))
    assert 0.80 <= cov <= 0.97, cov


@pytest.mark.slow
def test_coverage_powerlaw_slow() -> None:
    at = {"n": 3e9, "d": 3e3}
    truth = 1 - (0.2 + 3.0 * (3e9 / 1e7) ** -0.3 / 10 + 0.4 * 3e3**-0.25)
    cov = _coverage("powerlaw", 100, 200, 0.02, truth, at, lambda s, sg: powerlaw_grid(s, sg))
    assert 0.80 <= cov <= 0.97, cov
