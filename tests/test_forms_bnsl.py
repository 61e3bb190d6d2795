"""The ``bnsl`` form (smoothly broken power law): recovery of known breaks, the number of breaks chosen by
held-out error, the limit, one-line refusals, a bootstrap that covers an extrapolation, a backtest that
ranks it first on a sharply broken curve, and the CLI on a loss table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.errors import FitError
from scaling.forms import bnsl_core as core
from scaling.forms import get_form
from scaling.forms.result import fit
from scaling.questions.derived import Derived
from tests.cli_helpers import ok_json

X = np.geomspace(1e3, 1e7, 30)
ONE = core.Solution(0.5, 20.0, np.array([0.05, 0.6]), np.array([3e4]), np.array([0.2]), 0.0, True, "")
# slow, then steep from 1e4, then slow again from 1.5e5 (segment slopes 0.05, 0.85, 0.15), no floor
TWO = core.Solution(0.0, 5.0, np.array([0.05, 0.8, -0.7]), np.array([1e4, 1.5e5]), np.array([0.2, 0.2]), 0.0,
                    True, "")
ZERO = core.Solution(1.0, 30.0, np.array([0.3]), np.array([]), np.array([]), 0.0, True, "")


def table(truth: core.Solution, noise: float, seed: int = 0, x: np.ndarray = X) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": x, "loss": core.predict_error(truth, x) * np.exp(noise * rng.standard_normal(len(x)))})


def test_registered_with_its_source_options_and_parameters() -> None:
    form = get_form("bnsl")
    assert form.family == "bnsl" and form.has_limit and "\n" not in form.description
    assert "Caballero" in form.source and "2210.14891" in form.source
    assert {"breaks", "max_breaks", "huber_delta", "alpha_max"} <= set(form.option_names)
    assert form.param_names(["x"])[:6] == ["a", "b", "c0", "c1", "d1", "f1"]
    assert form.limit_name("loss") == "floor" and form.default_options(metric=None, kind="loss") == {}


def test_recovers_one_break() -> None:
    r = fit(table(ONE, 0.01), "bnsl", y="loss", axes=["x"], kind="loss", breaks=1)
    p = r.params
    assert r.converged and set(p.index) == {"a", "b", "c0", "c1", "d1", "f1"}
    assert p["d1"] == pytest.approx(3e4, rel=0.1)
    assert p["c0"] == pytest.approx(0.05, abs=0.02) and p["c1"] == pytest.approx(0.6, abs=0.05)
    assert p["a"] == pytest.approx(0.5, abs=0.05) and p["f1"] == pytest.approx(0.2, abs=0.1)
    assert r.options["breaks"] == 1 and r.options["breaks_requested"] == 1
    assert r.stderr is not None and all(math.isfinite(r.stderr[k]) for k in p.index)


def test_recovers_two_breaks() -> None:
    r = fit(table(TWO, 0.01), "bnsl", y="loss", axes=["x"], kind="loss", breaks=2)
    p = r.params
    assert p["d1"] == pytest.approx(1e4, rel=0.25) and p["d2"] == pytest.approx(1.5e5, rel=0.25)
    slopes = np.cumsum([p["c0"], p["c1"], p["c2"]])
    assert slopes == pytest.approx([0.05, 0.85, 0.15], abs=0.1)


@pytest.mark.parametrize(("truth", "expected"), [(ZERO, 0), (ONE, 1), (TWO, 2)])
def test_breaks_auto_chooses_the_generating_number(truth: core.Solution, expected: int) -> None:
    r = fit(table(truth, 0.005, seed=3), "bnsl", y="loss", axes=["x"], kind="loss")
    assert r.options["breaks_requested"] == "auto" and r.options["breaks"] == expected
    scores = r.options["heldout_rmse_log"]
    assert set(scores) >= {str(n) for n in range(expected + 1)}
    assert any("chosen by held-out error" in n for n in r.notes)


def test_the_limit_is_the_floor_or_one_minus_it() -> None:
    r = fit(table(ONE, 0.002), "bnsl", y="loss", axes=["x"], kind="loss", breaks=1)
    assert r.ceiling == pytest.approx(r.params["a"]) and r.ceiling == pytest.approx(0.5, abs=0.03)
    acc_truth = core.Solution(0.2, 1.0, ONE.c, ONE.d, ONE.f, 0.0, True, "")  # error 0.91 .. 0.2
    err = core.predict_error(acc_truth, X)
    ra = fit(pd.DataFrame({"x": X, "acc": 1 - err}), "bnsl", y="acc", axes=["x"], kind="accuracy", breaks=1)
    assert ra.ceiling == pytest.approx(1 - ra.params["a"]) and ra.ceiling == pytest.approx(0.8, abs=0.01)
    assert ra.predict({"x": [X[5]]})[0] == pytest.approx(1 - err[5], abs=1e-3)
    # a flat last segment levels off above a: at b prod d_i^c_i
    flat = core.Solution(0.1, 2.0, np.array([0.5, -0.5]), np.array([100.0]), np.array([0.3]), 0.0, True, "")
    assert core.limit(flat) == pytest.approx(float(core.predict_error(flat, np.array([1e12]))[0]), rel=1e-9)
    assert core.limit(flat) == pytest.approx(0.1 + 2.0 * 100.0**-0.5)


def test_one_line_errors() -> None:
    three = pd.DataFrame({"x": X, "z": X[::-1], "loss": core.predict_error(ONE, X)})
    with pytest.raises(FitError, match=r"one-axis law .* got 2 axes \(x, z\)") as exc:
        fit(three, "bnsl", y="loss", axes=["x", "z"], kind="loss")
    assert "\n" not in str(exc.value)
    few = table(ONE, 0.0, x=np.geomspace(1e3, 1e7, 8))
    with pytest.raises(FitError, match=r"with 2 break\(s\) has 9 parameters .* got 8 points, 8 distinct"):
        fit(few, "bnsl", y="loss", axes=["x"], kind="loss", breaks=2)
    with pytest.raises(FitError, match="needs >= 5 points"):
        fit(few.head(4), "bnsl", y="loss", axes=["x"], kind="loss")
    with pytest.raises(FitError, match="positive loss"):
        fit(few.assign(loss=few.loss - 10), "bnsl", y="loss", axes=["x"], kind="loss")
    with pytest.raises(FitError, match=r"breaks must be 'auto' or 0..3; got 5"):
        fit(few, "bnsl", y="loss", axes=["x"], kind="loss", breaks=5)
    with pytest.raises(FitError, match="does not take option"):
        fit(few, "bnsl", y="loss", axes=["x"], kind="loss", chance=0.9)


def test_parameters_at_a_bound_get_a_note() -> None:
    # no floor, and a slope after the break (0.95) above the alpha_max allowed: both at their bounds, noted
    steep = core.Solution(0.0, 20.0, np.array([0.05, 0.9]), ONE.d, ONE.f, 0.0, True, "")
    r = fit(table(steep, 0.0), "bnsl", y="loss", axes=["x"], kind="loss", breaks=1, alpha_max=0.6)
    assert {"a", "c1"} <= set(r.at_bound) and r.params["c0"] + r.params["c1"] == pytest.approx(0.6)
    assert any(n.startswith("a = 0 (at its bound)") for n in r.notes)
    assert any("is at alpha_max 0.6; consider a larger alpha_max" in n for n in r.notes)
    assert r.stderr is not None and math.isnan(r.stderr["a"]) and math.isfinite(r.stderr["d1"])


def test_bootstrap_interval_covers_an_extrapolation() -> None:
    at = 3e7  # three times the largest x
    truth = float(core.predict_error(ONE, np.array([at]))[0])
    r = scaling.fit(table(ONE, 0.01, seed=1), form="bnsl", y="loss", axes=["x"], kind="loss", breaks=1)
    boot = scaling.bootstrap(r, n_boot=50, seed=2,
                             derived=lambda f: Derived({"at": float(f.predict({"x": np.array([at])})[0])}))
    assert boot.n_ok == 50 and set(boot.paths) <= {"warm", "screen", "cold"}
    lo, hi = boot.interval("at", 0.95)
    assert lo < truth < hi and hi - lo < 0.1 * truth
    assert boot.interval("d1", 0.95)[0] < 3e4 < boot.interval("d1", 0.95)[1]


def test_backtest_ranks_bnsl_first_on_a_sharp_break() -> None:
    sharp = core.Solution(1.0, 3.0, np.array([0.02, 0.7]), np.array([1e4]), np.array([0.1]), 0.0, True, "")
    x = np.repeat(np.geomspace(1e3, 1e7, 10), 2)
    bt = scaling.backtest(table(sharp, 0.005, x=x), ["bnsl", "powerlaw", "poly1"], y="loss", axes=["x"],
                          kind="loss", rolling_axis="x")
    assert bt.ranking[0] == "bnsl"
    largest = {r.form: r for r in bt.results if r.split == "largest x"}
    assert largest["bnsl"].rmse_log < 0.2 * largest["powerlaw"].rmse_log


def test_more_axes_are_skipped_in_a_backtest() -> None:
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e7, 1e9, 4), np.geomspace(1e8, 1e10, 4)))
    df = pd.DataFrame({"n": n, "d": d, "loss": 1.7 + 400 * n**-0.34 + 400 * d**-0.28})
    bt = scaling.backtest(df, ["bnsl", "poly1"], y="loss", axes=["n", "d"], kind="loss", rolling_axis="d")
    reasons = {r.reason for r in bt.results if r.form == "bnsl"}
    assert len(reasons) == 1 and "one-axis law" in reasons.pop() and bt.ranking == ["poly1"]


def test_cli_fit_of_a_loss_table(tmp_path: Path) -> None:
    csv = tmp_path / "T.csv"
    table(ONE, 0.005).to_csv(csv, index=False)
    doc = ok_json(tmp_path / "unused.sqlite", "fit", "--form", "bnsl", "--data", str(csv), "--y", "loss",
                  "--axes", "x", "--kind", "loss")
    f = doc["fit"]
    assert f["form"] == "bnsl" and f["family"] == "bnsl" and f["options"]["breaks"] == 1
    assert f["params"]["d1"] == pytest.approx(3e4, rel=0.1) and f["ceiling"] == pytest.approx(0.5, abs=0.05)
    json.dumps(doc)
