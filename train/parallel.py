"""How a model runs on its devices: activation checkpointing, FSDP2 sharding, torch.compile, DDP, AdamW.

- Activation checkpointing (per encoder block) recomputes each block's activations in the backward pass;
  same math, so the same loss and gradients (to rounding), for about a third more compute.
- FSDP2 (``torch.distributed.fsdp.fully_shard``) shards parameters, gradients and optimizer state over the
  processes: one ``fully_shard`` per encoder and decoder block (each block's weights are gathered just
  before it runs and freed after), then one on the whole model for what is left (patch embedding, tokens,
  decoder head). Gradients are averaged over ranks as DDP does, so N sharded processes train what one
  process would (tests/test_train_parallel.py checks this on CPU with gloo).
- ``torch.compile`` pays on GPUs (ViT-H/14 at 224 px on an H200: 45% MFU compiled with fused AdamW vs 35%
  eager, notes-gpu.md) and did not on our CPUs, so it defaults to on for CUDA only. Compilation is
  in place (``nn.Module.compile``): parameter names, and so checkpoints, do not change.
- Fused AdamW (one kernel for all parameters) on CUDA; the default (foreach) elsewhere.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from train.dist import DistEnv
from train.errors import TrainError

if TYPE_CHECKING:
    from torch.optim.optimizer import ParamsT


class AdamWOptions(TypedDict, total=False):
    """Keyword options of ``adamw`` (those of ``torch.optim.AdamW``; ``fused`` is chosen by the device)."""

    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool


def resolve_compile(value: bool | None, device: torch.device) -> bool:
    """``None`` (not given) -> on for CUDA, off elsewhere."""
    return device.type == "cuda" if value is None else bool(value)


def blocks_of(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks of an MAE (encoder, then decoder) or of a classifier's encoder."""
    encoder = getattr(model, "encoder", None)
    found: list[nn.Module] = list(getattr(encoder, "blocks", []) or [])
    found += list(getattr(model, "decoder_blocks", []) or [])
    return found


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Checkpoint every encoder block (timm's flag, read by ``MaskedAutoencoder.encode`` and timm itself)."""
    encoder = getattr(model, "encoder", None)
    if encoder is None or not hasattr(encoder, "set_grad_checkpointing"):
        raise TrainError("activation checkpointing needs a model with a timm ViT encoder")
    encoder.set_grad_checkpointing(True)


def shard(model: nn.Module, env: DistEnv, precision: str, *, compile: bool = False) -> nn.Module:
    """FSDP2: ``fully_shard`` each block, then the root. Parameters become DTensors sharded on dim 0.

    With bf16 on CUDA the gathered parameters are bf16 and gradients are reduced in fp32 (the usual mixed
    precision policy; it halves the traffic); elsewhere parameters stay fp32, so CPU results are exact.
    ``compile`` compiles each block's ``forward`` only, so FSDP's gather/free hooks run around the compiled
    graphs, as torchtitan does. A process group must exist (of any size: one process shards over itself).
    """
    from torch.distributed.device_mesh import init_device_mesh  # lazy: distributed modules, only for FSDP runs
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard  # lazy: as above

    # FSDP2 warns that an output is a view (the MAE's predictions), lest an in-place op on it skip its hook;
    # nothing here modifies a model's outputs in place.
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    mesh = init_device_mesh(env.device.type, (env.world,))
    kwargs: dict[str, Any] = {"mesh": mesh}
    if precision == "bf16" and env.device.type == "cuda":
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    for block in blocks_of(model):
        fully_shard(block, **kwargs)
    fully_shard(model, **kwargs)
    if compile:
        for block in blocks_of(model):
            block.forward = torch.compile(block.forward)
    return model


def wrap(model: nn.Module, env: DistEnv, *, fsdp: bool, activation_checkpointing: bool, compile: bool,
         precision: str) -> nn.Module:
    """The module the training loop calls; ``model`` itself keeps its names (checkpoints use it).

    Order: checkpointing, then sharding, then compilation (per block under FSDP, each block's ``forward``, so
    the sharding hooks stay outside the compiled graphs, as torchtitan does; the whole model in place
    otherwise), then DDP when not sharded.
    """
    if activation_checkpointing:
        enable_activation_checkpointing(model)
    if fsdp and env.distributed:  # one process has nothing to shard: it trains the plain model
        return shard(model, env, precision, compile=compile)
    if compile:
        model.compile()
    if env.distributed:
        return DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    return model


def adamw(groups: ParamsT, device: torch.device, **options: Unpack[AdamWOptions]) -> torch.optim.AdamW:
    """AdamW, fused into one kernel on CUDA (35.5% vs 35.0% MFU for ViT-H/14 alone, more with compile)."""
    if device.type == "cuda":
        return torch.optim.AdamW(groups, **options, fused=True)
    return torch.optim.AdamW(groups, **options)


def as_full(t: torch.Tensor) -> torch.Tensor:
    """A plain tensor of the whole value (a sharded gradient, or the replicated DTensor norm that
    ``clip_grad_norm_`` returns under FSDP2, gathered)."""
    from torch.distributed.tensor import DTensor  # lazy: distributed modules, only for sharded gradients

    return t.full_tensor() if isinstance(t, DTensor) else t


class GlobalBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over the global batch of all processes, for CPUs (gloo), where ``nn.SyncBatchNorm`` refuses.

    The sums behind the mean and variance are added up with a differentiable all-reduce, so the gradients
    flow across processes as ``SyncBatchNorm``'s do: N processes train exactly what one would. Running
    statistics are updated as ``nn.BatchNorm1d`` does (momentum, unbiased variance), so the state dict and
    evaluation are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as tdist  # lazy: distributed modules, only when a process group may exist

        if not (self.training and tdist.is_available() and tdist.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce  # lazy: only inside a process group

        n_local = torch.tensor([float(x.shape[0])], device=x.device, dtype=torch.float32)
        xf = x.float()
        stats = torch.cat([n_local, xf.sum(0), (xf * xf).sum(0)])
        with warnings.catch_warnings():  # deprecated in favour of functional collectives without autograd
            warnings.simplefilter("ignore", FutureWarning)
            summed: torch.Tensor = all_reduce(stats)
        n, total, total_sq = summed[0], summed[1:1 + x.shape[1]], summed[1 + x.shape[1]:]
        mean = total / n
        var = (total_sq / n - mean * mean).clamp_min(0.0)
        tracked = self.num_batches_tracked  # not None when track_running_stats, as the running mean and variance
        if (self.track_running_stats and self.running_mean is not None and self.running_var is not None
                and tracked is not None):
            with torch.no_grad():
                tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        y = (xf - mean) / torch.sqrt(var + self.eps)
        if self.affine:
            y = y * self.weight + self.bias
        return y.to(x.dtype)


def global_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers that see the global batch under data parallelism: ``SyncBatchNorm`` on CUDA (it only
    runs there), ``GlobalBatchNorm1d`` elsewhere; replaced in place, keeping the same parameter and buffer
    tensors (an optimizer built before keeps training them)."""
    if device.type == "cuda":
        synced: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return synced
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm1d:
            new = GlobalBatchNorm1d(child.num_features, child.eps, child.momentum, child.affine,
                                    child.track_running_stats)
            for key, value in child._parameters.items():  # the same tensors: an optimizer built before sees them
                new._parameters[key] = value
            for key, buffer in child._buffers.items():
                new._buffers[key] = buffer
            new.train(child.training)
            setattr(module, name, new)
        else:
            global_batchnorm(child, device)
    return module
