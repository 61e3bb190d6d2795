"""ViT architectures of the study: shapes, exact parameter counts and MAE pretraining FLOPs.

These are facts about a run that the database records, so they live here (``train`` and ``scaling`` both
read them; ``runs_db`` never imports either).

Parameter counts follow timm's ``VisionTransformer`` with a learnable class token and a (1 + L)-row
position embedding, as in the fine-tuning logs of Orhan (2023) (eminorhan/humanlike-vits@7a66e95):
ViT-S/14 at 224 px has 21,619,584 encoder parameters and 22,004,584 with the BatchNorm(affine=False) +
linear 1000-way head. The position embedding grows with the image size, so a count without it
(``n_params_nonembed``) is also given.

FLOPs count matrix multiplies only, 2 FLOPs per multiply-add, as ``torch.utils.flop_counter`` does
(norms, GELU, softmax and the optimizer are not counted). One pre-norm block with width d, n tokens and
MLP ratio 4 costs, forward: 2nd*3d (qkv) + 2nd*d (proj) + 2*2nd*4d (MLP) + 4n^2 d (QK^T and AV)
= 24 n d^2 + 4 n^2 d. MAE (He et al. 2022, arXiv 2111.06377) runs the encoder on the visible patches plus
the class token and the decoder on all patches plus the class token. Training = forward + backward with
backward = 2 x forward, except the patch embedding whose input (pixels) needs no gradient (1 x forward).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

# Defaults of the study's MAE recipe (eminorhan/mae@63048899, train_mae_sayavakepicutego4d.sh).
# The study's MAE recipe (notes-paper §2; He et al. 2022): one home for these, read by train/ and scaling/.
MASK_RATIO = 0.75  # fraction of patches hidden (0.8 for the published 448/476 px runs)
PATCH_PX = 14
DECODER_DIM = 512
DECODER_DEPTH = 8
DECODER_HEADS = 16
MLP_RATIO = 4


@dataclass(frozen=True)
class ViTShape:
    """Shape of a ViT encoder; ``name`` is the registry key (e.g. ``vit_h14``)."""

    name: str
    width: int
    depth: int
    heads: int
    patch_px: int
    description: str = ""

    def n_patches(self, image_px: int) -> int:
        """Number of patches L = (image_px / patch_px)^2; the image side must be divisible by the patch."""
        if image_px <= 0 or image_px % self.patch_px:
            raise ValueError(
                f"image size {image_px} px is not a positive multiple of the {self.patch_px}-px patch"
            )
        return (image_px // self.patch_px) ** 2


# The four sizes of Orhan (2023) (humanlike-vits vit_models.py: vit_{small,base,large,huge}_patch14) and
# tiny sizes for CPU runs. Widths/depths/heads of S/B/L/H as in Dosovitskiy et al. 2021 / timm.
ARCHS: dict[str, ViTShape] = {
    s.name: s
    for s in [
        ViTShape("vit_t14", 192, 12, 3, 14, "ViT-Ti/14 (timm tiny shape), for CPU runs"),
        # Patch-8 sizes for small images on a CPU (32-64 px gives 16-64 patches): the demo and the tests.
        ViTShape("vit_nano8", 96, 6, 3, 8, "ViT-nano/8 (96 wide, 6 deep), for few-minute CPU grid points"),
        ViTShape("vit_pico8", 32, 2, 2, 8, "ViT-pico/8 (32 wide, 2 deep), for unit tests"),
        ViTShape("vit_s14", 384, 12, 6, 14, "ViT-S/14, Orhan (2023)"),
        ViTShape("vit_b14", 768, 12, 12, 14, "ViT-B/14, Orhan (2023)"),
        ViTShape("vit_l14", 1024, 24, 16, 14, "ViT-L/14, Orhan (2023)"),
        ViTShape("vit_h14", 1280, 32, 16, 14, "ViT-H/14, Orhan (2023)"),
        # The projected sizes (Orhan 2023 projects human-level recognition at ~2.5B parameters, 952 px). Our own
        # shapes, MLP ratio 4 and 96-128-wide heads, about ViT-H/14's 40 width per layer; their encoder counts
        # (exact, timm, checked on the meta device in tests/test_plan.py) are in PROJECTED_PARAMS.
        ViTShape("vit_1b14", 1536, 36, 16, 14, "ViT-1B/14 (1536 wide, 36 deep), 1.02B at 224 px"),
        ViTShape("vit_2p5b14", 2048, 48, 16, 14,
                 "ViT-2.5B/14 (2048 wide, 48 deep), 2.43B at 952 px; measured on an H200 (notes-gpu)"),
        ViTShape("vit_3b14", 2304, 48, 18, 14, "ViT-3B/14 (2304 wide, 48 deep), 3.06B at 224 px"),
    ]
}

# Encoder parameters (class token and position embeddings included, as the published logs) of the projected
# sizes at 224 and 952 px: timm's VisionTransformer counts, equal to ``encoder_params``.
PROJECTED_PARAMS: dict[str, dict[int, int]] = {
    "vit_1b14": {224: 1_021_238_784, 952: 1_027_948_032},
    "vit_2p5b14": {224: 2_418_935_808, 952: 2_427_881_472},
    "vit_3b14": {224: 3_061_041_408, 952: 3_071_105_280},
}

# Names used in the published log files (``vith14@448_0.01_2``) -> registry names and image size.
PUBLISHED_ARCH_NAMES: dict[str, str] = {
    "vits14": "vit_s14",
    "vitb14": "vit_b14",
    "vitl14": "vit_l14",
    "vith14": "vit_h14",
}


def get_arch(name: str) -> ViTShape:
    """Look up a registered shape by name (``vit_s14``) or by its published log name (``vits14``)."""
    key = PUBLISHED_ARCH_NAMES.get(name, name)
    try:
        return ARCHS[key]
    except KeyError:
        known = ", ".join(sorted(ARCHS))
        raise KeyError(f"unknown architecture {name!r}; known: {known}") from None


def nearest_arch(n_params: float, image_px: int = 224, *, patch_px: int = PATCH_PX) -> ViTShape:
    """The registered shape (of ``patch_px`` patches) whose encoder count at ``image_px`` is nearest to
    ``n_params`` in log scale: the trainable architecture behind a projected parameter count (2.5e9 at
    952 px -> ``vit_2p5b14``, 2.43B)."""
    if not (n_params > 0 and math.isfinite(n_params)):
        raise ValueError(f"parameter count must be a positive number, got {n_params}")
    shapes = [s for s in ARCHS.values() if s.patch_px == patch_px]
    if not shapes:
        raise ValueError(f"no registered shape has {patch_px}-px patches")
    return min(shapes, key=lambda s: abs(math.log(encoder_params(s, image_px) / n_params)))


@overload
def block_params(width: int) -> int: ...
@overload
def block_params(width: float) -> float: ...
def block_params(width: float) -> float:
    """Parameters of one pre-norm transformer block with MLP ratio 4 and qkv bias: 12 d^2 + 13 d (an int for
    an int width; real-valued widths are allowed for projections)."""
    d = width
    return 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d)


def encoder_params(shape: ViTShape, image_px: int, *, position_embedding: bool = True) -> int:
    """Encoder parameters: patch embedding, class token, position embedding (optional), blocks, final norm."""
    d, p = shape.width, shape.patch_px
    n = shape.n_patches(image_px)
    patch_embed = 3 * p * p * d + d
    pos_embed = (n + 1) * d if position_embedding else 0
    return patch_embed + d + pos_embed + shape.depth * block_params(d) + 2 * d


def head_params(width: int, n_classes: int = 1000) -> int:
    """BatchNorm1d(affine=False) adds nothing; the linear layer has d*classes + classes parameters."""
    return width * n_classes + n_classes


@dataclass(frozen=True)
class MaeFlops:
    """Training FLOPs (forward + backward) per image, split by part."""

    patch_embed: float
    encoder: float
    decoder: float

    @property
    def total(self) -> float:
        return self.patch_embed + self.encoder + self.decoder


def block_flops(n_tokens: float, width: float) -> float:
    """Forward matmul FLOPs of one block: 24 n d^2 + 4 n^2 d."""
    return 24.0 * n_tokens * width**2 + 4.0 * n_tokens**2 * width


def mae_train_flops_per_image(
    width: int,
    depth: int,
    patch_px: int,
    image_px: int,
    mask_ratio: float = MASK_RATIO,
    decoder_dim: int = DECODER_DIM,
    decoder_depth: int = DECODER_DEPTH,
) -> MaeFlops:
    """Forward + backward matmul FLOPs of one MAE pretraining step, per image, for a concrete model.

    Visible tokens n_e = floor(L (1 - mask_ratio)) + 1 (class token), decoder tokens n_d = L + 1.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask ratio {mask_ratio} must be in [0, 1)")
    if image_px <= 0 or image_px % patch_px:
        raise ValueError(f"image size {image_px} px is not a positive multiple of the {patch_px}-px patch")
    n_patch = (image_px // patch_px) ** 2
    n_enc = math.floor(n_patch * (1.0 - mask_ratio)) + 1
    return mae_train_flops(width, depth, patch_px, n_patch, n_enc, decoder_dim, decoder_depth)


def mae_train_flops(
    width: float,
    depth: float,
    patch_px: int,
    n_patch: float,
    n_enc: float,
    decoder_dim: int = DECODER_DIM,
    decoder_depth: int = DECODER_DEPTH,
) -> MaeFlops:
    """The formula itself, on token counts; real-valued shapes and tokens are allowed for projections."""
    n_dec = n_patch + 1
    pix = 3 * patch_px * patch_px
    f_patch = 2.0 * n_patch * pix * width
    f_enc = depth * block_flops(n_enc, width)
    f_dec = 2.0 * n_enc * width * decoder_dim + decoder_depth * block_flops(n_dec, decoder_dim)
    f_dec += 2.0 * n_dec * decoder_dim * pix
    # backward = 2 x forward, except the patch embedding (no gradient w.r.t. pixels): 1 x forward.
    return MaeFlops(patch_embed=2.0 * f_patch, encoder=3.0 * f_enc, decoder=3.0 * f_dec)


def mae_flops_for_arch(shape: ViTShape, image_px: int, mask_ratio: float = MASK_RATIO) -> MaeFlops:
    """``mae_train_flops_per_image`` for a registered shape with the study's 512-wide, 8-deep decoder."""
    return mae_train_flops_per_image(shape.width, shape.depth, shape.patch_px, image_px, mask_ratio)
