"""`--ood` records the 16-class OOD sets of Geirhos et al. 2021 under the run database's names of their human
targets: named sets, 16-class decisions on an ImageNet head, the human number's conditions, their mean."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from runs_db.ood import MEAN_EVAL_SET, human_ood  # noqa: E402
from train.config import FinetuneConfig  # noqa: E402
from train.errors import TrainError  # noqa: E402
from train.finetune import EpochScores, sixteen_class_scores, summarise  # noqa: E402
from train.finetune_data import ood_spec, read_ood  # noqa: E402

pytestmark = pytest.mark.train
CATEGORIES = sorted(human_ood().categories)
WNIDS = human_ood().categories
# Ten training classes, as an ImageNet head has them (WNID folders): from 7 of the 16 categories.
TRAIN_CLASSES = sorted([*WNIDS["knife"], *WNIDS["keyboard"], *WNIDS["elephant"], *WNIDS["bicycle"][:1],
                        *WNIDS["car"][:2], *WNIDS["oven"], *WNIDS["bear"][:1]])


def test_sixteen_class_scores_are_mean_probabilities() -> None:
    """Against a numpy reference: softmax, the mean over each category's classes, normalised."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 7))
    groups = ((0, 3), (), (1,), (2, 4, 5, 6))
    got = sixteen_class_scores(torch.tensor(logits, dtype=torch.float64), groups).numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ref = np.stack([p[:, list(g)].mean(1) if g else np.zeros(5) for g in groups], 1)
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    assert (got[:, 1] == 0).all()  # a category the head has no class of is never the answer


def _image(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8), 128).save(path)


def contrast_set(root: Path) -> Path:
    """A model-vs-human-style contrast folder: knife and car images at contrasts 100%, 50%, 30% and 3%."""
    k = 0
    for category in ("knife", "car"):
        for condition in ("c100", "c50", "c30", "c03"):
            for _ in range(2):
                k += 1
                _image(root / category / f"{k:04d}_cop_dnn_{condition}_{category}_10_n00000000_{k}.png")
    return root


def test_a_named_16_class_set_is_scored_on_the_human_conditions(tmp_path: Path) -> None:
    folder = contrast_set(tmp_path / "contrast")
    data = read_ood(f"mvh-contrast={folder}", TRAIN_CLASSES)
    assert data.name == "mvh-contrast" and data.classes == CATEGORIES and len(data.classes) == 16
    # c100 and c03 are left out (the human number leaves them out), c50 and c30 kept: 2 x 2 x 2 images
    assert len(data) == 8 and data.left_out == 8
    assert all("_c50_" in p or "_c30_" in p for p in data.paths)
    assert {data.classes[label] for label in data.labels} == {"knife", "car"}
    assert data.groups is not None and len(data.groups) == 16
    by_category = dict(zip(CATEGORIES, data.groups, strict=True))
    assert [TRAIN_CLASSES[i] for i in by_category["knife"]] == list(WNIDS["knife"])
    assert [TRAIN_CLASSES[i] for i in by_category["car"]] == list(WNIDS["car"][:2]) and by_category["dog"] == ()
    # under its folder's name it is just a 16-class set: every image counts
    plain = read_ood(folder, TRAIN_CLASSES)
    assert plain.name == "contrast" and len(plain) == 16 and plain.left_out == 0


def test_bad_ood_sets_are_one_line(tmp_path: Path) -> None:
    folder = contrast_set(tmp_path / "contrast")
    shutil.copytree(folder / "knife", tmp_path / "dogs" / "dog")
    with pytest.raises(TrainError, match="'dog' has none of its ImageNet classes"):
        read_ood(tmp_path / "dogs", TRAIN_CLASSES)
    _image(folder / "knife" / "sketchy.png")
    with pytest.raises(TrainError, match="no model-vs-human condition field"):
        read_ood(f"mvh-contrast={folder}", TRAIN_CLASSES)
    assert ood_spec("mvh-edge=/data/edge") == ("mvh-edge", Path("/data/edge"))
    assert ood_spec("/data/a=b/edge") == ("edge", Path("/data/a=b/edge"))


def test_the_mean_is_recorded_when_every_set_was_evaluated() -> None:
    sets = [s.eval_set for s in human_ood().sets]
    main = "imagenet-val"
    scores = [{main: {"loss": 1.0, "top1": 0.5, "top5": 0.8}} | {
        n: {"loss": 1.0, "top1": (i + 1) / 20 + 0.1 * e, "top5": 0.9} for i, n in enumerate(sets)} for e in (0, 1)]
    epochs = [EpochScores(e, 1.0, scores[e]) for e in (0, 1)]
    cfg = FinetuneConfig(data="x", protocol="finetune-in1k-2pct", eval_set=main)
    evals, history = summarise(cfg, epochs, [main, *sets], n_classes=1000, top1_only=set(sets))
    assert f"finetune-in1k-2pct/{sets[0]}/top1" in {h["key"] for h in history}
    assert f"finetune-in1k-2pct/{sets[0]}/top5" not in {h["key"] for h in history}
    got = {(e["eval_set"], e["metric"], e["selection"]): e["value"] for e in evals}
    assert got[(MEAN_EVAL_SET, "top1", "last-epoch")] == pytest.approx(np.mean([(i + 1) / 20 + 0.1 for i in range(17)]))
    assert got[(MEAN_EVAL_SET, "top1", "best-epoch")] == pytest.approx(np.mean([(i + 1) / 20 for i in range(17)]))
    assert not any(k[0] in sets and k[1] == "top5" for k in got)  # 16-class sets: top-1, as humans answered
    assert (main, "top5", "best-epoch") in got
    evals, _ = summarise(cfg, epochs, [main, *sets[:-1]], n_classes=1000, top1_only=set(sets))
    assert MEAN_EVAL_SET not in {e["eval_set"] for e in evals}  # 16 of 17 sets: no mean


def test_a_grid_point_records_a_named_16_class_set(tmp_path: Path) -> None:
    """End to end: an ImageNet-like head (WNID class folders of real digits) fine-tuned and scored on a
    model-vs-human contrast folder; the record names the set as the target's eval set."""
    from typer.testing import CliRunner

    from scaling.cli import app
    from tests.test_train_run import tiny_args
    from tests.train_fixtures import clip, digits_folder

    digits, _ = digits_folder(tmp_path)
    wnid = tmp_path / "wnid-digits"
    for split in ("train", "val"):
        for c in range(10):
            shutil.copytree(digits / split / str(c), wnid / split / TRAIN_CLASSES[c])
    contrast = tmp_path / "contrast"
    for category, source in (("knife", "0"), ("car", "1")):
        for k, png in enumerate(sorted((digits / "val" / source).glob("*.png"))[:12]):
            condition = ("c100", "c50", "c30")[k % 3]
            target = contrast / category / f"{k:04d}_cop_dnn_{condition}_{category}_10_n0_{k}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(png, target)
    r = CliRunner().invoke(app, ["--db", str(tmp_path / "runs.sqlite"), "train", "point", *tiny_args(clip()),
                                 "--finetune-data", str(wnid), "--ood", f"mvh-contrast={contrast}",
                                 "--label-fraction", "0.1", "--epochs", "1", "--ft-batch-size", "32",
                                 "--out", str(tmp_path / "point"), "--json"])
    assert r.exit_code == 0, r.output
    run = json.loads(r.stdout)["run"]
    ood = [e for e in run["evals"] if e["eval_set"] == "mvh-contrast"]
    assert {(e["metric"], e["selection"]) for e in ood} == {("top1", "best-epoch"), ("top1", "last-epoch")}
    assert all(e["value"] in {k / 16 for k in range(17)} for e in ood)  # 16 images kept of 24
    tag = json.loads(run["tags"]["ood:finetune-wnid-digits-10pct/mvh-contrast"])
    assert tag["images"] == 16 and tag["left_out"] == 8 and tag["decision"].startswith("16 categories")
