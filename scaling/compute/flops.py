"""Pretraining compute of MAE ViTs at any scale, for projections.

The per-image formula is ``runs_db.archs.mae_train_flops`` (matmul FLOPs, 2 per multiply-add, forward +
backward; it matches ``torch.utils.flop_counter`` on the meta device):

    C_img = 2*F_patch + 3*[depth*(24 n_e d^2 + 4 n_e^2 d)]
          + 3*[2 n_e d d_dec + depth_dec*(24 n_d d_dec^2 + 4 n_d^2 d_dec) + 2 n_d d_dec 3 p^2]
    F_patch = 2 L 3 p^2 d,   L = (R/p)^2,   n_e = L (1 - mask) + 1,   n_d = L + 1

with encoder width d and depth, decoder width d_dec = 512 and depth 8 (the study's decoder), patch p and
image side R. Pretraining compute is C = C_img x images seen. The 6 x parameters x tokens rule
undercounts MAE badly: the decoder runs on every patch, and for ViT-S/14 it is most of the compute.

A projection asks for parameter counts no one trained (e.g. 2.5B). Width and depth are then chosen by
one documented rule: the width/depth aspect of ViT-H/14 (1280/32 = 40) with MLP ratio 4, solved for the
encoder parameter count (``shape_for_params``). Known sizes (within 0.5%) use their registered shape.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from scipy.optimize import brentq

from runs_db.archs import (
    ARCHS,
    DECODER_DEPTH,
    DECODER_DIM,
    MASK_RATIO,
    PATCH_PX,
    block_params,
    encoder_params,
    mae_train_flops,
)
from scaling.defaults import FRAMES_PER_HOUR  # the study decoded video at 1 frame/s (notes-paper §1.2)

ASPECT_WIDTH_PER_LAYER = 40.0  # ViT-H/14: width 1280, depth 32


@dataclass(frozen=True)
class Shape:
    """An encoder shape, possibly real-valued when it was derived from a parameter count."""

    width: float
    depth: float
    patch_px: int
    rule: str  # 'registered:<name>' or 'aspect-40'


def shape_for_params(n_params: float, image_px: float, patch_px: int = PATCH_PX) -> Shape:
    """Encoder shape whose parameter count (incl. position embeddings) is ``n_params`` at ``image_px``."""
    if n_params <= 0 or image_px <= 0:
        raise ValueError("parameter count and image size must be positive")
    for shape in ARCHS.values():
        if shape.patch_px != patch_px or image_px % patch_px:
            continue
        if abs(encoder_params(shape, int(image_px)) / n_params - 1.0) < 5e-3:
            return Shape(shape.width, shape.depth, patch_px, f"registered:{shape.name}")
    n_tokens = (image_px / patch_px) ** 2 + 1
    if n_tokens * 1e-3 >= n_params:
        raise ValueError(f"at {image_px:.3g} px the position embeddings alone need more than {n_params:.3g} parameters")

    def count(d: float) -> float:
        depth = d / ASPECT_WIDTH_PER_LAYER
        # patch embed + cls + position embedding + blocks + final norm (as runs_db.archs.encoder_params)
        return (3 * patch_px**2 * d + d) + d + n_tokens * d + depth * block_params(d) + 2 * d - n_params

    # Far projections (huge images) need very wide shapes: widen the bracket until it holds the root.
    hi = 1e6
    while count(hi) < 0:
        hi *= 10
    width = brentq(count, 1e-3, hi, xtol=1e-9)
    return Shape(width, width / ASPECT_WIDTH_PER_LAYER, patch_px, "aspect-40")


@dataclass(frozen=True)
class ComputeAssumptions:
    """How a projected point turns into pretraining compute."""

    passes: float  # images seen / frames in the pretraining data
    mask_ratio: float = 0.75
    patch_px: int = 14
    source: str = "default"


@dataclass(frozen=True)
class ComputeEstimate:
    """Pretraining compute implied by a (parameters, data, resolution) point."""

    flops: float  # total pretraining FLOPs
    flops_per_image: float
    encoder_share: float  # fraction of per-image FLOPs spent in the encoder
    images_seen: float
    passes: float  # images seen / frames in the data
    width: float
    depth: float
    shape_rule: str
    mask_ratio: float
    method: str
    training: str = ""  # the training-length rule's account of the images seen (scaling.compute.training_length)

    def to_dict(self) -> dict[str, float | str]:
        return asdict(self)


def flops_per_image(
    n_params: float, image_px: float, *, mask_ratio: float = MASK_RATIO, patch_px: int = PATCH_PX
) -> tuple[float, float, Shape]:
    """(training FLOPs per image, encoder share, shape) for an encoder of ``n_params`` at ``image_px``."""
    shape = shape_for_params(n_params, image_px, patch_px)
    n_patch = (image_px / patch_px) ** 2
    exact = float(image_px).is_integer() and int(image_px) % patch_px == 0
    n_enc = (math.floor(n_patch * (1 - mask_ratio)) if exact else n_patch * (1 - mask_ratio)) + 1
    f = mae_train_flops(shape.width, shape.depth, patch_px, n_patch, n_enc, DECODER_DIM, DECODER_DEPTH)
    return f.total, f.encoder / f.total, shape


def compute_at(point: Mapping[str, float], assumptions: ComputeAssumptions) -> ComputeEstimate:
    """``pretrain_compute`` of a point (n_params, data_hours, image_px) under fixed ``assumptions``."""
    a = assumptions
    return pretrain_compute(point["n_params"], point["data_hours"], point["image_px"], passes=a.passes,
                            mask_ratio=a.mask_ratio, patch_px=a.patch_px, source=a.source)


def pretrain_compute(
    n_params: float,
    data_hours: float,
    image_px: float,
    *,
    passes: float,
    mask_ratio: float = MASK_RATIO,
    patch_px: int = PATCH_PX,
    source: str = "",
) -> ComputeEstimate:
    """Compute of pretraining on ``data_hours`` of 1-frame/s video for ``passes`` passes over its frames
    (``source``: where the passes come from, e.g. the training-length rule)."""
    if passes <= 0 or data_hours <= 0:
        raise ValueError("passes and data hours must be positive")
    per_image, enc_share, shape = flops_per_image(n_params, image_px, mask_ratio=mask_ratio, patch_px=patch_px)
    images = passes * data_hours * FRAMES_PER_HOUR
    return ComputeEstimate(
        flops=per_image * images,
        flops_per_image=per_image,
        encoder_share=enc_share,
        images_seen=images,
        passes=passes,
        width=shape.width,
        depth=shape.depth,
        shape_rule=shape.rule,
        mask_ratio=mask_ratio,
        method="analytic MAE matmul FLOPs (fwd+bwd) x images seen; decoder 512 wide, 8 deep",
        training=source,
    )
