"""The options of ``scaling train`` (``scaling.cli.train``): one annotated type per option, shared by the
commands that take it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from runs_db.archs import MASK_RATIO

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML or JSON file with \\[pretrain] and/or "
                                                "\\[finetune] tables; options given here override it.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (checkpoints, logs, run.json). "
                                             "Default: runs/<name>. Rerunning into it resumes.")]
NameOpt = Annotated[str | None, typer.Option(help="Run name \\[default: from the arch, px, data fraction and subset "
                                             "seed: vit_s14@224_0.01_1 for vit_s14 at 224 px, 0.01, seed 1].")]
NoDbOpt = Annotated[bool, typer.Option("--no-db", help="Only write run.json; do not insert into the database.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
Arch = Annotated[str | None, typer.Option(help="Registered ViT: vit_s14, vit_b14, vit_l14, vit_h14, vit_t14, "
                                          "vit_nano8, vit_pico8 \\[default: vit_s14].")]
ImagePx = Annotated[int | None, typer.Option("--image-px", help="Image side in px, a multiple of the patch "
                                             "\\[default: 224].")]
Data = Annotated[list[Path] | None, typer.Option("--data", metavar="PATH", help="Video file, folder of frames, "
                                                 "images or videos, or .tar shard (repeatable; concatenated in "
                                                 "order).")]
Dataset = Annotated[str | None, typer.Option(help="Corpus name for the record \\[default: the data names].")]
Fps = Annotated[str | None, typer.Option(help="Frames/s decoded from video (the study: 1), or 'native' for every "
                                         "frame; for frame folders the rate they were extracted at \\[default: 1].")]
Fraction = Annotated[float | None, typer.Option("--data-fraction", help="Fraction of the frames \\[default: 1].")]
SubsetSeed = Annotated[int | None, typer.Option("--subset-seed", help="Which subset of that size \\[default: 1].")]
SubsetMode = Annotated[str | None, typer.Option("--subset", help="contiguous (the study: one block) or uniform.")]
MaskRatio = Annotated[float | None, typer.Option(help=f"Fraction of patches hidden \\[default: {MASK_RATIO:g}].")]
NormPix = Annotated[bool | None, typer.Option("--norm-pix-loss/--no-norm-pix-loss", help="Per-patch normalised "
                                              "targets \\[default: off, as the study].")]
DecDim = Annotated[int | None, typer.Option(help="Decoder width \\[default: 512].")]
DecDepth = Annotated[int | None, typer.Option(help="Decoder depth \\[default: 8].")]
DecHeads = Annotated[int | None, typer.Option(help="Decoder heads \\[default: 16].")]
Batch = Annotated[int | None, typer.Option("--global-batch", help="Samples per optimizer step, all processes and "
                                           "micro-batches together: the recipe's batch, hashed into the run id; "
                                           "--batch-size is its older name \\[default: 256].")]
# The older name of --global-batch, still accepted; hidden so that the option's names fit an 80-column help.
BatchSize = Annotated[int | None, typer.Option("--batch-size", hidden=True)]
MicroBatch = Annotated[int | None, typer.Option("--micro-batch", help="Samples per process per forward/backward "
                                                "(what fits one GPU); accumulation steps = global / (micro x "
                                                "processes) \\[default: from --accum, else all of its share].")]
Accum = Annotated[int | None, typer.Option("--accum", help="Micro-batches per optimizer step (gradient "
                                           "accumulation) \\[default: from --micro-batch, else 1].")]
Lr = Annotated[float | None, typer.Option(help="Peak learning rate \\[default: 3e-4].")]
Wd = Annotated[float | None, typer.Option(help="AdamW weight decay \\[default: 0, as the study].")]
Schedule = Annotated[str | None, typer.Option(help="constant (the study) or cosine (needs --steps/--images).")]
Warmup = Annotated[int | None, typer.Option(help="Linear warmup steps \\[default: 0].")]
Steps = Annotated[int | None, typer.Option(help="Budget: optimizer steps.")]
Images = Annotated[int | None, typer.Option(help="Budget: images seen (rounded up to whole steps).")]
Minutes = Annotated[float | None, typer.Option(help="Budget: wall-clock minutes of training.")]
Precision = Annotated[str | None, typer.Option(help="auto (bf16 where fast: GPUs, CPUs with AVX512-BF16/AMX), "
                                               "bf16 or fp32.")]
Compile = Annotated[bool | None, typer.Option("--compile/--no-compile", help="torch.compile the model (pays on "
                                              "GPUs; on CPUs it did not) \\[default: on for CUDA, off on CPUs].")]
Fsdp = Annotated[bool | None, typer.Option("--fsdp/--no-fsdp", help="Shard parameters, gradients and optimizer "
                                           "state over the processes (FSDP2; for models that do not fit one GPU), "
                                           "in pretraining and fine-tuning; checkpoints resume on any number of "
                                           "processes either way \\[default: off].")]
ActCkpt = Annotated[bool | None, typer.Option("--act-checkpointing",
                                              help="Recompute each encoder block in the backward pass: less memory, "
                                              "~1/3 more compute \\[default: the config's, else off].")]
Seed = Annotated[int | None, typer.Option(help="Training seed (init, order, crops, masks) \\[default: 0].")]
Workers = Annotated[int | None, typer.Option(help="Data-loading processes per rank \\[default: 0].")]
LogEvery = Annotated[int | None, typer.Option(help="Steps per log line \\[default: 50].")]
CkptEvery = Annotated[int | None, typer.Option(help="Steps between checkpoints \\[default: 500].")]
FtData = Annotated[Path | None, typer.Option("--finetune-data", help="ImageFolder root with train/ and val/.")]
Ood = Annotated[list[Path] | None, typer.Option(
    "--ood", metavar="DIR", help="OOD eval folder of class folders (repeatable); NAME=DIR records it as NAME "
                                       "\\[default: the folder's name]. A 16-class set of Geirhos et al. 2021 "
                                       "named as its human target's eval set (mvh-sketch, ...: `scaling targets`) "
                                       "is scored as 16 categories and on that target's conditions.")]
LabelFraction = Annotated[float | None, typer.Option(help="Fraction of labelled training images \\[default: 0.02].")]
LabelSeed = Annotated[int | None, typer.Option(help="Which labelled subset \\[default: 0].")]
Epochs = Annotated[int | None, typer.Option(help="Fine-tuning epochs \\[default: 50].")]
FtBatch = Annotated[int | None, typer.Option("--ft-batch-size", help="Fine-tuning global batch \\[default: 128].")]
FtLr = Annotated[float | None, typer.Option("--ft-lr", help="Fine-tuning lr \\[default: 1e-4].")]
FtWd = Annotated[float | None, typer.Option("--ft-weight-decay", help="Fine-tuning weight decay \\[default: 0.05].")]
Probe = Annotated[bool | None, typer.Option("--linear-probe/--finetune-all", help="Train the head only on frozen "
                                            "features \\[default: whole network, the study's protocol].")]
Protocol = Annotated[str | None, typer.Option(help="Eval protocol name \\[default: from the labelled set and "
                                              "fraction]; finetune-in1k-2pct (2% of ImageNet labels) lines up with "
                                              "the published grid.")]
EvalSet = Annotated[str | None, typer.Option(help="Name of the validation set \\[default: <set>-val]; "
                                             "imagenet-val for ImageNet.")]
FtName = Annotated[str | None, typer.Option("--finetune-name", help="Name of the labelled set \\[default: folder].")]


NOT_PRETRAIN_OPTIONS = ("ctx", "config", "out", "name", "no_db", "as_json")
# option name -> FinetuneConfig field, for `finetune` and `point`
FINETUNE_OPTIONS = {"finetune_data": "data", "ood": "ood", "finetune_name": "name", "label_fraction": "label_fraction",
                    "label_seed": "label_seed", "epochs": "epochs", "ft_batch_size": "batch_size", "ft_lr": "lr",
                    "ft_weight_decay": "weight_decay", "linear_probe": "linear_probe", "protocol": "protocol",
                    "eval_set": "eval_set", "precision": "precision", "seed": "seed", "fsdp": "fsdp",
                    "workers": "workers"}
