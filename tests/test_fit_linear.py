"""poly1/poly2/logit1/logit2: exact recovery, noise, aliased terms, confidence vs prediction bands."""

from __future__ import annotations

import json
from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from scaling.forms.result import fit

AXES = ["n_params", "hours", "px"]


def grid3() -> pd.DataFrame:
    rows = list(product(np.geomspace(2e7, 6e8, 4), np.geomspace(100, 5000, 4), [112.0, 224.0, 448.0]))
    return pd.DataFrame(rows, columns=AXES)


def surface(df: pd.DataFrame, degree: int) -> tuple[np.ndarray, dict[str, float]]:
    L = {a: np.log10(df[a].to_numpy()) for a in AXES}
    p = {"const": -2.0, "log10(n_params)": 0.21, "log10(hours)": 0.12, "log10(px)": 0.3}
    if degree == 2:
        p.update({"log10(n_params)^2": -0.011, "log10(hours)^2": -0.007, "log10(px)^2": -0.05})
        p.update({"log10(n_params)*log10(hours)": 0.004, "log10(n_params)*log10(px)": 0.006})
        p.update({"log10(hours)*log10(px)": -0.003})
    z = np.full(len(df), p["const"])
    for name, coef in p.items():
        if name == "const":
            continue
        terms = name.replace("^2", "").split("*")
        val = np.ones(len(df))
        for t in terms:
            val = val * L[t[len("log10(") : -1]]
        z = z + coef * (val**2 if name.endswith("^2") else val)
    return z, p


@pytest.mark.parametrize("form", ["poly1", "poly2", "logit1", "logit2"])
def test_exact_recovery(form: str) -> None:
    df = grid3()
    degree = 2 if form.endswith("2") else 1
    z, truth = surface(df, degree)
    df["acc"] = expit(z) if form.startswith("logit") else z
    # poly forms model any y (here outside (0, 1), so kind='loss'); logit forms need accuracies.
    r = fit(df, form, y="acc", axes=AXES, kind="accuracy" if form.startswith("logit") else "loss")
    assert set(r.params.index) == set(truth)
    for name, value in truth.items():
        assert r.params[name] == pytest.approx(value, rel=1e-6, abs=1e-9)
    assert r.converged and r.stats["rmse"] < 1e-9 and r.ceiling is None and r.notes == ()
    assert r.stats["n_params"] == len(truth)
    json.dumps(r.to_dict(), allow_nan=False)
    assert r.to_dict()["fit"] == r.describe()
    assert r.to_dict()["schema"] == "scaling.fit/v1"


def test_noisy_recovery_and_bands() -> None:
    rng = np.random.default_rng(1)
    df = grid3()
    z, truth = surface(df, 1)
    df["acc"] = expit(z + 0.02 * rng.standard_normal(len(df)))
    r = fit(df, "logit1", y="acc", axes=AXES)
    for name, value in truth.items():
        assert abs(r.params[name] - value) < 4 * r.stderr[name] + 1e-3
    X = {"n_params": [1e8, 2.5e9], "hours": [1000, 20000], "px": 224}
    lo_c, hi_c = r.predict_interval(X, level=0.95, kind="confidence")
    lo_p, hi_p = r.predict_interval(X, level=0.95, kind="prediction")
    mid = r.predict(X)
    assert mid.shape == (2,)
    assert np.all((lo_p < lo_c) & (lo_c < mid) & (mid < hi_c) & (hi_c < hi_p))
    assert np.all((lo_p > 0) & (hi_p < 1))  # the logit band maps back inside (0, 1)
    narrow = r.predict_interval(X, level=0.5)
    assert narrow is not None and np.all(narrow[1] - narrow[0] < hi_c - lo_c)


def test_poly_bands_and_weights() -> None:
    rng = np.random.default_rng(2)
    df = grid3()
    z, _ = surface(df, 1)
    df["acc"] = 0.5 + 0.1 * z + 0.01 * rng.standard_normal(len(df))
    df["w"] = rng.uniform(0.5, 2.0, len(df))
    ols = fit(df, "poly1", y="acc", axes=AXES)
    wls = fit(df, "poly1", y="acc", axes=AXES, weights="w")
    assert ols.message.startswith("OLS") and wls.message.startswith("WLS")
    assert not ols.params.equals(wls.params)
    assert any("weighted by column 'w'" in n for n in wls.notes)
    lo, hi = ols.predict_interval({"n_params": 1e8, "hours": 1e3, "px": 224}, kind="prediction")
    assert lo.shape == () and lo < ols.predict({"n_params": 1e8, "hours": 1e3, "px": 224}) < hi


def test_aliased_interaction_is_dropped_with_a_note() -> None:
    # As in the humanlike-ViTs grid: resolution varies only for the largest model.
    rows = [(n, h, 224.0) for n, h in product([2.2e7, 8.6e7, 3.0e8, 6.3e8], [100, 300, 1000, 3000, 10000])]
    rows += [(6.3e8, h, px) for h, px in product([100, 1000, 10000], [448.0, 952.0])]
    df = pd.DataFrame(rows, columns=AXES)
    rng = np.random.default_rng(3)
    z, _ = surface(df, 2)
    df["acc"] = 0.5 + 0.05 * z + 0.001 * rng.standard_normal(len(df))
    r = fit(df, "poly2", y="acc", axes=AXES)
    assert "log10(n_params)*log10(px)" not in r.params
    assert any("dropped aliased term 'log10(n_params)*log10(px)'" in n for n in r.notes)
    assert r.stats["n_params"] == 9 and np.isfinite(list(r.stderr.values())).all()
    assert np.all(np.isfinite(r.predict(df)))
