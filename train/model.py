"""Masked autoencoder (He et al. 2022, arXiv 2111.06377) on timm's current ViT building blocks.

The encoder *is* a ``timm.models.vision_transformer.VisionTransformer`` (patch 14 or 8, qkv bias, LayerNorm
eps 1e-6, class token, no head), so the pretrained encoder drops straight into the fine-tuning classifier
and its parameter count is the published one (21,619,584 for ViT-S/14 at 224 px). For MAE we reuse its
``patch_embed``, ``cls_token``, ``pos_embed``, ``blocks`` and ``norm`` and insert the masking between the
position embedding and the blocks. ``pos_embed`` stays an ``nn.Parameter`` (frozen in pretraining) so
parameter counts include it, as in the study's logs.

Conventions (as in the MAE paper's code): ``patchify`` orders a patch's values (row, column, channel);
``mask`` is (N, L) with 1 = removed (the loss runs on these) and 0 = kept; position embeddings are fixed
2-D sin-cos with channels [sin x, cos x, sin y, cos y] so published MAE checkpoints line up.

Per-sample mask noise is drawn from a generator seeded by (seed, global sample index): every sample gets
the same mask whichever rank, micro-batch or resumed job processes it, which is what makes data
parallelism, gradient accumulation and resume exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from runs_db.archs import ViTShape
from train.errors import TrainError

MASK_SALT = 0x6D61736B  # "mask": keeps mask noise independent of the augmentation draws of the same sample
LN_EPS = 1e-6


# ------------------------------------------------------------------------------------------ seeding
def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 finaliser): cheap, and nearby inputs give unrelated seeds."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class MaskNoise:
    """Row j of the mask noise: ``n_patches`` uniform draws of a generator seeded by (seed, sample index j).

    One generator is kept and re-seeded per sample (building one per sample cost as much as the draws); the
    values are the same, and ``tests/golden/train_masks.json`` pins them. Training computes the rows in its
    data pipeline (``train.data.MaskedStream``): in the loader's workers, off the training thread.
    """

    def __init__(self, n_patches: int, seed: int) -> None:
        self.n_patches, self.seed = n_patches, seed
        self._generator: torch.Generator | None = None  # made on first use (each loader worker has its own)

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_generator": None}

    def row(self, j: int, out: Tensor | None = None) -> Tensor:
        if self._generator is None:
            self._generator = torch.Generator()
        self._generator.manual_seed(mix_seed(self.seed, MASK_SALT, j))
        return torch.rand(self.n_patches, generator=self._generator, out=out)

    def rows(self, sample_ids: Sequence[int]) -> Tensor:
        out = torch.empty(len(sample_ids), self.n_patches)
        for i, j in enumerate(sample_ids):
            self.row(j, out[i])
        return out


def mask_noise(sample_ids: Sequence[int], n_patches: int, seed: int) -> Tensor:
    """(N, L) uniform noise whose row i depends only on (seed, sample_ids[i]); argsort of a row = its mask."""
    return MaskNoise(n_patches, seed).rows(sample_ids)


# ---------------------------------------------------------------------------------- position embedding
def sincos_pos_embed(dim: int, grid_h: int, grid_w: int, *, cls_token: bool = True) -> Tensor:
    """Fixed 2-D sin-cos embedding, (1 + H*W, dim) with a zero class-token row first (MAE's layout).

    Token (r, c) gets [sin(c w_k), cos(c w_k), sin(r w_k), cos(r w_k)], w_k = 10000^(-k / (dim/4)).
    """
    if dim % 4:
        raise TrainError(f"width {dim} must be divisible by 4 for a 2-D sin-cos position embedding")
    k = torch.arange(dim // 4, dtype=torch.float64)
    omega = 1.0 / 10000.0 ** (k / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64),
                                torch.arange(grid_w, dtype=torch.float64), indexing="ij")
    x = cols.reshape(-1, 1) * omega  # (L, dim/4)
    y = rows.reshape(-1, 1) * omega
    emb = torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], dim=1)
    if cls_token:
        emb = torch.cat([torch.zeros(1, dim, dtype=emb.dtype), emb], dim=0)
    return emb.float()


# ----------------------------------------------------------------------------------------- patches
def patchify(imgs: Tensor, patch: int) -> Tensor:
    """(N, C, H, W) -> (N, L, p*p*C), patches in row-major order, values ordered (row, col, channel)."""
    n, c, h, w = imgs.shape
    if h % patch or w % patch:
        raise TrainError(f"image {h}x{w} px is not divisible by the {patch}-px patch")
    x = imgs.reshape(n, c, h // patch, patch, w // patch, patch)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(x: Tensor, patch: int, grid_h: int, grid_w: int, channels: int = 3) -> Tensor:
    """Inverse of ``patchify``: (N, L, p*p*C) -> (N, C, H, W)."""
    n = x.shape[0]
    x = x.reshape(n, grid_h, grid_w, patch, patch, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, channels, grid_h * patch, grid_w * patch)


def n_kept(n_patches: int, mask_ratio: float) -> int:
    """Visible patches per sample: floor(L (1 - r)), the count ``runs_db.archs`` uses for FLOPs."""
    return math.floor(n_patches * (1.0 - mask_ratio))


def check_mask_ratio(n_patches: int, mask_ratio: float) -> None:
    keep = n_kept(n_patches, mask_ratio)
    if not 0.0 < mask_ratio < 1.0 or keep < 1 or keep >= n_patches:
        raise TrainError(f"mask ratio {mask_ratio} keeps {keep} of {n_patches} patches; it must keep at least one "
                         "and hide at least one")


def random_masking(x: Tensor, mask_ratio: float, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Keep the floor(L (1 - r)) tokens with the smallest noise, per sample.

    Returns the kept tokens (N, keep, D), the mask (N, L; 1 = removed) and ``ids_restore`` (N, L), which
    puts the shuffled order back into patch order.
    """
    n, length, d = x.shape
    keep = n_kept(length, mask_ratio)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    kept = torch.gather(x, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
    mask = torch.ones(n, length, device=x.device, dtype=x.dtype)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return kept, mask, ids_restore


def mae_loss(imgs: Tensor, pred: Tensor, mask: Tensor, patch: int, *, norm_pix_loss: bool = False) -> Tensor:
    """Mean squared error over the *removed* patches only, in fp32 whatever the autocast dtype.

    With ``norm_pix_loss`` each target patch is normalised by its own mean and (unbiased, as MAE) variance.
    """
    target = patchify(imgs.float(), patch)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
    mask = mask.float()
    return (per_patch * mask).sum() / mask.sum()


# -------------------------------------------------------------------------------------------- models
def _param(p: nn.Parameter | None, what: str) -> nn.Parameter:
    """A parameter timm types as optional (``pos_embed``, ``cls_token``), which every ViT built here has."""
    if p is None:
        raise TrainError(f"the timm ViT has no {what}")
    return p


def build_vit(shape: ViTShape, image_px: int) -> VisionTransformer:
    """timm ViT encoder (no head) in the study's configuration; its ``pos_embed`` is set to sin-cos."""
    grid = image_px // shape.patch_px
    if image_px <= 0 or image_px % shape.patch_px:
        raise TrainError(f"image size {image_px} px is not a multiple of the {shape.patch_px}-px patch of {shape.name}")
    vit = VisionTransformer(
        img_size=image_px, patch_size=shape.patch_px, embed_dim=shape.width, depth=shape.depth,
        num_heads=shape.heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=LN_EPS),
        num_classes=0, global_pool="token", class_token=True,
    )
    with torch.no_grad():
        _param(vit.pos_embed, "pos_embed").copy_(sincos_pos_embed(shape.width, grid, grid)[None])
    return vit


def _init_mae_weights(module: nn.Module) -> None:
    # MAE's init: xavier-uniform linear layers, zero biases, unit LayerNorms (timm's default is trunc-normal).
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class MaskedAutoencoder(nn.Module):
    """MAE: timm ViT encoder on the visible patches, a small transformer decoder on all patches."""

    decoder_pos_embed: Tensor  # a buffer (register_buffer)

    def __init__(self, shape: ViTShape, image_px: int, *, decoder_dim: int = 512, decoder_depth: int = 8,
                 decoder_heads: int = 16, norm_pix_loss: bool = False) -> None:
        super().__init__()
        self.shape, self.image_px, self.patch = shape, image_px, shape.patch_px
        self.grid = image_px // shape.patch_px
        self.n_patches = self.grid * self.grid
        self.norm_pix_loss = norm_pix_loss
        if decoder_dim % decoder_heads:
            raise TrainError(f"decoder width {decoder_dim} is not divisible by {decoder_heads} heads")
        self.encoder = build_vit(shape, image_px)
        # Fixed sin-cos in pretraining (kept as a Parameter).
        _param(self.encoder.pos_embed, "pos_embed").requires_grad_(False)

        pix = shape.patch_px * shape.patch_px * 3
        self.decoder_embed = nn.Linear(shape.width, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed(decoder_dim, self.grid, self.grid)[None])
        self.decoder_blocks = nn.ModuleList(
            # timm annotates Block's norm_layer as type[Module]; any callable returning one works (its
            # VisionTransformer passes partials like this one to Block itself).
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True,
                  norm_layer=partial(nn.LayerNorm, eps=LN_EPS))  # type: ignore[arg-type]
            for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=LN_EPS)
        self.decoder_pred = nn.Linear(decoder_dim, pix)

        self.apply(_init_mae_weights)
        with torch.no_grad():  # the patch projection is initialised like a linear layer on flattened patches
            w = self.encoder.patch_embed.proj.weight
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(_param(self.encoder.cls_token, "class token"), std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)

    def encode(self, imgs: Tensor, mask_ratio: float, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        vit = self.encoder
        pos_embed = _param(vit.pos_embed, "pos_embed")
        x = vit.patch_embed(imgs) + pos_embed[:, 1:]
        x, mask, ids_restore = random_masking(x, mask_ratio, noise)
        cls = (_param(vit.cls_token, "class token") + pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        x = vit.norm_pre(torch.cat([cls, x], dim=1))
        if vit.grad_checkpointing and torch.is_grad_enabled():
            # Activation checkpointing per encoder block (``train.parallel``): each block's activations are
            # recomputed in the backward pass instead of stored, trading ~1/3 more compute for memory.
            for blk in vit.blocks:
                x = checkpoint(blk, x, use_reentrant=False)
        else:
            x = vit.blocks(x)
        return vit.norm(x), mask, ids_restore

    def decode(self, latent: Tensor, ids_restore: Tensor) -> Tensor:
        x = self.decoder_embed(latent)
        n, n_vis, d = x.shape
        fill = self.mask_token.expand(n, ids_restore.shape[1] + 1 - n_vis, -1).to(x.dtype)
        patches = torch.cat([x[:, 1:], fill], dim=1)
        patches = torch.gather(patches, 1, ids_restore[..., None].expand(-1, -1, d))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        pred: Tensor = self.decoder_pred(self.decoder_norm(x))
        return pred[:, 1:]

    def forward(self, imgs: Tensor, noise: Tensor, mask_ratio: float) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (loss in fp32, predictions (N, L, p*p*3), mask (N, L))."""
        latent, mask, ids_restore = self.encode(imgs, mask_ratio, noise)
        pred = self.decode(latent, ids_restore)
        return mae_loss(imgs, pred, mask, self.patch, norm_pix_loss=self.norm_pix_loss), pred, mask


class ViTClassifier(nn.Module):
    """The study's fine-tuning model: the encoder, then BatchNorm (no affine) + linear on the class token."""

    def __init__(self, encoder: VisionTransformer, n_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        _param(encoder.pos_embed, "pos_embed").requires_grad_(True)  # the study fine-tunes every encoder parameter
        width = encoder.embed_dim
        linear = nn.Linear(width, n_classes)
        self.head = nn.Sequential(nn.BatchNorm1d(width, affine=False, eps=LN_EPS), linear)
        trunc_normal_(linear.weight, std=0.01)  # MoCo v3 / MAE linear-probe head init
        nn.init.zeros_(linear.bias)

    def features(self, imgs: Tensor) -> Tensor:
        return self.encoder.forward_features(imgs)[:, 0]

    def forward(self, imgs: Tensor) -> Tensor:
        logits: Tensor = self.head(self.features(imgs))
        return logits


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
