"""MAE pretraining loop: AdamW, constant lr (or warmup + cosine), bf16 autocast, DDP or FSDP2, gradient
accumulation, exact resume.

One step processes the global batch B: sample indices [t B, (t + 1) B) of the seeded stream, split evenly over
the ranks and, on each rank, into ``accum`` micro-batches (``train.config.Batches``). Each sample's crop, flip
and mask depend only on (seed, index), and every sample hides the same number of patches, so the mean of the
micro-batch losses is the loss of the whole batch and the accumulated, rank-averaged gradient is its
gradient: N processes x A micro-batches train what one process with the whole batch would, to rounding.
Under DDP the gradients are all-reduced once per step (``no_sync`` on the other micro-batches); under FSDP2
they are reduce-scattered after every micro-batch, which keeps them sharded (memory is why one shards).

Nothing in a step waits on the host: the window's loss and gradient-norm sums and the first non-finite step
stay on the device (``Window``) until a log line or a checkpoint reads them, every ``log_every`` and
``ckpt_every`` steps. A non-finite loss or gradient fails the run there, naming its step. A ``minutes``
budget is read from the host clock every step by one process, and at every log line by several (all must
stop at the same step).

Outputs in the run folder: ``pretrain.dcp/`` (``train.checkpoint``: every ``ckpt_every`` steps, and the
model alone when finished) and ``pretrain_log.txt``, JSON lines in the MAE format (``train_loss``,
``train_lr``, ``it``) plus ``grad_norm``; ``it`` is the 0-based index of the last step of the logged window.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from runs_db.archs import get_arch
from train import checkpoint, dist, parallel
from train.checkpoint import PretrainLogRow, PretrainMeta
from train.config import Batches, PretrainConfig
from train.data import FrameCorpus, MaskedStream, PretrainStream, StreamBatches, Subset, normalize
from train.errors import TrainDiverged, TrainError
from train.model import MaskedAutoencoder, check_mask_ratio, mix_seed
from train.runtime import (
    NullReporter,
    Reporter,
    autocast,
    lr_at,
    param_groups,
    resolve_precision,
    use_attention_kernel_for,
)

__all__ = ["DCP_NAME", "LOG_NAME", "PretrainResult", "accumulate", "build_mae", "run_pretrain"]
DCP_NAME = "pretrain.dcp"
LEGACY_NAME = "pretrain.ckpt"  # the single-file checkpoint of versions before issue 22
LOG_NAME = "pretrain_log.txt"
MODEL_SEED_SALT = 0x696E6974  # "init"
NO_BAD_STEP = 2**62


@dataclass
class PretrainResult:
    steps: int
    global_batch: int
    history: list[PretrainLogRow]  # one per logged window
    seconds: float  # wall-clock of the training steps, all jobs of a resumed run together
    precision: str
    checkpoint: Path
    batches: Batches | None = None  # how this job split the global batch (None: found finished)
    images_per_s: float | None = None  # this job's steady-state throughput (first step excluded)

    @property
    def samples_seen(self) -> int:
        return self.steps * self.global_batch


def build_mae(cfg: PretrainConfig) -> MaskedAutoencoder:
    shape = get_arch(cfg.arch)
    check_mask_ratio((cfg.image_px // shape.patch_px) ** 2, cfg.mask_ratio)
    return MaskedAutoencoder(shape, cfg.image_px, decoder_dim=cfg.decoder_dim, decoder_depth=cfg.decoder_depth,
                             decoder_heads=cfg.decoder_heads, norm_pix_loss=cfg.norm_pix_loss)


def _log_text(history: Sequence[PretrainLogRow]) -> bytes:
    lines = [json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
             for row in history]
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


def _grad_sync(net: nn.Module, sync: bool) -> contextlib.AbstractContextManager[object]:
    """DDP all-reduces gradients in the last micro-batch's backward only; FSDP2 and one process as they are."""
    if not sync and isinstance(net, DistributedDataParallel):
        return net.no_sync()
    return contextlib.nullcontext()


def accumulate(net: nn.Module, micro_batches: Iterable[tuple[Tensor, Tensor]], accum: int, mask_ratio: float,
               precision: str, device: torch.device) -> Tensor:
    """Forward and backward of one step's ``accum`` micro-batches (images normalised, mask noise): leaves the
    gradient of their mean loss and returns that loss (a device tensor: nothing waits on the host)."""
    total = torch.zeros((), device=device)
    for k, (imgs, noise) in enumerate(micro_batches):
        with _grad_sync(net, k == accum - 1):
            with autocast(precision, device):
                loss, _, _ = net(imgs, noise, mask_ratio)
            (loss / accum).backward()
        total += loss.detach()
    return total / accum


def grad_norm(params: Sequence[nn.Parameter]) -> Tensor:
    """The 2-norm of the whole gradient (gathered from the shards under FSDP2), as a device tensor."""
    grads = [p.grad for p in params if p.grad is not None]
    return parallel.as_full(torch.nn.utils.get_total_norm(grads)).float()


class Window:
    """Sums over the steps since the last log line, kept on the device; ``flush`` reads them (one host sync)."""

    def __init__(self, device: torch.device, saved: Sequence[float] = (0.0, 0.0, 0)) -> None:
        self.sums = torch.tensor([float(saved[0]), float(saved[1])], dtype=torch.float64, device=device)
        self.steps = int(saved[2])
        self.first_bad = torch.full((), NO_BAD_STEP, dtype=torch.int64, device=device)

    def add(self, step: int, loss: Tensor, norm: Tensor) -> None:
        pair = torch.stack([loss.detach().double(), norm.detach().double()])
        self.sums += pair
        finite = torch.isfinite(pair).all()
        self.first_bad = torch.where(finite, self.first_bad, torch.clamp(self.first_bad, max=step))
        self.steps += 1

    def _reduced(self, env: dist.DistEnv) -> tuple[float, float]:
        """The sums averaged over the ranks (one host sync); a non-finite step anywhere raises
        ``TrainDiverged`` on every rank."""
        sums, bad = self.sums.clone(), self.first_bad.clone()
        if env.distributed:
            tdist.all_reduce(sums)
            tdist.all_reduce(bad, op=tdist.ReduceOp.MIN)
            sums /= env.world
        loss_sum, norm_sum = sums.tolist()
        if int(bad.item()) != NO_BAD_STEP:
            raise TrainDiverged(f"non-finite loss at pretraining step {int(bad.item())}")
        return loss_sum, norm_sum

    def flush(self, env: dist.DistEnv) -> tuple[float, float, int]:
        """(loss sum, grad-norm sum, steps) of the window, which then starts again."""
        loss_sum, norm_sum = self._reduced(env)
        steps, self.steps = self.steps, 0
        self.sums.zero_()
        return loss_sum, norm_sum, steps

    def saved(self, env: dist.DistEnv) -> list[float]:
        """The window for a checkpoint: its sums averaged over the ranks, and its steps."""
        return [*self._reduced(env), self.steps]


@dataclass
class _Run:
    """What a job of ``run_pretrain`` carries from step to step."""

    cfg: PretrainConfig
    out_dir: Path
    env: dist.DistEnv
    identity: Mapping[str, object]
    model: MaskedAutoencoder
    opt: torch.optim.Optimizer
    window: Window
    step: int = 0
    seconds: float = 0.0
    history: list[PretrainLogRow] | None = None

    def meta(self, done: bool) -> PretrainMeta:
        return {"identity": self.identity, "step": self.step, "seconds": self.seconds,
                "history": list(self.history or []), "done": done,
                "window": [0.0, 0.0, 0.0] if done else self.window.saved(self.env)}

    def save(self, done: bool) -> None:
        meta = self.meta(done)  # reads the window first: a non-finite step is never checkpointed
        checkpoint.save(self.out_dir / DCP_NAME, self.model, None if done else self.opt, meta, self.env)

    def log(self, lr: float) -> PretrainLogRow:
        loss_sum, norm_sum, n = self.window.flush(self.env)
        row: PretrainLogRow = {"train_loss": loss_sum / n, "train_lr": lr, "it": self.step - 1,
                               "grad_norm": norm_sum / n}
        self.history = [*(self.history or []), row]
        if self.env.is_main:
            with open(self.out_dir / LOG_NAME, "a", encoding="utf-8") as f:
                f.write(_log_text([row]).decode())
        return row


def _found(out_dir: Path, identity: Mapping[str, object]) -> tuple[Path, dict[str, Any]] | None:
    """The run's checkpoint, if any (of this identity; an earlier version's single file is refused)."""
    mismatch = "another configuration or data; use another --out or delete that folder"
    found = checkpoint.matching(out_dir / DCP_NAME, identity, mismatch=mismatch)
    if found is None and (out_dir / LEGACY_NAME).exists():
        raise TrainError(f"{out_dir / LEGACY_NAME} is a checkpoint of an earlier version (one file); resume it "
                         "with that version, or use another --out")
    return found


def _start(cfg: PretrainConfig, out_dir: Path, env: dist.DistEnv, identity: Mapping[str, object],
           precision: str, found: tuple[Path, dict[str, Any]] | None) -> tuple[_Run, nn.Module]:
    """The model (wrapped for the devices), its optimizer and the progress of a resumed run."""
    torch.manual_seed(mix_seed(cfg.seed, MODEL_SEED_SALT))
    model = use_attention_kernel_for(build_mae(cfg).to(env.device), env.device)
    net = parallel.wrap(model, env, fsdp=cfg.fsdp, activation_checkpointing=cfg.activation_checkpointing,
                        compile=parallel.resolve_compile(cfg.compile, env.device), precision=precision)
    # after sharding: the optimizer must hold the sharded parameters
    opt = parallel.adamw(param_groups(model, cfg.weight_decay), env.device, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    run = _Run(cfg, out_dir, env, identity, model, opt, Window(env.device), history=[])
    if found is not None:
        progress = checkpoint.progress_of(*found)
        checkpoint.load(found[0], model, opt)
        run.step, run.seconds, run.history = progress["step"], progress["seconds"], progress["history"]
        run.window = Window(env.device, progress["window"])
    if env.is_main:  # the log mirrors the checkpoint: lines a killed job wrote after it are dropped
        checkpoint.atomic_write_bytes(out_dir / LOG_NAME, _log_text(run.history or []))
    return run, net


def _micro_batches(batches: Iterator[tuple[Tensor, Tensor]], accum: int,
                   device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
    for imgs, noise in itertools.islice(batches, accum):
        yield normalize(imgs.to(device, non_blocking=True)), noise.to(device, non_blocking=True)


def run_pretrain(cfg: PretrainConfig, corpus: FrameCorpus, subset: Subset, out_dir: Path, env: dist.DistEnv,
                 *, identity: Mapping[str, object], reporter: Reporter | None = None,
                 stop_after: int | None = None) -> PretrainResult:
    """Train (or resume, or return the finished result of) the MAE described by ``cfg`` in ``out_dir``.

    ``identity`` (the hashed config and data digest) must match a checkpoint found there. ``stop_after``
    ends this job after that many steps without finishing the run (tests of resume use it).
    """
    reporter = reporter or NullReporter()
    split = cfg.batches(env.world)
    precision = resolve_precision(cfg.precision, env.device)
    total = cfg.total_steps()
    found = _found(out_dir, identity)
    result = PretrainResult(0, cfg.global_batch, [], 0.0, precision, out_dir / DCP_NAME, split)
    done = checkpoint.progress_of(*found) if found is not None else None
    if done is not None and done["done"]:  # nothing to train: no model to build or shard
        reporter.note(f"pretraining already done ({done['step']} steps)")
        result.steps, result.seconds, result.history, result.batches = done["step"], done["seconds"], \
            done["history"], None
        return result
    run, net = _start(cfg, out_dir, env, identity, precision, found)
    if found is not None:
        reporter.note(f"resumed from {found[0]} at step {run.step}")
    stream = MaskedStream(PretrainStream(corpus, subset, cfg.image_px, cfg.seed), run.model.n_patches)
    remaining = (total - run.step) if total is not None else 10**12
    loader = torch.utils.data.DataLoader(
        stream, batch_sampler=StreamBatches(cfg.global_batch, env.rank, env.world, run.step, remaining, split.accum),
        num_workers=cfg.workers, pin_memory=env.device.type == "cuda",
    )
    images_per_s = _train(run, net, iter(loader), split, precision, total, reporter, stop_after)
    result.steps, result.seconds, result.history = run.step, run.seconds, list(run.history or [])
    result.images_per_s = images_per_s
    return result


def _train(run: _Run, net: nn.Module, batches: Iterator[tuple[Tensor, Tensor]], split: Batches, precision: str,
           total: int | None, reporter: Reporter, stop_after: int | None) -> float | None:
    """The steps of this job; the checkpoint when the run finishes. Returns the steady images/s."""
    cfg, env = run.cfg, run.env
    params = [p for p in run.model.parameters() if p.requires_grad]
    budget_s = cfg.minutes * 60.0 if cfg.minutes is not None else None
    reporter.start("pretrain", budget_s if budget_s is not None else total, "s" if budget_s else "steps")
    reporter.update(run.seconds if budget_s else run.step, "")
    steady_t0, steady_steps, info = None, 0, ""
    t_last = time.perf_counter()  # wall-clock per step includes waiting for data
    run.model.train()
    while True:
        lr = lr_at(run.step, lr=cfg.lr, schedule=cfg.schedule, warmup=cfg.warmup_steps, total=total,
                   min_lr=cfg.min_lr)
        for g in run.opt.param_groups:
            g["lr"] = lr
        loss = accumulate(net, _micro_batches(batches, split.accum, env.device), split.accum, cfg.mask_ratio,
                          precision, env.device)
        norm = grad_norm(params)
        run.opt.step()
        run.opt.zero_grad(set_to_none=True)
        run.window.add(run.step, loss, norm)
        run.step += 1
        now = time.perf_counter()
        run.seconds += now - t_last
        t_last = now
        if steady_t0 is None:
            steady_t0 = now
        else:
            steady_steps += 1
        logging = run.step % cfg.log_every == 0
        last = total is not None and run.step >= total
        if budget_s is not None and (logging or not env.distributed):
            last = dist.broadcast_flag(run.seconds >= budget_s, env)
        if logging or last:
            row = run.log(lr)
            info = f"loss {row['train_loss']:.4f}  lr {lr:.2e}"
        reporter.update(run.seconds if budget_s else run.step, info)
        if last:
            break
        if run.step % cfg.ckpt_every == 0:
            run.save(done=False)
        if stop_after is not None and run.step >= stop_after:
            reporter.stop()
            return None
    reporter.stop()
    rate = steady_steps * split.global_batch / (time.perf_counter() - steady_t0) if steady_steps and steady_t0 \
        else None
    run.save(done=True)
    return rate
