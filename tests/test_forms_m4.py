"""saturating (M2) and m4 (Alabdulmohsin et al. 2022): the implicit solve, recovery, errors, bootstrap, backtest."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.errors import FitError
from scaling.forms import get_form
from scaling.forms.m4_core import M4Solution, limit_error, predict_error, solve_level
from scaling.forms.result import fit
from scaling.forms.varpro import Solution
from scaling.forms.varpro import predict_error as powerlaw_error

CHANCE = 0.999
ONE = {"L_inf": 0.2, "L0": CHANCE, "alpha": 1.6, "beta_x": 40.0, "c_x": -0.45}  # an error rate from chance
TWO = {"L_inf": 1.7, "L0": 6.0, "alpha": 0.7, "beta_n": 2e3, "c_n": -0.4, "beta_d": 3e2, "c_d": -0.3}  # a loss


def m4_error(p: dict[str, float], cols: dict[str, np.ndarray]) -> np.ndarray:
    s = sum(p[f"beta_{a}"] * x ** p[f"c_{a}"] for a, x in cols.items())
    return solve_level(p["L_inf"], p["L0"], p["alpha"], np.asarray(s))[0]


def noisy(err: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return err * np.exp(sigma * np.random.default_rng(seed).standard_normal(len(err)))


def curve(sigma: float = 0.0, seed: int = 0, points: int = 40, reps: int = 1) -> pd.DataFrame:
    x = np.repeat(np.geomspace(10.0, 1e8, points), reps)
    return pd.DataFrame({"x": x, "acc": 1.0 - noisy(m4_error(ONE, {"x": x}), sigma, seed)})


def loss_table(sigma: float = 0.0, seed: int = 0) -> pd.DataFrame:
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e6, 1e12, 7), np.geomspace(1e5, 1e12, 7)))
    return pd.DataFrame({"n": n, "d": d, "loss": noisy(m4_error(TWO, {"n": n, "d": d}), sigma, seed)})


# -- the implicit equation -----------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 2.5, 7.0])
def test_solve_level_satisfies_the_equation_everywhere(alpha: float) -> None:
    s = np.geomspace(1e-30, 1e30, 601)
    L, w, v, _ = solve_level(0.2, CHANCE, alpha, s)
    assert np.all((L >= 0.2) & (L <= CHANCE)) and np.all(np.diff(L) >= 0)
    ok = (w > 0) & (v > 0)  # the far ends round to L_inf or L0 exactly
    assert ok.sum() > 400
    assert np.max(np.abs(np.log(w[ok]) - alpha * np.log(v[ok]) - np.log(s[ok]))) < 1e-11
    assert np.allclose(w + v, CHANCE - 0.2, rtol=1e-14)


def test_closed_forms_alpha_one_is_the_chance_law_and_alpha_zero_is_m2() -> None:
    X = np.geomspace(1.0, 1e6, 50)[:, None]
    beta, c = np.array([3.0]), np.array([-0.4])
    one = M4Solution(0.2, CHANCE, 1.0, beta, c, 0.0, True, "", True)
    chance = Solution(0.2, beta, -c, CHANCE, 0.0, True, "", np.zeros(3))  # powerlaw_chance's own predictor
    assert np.allclose(predict_error(one, X), powerlaw_error(chance, X), rtol=1e-13)
    zero = M4Solution(0.2, CHANCE, 0.0, beta, c, 0.0, True, "", True)
    assert np.allclose(predict_error(zero, X), 0.2 + 3.0 * X[:, 0] ** -0.4, rtol=1e-15)
    assert solve_level(0.2, CHANCE, 2.0, np.array([0.0]))[0][0] == 0.2  # s = 0: the floor exactly
    const = M4Solution(0.2, CHANCE, 1.0, np.array([3.0, 1.0]), np.array([-0.4, 0.0]), 0.0, True, "", True)
    assert limit_error(const) == pytest.approx((0.2 + CHANCE) / 2)  # a c = 0 term stays: s -> 1


# -- recovery ----------------------------------------------------------------------------------------


def test_m4_exact_recovery_one_axis_and_the_ceiling() -> None:
    r = fit(curve(), "m4", y="acc", axes=["x"], l0=CHANCE)
    for k, v in ONE.items():
        assert r.params[k] == pytest.approx(v, rel=1e-6), k
    assert r.converged and r.at_bound == () and r.stats["max_abs"] < 1e-9
    assert r.ceiling == pytest.approx(1 - ONE["L_inf"], rel=1e-9)  # accuracy: 1 - L_inf
    assert r.predict({"x": np.array([1e12])})[0] == pytest.approx(1 - ONE["L_inf"], abs=1e-3)
    assert r.stderr is not None and math.isnan(r.stderr["L0"])  # fixed: no error
    assert "L0 fixed at 0.999 (option l0); not estimated" in r.notes


def test_m4_noisy_recovery_one_axis() -> None:
    r = fit(curve(0.003, seed=1), "m4", y="acc", axes=["x"], l0=CHANCE)
    assert r.converged
    assert r.params["L_inf"] == pytest.approx(0.2, abs=0.02)
    assert r.params["alpha"] == pytest.approx(1.6, abs=0.3)
    assert r.params["c_x"] == pytest.approx(-0.45, abs=0.05)
    assert r.stderr is not None and all(np.isfinite(r.stderr[k]) for k in ("L_inf", "alpha", "beta_x", "c_x"))


def test_m4_noisy_recovery_two_axes_of_a_loss_with_l0_fitted() -> None:
    r = fit(loss_table(0.003, seed=2), "m4", y="loss", axes=["n", "d"], kind="loss")
    assert r.converged and r.options["l0"] == "fit"
    assert r.params["L_inf"] == pytest.approx(1.7, abs=0.1)
    assert r.params["L0"] == pytest.approx(6.0, rel=0.1)
    assert r.params["alpha"] == pytest.approx(0.7, abs=0.2)
    assert r.params["c_n"] == pytest.approx(-0.4, abs=0.05)
    assert r.params["c_d"] == pytest.approx(-0.3, abs=0.05)
    assert r.ceiling == pytest.approx(r.params["L_inf"])  # a loss: the floor is L_inf


def test_m4_paper_objective_recovers_exact_data() -> None:
    r = fit(curve(), "m4", y="acc", axes=["x"], l0=CHANCE, objective="implicit", huber_delta=math.inf)
    assert r.params["alpha"] == pytest.approx(1.6, rel=1e-6) and r.params["c_x"] == pytest.approx(-0.45, rel=1e-6)


def test_saturating_is_powerlaw_in_the_papers_names() -> None:
    df = curve(0.01, seed=3)
    sat = fit(df, "saturating", y="acc", axes=["x"], c_max=1.5)
    pl = fit(df, "powerlaw", y="acc", axes=["x"], alpha_max=1.5)
    assert list(sat.params.index) == ["L_inf", "beta_x", "c_x"] == get_form("saturating").param_names(["x"])
    assert sat.params["L_inf"] == pl.params["E"] and sat.params["beta_x"] == pl.params["A_x"]
    assert sat.params["c_x"] == -pl.params["alpha_x"] and sat.ceiling == pl.ceiling
    assert sat.stderr is not None and pl.stderr is not None and sat.stderr["c_x"] == pl.stderr["alpha_x"]
    assert sat.options["c_max"] == 1.5 and "alpha_max" not in sat.options
    assert not any("alpha" in n or "A_x" in n for n in sat.notes)
    with pytest.raises(FitError, match="form 'saturating' does not take option"):
        fit(df, "saturating", y="acc", axes=["x"], alpha_max=1.0)


# -- options, errors ---------------------------------------------------------------------------------


def test_registration_and_default_options() -> None:
    names = [f.name for f in scaling.list_forms()]
    assert {"saturating", "m4"} <= set(names)
    m4 = get_form("m4")
    assert m4.family == "m4" and "2209.06640" in m4.source and m4.has_limit
    assert m4.default_options(metric="top5", kind="accuracy") == {"l0": pytest.approx(0.995)}
    assert m4.default_options(metric="top1", kind="loss") == {}  # a loss's scale is unknown: L0 fitted
    assert m4.default_options(metric=None, kind="accuracy") == {}
    assert m4.param_names(["n", "d"]) == ["L_inf", "L0", "alpha", "beta_n", "c_n", "beta_d", "c_d"]


@pytest.mark.parametrize(("frame", "options", "message"), [
    (curve(points=5), {"l0": CHANCE}, "has 4 parameters and needs at least 6 points; got 5"),
    (curve(points=3, reps=3), {"l0": CHANCE}, "needs >= 4 distinct values of axis 'x'"),
    (curve(), {"l0": 0.8}, "points have an error/loss at or above the start level l0 = 0.8"),
    (curve(), {"l0": "chance"}, "l0 must be a number or 'fit'"),
    (curve(), {"l0": "fit", "l0_max": 0.5}, "l0_max = 0.5 is not above the largest error/loss"),
    (curve(), {"objective": "paper"}, "objective must be one of prediction, implicit"),
    (curve(), {"alpha_max": 0}, "must be positive"),
    (curve(), {"chance": 0.999}, "form 'm4' does not take option(s) chance"),
])
def test_m4_one_line_errors(frame: pd.DataFrame, options: dict, message: str) -> None:
    with pytest.raises(FitError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        fit(frame, "m4", y="acc", axes=["x"], **options)
    assert "\n" not in str(exc.value)


def test_m4_loss_above_given_l0_and_nonpositive_loss_are_one_line() -> None:
    df = loss_table()
    with pytest.raises(FitError, match="at or above the start level l0 = 3"):
        fit(df, "m4", y="loss", axes=["n", "d"], kind="loss", l0=3.0)
    df.loc[0, "loss"] = 0.0
    with pytest.raises(FitError, match="needs a positive loss/error"):
        fit(df, "m4", y="loss", axes=["n", "d"], kind="loss")


# -- bootstrap and backtest ----------------------------------------------------------------------------


def test_m4_bootstrap_intervals_contain_the_truth() -> None:
    df = curve(0.003, seed=4, points=20, reps=2)
    r = scaling.fit(df, "m4", y="acc", axes=["x"], l0=CHANCE, n_boot=50, seed=0, group="none")
    b = r.bootstrap
    assert b.n_ok == 50 and b.paths.get("warm", 0) >= 45
    for k in ("L_inf", "alpha", "beta_x", "c_x"):
        lo, hi = b.params[k].intervals[0.95]
        assert lo <= ONE[k] <= hi, k
    lo, hi = b.params["ceiling"].intervals[0.95]
    assert lo <= 1 - ONE["L_inf"] <= hi


def test_saturating_bootstrap_runs_with_the_papers_names() -> None:
    r = scaling.fit(curve(0.01, seed=5, points=12, reps=2), "saturating", y="acc", axes=["x"], n_boot=20,
                    group="none")
    assert r.bootstrap.n_ok == 20 and set(r.bootstrap.params) == {"L_inf", "beta_x", "c_x", "ceiling"}


def test_backtest_ranks_m4_first_on_a_table_drawn_from_m4() -> None:
    x = np.repeat(np.geomspace(10.0, 1e8, 9), 3)
    df = pd.DataFrame({"x": x, "acc": 1.0 - noisy(m4_error(ONE, {"x": x}), 0.005, seed=6)})
    bt = scaling.backtest(df, ["m4", "powerlaw", "poly1"], y="acc", axes=["x"], kind="accuracy", rolling_axis="x")
    assert bt.ranking[0] == "m4", bt.summary()
    assert len(bt.common_splits) >= 3


# -- closed-form allocation ----------------------------------------------------------------------------


@dataclass
class Known:
    """A fit stand-in on the run database's axes (the closed forms read ``params``; predictions use them)."""

    form: str
    params: dict[str, float]
    kind: str = "accuracy"
    axes: tuple[str, ...] = ("n_params", "data_hours", "image_px")
    axis_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    ceiling: float | None = None

    def predict(self, X: Mapping[str, Any]) -> np.ndarray:
        p = self.params
        s = sum(p[f"beta_{a}"] * np.asarray(X[a], dtype=float) ** p[f"c_{a}"] for a in self.axes)
        if self.form == "saturating":
            return 1 - (p["L_inf"] + s)
        return 1 - solve_level(p["L_inf"], p["L0"], p["alpha"], np.asarray(s))[0]


@pytest.mark.parametrize("form", ["m4", "saturating"])
def test_closed_form_allocation_equals_numerical(form: str) -> None:
    from scaling.allocation.mae import ProportionalCost, optimal_closed_form, optimal_numerical

    cost = ProportionalCost(k=5e4, rho=2.0, patch_px=14, max_rel_error=0.0, passes=10.0)
    wide = {"n_params": (1e6, 1e16), "data_hours": (1e-3, 1e12), "image_px": (14.0, 1e5)}
    terms = {"beta_n_params": 300.0, "c_n_params": -0.4, "beta_data_hours": 2.0, "c_data_hours": -0.25,
             "beta_image_px": 500.0, "c_image_px": -1.2}
    head = {"L_inf": 0.05, "L0": CHANCE, "alpha": 1.7} if form == "m4" else {"L_inf": 0.05}
    f = Known(form, {**head, **terms})
    closed, num = optimal_closed_form(f, 0.8, cost, wide), optimal_numerical(f, 0.8, cost, wide)
    assert closed.method == "closed form" and closed.reachable and num.reachable
    for a in f.axes:
        assert closed.point[a] == pytest.approx(num.point[a], rel=1e-4), a
    assert closed.predicted == pytest.approx(0.8, abs=1e-10)
    assert not optimal_closed_form(f, 0.97, cost, wide).reachable  # beyond the ceiling 1 - L_inf
