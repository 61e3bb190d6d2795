"""Configs: defaults of the study, config files (TOML/JSON) overridden by options, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.config import FinetuneConfig, PretrainConfig, build, read_config_file, section
from train.errors import TrainError

pytestmark = pytest.mark.train


def test_study_defaults() -> None:
    p, f = PretrainConfig(), FinetuneConfig()
    assert (p.mask_ratio, p.lr, p.weight_decay, p.beta1, p.beta2, p.schedule) == (0.75, 3e-4, 0.0, 0.9, 0.95,
                                                                                 "constant")
    assert (p.decoder_dim, p.decoder_depth, p.decoder_heads, p.norm_pix_loss, p.fps) == (512, 8, 16, False, 1.0)
    assert (f.label_fraction, f.weight_decay, f.lr, f.epochs, f.linear_probe) == (0.02, 0.05, 1e-4, 50, False)


def test_toml_file_then_options(tmp_path: Path) -> None:
    cfg = tmp_path / "point.toml"
    cfg.write_text('[pretrain]\narch = "vit_b14"\ndata = "frames/"\nfps = "native"\nsteps = 100\n'
                   "[finetune]\nlabel_fraction = 0.1\nood = ['a', 'b']\n")
    data = read_config_file(cfg)
    p = build(PretrainConfig, section(data, "pretrain", "finetune"), {"images": 5000, "lr": None})
    assert (p.arch, p.data, p.fps, p.steps, p.images) == ("vit_b14", ["frames/"], None, None, 5000)
    assert p.total_steps() == 20  # ceil(5000 / 256)
    f = build(FinetuneConfig, section(data, "finetune", "pretrain"), {"epochs": 3})
    assert (f.label_fraction, f.ood, f.epochs) == (0.1, ["a", "b"], 3)
    flat = tmp_path / "p.json"
    flat.write_text(json.dumps({"arch": "vit_s14", "steps": 5}))
    assert build(PretrainConfig, section(read_config_file(flat), "pretrain", "finetune"), {}).steps == 5


def test_config_errors_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[pretrain]\nlearning_rate = 1\n")
    with pytest.raises(TrainError, match="unknown PretrainConfig key 'learning_rate'"):
        build(PretrainConfig, section(read_config_file(bad), "pretrain", "finetune"), {})
    broken = tmp_path / "broken.toml"
    broken.write_text("[pretrain\n")
    with pytest.raises(TrainError, match="not valid TOML"):
        read_config_file(broken)
    with pytest.raises(TrainError, match="exactly one pretraining budget"):
        PretrainConfig(data=["x"], steps=1, minutes=2.0).validate()
    with pytest.raises(TrainError, match="cosine schedule needs"):
        PretrainConfig(data=["x"], minutes=2.0, schedule="cosine").validate()
    with pytest.raises(TrainError, match="unknown architecture"):
        PretrainConfig(arch="vit_x9", data=["x"], steps=1).validate()


def test_hashed_config_leaves_out_paths_and_speed_knobs() -> None:
    a = PretrainConfig(data=["/a/frames"], steps=5, workers=0, compile=False, log_every=1)
    b = PretrainConfig(data=["/mnt/copy/frames"], steps=5, workers=8, compile=True, log_every=100, fsdp=True,
                       activation_checkpointing=True)
    assert a.hashed() == b.hashed()
    assert a.hashed() != PretrainConfig(data=["/a/frames"], steps=6).hashed()


def test_the_global_batch_is_the_recipe_and_its_split_is_not() -> None:
    """The run id hashes the global batch (under its older name, so ids did not change), never the world size,
    the micro-batch or the accumulation steps."""
    base = PretrainConfig(data=["x"], steps=5, global_batch=4096)
    split = PretrainConfig(data=["x"], steps=5, global_batch=4096, micro_batch=16, accum=256)
    assert base.hashed() == split.hashed() and base.hashed()["batch_size"] == 4096
    assert "global_batch" not in base.hashed() and "micro_batch" not in base.hashed()
    assert base.hashed() != PretrainConfig(data=["x"], steps=5, global_batch=2048).hashed()
    # older files and options name it batch_size
    assert build(PretrainConfig, {"batch_size": 64}, {}).global_batch == 64
    with pytest.raises(TrainError, match="not both"):
        build(PretrainConfig, {"batch_size": 64, "global_batch": 64}, {})


@pytest.mark.parametrize(("world", "micro", "accum", "want"), [
    (1, None, None, (4096, 1)), (1, 16, None, (16, 256)), (64, 16, None, (16, 4)), (8, None, 4, (128, 4)),
    (2, 2, 2, (2, 2)), (3, None, None, None), (1, 24, None, None), (2, 2, 3, None), (2, None, 3, None),
])
def test_accumulation_steps_follow_from_the_global_batch_micro_batch_and_world(
        world: int, micro: int | None, accum: int | None, want: tuple[int, int] | None) -> None:
    from train.config import split_batch

    global_batch = 8 if (micro, accum) == (2, 2) or (micro, accum) == (2, 3) else 4096
    if want is None:
        with pytest.raises(TrainError) as err:
            split_batch(global_batch, world, micro_batch=micro, accum=accum)
        assert "\n" not in str(err.value) and str(global_batch) in str(err.value)
        return
    b = split_batch(global_batch, world, micro_batch=micro, accum=accum)
    assert (b.micro_batch, b.accum) == want and b.world * b.accum * b.micro_batch == global_batch
