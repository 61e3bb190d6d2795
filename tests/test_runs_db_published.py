"""The shipped published grid (Orhan 2023) as the default database: counts, spot values, derivations.

Spot values are recomputed here from the raw log files, independently of ``runs_db.mae_logs``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

import runs_db
from runs_db import archs

LOGS = runs_db.published_logs_dir()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> runs_db.RunDB:
    path = tmp_path_factory.mktemp("published") / "runs.sqlite"
    with runs_db.open_db(path) as opened:
        yield opened


def raw_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def log_path(kind: str, name: str) -> Path:
    label = name.rsplit("_", 2)[0]
    return LOGS / f"{kind}_logs" / f"{label}_logs" / f"{name}_log.txt"


def run_by_name(db: runs_db.RunDB, name: str) -> dict:
    runs = db.list_runs(name=name)
    assert len(runs) == 1, name
    return db.get_run(runs.run_id.iloc[0])


def test_shipped_logs_and_license_are_packaged() -> None:
    data = LOGS.parent
    assert (data / "LICENSE").read_text().count("Copyright (c) 2023 Emin Orhan") == 1
    assert "7a66e95201720c9a6b7509cac27e4c1b321050bf" in (data / "README.md").read_text()
    assert len(list(LOGS.glob("pretraining_logs/*/*_log.txt"))) == 78
    assert len(list(LOGS.glob("finetuning_logs/*/*_log.txt"))) == 78


def test_grid_has_78_runs_6_configs_by_13_subsets(db: runs_db.RunDB) -> None:
    assert db.count_runs() == 78
    g = db.grid()
    assert len(g) == 78 and g.run_id.is_unique
    assert (g.source == runs_db.PUBLISHED_SOURCE).all()
    configs = g.groupby(["arch", "image_px"]).size()
    assert len(configs) == 6 and (configs == 13).all()
    subsets = set(zip(g.data_fraction, g.subset_seed, strict=True))
    assert subsets == {(1.0, 1)} | {(f, s) for f in (0.1, 0.01, 0.001, 0.0001) for s in (1, 2, 3)}
    assert ((g.value > 0) & (g.value < 1)).all()
    keys = db.eval_keys()
    assert len(keys) == 4 and (keys.n_runs == 78).all()
    assert set(keys.protocol) == {"finetune-in1k-2pct"} and set(keys.eval_set) == {"imagenet-val"}


@pytest.mark.parametrize("name", ["vith14@476_1.0_1", "vith14@448_0.1_1", "vits14_0.0001_3", "vitl14_0.01_2"])
def test_evals_equal_the_raw_fine_tune_logs(db: runs_db.RunDB, name: str) -> None:
    lines = raw_lines(log_path("finetuning", name))
    best = max(range(len(lines)), key=lambda i: (lines[i]["test_acc1"], -i))
    expected = {
        ("top1", "best-epoch"): (lines[best]["test_acc1"] / 100, best),
        ("top5", "best-epoch"): (lines[best]["test_acc5"] / 100, best),
        ("top1", "last-epoch"): (lines[-1]["test_acc1"] / 100, len(lines) - 1),
        ("top5", "last-epoch"): (lines[-1]["test_acc5"] / 100, len(lines) - 1),
    }
    run = run_by_name(db, name)
    got = {(e["metric"], e["selection"]): (e["value"], e["epoch"]) for e in run["evals"]}
    assert got.keys() == expected.keys()
    for key, (value, epoch) in expected.items():
        assert got[key][0] == pytest.approx(value, abs=1e-12)
        assert got[key][1] == epoch
    assert all(e["n_epochs"] == len(lines) for e in run["evals"])


def test_headline_accuracies_of_the_paper(db: runs_db.RunDB) -> None:
    g = db.grid().set_index("name")
    assert g.loc["vith14@476_1.0_1", "value"] == pytest.approx(0.44114, abs=1e-6)
    assert g.loc["vith14@448_1.0_1", "value"] == pytest.approx(0.43972, abs=1e-6)
    top5 = db.grid(metric="top5").set_index("name")
    assert top5.loc["vith14@448_1.0_1", "value"] == pytest.approx(0.71108, abs=1e-5)


def test_parameter_counts(db: runs_db.RunDB) -> None:
    runs = db.list_runs()
    s = runs[runs.arch == "vit_s14"]
    assert set(s.n_params) == {21_619_584}
    assert set(s.n_params_with_head) == {22_004_584}
    h476 = db.list_runs(arch="vith14", image_px=476)
    assert len(h476) == 13
    assert set(h476.n_params_with_head) == {633_197_800}
    assert set(h476.n_params) == {631_916_800}
    assert (runs.n_params_nonembed < runs.n_params).all()
    for row in runs.itertuples():
        shape = archs.get_arch(row.arch)
        assert row.n_params == archs.encoder_params(shape, row.image_px)
        assert row.n_params_with_head == row.n_params + archs.head_params(shape.width)
        assert row.n_params_nonembed == archs.encoder_params(shape, row.image_px, position_embedding=False)


def test_data_sizes(db: runs_db.RunDB) -> None:
    runs = db.list_runs()
    full = runs[runs.data_fraction == 1.0]
    assert set(full.data_frames) == {17_958_947}
    assert full.data_hours.iloc[0] == pytest.approx(4988.596, abs=1e-3)
    tiny = runs[runs.data_fraction == 0.0001]
    assert set(tiny.data_frames) == {1796}
    assert tiny.data_hours.iloc[0] == pytest.approx(0.49889, abs=1e-5)
    for row in runs.itertuples():
        assert row.data_frames == math.ceil(17_958_947 * row.data_fraction - 1e-9)
        assert row.data_hours == pytest.approx(row.data_frames / 3600, rel=1e-15)


def test_iterations_are_summed_over_resumed_segments(db: runs_db.RunDB) -> None:
    totals = {"vith14_1.0_1": 580_000, "vith14@476_1.0_1": 640_000, "vitb14_1.0_1": 525_000}
    for name, expected_total in totals.items():
        its = [line["it"] for line in raw_lines(log_path("pretraining", name))]
        restarts = [i for i, it in enumerate(its) if it == 0]
        assert len(restarts) > 1, "a resumed run"
        ends = [its[j - 1] for j in restarts[1:]] + [its[-1]]
        run = run_by_name(db, name)
        assert run["pretrain_steps"] == sum(ends) == expected_total
        assert run["pretrain_steps"] > its[-1]
        hist = db.history(run["run_id"], phase="pretrain")
        loss = hist[hist.key == "train_loss"]
        assert len(loss) == len(its)
        assert loss.step.max() == expected_total
        assert loss.segment.max() == len(restarts) - 1


def test_samples_flops_mask_ratio_and_caveats(db: runs_db.RunDB) -> None:
    batch = {("vit_s14", 224): 2048, ("vit_b14", 224): 1024, ("vit_l14", 224): 1024, ("vit_h14", 224): 1024,
             ("vit_h14", 448): 168, ("vit_h14", 476): 136}
    runs = db.list_runs()
    for row in runs.itertuples():
        assert row.global_batch == batch[(row.arch, row.image_px)]
        assert row.samples_seen == row.pretrain_steps * row.global_batch
        assert row.mask_ratio == (0.75 if row.image_px == 224 else 0.8)
        per_image = archs.mae_flops_for_arch(archs.get_arch(row.arch), row.image_px, row.mask_ratio).total
        assert row.pretrain_flops == pytest.approx(per_image * row.samples_seen, rel=1e-12)
        assert row.flops_method == "analytic:mae-matmul-v1 x samples_seen (documented batch)"
        assert row.status == "COMPLETED"
    run = run_by_name(db, "vits14_0.01_2")
    assert "ambiguous" in run["tags"]["mask_ratio_caveat"]
    assert "documented global batch" in run["tags"]["samples_seen_method"]
    assert run["config"]["global_batch"] == 2048
    assert run["run_id"] == runs_db.run_id_for(run["config"])
    assert {h["phase"] for h in run["history"]} == {"pretrain", "finetune"}


def test_reimporting_the_logs_from_another_directory_adds_nothing(db: runs_db.RunDB, tmp_path: Path) -> None:
    copy = tmp_path / "humanlike-vits-logs"
    shutil.copytree(LOGS, copy)
    report = db.import_paths([copy])
    assert (report.files, report.runs_added, report.runs_unchanged, report.evals_added) == (156, 0, 78, 0)
    assert db.count_runs() == 78
