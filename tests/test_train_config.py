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
