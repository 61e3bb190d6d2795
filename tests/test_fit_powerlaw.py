"""powerlaw / powerlaw_chance: known-parameter recovery, a Chinchilla-like loss table, bounds, output."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pandas as pd
import pytest

from scaling.forms.result import fit
from scaling.forms.varpro import solve_chance, solve_powerlaw

# Amplitudes in raw units: 2.0 and 1.5 at the smallest grid value, 0.1 of that scale.
TRUE2 = {"E": 0.3, "A_n": 0.2 * 1e7**0.35, "alpha_n": 0.35, "A_d": 0.15 * 1e2**0.25, "alpha_d": 0.25}
CHINCHILLA = {"E": 1.69, "A_n_params": 406.4, "alpha_n_params": 0.34, "A_tokens": 410.7, "alpha_tokens": 0.28}


def grid2(nn: int = 12, nd: int = 10) -> pd.DataFrame:
    """Two axes spanning three decades each."""
    rows = product(np.geomspace(1e7, 1e10, nn), np.geomspace(1e2, 1e5, nd))
    return pd.DataFrame(list(rows), columns=["n", "d"])


def additive(df: pd.DataFrame, p: dict[str, float], axes: list[str]) -> np.ndarray:
    return p["E"] + sum(p[f"A_{a}"] * df[a].to_numpy() ** -p[f"alpha_{a}"] for a in axes)


def noisy(err: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return err * np.exp(sigma * np.random.default_rng(seed).standard_normal(len(err)))


def assert_params(got: pd.Series, want: dict[str, float], rel: float) -> None:
    assert set(got.index) == set(want)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=rel), k


def test_powerlaw_exact_recovery_two_axes() -> None:
    df = grid2()
    df["acc"] = 1 - additive(df, TRUE2, ["n", "d"])
    r = fit(df, "powerlaw", y="acc", axes=["n", "d"])
    assert_params(r.params, TRUE2, 1e-6)
    assert r.converged and r.at_bound == () and r.objective < 1e-15
    assert r.ceiling == pytest.approx(0.7, rel=1e-9)  # accuracy -> 1 - E
    assert r.stats["max_abs"] < 1e-9 and r.stats["n_params"] == 5
    assert r.options["huber_delta"] == 1e-3 and r.options["grid_evaluations"] == 101**2


def test_powerlaw_noisy_recovery_two_axes() -> None:
    df = grid2()
    df["acc"] = 1 - noisy(additive(df, TRUE2, ["n", "d"]), 0.01, seed=1)
    r = fit(df, "powerlaw", y="acc", axes=["n", "d"])
    assert r.converged
    assert r.params["E"] == pytest.approx(0.3, abs=0.02)
    assert r.params["alpha_n"] == pytest.approx(0.35, abs=0.04)
    assert r.params["alpha_d"] == pytest.approx(0.25, abs=0.04)
    assert r.stderr is not None and all(np.isfinite(list(r.stderr.values())))
    assert r.stats["rmse"] < 0.01 and r.stats["r2"] > 0.95


def test_powerlaw_three_axes_exact_and_noisy() -> None:
    rows = product(np.geomspace(1e7, 1e9, 6), np.geomspace(1e2, 1e4, 5), [112.0, 224.0, 448.0, 952.0])
    df = pd.DataFrame(list(rows), columns=["n", "d", "r"])
    truth = {"E": 0.2, "A_n": 10.0, "alpha_n": 0.3, "A_d": 1.0, "alpha_d": 0.4, "A_r": 3.0, "alpha_r": 0.5}
    err = additive(df, truth, ["n", "d", "r"])
    df["acc"] = 1 - err
    r = fit(df, "powerlaw", y="acc", axes=["n", "d", "r"])
    assert_params(r.params, truth, 1e-6)
    df["acc"] = 1 - noisy(err, 0.005, seed=2)
    r = fit(df, "powerlaw", y="acc", axes=["n", "d", "r"])
    for a in "ndr":
        assert r.params[f"alpha_{a}"] == pytest.approx(truth[f"alpha_{a}"], abs=0.1)
    assert r.params["E"] == pytest.approx(0.2, abs=0.03)


def chinchilla_table() -> pd.DataFrame:
    rows = product(np.geomspace(7e7, 1.6e10, 16), np.geomspace(5e9, 5e11, 15))
    df = pd.DataFrame(list(rows), columns=["n_params", "tokens"])
    df["loss"] = additive(df, CHINCHILLA, ["n_params", "tokens"])
    return df


def test_chinchilla_loss_table_recovers_its_parameters() -> None:
    df = chinchilla_table()
    r = fit(df, "powerlaw", y="loss", axes=["n_params", "tokens"], kind="loss")
    assert_params(r.params, CHINCHILLA, 1e-6)
    assert r.ceiling == pytest.approx(1.69)  # loss -> E
    # With 1% noise the exponents stay close and the extrapolation to 10x N and D is within 2%.
    df["loss"] = noisy(df["loss"].to_numpy(), 0.01, seed=5)
    r = fit(df, "powerlaw", y="loss", axes=["n_params", "tokens"], kind="loss")
    assert r.params["alpha_n_params"] == pytest.approx(0.34, abs=0.03)
    assert r.params["alpha_tokens"] == pytest.approx(0.28, abs=0.05)
    far = pd.DataFrame({"n_params": [1.6e11], "tokens": [5e12]})
    assert r.predict(far)[0] == pytest.approx(additive(far, CHINCHILLA, ["n_params", "tokens"])[0], rel=0.02)


def chance_err(df: pd.DataFrame, E: float, c: float) -> np.ndarray:
    s = 2.0 * (df["n"] / 1e7) ** -0.4 + 1.5 * (df["d"] / 1e2) ** -0.3
    return (E + (c - E) * s / (1 + s)).to_numpy()


def test_powerlaw_chance_exact_and_noisy() -> None:
    df = grid2(8, 8)
    c = 0.999
    df["acc"] = 1 - chance_err(df, 0.2, c)
    r = fit(df, "powerlaw_chance", y="acc", axes=["n", "d"], chance=c)
    want = {"E": 0.2, "A_n": 2.0 * 1e7**0.4, "alpha_n": 0.4, "A_d": 1.5 * 1e2**0.3, "alpha_d": 0.3}
    assert_params(r.params, want, 1e-6)
    assert r.options["chance"] == c and r.ceiling == pytest.approx(0.8)
    tiny = r.predict({"n": 1.0, "d": 1.0})
    assert 1 - tiny == pytest.approx(c, abs=1e-3)  # error -> chance for tiny models and data
    df["acc"] = 1 - noisy(chance_err(df, 0.2, c), 0.01, seed=3)
    r = fit(df, "powerlaw_chance", y="acc", axes=["n", "d"], chance=c)
    assert r.converged and r.params["E"] == pytest.approx(0.2, abs=0.05)
    assert r.params["alpha_n"] == pytest.approx(0.4, abs=0.06)
    # It fits its own data better than the additive law does.
    additive_fit = fit(df, "powerlaw", y="acc", axes=["n", "d"])
    assert r.objective < additive_fit.objective


def test_chance_needs_a_chance_for_loss_and_defaults_to_one_for_accuracy() -> None:
    df = grid2(6, 6)
    df["acc"] = 1 - chance_err(df, 0.2, 0.95)
    assert fit(df, "powerlaw_chance", y="acc", axes=["n", "d"]).options["chance"] == 1.0


def test_zero_amplitude_is_reported_at_bound() -> None:
    df = grid2(8, 8)
    df["acc"] = 1 - (0.3 + 0.2 * 1e7**0.35 * df["n"] ** -0.35)  # d has no effect
    r = fit(df, "powerlaw", y="acc", axes=["n", "d"])
    assert "A_d" in r.at_bound or "alpha_d" in r.at_bound
    assert r.params["A_d"] == 0.0 and r.params["E"] == pytest.approx(0.3, rel=1e-6)
    assert any("A_d = 0" in n for n in r.notes)


def test_zero_exponent_is_reported_at_bound() -> None:
    df = grid2(8, 8)
    df["loss"] = 0.3 + 2.0 * (df["n"] / 1e7) ** -0.35 + 0.5 * (df["d"] / 1e2) ** 0.0
    r = fit(df, "powerlaw", y="loss", axes=["n", "d"], kind="loss")
    assert {"A_d", "alpha_d"} & set(r.at_bound)
    assert r.ceiling == pytest.approx(0.8, rel=1e-6)  # the constant term is part of the limit
    assert r.params["E"] == pytest.approx(0.8, rel=1e-6)  # folded into E


def test_zero_floor_is_reported_at_bound() -> None:
    df = grid2(8, 8)
    df["loss"] = 2.0 * (df["n"] / 1e7) ** -0.35 + 0.5 * (df["d"] / 1e2) ** -0.2
    r = fit(df, "powerlaw", y="loss", axes=["n", "d"], kind="loss")
    assert "E" in r.at_bound and r.params["E"] == 0.0
    assert r.stderr is not None and np.isnan(r.stderr["E"]) and np.isfinite(r.stderr["alpha_n"])


def test_predict_shapes_interval_none_and_json() -> None:
    df = grid2(6, 6)
    df["acc"] = 1 - additive(df, TRUE2, ["n", "d"])
    r = fit(df, "powerlaw", y="acc", axes=["n", "d"], huber_delta=1e-2, grid_points=41)
    assert np.ndim(r.predict({"n": 1e9, "d": 1e3})) == 0
    assert r.predict({"n": [1e8, 1e9, 1e10], "d": 1e3}).shape == (3,)
    assert r.predict(df).shape == (36,)
    assert r.predict_interval(df) is None
    d = r.describe()
    json.dumps(d, allow_nan=False)
    assert d["schema"] == "scaling.fit/v1" and d["options"]["huber_delta"] == 1e-2
    assert d["family"] == "powerlaw" and d["axis_ranges"]["n"] == [1e7, 1e10]


def test_numpy_core_is_usable_directly() -> None:
    df = chinchilla_table()
    X = df[["n_params", "tokens"]].to_numpy()
    sol = solve_powerlaw(X, df["loss"].to_numpy())
    assert sol.converged and sol.E == pytest.approx(1.69, rel=1e-6)
    assert sol.alpha == pytest.approx([0.34, 0.28], rel=1e-6)
    ch = solve_chance(X, df["loss"].to_numpy(), chance=10.0, init=sol)
    assert ch.converged and ch.objective <= sol.objective + 1.0  # a different law, still a sane fit


def test_weights_scale_free_and_effective() -> None:
    df = grid2(6, 6)
    df["acc"] = 1 - noisy(additive(df, TRUE2, ["n", "d"]), 0.01, seed=4)
    base = fit(df, "powerlaw", y="acc", axes=["n", "d"])
    df["w"] = 3.0
    same = fit(df, "powerlaw", y="acc", axes=["n", "d"], weights="w")
    assert dict(same.params) == pytest.approx(dict(base.params), rel=1e-4)
    df["w"] = np.where(df["n"] > 1e9, 100.0, 1.0)
    tilted = fit(df, "powerlaw", y="acc", axes=["n", "d"], weights="w")
    big = df["n"] > 1e9
    # The fit works on log error; with Huber's delta of 1e-3 it is nearly L1 there, and with one free
    # offset per model size the summed absolute residuals of the heavy rows tie exactly, so compare
    # squared log errors, which the up-weighting must reduce.
    log_err = lambda r: np.log(1 - r.predict(df)) - np.log(1 - df["acc"])  # noqa: E731
    assert (log_err(tilted)[big] ** 2).sum() < 0.99 * (log_err(base)[big] ** 2).sum()
    assert tilted.params["alpha_n"] != pytest.approx(base.params["alpha_n"], rel=1e-3)
