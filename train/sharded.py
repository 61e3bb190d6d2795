"""Checkpoints of sharded (FSDP2) runs with ``torch.distributed.checkpoint`` (DCP), resumable on any world size.

A sharded checkpoint is a folder (``pretrain.dcp/``): every rank writes its own shards of the model and
optimizer state, and rank 0 writes ``meta.json`` (identity, step, history; what the single-file checkpoint
holds besides tensors). DCP records the global shape of every tensor, so loading reshards: a run saved by
8 processes resumes on 4, on 2, or on one process without any process group.

Atomicity: the new folder is written next to the old one (``.tmp``) and swapped in by two renames after
every rank has finished; a job killed between the renames leaves ``pretrain.dcp.old``, which is then used.

Both checkpoint kinds load into both kinds of model: ``load_full`` puts a single-file (unsharded) state
into a sharded model, and ``load_sharded`` a DCP folder into an unsharded one, through the state-dict API
of ``torch.distributed.checkpoint.state_dict`` (parameter names are the same with and without FSDP2).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from train import dist
from train.checkpoint import PretrainMeta, atomic_write_json
from train.errors import TrainError

if TYPE_CHECKING:
    from torch.distributed.checkpoint.state_dict import OptimizerStateType, ValueType
    from torch.optim.optimizer import StateDict

META = "meta.json"


class ShardedMeta(PretrainMeta):
    """``meta.json`` of a sharded checkpoint: the run's identity and progress, and the processes that wrote it."""

    world: int


@contextlib.contextmanager
def _single_process_is_fine() -> Iterator[None]:
    """DCP warns when there is no process group and then works in one process: what we want there."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*assuming the intent is to (save|load) in a single process")
        yield


def _dirs(folder: Path) -> tuple[Path, Path]:
    return folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")


def existing(folder: Path) -> Path | None:
    """The complete sharded checkpoint at ``folder`` (or its ``.old`` twin after an interrupted swap)."""
    _, old = _dirs(folder)
    for candidate in (folder, old):
        if (candidate / META).is_file():
            return candidate
    return None


def remove(folder: Path) -> None:
    """Delete a sharded checkpoint and the leftovers of an interrupted swap."""
    for path in (folder, *_dirs(folder)):
        shutil.rmtree(path, ignore_errors=True)


def read_meta(folder: Path) -> ShardedMeta:
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TrainError(f"cannot read sharded checkpoint {folder}: {str(e).splitlines()[0]}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("step"), int):
        raise TrainError(f"sharded checkpoint {folder} has a malformed {META}")
    return cast(ShardedMeta, meta)  # as save_sharded wrote it (a missing key fails where it is read)


def save_sharded(folder: Path, model: nn.Module, opt: torch.optim.Optimizer, meta: PretrainMeta,
                 env: dist.DistEnv) -> None:
    """Every rank writes its shards; rank 0 writes ``meta.json`` and swaps the folder in."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    tmp, old = _dirs(folder)
    if env.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier(env)
    msd, osd = get_state_dict(model, opt)
    with _single_process_is_fine():
        dcp.save({"model": msd, "optim": osd}, checkpoint_id=str(tmp))
    dist.barrier(env)
    if env.is_main:
        atomic_write_json(tmp / META, {**meta, "world": env.world})
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier(env)


def load_sharded(folder: Path, model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """Load a DCP folder into ``model``/``opt`` (sharded or not; any world size)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    msd, osd = get_state_dict(model, opt)
    state: dict[str, Any] = {"model": msd, "optim": osd}  # dcp.load's own type: it loads into these in place
    try:
        with _single_process_is_fine():
            dcp.load(state, checkpoint_id=str(folder))
    except Exception as e:  # DCP wraps reader errors (missing shard, wrong shapes) in its own types
        text = str(e).strip().splitlines()
        raise TrainError(f"cannot load sharded checkpoint {folder}: {text[0] if text else type(e).__name__}") from None
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])


def optimizer_by_name(opt_state: StateDict, names: list[str]) -> OptimizerStateType:
    """``Optimizer.state_dict()`` (parameters numbered in group order) with parameter names instead.

    ``names`` lists the parameter names in the order the optimizer's groups were built; that is how
    ``torch.optim`` numbers them (group by group, in order), so number i is ``names[i]``.
    """
    count = sum(len(g["params"]) for g in opt_state["param_groups"])
    if count != len(names):
        raise TrainError(f"the checkpoint's optimizer has {count} parameters, the model {len(names)}")
    state = {names[int(i)]: v for i, v in opt_state["state"].items()}
    groups = [{**g, "params": [names[int(i)] for i in g["params"]]} for g in opt_state["param_groups"]]
    return {"state": state, "param_groups": groups}


def load_full(model: nn.Module, opt: torch.optim.Optimizer, model_state: dict[str, torch.Tensor],
              opt_state: StateDict | None, names: list[str]) -> None:
    """Load an unsharded (single-file) state into a possibly sharded model, each rank taking its shards."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    options = StateDictOptions(full_state_dict=True)
    weights = cast("dict[str, ValueType]", model_state)  # tensors are ValueTypes (dict is invariant)
    if opt_state is None:
        set_state_dict(model, [], model_state_dict=weights, optim_state_dict={}, options=options)
        return
    set_state_dict(model, opt, model_state_dict=weights, optim_state_dict=optimizer_by_name(opt_state, names),
                   options=options)


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state on CPU, gathered from the shards under FSDP2: on rank 0 only (the others get
    an empty dict, so that N ranks do not hold N copies in host memory)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    return cast("dict[str, torch.Tensor]", state)  # a full state dict holds plain tensors, gathered from shards
