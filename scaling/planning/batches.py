"""How a plan runs the recipe's global batch on its GPUs: a micro-batch per GPU that fits, and gradient
accumulation for the rest, as ``scaling train`` runs it (``train.config.split_batch``: global = GPUs x
accumulation steps x micro-batch, exactly). The global batch is the recipe's, never what fits: the same
recipe on 1 GPU or 256 is the same run.
"""

from __future__ import annotations

from dataclasses import dataclass

from scaling.errors import ScalingError


@dataclass(frozen=True)
class BatchSplit:
    """One optimizer step of ``global_batch`` images: each of ``n_gpus`` GPUs runs ``accum`` micro-batches of
    ``micro_batch``."""

    global_batch: int
    n_gpus: int
    micro_batch: int
    accum: int


def split_global_batch(global_batch: int, n_gpus: int, *, fitting: int, given: int | None) -> BatchSplit:
    """The ``given`` micro-batch per GPU, or the largest one that fits (``fitting``; 1 when nothing fits)
    and divides each GPU's share of ``global_batch``; the accumulation steps follow."""
    if global_batch < 1:
        raise ScalingError(f"the global batch must be at least 1, got {global_batch}")
    if global_batch % n_gpus:
        raise ScalingError(f"a global batch of {global_batch} does not split evenly over {n_gpus} GPUs; give a "
                           "global batch that is a multiple of the GPU count")
    share = global_batch // n_gpus
    if given is not None:
        if share % given:
            raise ScalingError(f"a micro-batch of {given} per GPU does not divide the {share} images each of "
                               f"{n_gpus} GPU(s) takes of the global batch {global_batch}")
        return BatchSplit(global_batch, n_gpus, given, share // given)
    limit = max(1, min(fitting, share))
    micro = next(m for m in range(limit, 0, -1) if share % m == 0)
    return BatchSplit(global_batch, n_gpus, micro, share // micro)
