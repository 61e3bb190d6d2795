"""The distributed part of the GPU check (issue 22), run by ``bench/gpu_check.sh`` under ``torchrun``.

Every process runs every check; rank 0 writes ``OUT/dist_check.json`` and prints one line per check. One
GPU is enough: a process group is made even for one process (NCCL on CUDA), so FSDP2 shards over it and
SyncBatchNorm runs; with several GPUs the checks span them all.

1. ``masks``: the per-sample seeded masks equal the golden recorded before issue 22 (every float32 bit);
2. ``accumulation``: one step of N processes x A micro-batches (replicated, and FSDP2-sharded) against one
   process seeing the whole global batch, fp32 with TF32 off: loss and every gradient to 1e-5 (relative to
   the largest gradient entry);
3. ``fsdp_compile_bf16``: the first run of compile + FSDP2 over NCCL in bf16 (per-block compile, bf16
   gathers, fp32 reductions) with accumulation: its first loss against the eager unsharded bf16 step, then
   its images/s and MFU against the datasheet peak;
4. ``syncbn``: the fine-tuning head's BatchNorm as SyncBatchNorm on CUDA (``GlobalBatchNorm1d`` on CPUs):
   loss and head gradients against plain BatchNorm on the whole batch, to 1e-5;
5. ``resume_export``: the real pipeline (``run_pretrain`` on a folder of synthetic frames) with FSDP2 and
   accumulation, stopped after 2 of 4 steps and resumed with another split, against an uninterrupted run
   (1e-4 in loss and gradient norm); then the checkpoint exported into one file, and fine-tuning from the
   file and from the checkpoint reach the same accuracies.

    torchrun --standalone --nproc_per_node 1 bench/gpu_dist_check.py --out gpu_check_out
    torchrun --standalone --nproc_per_node 2 bench/gpu_dist_check.py --out /tmp/smoke --smoke   # CPU, gloo
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as tdist
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runs_db.archs import ViTShape, get_arch, mae_train_flops_per_image
from tests.train_masks_golden import RECORD, compute
from train import dist, parallel
from train.checkpoint import export, load_weights
from train.config import FinetuneConfig, PretrainConfig
from train.data import discover, select_subset
from train.finetune import prepare_finetune_data, run_finetune
from train.model import MaskedAutoencoder, MaskNoise, ViTClassifier, build_vit
from train.pretrain import accumulate, run_pretrain

Check = Callable[[argparse.Namespace, dist.DistEnv], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """A model and global batch: ``small`` for the equality checks, ``big`` for compile + FSDP2's speed."""

    shape: ViTShape
    image_px: int
    global_batch: int
    decoder: tuple[int, int, int] = (512, 8, 16)

    def model(self, device: torch.device) -> MaskedAutoencoder:
        torch.manual_seed(0)
        d, depth, heads = self.decoder
        return MaskedAutoencoder(self.shape, self.image_px, decoder_dim=d, decoder_depth=depth,
                                 decoder_heads=heads).to(device)

    def batch(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(5)
        imgs = torch.randn(self.global_batch, 3, self.image_px, self.image_px, generator=g)
        grid = self.image_px // self.shape.patch_px
        return imgs.to(device), MaskNoise(grid * grid, 1).rows(range(self.global_batch)).to(device)

    def share(self, env: dist.DistEnv, accum: int, imgs: torch.Tensor,
              noise: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's micro-batches of the global batch, as ``train.data.StreamBatches`` splits it."""
        b = self.global_batch // env.world
        m = b // accum
        return [(imgs[s:s + m], noise[s:s + m]) for s in (env.rank * b + k * m for k in range(accum))]


def cases(smoke: bool) -> tuple[Case, Case]:
    if smoke:
        tiny = Case(get_arch("vit_pico8"), 32, 8, (32, 2, 2))
        return tiny, tiny
    return Case(get_arch("vit_b14"), 224, 32), Case(get_arch("vit_h14"), 224, 256)


def setup(smoke: bool) -> dist.DistEnv:
    """This process's device and a process group, also for one process (FSDP2 and SyncBatchNorm need one)."""
    env = dist.setup("cpu" if smoke else None)
    if not tdist.is_initialized():
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", "29512")
        tdist.init_process_group("nccl" if env.device.type == "cuda" else "gloo", rank=0, world_size=1)
    torch.backends.cuda.matmul.allow_tf32 = False  # the fp32 checks: fp32 arithmetic
    torch.backends.cudnn.allow_tf32 = False
    return env


def _mean_over_ranks(x: float, env: dist.DistEnv) -> float:
    t = torch.tensor([x], dtype=torch.float64, device=env.device)
    tdist.all_reduce(t)
    return t.item() / env.world


def check_masks(args: argparse.Namespace, env: dist.DistEnv) -> dict[str, Any]:
    recorded = json.loads(RECORD.read_text())
    got = compute()
    differ = sorted(k for k in recorded if got.get(k) != recorded[k])
    return {"ok": not differ, "cases": len(recorded), "differ": differ}


def check_accumulation(args: argparse.Namespace, env: dist.DistEnv) -> dict[str, Any]:
    case = cases(args.smoke)[0]
    imgs, noise = case.batch(env.device)
    whole = case.model(env.device)
    ref = accumulate(whole, iter([(imgs, noise)]), 1, 0.75, "fp32", env.device).item()
    ref_grads = {n: p.grad for n, p in whole.named_parameters() if p.grad is not None}
    scale = max(g.abs().max().item() for g in ref_grads.values())
    out: dict[str, Any] = {"world": env.world, "ok": True}
    accum = max(1, 4 // env.world)
    for fsdp in (False, True):
        model = case.model(env.device)
        net = parallel.shard(model, env, "fp32") if fsdp else parallel.wrap(
            model, env, fsdp=False, activation_checkpointing=False, compile=False, precision="fp32")
        loss = accumulate(net, iter(case.share(env, accum, imgs, noise)), accum, 0.75, "fp32", env.device)
        worst = max((parallel.as_full(p.grad) - ref_grads[n]).abs().max().item()
                    for n, p in model.named_parameters() if p.grad is not None)
        got = {"accum": accum, "loss_rel_err": abs(_mean_over_ranks(loss.item(), env) / ref - 1),
               "grad_err_rel_max": worst / scale}
        out["fsdp" if fsdp else "replicated"] = got
        out["ok"] &= got["loss_rel_err"] < 1e-5 and got["grad_err_rel_max"] < 1e-5
    return out


def check_fsdp_compile_bf16(args: argparse.Namespace, env: dist.DistEnv) -> dict[str, Any]:
    case = cases(args.smoke)[1]
    precision = "bf16" if env.device.type == "cuda" else "fp32"
    imgs, noise = case.batch(env.device)
    accum = 2
    eager = case.model(env.device)
    ref = accumulate(eager, iter(case.share(env, accum, imgs, noise)), accum, 0.75, precision, env.device).item()
    del eager
    model = case.model(env.device)
    net = parallel.shard(model, env, precision, compile=True)
    opt = parallel.adamw(model.parameters(), env.device, lr=1e-4)
    micro = case.share(env, accum, imgs, noise)
    losses, times = [], []
    for _ in range(args.steps + 2):
        if env.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        loss = accumulate(net, iter(micro), accum, 0.75, precision, env.device)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        times.append(time.perf_counter() - t0)
    steady = sorted(times[2:])[len(times[2:]) // 2]
    per_gpu = case.global_batch / env.world / steady
    d, depth, _ = case.decoder
    s = case.shape
    f_img = mae_train_flops_per_image(s.width, s.depth, s.patch_px, case.image_px, 0.75, decoder_dim=d,
                                      decoder_depth=depth).total
    mfu = per_gpu * f_img / (args.peak_tflops * 1e12) if args.peak_tflops else None
    tol = 3e-2 if precision == "bf16" else 1e-5
    ok = abs(losses[0] / ref - 1) < tol and all(x == x and abs(x) != float("inf") for x in losses)
    return {"ok": ok, "arch": case.shape.name, "precision": precision, "world": env.world, "accum": accum,
            "first_loss": losses[0], "eager_loss": ref, "first_step_seconds": times[0], "step_seconds": steady,
            "images_per_s_per_gpu": per_gpu, "mfu_of_datasheet": mfu, "losses": losses}


def check_syncbn(args: argparse.Namespace, env: dist.DistEnv) -> dict[str, Any]:
    """The head's BatchNorm over the global batch (SyncBatchNorm on CUDA): loss and head gradient of N
    processes, each with its share, against plain BatchNorm on the whole batch."""
    shape, px, n = (get_arch("vit_pico8"), 32, 8) if args.smoke else (get_arch("vit_s14"), 112, 64)
    torch.manual_seed(2)
    base = ViTClassifier(build_vit(shape, px), 10).to(env.device)
    synced = ViTClassifier(build_vit(shape, px), 10).to(env.device)
    synced.load_state_dict(base.state_dict())
    parallel.global_batchnorm(synced, env.device)
    g = torch.Generator().manual_seed(7)
    imgs = torch.randn(n, 3, px, px, generator=g).to(env.device)
    labels = torch.randint(0, 10, (n,), generator=g).to(env.device)
    ref = torch.nn.functional.cross_entropy(base(imgs), labels)
    ref.backward()
    b = n // env.world
    mine = slice(env.rank * b, (env.rank + 1) * b)
    loss = torch.nn.functional.cross_entropy(synced(imgs[mine]), labels[mine]) / env.world
    loss.backward()  # this rank's part of the mean; the head's gradient is summed below, as DDP would
    head_params = [p for p in synced.head.parameters() if p.ndim == 2]  # the linear layer's weight
    want_params = [p for p in base.head.parameters() if p.ndim == 2]
    head, want = head_params[0].grad, want_params[0].grad
    assert head is not None and want is not None
    grad = head.clone()
    tdist.all_reduce(grad)
    total = _mean_over_ranks(loss.item(), env) * env.world
    err = (grad - want).abs().max().item() / want.abs().max().item()
    return {"ok": abs(total / ref.item() - 1) < 1e-5 and err < 1e-5, "batchnorm": type(synced.head[0]).__name__,
            "loss_rel_err": abs(total / ref.item() - 1), "head_grad_err_rel_max": err}


def _synthetic_data(root: Path, env: dist.DistEnv) -> tuple[Path, Path]:
    """Random frames and a two-class labelled ImageFolder (dark and light images), written by rank 0."""
    frames, labelled = root / "frames", root / "labelled"
    if env.is_main:
        rng = np.random.default_rng(0)
        frames.mkdir(parents=True, exist_ok=True)
        for i in range(64):
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(frames / f"{i:03d}.png")
            folder = labelled / ("val" if i % 4 == 0 else "train") / str(i % 2)
            folder.mkdir(parents=True, exist_ok=True)
            img = np.clip(rng.normal(60 if i % 2 else 190, 30, (64, 64, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(folder / f"{i:03d}.png")
    dist.barrier(env)
    return frames, labelled


def check_resume_export(args: argparse.Namespace, env: dist.DistEnv) -> dict[str, Any]:
    """``run_pretrain`` (FSDP2, accumulation, DCP) stopped and resumed with another split = uninterrupted;
    fine-tuning from the exported file = from the checkpoint."""
    root = Path(args.out) / "resume_export"
    frames, labelled = _synthetic_data(root, env)
    arch, px = ("vit_pico8", 32) if args.smoke else ("vit_b14", 112)
    decoder = (32, 1, 2) if args.smoke else (256, 2, 8)

    def pretrain(name: str, accum: int, stop_after: int | None = None) -> Any:
        cfg = PretrainConfig(arch=arch, image_px=px, data=[str(frames)], decoder_dim=decoder[0],
                             decoder_depth=decoder[1], decoder_heads=decoder[2], global_batch=16, lr=1e-3, steps=4,
                             log_every=1, ckpt_every=2, precision="fp32", fsdp=True, accum=accum, compile=False)
        corpus = discover(cfg.data, fps=cfg.fps, short_side=round(1.25 * px))
        subset = select_subset(corpus, 1.0, 1)
        return run_pretrain(cfg, corpus, subset, root / name, env, identity={"check": "gpu"}, stop_after=stop_after)

    one, other = max(1, 4 // env.world), max(1, 2 // env.world)
    ref = pretrain("ref", one)
    pretrain("resumed", one, stop_after=2)
    resumed = pretrain("resumed", other)
    worst = max(max(abs(a["train_loss"] / b["train_loss"] - 1), abs(a["grad_norm"] / b["grad_norm"] - 1))
                for a, b in zip(resumed.history, ref.history, strict=True))
    if env.is_main:
        export(root / "resumed", root / "resumed.pt", force=True)
    dist.barrier(env)
    scores = {}
    fcfg = FinetuneConfig(data=str(labelled), name="synthetic", label_fraction=1.0, epochs=1, batch_size=16, lr=1e-3,
                          precision="fp32", crop_min_scale=0.5)
    data = prepare_finetune_data(fcfg)
    for source in ("resumed", "resumed.pt"):
        weights, _ = load_weights(root / source, prefix="encoder.")
        encoder = {k.removeprefix("encoder."): v for k, v in weights.items()}
        result = run_finetune(fcfg, data, encoder, get_arch(arch), px, root / f"ft-{source}", env,
                              identity={"check": source})
        scores[source] = result.epochs[-1].scores["synthetic-val"]
    same = abs(scores["resumed"]["top1"] - scores["resumed.pt"]["top1"]) <= 1 / len(data.val)
    return {"ok": worst < 1e-4 and same, "world": env.world, "accum": [one, other],
            "history_rel_err_max": worst, "finetune_scores": scores}


CHECKS: dict[str, Check] = {"masks": check_masks, "accumulation": check_accumulation,
                            "fsdp_compile_bf16": check_fsdp_compile_bf16, "syncbn": check_syncbn,
                            "resume_export": check_resume_export}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for dist_check.json and the checks' files")
    p.add_argument("--smoke", action="store_true", help="tiny shapes on CPUs (gloo)")
    p.add_argument("--steps", type=int, default=8, help="timed steps of compile + FSDP2")
    p.add_argument("--peak-tflops", type=float, help="datasheet dense bf16 peak per GPU, TFLOP/s")
    p.add_argument("--only", help="comma-separated checks to run (default: all)")
    args = p.parse_args(argv)
    env = setup(args.smoke)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"world": env.world, "device": str(env.device), "torch": torch.__version__,
                               "device_name": torch.cuda.get_device_name(env.device) if env.device.type == "cuda"
                               else None, "checks": {}}
    for name in (args.only.split(",") if args.only else CHECKS):
        t0 = time.perf_counter()
        try:
            got = CHECKS[name](args, env)
        except Exception as e:  # one failing check must not hide the others' results
            got = {"ok": False, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                   "traceback": traceback.format_exc()}
        got["seconds"] = time.perf_counter() - t0
        results["checks"][name] = got
        if env.is_main:
            shown = {k: v for k, v in got.items() if k not in ("traceback", "losses", "finetune_scores")}
            print(f"[{'OK' if got['ok'] else 'FAIL'}] {name}: {json.dumps(shown, default=str)}", flush=True)
    if env.is_main:
        (Path(args.out) / "dist_check.json").write_text(json.dumps(results, indent=1, default=str))
    tdist.barrier()
    tdist.destroy_process_group()
    return 0 if all(c["ok"] for c in results["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
