"""Run configurations: dataclasses with the study's defaults, loadable from a TOML or JSON file.

Precedence: dataclass defaults < config file < command-line options. A config file has a ``[pretrain]``
and/or a ``[finetune]`` table (or is flat for a single phase); unknown keys are errors, so a typo is not
silently ignored. Defaults follow Orhan (2023) as read from eminorhan/mae@63048899 (notes-paper §2-3):
mask 0.75, AdamW (0.9, 0.95) without weight decay, constant lr 3e-4, decoder 512/8/16, no norm-pix loss;
fine-tuning on 2% of the labels, AdamW wd 0.05, constant lr 1e-4, BatchNorm + linear head on the class
token, 50 epochs.

``hashed()`` is the part of a config that defines *what* is trained (and so the run id): it leaves out
where files live and how it runs (workers, compile, sharding, activation checkpointing, the micro-batch and
accumulation steps, logging and checkpoint intervals: the same numbers, in different memory or time); the
data enter through the digest of the selected frame list instead of their paths.

The global batch is part of the recipe; how it is split is not. One optimizer step sees ``global_batch``
samples: each of the ``world`` processes takes ``global_batch / world`` of them in ``accum`` micro-batches of
``micro_batch`` (``batches``), so the same recipe runs on any number of processes. The global batch is
hashed under its name before accumulation existed, ``batch_size``, so run ids did not change.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from runs_db.archs import DECODER_DEPTH, DECODER_DIM, DECODER_HEADS, MASK_RATIO, get_arch
from train.errors import TrainError

PRECISIONS = ("auto", "bf16", "fp32")
SCHEDULES = ("constant", "cosine")
SUBSET_MODES = ("contiguous", "uniform")


@dataclass
class PretrainConfig:
    arch: str = "vit_s14"
    image_px: int = 224
    data: list[str] = field(default_factory=list)  # video files, folders of frames/images, .tar shards
    dataset: str | None = None  # corpus name for the record (default: the data folder/file names)
    fps: float | None = 1.0  # frames per second decoded from video (None: every frame); rate of frame folders
    data_fraction: float = 1.0
    subset_seed: int = 1
    subset: str = "contiguous"  # the study: one contiguous block of the sorted frame list
    mask_ratio: float = MASK_RATIO
    norm_pix_loss: bool = False
    decoder_dim: int = DECODER_DIM
    decoder_depth: int = DECODER_DEPTH
    decoder_heads: int = DECODER_HEADS
    global_batch: int = 256  # samples per optimizer step, all processes and micro-batches together
    lr: float = 3e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    schedule: str = "constant"
    warmup_steps: int = 0
    min_lr: float = 0.0
    steps: int | None = None  # budget: steps, images or wall-clock minutes (exactly one)
    images: int | None = None
    minutes: float | None = None
    precision: str = "auto"
    seed: int = 0
    # Not hashed into the run id (they do not change what is trained):
    compile: bool | None = None  # None: on for CUDA, off for CPUs (train.parallel.resolve_compile)
    fsdp: bool = False  # shard parameters, gradients and optimizer state over the processes (FSDP2)
    activation_checkpointing: bool = False  # recompute encoder blocks in the backward pass (memory for time)
    micro_batch: int | None = None  # samples per process per forward/backward (None: from accum, else all)
    accum: int | None = None  # micro-batches per optimizer step (None: from micro_batch, else 1)
    workers: int = 0
    log_every: int = 50
    ckpt_every: int = 500

    UNHASHED = ("data", "compile", "fsdp", "activation_checkpointing", "micro_batch", "accum", "workers",
                "log_every", "ckpt_every")

    def total_steps(self) -> int | None:
        if self.steps is not None:
            return self.steps
        if self.images is not None:
            return math.ceil(self.images / self.global_batch)
        return None

    def batches(self, world: int) -> Batches:
        """How ``world`` processes split the global batch (a one-line error when they cannot)."""
        return split_batch(self.global_batch, world, micro_batch=self.micro_batch, accum=self.accum)

    def validate(self) -> None:
        try:
            shape = get_arch(self.arch)
        except KeyError as e:
            raise TrainError(str(e).strip("'\"")) from None
        self.arch = shape.name
        if self.image_px <= 0 or self.image_px % shape.patch_px:
            raise TrainError(f"image size {self.image_px} px is not a multiple of the {shape.patch_px}-px patch "
                             f"of {shape.name}")
        if not self.data:
            raise TrainError("no pretraining data given (--data PATH: video files, frame folders or .tar shards)")
        if not 0 < self.data_fraction <= 1:
            raise TrainError(f"data fraction {self.data_fraction} must be in (0, 1]")
        if self.fps is not None and self.fps <= 0:
            raise TrainError(f"fps {self.fps} must be positive")
        _choice("subset", self.subset, SUBSET_MODES)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("precision", self.precision, PRECISIONS)
        budgets = [b for b in (self.steps, self.images, self.minutes) if b is not None]
        if len(budgets) != 1:
            raise TrainError("give exactly one pretraining budget: --steps, --images or --minutes")
        if budgets[0] <= 0:
            raise TrainError("the pretraining budget must be positive")
        if self.schedule == "cosine" and self.total_steps() is None:
            raise TrainError("a cosine schedule needs a budget in steps or images, not minutes")
        if self.global_batch <= 0 or self.lr <= 0 or self.weight_decay < 0:
            raise TrainError("global batch and lr must be positive, weight decay non-negative")
        for name, value in (("micro-batch", self.micro_batch), ("accumulation steps", self.accum)):
            if value is not None and value < 1:
                raise TrainError(f"{name} must be at least 1, got {value}")
        if self.log_every < 1 or self.ckpt_every < 1:
            raise TrainError("log and checkpoint intervals must be at least 1 step")
        if self.decoder_dim % 4 or self.decoder_dim % self.decoder_heads or self.decoder_depth < 1:
            raise TrainError(f"decoder width {self.decoder_dim} must be divisible by 4 and by its "
                             f"{self.decoder_heads} heads, with depth >= 1")

    def hashed(self) -> dict[str, object]:
        values = {k: v for k, v in asdict(self).items() if k not in self.UNHASHED}
        return {("batch_size" if k == "global_batch" else k): v for k, v in values.items()}


@dataclass(frozen=True)
class Batches:
    """One optimizer step of ``global_batch`` samples: each of ``world`` processes runs ``accum``
    micro-batches of ``micro_batch`` samples (global = world x accum x micro)."""

    global_batch: int
    world: int
    micro_batch: int
    accum: int

    def describe(self) -> str:
        return (f"global batch {self.global_batch} = {self.world} process(es) x {self.accum} micro-batch(es) x "
                f"{self.micro_batch}")


def split_batch(global_batch: int, world: int, *, micro_batch: int | None = None,
                accum: int | None = None) -> Batches:
    """Accumulation steps from the global batch, the per-process micro-batch and the world size, or the
    micro-batch from ``accum``; neither: one micro-batch of ``global_batch / world``."""
    if global_batch % world:
        raise TrainError(f"global batch {global_batch} is not divisible by the {world} processes")
    per_process = global_batch // world
    if micro_batch is None:
        steps = accum or 1
        if per_process % steps:
            raise TrainError(f"the {per_process} samples of each of {world} process(es) (global batch "
                             f"{global_batch}) do not split into {steps} equal micro-batches")
        return Batches(global_batch, world, per_process // steps, steps)
    if per_process % micro_batch or (accum is not None and accum * micro_batch != per_process):
        given = f"{accum} micro-batches of {micro_batch}" if accum is not None else f"micro-batch {micro_batch}"
        raise TrainError(f"{given} do not make the {per_process} samples each of {world} process(es) takes of "
                         f"the global batch {global_batch}; give one of --micro-batch and --accum, dividing it")
    return Batches(global_batch, world, micro_batch, per_process // micro_batch)


@dataclass
class FinetuneConfig:
    data: str | None = None  # ImageFolder root with train/ and val/
    ood: list[str] = field(default_factory=list)  # more eval folders; class names must be training classes
    name: str | None = None  # name of the labelled set (default: the folder name)
    label_fraction: float = 0.02  # the study's "permissive" condition: 2% of the training images
    label_seed: int = 0
    epochs: int = 50
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.05
    linear_probe: bool = False  # train the head only, on frozen features
    crop_min_scale: float = 0.08  # random-resized-crop scale range (torchvision's default, as the study)
    flip: bool = True
    protocol: str | None = None  # e.g. finetune-in1k-2pct to line up with the published grid
    eval_set: str | None = None  # e.g. imagenet-val
    precision: str = "auto"
    seed: int = 0
    fsdp: bool = False  # shard the classifier over the processes (FSDP2), as pretraining's --fsdp
    workers: int = 0

    UNHASHED = ("data", "ood", "fsdp", "workers")

    def validate(self) -> None:
        if not self.data:
            raise TrainError("no fine-tuning data given (--finetune-data DIR with train/ and val/ class folders)")
        if not 0 < self.label_fraction <= 1:
            raise TrainError(f"label fraction {self.label_fraction} must be in (0, 1]")
        if not 0 < self.crop_min_scale <= 1:
            raise TrainError(f"crop min scale {self.crop_min_scale} must be in (0, 1]")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0:
            raise TrainError("epochs, batch size and lr must be positive, weight decay non-negative")
        _choice("precision", self.precision, PRECISIONS)
        if self.protocol is not None:
            self.protocol_folder()

    def protocol_folder(self) -> str:
        """The folder of this fine-tuning inside the run folder: the protocol name, '/' made '_'."""
        return folder_name(self.protocol_name().replace("/", "_"), "protocol")

    def set_name(self) -> str:
        return self.name or Path(str(self.data)).resolve().name

    def protocol_name(self) -> str:
        if self.protocol:
            return self.protocol
        pct = f"{self.label_fraction * 100:.6g}pct"
        return f"{'linprobe' if self.linear_probe else 'finetune'}-{self.set_name()}-{pct}"

    def eval_set_name(self) -> str:
        return self.eval_set or f"{self.set_name()}-val"

    def hashed(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k not in self.UNHASHED}


Config = TypeVar("Config", PretrainConfig, FinetuneConfig)


def folder_name(value: str, what: str) -> str:
    """``value`` if it is one plain folder name (so ``parent / value`` stays inside ``parent``), else a one-line
    error: no path separators, not ``.`` or ``..``, not empty."""
    if not value.strip() or value in (".", "..") or any(c in value for c in "/\\\0"):
        raise TrainError(f"{what} {value!r} must be a plain folder name (no '/', '\\', '.' or '..'); "
                         "use --out for another place")
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise TrainError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def read_config_file(path: Path) -> dict[str, object]:
    """A TOML (``.toml``) or JSON file as a dict; errors are one line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TrainError(f"cannot read config file {path}: {e.strerror or e}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise TrainError(f"config file {path} is not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise TrainError(f"config file {path} must hold a table/object")
    return data


def section(data: dict[str, object], name: str, other: str) -> dict[str, object]:
    """The ``[name]`` table of a config file, or the flat file itself when it has no tables."""
    if name in data or other in data:
        unknown = sorted(set(data) - {name, other})
        if unknown:
            raise TrainError(f"config file: unknown top-level key {unknown[0]!r} (expected [{name}] / [{other}])")
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise TrainError(f"config file: [{name}] must be a table")
        return value
    return data


def build(cls: type[Config], file_values: Mapping[str, object], overrides: Mapping[str, object]) -> Config:
    """``cls`` from file values overlaid with the options that were given (None = not given)."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(file_values) - known - ({"batch_size"} if cls is PretrainConfig else set()))
    if unknown:
        raise TrainError(f"config file: unknown {cls.__name__} key {unknown[0]!r}; known: {', '.join(sorted(known))}")
    values: dict[str, Any] = dict(file_values)  # taken as given by cls(**values); cls.validate() checks them
    if "batch_size" in values and "global_batch" in known:  # its name before gradient accumulation
        if "global_batch" in values:
            raise TrainError("config file: give global_batch or its older name batch_size, not both")
        values["global_batch"] = values.pop("batch_size")
    values.update({k: v for k, v in overrides.items() if v is not None and v != [] and k in known})
    if isinstance(values.get("fps"), str) and values["fps"].strip().lower() == "native":
        values["fps"] = None  # TOML has no null: "native" means every frame
    defaults = cls()
    for key in ("data", "ood"):  # one path where a list is expected
        if isinstance(getattr(defaults, key, None), list) and isinstance(values.get(key), str):
            values[key] = [values[key]]
    # Budgets are alternatives: one given on the command line replaces one from the file.
    budget_keys = ("steps", "images", "minutes")
    if any(overrides.get(k) is not None for k in budget_keys):
        for k in budget_keys:
            if overrides.get(k) is None:
                values.pop(k, None)
    try:
        return cls(**values)
    except TypeError as e:
        raise TrainError(f"config: {e}") from None
