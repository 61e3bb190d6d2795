"""Forms are objects: the registry (built-ins, lookups, duplicates, register/unregister), the built-in forms'
answers to the Form API, and a toy form registered here and run through fit, projection, bootstrap and
backtest without touching any other file."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import pandas as pd
import pytest

from scaling.allocation.mae import ProportionalCost, optimal_closed_form
from scaling.errors import FitError, ProjectionError, ScalingError
from scaling.forms import (
    DuplicateFormError,
    Form,
    get_form,
    list_forms,
    register_form,
    registered,
    unregister_form,
)
from scaling.forms.result import FitData, FitResult, check_options, fit, make_result
from scaling.questions.derived import projection_quantities
from scaling.questions.projection import project_at, project_axis, project_scale, reference_point
from scaling.selection.backtest import backtest
from scaling.uncertainty.bootstrap import bootstrap

BUILTINS = ["poly1", "poly2", "logit1", "logit2", "powerlaw", "powerlaw_chance"]


# -- the registry -----------------------------------------------------------------------------------


def test_builtins_are_registered_with_description_and_source() -> None:
    forms = {f.name: f for f in list_forms()}
    assert [n for n in forms if n in BUILTINS] == BUILTINS  # registration order: `scaling forms` lists it
    for name in BUILTINS:
        form = forms[name]
        assert isinstance(form, Form)
        assert form.description and "\n" not in form.description
        assert form.source
        assert form.family == ("powerlaw" if name.startswith("powerlaw") else "linear")
        assert list(form.to_dict()) == ["name", "description", "source", "family"]
        assert form.to_dict()["name"] == name
    assert "reconstructed" in forms["poly2"].source
    assert (
        "Rosenfeld" in forms["powerlaw_chance"].source
        and "our parametrisation" in forms["powerlaw_chance"].source
    )


def test_builtin_forms_answer_the_form_api() -> None:
    poly2, logit1 = get_form("poly2"), get_form("logit1")
    power, chance = get_form("powerlaw"), get_form("powerlaw_chance")
    assert poly2.param_names(["n", "d"]) == [
        "const", "log10(n)", "log10(d)", "log10(n)^2", "log10(d)^2", "log10(n)*log10(d)"
    ]
    assert logit1.param_names(["n"]) == ["const", "log10(n)"]
    assert power.param_names(["n", "d"]) == ["E", "A_n", "alpha_n", "A_d", "alpha_d"]
    assert (poly2.has_limit, power.has_limit) == (False, True)
    assert power.limit_name("accuracy") == "ceiling" and power.limit_name("loss") == "floor"
    assert poly2.limit_name("accuracy") is None
    assert "chance" in chance.option_names and "chance" not in power.option_names
    assert "huber_delta" in power.option_names and "huber_delta" not in poly2.option_names
    # the chance level of top-k on ImageNet-1k (what `scaling fit --form powerlaw_chance` assumes)
    assert chance.default_options(metric="top5", kind="accuracy") == {"chance": pytest.approx(0.995)}
    assert chance.default_options(metric="top1", kind="loss") == {"chance": pytest.approx(0.999)}
    assert chance.default_options(metric="loss", kind="loss") == {}
    assert power.default_options(metric="top1", kind="accuracy") == {}


def test_get_form_and_unknown_form() -> None:
    assert get_form("powerlaw").name == "powerlaw"
    with pytest.raises(FitError, match=r"^unknown form 'nope'; known: poly1, .*powerlaw"):
        get_form("nope")
    with pytest.raises(FitError, match="unknown form 'nope'"):
        unregister_form("nope")


def test_reregistering_a_name_is_an_error() -> None:
    with pytest.raises(DuplicateFormError, match="already registered"):
        register_form(get_form("poly1"))
    with pytest.raises(ScalingError, match="already registered"):  # a one-line error of the toolkit
        register_form(ToyLogLinear(name="poly1"))
    with pytest.raises(TypeError, match="Form"):
        register_form(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one-line description"):
        register_form(ToyLogLinear(name="test_two_lines", description="a\nb"))


def test_register_and_unregister_leave_the_registry_as_it_was() -> None:
    before = [f.name for f in list_forms()]
    toy = ToyLogLinear(name="test_dummy_form", family="spline")  # any family
    register_form(toy)
    try:
        assert [f.name for f in list_forms()] == [*before, "test_dummy_form"]
        assert get_form("test_dummy_form") is toy
    finally:
        assert unregister_form("test_dummy_form") is toy
    assert [f.name for f in list_forms()] == before
    with pytest.raises(RuntimeError), registered(toy):
        assert toy in list_forms()
        raise RuntimeError("unregistered even when the block fails")
    assert [f.name for f in list_forms()] == before


# -- a toy form, defined here only ------------------------------------------------------------------


@dataclass(frozen=True)
class ToyModel:
    beta: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.beta[0] + np.log10(X) @ self.beta[1:]

    def interval(self, X: np.ndarray, level: float, kind: str) -> None:
        return None


class ToyLogLinear(Form):
    """y = a + sum_k b_k log10(x_k), numpy least squares: the smallest form a user could register."""

    option_names = ("center",)

    def __init__(self, name: str = "test_toy_loglinear", description: str = "y = a + sum_k b_k log10(x_k) (toy)",
                 family: str = "toy") -> None:
        self.name, self.description, self.source, self.family = name, description, "tests/test_forms.py", family

    def param_names(self, axes: Sequence[str]) -> list[str]:
        return ["a", *(f"b_{a}" for a in axes)]

    def fit(self, data: FitData, **options: Any) -> FitResult:
        check_options(self.name, options, self.option_names)
        names = self.param_names(data.axes)
        data.require_points(self.name, len(names))
        D = np.column_stack([np.ones(data.n), np.log10(data.X)])
        beta = np.linalg.lstsq(D, data.y, rcond=None)[0]
        return make_result(data, form=self.name, model=ToyModel(beta), params=dict(zip(names, beta, strict=True)),
                           stderr=None, n_params=len(names), message="numpy lstsq", options=dict(options))


TRUTH = {"a": 3.0, "b_n": -0.25, "b_d": -0.15}  # a loss falling with log10 of both axes
SIGMA = 0.01
AXES = ["n", "d"]


def truth(n: Any, d: Any) -> Any:
    return TRUTH["a"] + TRUTH["b_n"] * np.log10(n) + TRUTH["b_d"] * np.log10(d)


def toy_grid(seed: int = 0, sigma: float = SIGMA) -> pd.DataFrame:
    """6 x 6 grid (n 1e7..1e9, d 1..1e3), two runs per point, Gaussian noise of ``sigma``."""
    rows = list(product(np.geomspace(1e7, 1e9, 6), np.geomspace(1.0, 1e3, 6), range(2)))
    df = pd.DataFrame(rows, columns=["n", "d", "rep"])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    df["y"] = truth(df["n"], df["d"]) + sigma * np.random.default_rng(seed).standard_normal(len(df))
    return df


def test_toy_form_fit_recovers_known_parameters() -> None:
    with registered(ToyLogLinear()) as toy:
        exact = fit(toy_grid(sigma=0.0), toy.name, y="y", axes=AXES, kind="loss")
        assert dict(exact.params) == pytest.approx(TRUTH, rel=1e-12)
        assert exact.stats["rmse"] < 1e-12 and exact.ceiling is None and exact.n_points == 72
        noisy = fit(toy_grid(), toy.name, y="y", axes=AXES, kind="loss", center=1.0)
        assert noisy.options == {"center": 1.0}
        for k, v in TRUTH.items():
            assert noisy.params[k] == pytest.approx(v, abs=4 * SIGMA)
        # the same surface as the built-in poly1 (OLS on the same design), to rounding
        ols = fit(toy_grid(), "poly1", y="y", axes=AXES, kind="loss")
        assert [noisy.params[k] for k in ("a", "b_n", "b_d")] == pytest.approx(list(ols.params), rel=1e-10)
        assert noisy.to_dict()["fit"]["family"] == "toy"
        with pytest.raises(FitError, match="does not take option"):
            fit(toy_grid(), toy.name, y="y", axes=AXES, kind="loss", huber_delta=1.0)


def test_toy_form_projection_inverts_the_fitted_law() -> None:
    with registered(ToyLogLinear()) as toy:
        f = fit(toy_grid(), toy.name, y="y", axes=AXES, kind="loss")
        a, bn, bd = f.params["a"], f.params["b_n"], f.params["b_d"]
        ref = reference_point(f)
        assert ref == {"n": 1e9, "d": 1e3}
        y_ref = a + bn * 9 + bd * 3
        target = 0.1  # lower is better for a loss: beyond the data (0.3 at the reference point)
        # y(k) = y_ref + (b_n + b_d) log10 k
        p = project_scale(f, target)
        assert p.reachable and p.scale_factor == pytest.approx(10 ** ((target - y_ref) / (bn + bd)), rel=1e-9)
        assert p.point == pytest.approx({"n": 1e9 * p.scale_factor, "d": 1e3 * p.scale_factor}, rel=1e-12)
        assert p.predicted == pytest.approx(target, abs=1e-9)
        q = project_axis(f, target, "d")
        assert q.point["d"] == pytest.approx(10 ** ((target - a - bn * 9) / bd), rel=1e-9)
        at = project_at(f, {"n": 1e10, "d": 1e4}, target=target)
        assert at.predicted == pytest.approx(a + bn * 10 + bd * 4, rel=1e-12)
        assert at.reachable is bool(at.predicted <= target)
        assert not project_scale(f, -50.0).reachable or project_scale(f, -50.0).scale_factor > 1e10


def test_toy_form_bootstrap_covers_the_truth() -> None:
    df = toy_grid(seed=1)
    point = {"n": 1e10, "d": 1e4}
    with registered(ToyLogLinear()) as toy:
        full = fit(df, toy.name, y="y", axes=AXES, kind="loss")
        target = 0.1
        derived = projection_quantities(target, reference=reference_point(full), at=point)
        boot = bootstrap(df, toy.name, y="y", axes=AXES, kind="loss", n_boot=300, seed=4, group="run_id",
                         derived=derived, full=full, levels=(0.99,))
    assert boot.n_ok == 300 and boot.paths == {"full": 300}  # the generic refitter: the form's own fit
    for k, v in TRUTH.items():
        lo, hi = boot.interval(k, 0.99)
        assert lo < v < hi, k
    # the percentile interval's width matches the OLS standard error of the intercept at the point
    X = np.column_stack([np.ones(len(df)), np.log10(df[AXES].to_numpy())])
    x0 = np.array([1.0, 10.0, 4.0])
    sigma2 = float(np.sum((df["y"].to_numpy() - X @ full.params.to_numpy()) ** 2)) / (len(df) - 3)
    se = math.sqrt(sigma2 * x0 @ np.linalg.inv(X.T @ X) @ x0)
    lo, hi = boot.interval("at.predicted", 0.99)
    assert lo < truth(1e10, 1e4) < hi
    assert (hi - lo) / (2 * 2.576 * se) == pytest.approx(1.0, abs=0.25)
    # the scale factor that reaches the target under the true law, in closed form
    k_true = 10 ** ((target - truth(1e9, 1e3)) / (TRUTH["b_n"] + TRUTH["b_d"]))
    lo, hi = boot.interval("scale.factor", 0.99)
    assert lo < k_true < hi
    assert boot.probabilities["ceiling_passes_target"] == 1.0  # no limit: always passes
    assert boot.params["ceiling"].n_infinite == 300


def test_toy_form_backtest_scores_like_the_same_builtin_surface() -> None:
    df = toy_grid(seed=2)
    with registered(ToyLogLinear()) as toy:
        r = backtest(df, [toy.name, "poly1"], y="y", axes=AXES, kind="loss", rolling_axis="d")
    assert r.unit == "loss units"
    toy_rows = {x.split: x for x in r.results if x.form == toy.name}
    ols_rows = {x.split: x for x in r.results if x.form == "poly1"}
    assert set(toy_rows) == set(ols_rows) and all(x.ok for x in toy_rows.values())
    for split, x in toy_rows.items():
        assert x.rmse == pytest.approx(ols_rows[split].rmse, rel=1e-9)
        # the toy law is the true law: held-out errors are noise, a few sigma at most
        assert 0.2 * SIGMA < x.rmse < 3 * SIGMA
    assert r.by_form[toy.name].rmse == pytest.approx(r.by_form["poly1"].rmse, rel=1e-9)
    assert r.noise.sigma == pytest.approx(SIGMA, rel=0.3)


def test_toy_form_has_no_closed_form_allocation() -> None:
    cost = ProportionalCost(k=5e4, rho=2.0, patch_px=14, max_rel_error=0.0, passes=10.0)
    bounds = {"n_params": (1e6, 1e12), "data_hours": (1.0, 1e6), "image_px": (224.0, 952.0)}
    with registered(ToyLogLinear()) as toy:
        assert toy.closed_form_allocation(None, 0.5, cost, bounds) is None
        stub = type("Stub", (), {"form": toy.name, "kind": "loss", "params": {}})()
        with pytest.raises(ProjectionError, match="no closed-form allocation"):
            optimal_closed_form(stub, 0.5, cost, bounds)
