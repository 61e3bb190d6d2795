"""The papers' estimators written for the extrapolation benchmark (bench/extrapolation_refs.py) recover
known laws, and the harness runs end to end on one small curve (its numbers are not asserted: the
benchmark itself runs outside the suite)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def refs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("extrapolation_refs", BENCH / "extrapolation_refs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["extrapolation_refs"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_effective_data_is_the_closed_form(refs: ModuleType) -> None:
    U, r_star = 1e9, refs.R_STAR_D
    d = np.array([1e8, 1e9, 2e9, 45e9, 1e15])
    got = refs.effective_data(d, U)
    # epoch 1: D' = D; after: U + U R* (1 - exp(-(D/U - 1) / R*)); the limit U (1 + R*)
    want = [1e8, 1e9, U + U * r_star * (1 - math.exp(-1 / r_star)), U + U * r_star * (1 - math.exp(-44 / r_star)),
            U * (1 + r_star)]
    assert np.allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("log", [False, True])
def test_power_law_fit_recovers_a_known_law(refs: ModuleType, log: bool) -> None:
    x = np.geomspace(1e8, 1e11, 30)
    E, A, beta = 1.7, 300.0, 0.3
    y = E + A * x**-beta
    fit = refs.fit_power_law(x, y, log=log)
    # noise-free data: the optimum is the generating law, to the solver's tolerance
    assert fit.E == pytest.approx(E, rel=1e-5) and fit.beta == pytest.approx(beta, rel=1e-5)
    assert np.allclose(fit.predict(np.geomspace(1e11, 1e12, 5)), E + A * np.geomspace(1e11, 1e12, 5) ** -beta,
                       rtol=1e-6)


def test_data_constrained_fit_recovers_a_repeated_data_curve(refs: ModuleType) -> None:
    U = 2e9
    x = np.geomspace(1e9, 4e10, 25)
    y = 1.8 + 150.0 * refs.effective_data(x, U) ** -0.25
    fit = refs.data_constrained(U)(x, y)
    assert fit.E == pytest.approx(1.8, rel=1e-5) and fit.beta == pytest.approx(0.25, rel=1e-5)


def test_predictive_band_quantiles(refs: ModuleType) -> None:
    # no parameter spread: the band is the prediction times the quantiles of exp(centred residual)
    boot = np.full((50, 2), 2.0)
    residuals = np.linspace(-0.1, 0.1, 201)
    band = refs.predictive_band(np.array([2.0, 2.0]), boot, residuals, level=0.9, seed=0, n_noise=400)
    assert np.allclose(band.lower_params, 2.0) and np.allclose(band.upper_params, 2.0)
    assert np.allclose(band.lower, 2.0 * math.exp(-0.09), rtol=3e-3)
    assert np.allclose(band.upper, 2.0 * math.exp(0.09), rtol=3e-3)


def test_the_harness_runs_on_one_small_curve(tmp_path: Path) -> None:
    out = tmp_path / "rows.csv"
    proc = subprocess.run([sys.executable, "bench/bench_extrapolation.py", "--sources", "choshen2025", "--curves",
                           "opt/30b$", "--n-boot", "5", "--workers", "1", "--no-forms", "--csv", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "1 curves" in proc.stdout and "ensemble median" in proc.stdout
    rows = pd.read_csv(out)  # paper, recommended, ensemble, ensemble_calibrated
    assert list(rows["method"]) == ["paper", "recommended", "ensemble", "ensemble_calibrated"]
    assert rows["rmse_log"].notna().all() and (rows["rmse_log"] < 0.1).all()
    bad = subprocess.run([sys.executable, "bench/bench_extrapolation.py", "--sources", "nosuch"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown source" in bad.stderr and "Traceback" not in bad.stderr


def test_an_ensemble_wired_to_the_hook_is_scored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    bench = importlib.import_module("bench_extrapolation")
    curve = next(c for c in bench.load(("choshen2025",)) if c.id.endswith("/30b"))
    y_tail = curve.tail["y"].to_numpy()

    def fake(fit: object, x_new: np.ndarray, *, y: str, x: str, kind: str, level: float, n_boot: int,
             seed: int) -> tuple[object, object]:
        assert np.array_equal(x_new, curve.tail["x"].to_numpy()) and kind == "loss" and level == 0.9
        # off by exactly 0.1 in log y (0.2 the calibrated band); the band covers all tail points but the last
        upper = np.where(np.arange(len(y_tail)) == len(y_tail) - 1, 0.9, 2.0) * y_tail
        return tuple(bench.Band(y_tail * math.exp(d), 0.5 * y_tail, upper, 0.5 * y_tail, upper, n_boot)
                     for d in (0.1, 0.2))

    monkeypatch.setattr(bench, "ensemble_predict", fake)
    rows = {r["method"]: r for r in bench.run_curve(curve, bench.Options(n_boot=5, forms=False))}
    assert rows["ensemble"]["rmse_log"] == pytest.approx(0.1, rel=1e-12)
    assert rows["ensemble_calibrated"]["rmse_log"] == pytest.approx(0.2, rel=1e-12)
    assert rows["ensemble"]["coverage"] == pytest.approx(1 - 1 / len(y_tail), rel=1e-12)
    assert rows["ensemble"]["note"] == "" and np.isfinite(rows["paper"]["rmse_log"])
