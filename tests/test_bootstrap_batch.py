"""Batched bootstrap refits against the per-resample reference, resample by resample (issue 24).

The batched path (``Form.batch_refitter``: ``scaling.forms.varpro_batch``, ``scaling.forms.m4_batch``, solved by
``scaling.forms.batch``) must give what the per-resample refitter gives on the same resample indices, to the
solvers' tolerance: both minimise the same objective from the same warm start with the same basin screen, so
their objectives agree to the refiners' stopping rules (relative 1e-9; the batch may be lower where L-BFGS-B
stopped early), and a parameter to about sqrt(ftol / lambda_min) of its scale along a poorly determined
direction (``tests/golden_cases.py``: 1e-4, the golden record's SOLVER tolerance).
"""

from __future__ import annotations

from itertools import product

import numpy as np
import pandas as pd
import pytest

from scaling.errors import FitError
from scaling.forms import Form, get_form
from scaling.forms import m4_batch as mb
from scaling.forms import varpro_batch as vb
from scaling.forms.base import unfittable, unfittable_each
from scaling.forms.batch import chunked, counts, minimise
from scaling.forms.result import fit
from scaling.uncertainty.bootstrap import BATCH, bootstrap, resample_indices
from tests.test_bootstrap import powerlaw_grid

AXES = ["n", "d"]
SOLVER = 1e-4  # parameters and percentiles of iterative fits (tests/golden_cases.py, SOLVER)
OBJECTIVE = 1e-9  # relative: both refiners stop where the loss changes by less than this


def m4_grid(seed: int, sigma: float = 0.01) -> pd.DataFrame:
    """An M4 law with chance level 0.99: (L - 0.1) / (0.99 - L)^0.5 = 2 n'^-0.4 + 0.5 d^-0.3, 6 x 6 grid."""
    rows = list(product(np.geomspace(1e7, 1e9, 6), np.geomspace(1.0, 1e3, 6)))
    df = pd.DataFrame(rows, columns=["n", "d"])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    s = 2.0 * (df["n"] / 1e7) ** -0.4 + 0.5 * df["d"] ** -0.3
    level = np.array([_m4_level(v) for v in s])
    df["acc"] = 1 - level * np.exp(sigma * np.random.default_rng(seed).standard_normal(len(df)))
    return df


def chance_grid(seed: int, sigma: float = 0.01) -> pd.DataFrame:
    """err = (0.1 + 0.9 s) / (1 + s), s = 3 n'^-0.5 + 2 d^-0.4 (the chance law, chance 0.9); 6 x 6 grid."""
    rows = list(product(np.geomspace(1e7, 1e9, 6), np.geomspace(1.0, 1e3, 6)))
    df = pd.DataFrame(rows, columns=["n", "d"])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    s = 3.0 * (df["n"] / 1e7) ** -0.5 + 2.0 * df["d"] ** -0.4
    df["acc"] = 1 - (0.1 + 0.9 * s) / (1 + s) * np.exp(sigma * np.random.default_rng(seed).standard_normal(len(df)))
    return df


def _m4_level(s: float) -> float:
    lo, hi = 0.1, 0.99
    for _ in range(200):  # bisection: the left side rises from 0 to infinity on (0.1, 0.99)
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if (mid - 0.1) / (0.99 - mid) ** 0.5 < s else (lo, mid)
    return 0.5 * (lo + hi)


def _fd_check(evaluate, theta: np.ndarray, eps: float = 1e-6) -> tuple[float, float]:
    """Relative error of the analytic gradient and Hessian against central differences of f and of g."""
    g, H = evaluate(theta)[1:3]
    gn, Hn = np.zeros_like(g), np.zeros_like(H)
    for j in range(theta.shape[1]):
        up, down = theta.copy(), theta.copy()
        up[:, j] += eps
        down[:, j] -= eps
        fu, gu = evaluate(up)[:2]
        fd, gd = evaluate(down)[:2]
        gn[:, j], Hn[:, :, j] = (fu - fd) / (2 * eps), (gu - gd) / (2 * eps)
    return float(np.max(np.abs(g - gn)) / np.max(np.abs(g))), float(np.max(np.abs(H - Hn)) / np.max(np.abs(H)))


@pytest.mark.parametrize("chance", [None, 0.9])
def test_varpro_batch_derivatives_match_differences(chance: float | None) -> None:
    rng = np.random.default_rng(0)
    X = np.exp(rng.uniform(0, 5, (40, 2)))
    err = (0.1 + 0.5 * X[:, 0] ** -0.3 + 0.3 * X[:, 1] ** -0.5) * np.exp(0.002 * rng.standard_normal(40))
    # delta 0.1 keeps every residual away from Huber's kink, where the Hessian jumps
    rows = vb.make_rows(X, err, 0.1, chance)
    W = rng.integers(0, 3, (3, 40)).astype(float)
    theta = np.array([[0.2, 0.5, 0.3, 0.35, 0.45]] * 3) * (1 + 0.1 * rng.standard_normal((3, 5)))
    data = vb.drawn(rows, W)
    log_theta = np.column_stack([np.log(theta[:, :3]), theta[:, 3:]])
    for fn, at in ((vb.evaluate, theta), (vb.evaluate_log, log_theta)):
        eg, eh = _fd_check(lambda t, fn=fn: fn(t, data, rows), at)
        # central differences at eps 1e-6: truncation ~1e-12 and rounding ~1e-16 / 1e-6 relative
        assert eg < 1e-7 and eh < 1e-6, (fn.__name__, eg, eh)


def test_chunked_evaluation_is_the_same_to_the_last_bit() -> None:
    """``batch.chunked``: the problems evaluated a few at a time give the numbers of one call."""
    rng = np.random.default_rng(16)
    X = np.exp(rng.uniform(0, 5, (40, 2)))
    err = (0.1 + 0.5 * X[:, 0] ** -0.3 + 0.3 * X[:, 1] ** -0.5) * np.exp(0.01 * rng.standard_normal(40))
    rows = vb.make_rows(X, err, 1e-3, None)
    data = vb.drawn(rows, rng.integers(0, 3, (23, 40)).astype(float))
    theta = np.array([[-1.0, -0.5, -0.8, 0.3, 0.5]]) + 0.1 * rng.standard_normal((23, 5))
    which = rng.permutation(23)
    one = vb.evaluate_log(theta, data.take(which), rows)
    few = chunked(lambda t, w: vb.evaluate_log(t, data.take(w), rows), data.W.shape[1], rows=5 * data.W.shape[1])
    for a, b in zip(one, few(theta, which), strict=True):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("l0", [0.95, None])
def test_m4_batch_derivatives_match_differences(l0: float | None) -> None:
    rng = np.random.default_rng(1)
    X = np.exp(rng.uniform(0, 5, (40, 2)))
    err = (0.1 + 0.5 * X[:, 0] ** -0.3 + 0.3 * X[:, 1] ** -0.5) * np.exp(0.01 * rng.standard_normal(40))
    rows = mb.make_rows(X, err, 0.1, l0)
    W = rng.integers(0, 3, (3, 40)).astype(float)
    base = [0.05] + ([] if l0 is not None else [1.2]) + [0.7, -0.5, -1.0, -0.3, -0.5]
    theta = np.array([base] * 3) * (1 + 0.05 * rng.standard_normal((3, len(base))))
    data = mb.drawn(rows, W)
    eg, eh = _fd_check(lambda t: mb.evaluate(t, data, rows, None, rows.delta), theta)
    assert eg < 1e-7 and eh < 1e-6, (eg, eh)


def test_batched_newton_finds_the_projected_minimum_of_quadratics() -> None:
    """sum_j a_j (theta_j - c_j)^2 in a box: the minimum is c clipped to the box. A minimiser that stops
    where the objective f changes by a relative 1e-14 (its rounding) knows theta to sqrt(1e-14 f / a)."""
    rng = np.random.default_rng(2)
    a, c = rng.uniform(0.1, 10, (50, 4)), rng.uniform(-2, 2, (50, 4))
    lo, hi = -np.ones(4), np.ones(4)

    def quad(theta: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = theta - c[which]
        H = np.zeros((len(which), 4, 4))
        H[:, np.arange(4), np.arange(4)] = 2 * a[which]
        return np.sum(a[which] * d**2, axis=1), 2 * a[which] * d, H

    res = minimise(quad, np.zeros((50, 4)), lo, hi)
    assert res.ok.all()
    want = np.clip(c, lo, hi)
    assert np.array_equal(res.theta[c != want], want[c != want])  # held at the bound exactly
    tol = 10 * np.sqrt(1e-14 * np.maximum(1.0, res.value)[:, None] / a)
    assert np.all(np.abs(res.theta - want) <= tol)


def _compare(df: pd.DataFrame, form: str, n_boot: int, **options: object) -> None:
    """Batched and per-resample bootstraps of one fit: resample by resample, then their percentiles."""
    full = fit(df, form, y="acc", axes=AXES, **options)  # type: ignore[arg-type]
    kw = {"y": "acc", "axes": AXES, "n_boot": n_boot, "seed": 5, "full": full, "group": "run_id"}
    batched = bootstrap(df, form, batched=True, **kw, **options)  # type: ignore[arg-type]
    ref = bootstrap(df, form, batched=False, **kw, **options)  # type: ignore[arg-type]
    assert batched.failures == ref.failures and batched.n_ok == ref.n_ok
    for name in full.params.index:  # resample by resample (the samples keep the resample order)
        want, got = ref.samples[name], batched.samples[name]
        assert np.allclose(got, want, rtol=SOLVER, atol=1e-9), (form, name, np.max(np.abs(got - want) / np.abs(want)))
    for name, summary in ref.params.items():
        for level, (lo, hi) in summary.intervals.items():
            got_lo, got_hi = batched.params[name].intervals[level]
            assert got_lo == pytest.approx(lo, rel=SOLVER, abs=1e-9), (form, name, level)
            assert got_hi == pytest.approx(hi, rel=SOLVER, abs=1e-9), (form, name, level)


def test_powerlaw_batched_equals_per_resample() -> None:
    _compare(powerlaw_grid(4), "powerlaw", 40)


def test_chance_law_batched_equals_per_resample() -> None:
    _compare(chance_grid(5), "powerlaw_chance", 30, chance=0.9)


def test_saturating_batched_equals_per_resample_with_its_names() -> None:
    _compare(powerlaw_grid(6), "saturating", 20)


@pytest.mark.parametrize("l0", [0.99, "fit"])
def test_m4_batched_equals_per_resample(l0: object) -> None:
    _compare(m4_grid(7), "m4", 25, l0=l0)


def test_objectives_agree_resample_by_resample() -> None:
    """On each resample the batched solution's objective equals the reference's to the refiners' stopping
    rule, or is lower (L-BFGS-B may stop early in the nearly-L1 loss's flat valleys)."""
    from scaling.forms.varpro import solve_warm  # the reference refitter's solver

    df = powerlaw_grid(8)
    X, err = df[AXES].to_numpy(), 1 - df["acc"].to_numpy()
    sol = fit(df, "powerlaw", y="acc", axes=AXES).require_model().sol
    idx = resample_indices(np.arange(len(df)), 40, seed=9)
    batched = vb.solve_warm_batch(X, err, sol, idx, delta=1e-3, alpha_max=2.0)
    for rows, got in zip(idx, batched, strict=True):
        want = solve_warm(X[rows], err[rows], sol)
        assert got is not None
        assert got.objective <= want.objective * (1 + OBJECTIVE)
        assert got.objective >= want.objective * (1 - 1e-6)  # the same basin, not a far better one


def test_a_resample_the_batch_cannot_settle_goes_to_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resample handed back by the batch (None) is refitted per resample: the bootstrap then equals the
    per-resample one exactly."""
    df = powerlaw_grid(10)
    monkeypatch.setattr("scaling.forms.powerlaw.solve_warm_batch", lambda X, err, sol, idx, **kw: [None] * len(idx))
    kw = {"y": "acc", "axes": AXES, "n_boot": 15, "seed": 1, "group": "run_id"}
    a, b = bootstrap(df, "powerlaw", batched=True, **kw), bootstrap(df, "powerlaw", batched=False, **kw)
    for k in b.samples:
        assert np.array_equal(a.samples[k], b.samples[k], equal_nan=True), k


def test_unfittable_resamples_fail_with_the_reference_reasons() -> None:
    """A grid with 3 levels per axis: some resamples lose a level; both paths count the same failures."""
    rows = list(product(np.geomspace(1e7, 1e9, 3), np.geomspace(1.0, 1e3, 3)))
    df = pd.DataFrame(rows, columns=["n", "d"])
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    df["acc"] = 1 - (0.2 + 0.3 * (df["n"] / 1e7) ** -0.3 + 0.4 * df["d"] ** -0.25)
    kw = {"y": "acc", "axes": AXES, "n_boot": 30, "seed": 2, "group": "run_id"}
    a, b = bootstrap(df, "powerlaw", batched=True, **kw), bootstrap(df, "powerlaw", batched=False, **kw)
    assert a.failures == b.failures and sum(a.failures.values()) > 0
    assert all("distinct values" in reason for reason in a.failures)


def test_unfittable_resamples_are_found_at_once_with_their_reasons() -> None:
    """``base.unfittable_each`` gives ``base.unfittable`` resample by resample: too few distinct values of
    either axis (the first one named), too few rows, or None."""
    rng = np.random.default_rng(17)
    X = np.column_stack([rng.integers(0, 3, 12), rng.integers(0, 4, 12)]).astype(float)
    idx = [rng.integers(0, 12, int(rng.integers(3, 12))) for _ in range(200)]
    got = unfittable_each(X, idx, AXES, min_distinct=3, n_params=5)
    want = [unfittable(X[rows], AXES, min_distinct=3, n_params=5) for rows in idx]
    assert [None if e is None else str(e) for e in got] == [None if e is None else str(e) for e in want]
    assert {type(e) for e in want} == {type(None), FitError} and unfittable_each(X, [], AXES, min_distinct=3,
                                                                                n_params=5) == []


def test_worker_processes_give_the_batched_results_of_one() -> None:
    """More resamples than one batch (``BATCH``): two tasks, in this process or in two workers, bit for bit."""
    df = powerlaw_grid(11)
    kw = {"y": "acc", "axes": AXES, "n_boot": BATCH + 100, "seed": 3, "group": "run_id"}
    one, two = bootstrap(df, "powerlaw", workers=1, **kw), bootstrap(df, "powerlaw", workers=2, **kw)
    for k in one.samples:
        assert np.array_equal(one.samples[k], two.samples[k], equal_nan=True), k


def test_forms_without_a_batched_refitter_keep_their_own() -> None:
    assert Form.batch_refitter is not None
    df = powerlaw_grid(12)
    full = fit(df, "poly1", y="acc", axes=AXES)
    X, y = df[AXES].to_numpy(), df["acc"].to_numpy()
    assert get_form("poly1").batch_refitter(full, X, y, None) is None
    assert type(get_form("logit1")).batch_refitter is Form.batch_refitter  # closed-form refits: none needed
    assert counts([np.array([0, 0, 2])], 3).tolist() == [[2.0, 0.0, 1.0]]


def test_a_batch_that_fails_as_a_whole_is_refitted_one_resample_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    df = powerlaw_grid(13)

    def broken(X: np.ndarray, err: np.ndarray, sol: object, idx: object, **kw: object) -> list[object]:
        raise np.linalg.LinAlgError("Singular matrix")

    monkeypatch.setattr("scaling.forms.powerlaw.solve_warm_batch", broken)
    kw = {"y": "acc", "axes": AXES, "n_boot": 12, "seed": 4, "group": "run_id"}
    a, b = bootstrap(df, "powerlaw", batched=True, **kw), bootstrap(df, "powerlaw", batched=False, **kw)
    assert a.failures == {} and all(np.array_equal(a.samples[k], b.samples[k], equal_nan=True) for k in b.samples)


def test_a_singular_screen_system_discards_that_resamples_screen() -> None:
    """As ``varpro.screen`` does on its LinAlgError: every row of that resample is no candidate."""
    G = np.tile(np.eye(2), (3, 4, 1, 1))
    G[1, 2] = 0.0
    lower = [[G[..., i, j] for j in range(2)] for i in range(2)]
    x, singular = vb._solve(lower, [np.ones((3, 4))] * 2)
    assert singular.tolist() == [False, True, False] and np.allclose(x[[0, 2]], 1.0)


def test_the_screen_solver_solves_gram_systems() -> None:
    """``varpro_batch._solve`` (LDL', vectorised) against numpy's LU on random Gram matrices plus a ridge."""
    rng = np.random.default_rng(15)
    Z = rng.standard_normal((5, 6, 4, 30))
    G = np.matmul(Z, Z.transpose(0, 1, 3, 2)) + 1e-12 * np.eye(4)
    b = rng.standard_normal((5, 6, 4))
    x, singular = vb._solve([[G[..., i, j] for j in range(4)] for i in range(4)], list(np.moveaxis(b, -1, 0)))
    assert not singular.any()
    np.testing.assert_allclose(x, np.linalg.solve(G, b[..., None])[..., 0], rtol=1e-10, atol=1e-12)


def test_bnsl_without_breaks_batched_equals_per_resample() -> None:
    """err = 0.1 + 2 x^-0.3 on 12 levels of one axis, 3 runs each: bnsl selects no break, and its batched
    refits (``bnsl_core.solve_warm_batch``) give the per-resample refits' parameters and percentiles."""
    x = np.repeat(np.geomspace(1.0, 1e4, 12), 3)
    rng = np.random.default_rng(14)
    df = pd.DataFrame({"x": x, "run_id": [f"r{i}" for i in range(len(x))],
                       "loss": (0.1 + 2.0 * x**-0.3) * np.exp(0.01 * rng.standard_normal(len(x)))})
    full = fit(df, "bnsl", y="loss", axes=["x"], kind="loss")
    assert set(full.params.index) == {"a", "b", "c0"}
    kw = {"y": "loss", "axes": ["x"], "kind": "loss", "n_boot": 30, "seed": 6, "full": full, "group": "run_id"}
    batched, ref = bootstrap(df, "bnsl", batched=True, **kw), bootstrap(df, "bnsl", batched=False, **kw)
    for name in full.params.index:
        assert np.allclose(batched.samples[name], ref.samples[name], rtol=SOLVER, atol=1e-9), name
        for level, (lo, hi) in ref.params[name].intervals.items():
            assert batched.params[name].intervals[level] == pytest.approx((lo, hi), rel=SOLVER, abs=1e-9)


@pytest.mark.parametrize("form", ["powerlaw", "powerlaw_chance", "saturating", "m4", "bnsl"])
def test_forms_with_a_batched_refitter_keep_their_predictor(form: str) -> None:
    """A form's predictor (``Form.predictor``, from main) at its fit's own parameters gives the fit's
    predictions: the batched refitter and the predictor live side by side on the form's class."""
    if form == "bnsl":
        x = np.repeat(np.geomspace(1.0, 1e4, 12), 3)
        df = pd.DataFrame({"x": x, "loss": 0.1 + 2.0 * x**-0.3})
        full, X = fit(df, form, y="loss", axes=["x"], kind="loss"), df[["x"]].to_numpy()
    else:
        df = m4_grid(3) if form == "m4" else chance_grid(3) if form == "powerlaw_chance" else powerlaw_grid(3)
        options = {"chance": 0.9} if form == "powerlaw_chance" else {}
        full, X = fit(df, form, y="acc", axes=AXES, **options), df[AXES].to_numpy()  # type: ignore[arg-type]
    predict = get_form(form).predictor(full, full.params.to_dict())
    assert predict is not None
    np.testing.assert_allclose(predict(X), full.predict(df), rtol=1e-12)
