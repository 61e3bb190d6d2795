"""A fit answers as a statsmodels results object does (issue 21): ``params`` and ``bse`` as Series,
``conf_int(alpha=0.05)``, ``predict`` indexed like its input, ``get_prediction(X).summary_frame(alpha=...)``,
``resid``, ``fittedvalues``, ``nobs``, ``df_resid``, ``llf``, ``aic``, ``bic``, ``rsquared`` and ``cov_params()``.

References are independent: statsmodels' own OLS on a design the test builds (the linear form ``poly1`` is that
OLS), the closed-form gradient of a power law for the delta method, and the bootstrap's own parameter samples
pushed through the law's formula for bootstrap prediction intervals.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

import scaling
from scaling.errors import FitError

AXES = ["n_params", "data_hours", "image_px"]


@pytest.fixture(scope="module")
def runs(published_db_path: Path) -> pd.DataFrame:
    return scaling.load_runs(published_db_path)


@pytest.fixture(scope="module")
def poly1(runs: pd.DataFrame) -> scaling.FitResult:
    return scaling.fit(runs, form="poly1", metric="top5")


@pytest.fixture(scope="module")
def ols(poly1: scaling.FitResult) -> tuple[np.ndarray, object]:
    """statsmodels' OLS of the same rows on const + log10 of each axis, built here from the data."""
    data = poly1.data
    assert data is not None
    exog = np.column_stack([np.ones(len(data)), *(np.log10(data[a].to_numpy(dtype=float)) for a in AXES)])
    return exog, sm.OLS(data["value"].to_numpy(dtype=float), exog).fit()


def test_params_and_bse_are_series_in_the_forms_order(poly1: scaling.FitResult, ols: tuple) -> None:
    _, res = ols
    assert isinstance(poly1.params, pd.Series) and isinstance(poly1.bse, pd.Series)
    assert list(poly1.params.index) == ["const", *(f"log10({a})" for a in AXES)]
    assert poly1.params.to_numpy() == pytest.approx(res.params, rel=1e-10)
    assert poly1.bse.to_numpy() == pytest.approx(res.bse, rel=1e-10)
    assert poly1.cov_params().to_numpy() == pytest.approx(res.cov_params(), rel=1e-10)
    # the JSON is unchanged: params print as a plain object of floats
    assert poly1.to_dict()["fit"]["params"] == {k: float(v) for k, v in poly1.params.items()}


def test_residual_statistics_match_statsmodels(poly1: scaling.FitResult, ols: tuple) -> None:
    """llf, R^2, nobs and df_resid are statsmodels'; AIC and BIC count the residual variance as a parameter
    (documented), so they are statsmodels' + 2 and + ln n."""
    _, res = ols
    assert poly1.nobs == res.nobs == 78 and poly1.df_resid == res.df_resid
    assert poly1.llf == pytest.approx(res.llf, rel=1e-10)
    assert poly1.rsquared == pytest.approx(res.rsquared, rel=1e-10)
    assert poly1.aic == pytest.approx(res.aic + 2, rel=1e-10)
    assert poly1.bic == pytest.approx(res.bic + math.log(res.nobs), rel=1e-10)
    assert poly1.resid.to_numpy() == pytest.approx(res.resid, abs=1e-12)
    assert poly1.fittedvalues.to_numpy() == pytest.approx(res.fittedvalues, rel=1e-12)
    assert poly1.resid.index.equals(poly1.data.index)


def test_conf_int_takes_alpha_and_refuses_a_bare_small_number(poly1: scaling.FitResult, ols: tuple) -> None:
    _, res = ols
    ci = poly1.conf_int(alpha=0.05)
    assert ci.to_numpy() == pytest.approx(res.conf_int(alpha=0.05), rel=1e-10)
    assert poly1.conf_int(0.95).equals(ci) and poly1.conf_int(level=0.95).equals(ci) and poly1.conf_int().equals(ci)
    assert poly1.conf_int(alpha=0.1).to_numpy() == pytest.approx(res.conf_int(alpha=0.1), rel=1e-10)
    assert "Wald" in ci.attrs["method"]
    with pytest.raises(FitError) as err:
        poly1.conf_int(0.05)
    message = str(err.value)
    assert "\n" not in message and "alpha=0.05" in message and "95%" in message
    assert poly1.conf_int(level=0.05)["lower"].iloc[0] > ci["lower"].iloc[0]  # a 5% interval when asked for
    with pytest.raises(FitError):
        poly1.conf_int(alpha=0.05, level=0.95)


def test_predict_returns_a_series_indexed_like_its_input(poly1: scaling.FitResult, runs: pd.DataFrame) -> None:
    X = pd.DataFrame({"n_params": [6.32e8, 2.5e9], "data_hours": [4989.0, 20000.0], "image_px": [476.0, 952.0]},
                     index=["largest run", "paper scenario"])
    pred = poly1.predict(X)
    assert isinstance(pred, pd.Series) and list(pred.index) == ["largest run", "paper scenario"]
    arrays = poly1.predict({a: X[a].to_numpy() for a in AXES})  # a mapping of columns: an array, as before
    assert isinstance(arrays, np.ndarray) and pred.to_numpy() == pytest.approx(arrays, rel=0)
    assert f"{pred['paper scenario']:.4f}" == "0.8577"  # the README's 85.8% at 2.5B / 20,000 h / 952 px


def test_get_prediction_of_a_linear_form_is_statsmodels(poly1: scaling.FitResult, ols: tuple) -> None:
    exog, res = ols
    X = poly1.data.iloc[[0, 30, 77]]
    pred = poly1.get_prediction(X)
    assert pred.method == "closed form"
    frame = pred.summary_frame(alpha=0.1)
    ref = res.get_prediction(exog[[0, 30, 77]]).summary_frame(alpha=0.1)
    for col in ("mean", "mean_ci_lower", "mean_ci_upper", "obs_ci_lower", "obs_ci_upper"):
        assert frame[col].to_numpy() == pytest.approx(ref[col].to_numpy(), rel=1e-10), col
    assert list(frame.index) == list(X.index) and "closed form" in frame.attrs["method"]
    # the delta method of a linear surface is its exact band (central differences of a linear function)
    delta = poly1.get_prediction(X, method="delta").summary_frame(alpha=0.1)
    assert delta["mean_se"].to_numpy() == pytest.approx(ref["mean_se"].to_numpy(), rel=1e-6)
    assert delta["mean_ci_upper"].to_numpy() == pytest.approx(ref["mean_ci_upper"].to_numpy(), rel=1e-8)


def _chinchilla_table(sigma: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.logspace(7, 9, 6), np.logspace(9, 11, 6))
    n, d = n.ravel(), d.ravel()
    loss = 1.69 + 406.4 * n**-0.34 + 410.7 * d**-0.28
    return pd.DataFrame({"params": n, "tokens": d, "loss": loss * np.exp(rng.normal(0.0, sigma, n.size))})


def test_delta_method_of_a_power_law_uses_its_gradient() -> None:
    """The built-in power law without a bootstrap: se(y) = sqrt(g' C g) with the law's analytic gradient."""
    table = _chinchilla_table(0.01)
    fit = scaling.fit(table, y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw")
    X = pd.DataFrame({"params": [1e9, 1e10], "tokens": [1e11, 1e12]})
    pred = fit.get_prediction(X)
    assert pred.method == "delta"
    p = fit.params
    cov = fit.cov_params()
    N, D = X["params"].to_numpy(), X["tokens"].to_numpy()
    grads = {"E": np.ones(2),
             "A_params": N ** -p["alpha_params"], "alpha_params": -p["A_params"] * np.log(N) * N ** -p["alpha_params"],
             "A_tokens": D ** -p["alpha_tokens"], "alpha_tokens": -p["A_tokens"] * np.log(D) * D ** -p["alpha_tokens"]}
    g = np.column_stack([grads[str(k)] for k in cov.index])
    se = np.sqrt(np.einsum("ij,jk,ik->i", g, cov.to_numpy(), g))
    frame = pred.summary_frame(alpha=0.05)
    assert frame["mean_se"].to_numpy() == pytest.approx(se, rel=1e-5)
    from scipy.stats import t

    q = t.ppf(0.975, fit.df_resid)
    assert frame["mean_ci_upper"].to_numpy() == pytest.approx(frame["mean"].to_numpy() + q * se, rel=1e-6)


def test_bootstrap_intervals_after_a_bootstrap(runs: pd.DataFrame) -> None:
    """With resamples, conf_int and get_prediction are percentile intervals over them, and a nonlinear form's
    predict_interval is no longer None."""
    fit = scaling.fit(runs, form="powerlaw", metric="top5", n_boot=30, seed=2)
    samples = fit.bootstrap.samples
    ci = fit.conf_int(alpha=0.1)
    assert "bootstrap" in ci.attrs["method"]
    for name in fit.params.index:
        lo, hi = fit.bootstrap.params[name].intervals[0.9]
        assert ci.loc[name, "lower"] == pytest.approx(lo, rel=1e-12, abs=1e-300)
        assert ci.loc[name, "upper"] == pytest.approx(np.quantile(samples[name], 0.95), rel=1e-12, abs=1e-300)
        assert ci.loc[name, "upper"] == pytest.approx(hi, rel=1e-12, abs=1e-300)
    assert "Wald" in fit.conf_int(alpha=0.1, method="wald").attrs["method"]
    X = pd.DataFrame({"n_params": [2.5e9], "data_hours": [20000.0], "image_px": [952.0]})
    pred = fit.get_prediction(X)
    assert pred.method == "bootstrap"
    # each resample's prediction from its parameters, by the law's formula: acc = 1 - (E + sum_k A_k x_k^-a_k)
    err = samples["E"] + sum(samples[f"A_{a}"] * float(X[a].iloc[0]) ** -samples[f"alpha_{a}"] for a in AXES)
    frame = pred.summary_frame(alpha=0.05)
    assert frame["mean_ci_lower"].iloc[0] == pytest.approx(np.quantile(1 - err, 0.025), rel=1e-10)
    assert frame["mean_ci_upper"].iloc[0] == pytest.approx(np.quantile(1 - err, 0.975), rel=1e-10)
    band = fit.predict_interval(X, level=0.95)
    assert band is not None and band[0][0] == pytest.approx(frame["mean_ci_lower"].iloc[0], rel=1e-12)
    assert fit.predict_interval(X, level=0.95, kind="prediction") is None  # no new-run band from resamples
    plain = scaling.fit(runs, form="powerlaw", metric="top5")
    assert plain.predict_interval(X) is None and plain.get_prediction(X).method == "delta"
