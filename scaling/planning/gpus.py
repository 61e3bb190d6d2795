"""GPU kinds and measured model-FLOP utilisation (MFU): what turns FLOPs into GPU-hours.

MFU here is the model's training FLOPs (``runs_db.archs``: matmuls, 2 per multiply-add, forward +
backward, no recomputation) per second over the kind's ``peak_tflops``. For the H200 that peak is the
measured one (8192^2 bf16 matmuls, 790 TFLOP/s; ``notes-gpu``), the figure the measured MFUs below are
relative to; for kinds nobody measured here it is the datasheet's dense bf16 peak, and an MFU must be given.

Measured on one H200 (``notes-gpu``: bf16 autocast, torch 2.11, timm 1.0.29, fused attention, AdamW):

| step | img/s | MFU |
|---|---|---|
| ViT-B/14, 224 px, mask 0.75, batch 256, eager | 2,737 | 27% |
| ViT-H/14, 224 px, mask 0.75, batch 128, eager, fused AdamW | 963 | 35.5% |
| ViT-H/14, 224 px, mask 0.75, batch 128, torch.compile + fused AdamW | 1,225 | 45.1% |
| 2.43B ViT/14 (``vit_2p5b14``), 952 px, mask 0.8, batch 16 | 24.5 | 50% |
| the same, every encoder block checkpointed, batch 32 | 21.2 | 43% |
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from runs_db.archs import get_arch, mae_flops_for_arch
from scaling.errors import ScalingError

GIB = float(2**30)
NOTES_GPU = "notes-gpu.md: one H200, bf16, torch 2.11, timm 1.0.29, 2026-11-29"


@dataclass(frozen=True)
class GpuKind:
    name: str
    memory_gib: float  # what a process can allocate
    peak_tflops: float  # the peak MFU is relative to (bf16 dense)
    peak_source: str
    description: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


GPU_KINDS: dict[str, GpuKind] = {
    g.name: g
    for g in [
        GpuKind("h200", 139.0, 790.0, "measured: 8192^2 bf16 matmuls on an H200 (" + NOTES_GPU + ")",
                "NVIDIA H200 SXM 141 GB (about 139 GiB usable, notes-gpu)"),
        GpuKind("h100", 79.6, 989.0, "datasheet: NVIDIA H100 SXM5, bf16 dense (1,979 with sparsity)",
                "NVIDIA H100 SXM5 80 GB (81,559 MiB)"),
        GpuKind("a100", 80.0, 312.0, "datasheet: NVIDIA A100 80 GB, bf16 dense (624 with sparsity)",
                "NVIDIA A100 SXM4 80 GB (81,920 MiB)"),
    ]
}


@dataclass(frozen=True)
class MeasuredMfu:
    """One measured training step: the MFU a plan defaults to when it resembles this step."""

    gpu: str
    arch: str
    image_px: int
    mask_ratio: float
    batch: int
    activation_checkpointing: bool
    compiled: bool | None  # None: not recorded
    images_per_s: float
    mfu: float
    source: str = NOTES_GPU

    def describe(self) -> str:
        ac = ", every encoder block checkpointed" if self.activation_checkpointing else ""
        comp = {True: ", compiled", False: ", eager", None: ""}[self.compiled]
        return (f"{self.gpu.upper()} measured {100 * self.mfu:.1f}%: {self.arch} at {self.image_px} px, mask "
                f"{self.mask_ratio:g}, batch {self.batch}{ac}{comp}, {self.images_per_s:g} img/s ({self.source})")


MEASURED: tuple[MeasuredMfu, ...] = (
    MeasuredMfu("h200", "vit_b14", 224, 0.75, 256, False, False, 2737.0, 0.27),
    MeasuredMfu("h200", "vit_h14", 224, 0.75, 128, False, False, 963.0, 0.355),
    MeasuredMfu("h200", "vit_h14", 224, 0.75, 128, False, True, 1225.0, 0.451),
    MeasuredMfu("h200", "vit_2p5b14", 952, 0.8, 16, False, None, 24.5, 0.50),
    MeasuredMfu("h200", "vit_2p5b14", 952, 0.8, 32, True, None, 21.2, 0.43),
)


def get_gpu_kind(name: str) -> GpuKind:
    key = name.strip().lower()
    if key not in GPU_KINDS:
        raise ScalingError(f"unknown GPU kind {name!r}; known: {', '.join(GPU_KINDS)}")
    return GPU_KINDS[key]


def default_mfu(gpu: str, flops_per_image: float, *, activation_checkpointing: bool) -> MeasuredMfu:
    """The measured step on ``gpu`` most like the planned one: the same checkpointing where measured, then
    the nearest training FLOPs per image (log scale). One-line error when nothing was measured on ``gpu``."""

    rows = [m for m in MEASURED if m.gpu == gpu]
    if not rows:
        raise ScalingError(f"no measured MFU for GPU kind {gpu!r} (measured: "
                           f"{', '.join(sorted({m.gpu for m in MEASURED}))}); give one (--mfu, mfu=)")
    same = [m for m in rows if m.activation_checkpointing == activation_checkpointing] or rows

    def distance(m: MeasuredMfu) -> float:
        f = mae_flops_for_arch(get_arch(m.arch), m.image_px, m.mask_ratio).total
        return abs(math.log(f / flops_per_image))

    return min(same, key=lambda m: (distance(m), -(m.compiled or False)))


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([KMGT]i?B)\s*$", re.IGNORECASE)
_UNITS = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30, "tib": 2.0**40}


def parse_memory(text: str | float | int) -> float:
    """'80GiB' (2^30), '80GB' (10^9), '512MiB', ... -> bytes; a bare number is bytes."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _SIZE.match(str(text))
        if not m:
            raise ScalingError(f"GPU memory {text!r}: expected a size such as 80GiB, 80GB or 141GB")
        value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not (value > 0 and math.isfinite(value)):
        raise ScalingError(f"GPU memory {text!r} must be positive")
    return value
