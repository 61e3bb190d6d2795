"""Chinchilla's approach 1 on the run database's own training curves (issue 19): the step table of
``scaling.load_curves``, the envelope priced by a column of each step's compute, and the CLI's ``--curves``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import scaling
from runs_db import open_db
from scaling.allocation.sweeps import LossLaw, training_curves
from tests.cli_helpers import invoke, ok_json, one_line_error

FULL_224 = {"data_fraction": 1.0, "image_px": 224.0}


def test_a_cost_column_prices_the_envelope_as_the_cost_model_does() -> None:
    """A column holding 6ND at every step is the '6nd' cost model: the same envelope, the same resamples."""
    df = training_curves(LossLaw.of("chinchilla"), np.geomspace(3e7, 3e9, 9), seed=4)
    df["flops"] = 6.0 * df["params"] * df["tokens"]
    by_model = scaling.compute_optimal(df, 1e20, y="loss", axes=["params", "tokens"], cost="6nd", method="envelope",
                                       n_boot=20, seed=1).answer("envelope")
    by_column = scaling.compute_optimal(df, 1e20, y="loss", axes=["params", "tokens"], budget_column="flops",
                                        method="envelope", n_boot=20, seed=1)
    got = by_column.answer("envelope")
    assert by_column.cost_model == {"formula": "column 'flops'", "column": "flops"}
    for q in ("n_opt", "d_opt", "a", "b"):
        assert got.estimates[q] == pytest.approx(by_model.estimates[q], rel=1e-9)
        assert got.interval(q, 0.95) == pytest.approx(by_model.interval(q, 0.95), rel=1e-9)


def test_the_database_curves_become_a_priced_step_table(published_db_path: Path) -> None:
    """The published grid at full data and 224 px: one run per ViT size, every logged step after the first
    (step 0 has seen nothing; a step logged again by a resumed job counts once, its latest value), images
    seen = step x global batch, FLOPs pro rata to the run's total."""
    table = scaling.load_curves(published_db_path, where=FULL_224)
    db = open_db(published_db_path)
    runs = db.list_runs()
    runs = runs[(runs["data_fraction"] == 1.0) & (runs["image_px"] == 224)]
    assert sorted(table["arch"].unique()) == sorted(runs["arch"]) == ["vit_b14", "vit_h14", "vit_l14", "vit_s14"]
    for _, run in runs.iterrows():
        h = db.history(run["run_id"], phase="pretrain")
        h = h[(h["key"] == "train_loss") & (h["step"] > 0)].sort_values(["step", "segment"])
        h = h.drop_duplicates("step", keep="last")  # resumed jobs log some steps again: the latest counts
        rows = table[table["run_id"] == run["run_id"]]
        assert len(rows) == len(h) and list(rows["step"]) == sorted(h["step"])
        assert (rows["samples_seen"] == rows["step"] * run["global_batch"]).all()
        per_sample = run["pretrain_flops"] / run["samples_seen"]
        assert rows["pretrain_flops"].to_numpy() == pytest.approx(rows["samples_seen"].to_numpy() * per_sample,
                                                                  rel=1e-12)
        assert rows["epochs"].to_numpy() == pytest.approx(rows["samples_seen"].to_numpy() / run["data_frames"],
                                                          rel=1e-12)
        assert rows["train_loss"].to_numpy() == pytest.approx(h["value"].to_numpy(), rel=0)
    with pytest.raises(scaling.ScalingError, match=r"no pretrain curves of 'top9'.*pretrain:train_loss"):
        scaling.load_curves(published_db_path, key="top9", where=FULL_224)
    with pytest.raises(scaling.ScalingError, match="no column 'colour'"):
        scaling.load_curves(published_db_path, where={"colour": 1})
    with pytest.raises(scaling.ScalingError, match="no completed runs match where image_px=999"):
        scaling.load_curves(published_db_path, where={"image_px": 999})


def test_the_cli_answers_from_the_database_curves_as_the_api_does(published_db_path: Path) -> None:
    args = ("project", "--method", "envelope", "--curves", "train_loss", "--where", "data_fraction=1,image_px=224",
            "--budget", "5e19", "--bootstrap", "50")
    out = ok_json(published_db_path, *args)
    table = scaling.load_curves(published_db_path, where=FULL_224)
    api = scaling.compute_optimal(table, 5e19, y="train_loss", axes=["n_params", "samples_seen"],
                                  budget_column="pretrain_flops", method="envelope", n_boot=50)
    got = out["methods"][0]
    assert got["estimates"] == pytest.approx(api.answer("envelope").estimates, rel=1e-12)
    epochs = table["epochs"].max()
    assert any(f"up to {epochs:.3g} times" in note for note in got["notes"])  # the loss is on repeated data
    assert invoke(published_db_path, "project", "--curves", "train_loss", "--budget", "1e19").exit_code == 2
    err = one_line_error(invoke(published_db_path, *args[:4], "nokey", *args[5:]))
    assert "no pretrain curves of 'nokey'" in err
    err = one_line_error(invoke(published_db_path, *args[:6], "data_fraction=0.1,image_px=224", *args[7:]))
    assert "envelope:" in err  # an edge size is best at every cost there: said, not answered


def test_the_readme_numbers_of_the_database_envelope(published_db_path: Path) -> None:
    """README, 'envelope on the run database's own curves': N* 8.7e7 at 5e19 FLOPs, a = -0.08, 19 of 200
    resampled sets of runs with an answer, the frames seen up to 56 times (the CLI's defaults: 200, seed 0)."""
    table = scaling.load_curves(published_db_path, where=FULL_224)
    a = scaling.compute_optimal(table, 5e19, y="train_loss", axes=["n_params", "samples_seen"],
                                budget_column="pretrain_flops", method="envelope").answer("envelope")
    assert f"{a.n_opt:.2g}" == "8.7e+07" and f"{a.estimates['a']:.2f}" == "-0.08"
    assert (a.n_boot, a.n_ok) == (200, 19)
    assert round(float(table["epochs"].max())) == 56
