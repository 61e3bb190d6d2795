"""``scaling plan``: memory per GPU, the batch that fits, GPU-hours, wall-clock and cost of training a point."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from scaling.cli import validate
from scaling.cli.common import domain_errors
from scaling.cli.options import FormOpt, JsonOpt, PassesOpt, TrainingLengthOpt, load_table
from scaling.cli.render import fmt_flops, fmt_hours, fmt_params, print_json, stderr_console, stdout_console, table
from scaling.core import checks
from scaling.defaults import DEFAULT_FORM, DEFAULT_TARGET, PAPER_SCENARIO, PLAN_GLOBAL_BATCH
from scaling.errors import ScalingError

QUESTIONS = {"at": "at point", "scale": "scale every axis", "solve": "solve data_hours"}


def _global_batch(value: int) -> int:
    """``--global-batch``: a count, checked when parsed (as ``scaling.cli.validate``'s options are)."""
    try:
        return checks.count(value, "--global-batch")
    except ScalingError as exc:
        validate.fail(str(exc))


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_cmd)


def _gib(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} GiB"


def _num(v: float | None, spec: str) -> str:
    """A time or cost that exists only for a batch that fits: '-' otherwise."""
    return "-" if v is None else format(v, spec)


def _batch(p: Any) -> str:
    """The batch row: the batch, why it was chosen, and whether it fits."""
    if not p.fits:
        return (f"{p.batch} per GPU (given): does not fit" if p.batch_given
                else "none fits: not even 1 image per GPU (memory below at batch 1)")
    return (f"{p.batch} per GPU ({'given' if p.batch_given else 'the largest that fits and divides'}) x "
            f"{p.accum} accumulated = {p.global_batch:,} global, {p.steps:,.0f} steps")


def render_plan(p: Any) -> None:
    """A plan as tables: the point and its compute, memory per GPU by part, time and cost, the two
    checkpointing options side by side; notes on stderr."""
    console = stdout_console()
    shard = f"FSDP over {p.n_gpus}" if p.fsdp else ("DDP" if p.n_gpus > 1 else "one GPU")
    rows = [("model", f"{p.arch}: {p.shape.width} wide, {p.shape.depth} deep, {p.shape.heads} heads, "
                      f"{fmt_params(p.n_params)} parameters at {p.image_px} px"),
            ("data", f"{fmt_hours(p.data_hours)} x {p.passes:.3g} passes = {p.images_seen:.3g} images, "
                     f"mask {p.mask_ratio:g}"),
            ("compute", f"{fmt_flops(p.flops_per_image)} FLOPs per image, {fmt_flops(p.flops)} FLOPs"),
            ("hardware", f"{p.n_gpus} x {p.gpu.name.upper()}, {p.gpu_mem_bytes / 2**30:.0f} GiB each, {shard}, "
                         f"{'every encoder block checkpointed' if p.activation_checkpointing else 'no checkpointing'}"),
            ("batch", _batch(p))]
    console.print(table(f"Training plan ({p.source})", ["", "value"], rows))
    m = p.memory.to_dict()
    mrows = [(k.replace("_", " "), _gib(v)) for k, v in m.items() if k not in {"phase", "total"}]
    mrows.append(("peak (" + str(m["phase"]) + ")", _gib(m["total"]) + ("" if p.fits else "  DOES NOT FIT")))
    console.print(table("Memory per GPU", ["part", "memory"], mrows))
    cost = "-" if p.cost_usd is None else f"${p.cost_usd:,.0f} at ${p.usd_per_gpu_hour:g} per GPU-hour"
    wall = "-" if p.wall_clock_hours is None else (
        f"{p.wall_clock_hours:,.1f} h = {p.wall_clock_hours / 24:,.1f} days on {p.n_gpus} "
        f"GPU{'s' if p.n_gpus != 1 else ''}")
    trows = [("MFU", f"{100 * p.mfu:.1f}% of {p.peak_tflops:g} TFLOP/s ({p.mfu_source})"),
             ("images/s per GPU", _num(p.images_per_s_per_gpu, ".3g")),
             ("GPU-hours", _num(p.gpu_hours, ",.0f")),
             ("wall-clock", wall),
             ("cost", cost)]
    console.print(table("Time and cost", ["", "value"], trows))
    orows = [("every encoder block" if o.activation_checkpointing else "none", str(o.largest_batch),
              _gib(o.memory_gib), f"{100 * o.mfu:.1f}%", _num(o.gpu_hours, ",.0f")) for o in p.options]
    console.print(table("With and without activation checkpointing", ["checkpointing", "largest batch per GPU",
                        "peak at that batch", "MFU", "GPU-hours"], orows))
    for note in p.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)


def render_plans(plans: Any) -> None:
    """The plans of a projection's answers (``scaling project --plan``), one row each."""
    if all(isinstance(p, str) for _, p in plans):  # e.g. a table without the run database's axes
        reason = plans[0][1] if plans else "no answers"
        stderr_console().print(f"note: no answer can be planned: {reason}", markup=False, soft_wrap=True)
        return
    rows = []
    for question, p in plans:
        if isinstance(p, str):
            rows.append([question, *["-"] * 8, p])
            continue
        batch = f"{p.batch} x {p.accum}" if p.fits else ("none fits" if not p.batch_given
                                                         else f"{p.batch}: does not fit")
        rows.append([question, p.arch, f"{p.image_px} px", fmt_hours(p.data_hours), fmt_flops(p.flops),
                     batch, _gib(p.memory.total / 2**30), f"{100 * p.mfu:.1f}%", _num(p.gpu_hours, ",.0f"),
                     "; ".join(p.notes)])
    first = next((p for _, p in plans if not isinstance(p, str)), None)
    caption = None if first is None else (
        f"{first.n_gpus} x {first.gpu.name.upper()} ({first.gpu_mem_bytes / 2**30:.0f} GiB); MFU: the measured step "
        "most like each (scaling.planning.gpus, notes-gpu). Details: `scaling plan --from-projection --question "
        "at|scale|solve`.")
    stdout_console().print(table("Training plans (batch per GPU: the largest that fits, x accumulation steps)",
                                 ["question", "arch", "image", "data", "FLOPs", "batch per GPU", "peak memory",
                                  "MFU", "GPU-hours", "notes"], rows, caption=caption))


@domain_errors
def plan_cmd(
    ctx: typer.Context,
    arch: Annotated[
        str | None, typer.Option(help="Registered architecture, e.g. vit_2p5b14 (see runs_db.archs).")
    ] = None,
    params: Annotated[
        float | None,
        typer.Option("--params", help="Encoder parameters; the nearest registered shape within 1.5x is "
                                      "planned, else one derived by width = 40 x depth (see the note) "
                                      f"\\[default: {PAPER_SCENARIO['n_params']:g}, the paper's scenario].",
                     callback=validate.params),
    ] = None,
    px: Annotated[float | None, typer.Option("--px", help="Image side in px \\[default: 952].",
                                             callback=validate.px)] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="Hours of 1-frame/s video \\[default: 20000].",
                                                callback=validate.hours)] = None,
    passes: PassesOpt = None,
    training_length: TrainingLengthOpt = None,
    mask_ratio: Annotated[
        float | None, typer.Option(help="MAE mask ratio \\[default: the training-length rule's, that of the "
                                        "nearest trained configuration].", callback=validate.mask_ratio)
    ] = None,
    from_projection: Annotated[
        bool, typer.Option("--from-projection", help="Plan an answer of `scaling project` (--target, --form, "
                                                     "--question) instead of a given point."),
    ] = False,
    question: Annotated[str, typer.Option(help="With --from-projection: at | scale | solve.")] = "at",
    target: Annotated[str, typer.Option(help="With --from-projection: the target.")] = DEFAULT_TARGET,
    form: FormOpt = DEFAULT_FORM,
    gpus: Annotated[int, typer.Option("--gpus", help="Number of GPUs (K).", callback=validate.gpus)] = 1,
    gpu_kind: Annotated[str, typer.Option(help="h200 (measured MFU), h100 or a100 (give --mfu).")] = "h200",
    gpu_mem: Annotated[
        str | None, typer.Option(help="Memory per GPU, e.g. 80GiB or 80GB \\[default: the kind's].")
    ] = None,
    mfu: Annotated[
        float | None, typer.Option(help="Model-FLOP utilisation in (0, 1] \\[default: the measured step most "
                                        "like this one].", callback=validate.mfu)
    ] = None,
    peak_tflops: Annotated[
        float | None, typer.Option(help="Peak bf16 TFLOP/s the MFU is relative to \\[default: the kind's].",
                                   callback=validate.peak_tflops)
    ] = None,
    usd_per_gpu_hour: Annotated[float | None, typer.Option(help="Price of one GPU-hour in USD.",
                                                           callback=validate.usd_per_gpu_hour)] = None,
    batch: Annotated[int | None, typer.Option(help="Images per GPU per forward/backward (the micro-batch) "
                                              "\\[default: the largest that fits and divides each GPU's share "
                                              "of the global batch].", callback=validate.batch)] = None,
    global_batch: Annotated[int, typer.Option("--global-batch", help="Images per optimizer step, the recipe's: "
                                              "kept on any number of GPUs by accumulating micro-batches "
                                              "\\[default: MAE's 4,096].", callback=_global_batch)] = PLAN_GLOBAL_BATCH,
    activation_checkpointing: Annotated[
        bool, typer.Option("--act-checkpointing",
                           help="Activation checkpointing: recompute every encoder block in the backward pass.")
    ] = False,
    fsdp: Annotated[bool, typer.Option("--fsdp", help="Shard parameters, gradients and AdamW over the GPUs.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Plan training a point: memory per GPU, the largest batch that fits, GPU-hours, wall-clock and cost.

    Without options it plans the paper's scenario (2.5B parameters, 20,000 h, 952 px) on one H200, with
    MAE's global batch of 4,096: each GPU runs the largest micro-batch that fits and accumulates the rest,
    so the plan is the same recipe on any number of GPUs (--global-batch). Its
    training length is that of `scaling project` and `scaling suggest` for the same point
    (--training-length: the grid's recipe by default, 4.85 passes over the frames beyond the grid's data).
    A parameter count names the nearest registered shape (vit_2p5b14 for 2.5B) when it is within 1.5x;
    past the registry a shape is derived (width = 40 x depth in 128-wide heads, named e.g. vit_15.5b14
    (derived)), or the plan is a one-line error. Memory: fp32
    weights, gradients and AdamW states, bf16 weight copies, activations at the batch (encoder on the visible
    patches, decoder on all), with or without activation checkpointing, sharded by --fsdp. Time: the MAE
    FLOPs over MFU x peak; the MFU defaults to the measured step most like this one (H200 figures,
    notes-gpu); a batch that does not fit gets no GPU-hours, wall-clock or cost ('-').

    [bold]Examples[/bold]

      scaling plan
      scaling plan --gpus 64 --fsdp --usd-per-gpu-hour 3.5
      scaling plan --gpus 8 --global-batch 1024 --batch 16
      scaling plan --arch vit_3b14 --px 952 --hours 20000 \\
          --act-checkpointing --json
      scaling plan --params 1e9 --px 448 --hours 5000 \\
          --gpu-kind a100 --gpu-mem 80GiB --mfu 0.4
      scaling plan --from-projection --question scale --form logit1
    """
    import scaling  # lazy: keeps `scaling --help` fast

    if question not in QUESTIONS:
        raise ScalingError(f"--question {question!r}: use at, scale or solve")
    options = dict(gpus=gpus, gpu_kind=gpu_kind, gpu_mem=gpu_mem, mfu=mfu, peak_tflops=peak_tflops,
                   usd_per_gpu_hour=usd_per_gpu_hour, batch=batch, global_batch=global_batch,
                   activation_checkpointing=activation_checkpointing,
                   fsdp=fsdp, passes=passes, mask_ratio=mask_ratio, arch=arch, n_params=params, image_px=px,
                   data_hours=hours)
    _check(options)
    wanted = scaling.resolve_target(target) if from_projection else None
    frame = load_table(ctx, data=None, y=None, protocol=wanted.protocol if wanted else None,
                       eval_set=wanted.eval_set if wanted else None,
                       metric=wanted.metric if wanted else None, selection="best-epoch")
    if from_projection:
        report = scaling.project(frame, target, form=form, mode=question, passes=passes,
                                 training_length=training_length)
        options.pop("passes")
        result = scaling.plan(report, question=QUESTIONS[question], **options)
    else:
        options |= {"training_length": training_length, "runs": frame}
        if arch is None and params is None and px is None and hours is None:
            options["source"] = "the paper's scenario"
        if arch is None and params is None:
            options["n_params"] = PAPER_SCENARIO["n_params"]
        options["image_px"] = px if px is not None else PAPER_SCENARIO["image_px"]
        options["data_hours"] = hours if hours is not None else PAPER_SCENARIO["data_hours"]
        result = scaling.plan(**options)
    if as_json:
        print_json(result.to_dict())
        return
    render_plan(result)


def _check(options: dict[str, Any]) -> None:
    """Bad numbers fail before the run database is read, naming the option: the options' own validators
    (``scaling.cli.validate``) did when they were parsed; the memory size and GPU kind are checked here."""
    from scaling.planning.gpus import get_gpu_kind, parse_memory  # lazy: keeps `scaling --help` fast

    if options["gpu_mem"] is not None:
        try:
            parse_memory(options["gpu_mem"])
        except ScalingError:
            raise ScalingError(f"--gpu-mem {options['gpu_mem']!r}: expected a size such as 80GiB, 80GB or "
                               "141GB") from None
    get_gpu_kind(options["gpu_kind"])
