"""Pretraining frames: video files, folders of frames or images, and webdataset-style tar shards.

Every ``--data`` path is expanded into a sorted list of frames with stable keys (``clip.mp4#000012``,
``folder/img_0001.jpeg``, ``shard-000.tar/000123.jpg``); several paths are concatenated in the order given,
like the study's multi-root ImageFolder. Video is decoded with PyAV at ``fps`` frames per second (the
study extracted 1 frame/s): the first frame at or after each tick k/fps is kept. Decoded video frames are
held in memory at a short side of 1.25x the training size (notes-train §3.4: decoding or re-reading
full-size frames every step would cost more than the model on 2 cores); for corpora larger than memory,
extract frames first (``scaling train frames``) and train from the folder.

A subset is drawn as in the study (eminorhan/webdataset-example ``makeshards_new.py``):
n = ceil(N * fraction) frames, one contiguous block starting at ``random.Random(seed).randint(0, N-n-1)``
of the sorted list, or (``uniform``) n frames spread uniformly at random. Its size in frames and hours and
the SHA-256 of its key list identify it in the run record.

Sample j of the training stream (j = step x global batch + position in the batch) is fully determined by
(seed, j): its frame (a seeded permutation per pass over the subset), its random-resized crop
(scale 0.2-1, ratio 3/4-4/3, bicubic), flip and mask noise. A resumed job, another rank or another split
into micro-batches therefore sees exactly the samples an uninterrupted single process would have.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import random
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from train.errors import TrainError
from train.model import MaskNoise, mix_seed

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpeg", ".mpg", ".m4v", ".wmv", ".flv"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff", ".gif"}
TAR_EXTS = {".tar"}
AUG_SALT = 0x61756720  # "aug ": crops/flips independent of the mask noise of the same sample
PERM_SALT = 0x7065726D  # "perm"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------------------------------- decoding
def to_rgb_tensor(img: Image.Image) -> Tensor:
    """PIL image -> uint8 (3, H, W); grayscale is replicated to 3 channels."""
    arr = np.asarray(img.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def resize_short(img: Tensor, short: int) -> Tensor:
    """uint8 (3, H, W) resized (bicubic, antialiased) so that its short side is ``short``."""
    h, w = img.shape[-2:]
    if min(h, w) == short:
        return img
    scale = short / min(h, w)
    size = [max(1, round(h * scale)), max(1, round(w * scale))]
    resized: Tensor = TF.resize(img, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    return resized


def decode_image_bytes(data: bytes, name: str) -> Tensor:
    try:
        with Image.open(io.BytesIO(data)) as img:
            return to_rgb_tensor(img)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise TrainError(f"cannot decode image {name}: {e}") from None


def decode_video(path: Path, fps: float | None, short_side: int | None) -> list[tuple[float, Tensor]]:
    """(time in s, uint8 (3, H, W)) frames of a video at ``fps`` (None: every frame).

    Raises a one-line ``TrainError`` for an unreadable, corrupt or frameless file.
    """
    import av  # lazy: PyAV (video decoding) is needed only for video sources

    frames: list[tuple[float, Tensor]] = []
    next_tick = 0.0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise TrainError(f"no video stream in {path}")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for k, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else k / float(stream.average_rate or 25)
                if fps is not None:
                    if t + 1e-6 < next_tick:
                        continue
                    next_tick = (math.floor(t * fps + 1e-6) + 1) / fps
                img = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1).contiguous()
                frames.append((t, resize_short(img, short_side) if short_side else img))
    except TrainError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise TrainError(f"cannot decode video {path}: {reason}") from None
    if not frames:
        raise TrainError(f"no frames decoded from video {path} (empty or corrupt)")
    return frames


def native_fps(path: Path) -> float:
    import av  # lazy: PyAV (video decoding) is needed only for video sources

    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    return float(rate) if rate else 25.0


# -------------------------------------------------------------------------------------------- corpus
@dataclass
class Frame:
    key: str  # stable identifier, sorted order = corpus order
    seconds: float  # of video this frame stands for (1/fps)
    path: str = ""  # image file or tar shard
    offset: int = 0  # byte range of a tar member
    size: int = 0
    video: int = -1  # index into FrameCorpus.video_frames


@dataclass
class FrameCorpus:
    """All frames of the ``--data`` paths, in corpus order, and how to load each one."""

    frames: list[Frame]
    video_frames: list[Tensor] = field(default_factory=list)
    short_side: int | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, i: int) -> Tensor:
        f = self.frames[i]
        if f.video >= 0:
            return self.video_frames[f.video]
        if f.size:
            with open(f.path, "rb") as fh:
                fh.seek(f.offset)
                img = decode_image_bytes(fh.read(f.size), f.key)
        else:
            try:
                img = decode_image_bytes(Path(f.path).read_bytes(), f.path)
            except OSError as e:
                raise TrainError(f"cannot read frame {f.path}: {e.strerror or e}") from None
        # Keep per-sample augmentation cheap and the same as for video frames: RRC from a 1.25x copy.
        return resize_short(img, self.short_side) if self.short_side and min(img.shape[-2:]) > self.short_side else img


def _kind(path: Path) -> str | None:
    ext = path.suffix.lower()
    if ext in VIDEO_EXTS:
        return "video"
    if ext in IMAGE_EXTS:
        return "image"
    if ext in TAR_EXTS:
        return "tar"
    return None


def _tar_frames(path: Path, label: str, seconds: float) -> list[Frame]:
    out = []
    try:
        with tarfile.open(path, "r:") as tar:
            for m in tar:
                if m.isfile() and Path(m.name).suffix.lower() in IMAGE_EXTS:
                    out.append(Frame(f"{label}/{m.name}", seconds, str(path), m.offset_data, m.size))
    except (tarfile.TarError, OSError) as e:
        raise TrainError(f"cannot read tar shard {path}: {e}") from None
    out.sort(key=lambda f: f.key)
    return out


def discover(paths: Sequence[str | Path], *, fps: float | None, short_side: int | None,
             on_video: Callable[[str], None] | None = None) -> FrameCorpus:
    """Expand ``--data`` paths into a corpus; one-line errors for missing, empty or unreadable input."""
    corpus = FrameCorpus([], short_side=short_side)
    folder_seconds = 1.0 / fps if fps else 1.0  # extracted frames stand for 1/fps s (the study: 1 s)
    for raw in paths:
        root = Path(raw).expanduser()
        if not root.exists():
            raise TrainError(f"data path not found: {root}")
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and _kind(p) is not None)
            if not files:
                raise TrainError(f"no video, image or .tar files in {root}")
            base = root
        else:
            if _kind(root) is None:
                raise TrainError(f"not a video, image or .tar file: {root}")
            files, base = [root], root.parent
        found = 0
        for p in files:
            label = f"{root.name}/{p.relative_to(base).as_posix()}" if root.is_dir() else p.name
            kind = _kind(p)
            if kind == "image":
                corpus.frames.append(Frame(label, folder_seconds, str(p)))
                found += 1
            elif kind == "tar":
                shard = _tar_frames(p, label, folder_seconds)
                corpus.frames.extend(shard)
                found += len(shard)
            else:
                if on_video:
                    on_video(str(p))
                decoded = decode_video(p, fps, short_side)
                per = 1.0 / fps if fps else 1.0 / native_fps(p)
                for k, (_, img) in enumerate(decoded):
                    corpus.frames.append(Frame(f"{label}#{k:08d}", per, video=len(corpus.video_frames)))
                    corpus.video_frames.append(img)
                found += len(decoded)
        if not found:
            raise TrainError(f"no frames found in {root}")
    return corpus


# -------------------------------------------------------------------------------------------- subset
@dataclass(frozen=True)
class Subset:
    indices: list[int]  # into the corpus, in corpus order
    frames: int
    hours: float
    digest: str  # sha256 of the newline-joined frame keys
    start: int | None  # first index of a contiguous block


def study_block(n_all: int, fraction: float, seed: int) -> tuple[int, int]:
    """(start, size) of the study's contiguous subset: size ceil(N f), start ``randint(0, N - n - 1)``
    after ``random.seed(seed)``, exactly as makeshards_new.py (the whole corpus has only one block)."""
    n = min(n_all, math.ceil(n_all * fraction))
    start = random.Random(seed).randint(0, n_all - n - 1) if n < n_all else 0
    return start, n


def select_subset(corpus: FrameCorpus, fraction: float, seed: int, mode: str = "contiguous") -> Subset:
    n_all = len(corpus)
    start: int | None
    if mode == "contiguous":
        start, n = study_block(n_all, fraction, seed)
        indices = list(range(start, start + n))
    elif mode == "uniform":
        start, n = None, min(n_all, math.ceil(n_all * fraction))
        indices = sorted(random.Random(seed).sample(range(n_all), n))
    else:
        raise TrainError(f"subset must be contiguous or uniform, got {mode!r}")
    h = hashlib.sha256()
    for i in indices:
        h.update(corpus.frames[i].key.encode("utf-8") + b"\n")
    hours = sum(corpus.frames[i].seconds for i in indices) / 3600.0
    return Subset(indices, n, hours, h.hexdigest(), start)


# ------------------------------------------------------------------------------------- augmentation
def rrc_params(h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
               gen: torch.Generator) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random resized crop, torchvision's algorithm on a given generator."""
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        u = torch.rand(3, generator=gen).tolist()
        target = area * (scale[0] + (scale[1] - scale[0]) * u[0])
        aspect = math.exp(log_r[0] + (log_r[1] - log_r[0]) * u[1])
        cw = round(math.sqrt(target * aspect))
        ch = round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            return top, left, ch, cw
    # Fallback: the largest centre crop within the ratio range.
    in_ratio = w / h
    if in_ratio < ratio[0]:
        cw, ch = w, round(w / ratio[0])
    elif in_ratio > ratio[1]:
        ch, cw = h, round(h * ratio[1])
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def augment(img: Tensor, size: int, gen: torch.Generator, *, scale: tuple[float, float],
            interpolation: InterpolationMode, flip: bool = True) -> Tensor:
    """Random resized crop to ``size`` x ``size`` and a horizontal flip with probability 1/2 (uint8 in/out)."""
    top, left, ch, cw = rrc_params(img.shape[-2], img.shape[-1], scale, (3 / 4, 4 / 3), gen)
    out: Tensor = TF.resized_crop(img, top, left, ch, cw, [size, size], interpolation=interpolation, antialias=True)
    if flip and float(torch.rand(1, generator=gen)) < 0.5:
        out = out.flip(-1)
    return out


def normalize(batch: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> float, ImageNet mean/std (done on the training device, after the transfer)."""
    mean = torch.tensor(IMAGENET_MEAN, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=batch.device).view(1, 3, 1, 1)
    return (batch.float() / 255.0 - mean) / std


class PretrainStream(torch.utils.data.Dataset[Tensor]):
    """Sample j of the infinite, seeded training stream over a subset (see the module docstring)."""

    def __init__(self, corpus: FrameCorpus, subset: Subset, image_px: int, seed: int) -> None:
        self.corpus, self.indices, self.image_px, self.seed = corpus, subset.indices, image_px, seed
        self._perm: tuple[int, list[int]] | None = None

    def __len__(self) -> int:  # DataLoader needs one; the stream itself is unbounded
        return 2**62

    def frame_of(self, j: int) -> int:
        n = len(self.indices)
        epoch, pos = divmod(j, n)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, PERM_SALT, epoch))
            self._perm = (epoch, torch.randperm(n, generator=g).tolist())
        return self.indices[self._perm[1][pos]]

    def __getitem__(self, j: int) -> Tensor:
        img = self.corpus.load(self.frame_of(j))
        g = torch.Generator().manual_seed(mix_seed(self.seed, AUG_SALT, j))
        return augment(img, self.image_px, g, scale=(0.2, 1.0), interpolation=InterpolationMode.BICUBIC)


class MaskedStream(torch.utils.data.Dataset[tuple[Tensor, Tensor]]):
    """(image, mask noise) of sample j: the stream's image and the row of ``train.model.MaskNoise``, made in
    the data pipeline (the loader's workers when there are any) rather than on the training thread."""

    def __init__(self, stream: PretrainStream, n_patches: int) -> None:
        self.stream, self.noise = stream, MaskNoise(n_patches, stream.seed)

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, j: int) -> tuple[Tensor, Tensor]:
        return self.stream[j], self.noise.row(j)


class StreamBatches(torch.utils.data.Sampler[list[int]]):
    """This rank's micro-batches of global batches ``start_step``, ``start_step + 1``, ...: with B the global
    batch, b = B / world this rank's share and m = b / accum the micro-batch, micro-batch k of step t is
    [t B + r b + k m, t B + r b + (k + 1) m) (accum 1: the rank's whole share)."""

    def __init__(self, global_batch: int, rank: int, world: int, start_step: int, n_steps: int,
                 accum: int = 1) -> None:
        self.B, self.b, self.rank = global_batch, global_batch // world, rank
        self.m, self.accum = self.b // accum, accum
        self.start, self.n = start_step, n_steps

    def __len__(self) -> int:
        return self.n * self.accum

    def __iter__(self) -> Iterator[list[int]]:
        for t in range(self.start, self.start + self.n):
            for k in range(self.accum):
                first = t * self.B + self.rank * self.b + k * self.m
                yield list(range(first, first + self.m))


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def extract_frames(videos: Sequence[str | Path], out: Path, *, fps: float | None, short_side: int | None,
                   quality: int = 90) -> list[tuple[Path, int]]:
    """Decode videos at ``fps`` into JPEG folders ``out/<video stem>/img_00000000.jpg`` (the study's layout
    of extracted frames); returns (folder, frames written) per video. For corpora larger than memory."""
    written = []
    for v in videos:
        path = Path(v).expanduser()
        if not path.is_file():
            raise TrainError(f"video not found: {path}")
        frames = decode_video(path, fps, short_side)
        folder = out / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        for k, (_, img) in enumerate(frames):
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"img_{k:08d}.jpg", quality=quality)
        written.append((folder, len(frames)))
    return written

