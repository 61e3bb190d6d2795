"""MAE pretraining loop: AdamW, constant lr (or warmup + cosine), bf16 autocast, DDP, exact resume.

One step processes global batch B: sample indices [t B, (t + 1) B) of the seeded stream, split evenly over
ranks. Each sample's crop, flip and mask depend only on (seed, index), and every sample hides the same
number of patches, so the mean of the per-rank losses is the single-process loss of the whole batch and
DDP's averaged gradient is its gradient: N processes and one process give the same run.

Outputs in the run folder: ``pretrain.ckpt`` (atomic, every ``ckpt_every`` steps and at the end) and
``pretrain_log.txt``, JSON lines in the MAE format (``train_loss``, ``train_lr``, ``it``) plus
``grad_norm``; ``it`` is the 0-based index of the last step of the logged window.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from runs_db.archs import get_arch
from train import dist, parallel
from train.checkpoint import PretrainLogRow, PretrainMeta, atomic_write_bytes
from train.config import PretrainConfig
from train.data import FrameCorpus, PretrainStream, StreamBatches, Subset, normalize
from train.errors import TrainDiverged, TrainError
from train.model import MaskedAutoencoder, check_mask_ratio, mask_noise, mix_seed
from train.resume import CKPT_NAME, DCP_NAME, finished_state, restore, save
from train.runtime import (
    NullReporter,
    Reporter,
    autocast,
    lr_at,
    param_groups,
    param_names,
    resolve_precision,
    use_attention_kernel_for,
)

__all__ = ["CKPT_NAME", "DCP_NAME", "LOG_NAME", "PretrainResult", "build_mae", "run_pretrain"]
LOG_NAME = "pretrain_log.txt"
MODEL_SEED_SALT = 0x696E6974  # "init"


@dataclass
class PretrainResult:
    steps: int
    global_batch: int
    history: list[PretrainLogRow]  # one per logged window
    seconds: float  # wall-clock of the training steps, all jobs of a resumed run together
    precision: str
    checkpoint: Path
    images_per_s: float | None = None  # this job's steady-state throughput (first step excluded)
    encoder_state: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def samples_seen(self) -> int:
        return self.steps * self.global_batch


def build_mae(cfg: PretrainConfig) -> MaskedAutoencoder:
    shape = get_arch(cfg.arch)
    check_mask_ratio((cfg.image_px // shape.patch_px) ** 2, cfg.mask_ratio)
    return MaskedAutoencoder(shape, cfg.image_px, decoder_dim=cfg.decoder_dim, decoder_depth=cfg.decoder_depth,
                             decoder_heads=cfg.decoder_heads, norm_pix_loss=cfg.norm_pix_loss)


def _log_text(history: Sequence[PretrainLogRow]) -> bytes:
    import json

    lines = [json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()})
             for row in history]
    return ("\n".join(lines) + ("\n" if lines else "")).encode()


def encoder_state(model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("encoder."): v.detach().cpu().clone() for k, v in model_state.items()
            if k.startswith("encoder.")}


def run_pretrain(cfg: PretrainConfig, corpus: FrameCorpus, subset: Subset, out_dir: Path, env: dist.DistEnv,
                 *, identity: Mapping[str, object], reporter: Reporter | None = None,
                 stop_after: int | None = None) -> PretrainResult:
    """Train (or resume, or return the finished result of) the MAE described by ``cfg`` in ``out_dir``.

    ``identity`` (the hashed config and data digest) must match a checkpoint found there. ``stop_after``
    ends this job after that many steps without finishing the run (tests of resume use it).
    """
    reporter = reporter or NullReporter()
    ckpt_path = out_dir / CKPT_NAME
    B = cfg.batch_size
    if B % env.world:
        raise TrainError(f"global batch {B} is not divisible by the {env.world} processes")
    precision = resolve_precision(cfg.precision, env.device)
    total = cfg.total_steps()

    mismatch = "another configuration or data; use another --out or delete that folder"
    finished = finished_state(out_dir, identity, mismatch=mismatch)
    if finished is not None:  # nothing to train: no model to build or shard
        reporter.note(f"pretraining already done ({finished['step']} steps)")
        result = PretrainResult(int(finished["step"]), B, list(finished["history"]), float(finished["seconds"]),
                                precision, ckpt_path)
        result.encoder_state = encoder_state(finished["model"])
        return result

    torch.manual_seed(mix_seed(cfg.seed, MODEL_SEED_SALT))
    model = use_attention_kernel_for(build_mae(cfg).to(env.device), env.device)
    sharded = cfg.fsdp and env.distributed
    net = parallel.wrap(model, env, fsdp=cfg.fsdp, activation_checkpointing=cfg.activation_checkpointing,
                        compile=parallel.resolve_compile(cfg.compile, env.device), precision=precision)
    names = param_names(model)  # after sharding: the optimizer must hold the sharded parameters
    opt = parallel.adamw(param_groups(model, cfg.weight_decay), env.device, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    step, seconds = 0, 0.0
    history: list[PretrainLogRow] = []
    window: list[float] = [0.0, 0.0, 0]  # loss sum, grad-norm sum, steps since the last log line
    state = restore(out_dir, identity, model, opt, names=names, sharded_model=sharded, mismatch=mismatch)
    if state is not None:
        step, seconds, history = int(state["step"]), float(state["seconds"]), list(state["history"])
        window = list(state["window"])
        reporter.note(f"resumed from {out_dir} at step {step}")
    if env.is_main:  # the log mirrors the checkpoint: lines a killed job wrote after it are dropped
        atomic_write_bytes(out_dir / LOG_NAME, _log_text(history))

    def checkpoint(finished: bool) -> dict[str, torch.Tensor]:
        progress: PretrainMeta = {"identity": identity, "step": step, "seconds": seconds, "history": history,
                                  "window": window, "done": finished}
        return save(out_dir, model, opt, progress, env, fsdp=cfg.fsdp)

    result = PretrainResult(step, B, history, seconds, precision, ckpt_path)
    stream = PretrainStream(corpus, subset, cfg.image_px, cfg.seed)
    remaining = (total - step) if total is not None else 10**12
    loader = torch.utils.data.DataLoader(
        stream, batch_sampler=StreamBatches(B, env.rank, env.world, step, remaining),
        num_workers=cfg.workers, pin_memory=env.device.type == "cuda",
    )
    params = [p for p in model.parameters() if p.requires_grad]
    budget_s = cfg.minutes * 60.0 if cfg.minutes is not None else None
    reporter.start("pretrain", budget_s if budget_s is not None else total, "s" if budget_s else "steps")
    reporter.update(seconds if budget_s else step, "")
    steady_t0, steady_steps = None, 0
    t_last = time.perf_counter()  # wall-clock per step includes waiting for data
    model.train()
    b = B // env.world
    for batch in loader:
        imgs = normalize(batch.to(env.device, non_blocking=True))
        ids = range(step * B + env.rank * b, step * B + (env.rank + 1) * b)
        noise = mask_noise(ids, model.n_patches, cfg.seed).to(env.device)
        lr = lr_at(step, lr=cfg.lr, schedule=cfg.schedule, warmup=cfg.warmup_steps, total=total, min_lr=cfg.min_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        with autocast(precision, env.device):
            loss, _, _ = net(imgs, noise, cfg.mask_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = parallel.as_full(torch.nn.utils.clip_grad_norm_(params, float("inf")))
        stats = torch.stack([loss.detach().float(), grad_norm.detach().float()])
        if not torch.isfinite(stats).all():
            bad = torch.ones(1, device=env.device)
        else:
            bad = torch.zeros(1, device=env.device)
        if env.distributed:
            dist.all_reduce_sum(bad, env)
        if bad.item() > 0:
            history.append({"train_loss": float("nan"), "train_lr": lr, "it": step, "grad_norm": float("nan")})
            if env.is_main:
                atomic_write_bytes(out_dir / LOG_NAME, _log_text(history))
            raise TrainDiverged(f"non-finite loss at pretraining step {step}")
        opt.step()
        loss_v, gn_v = stats.tolist()
        window[0] += loss_v
        window[1] += gn_v
        window[2] += 1
        now = time.perf_counter()
        seconds += now - t_last
        t_last = now
        step += 1
        if steady_t0 is None:
            steady_t0 = time.perf_counter()
        else:
            steady_steps += 1
        last = (total is not None and step >= total)
        if budget_s is not None:
            last = dist.broadcast_flag(seconds >= budget_s, env)
        if step % cfg.log_every == 0 or last:
            sums = torch.tensor(window[:2], dtype=torch.float64)
            if env.distributed:  # the loss of the whole global batch = mean over ranks
                dist.all_reduce_sum(sums, env)
                sums /= env.world
            n = window[2]
            row: PretrainLogRow = {"train_loss": sums[0].item() / n, "train_lr": lr, "it": step - 1,
                                   "grad_norm": sums[1].item() / n}
            history.append(row)
            window = [0.0, 0.0, 0]
            if env.is_main:
                with open(out_dir / LOG_NAME, "a", encoding="utf-8") as f:
                    f.write(_log_text([row]).decode())
        reporter.update(seconds if budget_s else step, f"loss {loss_v:.4f}  lr {lr:.2e}")
        if last:
            break
        if step % cfg.ckpt_every == 0:
            checkpoint(False)
        if stop_after is not None and step >= stop_after:
            reporter.stop()
            result.steps, result.seconds = step, seconds
            return result
    reporter.stop()
    if steady_t0 is not None and steady_steps:
        result.images_per_s = steady_steps * B / (time.perf_counter() - steady_t0)
    full = checkpoint(True)
    result.steps, result.seconds, result.history = step, seconds, history
    result.encoder_state = encoder_state(full)
    return result
