"""What a projected point costs to train: memory per GPU, the batch that fits, GPU-hours, wall-clock and dollars.

    import scaling
    rep = scaling.project(target="human-top5")            # the paper's scenario: 2.5B, 20,000 h, 952 px
    p = scaling.plan(rep, gpus=64, gpu_kind="h200")       # its 'at point' answer on 64 H200s
    print(p.summary()); p.gpu_hours, p.memory.total, p.batch
    scaling.plan(arch="vit_2p5b14", image_px=952, data_hours=20000, passes=4.9, activation_checkpointing=True)

A parameter count is planned on the nearest registered shape (``runs_db.archs.nearest_arch``) when its
encoder count at the planned image size is within a factor ``MAX_SHAPE_RATIO`` (1.5) of the request; past the
registry a shape is derived by one stated rule (``derive_shape``) and named ``vit_15.5b14 (derived)``; it is
not registered. Either way a plan is for a shape ``scaling train`` could build, never one more than 1.5x away;
when no shape comes that close the plan is a ``ScalingError``. A projected resolution is rounded to a
multiple of the patch. A batch that does not fit has no GPU-hours, wall-clock, cost or images/s (None).
Compute is the MAE FLOPs model (``runs_db.archs``); memory is ``scaling.planning.memory``; the MFU defaults to the
measured step most like the plan (``scaling.planning.gpus``). GPU-hours = FLOPs / (MFU x peak) and wall-clock =
GPU-hours / GPUs (the per-GPU rate is assumed to hold at that scale: communication is not modelled).
The largest batch that fits fills ``gpu_mem`` with the predicted allocated bytes (the measured H200 peaks
are allocated bytes too); give less memory to leave headroom for the allocator's fragmentation.
A plan keeps the recipe's global batch (``global_batch``, default MAE's 4,096): each GPU runs the largest
micro-batch that fits and divides its share, and accumulates the rest (``scaling.planning.batches``), as
``scaling train --global-batch`` does; steps = images / global batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from runs_db.archs import (
    MASK_RATIO,
    PATCH_PX,
    ViTShape,
    encoder_params,
    get_arch,
    mae_flops_for_arch,
)
from scaling.compute.flops import ComputeEstimate
from scaling.compute.training_length import parse as parse_training_length
from scaling.core import checks
from scaling.core.display import Text
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.core.targets import Target
from scaling.data.tables import load_runs
from scaling.defaults import DEFAULT_METRIC, FRAMES_PER_HOUR, PLAN_GLOBAL_BATCH
from scaling.errors import ScalingError
from scaling.forms.result import FitLike
from scaling.planning.batches import split_global_batch
from scaling.planning.gpus import GIB, GpuKind, default_mfu, get_gpu_kind, parse_memory
from scaling.planning.memory import MemoryBreakdown, StepSetup, largest_batch, step_memory
from scaling.planning.shapes import DERIVED_SHAPE_RULE, plan_shape

SCHEMA = "scaling.plan/v1"

@dataclass(frozen=True)
class CheckpointingOption:
    """The plan with and without activation checkpointing, side by side."""

    activation_checkpointing: bool
    largest_batch: int  # per GPU, in the plan's memory
    memory_gib: float | None  # predicted peak at that batch (None when nothing fits)
    mfu: float
    gpu_hours: float | None  # None when not even batch 1 fits

    def to_dict(self) -> JSONDict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PlanReport(Result):
    """A training plan for one (architecture, resolution, data) point on ``n_gpus`` GPUs of one kind."""

    source: str  # where the point came from
    arch: str
    shape: ViTShape
    n_params: int  # encoder parameters at image_px (class token and position embeddings included)
    requested_params: float | None
    image_px: int
    mask_ratio: float
    data_hours: float
    passes: float
    images_seen: float
    flops_per_image: float
    flops: float
    gpu: GpuKind
    n_gpus: int
    gpu_mem_bytes: float
    precision: str
    fsdp: bool
    activation_checkpointing: bool
    batch: int  # per GPU: the micro-batch of one forward/backward
    batch_given: bool
    fits: bool
    memory: MemoryBreakdown  # at ``batch`` (at batch 1 when nothing fits)
    mfu: float
    mfu_source: str
    peak_tflops: float
    usd_per_gpu_hour: float | None
    options: tuple[CheckpointingOption, ...]
    notes: tuple[str, ...] = ()
    derived: bool = False  # the shape was derived by ``DERIVED_SHAPE_RULE`` (not a registered one)
    training: str = ""  # where the passes come from (the training-length rule, or the projection)
    accum: int = 1  # micro-batches per optimizer step on each GPU (gradient accumulation)

    # Time, cost and steps exist only for a batch that fits: None otherwise (the notes say what to try).
    @property
    def images_per_s_per_gpu(self) -> float | None:
        return self.mfu * self.peak_tflops * 1e12 / self.flops_per_image if self.fits else None

    @property
    def gpu_hours(self) -> float | None:
        return self.flops / (self.mfu * self.peak_tflops * 1e12) / 3600.0 if self.fits else None

    @property
    def wall_clock_hours(self) -> float | None:
        return None if self.gpu_hours is None else self.gpu_hours / self.n_gpus

    @property
    def cost_usd(self) -> float | None:
        if self.usd_per_gpu_hour is None or self.gpu_hours is None:
            return None
        return self.gpu_hours * self.usd_per_gpu_hour

    @property
    def global_batch(self) -> int:
        """The recipe's batch: GPUs x accumulation steps x micro-batch."""
        return self.batch * self.accum * self.n_gpus

    @property
    def steps(self) -> float | None:
        return self.images_seen / self.global_batch if self.global_batch and self.fits else None

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling plan --json`` prints."""
        s = self.shape
        return jsonable({
            "schema": SCHEMA,
            "source": self.source,
            "model": {"arch": self.arch, "width": s.width, "depth": s.depth, "heads": s.heads, "patch_px": s.patch_px,
                      "n_params": self.n_params, "requested_params": self.requested_params,
                      "params_ratio": self.n_params / self.requested_params if self.requested_params else None,
                      "derived": self.derived, "shape_rule": DERIVED_SHAPE_RULE if self.derived else None},
            "data": {"image_px": self.image_px, "mask_ratio": self.mask_ratio, "data_hours": self.data_hours,
                     "passes": self.passes, "images_seen": self.images_seen, "training": self.training},
            "compute": {"flops_per_image": self.flops_per_image, "flops": self.flops},
            "hardware": {"gpu": self.gpu.to_dict(), "n_gpus": self.n_gpus, "gpu_mem_gib": self.gpu_mem_bytes / GIB,
                         "precision": self.precision, "fsdp": self.fsdp,
                         "activation_checkpointing": self.activation_checkpointing},
            "batch": {"per_gpu": self.batch, "accum": self.accum, "global": self.global_batch,
                      "given": self.batch_given, "fits": self.fits, "steps": self.steps},
            "memory_gib": self.memory.to_dict(),
            "time": {"mfu": self.mfu, "mfu_source": self.mfu_source, "peak_tflops": self.peak_tflops,
                     "images_per_s_per_gpu": self.images_per_s_per_gpu, "gpu_hours": self.gpu_hours,
                     "wall_clock_hours": self.wall_clock_hours,
                     "wall_clock_days": None if self.wall_clock_hours is None else self.wall_clock_hours / 24,
                     "usd_per_gpu_hour": self.usd_per_gpu_hour, "cost_usd": self.cost_usd},
            "checkpointing_options": [o.to_dict() for o in self.options],
            "notes": list(self.notes),
        })

    def to_frame(self) -> pd.DataFrame:
        """One row per quantity (value and unit): the model, memory per GPU by part, time and cost."""
        rows: list[tuple[str, Any, str]] = [
            ("arch", self.arch, ""), ("n_params", self.n_params, "parameters"), ("image_px", self.image_px, "px"),
            ("data_hours", self.data_hours, "h"), ("passes", self.passes, ""), ("images_seen", self.images_seen, ""),
            ("flops", self.flops, "FLOPs"), ("gpus", self.n_gpus, self.gpu.name),
            ("batch_per_gpu", self.batch, "images"), ("accum", self.accum, "micro-batches"),
            ("global_batch", self.global_batch, "images"), ("steps", self.steps, ""), ("fits", self.fits, ""),
        ]
        rows += [(f"memory.{k}", v, "GiB") for k, v in self.memory.to_dict().items() if k != "phase"]
        rows += [("mfu", self.mfu, ""), ("images_per_s_per_gpu", self.images_per_s_per_gpu, "img/s"),
                 ("gpu_hours", self.gpu_hours, "GPU-h"), ("wall_clock_hours", self.wall_clock_hours, "h"),
                 ("cost", self.cost_usd, "USD")]
        return pd.DataFrame(rows, columns=["quantity", "value", "unit"]).set_index("quantity")

    def summary(self) -> Text:
        m = self.memory
        ac = "every encoder block checkpointed" if self.activation_checkpointing else "no activation checkpointing"
        shard = f"FSDP over {self.n_gpus}" if self.fsdp else ("DDP" if self.n_gpus > 1 else "one GPU")
        lines = [
            f"Plan: {self.arch} ({self.n_params / 1e9:.3g}B parameters) at {self.image_px} px, "
            f"{self.data_hours:,.0f} h x {self.passes:.3g} passes = {self.images_seen:.3g} images, "
            f"{self.flops:.3g} FLOPs ({self.source}; training length: {self.training})",
            f"on {self.n_gpus} x {self.gpu.name.upper()} ({self.gpu_mem_bytes / GIB:.0f} GiB, {shard}, {ac}):",
            f"  batch {self.batch} per GPU x {self.accum} accumulated = {self.global_batch:,} global "
            f"({_batch_why(self)}): "
            f"peak {m.total / GIB:.1f} GiB = parameters {m.parameters / GIB:.1f} + gradients {m.gradients / GIB:.1f}"
            f" + AdamW {m.optimizer / GIB:.1f} + weight copies {m.weight_copies / GIB:.1f} + DDP buckets "
            f"{m.ddp_buckets / GIB:.1f} + activations {m.activations / GIB:.1f} + working {m.working / GIB:.1f}"
            f" ({m.phase}){'' if self.fits else ': DOES NOT FIT'}",
            (f"  {100 * self.mfu:.1f}% MFU of {self.peak_tflops:g} TFLOP/s = {self.images_per_s_per_gpu:.3g} img/s"
             f" per GPU: {self.gpu_hours:,.0f} GPU-hours, {self.wall_clock_hours:,.1f} h wall-clock"
             + (f", ${self.cost_usd:,.0f}" if self.cost_usd is not None else ""))
            if self.gpu_hours is not None and self.wall_clock_hours is not None else
            f"  {100 * self.mfu:.1f}% MFU of {self.peak_tflops:g} TFLOP/s: img/s -, GPU-hours -, wall-clock -"
            " (the batch does not fit)",
            f"  MFU: {self.mfu_source}",
        ]
        for o in self.options:
            what = "with" if o.activation_checkpointing else "without"
            fit = (f"largest batch {o.largest_batch} per GPU ({o.memory_gib:.1f} GiB)" if o.largest_batch
                   else "not even batch 1 fits")
            hours = "-" if o.gpu_hours is None else f"{o.gpu_hours:,.0f}"
            lines.append(f"  {what} checkpointing: {fit}, {100 * o.mfu:.1f}% MFU, {hours} GPU-hours")
        lines += [f"note: {n}" for n in self.notes]
        return Text("\n".join(lines))

    def __repr__(self) -> str:
        return (f"PlanReport({self.arch!r}, {self.image_px} px, {self.data_hours:g} h, {self.n_gpus}x{self.gpu.name}, "
                f"batch {self.batch}{'' if self.fits else ' (does not fit)'}, {self.memory.total / GIB:.1f} GiB, "
                f"{'-' if self.gpu_hours is None else format(self.gpu_hours, '.4g')} GPU-hours)")


def _batch_why(p: PlanReport) -> str:
    if p.batch_given:
        return "given" if p.fits else "given; it does not fit"
    return "the largest that fits and divides the global batch" if p.fits else "not even this one fits"


class PricedAnswer(Protocol):
    """What a plan reads of a projection's answer (``scaling.questions.projection.Projection``)."""

    @property
    def point(self) -> dict[str, float] | None: ...
    @property
    def compute(self) -> ComputeEstimate | None: ...
    @property
    def mode(self) -> str: ...


@runtime_checkable
class AnswersQuestions(Protocol):
    """What a plan reads of a projection report (``scaling.questions.report.ProjectionReport``): the
    planning layer sits below the questions, so it names only what it uses."""

    @property
    def projections(self) -> tuple[tuple[str, Any], ...]: ...
    @property
    def fit(self) -> FitLike: ...
    @property
    def target(self) -> Target | None: ...

    def answer(self, question: str) -> PricedAnswer: ...


def _point_of(projection: AnswersQuestions | PricedAnswer,
              question: str | None) -> tuple[dict[str, float], float | None, float | None, str]:
    """(point, passes, mask ratio, source) of a ProjectionReport's answer or of a Projection."""
    answer: PricedAnswer
    if isinstance(projection, AnswersQuestions):  # a ProjectionReport
        questions = [q for q, _ in projection.projections]
        if question is None:
            question = "at point" if "at point" in questions else (questions[0] if questions else "")
        try:
            answer = projection.answer(question)
        except KeyError:
            raise ScalingError(f"no answer {question!r} in this projection; questions: "
                               f"{', '.join(questions)}") from None
        target = projection.target.name if projection.target is not None else "none"
        where = f"projection '{question}', form {projection.fit.form}, target {target}"
    else:
        answer = projection
        where = f"projection ({getattr(projection, 'mode', '?')})"
    if answer.point is None:
        raise ScalingError(f"the {where} has no point to plan (the target is unreachable under this form)")
    missing = [a for a in ("n_params", "data_hours", "image_px") if a not in answer.point]
    if missing:
        raise ScalingError(f"the {where} has no {missing[0]} axis: plans need n_params, data_hours and image_px")
    comp = answer.compute
    return dict(answer.point), (comp.passes if comp else None), (comp.mask_ratio if comp else None), where


def plan(
    projection: AnswersQuestions | PricedAnswer | None = None,
    *,
    question: str | None = None,
    arch: str | None = None,
    n_params: float | None = None,
    image_px: float | None = None,
    data_hours: float | None = None,
    passes: float | None = None,
    mask_ratio: float | None = None,
    training_length: str | None = None,
    runs: pd.DataFrame | None = None,
    gpus: int = 1,
    gpu_kind: str = "h200",
    gpu_mem: str | float | None = None,
    mfu: float | None = None,
    peak_tflops: float | None = None,
    usd_per_gpu_hour: float | None = None,
    batch: int | None = None,
    global_batch: int = PLAN_GLOBAL_BATCH,
    activation_checkpointing: bool = False,
    fsdp: bool = False,
    precision: str = "bf16",
    source: str | None = None,
) -> PlanReport:
    """Plan training a point: from ``projection`` (a ``ProjectionReport``, its ``question`` answer, default
    'at point'; or a ``Projection``), or from ``arch`` (or ``n_params``: the nearest registered shape within
    1.5x, else a derived one, ``plan_shape``), ``image_px``, ``data_hours`` and the training length.
    Explicit values override the projection's. When the batch does not fit, GPU-hours, wall-clock, cost
    and images/s are None.

    Training length (images seen): a projection's answer carries its own; otherwise ``passes``, or the rule
    ``training_length`` ('grid', the default; 'passes=P'; 'images=N'; ``scaling.compute.training_length``) over
    ``runs`` (default: the run database's grid), exactly as ``scaling.project`` and ``scaling.suggest``
    price the same point. ``mask_ratio`` defaults to the rule's (the nearest trained configuration's).

    ``gpus`` GPUs of ``gpu_kind`` with ``gpu_mem`` each (default: the kind's memory; '80GiB', '80GB' or
    bytes); ``global_batch`` images per optimizer step (the recipe's, default MAE's 4,096), run as ``batch``
    per GPU (a micro-batch; default: the largest that fits and divides each GPU's share) and gradient
    accumulation for the rest; ``mfu`` (default: the measured step most
    like this one, ``scaling.planning.gpus``) of ``peak_tflops`` (default: the kind's); ``fsdp`` shards parameters,
    gradients and AdamW states over the GPUs, ``activation_checkpointing`` checkpoints every encoder block;
    ``source`` names where a given point comes from.
    """
    notes: list[str] = []
    point: dict[str, float] = {}
    proj_passes = proj_mask = None
    proj_training = ""
    where = "given"
    if projection is not None:
        point, proj_passes, proj_mask, where = _point_of(projection, question)
        proj_training = f"as the projection priced it ({where})"
    source = source or where
    if n_params is not None:
        point["n_params"] = float(n_params)
    for name, value in (("image_px", image_px), ("data_hours", data_hours)):
        if value is not None:
            point[name] = float(value)
    for name, value in (("image_px", point.get("image_px")), ("data_hours", point.get("data_hours")),
                        ("passes", passes if passes is not None else 1.0)):
        if value is None:
            raise ScalingError(f"the plan needs {name} (give it, or plan a projection)")
        checks.positive(value, name)
    gpus = checks.count(gpus, "gpus")
    mfu = None if mfu is None else checks.fraction(mfu, "mfu (a fraction of the peak)", closed=True)
    peak_tflops = None if peak_tflops is None else checks.positive(peak_tflops, "peak_tflops")
    usd_per_gpu_hour = None if usd_per_gpu_hour is None else checks.non_negative(usd_per_gpu_hour, "usd_per_gpu_hour")
    batch = None if batch is None else checks.count(batch, "batch (per GPU)")
    kind = get_gpu_kind(gpu_kind)
    mem = parse_memory(gpu_mem) if gpu_mem is not None else kind.memory_gib * GIB

    shape, requested, shape_note = _shape(arch, point.get("n_params"), point["image_px"])
    px = _image_px(point["image_px"], shape.patch_px, notes)
    if shape_note is not None:
        notes.append(shape_note)
    elif requested is not None and abs(encoder_params(shape, px) / requested - 1) > 0.005:
        notes.append(f"{requested / 1e9:.3g}B parameters planned as the nearest registered shape {shape.name} "
                     f"({encoder_params(shape, px) / 1e9:.3g}B at {px} px)")
    priced = {"n_params": float(encoder_params(shape, px)), "data_hours": point["data_hours"], "image_px": float(px)}
    if passes is None and proj_passes is not None and training_length is None:
        passes, rule_mask, training = proj_passes, proj_mask, proj_training
    else:
        rule = parse_training_length(training_length, runs if runs is not None or passes is not None
                                     else _default_grid(), passes=passes)
        if rule is None:
            raise ScalingError("the plan needs passes over the data (passes=, or a run database that records "
                               "images seen)")
        a = rule.at(priced)
        passes, rule_mask, training = a.passes, a.mask_ratio, a.source
    mask = mask_ratio if mask_ratio is not None else (rule_mask if rule_mask is not None else MASK_RATIO)
    f_img = mae_flops_for_arch(shape, px, mask).total
    images = passes * point["data_hours"] * FRAMES_PER_HOUR
    setup = StepSetup(shape, px, 1, mask_ratio=mask, precision=precision,
                      activation_checkpointing=activation_checkpointing, fsdp=fsdp, n_gpus=gpus)
    options = tuple(_option(setup, ac, mem, f_img * images, kind, mfu, peak_tflops) for ac in (False, True))
    fitting = next(o.largest_batch for o in options if o.activation_checkpointing == activation_checkpointing)
    split = split_global_batch(global_batch, gpus, fitting=fitting, given=batch)
    chosen = split.micro_batch
    memory = step_memory(replace(setup, batch=chosen))
    fits = memory.total <= mem
    if not fits:
        notes.append(_does_not_fit(chosen, memory.total, mem, batch is not None, activation_checkpointing, fsdp))
    measured = None if mfu is not None else default_mfu(kind.name, f_img,
                                                        activation_checkpointing=activation_checkpointing)
    return PlanReport(
        source=source, arch=shape.name, shape=shape, n_params=encoder_params(shape, px), requested_params=requested,
        image_px=px, mask_ratio=mask, data_hours=float(point["data_hours"]), passes=float(passes),
        images_seen=images, flops_per_image=f_img, flops=f_img * images, gpu=kind, n_gpus=gpus, gpu_mem_bytes=mem,
        precision=precision, fsdp=fsdp, activation_checkpointing=activation_checkpointing, batch=chosen,
        batch_given=batch is not None, fits=fits, memory=memory,
        mfu=mfu if mfu is not None else measured.mfu,  # type: ignore[union-attr]
        mfu_source="given" if measured is None else measured.describe(),
        peak_tflops=peak_tflops if peak_tflops is not None else kind.peak_tflops,
        usd_per_gpu_hour=usd_per_gpu_hour, options=options, notes=tuple(notes), derived=shape_note is not None,
        training=training, accum=split.accum,
    )


def _default_grid() -> pd.DataFrame:
    """The run database's grid (the default database), for the training-length rule of a given point."""

    frame = load_runs(metric=DEFAULT_METRIC)
    return frame[frame["metric"] == DEFAULT_METRIC]


def _shape(arch: str | None, n_params: float | None,
           image_px: float) -> tuple[ViTShape, float | None, str | None]:
    """(shape, requested parameter count, the note of a derived shape)."""
    if arch is not None:
        try:
            return get_arch(arch), None, None
        except KeyError as exc:
            raise ScalingError(str(exc.args[0])) from None
    if n_params is None:
        raise ScalingError("the plan needs an architecture or a parameter count (arch=, n_params=)")
    if not (n_params > 0 and math.isfinite(n_params)):
        raise ScalingError(f"the parameter count must be positive, got {n_params:g}")
    px = max(PATCH_PX, round(image_px / PATCH_PX) * PATCH_PX)
    shape, note = plan_shape(n_params, px)
    return shape, float(n_params), note


def _image_px(value: float, patch: int, notes: list[str]) -> int:
    px = max(patch, round(value / patch) * patch)
    if abs(px - value) > 1e-9:
        notes.append(f"image size {value:.4g} px rounded to {px} px, a multiple of the {patch}-px patch")
    return px


def _option(setup: StepSetup, ac: bool, mem: float, flops: float, kind: GpuKind, mfu: float | None,
            peak: float | None) -> CheckpointingOption:
    s = replace(setup, activation_checkpointing=ac)
    b = largest_batch(s, mem)
    f_img = mae_flops_for_arch(s.shape, s.image_px, s.mask_ratio).total
    u = mfu if mfu is not None else default_mfu(kind.name, f_img, activation_checkpointing=ac).mfu
    gpu_hours = flops / (u * (peak if peak is not None else kind.peak_tflops) * 1e12) / 3600.0 if b else None
    return CheckpointingOption(ac, b, step_memory(replace(s, batch=b)).total / GIB if b else None, u, gpu_hours)


def _does_not_fit(batch: int, need: float, mem: float, given: bool, ac: bool, fsdp: bool) -> str:
    what = f"batch {batch} per GPU needs" if given else "even batch 1 per GPU needs"
    hints = ["a smaller batch"] if given else []
    hints += [] if ac else ["activation checkpointing"]
    hints.append("more GPUs" if fsdp else "FSDP over more GPUs")
    return f"{what} {need / GIB:.1f} GiB of {mem / GIB:.0f} GiB; try {', '.join(hints)}"


def plan_answers(report: AnswersQuestions, **options: Any) -> tuple[tuple[str, PlanReport | str], ...]:
    """A plan for every answer of a ``ProjectionReport`` that has a point (``options`` as ``plan``); an
    answer without a point, or one that cannot be planned, gets the reason instead."""
    out: list[tuple[str, PlanReport | str]] = []
    for question, answer in report.projections:
        if answer.point is None:
            out.append((question, "no point: the target is unreachable under this form"))
            continue
        try:
            out.append((question, plan(report, question=question, **options)))
        except ScalingError as exc:
            out.append((question, str(exc).splitlines()[0]))
    return tuple(out)
