"""Fine-tuning and evaluation: the study's "permissive" protocol, or a linear probe.

The pretrained encoder gets a BatchNorm (no affine) + linear head on the class token; the whole network is
trained with AdamW (weight decay 0.05, default betas) at a constant lr on a fraction of the labelled
training images (eminorhan/mae ``eval_finetune.py``). After every epoch top-1/top-5 are measured on the
validation set and on every OOD set. The record keeps the best epoch (the first with the highest
validation top-1, the checkpoint the study kept; OOD sets are read at that same epoch) and the last one.
``linear_probe`` freezes the encoder (eval mode) and trains the head only.

Several processes split every batch evenly. The head's BatchNorm sees the global batch (``SyncBatchNorm`` on
CUDA, ``train.parallel.GlobalBatchNorm1d`` on CPUs), and the model is replicated (DDP) or, with ``fsdp``,
sharded as pretraining shards it (FSDP2: every encoder block, then the rest), so the model that was
pretrained on some GPUs can be fine-tuned on the same ones. Either way N processes train what one would.
Evaluation gives every rank the same number of batches (padding the last, which is not counted), as a
sharded model needs every rank in every forward pass.

Outputs in ``out_dir``: ``finetune.dcp/`` (``train.checkpoint``, every epoch; resumes at the next epoch on
any number of processes) and ``finetune_log.txt`` in the MAE fine-tune format (accuracies in percent,
``n_parameters``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from runs_db.archs import ViTShape
from runs_db.ood import MEAN_EVAL_SET, human_ood
from train import checkpoint, dist, parallel
from train.checkpoint import atomic_write_bytes
from train.config import FinetuneConfig
from train.data import normalize
from train.errors import TrainDiverged, TrainError
from train.finetune_data import LabelledImages, LabelledSet, label_subset, read_finetune_data, read_ood
from train.model import ViTClassifier, build_vit, count_params, mix_seed
from train.runtime import NullReporter, Reporter, autocast, param_groups, resolve_precision, use_attention_kernel_for

DCP_NAME = "finetune.dcp"
LEGACY_NAME = "finetune.ckpt"  # the single-file checkpoint of versions before issue 22
LOG_NAME = "finetune_log.txt"
ORDER_SALT = 0x6F726472  # "ordr"


@dataclass
class FinetuneData:
    train: LabelledSet
    val: LabelledSet
    ood: list[LabelledSet]
    keep: list[int]  # indices of the labelled training images used


def prepare_finetune_data(cfg: FinetuneConfig) -> FinetuneData:
    """Read and check everything before any training or database write (one-line errors)."""
    cfg.validate()
    train, val = read_finetune_data(Path(str(cfg.data)).expanduser(), cfg.set_name())
    ood = [read_ood(Path(p).expanduser(), train.classes) for p in cfg.ood]
    names = [cfg.eval_set_name(), *(s.name for s in ood)]
    if len(set(names)) != len(names):
        raise TrainError(f"evaluation sets need distinct names, got {', '.join(names)}")
    return FinetuneData(train, val, ood, label_subset(train, cfg.label_fraction, cfg.label_seed))


@dataclass
class EpochScores:
    epoch: int
    train_loss: float
    scores: dict[str, dict[str, float]]  # eval set -> {"loss", "top1", "top5"} (fractions)


class EpochRecord(TypedDict):
    """``EpochScores`` as a checkpoint stores it."""

    epoch: int
    train_loss: float
    scores: dict[str, dict[str, float]]


class FinetuneMeta(TypedDict):
    """``meta.json`` of ``finetune.dcp/`` (besides the files it records): the epochs so far."""

    identity: Mapping[str, object]
    epochs: list[EpochRecord]
    log: list[dict[str, float]]  # the lines of finetune_log.txt
    seconds: float


class FinetuneEval(TypedDict):
    """One evaluation for the run record (``runs_db.records``): ``value`` is a fraction in [0, 1]."""

    protocol: str
    eval_set: str
    metric: str
    selection: str
    value: float
    epoch: int
    n_epochs: int


class FinetuneHistoryPoint(TypedDict):
    """One point of a fine-tuning curve for the run record; ``key`` starts with the protocol name."""

    phase: str
    key: str
    step: int
    value: float | None


@dataclass
class FinetuneResult:
    epochs: list[EpochScores]
    n_parameters: int
    precision: str
    seconds: float
    evals: list[FinetuneEval] = field(default_factory=list)
    history: list[FinetuneHistoryPoint] = field(default_factory=list)


def _padded_share(n: int, env: dist.DistEnv) -> tuple[list[int], int]:
    """This rank's interleaved share of ``n`` items, padded (with item 0) to the same length on every rank,
    and how many of them are real."""
    mine = list(range(env.rank, n, env.world))
    length = -(-n // env.world)
    return mine + [0] * (length - len(mine)), len(mine)


def sixteen_class_scores(logits: torch.Tensor, groups: tuple[tuple[int, ...], ...]) -> torch.Tensor:
    """Each category's mean softmax probability over its classes (0 for a category without any), normalised
    to sum to 1 per image: how Geirhos et al. read a 1,000-way classifier as a 16-class answer."""
    probs = logits.softmax(dim=1)
    scores = torch.stack([probs[:, list(g)].mean(dim=1) if g else probs.new_zeros(len(probs)) for g in groups],
                         dim=1)
    return scores / scores.sum(dim=1, keepdim=True)


@torch.no_grad()
def evaluate(model: nn.Module, data: LabelledSet, image_px: int, env: dist.DistEnv, precision: str,
             batch_size: int, workers: int) -> dict[str, float]:
    """Loss, top-1 and top-5 (fractions) of ``data``; ranks score interleaved shards and add up counts."""
    model.eval()
    indices, real = _padded_share(len(data), env)
    loader = torch.utils.data.DataLoader(LabelledImages(data, indices, image_px, train=False),
                                         batch_size=batch_size, num_workers=workers)
    k = min(5, len(data.classes))
    sums = torch.zeros(4, dtype=torch.float64, device=env.device)  # loss, top1, top5, n
    seen = 0
    for imgs, labels in loader:
        imgs, labels = normalize(imgs.to(env.device)), labels.to(env.device)
        with autocast(precision, env.device):
            logits = model(imgs)
        keep = torch.arange(seen, seen + len(labels), device=env.device) < real  # the padding is not counted
        seen += len(labels)
        logits = logits.float()
        if data.groups is not None:  # a 16-class set on an ImageNet head: log of the normalised category scores
            logits = sixteen_class_scores(logits, data.groups).clamp_min(1e-30).log()
        hit = (logits.topk(k, dim=1).indices == labels[:, None]) & keep[:, None]
        loss = F.cross_entropy(logits, labels, reduction="none") * keep
        sums += torch.stack([loss.sum().double(), hit[:, :1].any(1).sum().double(), hit.any(1).sum().double(),
                             keep.sum().double()])
    dist.all_reduce_sum(sums, env)
    n = sums[3].item()
    return {"loss": sums[0].item() / n, "top1": sums[1].item() / n, "top5": sums[2].item() / n}


def _classifier(cfg: FinetuneConfig, encoder: Mapping[str, torch.Tensor], shape: ViTShape, image_px: int,
                n_classes: int, env: dist.DistEnv, precision: str) -> tuple[ViTClassifier, nn.Module, int]:
    """(model, the module the loop calls, parameter count): the encoder's weights, a new head, made to see
    the global batch and wrapped for the processes (DDP, or FSDP2 with ``cfg.fsdp``)."""
    torch.manual_seed(mix_seed(cfg.seed, 1))
    model = ViTClassifier(build_vit(shape, image_px), n_classes)
    try:
        model.encoder.load_state_dict(encoder)
    except RuntimeError as e:  # a checkpoint of another architecture or resolution
        raise TrainError(f"the pretrained encoder does not fit {shape.name} at {image_px} px: "
                         f"{str(e).strip().splitlines()[0]}") from None
    use_attention_kernel_for(model.to(env.device), env.device)
    n_parameters = count_params(model)
    if cfg.linear_probe:
        model.encoder.requires_grad_(False)
    if not env.distributed:
        return model, model, n_parameters
    # Batch statistics over the global batch, as one process would see them: SyncBatchNorm on CUDA (the
    # only place it runs), an all-reduced BatchNorm on CPUs (gloo). The linear probe too: without it each
    # rank's head would follow its own share of the batch.
    parallel.global_batchnorm(model, env.device)
    if cfg.fsdp:
        return model, parallel.shard(model, env, precision), n_parameters
    net = DistributedDataParallel(model, device_ids=[env.device.index] if env.device.type == "cuda" else None)
    return model, net, n_parameters


def _resumed(out_dir: Path, identity: Mapping[str, object], model: nn.Module,
             opt: torch.optim.Optimizer) -> tuple[list[EpochScores], list[dict[str, float]], float]:
    """(epochs, log lines, seconds) of the fine-tuning checkpoint in ``out_dir``, loaded into model and opt."""
    mismatch = "another fine-tuning configuration; delete it or use another output folder"
    found = checkpoint.matching(out_dir / DCP_NAME, identity, mismatch=mismatch)
    if found is None:
        if (out_dir / LEGACY_NAME).exists():
            raise TrainError(f"{out_dir / LEGACY_NAME} is a checkpoint of an earlier version (one file); delete "
                             "it to fine-tune again")
        return [], [], 0.0
    path, meta = found
    checkpoint.load(path, model, opt)
    try:
        epochs = [EpochScores(int(e["epoch"]), float(e["train_loss"]), dict(e["scores"])) for e in meta["epochs"]]
        return epochs, list(meta["log"]), float(meta["seconds"])
    except (KeyError, TypeError, ValueError) as e:
        raise TrainError(f"checkpoint {path} has a malformed {checkpoint.META}: {e}") from None


def run_finetune(cfg: FinetuneConfig, data: FinetuneData, encoder: dict[str, torch.Tensor], shape: ViTShape,
                 image_px: int, out_dir: Path, env: dist.DistEnv, *, identity: Mapping[str, object],
                 reporter: Reporter | None = None) -> FinetuneResult:
    reporter = reporter or NullReporter()
    out_dir.mkdir(parents=True, exist_ok=True)
    precision = resolve_precision(cfg.precision, env.device)
    model, net, n_parameters = _classifier(cfg, encoder, shape, image_px, len(data.train.classes), env, precision)
    opt = parallel.adamw(param_groups(model, cfg.weight_decay), env.device, lr=cfg.lr)  # after sharding
    epochs, log_lines, seconds = _resumed(out_dir, identity, model, opt)
    if epochs:
        reporter.note(f"fine-tuning resumed after epoch {epochs[-1].epoch}")
    if env.is_main:
        atomic_write_bytes(out_dir / LOG_NAME, "".join(json.dumps(r) + "\n" for r in log_lines).encode())
    train_set = LabelledImages(data.train, data.keep, image_px, train=True, seed=cfg.seed,
                               crop_min_scale=cfg.crop_min_scale, flip=cfg.flip)
    n = len(data.keep)
    B = min(cfg.batch_size, n - n % env.world) if n >= env.world else 0
    if B < 2 * env.world:  # BatchNorm needs at least two samples per process
        raise TrainError(f"{n} labelled images are too few for a batch on {env.world} process(es)")
    eval_sets = [(cfg.eval_set_name(), data.val), *((s.name, s) for s in data.ood)]
    reporter.start("finetune", cfg.epochs, "epochs")
    reporter.update(len(epochs), "")
    for epoch in range(len(epochs), cfg.epochs):
        t0 = time.perf_counter()
        train_loss = _epoch(cfg, model, net, opt, train_set, epoch, B, env, precision)
        scores = {name: evaluate(model, s, image_px, env, precision, cfg.batch_size, cfg.workers)
                  for name, s in eval_sets}
        seconds += time.perf_counter() - t0
        epochs.append(EpochScores(epoch, train_loss, scores))
        main = scores[cfg.eval_set_name()]
        line: dict[str, float] = {"train_lr": cfg.lr, "train_loss": train_loss, "test_loss": main["loss"],
                                  "test_acc1": 100 * main["top1"], "test_acc5": 100 * main["top5"], "epoch": epoch,
                                  "n_parameters": n_parameters}
        for name, _ in eval_sets[1:]:
            line[f"{name}_acc1"] = 100 * scores[name]["top1"]
            line[f"{name}_acc5"] = 100 * scores[name]["top5"]
        log_lines.append(line)
        if env.is_main:
            with open(out_dir / LOG_NAME, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        meta: FinetuneMeta = {"identity": identity, "epochs": [_record(e) for e in epochs], "log": log_lines,
                              "seconds": seconds}
        checkpoint.save(out_dir / DCP_NAME, model, opt, meta, env)  # every rank writes its part
        reporter.update(epoch + 1, f"val top-1 {100 * main['top1']:.1f}%")
    reporter.stop()
    result = FinetuneResult(epochs, n_parameters, precision, seconds)
    result.evals, result.history = summarise(cfg, epochs, [name for name, _ in eval_sets],
                                             n_classes=len(data.train.classes),
                                             top1_only={s.name for s in data.ood if s.groups is not None})
    return result


def _record(e: EpochScores) -> EpochRecord:
    return {"epoch": e.epoch, "train_loss": e.train_loss, "scores": e.scores}


def _epoch(cfg: FinetuneConfig, model: ViTClassifier, net: nn.Module, opt: torch.optim.Optimizer,
           train_set: LabelledImages, epoch: int, B: int, env: dist.DistEnv, precision: str) -> float:
    """One epoch of global batches of ``B`` (the incomplete last batch is dropped, as MAE's loaders do);
    returns the mean training loss over the ranks and batches."""
    n = len(train_set)
    b = B // env.world
    train_set.epoch = epoch
    g = torch.Generator().manual_seed(mix_seed(cfg.seed, ORDER_SALT, epoch))
    order = torch.randperm(n, generator=g).tolist()
    model.train()
    if cfg.linear_probe:
        model.encoder.eval()
    loss_sum = torch.zeros(1, dtype=torch.float64, device=env.device)
    steps = n // B
    chunks = [order[s * B + env.rank * b: s * B + (env.rank + 1) * b] for s in range(steps)]
    loader = torch.utils.data.DataLoader(train_set, batch_sampler=chunks, num_workers=cfg.workers,
                                         pin_memory=env.device.type == "cuda")
    bad = torch.zeros((), dtype=torch.bool, device=env.device)
    for imgs, labels in loader:
        imgs, labels = normalize(imgs.to(env.device, non_blocking=True)), labels.to(env.device)
        with autocast(precision, env.device):
            logits = net(imgs)
        loss = F.cross_entropy(logits.float(), labels)
        bad |= ~torch.isfinite(loss)  # read once, after the epoch: no step waits on the host
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_sum += loss.detach().double()
    if bool(bad.item()):
        raise TrainDiverged(f"non-finite loss in fine-tuning epoch {epoch}")
    dist.all_reduce_sum(loss_sum, env)
    return loss_sum.item() / (steps * env.world)


def summarise(cfg: FinetuneConfig, epochs: list[EpochScores], set_names: list[str], *, n_classes: int,
              top1_only: set[str] | frozenset[str] = frozenset()
              ) -> tuple[list[FinetuneEval], list[FinetuneHistoryPoint]]:
    """Run-record evals (best and last epoch, every set) and history (keys prefixed by the protocol).

    Sets in ``top1_only`` (16-class sets, scored as humans answered) record top-1 only. When every OOD set of
    Geirhos et al. 2021 was evaluated under its run-database name, their mean top-1 is recorded too (as
    ``mvh-mean``, the eval set of the target ``human-ood-mean``), at the same epochs."""
    protocol, main = cfg.protocol_name(), cfg.eval_set_name()
    # max() keeps the first of equal values: the first epoch reaching the best validation top-1.
    best = max(epochs, key=lambda e: e.scores[main]["top1"])
    last = epochs[-1]
    metrics = ("top1", "top5") if n_classes > 5 else ("top1",)  # top-5 of <= 5 classes is always 1
    ood_names = [s.eval_set for s in human_ood().sets]
    evals: list[FinetuneEval] = []
    for selection, ep in (("best-epoch", best), ("last-epoch", last)):
        for name in set_names:
            for metric in ("top1",) if name in top1_only else metrics:
                evals.append({"protocol": protocol, "eval_set": name, "metric": metric, "selection": selection,
                              "value": ep.scores[name][metric], "epoch": ep.epoch, "n_epochs": len(epochs)})
        if set(ood_names) <= set(set_names):
            mean = math.fsum(ep.scores[n]["top1"] for n in ood_names) / len(ood_names)
            evals.append({"protocol": protocol, "eval_set": MEAN_EVAL_SET, "metric": "top1", "selection": selection,
                          "value": mean, "epoch": ep.epoch, "n_epochs": len(epochs)})
    history: list[FinetuneHistoryPoint] = []
    for ep in epochs:
        history.append({"phase": "finetune", "key": f"{protocol}/train_loss", "step": ep.epoch,
                        "value": ep.train_loss if math.isfinite(ep.train_loss) else None})
        for name in set_names:
            for metric in ("loss", *(("top1",) if name in top1_only else metrics)):
                history.append({"phase": "finetune", "key": f"{protocol}/{name}/{metric}", "step": ep.epoch,
                                "value": ep.scores[name][metric]})
    return evals, history
