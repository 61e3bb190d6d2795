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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from train import dist, sharded
from train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from train.errors import TrainError

CKPT_NAME = "pretrain.ckpt"
DCP_NAME = "pretrain.dcp"
PROGRESS_KEYS = ("step", "seconds", "history", "window", "done")


def _plain(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparing identities."""
    return json.loads(json.dumps(obj))


def _check(found: Any, identity: dict[str, Any], where: Path, mismatch: str) -> None:
    if not isinstance(found, dict) or _plain(found) != _plain(identity):
        raise TrainError(f"{where} belongs to {mismatch}")


def finished_state(out_dir: Path, identity: dict[str, Any], *, mismatch: str) -> dict[str, Any] | None:
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
    return state


def restore(out_dir: Path, identity: dict[str, Any], model: nn.Module, opt: torch.optim.Optimizer, *,
            names: list[str], sharded_model: bool, mismatch: str) -> dict[str, Any] | None:
    """Load the newest checkpoint of ``identity`` into ``model``/``opt``; its progress fields, or None."""
    path = out_dir / CKPT_NAME
    state = None
    if path.exists():
        state = load_checkpoint(path)
        _check(state.get("identity"), identity, path, mismatch)
    folder = sharded.existing(out_dir / DCP_NAME)
    meta = sharded.read_meta(folder) if folder is not None else None
    if meta is not None:
        _check(meta.get("identity"), identity, folder, mismatch)  # type: ignore[arg-type]
    use_dcp = meta is not None and (state is None or (not state.get("done") and meta["step"] > int(state["step"])))
    try:
        if use_dcp:
            sharded.load_sharded(folder, model, opt)  # type: ignore[arg-type]
            return {k: meta[k] for k in PROGRESS_KEYS}  # type: ignore[index]
        if state is None:
            return None
        if sharded_model:
            sharded.load_full(model, opt, state["model"], state.get("optimizer"), names)
        else:
            model.load_state_dict(state["model"])
            if state.get("optimizer") is not None:
                opt.load_state_dict(state["optimizer"])
        if state.get("rng") is not None:
            set_rng_state(state["rng"])
        return {k: state[k] for k in PROGRESS_KEYS}
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:  # another shape
        where = folder if use_dcp else path
        text = str(e).strip().splitlines()
        raise TrainError(f"checkpoint {where} does not fit this model: {text[0] if text else type(e).__name__}"
                         ) from None


def save(out_dir: Path, model: nn.Module, opt: torch.optim.Optimizer, progress: dict[str, Any],
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
