"""Reading a checkpoint folder without running code from it (issue 23).

torch's distributed-checkpoint (DCP) reader unpickles the folder's ``.metadata`` with plain ``pickle`` and its
default planner reads every non-tensor entry (the optimizer's hyperparameters) with ``torch.load(...,
weights_only=False)``: a crafted file would run code. Here, before torch reads anything:

1. ``meta.json`` (plain JSON, written by this toolkit at save time) must record every file of the folder
   with its size, and the SHA-256 of ``.metadata``; a missing, truncated or grown file, or another
   ``.metadata``, is refused (``verify_files``);
2. ``.metadata`` is unpickled here, once, by ``MetadataUnpickler``, which admits only DCP's own metadata
   classes and the torch sizes, dtypes and layouts they hold; anything else is refused; every shard it
   points to must be one of the recorded files, read without transforms (``verified_metadata``);
3. torch reads the shards through ``VerifiedReader`` (which hands it that metadata object: the file is not
   read twice) and ``PlainDataPlanner`` (which reads non-tensor entries with ``weights_only=True``; DCP
   reads tensors that way already).

Every refusal is a one-line ``TrainError`` naming the folder; ``one_line`` turns torch's own failures
(``CheckpointException`` is a ``BaseException``, wrapping each rank's error) into one too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import pickle
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.distributed.checkpoint import DefaultLoadPlanner, FileSystemReader
from torch.distributed.checkpoint.metadata import Metadata, StorageMeta
from torch.distributed.checkpoint.planner import ReadItem

from train.errors import TrainError

METADATA = ".metadata"
_DCP = "torch.distributed.checkpoint"
# What a DCP ``.metadata`` pickle refers to (torch 2.4-2.14): DCP's dataclasses, torch.Size, dtypes (checked
# below) and layouts (by name), and the path it was saved to. Calling any of these builds data, nothing else.
ADMITTED = frozenset({
    *((f"{_DCP}.metadata", name) for name in ("Metadata", "TensorStorageMetadata", "BytesStorageMetadata",
                                              "ChunkStorageMetadata", "TensorProperties", "MetadataIndex",
                                              "StorageMeta", "_MEM_FORMAT_ENCODING")),
    (f"{_DCP}.filesystem", "_StorageInfo"),
    ("torch", "Size"), ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"), ("pathlib", "PurePosixPath"), ("pathlib", "WindowsPath"),
    ("pathlib", "PureWindowsPath"), ("collections", "OrderedDict"),
})


class NotMetadata(pickle.UnpicklingError):
    """A pickle that refers to something other than checkpoint metadata (a damaged one fails otherwise)."""


class MetadataUnpickler(pickle.Unpickler):
    """Unpickles DCP metadata only: a reference to any other global is an ``UnpicklingError``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ADMITTED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        raise NotMetadata(f"{module}.{name} is not checkpoint metadata")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(folder: Path) -> dict[str, object]:
    """What ``meta.json`` records of a freshly written folder: every file's size and the digest of
    ``.metadata`` (``meta.json`` itself is written after, so it is not among them)."""
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    return {"files": files, "metadata_sha256": sha256(folder / METADATA)}


def verify_files(folder: Path, meta: Mapping[str, object]) -> None:
    """The folder holds the files ``meta.json`` recorded, at their sizes, and that ``.metadata``."""
    files, digest = meta.get("files"), meta.get("metadata_sha256")
    if not isinstance(files, dict) or METADATA not in files or not isinstance(digest, str):
        raise TrainError(f"checkpoint {folder} records no digest of its files (not written by this version of "
                         "the toolkit); refused")
    for name, size in files.items():
        path = folder / str(name)
        if "/" in str(name) or "\\" in str(name) or not path.is_file():
            raise TrainError(f"checkpoint {folder} is damaged: {name} is missing")
        if path.stat().st_size != size:
            raise TrainError(f"checkpoint {folder} is damaged: {name} has {path.stat().st_size} bytes, "
                             f"{size} were written")
    if sha256(folder / METADATA) != digest:
        raise TrainError(f"checkpoint {folder}: {METADATA} is not the file this toolkit wrote (its SHA-256 "
                         "differs); refused")


def verified_metadata(folder: Path, meta: Mapping[str, object]) -> Metadata:
    """``.metadata`` of ``folder`` once its files match ``meta`` (``verify_files``), read by ``read_metadata``;
    every shard it points to must be a file ``meta`` records, read as written (no transforms)."""
    verify_files(folder, meta)
    metadata = read_metadata(folder)
    files = meta.get("files")
    recorded = files if isinstance(files, dict) else {}  # a dict: verify_files checked it
    for info in (metadata.storage_data or {}).values():
        path, transforms = getattr(info, "relative_path", None), getattr(info, "transform_descriptors", None)
        if not isinstance(path, str) or path not in recorded or path == METADATA or transforms:
            raise TrainError(f"checkpoint {folder}: {METADATA} points at {path!r}, which is not a shard this "
                             "toolkit wrote; refused")
    return metadata


def read_metadata(folder: Path) -> Metadata:
    """``.metadata`` of a verified folder, through ``MetadataUnpickler``."""
    try:
        metadata = MetadataUnpickler(io.BytesIO((folder / METADATA).read_bytes())).load()
    except NotMetadata as e:
        raise TrainError(f"checkpoint {folder}: {METADATA} holds objects other than checkpoint metadata "
                         f"({str(e).splitlines()[0]}); refused: reading them could run code") from None
    except Exception as e:  # truncated or garbage pickles fail in many ways
        raise TrainError(f"checkpoint {folder} is damaged: {METADATA} cannot be read ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None
    if not isinstance(metadata, Metadata) or not isinstance(metadata.state_dict_metadata, dict):
        raise TrainError(f"checkpoint {folder}: {METADATA} holds a {type(metadata).__name__}, not DCP metadata")
    return metadata


class VerifiedReader(FileSystemReader):
    """DCP's file reader, given the metadata already read by ``read_metadata`` (never re-read)."""

    def __init__(self, folder: Path, metadata: Metadata) -> None:
        super().__init__(folder)
        self._verified = metadata

    def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
        if kwargs.get("rank") is not None:
            raise TrainError(f"checkpoint {self.path}: rank-local metadata is not read")
        if getattr(self._verified, "storage_meta", None) is None:
            self._verified.storage_meta = StorageMeta()
        if self._verified.storage_meta is not None:
            self._verified.storage_meta.load_id = self.load_id
        return self._verified


class PlainDataPlanner(DefaultLoadPlanner):
    """DCP's default load planner, except that non-tensor entries must be plain data (``weights_only``)."""

    def load_bytes(self, read_item: ReadItem, value: io.BytesIO) -> None:
        try:
            plain = torch.load(value, weights_only=True)
        except pickle.UnpicklingError:
            raise TrainError(f"a checkpoint entry ({read_item.dest_index.fqn}) holds objects other than plain "
                             "data; refused: reading them could run code") from None
        safe = io.BytesIO()
        torch.save(plain, safe)  # plain data, written here: what the default planner then reads back
        safe.seek(0)
        super().load_bytes(read_item, safe)


@contextlib.contextmanager
def quiet_dcp() -> Iterator[None]:
    """DCP logs its failures with tracebacks (and warns when used without a process group); the failure
    reaches the user as one line instead (``one_line``)."""
    log = logging.getLogger(_DCP)
    level = log.level
    log.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*assuming the intent is to (save|load) in a single process")
            yield
    finally:
        log.setLevel(level)


def one_line(exc: BaseException) -> str:
    """The first line of what went wrong; a ``CheckpointException`` gives that of the first rank's error
    (a ``TrainError`` raised inside DCP keeps its own message)."""
    failures = getattr(exc, "failures", None)
    if isinstance(failures, dict) and failures:
        inner = [f[0] if isinstance(f, tuple) and f else f for f in failures.values()]
        chosen = next((e for e in inner if isinstance(e, TrainError)), inner[0])
        if isinstance(chosen, BaseException):
            exc = chosen
    text = str(exc).strip().splitlines()
    if text and text[0].startswith("Weights only load failed"):  # torch's advice to load unsafely: not taken
        return "a shard does not hold the tensors DCP recorded (damaged or replaced); refused"
    return text[0] if text else type(exc).__name__
