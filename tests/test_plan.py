"""Training plans: registered projected shapes, the memory model (checked against bytes counted on CPU and
the H200 measurements of notes-gpu), GPU-hours arithmetic, ``scaling plan`` and ``scaling project --plan``."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest

from runs_db.archs import ARCHS, PROJECTED_PARAMS, ViTShape, encoder_params, get_arch, mae_flops_for_arch, nearest_arch
from scaling.errors import ScalingError
from scaling.planning.gpus import GIB, default_mfu, parse_memory
from scaling.planning.memory import (
    StepSetup,
    activation_bytes,
    block_activation_bytes,
    largest_batch,
    mae_param_counts,
    step_memory,
)
from tests.cli_helpers import invoke, ok_json, one_line_error

H200_PEAK_TFLOPS = 790.0  # 8192^2 bf16 matmuls measured on the H200 (notes-gpu)


def scenario(batch: int, ac: bool, **kw: object) -> StepSetup:
    """The 2.43B ViT/14 measured on an H200 (notes-gpu): 952 px, mask 0.8."""
    return StepSetup(get_arch("vit_2p5b14"), 952, batch, mask_ratio=0.8, activation_checkpointing=ac, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ shapes
def test_projected_shapes_have_their_exact_counts_and_the_nearest_shape_names_them() -> None:
    for name, counts in PROJECTED_PARAMS.items():
        for px, n in counts.items():
            assert encoder_params(ARCHS[name], px) == n
    assert encoder_params(get_arch("vit_2p5b14"), 952) == 2_427_881_472  # "2.43B" of notes-gpu
    assert nearest_arch(2.5e9, 952).name == "vit_2p5b14"
    assert nearest_arch(1e9).name == "vit_1b14"
    assert nearest_arch(3e9, 952).name == "vit_3b14"
    assert nearest_arch(631_916_800, 476).name == "vit_h14"
    assert nearest_arch(2e7).name == "vit_s14"
    with pytest.raises(ValueError, match="positive"):
        nearest_arch(-1.0)


@pytest.mark.train
def test_projected_shapes_and_the_mae_counts_equal_timm_on_the_meta_device(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from timm.models.vision_transformer import VisionTransformer

    from train.model import MaskedAutoencoder, count_params

    # timm's weight init decomposes slowly on the meta device and changes no count
    monkeypatch.setattr(VisionTransformer, "init_weights", lambda self, *args, **kwargs: None)
    for name, counts in PROJECTED_PARAMS.items():
        with torch.device("meta"):
            mae = MaskedAutoencoder(get_arch(name), 952)
        assert count_params(mae.encoder) == counts[952]
        c = mae_param_counts(StepSetup(get_arch(name), 952, 1))
        assert c.total == count_params(mae) + mae.decoder_pos_embed.numel()
        assert c.trainable == sum(p.numel() for p in mae.parameters() if p.requires_grad)
        weights = sum(m.weight.numel() for m in mae.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d))
        assert c.matmul_weights == weights


# ------------------------------------------------------------------------------------ memory arithmetic
def test_block_activations_follow_the_closed_form() -> None:
    # bf16 autocast, fused attention: per token 8d (fp32 LayerNorm inputs) + 2 * 14d + 16 + 4h bytes
    assert block_activation_bytes(2048, 16, 925, act_bytes=2, attention="fused") == 925 * (36 * 2048 + 16 + 64)
    assert block_activation_bytes(64, 4, 50, act_bytes=4, attention="fused") == 50 * (64 * 64 + 16 + 16)
    # explicit attention keeps the h x n softmax probabilities of every token
    assert block_activation_bytes(64, 4, 50, act_bytes=2, attention="explicit") == 50 * (36 * 64 + 16 + 2 * 4 * 50)


def test_states_shard_with_fsdp_and_activations_scale_with_the_batch() -> None:
    one = step_memory(scenario(8, False))
    c = mae_param_counts(scenario(8, False))
    assert one.parameters == 4 * c.total and one.gradients == 4 * c.trainable and one.optimizer == 8 * c.trainable
    assert one.weight_copies == 2 * c.matmul_weights and one.ddp_buckets == 0
    assert c.total - c.trainable == (952 // 14) ** 2 * 2048 + 2048 + ((952 // 14) ** 2 + 1) * 512  # frozen + buffer
    ddp = step_memory(scenario(8, False, n_gpus=8))
    assert ddp.ddp_buckets == 4 * c.trainable
    fsdp = step_memory(scenario(8, False, n_gpus=8, fsdp=True))
    assert fsdp.parameters == pytest.approx(one.parameters / 8) and fsdp.optimizer == pytest.approx(one.optimizer / 8)
    assert fsdp.weight_copies == 2 * 2 * c.largest_block  # two gathered bf16 blocks
    assert fsdp.activations == one.activations
    a1, a3 = activation_bytes(scenario(1, False)), activation_bytes(scenario(3, False))
    assert a3.total == pytest.approx(3 * a1.total)
    # checkpointing keeps 4 d bytes per visible token per block instead of the whole block
    ac = activation_bytes(scenario(1, True))
    n_e = math.floor(68 * 68 * 0.2) + 1
    assert ac.encoder_blocks == 48 * 4 * 2048 * n_e
    assert ac.recompute == block_activation_bytes(2048, 16, n_e, act_bytes=2, attention="fused")


def test_the_largest_batch_is_the_last_that_fits() -> None:
    for ac in (False, True):
        s = scenario(1, ac)
        b = largest_batch(s, 139 * GIB)
        assert step_memory(replace(s, batch=b)).total <= 139 * GIB < step_memory(replace(s, batch=b + 1)).total
    assert largest_batch(scenario(1, False), 10 * GIB) == 0  # the states alone are 36 GiB


# ------------------------------------------------------------------------------ against the H200
def test_memory_model_predicts_the_h200_peaks_within_15_percent() -> None:
    # notes-gpu: batch 16 without checkpointing, 102 GiB peak; every encoder block checkpointed, batch 32, 76 GiB
    no_ac = step_memory(scenario(16, False)).total / GIB
    ac = step_memory(scenario(32, True)).total / GIB
    assert no_ac == pytest.approx(102, rel=0.15)
    assert ac == pytest.approx(76, rel=0.15)
    # both measured batches fit the H200 (139 GiB) in the model too, and batch 32 without checkpointing does not
    assert largest_batch(scenario(1, False), 139 * GIB) >= 16 and largest_batch(scenario(1, True), 139 * GIB) >= 32
    assert step_memory(scenario(32, False)).total > 139 * GIB


def test_gpu_hours_of_the_study_scenario_are_about_4000_h200_hours() -> None:
    import scaling

    p = scaling.plan(n_params=2.5e9, image_px=952, data_hours=20000, passes=4.846609325145845, mask_ratio=0.8)
    assert p.arch == "vit_2p5b14" and p.n_params == 2_427_881_472
    f_img = mae_flops_for_arch(get_arch("vit_2p5b14"), 952, 0.8).total
    assert f_img == pytest.approx(1.620e13, rel=1e-3)  # notes-gpu
    images = 4.846609325145845 * 20000 * 3600
    assert p.flops == pytest.approx(f_img * images)
    assert p.mfu == 0.50 and p.peak_tflops == H200_PEAK_TFLOPS
    assert p.gpu_hours == pytest.approx(f_img * images / (0.5 * 790e12) / 3600)
    assert p.gpu_hours == pytest.approx(4000, rel=0.03)  # "about 4,000 H200-hours" (notes-gpu)
    assert p.images_per_s_per_gpu == pytest.approx(24.5, rel=0.01)  # the measured rate at 50% MFU
    # the recipe's global batch (MAE's 4,096) in micro-batches of 16, the largest power of two under the 25
    # that fit; the measured batch of notes-gpu (102 GiB) is that micro-batch
    assert p.fits and p.options[0].largest_batch == largest_batch(scenario(1, False), 139 * GIB) == 25
    assert (p.batch, p.accum, p.global_batch) == (16, 256, 4096) and p.steps == pytest.approx(images / 4096)
    k = scaling.plan(arch="vit_2p5b14", image_px=952, data_hours=20000, passes=4.846609325145845, mask_ratio=0.8,
                     gpus=64, fsdp=True, usd_per_gpu_hour=3.5, activation_checkpointing=True)
    assert k.mfu == 0.43 and k.wall_clock_hours == pytest.approx(k.gpu_hours / 64)
    assert k.cost_usd == pytest.approx(3.5 * k.gpu_hours)
    assert k.memory.parameters == pytest.approx(p.memory.parameters / 64)
    assert [o.activation_checkpointing for o in k.options] == [False, True]
    assert "PlanReport('vit_2p5b14'" in repr(k) and "GPU-hours" in k.summary()
    d = k.to_dict()
    assert d["schema"] == "scaling.plan/v1" and d["time"]["gpu_hours"] == pytest.approx(k.gpu_hours)
    assert k.to_frame().loc["gpu_hours", "value"] == pytest.approx(k.gpu_hours)


def test_default_mfu_is_the_most_similar_measured_step() -> None:
    f = mae_flops_for_arch(get_arch("vit_b14"), 224, 0.75).total
    assert default_mfu("h200", f, activation_checkpointing=False).mfu == 0.27
    f_h = mae_flops_for_arch(get_arch("vit_h14"), 224, 0.75).total
    assert default_mfu("h200", f_h, activation_checkpointing=False).compiled is True  # compiled beats eager
    with pytest.raises(ScalingError, match="--mfu"):
        default_mfu("a100", f, activation_checkpointing=False)


@pytest.mark.parametrize(("text", "value"), [("80GiB", 80 * 2**30), ("80GB", 80e9), ("141 gb", 141e9),
                                             ("512MiB", 2**29), ("1.5TiB", 1.5 * 2**40), (1e9, 1e9)])
def test_memory_sizes_parse(text: str | float, value: float) -> None:
    assert parse_memory(text) == value


@pytest.mark.parametrize("kw", [dict(gpus=0), dict(mfu=2.0), dict(gpu_mem="80XB"), dict(gpu_kind="tpu"),
                                dict(batch=0), dict(arch="nope"), dict(passes=-1.0), dict(image_px=0.0)])
def test_bad_plans_are_one_line_errors(kw: dict[str, object]) -> None:
    import scaling

    base: dict[str, object] = dict(arch="vit_b14", image_px=224, data_hours=100, passes=1.0)
    with pytest.raises(ScalingError) as err:
        scaling.plan(**(base | kw))  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def test_a_projection_is_planned_with_its_passes_and_mask() -> None:
    import scaling

    rep = scaling.project(mode="at")
    assert callable(scaling.plan)  # the function, not a module of the same name
    p = scaling.plan(rep, gpus=8)
    comp = rep.answer("at point").compute
    assert (p.passes, p.mask_ratio, p.data_hours) == (comp.passes, comp.mask_ratio, 20000.0)
    assert p.arch == "vit_2p5b14" and "at point" in p.source and any("nearest" in n for n in p.notes)
    with pytest.raises(ScalingError, match="no answer"):
        scaling.plan(rep, question="scale every axis")


@pytest.mark.parametrize(("gpus", "fsdp", "micro", "accum"), [(1, False, 16, 256), (8, False, 16, 32),
                                                               (64, True, 32, 2), (256, True, 16, 1)])
def test_a_plan_keeps_the_recipes_global_batch_and_accumulates_the_rest(gpus: int, fsdp: bool, micro: int,
                                                                       accum: int) -> None:
    import scaling
    from scaling.planning.batches import split_global_batch

    p = scaling.plan(arch="vit_2p5b14", image_px=952, data_hours=20000, passes=4.85, mask_ratio=0.8, gpus=gpus,
                     fsdp=fsdp)
    fitting = p.options[0].largest_batch
    assert (p.batch, p.accum) == (micro, accum) and p.global_batch == gpus * accum * micro == 4096
    # the largest micro-batch that fits and divides each GPU's share: every larger divisor does not fit
    share = 4096 // gpus
    assert p.batch <= fitting and not any(share % m == 0 for m in range(p.batch + 1, min(fitting, share) + 1))
    assert p.steps == pytest.approx(4.85 * 20000 * 3600 / 4096)
    assert p.gpu_hours == pytest.approx(p.flops / (p.mfu * p.peak_tflops * 1e12) / 3600)  # accumulation is free
    assert split_global_batch(136, 4, fitting=9, given=None).micro_batch == 2  # 34 = 2 x 17: 9 does not divide
    other = scaling.plan(arch="vit_2p5b14", image_px=952, data_hours=20000, passes=4.85, mask_ratio=0.8,
                         gpus=gpus, fsdp=fsdp, global_batch=1024)
    assert other.global_batch == 1024 and other.steps == pytest.approx(4 * p.steps)


@pytest.mark.parametrize(("kw", "fragment"), [(dict(gpus=3), "does not split evenly over 3 GPUs"),
                                              (dict(batch=24), "micro-batch of 24 per GPU does not divide"),
                                              (dict(global_batch=0), "at least 1")])
def test_a_global_batch_the_gpus_cannot_split_is_a_one_line_error(kw: dict[str, int], fragment: str) -> None:
    import scaling

    with pytest.raises(ScalingError) as err:
        scaling.plan(arch="vit_b14", image_px=224, data_hours=100, passes=1.0, **kw)  # type: ignore[arg-type]
    assert fragment in str(err.value) and "\n" not in str(err.value)


# ---------------------------------------------------------------- shapes past the registry, batches that do not fit
BEYOND = dict(n_params=15.5e9, image_px=1904, data_hours=20000, passes=4.85)  # the issue's 15.5B: 5x vit_3b14


def test_a_count_past_the_registry_is_planned_on_a_derived_shape_within_1_5x() -> None:
    import scaling
    from scaling.planning.shapes import DERIVED_SHAPE_RULE

    p = scaling.plan(**BEYOND)  # type: ignore[arg-type]
    s = p.shape
    assert p.derived and p.arch == s.name == "vit_15.5b14 (derived)" and s.name not in ARCHS
    assert (s.width, s.depth, s.heads, s.patch_px) == (3712, 93, 29, 14)
    assert s.width == 128 * math.floor(40 * s.depth / 128 + 0.5) and s.heads == s.width // 128
    assert p.n_params == encoder_params(s, 1904) == 15_452_647_680  # exact for the derived shape
    assert 1 / 1.5 <= p.n_params / 15.5e9 <= 1.5 and p.n_params / 15.5e9 == pytest.approx(0.997, abs=1e-3)
    assert p.flops_per_image == mae_flops_for_arch(s, 1904).total
    assert p.memory == step_memory(StepSetup(s, 1904, 1))
    assert any("no registered shape within 1.5x" in n and DERIVED_SHAPE_RULE in n for n in p.notes)
    m = p.to_dict()["model"]
    assert m["derived"] and m["shape_rule"] == DERIVED_SHAPE_RULE and m["params_ratio"] == p.n_params / 15.5e9
    # the memory model sizes it: sharded and checkpointed over 64 H200s it fits and has GPU-hours
    k = scaling.plan(**BEYOND, gpus=64, fsdp=True, activation_checkpointing=True)  # type: ignore[arg-type]
    assert k.fits and k.batch >= 1 and k.gpu_hours == pytest.approx(k.flops / (0.43 * 790e12) / 3600)
    # a registered shape within 1.5x is still the plan (the paper's scenario), with no rule
    r = scaling.plan(n_params=2.5e9, image_px=952, data_hours=20000, passes=4.85)
    assert r.arch == "vit_2p5b14" and not r.derived and r.to_dict()["model"]["shape_rule"] is None


def test_no_plan_is_on_a_shape_more_than_1_5x_from_the_request() -> None:
    import scaling

    errors = []
    for px in (224, 952, 1904):
        for i in range(26):  # 1e7 .. 1e12, five counts a decade
            n = 10 ** (7 + i / 5)
            try:
                p = scaling.plan(n_params=n, image_px=px, data_hours=100, passes=1.0)
            except ScalingError as exc:
                errors.append(str(exc))
                continue
            assert abs(math.log(p.n_params / n)) <= math.log(1.5), (n, px, p.arch)
            assert p.n_params == encoder_params(p.shape, px)
            assert (p.arch in ARCHS) != p.derived and (not p.derived or p.arch.endswith(" (derived)"))
    assert not errors  # the registry and the rule cover this sweep
    assert scaling.plan(n_params=1e12, image_px=224, data_hours=100, passes=1.0).shape.width <= 16384


@pytest.mark.parametrize(("n", "px", "fragment"), [
    (3e12, 224, "width beyond 16,384"),  # past the widest derived shape
    (1e7, 11704, "position embeddings"),  # under the smallest at a huge image
    (1.05e7, 952, "none comes within 1.5x"),  # between vit_t14 and the small derived shapes
])
def test_a_count_no_shape_comes_within_1_5x_of_is_a_one_line_error(n: float, px: int, fragment: str) -> None:
    import scaling

    with pytest.raises(ScalingError, match=r"no registered shape within 1\.5x") as err:
        scaling.plan(n_params=n, image_px=px, data_hours=100, passes=1.0)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_a_batch_that_does_not_fit_has_no_gpu_hours() -> None:
    import scaling

    p = scaling.plan(**BEYOND, usd_per_gpu_hour=3.0)  # type: ignore[arg-type]
    assert not p.fits and p.steps is None
    assert (p.gpu_hours, p.wall_clock_hours, p.cost_usd, p.images_per_s_per_gpu) == (None, None, None, None)
    assert all(o.largest_batch == 0 and o.gpu_hours is None for o in p.options)
    assert any("even batch 1 per GPU needs" in n for n in p.notes)
    t = p.to_dict()["time"]
    assert all(t[k] is None for k in ("gpu_hours", "wall_clock_hours", "wall_clock_days", "cost_usd",
                                      "images_per_s_per_gpu"))
    assert json.loads(json.dumps(p.to_dict()))["checkpointing_options"][0]["gpu_hours"] is None
    assert "GPU-hours -" in p.summary() and "- GPU-hours" in repr(p)
    assert p.to_frame().loc["gpu_hours", "value"] is None
    # a given batch too large: no time for it, but the options keep the largest batch that fits and its hours
    g = scaling.plan(arch="vit_2p5b14", image_px=952, data_hours=20000, passes=4.85, batch=64)
    assert not g.fits and g.gpu_hours is None and any("a smaller batch" in n for n in g.notes)
    assert g.options[0].largest_batch > 0 and g.options[0].gpu_hours is not None


def test_an_answer_no_shape_fits_gets_the_one_line_reason_in_place_of_its_plan() -> None:
    import scaling
    from scaling.planning.planner import plan_answers

    rep = scaling.project(mode="at")
    answer = rep.answer("at point")
    far = replace(rep, projections=(("at point", replace(answer, point={**answer.point, "n_params": 1e13})),))
    ((question, reason),) = plan_answers(far)
    assert question == "at point" and isinstance(reason, str) and "width beyond 16,384" in reason
    assert "\n" not in reason


# ------------------------------------------------------------------------------------------ CLI
def test_cli_plans_the_paper_scenario_as_json(published_db_path) -> None:  # type: ignore[no-untyped-def]
    d = ok_json(published_db_path, "plan")
    assert d["model"]["arch"] == "vit_2p5b14" and d["data"]["image_px"] == 952 and d["data"]["mask_ratio"] == 0.8
    t = d["time"]
    assert t["gpu_hours"] == pytest.approx(d["compute"]["flops"] / (t["mfu"] * t["peak_tflops"] * 1e12) / 3600)
    assert t["gpu_hours"] == pytest.approx(4000, rel=0.03)
    assert d["batch"]["fits"] and d["memory_gib"]["total"] <= 139
    k = ok_json(published_db_path, "plan", "--gpus", "8", "--fsdp", "--gpu-mem", "80GiB", "--batch", "4",
                "--act-checkpointing", "--usd-per-gpu-hour", "2")
    assert k["batch"]["per_gpu"] == 4 and k["batch"]["accum"] == 128 and k["batch"]["global"] == 4096
    assert k["hardware"]["gpu_mem_gib"] == 80
    assert k["time"]["cost_usd"] == pytest.approx(2 * k["time"]["gpu_hours"])
    assert k["memory_gib"]["optimizer"] == pytest.approx(d["memory_gib"]["optimizer"] / 8)
    g = ok_json(published_db_path, "plan", "--gpus", "8", "--global-batch", "1024")
    assert g["batch"]["global"] == 1024 == 8 * g["batch"]["accum"] * g["batch"]["per_gpu"]
    assert g["batch"]["steps"] == pytest.approx(d["batch"]["steps"] * 4)
    table = invoke(published_db_path, "plan", "--arch", "vit_1b14", "--px", "448", "--hours", "5000")
    assert table.exit_code == 0 and "Memory per GPU" in table.stdout and "vit_1b14" in table.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (["--gpu-mem", "80XB"], "--gpu-mem"), (["--gpus", "0"], "--gpus"), (["--mfu", "2"], "--mfu"),
    (["--gpu-kind", "tpu"], "unknown GPU kind"), (["--gpu-kind", "a100"], "--mfu"), (["--arch", "vit_x"], "vit_x"),
    (["--question", "why"], "--question"), (["--hours", "-5"], "--hours"),
    (["--gpus", "3"], "does not split evenly over 3 GPUs"), (["--global-batch", "0"], "--global-batch"),
])
def test_cli_bad_input_is_one_line(published_db_path, args: list[str], fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert fragment in one_line_error(invoke(published_db_path, "plan", *args))


def test_cli_plans_past_the_registry_without_gpu_hours_for_a_batch_that_does_not_fit(  # type: ignore[no-untyped-def]
        published_db_path) -> None:
    args = ["plan", "--params", "15.5e9", "--px", "1904", "--hours", "20000", "--passes", "4.85", "--mask-ratio",
            "0.75"]
    d = ok_json(published_db_path, *args)
    assert d["model"]["arch"] == "vit_15.5b14 (derived)" and d["model"]["derived"] and not d["batch"]["fits"]
    assert d["time"]["gpu_hours"] is None and d["time"]["cost_usd"] is None
    assert [o["gpu_hours"] for o in d["checkpointing_options"]] == [None, None]
    text = invoke(published_db_path, *args)
    assert text.exit_code == 0 and "vit_15.5b14 (derived)" in text.stdout and "DOES NOT FIT" in text.stdout
    hours = [ln for ln in text.stdout.splitlines() if "GPU-hours" in ln and "│" in ln]
    assert hours and all(ln.split("│")[-2].strip() == "-" for ln in hours)  # the time row and both options
    assert "no registered shape within 1.5x" in text.stderr
    error = one_line_error(invoke(published_db_path, *args[:1], "--params", "1e13", *args[3:]))
    assert "width beyond 16,384" in error


def test_cli_plans_the_issues_projection_on_a_shape_within_1_5x(published_db_path) -> None:  # type: ignore[no-untyped-def]
    d = ok_json(published_db_path, "plan", "--from-projection", "--question", "scale", "--form", "logit1")
    m = d["model"]  # 15.5B at 11704 px: it was planned on vit_3b14 (4.67B there) with 79M GPU-hours
    assert m["derived"] and 1 / 1.5 <= m["n_params"] / m["requested_params"] <= 1.5
    assert d["batch"]["fits"] or d["time"]["gpu_hours"] is None


def test_project_plan_adds_a_plan_to_every_answer(published_db_path) -> None:  # type: ignore[no-untyped-def]
    d = ok_json(published_db_path, "project", "--mode", "at", "--plan")
    (entry,) = d["plans"]
    assert entry["question"] == "at point" and entry["plan"]["model"]["arch"] == "vit_2p5b14"
    assert "plans" not in ok_json(published_db_path, "project", "--mode", "at")
    text = invoke(published_db_path, "project", "--mode", "at", "--plan")
    assert text.exit_code == 0 and "Training plans" in text.stdout
    fromp = ok_json(published_db_path, "plan", "--from-projection", "--gpus", "4")
    assert fromp["data"]["passes"] == pytest.approx(entry["plan"]["data"]["passes"])
    assert fromp["time"]["gpu_hours"] == pytest.approx(entry["plan"]["time"]["gpu_hours"])


# --------------------------------------------------------------------- measured on CPU (train extra)
TINY = ViTShape("tiny", 64, 2, 4, 8)
TINY_DECODER = dict(decoder_dim=32, decoder_depth=2, decoder_heads=2)


def _tiny(torch, precision: str, attention: str, ac: bool):  # type: ignore[no-untyped-def]
    from torch.utils.checkpoint import checkpoint

    from train.model import MaskedAutoencoder

    class Checkpointed(torch.nn.Module):
        def __init__(self, block: torch.nn.Module) -> None:
            super().__init__()
            self.block = block

        def forward(self, x):  # type: ignore[no-untyped-def]
            return checkpoint(self.block, x, use_reentrant=False)

    torch.manual_seed(0)
    model = MaskedAutoencoder(TINY, 64, **TINY_DECODER)
    for m in model.modules():
        if hasattr(m, "fused_attn"):
            m.fused_attn = attention == "fused"
    if ac:
        model.encoder.blocks = torch.nn.Sequential(*[Checkpointed(b) for b in model.encoder.blocks])
    return model


CASES = [("bf16", "fused", False), ("bf16", "explicit", False), ("fp32", "fused", False), ("bf16", "fused", True)]


@pytest.mark.train
@pytest.mark.parametrize(("precision", "attention", "ac"), CASES)
def test_saved_activations_equal_the_bytes_autograd_saves(precision: str, attention: str, ac: bool) -> None:
    """Every tensor saved for backward in one forward pass, counted once per storage: the model's
    activations exactly, apart from the 4-byte loss denominator; the bf16 weight casts apart."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from train.model import mask_noise

    batch = 6
    model = _tiny(torch, precision, attention, ac)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    weight_shapes = {tuple(p.shape) for p in model.parameters() if p.ndim >= 2}
    weight_shapes |= {tuple(reversed(p.shape)) for p in model.parameters() if p.ndim == 2}
    saved: dict[int, tuple[int, object, tuple[int, ...]]] = {}

    def pack(t):  # type: ignore[no-untyped-def]
        key = t.untyped_storage().data_ptr()
        if key not in params:
            saved.setdefault(key, (t.untyped_storage().nbytes(), t.dtype, tuple(t.shape)))
        return t

    imgs = torch.randn(batch, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(imgs, mask_noise(range(batch), model.n_patches, 0), 0.75)
    casts = sum(n for n, dt, shape in saved.values() if dt == torch.bfloat16 and shape in weight_shapes)
    counted = sum(n for n, _, _ in saved.values()) - casts
    if precision == "fp32":
        counted -= imgs.untyped_storage().nbytes()  # the input batch itself, counted by the model as working memory
    setup = StepSetup(TINY, 64, batch, precision=precision, attention=attention, activation_checkpointing=ac,
                      **TINY_DECODER)  # type: ignore[arg-type]
    acts = activation_bytes(setup)
    assert counted - 4 == acts.total - acts.recompute
    if precision == "bf16" and not ac:
        assert casts == 2 * mae_param_counts(setup).matmul_weights


@pytest.mark.train
@pytest.mark.parametrize(("precision", "attention", "ac"), [
    CASES[0], CASES[3], *[pytest.param(*c, marks=pytest.mark.slow) for c in CASES[1:3]]])
def test_step_peak_equals_the_profiled_peak_on_cpu(precision: str, attention: str, ac: bool) -> None:
    """The peak of a whole training step (forward, zero_grad, backward, AdamW, as train.pretrain), from the
    profiler's allocation events on CPU, against the model's prediction."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("timm")
    from train.model import mask_noise
    from train.runtime import param_groups

    batch = 6
    model = _tiny(torch, precision, attention, ac)
    opt = torch.optim.AdamW(param_groups(model, 0.0), lr=1e-4, betas=(0.9, 0.95))
    imgs = torch.randn(batch, 3, 64, 64)
    noise = mask_noise(range(batch), model.n_patches, 0)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, _, _ = model(imgs, noise, 0.75)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # One intra-op thread: with several, allocations of parallel kernels interleave in time and the profiled
    # peak depends on the machine's scheduling (seen 2% apart under load); the model counts one sequence.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _profiled_peak_matches(torch, model, opt, imgs, noise, step, batch, precision, attention, ac)
    finally:
        torch.set_num_threads(threads)


def _profiled_peak_matches(torch: Any, model: Any, opt: Any, imgs: Any, noise: Any, step: Any, batch: int,
                           precision: str, attention: str, ac: bool) -> None:
    from torch.profiler import ProfilerActivity, profile, record_function

    step()  # AdamW's states exist from here on, as in a running job
    resident = sum(t.untyped_storage().nbytes() for t in [*model.parameters(), *model.buffers(), imgs, noise])
    resident += sum(t.untyped_storage().nbytes() for s in opt.state.values() for t in s.values())
    # Blocks allocated before profiling are not reported when freed: profile two steps and read the second,
    # whose gradients were allocated (and are freed) inside the profile.
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
        with record_function("second step"):
            step()
    events = list(prof.profiler.kineto_results.events())
    marker = min((e for e in events if e.name() == "second step"), key=lambda e: e.start_ns())
    start, thread = marker.start_ns(), marker.start_thread_id()
    # Only the step's own thread: the profiler records every thread's allocations, and a background thread
    # left by an earlier test in the same process (a client library's worker) would add its own at random.
    memory = sorted((e for e in events if e.name() == "[memory]" and e.start_thread_id() == thread),
                    key=lambda e: e.start_ns())
    live, peak = 0, -math.inf
    for e in memory:
        live += e.nbytes()
        if e.start_ns() >= start:
            peak = max(peak, live)
    # The warm-up step's gradients were freed (unreported) in the first profiled step, whose own gradients
    # were allocated inside the profile: from the second step on, live bytes = resident + the running sum.
    measured = resident + peak
    setup = StepSetup(TINY, 64, batch, precision=precision, attention=attention, activation_checkpointing=ac,
                      **TINY_DECODER)  # type: ignore[arg-type]
    predicted = step_memory(setup).total
    # Within 1% in a fresh process (2026-11-29: bf16, fp32, explicit, AC). After the whole suite has run in the
    # same process under OPENBLAS_NUM_THREADS=1, the bf16 fused case measured 2.1% over the model, twice and
    # exactly alike (the same test alone passes at 1%): kernels' workspaces there depend on what ran before.
    assert predicted == pytest.approx(measured, rel=0.03)
    json.dumps(step_memory(setup).to_dict())
