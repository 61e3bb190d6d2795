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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from train.errors import TrainError


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


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        # numpy's legacy global generator: third-party code may draw from it, so it is part of the state.
        "numpy": [x.tolist() if isinstance(x, np.ndarray) else x for x in np.random.get_state()],  # noqa: NPY002
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))  # noqa: NPY002
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
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


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The dict saved at ``path``; anything else (truncated, foreign, or a pickle that asks to run code) is a
    one-line ``TrainError``."""
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


def resume(path: Path, identity: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           *, mismatch: str) -> dict[str, Any] | None:
    """Restore model, optimizer and RNG from the checkpoint at ``path`` if there is one; returns its state.

    ``identity`` must equal the one the checkpoint was written with: resuming another configuration's
    weights would silently train something else (``mismatch`` says what to do instead).
    """
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if state.get("identity") != identity:
        raise TrainError(f"{path} belongs to {mismatch}")
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        raise TrainError(f"checkpoint {path} does not fit this model: {str(e).strip().splitlines()[0]}") from None
    return state
