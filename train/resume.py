"""Where a pretraining run stands: which checkpoint to resume from, and writing the next one.

Two kinds of checkpoint live in a run folder:

- ``pretrain.ckpt``, one file (``train.checkpoint``): written by unsharded runs (one process or DDP)
  every ``ckpt_every`` steps, and by every run when it finishes (sharded runs gather the whole model
  into it then, without optimizer state, for fine-tuning and for ``scaling train finetune``).
- ``pretrain.dcp/``, a ``torch.distributed.checkpoint`` folder (``train.sharded``): written by ``--fsdp``
  runs every ``ckpt_every`` steps; it resumes on any number of processes, sharded or not.

Resuming takes the newer of the two (a finished single file wins), so a run may change between
``--fsdp`` and DDP, or its number of processes, from one job to the next and still train the same steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from train import dist, sharded
from train.checkpoint import (
    PretrainCheckpoint,
    PretrainMeta,
    Progress,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from train.errors import TrainError

CKPT_NAME = "pretrain.ckpt"
DCP_NAME = "pretrain.dcp"
PROGRESS_KEYS = ("step", "seconds", "history", "window", "done")


def _plain(obj: object) -> object:
    """``obj`` as it reads back from JSON (tuples become lists), for comparing identities."""
    plain: object = json.loads(json.dumps(obj))
    return plain


def _check(found: object, identity: Mapping[str, object], where: Path, mismatch: str) -> None:
    if not isinstance(found, dict) or _plain(found) != _plain(identity):
        raise TrainError(f"{where} belongs to {mismatch}")


def _progress(state: Mapping[str, Any]) -> Progress:
    """The ``PROGRESS_KEYS`` of a checkpoint or sharded ``meta.json`` (a KeyError if one is missing)."""
    return Progress(step=state["step"], seconds=state["seconds"], history=state["history"], window=state["window"],
                    done=state["done"])


def finished_state(out_dir: Path, identity: Mapping[str, object], *, mismatch: str) -> PretrainCheckpoint | None:
    """The single-file checkpoint if it records a finished run of ``identity`` (else None)."""
    path = out_dir / CKPT_NAME
    if not path.exists():
        return None
    state = load_checkpoint(path)
    _check(state.get("identity"), identity, path, mismatch)
    if not state.get("done"):
        return None
    if not isinstance(state.get("model"), dict) or any(k not in state for k in PROGRESS_KEYS):
        raise TrainError(f"checkpoint {path} lacks the model or the progress of the run")
    return cast(PretrainCheckpoint, state)  # checked above: its identity, model and progress


def restore(out_dir: Path, identity: Mapping[str, object], model: nn.Module, opt: torch.optim.Optimizer, *,
            names: list[str], sharded_model: bool, mismatch: str) -> Progress | None:
    """Load the newest checkpoint of ``identity`` into ``model``/``opt``; its progress fields, or None."""
    path = out_dir / CKPT_NAME
    state: PretrainCheckpoint | None = None
    if path.exists():
        loaded = load_checkpoint(path)
        _check(loaded.get("identity"), identity, path, mismatch)
        state = cast(PretrainCheckpoint, loaded)  # of this identity: written by save() (a wrong entry raises below)
    folder = sharded.existing(out_dir / DCP_NAME)
    dcp: tuple[Path, sharded.ShardedMeta] | None = None
    if folder is not None:
        meta = sharded.read_meta(folder)
        _check(meta.get("identity"), identity, folder, mismatch)
        if state is None or (not state.get("done") and meta["step"] > int(state["step"])):
            dcp = folder, meta
    try:
        if dcp is not None:
            sharded.load_sharded(dcp[0], model, opt)
            return _progress(dcp[1])
        if state is None:
            return None
        if sharded_model:
            sharded.load_full(model, opt, state["model"], state.get("optimizer"), names)
        else:
            model.load_state_dict(state["model"])
            optimizer = state.get("optimizer")
            if optimizer is not None:
                opt.load_state_dict(optimizer)
        rng = state.get("rng")
        if rng is not None:
            set_rng_state(rng)
        return _progress(state)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:  # another shape
        where = dcp[0] if dcp is not None else path
        text = str(e).strip().splitlines()
        raise TrainError(f"checkpoint {where} does not fit this model: {text[0] if text else type(e).__name__}"
                         ) from None


def save(out_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, progress: PretrainMeta,
         env: dist.DistEnv, *, fsdp: bool) -> dict[str, torch.Tensor]:
    """Write the checkpoint of ``progress`` (identity, step, seconds, history, window, done).

    Unsharded runs write the single file (rank 0). Sharded runs write the DCP folder while running, and
    when done gather the whole model into the single file. Returns the model state on rank 0 when done.
    """
    finished = bool(progress["done"])
    if fsdp and not finished:
        sharded.save_sharded(out_dir / DCP_NAME, model, opt, progress, env)
        return {}
    if fsdp:
        full = sharded.full_model_state(model)  # collective: every rank takes part
        if env.is_main:
            save_checkpoint(out_dir / CKPT_NAME, {**progress, "model": full, "optimizer": None, "rng": rng_state()})
    else:
        full = model.state_dict() if finished else {}
        if env.is_main:
            save_checkpoint(out_dir / CKPT_NAME, {**progress, "model": model.state_dict(),
                                                  "optimizer": opt.state_dict(), "rng": rng_state()})
    if finished and env.is_main:  # the finished single file supersedes the sharded one (GBs per billion weights)
        sharded.remove(out_dir / DCP_NAME)
    dist.barrier(env)
    return full
