"""Checkpoints in one format: ``torch.distributed.checkpoint`` (DCP) folders, on any number of processes.

Pretraining (``pretrain.dcp/``) and fine-tuning (``finetune.dcp/``) write the same kind of folder, sharded
(FSDP2) or not: every process writes its part of the model and optimizer state, and rank 0 writes
``meta.json``, what is not a tensor: the run's identity and progress, the processes that wrote it, and the
size of every file and the digest of DCP's ``.metadata`` (``train.checkpoint_safety``). DCP records the
global shape of every tensor, so loading reshards: a run saved by 8 processes resumes on 4, on 2, or on one
process without a process group. A finished pretraining keeps the model only (no optimizer state).

Atomicity: a folder is written next to the old one (``.tmp``) and swapped in by two renames after every
rank has finished, so a job killed at any instant (SIGKILL included) leaves the previous or the new
checkpoint; one killed between the renames leaves ``.old``, which is then used. The data position needs no
state of its own: the training stream is a function of (seed, sample index) and the step says where it is.

``export`` consolidates a checkpoint's model into one ``torch.save`` file (for evaluation or sharing) and
``load_weights`` reads either kind; nothing read here can run code (weights-only loading, and the checks of
``train.checkpoint_safety``), and every failure is a one-line ``TrainError`` naming the file or folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.metadata import Metadata, TensorStorageMetadata
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)

from train import dist
from train.checkpoint_safety import (
    PlainDataPlanner,
    VerifiedReader,
    file_record,
    one_line,
    quiet_dcp,
    verified_metadata,
)
from train.errors import TrainError

META = "meta.json"
EXPORT_FORMAT = "humanlike-scaling/model@1"  # an exported single file: {"format", "model", "meta"}


class PretrainLogRow(TypedDict):
    """One line of ``pretrain_log.txt`` (MAE's format plus ``grad_norm``): means over the logged window."""

    train_loss: float
    train_lr: float
    it: int  # 0-based index of the window's last step
    grad_norm: float


class Progress(TypedDict):
    """Where a pretraining run stands: what its checkpoint holds besides tensors."""

    step: int
    seconds: float
    history: list[PretrainLogRow]
    window: list[float]  # loss sum, grad-norm sum and steps since the last log line
    done: bool


class PretrainMeta(Progress):
    """``Progress`` with the identity of its run (hashed config and data digest), as ``meta.json`` holds it."""

    identity: Mapping[str, object]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(f)`` into a temporary file beside ``path``, synced, then renamed over it: a reader sees the old
    file or the whole new one, and an interrupted write leaves no temporary behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: Path, obj: object) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode("utf-8"))


def _dirs(folder: Path) -> tuple[Path, Path]:
    return folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")


def existing(folder: Path) -> Path | None:
    """The complete checkpoint at ``folder`` (or its ``.old`` twin after an interrupted swap); a folder of
    that name without ``meta.json`` was not written here and is refused, never overwritten."""
    _, old = _dirs(folder)
    if folder.exists() and not (folder / META).is_file():
        raise TrainError(f"{folder} is not a checkpoint written by this toolkit (it has no {META}); move it "
                         "away or use another output folder")
    for candidate in (folder, old):
        if (candidate / META).is_file():
            return candidate
    return None


def remove(folder: Path) -> None:
    """Delete a checkpoint and the leftovers of an interrupted swap."""
    for path in (folder, *_dirs(folder)):
        shutil.rmtree(path, ignore_errors=True)


def read_meta(folder: Path) -> dict[str, Any]:
    """``meta.json`` of a checkpoint folder (its fields are checked where they are read)."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise TrainError(f"cannot read checkpoint {folder}: {str(e).splitlines()[0]}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("identity"), dict):
        raise TrainError(f"checkpoint {folder} has a malformed {META}")
    return meta


def matching(folder: Path, identity: Mapping[str, object], *, mismatch: str) -> tuple[Path, dict[str, Any]] | None:
    """(path, meta) of the checkpoint at ``folder`` if there is one; it must be of ``identity``: resuming another
    configuration's weights would silently train something else (``mismatch`` says what to do instead)."""
    path = existing(folder)
    if path is None:
        return None
    meta = read_meta(path)
    if json.loads(json.dumps(meta["identity"])) != json.loads(json.dumps(identity)):
        raise TrainError(f"{path} belongs to {mismatch}")
    return path, meta


def progress_of(path: Path, meta: Mapping[str, Any]) -> Progress:
    """The ``Progress`` fields of a pretraining checkpoint's ``meta.json``."""
    try:
        return Progress(step=int(meta["step"]), seconds=float(meta["seconds"]), history=list(meta["history"]),
                        window=[float(x) for x in meta["window"]], done=meta["done"] is True)
    except (KeyError, TypeError, ValueError) as e:
        raise TrainError(f"checkpoint {path} has a malformed {META}: {one_line(e)}") from None


def _state(model: nn.Module, opt: torch.optim.Optimizer | None) -> dict[str, Any]:
    if opt is None:
        return {"model": get_model_state_dict(model)}
    msd, osd = get_state_dict(model, opt)
    return {"model": msd, "optim": osd}


def save(folder: Path, model: nn.Module, opt: torch.optim.Optimizer | None, meta: Mapping[str, object],
         env: dist.DistEnv) -> None:
    """Every rank writes its part (``model`` unwrapped: plain or FSDP2-sharded); rank 0 records the files in
    ``meta.json`` and swaps the folder in. ``opt`` None: the model only."""
    tmp, old = _dirs(folder)
    if env.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier(env)
    try:
        with quiet_dcp():
            dcp.save(_state(model, opt), checkpoint_id=str(tmp))
    except (Exception, CheckpointException) as e:
        raise TrainError(f"cannot write checkpoint {folder}: {one_line(e)}") from None
    dist.barrier(env)
    if env.is_main:
        atomic_write_json(tmp / META, {**meta, "world": env.world, **file_record(tmp)})
        if folder.exists():
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier(env)


def _dcp_load(folder: Path, state: dict[str, Any], metadata: Metadata | None = None) -> None:
    """Fill ``state`` (nested dicts of tensors, DCP's flattened keys) from a verified folder: with the other
    ranks (a sharded model), or, given its verified ``metadata``, alone (whole tensors, read by this process
    without any collective)."""
    alone = metadata is not None
    if metadata is None:
        metadata = verified_metadata(folder, read_meta(folder))
    try:
        with quiet_dcp():
            dcp.load(state, storage_reader=VerifiedReader(folder, metadata), planner=PlainDataPlanner(),
                     no_dist=alone)
    except (Exception, CheckpointException) as e:
        raise TrainError(f"cannot load checkpoint {folder}: {one_line(e)}") from None


def load(folder: Path, model: nn.Module, opt: torch.optim.Optimizer | None) -> None:
    """Load a checkpoint folder into ``model`` (and ``opt``): sharded or not, saved on any world size."""
    state = _state(model, opt)
    _dcp_load(folder, state)
    try:
        if opt is None:
            set_model_state_dict(model, state["model"])
        else:
            set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as e:
        raise TrainError(f"checkpoint {folder} does not fit this model: {one_line(e)}") from None


def checkpoint_in(path: Path) -> Path:
    """The checkpoint folder that ``path`` names: itself, or a run folder's ``pretrain.dcp`` (or the ``.old``
    twin of either after an interrupted swap)."""
    for folder in (path, path / "pretrain.dcp"):
        for candidate in (folder, _dirs(folder)[1]):
            if (candidate / META).is_file():
                return candidate
    raise TrainError(f"no checkpoint in {path} (a run folder with pretrain.dcp/, or a checkpoint folder)")


def load_weights(path: Path, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model tensors whose names start with ``prefix``, on CPU; the checkpoint's meta: identity, step...) of
    a checkpoint folder (a run folder means its ``pretrain.dcp``) or of an exported file."""
    if not path.is_dir():
        return _exported(path, prefix)
    folder = checkpoint_in(path)
    meta = read_meta(folder)
    metadata = verified_metadata(folder, meta)
    entries = metadata.state_dict_metadata
    weights = {k.removeprefix("model."): torch.empty(tuple(m.size), dtype=m.properties.dtype)
               for k, m in entries.items()
               if k.startswith("model." + prefix) and isinstance(m, TensorStorageMetadata)}
    if not weights:
        raise TrainError(f"checkpoint {folder} holds no model weights{f' named {prefix}*' if prefix else ''}")
    _dcp_load(folder, {"model": weights}, metadata)
    return weights, {k: v for k, v in meta.items() if k not in ("files", "metadata_sha256")}


def _exported(path: Path, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The model of a single file: ``export``'s, or a ``pretrain.ckpt`` of an earlier version (weights only:
    a file that asks to run code is refused)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise TrainError(f"cannot load checkpoint {path}: it holds objects other than tensors and plain data "
                         "(refused: loading them could run code)") from None
    except Exception as e:  # every way a file can fail to be a checkpoint is the same error
        raise TrainError(f"cannot load checkpoint {path}: {one_line(e)}") from None
    model = state.get("model") if isinstance(state, dict) else None
    if not isinstance(model, dict) or not all(isinstance(v, torch.Tensor) for v in model.values()):
        raise TrainError(f"{path} holds no model weights")
    meta = state.get("meta") if state.get("format") == EXPORT_FORMAT else state  # an earlier single file: flat
    weights = {k: v for k, v in model.items() if isinstance(k, str) and k.startswith(prefix)}
    return weights, {k: v for k, v in (meta if isinstance(meta, dict) else {}).items() if k != "model"}


@dataclass(frozen=True)
class Exported:
    """What ``export`` wrote: the checkpoint read, the file, its tensors, bytes and parameters, the step."""

    source: str
    out: str
    tensors: int
    bytes: int
    parameters: int
    step: int | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def export(source: Path, out: Path, *, force: bool = False) -> Exported:
    """Consolidate the model of a checkpoint folder (or a run folder's ``pretrain.dcp``) into the single file
    ``out`` (written atomically; an existing file only with ``force``). Returns what was written."""
    if out.exists() and (out.is_dir() or not force):
        raise TrainError(f"{out} exists; give --force to replace it" if not out.is_dir() else f"{out} is a folder")
    found = checkpoint_in(source)
    weights, meta = load_weights(found)
    atomic_write(out, lambda f: torch.save({"format": EXPORT_FORMAT, "model": weights, "meta": meta}, f))
    step = meta.get("step")
    return Exported(str(found), str(out), len(weights), out.stat().st_size,
                    int(sum(v.numel() for v in weights.values())), None if step is None else int(step))
