"""Human targets on the 16-class OOD sets of Geirhos et al. 2021: the recompute tool on a repository of known
answers, the shipped numbers against their own counts and the paper's, `scaling targets --eval-set`, and a
projection on an OOD eval set against its closed form."""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest

import runs_db
import scaling
from runs_db.ood import MEAN_EVAL_SET, condition_of, human_ood, left_out, same_condition
from scaling.core.targets import PRESETS, default_target_for, list_targets, resolve_target
from scaling.errors import ProjectionError
from tests.cli_helpers import invoke, ok_json, one_line_error

ROOT = Path(__file__).resolve().parents[1]
COMMIT = "79ed7cd1d9ac3a114e71b6638f0a98bdd627316c"


def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ood_human_targets", ROOT / "tools" / "ood_human_targets.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mini_repository(root: Path) -> Path:
    """A model-vs-human-shaped repository whose answers are known: contrast (2 subjects; c100 and c03 left
    out by the benchmark), sketch (1 subject, an 'na' answer), and a model's trials that must be ignored."""
    header = "subj,session,trial,rt,object_response,category,condition,imagename\n"
    contrast = [  # subject, answer, truth, condition (as the CSV spells it)
        ("subject-01", "knife", "knife", "c50"), ("subject-01", "car", "knife", "c50"),
        ("subject-01", "car", "car", "c100"), ("subject-01", "car", "car", "c03"),
        ("subject-02", "car", "car", "c30"), ("subject-02", "dog", "dog", "c30"),
        ("subject-02", "dog", "cat", "c03"), ("resnet50", "cat", "cat", "c50"),
    ]
    for subject in ("subject-01", "subject-02", "resnet50"):
        rows = [r for r in contrast if r[0] == subject]
        path = root / "raw-data" / "contrast" / f"contrast_{subject}_session_1.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "".join(f"{s},1,{i},0.5,{a},{t},{c},000{i}_cop_s01_{c}_{t}_10_n0_{i}.png\n"
                                         for i, (s, a, t, c) in enumerate(rows, 1)))
    sketch = root / "raw-data" / "sketch" / "sketch_subject-01_session_1.csv"
    sketch.parent.mkdir(parents=True)
    sketch.write_text(header + "subject-01,1,1,0.5,boat,boat,0,x.png\nsubject-01,1,2,NaN,na,dog,0,y.png\n"
                      "subject-01,1,3,0.5,dog,dog,0,z.png\nsubject-01,1,4,0.5,cat,dog,0,w.png\n")
    plot = root / "modelvshuman" / "plotting" / "plot.py"
    plot.parent.mkdir(parents=True)
    plot.write_text("import os\nEXCLUDE_CONDITIONS = {'contrast': ['c100', 'c03', 'c01']}\nEXCLUDE = True\n")
    helper = root / "modelvshuman" / "helper"
    helper.mkdir(parents=True)
    names = sorted(["knife", "keyboard", "elephant", "bicycle", "airplane", "clock", "oven", "chair", "bear",
                    "boat", "cat", "bottle", "truck", "car", "bird", "dog"])
    body = "".join(f"    {n}_indices = [{i}, {i + 100}]\n" for i, n in enumerate(names))
    (helper / "human_categories.py").write_text(f"class HumanCategories(object):\n    knife = frozenset(['x'])\n{body}")
    (helper / "categories.txt").write_text("".join(f"n{i:08d} class {i}\n" for i in range(1000)))
    return root


def test_the_tool_computes_known_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mod = tool()
    monkeypatch.setattr(mod, "DATASETS", ("contrast", "sketch"))
    read, files, _ = mod.checkout_reader(mini_repository(tmp_path / "mvh"))
    result = mod.compute(read, files, "abc")
    contrast, sketch = result["sets"]
    # contrast: humans only, c100 and c03 left out: subject-01 1/2 at c50, subject-02 2/2 at c30 -> 3/4
    assert (contrast["correct"], contrast["trials"], contrast["trials_left_out"]) == (3, 4, 3)
    assert contrast["value"] == 0.75 and contrast["conditions"] == ["c30", "c50"]
    assert (contrast["subject_min"], contrast["subject_max"], contrast["subjects"]) == (0.5, 1.0, 2)
    # sketch: no exclusions; the missing answer counts as wrong: 2/4
    assert (sketch["value"], sketch["trials"], sketch["eval_set"]) == (0.5, 4, "mvh-sketch")
    assert result["mean"]["value"] == 0.625 and result["human_trials_read"] == 11
    assert result["sixteen_classes"]["categories"]["airplane"] == ["n00000000", "n00000100"]
    assert result["sixteen_classes"]["categories"]["truck"] == ["n00000015", "n00000115"]


def test_the_shipped_numbers_hold_together() -> None:
    doc = json.loads((ROOT / "runs_db" / "data" / "model-vs-human" / "human_ood.json").read_text())
    assert doc["commit"] == COMMIT and doc["repository"] == "bethgelab/model-vs-human"
    # the paper's abstract: 85,120 psychophysical trials across 90 participants (Geirhos et al. 2021)
    assert doc["human_trials_read"] == 85_120 and doc["subjects_read"] == 90
    assert len(doc["sets"]) == 17 and sum(s["trials"] + s["trials_left_out"] for s in doc["sets"]) == 85_120
    for s in doc["sets"]:
        assert s["value"] == s["correct"] / s["trials"] and 1 / 16 < s["value"] < 1
        assert s["subject_min"] <= s["value"] <= s["subject_max"]
    assert doc["mean"]["value"] == pytest.approx(math.fsum(s["value"] for s in doc["sets"]) / 17, rel=1e-15)
    assert sum(len(v) for v in doc["sixteen_classes"]["categories"].values()) == 207  # ImageNet classes used
    data = human_ood()
    assert data.mean == doc["mean"]["value"] and [s.eval_set for s in data.sets] == doc["mean"]["sets"]


@pytest.mark.skipif(not os.environ.get("MODEL_VS_HUMAN_GIT"), reason="set MODEL_VS_HUMAN_GIT to a clone of "
                    "bethgelab/model-vs-human to recompute the shipped numbers from its files")
def test_the_shipped_numbers_recompute_from_the_repository() -> None:
    assert tool().main(["--git-dir", os.environ["MODEL_VS_HUMAN_GIT"], "--commit", COMMIT, "--check"]) == 0


def test_conditions_are_read_from_file_names_and_compared_by_value() -> None:
    assert condition_of("0001_cop_s01_c30_knife_10_n03041632_7380.png") == "c30"
    assert condition_of("sketchy.png") is None
    assert same_condition("3", "3.0") and same_condition("false", "False") and same_condition("0.90", "0.9")
    assert not same_condition("c30", "c03")
    assert left_out("mvh-uniform-noise", "0002_nse_dnn_0.90_knife_10_n03041632_82878.png")
    assert not left_out("mvh-uniform-noise", "0001_nse_dnn_0.03_elephant_10_n02504458_7209.png")
    assert not left_out("mvh-sketch", "anything.png") and not left_out("imagenet-val", "x.png")


def test_every_set_and_the_mean_is_a_named_target_citing_file_and_commit() -> None:
    data = human_ood()
    ood = [t for t in list_targets() if t.name.startswith("human-ood-")]
    assert len(ood) == 18
    for s in data.sets:
        t = PRESETS[f"human-ood-{s.dataset}"]
        assert (t.value, t.metric, t.eval_set) == (s.human_accuracy, "top1", s.eval_set)
        assert f"bethgelab/model-vs-human@{COMMIT} raw-data/{s.dataset}/*.csv" in t.source
        assert "Geirhos et al. 2021" in t.source
    mean = PRESETS["human-ood-mean"]
    assert (mean.value, mean.eval_set) == (data.mean, MEAN_EVAL_SET) and 0.7 < mean.value < 0.75
    assert default_target_for("mvh-sketch") == "human-ood-sketch" and default_target_for(None) == "human-top5"
    with pytest.raises(ProjectionError, match="defined on eval set 'mvh-sketch', not 'imagenet-val'"):
        resolve_target("human-ood-sketch", eval_set="imagenet-val")
    assert resolve_target("human-ood-sketch", protocol="linprobe-in1k").protocol == "linprobe-in1k"


def test_scaling_targets_selects_by_eval_set(published_db_path: Path) -> None:
    every = ok_json(published_db_path, "targets")
    assert len(every["targets"]) == 20 and every["default"] == "human-top5"
    sketch = ok_json(published_db_path, "targets", "--eval-set", "mvh-sketch")
    assert [t["name"] for t in sketch["targets"]] == ["human-ood-sketch"] and sketch["default"] == "human-ood-sketch"
    assert sketch["targets"][0]["value"] == human_ood().by_eval_set("mvh-sketch").human_accuracy  # type: ignore[union-attr]


# A known law on an OOD set: logit(top-1) = B0 + B1 log10 N + B2 log10 D + B3 log10 R, no noise.
B = (-9.0, 1.0, 0.6, 0.5)


def ood_database(published_db_path: Path, tmp_path: Path, eval_set: str) -> Path:
    """The published grid with every run's top-1 on ``eval_set`` from the law ``B``, imported as a CSV."""
    db_path = tmp_path / "runs.sqlite"
    db = runs_db.open_db(db_path)
    db.export(tmp_path / "grid.csv")
    frame = pd.read_csv(tmp_path / "grid.csv", keep_default_na=False, dtype=str)
    rows = frame[(frame["metric"] == "top1") & (frame["selection"] == "best-epoch")].copy()
    z = (B[0] + B[1] * np.log10(rows["n_params"].astype(float)) + B[2] * np.log10(rows["data_hours"].astype(float))
         + B[3] * np.log10(rows["image_px"].astype(float)))
    rows["eval_set"], rows["value"] = eval_set, [repr(float(v)) for v in 1 / (1 + np.exp(-z))]
    rows["eval_source_file"] = "synthetic"
    rows.to_csv(tmp_path / "ood.csv", index=False)
    report = db.import_paths([tmp_path / "ood.csv"])
    assert (report.runs_unchanged, report.evals_added) == (78, 78)
    return db_path


def test_a_projection_on_an_ood_set_aims_at_its_human_target(published_db_path: Path, tmp_path: Path) -> None:
    db_path = ood_database(published_db_path, tmp_path, "mvh-sketch")
    doc = ok_json(db_path, "project", "--eval-set", "mvh-sketch", "--form", "logit1", "--mode", "solve")
    human = human_ood().by_eval_set("mvh-sketch").human_accuracy  # type: ignore[union-attr]
    assert doc["target"]["name"] == "human-ood-sketch" and doc["target"]["value"] == human
    point = doc["projections"][0]["point"]
    # closed form: the hours at which the law reaches the human accuracy, the other axes held
    logit = math.log(human / (1 - human))
    hours = 10 ** ((logit - B[0] - B[1] * math.log10(point["n_params"]) - B[3] * math.log10(point["image_px"])) / B[2])
    assert point["data_hours"] == pytest.approx(hours, rel=1e-8)
    # the same through the library, and the ImageNet target refused on this set
    rep = scaling.project(None, None, db=db_path, eval_set="mvh-sketch", form="logit1", mode="solve")
    assert rep.target.name == "human-ood-sketch"
    assert rep.answer("solve data_hours").point["data_hours"] == pytest.approx(hours, rel=1e-8)
    line = one_line_error(invoke(db_path, "project", "--eval-set", "mvh-sketch", "--target", "human-top5"))
    assert "defined on eval set 'imagenet-val', not 'mvh-sketch'" in line


def test_figures_on_an_ood_set_aim_at_its_human_target(published_db_path: Path, tmp_path: Path) -> None:
    """``scaling plot iso|bootstrap|frontier --eval-set mvh-sketch`` draw the set's human target, as
    ``project`` aims at it; before, they drew ImageNet's human-top5 (and refused it on that set)."""
    db_path = ood_database(published_db_path, tmp_path, "mvh-sketch")
    human = human_ood().by_eval_set("mvh-sketch").human_accuracy  # type: ignore[union-attr]
    for figure, extra in (("iso", ["--interval", "none"]), ("bootstrap", ["--bootstrap", "20"]),
                          ("frontier", [])):
        doc = ok_json(db_path, "plot", figure, "--eval-set", "mvh-sketch", "--form", "logit1", *extra,
                      "--out", str(tmp_path / f"{figure}.png"))
        text = json.dumps(doc)
        assert "human-ood-sketch" in text or f"{human:.1%}" in text, (figure, text[:400])
