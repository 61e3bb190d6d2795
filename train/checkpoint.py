"""Atomic checkpoints that resume a run exactly: model, optimizer, schedule position, RNG and data position.

A checkpoint is written to a temporary file in the same folder, flushed to disk and renamed over the old
one (``os.replace`` is atomic on POSIX), so a job killed at any instant (SIGKILL included) leaves either
the previous or the new checkpoint, never a torn one. The data position needs no state of its own: the
training stream is a function of (seed, sample index) and the step says where it is (``train.data``).
"""

from __future__ import annotations

import json
import os
import pickle
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

import numpy as np
import torch
from torch.optim.optimizer import StateDict

from train.errors import TrainError

if TYPE_CHECKING:
    from numpy.typing import NDArray


class RngState(TypedDict):
    """Every random generator a training step may draw from (``rng_state``)."""

    torch: torch.Tensor
    python: tuple[int, tuple[int, ...], float | None]  # random.getstate()
    numpy: list[str | list[int] | int | float]  # np.random.get_state(), its key array as a list
    cuda: NotRequired[list[torch.Tensor]]  # one state per GPU, where CUDA is available


class PretrainLogRow(TypedDict):
    """One line of ``pretrain_log.txt`` (MAE's format plus ``grad_norm``): means over the logged window."""

    train_loss: float
    train_lr: float
    it: int  # 0-based index of the window's last step
    grad_norm: float


class Progress(TypedDict):
    """Where a pretraining run stands (``train.resume``): what its checkpoints hold besides tensors."""

    step: int
    seconds: float
    history: list[PretrainLogRow]
    window: list[float]  # loss sum, grad-norm sum and steps since the last log line
    done: bool


class PretrainMeta(Progress):
    """``Progress`` with the identity of its run (hashed config and data digest), as a checkpoint stores it."""

    identity: Mapping[str, object]


class PretrainCheckpoint(PretrainMeta):
    """A single-file pretraining checkpoint (``pretrain.ckpt``); ``optimizer`` is None when it was sharded."""

    model: dict[str, torch.Tensor]
    optimizer: StateDict | None
    rng: RngState


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def rng_state() -> RngState:
    state: RngState = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # numpy's legacy global generator: third-party code may draw from it, so it is part of the state.
        "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],  # noqa: NPY002
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: RngState) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    legacy = (np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:])  # as get_state() gave it
    np.random.set_state(cast("tuple[str, NDArray[np.uint32], int, int, float]", legacy))  # noqa: NPY002
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: Mapping[str, object]) -> None:
    """``state`` (tensors, numbers, strings, lists, dicts) to ``path``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path) -> dict[str, object]:
    """The dict saved at ``path``; anything else (truncated, foreign, or a pickle that asks to run code) is a
    one-line ``TrainError``. Its entries are whatever was saved: callers check or cast them."""
    try:
        # weights_only: a checkpoint is data, never code (safe to load one copied from elsewhere). A pickle
        # that references other globals raises UnpicklingError; torch wraps other failures in many types.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise TrainError(f"cannot load checkpoint {path}: it holds objects other than tensors and plain data "
                         "(refused: loading them could run code)") from None
    except Exception as e:  # every way a file can fail to be a checkpoint is the same error
        text = str(e).strip().splitlines()
        raise TrainError(f"cannot load checkpoint {path}: {text[0] if text else type(e).__name__}") from None
    if not isinstance(state, dict):
        raise TrainError(f"cannot load checkpoint {path}: it holds a {type(state).__name__}, not a checkpoint")
    return state


def resume(path: Path, identity: Mapping[str, object], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           *, mismatch: str) -> dict[str, object] | None:
    """Restore model, optimizer and RNG from the checkpoint at ``path`` if there is one; returns its state.

    ``identity`` must equal the one the checkpoint was written with: resuming another configuration's
    weights would silently train something else (``mismatch`` says what to do instead).
    """
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if state.get("identity") != identity:
        raise TrainError(f"{path} belongs to {mismatch}")
    try:  # the entries a checkpoint of this identity was saved with (a wrong one raises below)
        model.load_state_dict(cast("Mapping[str, Any]", state["model"]))
        optimizer.load_state_dict(cast("StateDict", state["optimizer"]))
        set_rng_state(cast(RngState, state["rng"]))
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise TrainError(f"checkpoint {path} does not fit this model: {str(e).strip().splitlines()[0]}") from None
    return state
