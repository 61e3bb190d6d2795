"""Pretraining and fine-tuning data: real clips, frame folders, tar shards, study subsets, label fractions."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.train_fixtures import clip, digits_folder  # noqa: E402
from train.data import (  # noqa: E402
    PretrainStream,
    StreamBatches,
    decode_video,
    discover,
    select_subset,
    study_block,
)
from train.errors import TrainError  # noqa: E402
from train.finetune_data import label_subset, read_finetune_data, read_ood  # noqa: E402

pytestmark = pytest.mark.train


def test_study_subset_start_indices_are_replayed() -> None:
    # eminorhan/webdataset-example makeshards_new.py on the 17,958,947-frame corpus (notes-paper §2.5):
    # the 0.01/0.001/0.0001 subsets of one seed share their start index.
    n_all = 17_958_947
    for seed, start in ((1, 4_508_515), (2, 1_897_549), (3, 7_984_767)):
        for frac, size in ((0.01, 179_590), (0.001, 17_959), (0.0001, 1_796)):
            assert study_block(n_all, frac, seed) == (start, size)
    assert study_block(n_all, 1.0, 1) == (0, n_all)


def test_video_decoded_at_one_frame_per_second_and_natively() -> None:
    bikes = clip("bikes.mp4")  # 10.0 s at 25 fps
    at_1fps = decode_video(bikes, 1.0, 40)
    assert [round(t, 2) for t, _ in at_1fps] == [float(k) for k in range(10)]
    assert min(at_1fps[0][1].shape[-2:]) == 40 and at_1fps[0][1].dtype == torch.uint8
    assert len(decode_video(clip("carphone_pristine.mp4"), None, 32)) == 120  # every frame


def test_corpus_hours_digest_and_subsets(tmp_path: Path) -> None:
    corpus = discover([clip("carphone_pristine.mp4")], fps=None, short_side=32)
    assert len(corpus) == 120
    full = select_subset(corpus, 1.0, 1)
    assert full.frames == 120 and full.hours == pytest.approx(120 / 29.97 / 3600, rel=1e-3)
    keys = "".join(corpus.frames[i].key + "\n" for i in range(120))
    assert full.digest == hashlib.sha256(keys.encode()).hexdigest()
    tenth = select_subset(corpus, 0.1, 2)
    start, n = study_block(120, 0.1, 2)
    assert tenth.indices == list(range(start, start + 12)) and tenth.frames == n == 12
    uniform = select_subset(corpus, 0.1, 2, "uniform")
    assert len(uniform.indices) == 12 and uniform.digest != tenth.digest
    assert select_subset(corpus, 0.1, 3).digest != tenth.digest


def test_frame_folder_and_tar_shard_hold_the_same_frames(tmp_path: Path) -> None:
    from PIL import Image

    frames = decode_video(clip(), 1.0, None)  # 4 real frames, 176x144
    folder = tmp_path / "frames" / "class_0000"
    folder.mkdir(parents=True)
    shard = tmp_path / "shard-000000.tar"
    with tarfile.open(shard, "w") as tar:
        for k, (_, img) in enumerate(frames):
            buf = io.BytesIO()
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(buf, format="PNG")
            (folder / f"img_{k:04d}.png").write_bytes(buf.getvalue())
            info = tarfile.TarInfo(f"{k:06d}.png")
            info.size = len(buf.getvalue())
            tar.addfile(info, io.BytesIO(buf.getvalue()))
            meta = b'{"t": %d}' % k  # webdataset samples carry other members too; they are not frames
            info = tarfile.TarInfo(f"{k:06d}.json")
            info.size = len(meta)
            tar.addfile(info, io.BytesIO(meta))
    a = discover([tmp_path / "frames"], fps=1.0, short_side=None)
    b = discover([shard], fps=1.0, short_side=None)
    assert len(a) == len(b) == len(frames) == 4
    assert a.frames[0].key == "frames/class_0000/img_0000.png" and b.frames[3].key == "shard-000000.tar/000003.png"
    for k in range(4):
        assert torch.equal(a.load(k), frames[k][1]) and torch.equal(b.load(k), frames[k][1])
    assert select_subset(a, 1.0, 1).hours == pytest.approx(4 / 3600)


def test_bad_pretraining_data_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="not found"):
        discover([tmp_path / "missing"], fps=1.0, short_side=None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainError, match=r"no video, image or \.tar files"):
        discover([tmp_path / "empty"], fps=1.0, short_side=None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip().read_bytes()[:300])  # a truncated download
    with pytest.raises(TrainError, match=r"broken\.mp4"):
        discover([broken], fps=1.0, short_side=None)
    noise = tmp_path / "noise.avi"
    noise.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(TrainError, match=r"noise\.avi"):
        discover([noise], fps=1.0, short_side=None)


def test_stream_is_the_same_whichever_rank_or_job_reads_it() -> None:
    corpus = discover([clip()], fps=None, short_side=40)
    subset = select_subset(corpus, 0.5, 1)
    stream = PretrainStream(corpus, subset, 32, seed=5)
    one = next(iter(StreamBatches(8, rank=0, world=1, start_step=3, n_steps=1)))
    halves = [next(iter(StreamBatches(8, rank=r, world=2, start_step=3, n_steps=1))) for r in (0, 1)]
    assert one == halves[0] + halves[1] == list(range(24, 32))
    fresh = PretrainStream(corpus, subset, 32, seed=5)
    for j in one:
        assert torch.equal(stream[j], fresh[j])
    assert stream[0].shape == (3, 32, 32)
    # one pass over the subset visits every frame once
    assert sorted(stream.frame_of(j) for j in range(len(subset.indices))) == subset.indices


def test_label_fraction_ood_mapping_and_empty_classes(tmp_path: Path) -> None:
    digits, inverted = digits_folder(tmp_path)
    train, val = read_finetune_data(digits, "digits")
    assert train.classes == [str(c) for c in range(10)] and len(train) + len(val) == 1797
    keep = label_subset(train, 0.1, 0)
    assert len(keep) == int(0.1 * len(train)) and keep == label_subset(train, 0.1, 0)
    with pytest.raises(TrainError, match="without any"):
        label_subset(train, 0.004, 0)  # 5 images cannot cover 10 classes
    ood = read_ood(inverted, train.classes)
    assert len(ood) == len(val)
    (tmp_path / "other" / "cat").mkdir(parents=True)
    with pytest.raises(TrainError, match="not training classes"):
        read_ood(tmp_path / "other", train.classes)
    with pytest.raises(TrainError, match="no train/ folder"):
        read_finetune_data(inverted, "x")


def test_frames_command_extracts_one_frame_per_second(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from scaling.cli import app

    r = CliRunner().invoke(app, ["train", "frames", str(clip("bikes.mp4")), "--out", str(tmp_path / "f"),
                                 "--short-side", "64", "--json"])
    assert r.exit_code == 0, r.output
    assert [d["frames"] for d in json.loads(r.stdout)["folders"]] == [10]  # 10.0 s at 1 frame/s
    corpus = discover([tmp_path / "f"], fps=1.0, short_side=None)
    assert len(corpus) == 10 and min(corpus.load(0).shape[-2:]) == 64


def test_micro_batches_split_each_ranks_share_in_order_and_carry_their_masks(tmp_path: Path) -> None:
    """Accumulation changes how a step's samples are grouped, never which samples or their masks."""
    from train.data import MaskedStream
    from train.model import mask_noise

    whole = list(StreamBatches(8, rank=0, world=1, start_step=3, n_steps=2))
    for world, accum in ((1, 4), (2, 2), (4, 1), (2, 1)):
        parts = [list(StreamBatches(8, rank=r, world=world, start_step=3, n_steps=2, accum=accum))
                 for r in range(world)]
        assert all(len(p) == 2 * accum for p in parts) and {len(m) for p in parts for m in p} == {8 // world // accum}
        for t in range(2):  # step t: the ranks' micro-batches, in rank order, are the whole step's samples
            got = [j for r in range(world) for m in parts[r][t * accum:(t + 1) * accum] for j in m]
            assert got == whole[t]
    corpus = discover([clip()], fps=None, short_side=40)
    stream = MaskedStream(PretrainStream(corpus, select_subset(corpus, 1.0, 1), 32, seed=5), 16)
    img, noise = stream[41]
    assert torch.equal(img, stream.stream[41]) and torch.equal(noise, mask_noise([41], 16, seed=5)[0])
