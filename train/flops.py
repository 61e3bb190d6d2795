"""Parameter and FLOP counts of a concrete model, taken on the meta device (no memory, no time).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward step of the
MAE and divided by the batch. On the meta device the attention kernel is counted; on CPU tensors torch
dispatches ``F.scaled_dot_product_attention`` to a fused CPU kernel that the counter does not know and
counts as zero, which would drop the attention FLOPs (notes-train §2.2). The analytic model is
``runs_db.archs.mae_train_flops_per_image``; the run record stores both and their ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from runs_db.archs import ViTShape, head_params, mae_train_flops_per_image
from train.model import MaskedAutoencoder, ViTClassifier, build_vit, count_params


@dataclass(frozen=True)
class FlopsCheck:
    """Training FLOPs per image, counted and analytic, and their ratio (counted / analytic)."""

    counted: float
    analytic: float
    analytic_encoder: float
    analytic_decoder: float

    @property
    def ratio(self) -> float:
        return self.counted / self.analytic


def counted_train_flops(shape: ViTShape, image_px: int, mask_ratio: float, *, decoder_dim: int,
                        decoder_depth: int, decoder_heads: int, batch: int = 2) -> float:
    """FlopCounterMode FLOPs of one MAE forward + backward on the meta device, per image."""
    with torch.device("meta"):
        model = MaskedAutoencoder(shape, image_px, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                                  decoder_heads=decoder_heads)
        imgs = torch.empty(batch, 3, image_px, image_px)
        noise = torch.rand(batch, model.n_patches)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _, _ = model(imgs, noise, mask_ratio)
        loss.backward()
    return counter.get_total_flops() / batch


def check_flops(shape: ViTShape, image_px: int, mask_ratio: float, *, decoder_dim: int, decoder_depth: int,
                decoder_heads: int) -> FlopsCheck:
    counted = counted_train_flops(shape, image_px, mask_ratio, decoder_dim=decoder_dim,
                                  decoder_depth=decoder_depth, decoder_heads=decoder_heads)
    f = mae_train_flops_per_image(shape.width, shape.depth, shape.patch_px, image_px, mask_ratio,
                                  decoder_dim=decoder_dim, decoder_depth=decoder_depth)
    return FlopsCheck(counted=counted, analytic=f.total, analytic_encoder=f.patch_embed + f.encoder,
                      analytic_decoder=f.decoder)


@dataclass(frozen=True)
class ParamCounts:
    encoder: int  # incl. class token and the (1 + L)-row position embedding, as the published logs
    with_head: int  # + BatchNorm(affine=False) + linear head of n_classes
    decoder: int  # the MAE decoder (not part of any published count)


def meta_param_counts(shape: ViTShape, image_px: int, *, n_classes: int = 1000, decoder_dim: int = 512,
                      decoder_depth: int = 8, decoder_heads: int = 16) -> ParamCounts:
    """Parameter counts of the real modules, built on the meta device (ViT-H/14 costs no memory)."""
    with torch.device("meta"):
        mae = MaskedAutoencoder(shape, image_px, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                                decoder_heads=decoder_heads)
        clf = ViTClassifier(build_vit(shape, image_px), n_classes)
    encoder = count_params(mae.encoder)
    with_head = count_params(clf)
    assert with_head == count_params(clf.encoder) + head_params(shape.width, n_classes)
    return ParamCounts(encoder=encoder, with_head=with_head, decoder=count_params(mae) - encoder)
