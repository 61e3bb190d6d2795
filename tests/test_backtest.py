"""Backtests: splits, seed noise, held-out errors against hand computations, and ranking of a known form."""

from __future__ import annotations

import math
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from scaling.errors import ScalingError
from scaling.forms import list_forms
from scaling.forms.result import fit
from scaling.selection.backtest import RANKING_COLUMNS, axis_levels, backtest, make_splits, seed_noise

AXES = ["n_params", "data_hours", "image_px"]
ALL_FORMS = [f.name for f in list_forms()]
CHANCE = {"powerlaw_chance": {"chance": 0.999}}


def grid(gen, sigma: float, seed: int = 0, reps: int = 3) -> pd.DataFrame:
    rows = list(product(np.geomspace(2e7, 6e8, 4), np.geomspace(0.5, 5000, 5), [224, 336, 448], range(reps)))
    df = pd.DataFrame(rows, columns=[*AXES, "rep"])
    df["value"] = gen(df) + sigma * np.random.default_rng(seed).standard_normal(len(df))
    return df


def powerlaw_truth(df: pd.DataFrame) -> np.ndarray:
    return 1 - (0.25 + 40 * df.n_params**-0.3 + 0.25 * df.data_hours**-0.3 + 30 * df.image_px**-1.0)


def logit_truth(df: pd.DataFrame) -> np.ndarray:
    return expit(-6 + 0.25 * np.log10(df.n_params) + 0.3 * np.log10(df.data_hours) + np.log10(df.image_px))


def test_axis_levels_merge_nearby_values() -> None:
    # ViT-H at 224/448/476 px: parameter counts differ by their position embeddings only (0.2%).
    v = np.array([21_619_584, 85_706_496, 630_764_800, 631_747_840, 631_916_800, 303_178_752])
    assert list(axis_levels(v, 0.05)) == [0, 1, 3, 3, 3, 2]
    assert list(axis_levels(v, 0.0)) == [0, 1, 3, 4, 5, 2]


def test_splits_hold_out_the_largest_levels() -> None:
    df = grid(powerlaw_truth, 0.0, reps=1)
    splits = {s.name: s for s in make_splits(df, AXES)}
    assert set(splits) == {"largest n_params", "largest data_hours", "largest image_px",
                           "joint: largest of every axis", "rolling: data_hours <= 5", "rolling: data_hours <= 50"}
    s = splits["largest data_hours"]
    assert np.all(df.data_hours[s.test] == 5000) and np.all(df.data_hours[s.train] < 5000)
    j = splits["joint: largest of every axis"]
    corner = (df.n_params == df.n_params.max()) | (df.data_hours == 5000) | (df.image_px == 448)
    assert np.array_equal(j.test, corner.to_numpy()) and np.array_equal(j.train, ~corner.to_numpy())
    r = splits["rolling: data_hours <= 5"]
    assert r.n_train == 4 * 2 * 3 and r.n_test == 4 * 3 * 3


def test_seed_noise_is_the_pooled_within_configuration_sd() -> None:
    df = pd.DataFrame({"n_params": [1e7] * 3 + [1e8] * 2 + [1e9], "data_hours": [1.0] * 6, "image_px": [224] * 6,
                       "value": [0.10, 0.12, 0.14, 0.30, 0.36, 0.5]})
    sn = seed_noise(df, "value", AXES)
    # groups: var(0.10, 0.12, 0.14) = 4e-4 with 2 dof; var(0.30, 0.36) = 1.8e-3 with 1 dof; singleton ignored
    assert sn.dof == 3 and sn.n_groups == 2
    assert sn.sigma == pytest.approx(math.sqrt((2 * 4e-4 + 1 * 1.8e-3) / 3), rel=1e-12)


def test_seed_noise_of_the_published_grid(published_db_path: Path) -> None:
    from runs_db import open_db

    g = open_db(published_db_path).grid(metric="top1")
    sn = seed_noise(g, "value", AXES)
    # independent: pooled SD over (arch, image_px, data_fraction), the study's 3 subset seeds per point
    grp = g.groupby(["arch", "image_px", "data_fraction"])["value"]
    n, var = grp.count(), grp.var(ddof=1)
    ref = math.sqrt(float(((n - 1) * var.fillna(0)).sum()) / float((n - 1).sum()))
    assert sn.sigma == pytest.approx(ref, rel=1e-12)
    assert sn.n_groups == 24 and sn.dof == 48


def test_held_out_errors_match_a_hand_refit() -> None:
    df = grid(logit_truth, 0.005, seed=3)
    r = backtest(df, ["poly1"], y="value", axes=AXES, rolling_axis=None)
    row = next(x for x in r.results if x.split == "largest data_hours")
    train, test = df[df.data_hours < 5000], df[df.data_hours == 5000]
    pred = fit(train, "poly1", y="value", axes=AXES).predict(test)
    d = pred - test.value.to_numpy()
    assert row.rmse == pytest.approx(100 * math.sqrt(np.mean(d**2)), rel=1e-9)
    assert row.bias == pytest.approx(100 * np.mean(d), rel=1e-9)
    logd = np.log(1 - pred) - np.log(1 - test.value.to_numpy())
    assert row.rmse_log == pytest.approx(math.sqrt(np.mean(logd**2)), rel=1e-9)
    assert row.noise_units == pytest.approx(math.sqrt(np.mean(d**2)) / r.noise.sigma, rel=1e-9)


def test_powerlaw_grid_ranks_powerlaw_first() -> None:
    df = grid(powerlaw_truth, 0.003)
    r = backtest(df, ALL_FORMS, y="value", axes=AXES, options=CHANCE)
    same_law = {"powerlaw", "saturating"}  # saturating is M2, the same additive law in other parameters
    assert r.ranking[0] in same_law and r.recommended in same_law
    # and by a margin: the truth extrapolates within ~noise, the forms of other laws do not
    others = [f for f in r.ranking if f not in same_law | {"m4"}]  # m4 contains the law (alpha = 0)
    assert r.by_form["powerlaw"].noise_units < 2.0 < r.by_form[others[0]].noise_units
    assert set(r.ranking) == set(ALL_FORMS) - {"bnsl"}  # bnsl is a one-axis law: skipped on three axes
    assert "largest data_hours" in r.common_splits


def test_logit_grid_ranks_logit1_first() -> None:
    df = grid(logit_truth, 0.003, seed=1)
    r = backtest(df, ["poly1", "logit1", "powerlaw"], y="value", axes=AXES)
    assert r.ranking[0] == "logit1"
    assert r.by_form["logit1"].noise_units < 2.0


def test_splits_a_form_cannot_fit_are_reported_not_dropped() -> None:
    df = grid(powerlaw_truth, 0.003)
    r = backtest(df, ["poly1", "powerlaw"], y="value", axes=AXES)
    skipped = [x for x in r.results if not x.ok]
    # 3 resolutions: holding out the largest leaves 2, which the power law (3 per axis) cannot fit
    assert any(x.form == "powerlaw" and x.split == "largest image_px" and "image_px" in x.reason for x in skipped)
    assert "largest image_px" not in r.common_splits
    assert r.by_form["powerlaw"].n_skipped >= 1
    # poly1 fits more splits than it is ranked on: its own-splits mean says so, apart from the ranked mean
    poly1 = r.by_form["poly1"]
    assert poly1.splits_averaged == tuple(r.common_splits) and "largest image_px" in poly1.splits_fitted
    assert poly1.n_ok == len(poly1.splits_fitted) > poly1.n_averaged
    doc = r.to_dict()
    assert doc["schema"] == "scaling.backtest/v1" and any(not x["ok"] and x["reason"] for x in doc["results"])


def test_single_level_axes_have_no_split() -> None:
    df = pd.DataFrame({"n_params": [1e8] * 4, "data_hours": [1.0] * 4, "image_px": [224] * 4,
                       "value": [0.1, 0.2, 0.3, 0.4]})
    with pytest.raises(ScalingError, match="single level"):
        backtest(df, ["poly1"], y="value", axes=AXES)


def test_published_grid_backtest_runs_every_form(published_db_path: Path) -> None:
    from runs_db import open_db

    g = open_db(published_db_path).grid(metric="top1")
    r = backtest(g, ["poly1", "logit1", "powerlaw"], y="value", axes=AXES)
    # resolution varies only within ViT-H: holding out ViT-H leaves one resolution, which no form can fit
    assert all(not x.ok and "image_px" in x.reason for x in r.results if x.split == "largest n_params")
    assert r.common_splits == ["largest data_hours", "rolling: data_hours <= 49.89"]
    assert r.recommended == r.ranking[0]
    for f in ("poly1", "logit1", "powerlaw"):
        assert 0.5 < r.by_form[f].rmse < 10  # accuracy points


def test_each_mean_names_the_splits_it_averages(published_db_path: Path) -> None:
    """Two forms and three forms on the shipped grid: the ranking's means average the splits every form
    fits (4 for poly1 and logit1, 2 beside poly2) and say so; each form's own-splits mean is the same."""
    from runs_db import open_db

    g = open_db(published_db_path).grid(metric="top5")
    two = backtest(g, ["poly1", "logit1"], y="value", axes=AXES)
    three = backtest(g, ["poly1", "logit1", "poly2"], y="value", axes=AXES)
    assert len(two.splits) == len(three.splits) == 6
    assert two.common_splits == ["largest data_hours", "largest image_px", "rolling: data_hours <= 4.989",
                                 "rolling: data_hours <= 49.89"]
    assert three.common_splits == ["largest data_hours", "rolling: data_hours <= 49.89"]
    for r in (two, three):
        per = {(x.form, x.split): x for x in r.results}
        for f, s in r.by_form.items():
            assert s.splits_averaged == tuple(r.common_splits) and s.n_averaged == len(r.common_splits)
            assert s.splits_fitted == tuple(x.split for x in r.results if x.form == f and x.ok)
            for key in ("rmse", "bias", "rmse_log", "noise_units"):
                over = [getattr(per[f, name], key) for name in s.splits_averaged]
                own = [getattr(per[f, name], key) for name in s.splits_fitted]
                # weighted by each split's training rows (the earliest rolling origins count least)
                w_over = [per[f, name].n_train for name in s.splits_averaged]
                w_own = [per[f, name].n_train for name in s.splits_fitted]
                assert getattr(s, key) == pytest.approx(np.average(over, weights=w_over), rel=1e-12)
                assert getattr(s, f"own_{key}") == pytest.approx(np.average(own, weights=w_own), rel=1e-12)
        text = r.summary()
        assert f"ranked on the {len(r.common_splits)} of 6 splits every form fits: {'; '.join(r.common_splits)}" \
            in text
        assert " ok," not in text  # no bare "4 ok" beside a mean over fewer splits
        doc = r.to_dict()
        for s in doc["summary"].values():
            assert s["splits_averaged"] == r.common_splits and s["n_ok"] == len(s["splits_fitted"])
    for f in ("poly1", "logit1"):
        a, b = two.by_form[f], three.by_form[f]
        assert a.splits_fitted == b.splits_fitted and a.n_ok == 4
        assert (a.own_rmse, a.own_bias, a.own_rmse_log, a.own_noise_units) == \
            (b.own_rmse, b.own_bias, b.own_rmse_log, b.own_noise_units)
        assert a.rmse == a.own_rmse != b.rmse  # alone, the two forms are ranked on their own four splits

    def row(r, form: str) -> list[str]:
        return next(x for x in r.ranking_rows() if x[1] == form)

    col = RANKING_COLUMNS.index
    own = slice(col("splits fitted"), None)
    assert row(two, "poly1")[own] == row(three, "poly1")[own] == ["4 of 6", "3.6", "-2.18"]
    assert row(two, "poly1")[col("splits averaged")] == "4 of 6" and row(two, "poly1")[col("mean RMSE")] == "3.6"
    assert row(three, "poly1")[col("splits averaged")] == "2 of 6" and row(three, "poly1")[col("mean RMSE")] == "3.15"
    assert row(three, "poly2")[own] == ["2 of 6", "7.23", "6.31"]
    # the summary prints those rows: poly1's own-splits cells are the same text in both
    for r in (two, three):
        lines = [w for w in map(str.split, r.summary().splitlines()) if w[:1] in (["1"], ["2"], ["3"])]
        assert " ".join(row(r, "poly1")).split() in lines


def test_splits_are_weighted_by_training_rows_and_the_one_se_rule_prefers_fewer_parameters() -> None:
    """A learning curve from a known power law with noise: rolling origins weighted by their training
    points; among forms within one standard error of the best, the fewest parameters are recommended."""
    from scaling.selection.weights import one_se_choice, split_weights, weighted_se

    x = np.geomspace(1e3, 1e7, 12)
    rng = np.random.default_rng(3)
    loss = (0.5 + 40.0 * x**-0.3) * np.exp(rng.normal(0, 0.01, x.size))
    table = pd.DataFrame({"x": x, "loss": loss})
    r = backtest(table, ["powerlaw", "m4", "poly1"], y="loss", axes=["x"], kind="loss", rolling_axis="x",
                 level_tol=0.0)
    rolling = [s for s in r.splits if s["kind"] == "rolling-origin"]
    assert rolling and all(r.split_weights[s["name"]] > 0 for s in rolling)
    n_train = {s["name"]: s["n_train"] for s in r.splits}
    total = sum(n_train.values())
    assert r.split_weights == pytest.approx({k: v / total for k, v in n_train.items()}, rel=1e-12)
    first, last = min(rolling, key=lambda s: s["n_train"]), max(rolling, key=lambda s: s["n_train"])
    assert r.split_weights[first["name"]] < r.split_weights[last["name"]]
    # a loss is ranked on the RMSE of log error
    assert r.by_form[r.ranking[0]].score == r.by_form[r.ranking[0]].rmse_log
    assert "log error" in r.ranked_by
    # the one-SE rule by hand
    best = r.by_form[r.ranking[0]]
    near = [f for f in r.ranking if r.by_form[f].score <= best.score + best.score_se]
    assert r.recommended == min(near, key=lambda f: (r.by_form[f].parameters, r.ranking.index(f)))
    assert one_se_choice(r.ranking, r.by_form) == r.recommended
    # weighted_se against an independent computation (Kish's effective number of splits)
    v, w = [1.0, 2.0, 4.0], [1.0, 1.0, 2.0]
    wn = np.asarray(w) / sum(w)
    mean = float(np.sum(wn * v))
    n_eff = 1 / float(np.sum(wn**2))
    var = float(np.sum(wn * (np.asarray(v) - mean) ** 2)) * n_eff / (n_eff - 1)
    assert weighted_se(v, w) == pytest.approx(math.sqrt(var / n_eff), rel=1e-12)
    assert split_weights([]) == {}


def test_logit_forms_need_a_fraction_by_kind_not_by_value() -> None:
    """A loss below 1 is still a loss: logit forms are not eligible; an error rate in (0, 1) is a fraction."""
    x = np.geomspace(1e3, 1e6, 8)
    small_loss = pd.DataFrame({"x": x, "y": 0.1 + 0.5 * x**-0.2})
    r = backtest(small_loss, ["poly1", "logit1"], y="y", axes=["x"], kind="loss", rolling_axis="x", level_tol=0.0,
                 unavailable={})
    fitted_logit = [s for s in r.results if s.form == "logit1" and s.ok]
    assert fitted_logit  # the engine itself would fit it; the workflows ask the form's capability:
    import scaling

    bt = scaling.backtest(small_loss, ["poly1", "logit1"], y="y", axes=["x"], kind="loss")
    assert "logit1" not in bt.ranking and any("fraction" in s.reason for s in bt.results if s.form == "logit1")
    err = scaling.backtest(small_loss, ["poly1", "logit1"], y="y", axes=["x"], kind="error")
    assert "logit1" in err.ranking and err.direction.ranks_on_log and err.unit == "error points"
    with pytest.raises(scaling.ScalingError, match="fraction"):
        scaling.fit(small_loss, "logit1", y="y", axes=["x"], kind="loss")
