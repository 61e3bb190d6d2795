"""scaling.suggest: a preposterior analysis that ranks candidate runs by expected shrinkage of a projection's
interval per FLOP. Checked against closed forms (OLS prediction variance), the library's bootstrap (same
resamples, same interval), ``project_scale`` (same answer), and synthetic grids with a known form in which
one axis is poorly determined."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import scaling
from scaling.design.candidates import load_candidates, parse_grid_spec
from scaling.design.core import Preposterior, quantity_fn
from scaling.errors import ScalingError
from scaling.uncertainty.bootstrap import quantile
from tests.cli_helpers import invoke, one_line_error

SIGMA = 0.01
FLAT_COST = "1e18 + 0*params"  # every candidate costs the same: the ranking is by shrinkage alone
FAR = {"params": 1e11, "tokens": 1e11}  # a projection beyond both axes


def synthetic(params_levels: list[float], tokens_levels: list[float], seeds: int = 2, noise: float = SIGMA,
              seed: int = 0) -> pd.DataFrame:
    """y = 0.3 + 0.05 log10(params / 1e6) + 0.05 log10(tokens / 1e9) + N(0, noise^2): poly1 is the true form."""
    rng = np.random.default_rng(seed)
    rows = []
    for p in params_levels:
        for t in tokens_levels:
            for _ in range(seeds):
                y = 0.3 + 0.05 * math.log10(p / 1e6) + 0.05 * math.log10(t / 1e9) + noise * rng.standard_normal()
                rows.append({"params": p, "tokens": t, "acc": y})
    return pd.DataFrame(rows)


def run(frame: pd.DataFrame, **kw: object) -> scaling.SuggestResult:
    args = {"form": "poly1", "y": "acc", "axes": ["params", "tokens"], "cost": FLAT_COST, "n_boot": 100, "seed": 1,
            "target": 0.75} | kw
    return scaling.suggest(frame, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("weak", ["tokens", "params"])
def test_the_candidate_along_the_poorly_determined_axis_ranks_first(weak: str) -> None:
    wide, narrow = [1e6, 1e7, 1e8, 1e9], [1e9, 1.3e9]
    frame = synthetic(narrow if weak == "params" else wide, wide if weak == "params" else narrow)
    res = run(frame, question="at", at=FAR)  # with a flat cost, 'scale' FLOPs would not move
    assert res.unit == "accuracy points" and res.width_before > 0
    assert res.best is not None and weak in res.best.beyond
    # The three best extend the weak axis, and extending it shrinks the interval more on average.
    assert all(weak in s.beyond for s in res.scores[:3])
    along = [s.shrinkage for s in res.scores if weak in s.beyond]
    others = [s.shrinkage for s in res.scores if weak not in s.beyond]
    assert along and others and np.mean(along) > 1.5 * np.mean(others)
    assert abs(res.sigma - SIGMA) < 0.4 * SIGMA and "replicate" in res.sigma_source


def test_the_interval_now_is_the_library_bootstrap_and_the_answer_is_project_scale() -> None:
    from scaling.questions.derived import projection_quantities
    from scaling.questions.projection import project_scale, reference_point

    frame = synthetic([1e6, 1e7, 1e8, 1e9], [1e9, 1.3e9])
    fit = scaling.fit(frame, "poly1", y="acc", axes=["params", "tokens"])
    value = quantity_fn(fit, "scale", 0.75, None, None)
    assert abs(value(fit) - math.log10(project_scale(fit, 0.75).scale_factor)) < 1e-8
    pre = Preposterior(fit, frame, value, n_boot=200, seed=3, level=0.9, sigma=SIGMA, group=None)
    boot = scaling.bootstrap(fit, n_boot=200, seed=3, levels=[0.9], group="none",
                             derived=projection_quantities(0.75, reference=reference_point(fit)))
    log_k = np.log10(boot.samples["scale.factor"])  # percentiles interpolate in log10 k, as the suggestion's
    assert pre.before.lower == pytest.approx(quantile(log_k, 0.05), abs=1e-7)
    assert pre.before.upper == pytest.approx(quantile(log_k, 0.95), abs=1e-7)
    assert pre.before.n_ok == boot.n_ok == 200


def test_expected_width_after_matches_the_ols_closed_form() -> None:
    """For OLS the prediction's variance after adding x_c is sigma^2 x0' (X'X + x_c x_c')^-1 x0, whatever y_c
    is; the preposterior's expected shrinkage ratio must match it."""
    frame = synthetic([1e6, 1e7, 1e8], [1e9, 1e10, 1e11], seeds=1, noise=0.02, seed=5)
    fit = scaling.fit(frame, "poly1", y="acc", axes=["params", "tokens"])
    x0 = {"params": 1e10, "tokens": 1e12}
    value = quantity_fn(fit, "at", None, x0, None)
    pre = Preposterior(fit, frame, value, n_boot=400, seed=0, level=0.9, sigma=0.02, group=None, n_outcomes=4)

    def design(p: float, t: float) -> np.ndarray:
        return np.array([1.0, math.log10(p), math.log10(t)])

    X = np.array([design(p, t) for p, t in frame[["params", "tokens"]].to_numpy()])
    v0 = design(x0["params"], x0["tokens"])
    for xc in ({"params": 1e9, "tokens": 1e12}, {"params": 1e7, "tokens": 1e10}):
        c = design(xc["params"], xc["tokens"])
        analytic = math.sqrt((v0 @ np.linalg.solve(X.T @ X + np.outer(c, c), v0))
                             / (v0 @ np.linalg.solve(X.T @ X, v0)))
        after, _ = pre.after(xc)
        assert after.width / pre.before.width == pytest.approx(analytic, abs=0.08)


def test_result_dict_frame_and_budget_are_consistent() -> None:
    frame = synthetic([1e6, 1e7, 1e8, 1e9], [1e9, 1.3e9])
    res = run(frame, cost="6*params*tokens", n_boot=40, top=3)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["schema"] == "scaling.suggest/v1" and len(d["candidates"]) == len(res.scores) == len(res.to_frame())
    for s, c in zip(res.scores, d["candidates"], strict=True):
        assert c["label"] == s.label and c["pretrain_flops"] == pytest.approx(6 * s.point["params"] * s.point["tokens"])
        assert c["shrinkage"] == pytest.approx(res.width_before - c["width_after"])
        assert c["value_per_flop"] == pytest.approx(c["shrinkage"] / c["pretrain_flops"])
    values = [s.value_per_flop for s in res.scores]
    assert values == sorted(values, reverse=True) and [s.rank for s in res.scores] == list(range(1, len(values) + 1))
    assert len(res.chosen) == 3 and "SuggestResult(" in repr(res) and res.summary().count("\n") >= 4
    cap = sorted(s.flops for s in res.scores)[2]
    capped = run(frame, cost="6*params*tokens", n_boot=40, budget=cap)
    assert all(s.flops <= cap for s in capped.scores) and capped.over_budget == len(res.scores) - len(capped.scores)
    with pytest.raises(ScalingError, match="budget"):
        run(frame, cost="6*params*tokens", n_boot=40, budget=-1.0)
    with pytest.raises(ScalingError, match="no candidate within the budget"):
        run(frame, cost="6*params*tokens", n_boot=40, budget=1.0)


def test_default_candidates_extend_the_published_grid_one_step(published_db_path: Path) -> None:
    runs = scaling.load_runs(published_db_path, metric="top5")
    cands = load_candidates(None, runs[runs["metric"] == "top5"], ("n_params", "data_hours", "image_px"), None)
    assert len(cands) == 5 * 4 * 6  # (4 sizes + 1) x (3 px + 1) x (5 hour levels + 1), each once
    trained = [c for c in cands if c.beyond == ("subset_seed",)]
    assert len(trained) == 30 and {c.run["subset_seed"] for c in trained} == {2, 4}
    h14 = next(c for c in cands if c.run["arch"] == "vit_h14" and c.run["image_px"] == 476
               and c.beyond == ("data_hours",))
    assert h14.point["data_hours"] == pytest.approx(4988.596389 * 10, rel=1e-3)  # the grid's step: x10 hours
    # the grid's recipe: the passes of ViT-H/14 at 476 px on 4,989 h (87.04M images), over 10x the hours
    assert h14.flops == pytest.approx(1149.2e9 * 87.04e6 * 10, rel=0.01)  # 1,149.2 GFLOPs per image
    assert h14.run["beyond_corpus"] and h14.run["data_fraction"] is None  # 49,886 h of a 4,989 h corpus
    assert parse_grid_spec("arch=vit_h14;data_hours=5000,50000") == {"arch": ["vit_h14"], "data_hours": ["5000",
                                                                                                        "50000"]}


def test_write_configs_are_train_point_configs(published_db_path: Path, tmp_path: Path) -> None:
    from train.config import FinetuneConfig, PretrainConfig, build, read_config_file, section

    runs = scaling.load_runs(published_db_path, metric="top5")
    res = scaling.suggest(runs, form="logit1", n_boot=20, n_outcomes=1,
                          candidates="arch=vit_s14,vit_b14;image_px=448;data_hours=500,50000")
    out = scaling.write_configs(res, tmp_path / "next", top=4)
    assert len(out.paths) == 2 and len(out.skipped) == 2  # 50,000 h is ten times the corpus
    assert all("more than the corpus" in why for _, why in out.skipped)
    for path in out.paths:
        data = read_config_file(Path(path))
        pre = build(PretrainConfig, section(data, "pretrain", "finetune"), {"data": ["frames/"]})
        ft = build(FinetuneConfig, section(data, "finetune", "pretrain"), {"data": "imagenet/"})
        pre.validate()
        ft.validate()
        assert pre.image_px == 448 and pre.data_fraction == pytest.approx(500 / 4988.6, rel=1e-3) and pre.images > 0
        assert ft.protocol == "finetune-in1k-2pct"


def test_cli_json_equals_the_library(published_db_path: Path) -> None:
    spec = "arch=vit_h14;image_px=476;data_hours=500,50000"
    result = invoke(published_db_path, "suggest", "--bootstrap", "20", "--outcomes", "1", "--candidates", spec,
                    "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    lib = scaling.suggest(scaling.load_runs(published_db_path, metric="top5"), n_boot=20, n_outcomes=1,
                          candidates=spec).to_dict()
    for key in ("candidates", "interval_before", "width_before", "seed_noise", "target"):
        assert doc[key] == lib[key]


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "superhuman"], "superhuman"),
    (["--budget", "-5"], "--budget"),
    (["--candidates", "missing.csv"], "not found"),
    (["--candidates", "BAD"], "neither a CSV file nor a grid spec"),
    (["--candidates", "arch=vit_q14;image_px=224;data_hours=5"], "vit_q14"),
])
def test_cli_bad_input_is_one_line(published_db_path: Path, args: list[str], message: str) -> None:
    line = one_line_error(invoke(published_db_path, "suggest", "--bootstrap", "20", *args))
    assert message in line


def test_cli_bad_candidates_file_names_the_column(published_db_path: Path, tmp_path: Path) -> None:
    bad = tmp_path / "cands.csv"
    bad.write_text("arch,image_px\nvit_h14,476\n")
    line = one_line_error(invoke(published_db_path, "suggest", "--bootstrap", "20", "--candidates", str(bad)))
    assert "data_hours" in line and str(bad) in line


def test_two_worker_processes_give_the_one_process_ranking(published_db_path: Path) -> None:
    """Forked workers (scaling.core.forked) share the resamples and outcome draws: the same table as one process."""
    runs = scaling.load_runs(published_db_path, metric="top5")
    kw = dict(target="human-top5", n_boot=20, n_outcomes=1,
              candidates="arch=vit_h14,vit_b14; image_px=476,224; data_hours=500,5000")
    one = scaling.suggest(runs, workers=1, **kw).to_frame()
    two = scaling.suggest(runs, workers=2, **kw).to_frame()
    assert len(one) == 8
    pd.testing.assert_frame_equal(one, two)
