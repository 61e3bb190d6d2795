"""GPU memory of one MAE pretraining step, per GPU: a closed-form model of what ``train`` keeps alive.

The peak of a step of ``train`` (forward under bf16 autocast, ``zero_grad(set_to_none=True)``, backward,
AdamW) comes at the end of the forward pass, when everything below is alive at once:

- **states**: fp32 master weights (4 B per parameter, decoder and buffers included), the previous step's
  fp32 gradients (4 B per trainable parameter; they are freed only after the forward, by ``zero_grad``)
  and AdamW's two fp32 moments (8 B per trainable parameter). The position embedding is frozen in
  pretraining: no gradient, no moments. FSDP over K GPUs shards all three (1/K each).
- **weight copies**: under autocast every matmul weight is cast to bf16 once per forward and the cast is
  kept (autocast's cache, and the copy saved for backward): 2 B per matmul weight. With FSDP (assumed with
  ``MixedPrecisionPolicy(param_dtype=bfloat16)``) the all-gathered bf16 weights of two blocks (the current
  one and the prefetched one) instead. DDP (K > 1 without FSDP) adds its gradient buckets (4 B per
  trainable parameter; ``gradient_as_bucket_view=False``, the default).
- **activations** (the tensors autograd saves for backward), per image, for a timm pre-norm block of width
  d, h heads and n tokens, with a = 2 B under bf16 autocast (4 B in fp32)::

      n * (8 d + 14 a d + 16 + attention)       attention = 4 h (fused/flash: log-sum-exp)
                                                           or a h n (explicit: the softmax probabilities)

  8 d: the two LayerNorm inputs, fp32 on the residual stream; 14 a d: the inputs of qkv, proj (the
  attention output), fc1 and fc2 and the GELU's input (1 + 1 + 1 + 4 + 4) and q, k, v (3); 16: the two
  LayerNorms' mean and 1/std. The encoder runs on the visible tokens n_e = floor(L (1 - mask)) + 1, the
  decoder on n_d = L + 1 (He et al. 2022). Outside the blocks: the images and their bf16 copy, the two
  gather indices, both final norms, the inputs of decoder_embed and decoder_pred, and the fp32 loss
  difference (3 p^2 values per patch) and mask. ``tests/test_plan.py`` counts the bytes autograd saves
  (``saved_tensors_hooks``) on CPU and checks these terms exactly, and the whole step's peak with the
  profiler's allocation events.
- **activation checkpointing** per encoder block keeps only each block's fp32 input (4 d per token) and
  recomputes one block at a time in backward (its activations counted once more on top).
- **working set**: the image batch; at the end of the forward pass, the loss's prediction, fp32 target and
  squared error and the encoder's fp32 output; at the start of backward (where the peak is when these
  outweigh the gradients that ``zero_grad`` freed just before: tiny models only), the loss's fp32
  temporaries (four tensors of 3 p^2 values per patch).

Checked against the H200 (``notes-gpu``; the 2.43B ViT/14 at 952 px, mask 0.8): batch 16 without
checkpointing, measured 102 GiB peak; batch 32 with every encoder block checkpointed, 76 GiB
(``tests/test_plan.py``, within 15%).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from runs_db.archs import DECODER_DEPTH, DECODER_DIM, DECODER_HEADS, MASK_RATIO, ViTShape, block_params
from scaling.errors import ScalingError

GIB = float(2**30)
PRECISIONS = ("bf16", "fp32")
ATTENTIONS = ("fused", "explicit")
FSDP_GATHERED_BLOCKS = 2  # FSDP2 unshards the current block and prefetches the next one
# fp32 tensors of the prediction's size alive in the loss's first backward op (the incoming gradient and
# the power's backward: self^1, 2 self, grad * 2 self), counted on CPU with the profiler (tests/test_plan.py)
LOSS_TEMPORARIES = 4


@dataclass(frozen=True)
class StepSetup:
    """What decides the memory of one MAE pretraining step on one GPU."""

    shape: ViTShape
    image_px: int
    batch: int  # images per GPU
    mask_ratio: float = MASK_RATIO
    precision: str = "bf16"  # bf16 autocast with fp32 master weights, or fp32 throughout
    attention: str = "fused"  # fused (flash / SDPA, what ``train`` uses on GPUs) or explicit (on CPUs)
    activation_checkpointing: bool = False  # every encoder block
    fsdp: bool = False
    n_gpus: int = 1
    decoder_dim: int = DECODER_DIM
    decoder_depth: int = DECODER_DEPTH
    decoder_heads: int = DECODER_HEADS

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ScalingError(f"precision {self.precision!r}: use {' or '.join(PRECISIONS)}")
        if self.attention not in ATTENTIONS:
            raise ScalingError(f"attention {self.attention!r}: use {' or '.join(ATTENTIONS)}")
        if self.batch < 1:
            raise ScalingError(f"the batch per GPU must be at least 1, got {self.batch}")
        if self.n_gpus < 1:
            raise ScalingError(f"the number of GPUs must be at least 1, got {self.n_gpus}")
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ScalingError(f"mask ratio {self.mask_ratio} must be in [0, 1)")
        if self.image_px <= 0 or self.image_px % self.shape.patch_px:
            raise ScalingError(f"image size {self.image_px} px is not a positive multiple of the "
                               f"{self.shape.patch_px}-px patch of {self.shape.name}")

    @property
    def act_bytes(self) -> int:
        return 2 if self.precision == "bf16" else 4

    @property
    def n_patches(self) -> int:
        return (self.image_px // self.shape.patch_px) ** 2

    @property
    def n_encoder_tokens(self) -> int:
        return math.floor(self.n_patches * (1.0 - self.mask_ratio)) + 1

    @property
    def n_decoder_tokens(self) -> int:
        return self.n_patches + 1


@dataclass(frozen=True)
class ParamCounts:
    """Parameters of the MAE (encoder + decoder) by role."""

    total: int  # parameters and the decoder's position-embedding buffer, all held in fp32
    trainable: int  # everything but the frozen encoder position embedding
    matmul_weights: int  # elements of the linear and patch-projection weights (cast to bf16 by autocast)
    largest_block: int  # parameters of one encoder block (what FSDP gathers at a time)


def mae_param_counts(setup: StepSetup) -> ParamCounts:
    """Counts of ``train.model.MaskedAutoencoder`` (timm blocks, MLP ratio 4, qkv bias)."""
    s, dd = setup.shape, setup.decoder_dim
    d, p2 = s.width, 3 * s.patch_px**2
    tokens = setup.n_patches + 1
    enc_blocks = s.depth * block_params(d)
    encoder = (p2 * d + d) + d + tokens * d + enc_blocks + 2 * d
    dec_blocks = setup.decoder_depth * block_params(dd)
    decoder = (d * dd + dd) + dd + dec_blocks + 2 * dd + (dd * p2 + p2)
    buffers = tokens * dd  # decoder_pos_embed
    matmul = p2 * d + s.depth * 12 * d * d + d * dd + setup.decoder_depth * 12 * dd * dd + dd * p2
    return ParamCounts(total=int(encoder + decoder + buffers), trainable=int(encoder - tokens * d + decoder),
                       matmul_weights=int(matmul), largest_block=int(block_params(d)))


def block_activation_bytes(width: int, heads: int, n_tokens: int, *, act_bytes: int, attention: str) -> float:
    """Bytes one transformer block saves for backward, per image (see the module docstring)."""
    attn = 4 * heads if attention == "fused" else act_bytes * heads * n_tokens
    return n_tokens * (8 * width + 14 * act_bytes * width + 16 + attn)


@dataclass(frozen=True)
class ActivationBytes:
    """Bytes saved for backward in one forward pass of the whole per-GPU batch."""

    encoder_blocks: float
    decoder_blocks: float
    other: float  # patch embedding, masking indices, norms, decoder embedding and prediction, loss
    recompute: float  # one encoder block recomputed in backward (activation checkpointing only)

    @property
    def total(self) -> float:
        return self.encoder_blocks + self.decoder_blocks + self.other + self.recompute


def activation_bytes(setup: StepSetup) -> ActivationBytes:
    s, a, b = setup.shape, setup.act_bytes, setup.batch
    d, dd, p2 = s.width, setup.decoder_dim, 3 * s.patch_px**2
    n_e, n_d, L = setup.n_encoder_tokens, setup.n_decoder_tokens, setup.n_patches
    one_block = block_activation_bytes(d, s.heads, n_e, act_bytes=a, attention=setup.attention)
    if setup.activation_checkpointing:
        encoder, recompute = float(s.depth * 4 * d * n_e), one_block
    else:
        encoder, recompute = s.depth * one_block, 0.0
    decoder = setup.decoder_depth * block_activation_bytes(dd, setup.decoder_heads, n_d, act_bytes=a,
                                                          attention=setup.attention)
    other = (
        (a * p2 * L if setup.precision == "bf16" else 0)  # bf16 copy of the images (the patch projection's input)
        + 8 * L * 2  # int64 gather indices of the masking and of the decoder's unshuffle
        + 4 * d * L + a * dd * L  # the gathers' inputs (gather saves its input): fp32 patches, decoder tokens
        + (4 * d + 8) * n_e  # encoder's final LayerNorm input and statistics
        + a * d * n_e  # decoder_embed input
        + (4 * dd + 8) * n_d  # decoder_norm
        + a * dd * n_d  # decoder_pred input
        + 4 * p2 * L + 4 * L  # the loss: fp32 (prediction - target) and the mask
    )
    return ActivationBytes(encoder_blocks=b * encoder, decoder_blocks=b * decoder, other=b * other,
                           recompute=b * recompute)


PHASES = ("end of forward", "start of backward")


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU at the step's peak, by part; ``total`` is the predicted peak and ``phase`` says when."""

    phase: str  # 'end of forward' (the previous step's gradients alive) or 'start of backward'
    parameters: float
    gradients: float
    optimizer: float
    weight_copies: float  # bf16 casts of the weights (or FSDP's gathered blocks)
    ddp_buckets: float
    activations: float  # saved for backward
    working: float  # the image batch (and the loss's temporaries at the start of backward)

    @property
    def total(self) -> float:
        return (self.parameters + self.gradients + self.optimizer + self.weight_copies + self.ddp_buckets
                + self.activations + self.working)

    def to_dict(self) -> dict[str, float | str]:
        parts = {k: v / GIB for k, v in asdict(self).items() if k != "phase"}
        return {"phase": self.phase, **parts, "total": self.total / GIB}


def step_memory(setup: StepSetup) -> MemoryBreakdown:
    """Predicted peak bytes per GPU of one pretraining step (AdamW, in the order of ``train.pretrain``).

    Two moments compete: the end of the forward pass (the previous step's gradients still alive, every
    weight cast held by autocast) and the start of backward (gradients freed by ``zero_grad``, the loss's
    fp32 temporaries allocated, autocast's cache released: only the casts saved for backward remain).
    A block recomputed under checkpointing runs after the decoder's activations are freed, so it adds only
    where it outweighs them."""
    counts = mae_param_counts(setup)
    shard = setup.n_gpus if setup.fsdp else 1
    bf16 = setup.precision == "bf16"
    s = setup.shape
    encoder_block_weights = s.depth * 12 * s.width**2
    if setup.fsdp:
        copies_fwd = copies_bwd = FSDP_GATHERED_BLOCKS * (2 if bf16 else 4) * counts.largest_block
    else:
        copies_fwd = 2 * counts.matmul_weights if bf16 else 0
        # checkpointed blocks save nothing: their casts live only in autocast's cache, gone after the forward
        copies_bwd = copies_fwd - (2 * encoder_block_weights if bf16 and setup.activation_checkpointing else 0)
    ddp = 4 * counts.trainable if setup.n_gpus > 1 and not setup.fsdp else 0
    acts = activation_bytes(setup)
    saved = acts.encoder_blocks + acts.decoder_blocks + acts.other
    images = 4 * 3 * setup.image_px**2 * setup.batch
    p2, L = 3 * s.patch_px**2, setup.n_patches
    # in the forward's loss: the prediction (class row included), the fp32 target and squared error, and
    # the encoder's fp32 output still referenced by the forward
    n_e, a = setup.n_encoder_tokens, setup.act_bytes
    loss_forward = setup.batch * (a * p2 * (L + 1) + 2 * 4 * p2 * L + 4 * s.width * n_e)
    loss_temporaries = LOSS_TEMPORARIES * 4 * p2 * L * setup.batch
    recompute = max(0.0, acts.recompute - acts.decoder_blocks)
    states = dict(parameters=4 * counts.total / shard, optimizer=8 * counts.trainable / shard,
                  ddp_buckets=float(ddp), activations=saved)
    forward = MemoryBreakdown(phase=PHASES[0], gradients=4 * counts.trainable / shard,
                              weight_copies=float(copies_fwd), working=float(images + loss_forward), **states)
    backward = MemoryBreakdown(phase=PHASES[1], gradients=0.0, weight_copies=float(copies_bwd),
                               working=float(images + loss_temporaries + recompute), **states)
    return forward if forward.total >= backward.total else backward


def largest_batch(setup: StepSetup, memory_bytes: float, *, limit: int = 1 << 20) -> int:
    """The largest batch per GPU whose predicted peak fits ``memory_bytes`` (0 when not even one image fits).

    The peak grows with the batch (each phase linearly), so a doubling search then bisection finds it."""

    def fits(b: int) -> bool:
        return step_memory(replace(setup, batch=b)).total <= memory_bytes

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while hi <= limit and fits(hi):
        lo, hi = hi, hi * 2
    if hi > limit:
        return limit
    while hi - lo > 1:  # fits(lo), not fits(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
