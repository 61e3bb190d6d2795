"""Labelled images for fine-tuning and evaluation: ImageFolder layout, label fractions, OOD sets.

Layout (as torchvision's ImageFolder and ImageNet): ``ROOT/train/<class>/*.png`` and ``ROOT/val/<class>/*``;
classes are the sorted sub-folder names. An OOD set is another folder of class folders (or one with a
``val/`` inside) whose class names are all training classes; it is scored with the same head. ``--ood
NAME=DIR`` names the set (default: the folder's name).

A 16-class set of Geirhos et al. 2021 (model-vs-human: class folders airplane, bear, ..., truck) is scored on
a head trained on ImageNet classes (WNID folders) as that work scores a 1,000-way classifier: each category's
score is the mean softmax probability of its ImageNet classes (``runs_db.ood``'s map), and the answer is the
highest-scoring category. Under one of the run database's names of those sets (``mvh-contrast``, ...) the
images of the conditions its human number leaves out are left out too (read from the file names), so that
the model is scored on what humans were.

The "permissive" condition of the study keeps ``int(fraction x N)`` training images drawn uniformly at
random (not class-balanced; eminorhan/mae ``eval_finetune.py`` with ``--frac_retained 0.02``). Here the
draw is seeded so a grid point is reproducible, and a fraction that leaves a class without any image is
refused.

Transforms as the study's fine-tuning: train = random resized crop (torchvision defaults: scale 0.08-1,
bilinear) + flip; eval = resize to size/0.875 (256 px for 224, the study's size + 32) + centre crop.

Real labelled data that installs offline: scikit-learn's ``load_digits`` (1,797 8x8 digits, pip only) and
Debian opencv-doc's ``digits.png`` (5,000 20x20 digits) when present; ``export_*`` write them in this
layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from runs_db.ood import human_ood, left_out
from train.data import IMAGE_EXTS, augment, decode_image_bytes, resize_short
from train.errors import TrainError
from train.model import mix_seed

OPENCV_DIGITS = Path("/usr/share/doc/opencv-doc/examples/data/digits.png")
FT_SALT = 0x66742020  # "ft  "


@dataclass(frozen=True)
class LabelledSet:
    name: str
    classes: list[str]
    paths: list[str]
    labels: list[int]
    # A 16-class set on an ImageNet head: for each of its classes, the training classes whose mean probability
    # scores it (labels index these groups, not the training classes).
    groups: tuple[tuple[int, ...], ...] | None = None
    left_out: int = 0  # images of conditions the set's human number leaves out

    def __len__(self) -> int:
        return len(self.paths)


def read_image_folder(root: Path, name: str, classes: list[str] | None = None) -> LabelledSet:
    """Class folders under ``root``; with ``classes`` given, folder names are mapped onto those indices."""
    if not root.is_dir():
        raise TrainError(f"image folder not found: {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise TrainError(f"no class folders in {root}")
    own = [p.name for p in folders]
    index = {c: i for i, c in enumerate(classes if classes is not None else own)}
    unknown = [c for c in own if c not in index]
    if unknown:
        raise TrainError(f"{root}: class folder(s) {', '.join(unknown[:5])} are not training classes")
    paths, labels = [], []
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
                paths.append(str(p))
                labels.append(index[folder.name])
    if not paths:
        raise TrainError(f"no images in the class folders of {root}")
    return LabelledSet(name, list(classes if classes is not None else own), paths, labels)


def read_finetune_data(root: Path, name: str) -> tuple[LabelledSet, LabelledSet]:
    """(train, val) of an ImageFolder root with ``train/`` and ``val/``; val classes must be train classes."""
    if not root.is_dir():
        raise TrainError(f"fine-tuning data folder not found: {root}")
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise TrainError(f"{root} has no {split}/ folder (expected ImageFolder layout: train/ and val/)")
    train = read_image_folder(root / "train", name)
    val = read_image_folder(root / "val", f"{name}-val", train.classes)
    return train, val


def ood_spec(spec: str | Path) -> tuple[str, Path]:
    """(set name, folder) of an ``--ood`` value: ``NAME=DIR``, or a folder named as the set."""
    text = str(spec)
    name, eq, folder = text.partition("=")
    if eq and name.strip() and folder.strip() and not Path(text).exists() and "/" not in name:
        return name.strip(), Path(folder.strip()).expanduser()
    path = Path(text).expanduser()
    return path.name, path


def sixteen_class_groups(own: list[str], classes: list[str]) -> tuple[tuple[int, ...], ...] | None:
    """For category folders ``own`` and WNID training ``classes``: the training class indices of each of the 16
    categories (sorted; a category without any scores 0), or None when ``own`` are not model-vs-human's
    categories. Every category that has images must have training classes."""
    categories = human_ood().categories
    index = {c: i for i, c in enumerate(classes)}
    if not own or not set(own) <= set(categories) or not any(w in index for ws in categories.values() for w in ws):
        return None  # not the 16 categories, or not a head of ImageNet classes: the folders must be its classes
    groups = {c: tuple(index[w] for w in wnids if w in index) for c, wnids in categories.items()}
    for category in own:
        if not groups[category]:
            raise TrainError(f"16-class category {category!r} has none of its ImageNet classes "
                             f"({', '.join(categories[category][:3])}, ...) among the training classes")
    return tuple(groups[c] for c in sorted(categories))


def read_ood(spec: str | Path, classes: list[str]) -> LabelledSet:
    name, path = ood_spec(spec)
    root = path / "val" if (path / "val").is_dir() else path
    own = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    groups = None if set(own) <= set(classes) else sixteen_class_groups(own, classes)
    data = read_image_folder(root, name, classes if groups is None else sorted(human_ood().categories))
    if human_ood().by_eval_set(name) is None:
        return LabelledSet(data.name, data.classes, data.paths, data.labels, groups)
    try:
        keep = [i for i, p in enumerate(data.paths) if not left_out(name, p)]
    except ValueError as e:
        raise TrainError(f"{root}: {e}") from None
    if not keep:
        raise TrainError(f"{root}: every image is of a condition that {name}'s human number leaves out")
    return LabelledSet(name, data.classes, [data.paths[i] for i in keep], [data.labels[i] for i in keep], groups,
                       left_out=len(data.paths) - len(keep))


def label_subset(train: LabelledSet, fraction: float, seed: int) -> list[int]:
    """Indices of ``int(fraction x N)`` training images drawn uniformly with ``seed``; every class must stay."""
    n = int(fraction * len(train))
    if n < 1:
        raise TrainError(f"label fraction {fraction} keeps no image of the {len(train)} training images")
    g = torch.Generator().manual_seed(mix_seed(seed, FT_SALT))
    keep = sorted(torch.randperm(len(train), generator=g)[:n].tolist())
    present = {train.labels[i] for i in keep}
    missing = [train.classes[c] for c in range(len(train.classes)) if c not in present]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise TrainError(f"label fraction {fraction} keeps {n} of {len(train)} training images and leaves "
                         f"{len(missing)} class(es) without any ({shown}); use a larger --label-fraction")
    return keep


def load_image(path: str) -> Tensor:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TrainError(f"cannot read image {path}: {e.strerror or e}") from None
    return decode_image_bytes(data, path)


def eval_transform(img: Tensor, size: int) -> Tensor:
    img = resize_short(img, round(size / 0.875))
    cropped: Tensor = TF.center_crop(img, [size, size])
    return cropped


class LabelledImages(torch.utils.data.Dataset[tuple[Tensor, int]]):
    """(uint8 image, label) of a set; training items are augmented by a generator seeded per (epoch, index)."""

    def __init__(self, data: LabelledSet, indices: list[int], image_px: int, *, train: bool, seed: int = 0,
                 crop_min_scale: float = 0.08, flip: bool = True) -> None:
        self.data, self.indices, self.image_px, self.train, self.seed = data, indices, image_px, train, seed
        self.scale, self.flip = (crop_min_scale, 1.0), flip
        self.epoch = 0
        self._cache: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[Tensor, int]:
        i = self.indices[k]
        img = self._cache.get(i)
        if img is None:
            img = load_image(self.data.paths[i])
            if img.shape[-1] * img.shape[-2] <= 64 * 64:  # tiny images (digits): decoding dominates, keep them
                self._cache[i] = img
        if self.train:
            g = torch.Generator().manual_seed(mix_seed(self.seed, FT_SALT, self.epoch, i))
            out = augment(img, self.image_px, g, scale=self.scale, interpolation=InterpolationMode.BILINEAR,
                          flip=self.flip)
        else:
            out = eval_transform(img, self.image_px)
        return out, self.data.labels[i]


# ------------------------------------------------------------------------------- offline real data
def _write_png(arr: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8), mode="L").save(path)


def export_sklearn_digits(out: Path, *, val_fraction: float = 0.3, seed: int = 0, inverted_ood: Path | None = None
                          ) -> Path:
    """scikit-learn's 1,797 handwritten 8x8 digits (UCI) as ``out/train`` and ``out/val`` class folders.

    The split is stratified and seeded. ``inverted_ood`` also writes the val images with inverted
    intensities (dark ink on light paper) as an out-of-distribution set with the same classes.
    """
    try:
        from sklearn.datasets import load_digits  # lazy: scikit-learn, only for this export
    except ImportError:
        raise TrainError("scikit-learn is needed for the digits data: pip install scikit-learn") from None
    digits = load_digits()
    images = np.clip(digits.images * (255.0 / 16.0), 0, 255)  # 0..16 ink levels -> 0..255
    rng = np.random.default_rng(seed)
    for c in range(10):
        idx = np.flatnonzero(digits.target == c)
        rng.shuffle(idx)
        n_val = math.ceil(len(idx) * val_fraction)
        for k, i in enumerate(idx):
            split = "val" if k < n_val else "train"
            _write_png(images[i], out / split / str(c) / f"{i:04d}.png")
            if split == "val" and inverted_ood is not None:
                _write_png(255.0 - images[i], inverted_ood / str(c) / f"{i:04d}.png")
    return out


def export_opencv_digits(out: Path, source: Path = OPENCV_DIGITS, *, val_fraction: float | None = None,
                         seed: int = 0) -> Path:
    """OpenCV's ``digits.png`` (5,000 20x20 digits, 500 per class in blocks of 5 rows) as class folders.

    Without ``val_fraction`` all images go to ``out/<class>`` (an eval-only set); with it, to train/val.
    """
    if not source.is_file():
        raise TrainError(f"{source} not found (Debian package opencv-doc)")
    sheet = np.asarray(Image.open(source).convert("L"))
    rows, cols = sheet.shape[0] // 20, sheet.shape[1] // 20
    rng = np.random.default_rng(seed)
    per_class = rows * cols // 10
    for c in range(10):
        order = rng.permutation(per_class)
        n_val = math.ceil(per_class * val_fraction) if val_fraction else 0
        for k in range(per_class):
            r, col = divmod(c * per_class + k, cols)
            cell = sheet[r * 20:(r + 1) * 20, col * 20:(col + 1) * 20]
            if val_fraction is None:
                target = out / str(c)
            else:
                target = out / ("val" if order[k] < n_val else "train") / str(c)
            _write_png(cell, target / f"{c * per_class + k:04d}.png")
    return out
