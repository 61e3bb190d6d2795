"""A law from a plain function, as curve_fit and lmfit take one (issue 21): ``scaling.Form.from_function``.

The law is Chinchilla's (Hoffmann et al. 2022, approach 3: L = E + A/N^a + B/D^b with E=1.69, A=406.4,
a=0.34, B=410.7, b=0.28) on a grid the test draws, so every number has a known answer: the parameters, the
tokens a loss needs at a fixed size (solved in closed form below), and the held-out error of a law that is
the truth.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.errors import FitError
from scaling.forms import DuplicateFormError, get_form, list_forms, register_form, unregister_form

TRUTH = {"E": 1.69, "A": 406.4, "a": 0.34, "B": 410.7, "b": 0.28}
P0 = {"E": 2.0, "A": 300.0, "a": 0.3, "B": 300.0, "b": 0.3}
BOUNDS = {"E": (0.0, 10.0), "A": (0.0, None), "a": (0.0, 2.0), "B": (0.0, None), "b": (0.0, 2.0)}
FIT = {"y": "loss", "axes": ["params", "tokens"], "kind": "loss"}


def chinchilla(N: np.ndarray, D: np.ndarray, E: float, A: float, a: float, B: float, b: float) -> np.ndarray:
    return E + A / N**a + B / D**b


def make_law(name: str = "chinchilla_fn", **kw: object) -> scaling.Form:
    options: dict[str, object] = {"p0": P0, "bounds": BOUNDS, "kind": "loss", "name": name, "limit": "E", **kw}
    return scaling.Form.from_function(lambda N, D, E, A, a, B, b: E + A / N**a + B / D**b, **options)  # type: ignore[arg-type]


def table(sigma: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, d = np.meshgrid(np.logspace(7, 9, 6), np.logspace(9, 11, 6))
    n, d = n.ravel(), d.ravel()
    loss = chinchilla(n, d, **TRUTH)
    return pd.DataFrame({"params": n, "tokens": d, "loss": loss * np.exp(rng.normal(0.0, sigma, n.size)),
                         "run_id": [f"r{i}" for i in range(n.size)]})


@pytest.fixture(autouse=True)
def _forget_laws() -> object:
    yield
    for name in ("chinchilla_fn", "custom", "chinchilla"):
        try:
            unregister_form(name)
        except FitError:
            pass


def test_fit_recovers_a_known_law_without_registering() -> None:
    law = make_law()
    exact = scaling.fit(table(0.0), form=law, **FIT)
    assert dict(exact.params) == pytest.approx(TRUTH, rel=1e-6)
    assert exact.ceiling == exact.params["E"] and exact.direction.limit_name == "floor"
    assert law.name not in [f.name for f in list_forms()] and get_form(law.name) is law
    noisy = scaling.fit(table(0.01, seed=3), form=law, y="loss", axes=["params", "tokens"])  # kind: the law's
    assert noisy.converged and noisy.nobs == 36
    for k, v in TRUTH.items():  # the truth within 4 standard errors (curve_fit's covariance)
        assert abs(noisy.params[k] - v) < 4 * noisy.bse[k], k
    assert list(noisy.cov_params().index) == list(TRUTH)
    assert noisy.to_dict()["fit"]["family"] == "function"


def test_the_same_law_as_the_builtin_power_law() -> None:
    """Fitted on log y, the function form and the built-in powerlaw with a Huber delta above every residual
    (least squares of log y) minimise the same loss: the same optimum."""
    data = table(0.002, seed=5)
    law = make_law(scale="log")
    mine = scaling.fit(data, form=law, **FIT)
    builtin = scaling.fit(data, form="powerlaw", huber_delta=1.0, **FIT)
    ours = {"E": builtin.params["E"], "A": builtin.params["A_params"], "a": builtin.params["alpha_params"],
            "B": builtin.params["A_tokens"], "b": builtin.params["alpha_tokens"]}
    assert dict(mine.params) == pytest.approx(ours, rel=1e-4)


def test_bootstrap_backtest_compare_and_project_work_on_it() -> None:
    law = make_law()
    data = table(0.01, seed=1)
    boot = scaling.fit(data, form=law, n_boot=40, seed=1, **FIT)
    assert boot.bootstrap.n_ok == 40 and boot.bootstrap.paths == {"warm": 40}
    ci = boot.conf_int(alpha=0.01)
    assert all(ci.loc[k, "lower"] < v < ci.loc[k, "upper"] for k, v in TRUTH.items())
    # a law that is the truth predicts held-out larger runs to the noise (1% of a loss near 2-4)
    exact = table(0.0)
    bt = scaling.backtest(exact, [law, "powerlaw"], **FIT)
    assert set(bt.ranking) == {law.name, "powerlaw"} and bt.by_form[law.name].rmse < 1e-6
    skipped = scaling.backtest(exact, [law, "powerlaw"], y="loss", axes=["params", "tokens"])  # kind: accuracy
    assert law.name not in skipped.ranking
    assert {r.reason for r in skipped.results if r.form == law.name} == {
        f"form {law.name!r} is a law of a loss: fit it with kind='loss'"}
    cmp = scaling.compare(data, [law, "powerlaw"], n_boot=10, **FIT)
    row = next(r for r in cmp.rows if r.form == law.name)
    assert row.ok and row.interval is not None
    # project: the tokens a loss of 2.2 needs at the largest size, in closed form D = (B / (L - E - A/N^a))^(1/b)
    fit = scaling.fit(exact, form=law, **FIT)
    rep = scaling.project(fit, 2.2, [scaling.Solve("tokens")])
    n = exact["params"].max()
    p = TRUTH
    want = (p["B"] / (2.2 - p["E"] - p["A"] / n ** p["a"])) ** (1 / p["b"])
    answer = rep.answer("solve tokens")
    assert answer.reachable and answer.point["tokens"] == pytest.approx(want, rel=1e-5)
    below_floor = scaling.project(fit, 1.5, [scaling.Solve("tokens")]).answer("solve tokens")
    assert not below_floor.reachable  # under the floor E = 1.69: the form's limit says unreachable


def test_register_again_in_a_notebook_and_name_clashes() -> None:
    law = make_law("chinchilla")
    register_form(law)
    with pytest.raises(DuplicateFormError, match="replace=True"):
        register_form(make_law("chinchilla"))
    again = make_law("chinchilla")  # the cell run again
    register_form(again, replace=True)
    assert get_form("chinchilla") is again and [f.name for f in list_forms()].count("chinchilla") == 1
    with pytest.raises(FitError, match="another form is registered"):
        scaling.fit(table(0.0), form=make_law("chinchilla"), **FIT)  # a third object, not registered
    with pytest.raises(DuplicateFormError, match="built in"):
        register_form(make_law("powerlaw"), replace=True)
    assert get_form("powerlaw").family == "powerlaw"


def test_bad_laws_and_bad_fits_are_one_line_errors() -> None:
    fn = chinchilla
    cases = [
        (lambda: scaling.Form.from_function(fn), "say which arguments are parameters"),
        (lambda: scaling.Form.from_function(fn, p0={"E": 1, "A": 1}), "must be the last arguments"),
        (lambda: scaling.Form.from_function(fn, p0=[1, 1, 1, 1, 1, 1, 1]), "must be the last arguments"),
        (lambda: scaling.Form.from_function(fn, p0=P0, bounds={"Z": (0, 1)}), "unknown parameter"),
        (lambda: scaling.Form.from_function(fn, p0={**P0, "E": 20.0}, bounds=BOUNDS), "outside its bounds"),
        (lambda: scaling.Form.from_function(fn, p0=P0, kind="error-rate"), "kind must be"),
        (lambda: scaling.Form.from_function(fn, p0=P0, limit="F"), "not a parameter"),
        (lambda: scaling.fit(table(0.0), form=make_law(), y="loss", axes=["params", "tokens"], kind="accuracy"),
         "kind='loss'"),
        (lambda: scaling.fit(table(0.0), form=make_law(), y="loss", axes=["params"], kind="loss"), "takes 2 axes"),
    ]
    for call, words in cases:
        with pytest.raises(FitError) as err:
            call()
        assert words in str(err.value) and "\n" not in str(err.value), str(err.value)
    named = scaling.Form.from_function(fn, p0=[2, 300, 0.3, 300, 0.3], kind="loss")  # the last 5 arguments
    assert named.name == "chinchilla" and named.param_names(["n", "d"]) == list(TRUTH)


def test_saved_and_pickled_fits_of_a_function_form(tmp_path: Path) -> None:
    law = make_law()
    fit = scaling.fit(table(0.01), form=law, **FIT)
    fit.save(tmp_path / "fit.json")
    X = pd.DataFrame({"params": [1e10], "tokens": [1e12]})
    unregister_form(law.name)  # a new session: the function is not in the file
    with pytest.raises(FitError, match=r"forms=\[form\]"):
        scaling.load(tmp_path / "fit.json")
    loaded = scaling.load(tmp_path / "fit.json", forms=[law])
    assert loaded == fit and loaded.predict(X).iloc[0] == fit.predict(X).iloc[0]
    clone = pickle.loads(pickle.dumps(fit))  # the lambda is left behind and found again by the form's name
    assert clone == fit and clone.predict(X).iloc[0] == fit.predict(X).iloc[0]
    assert math.isfinite(clone.get_prediction(X).summary_frame()["mean_ci_upper"].iloc[0])
