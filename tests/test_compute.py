"""The FLOPs and parameter model against published counts and the FlopCounterMode figures in notes-train."""

from __future__ import annotations

import math

import pytest

from runs_db.archs import encoder_params, get_arch, head_params, mae_flops_for_arch
from scaling.compute.flops import pretrain_compute, shape_for_params

# Encoder parameters (incl. position embeddings) = fine-tune log n_parameters minus the 1000-way head,
# from eminorhan/humanlike-vits@7a66e95 logs (notes-paper §1.1).
PUBLISHED = [
    ("vits14", 224, 22_004_584),
    ("vitb14", 224, 86_475_496),
    ("vitl14", 224, 304_203_752),
    ("vith14", 224, 632_045_800),
    ("vith14", 448, 633_028_840),
    ("vith14", 476, 633_197_800),
]


@pytest.mark.parametrize(("arch", "px", "with_head"), PUBLISHED)
def test_parameter_counts_equal_published_logs(arch: str, px: int, with_head: int) -> None:
    shape = get_arch(arch)
    assert encoder_params(shape, px) + head_params(shape.width) == with_head


def test_nonembed_count_does_not_depend_on_resolution() -> None:
    h = get_arch("vit_h14")
    assert encoder_params(h, 224, position_embedding=False) == encoder_params(h, 476, position_embedding=False)
    # the difference is exactly the extra position-embedding rows: (1156 - 256) x 1280
    assert encoder_params(h, 476) - encoder_params(h, 224) == (34 * 34 - 16 * 16) * 1280


# Training GFLOPs per image counted by torch FlopCounterMode on the meta device (notes-train §2.2).
@pytest.mark.parametrize(
    ("arch", "px", "mask", "gflops"),
    [("vit_s14", 224, 0.75, 51.34), ("vit_b14", 224, 0.75, 76.72), ("vit_h14", 224, 0.75, 290.99),
     ("vit_h14", 476, 0.8, 1149.21)],
)
def test_mae_flops_match_flop_counter(arch: str, px: int, mask: float, gflops: float) -> None:
    assert mae_flops_for_arch(get_arch(arch), px, mask).total / 1e9 == pytest.approx(gflops, abs=0.006)


def test_decoder_dominates_small_encoders() -> None:
    f = mae_flops_for_arch(get_arch("vit_s14"), 224)
    assert f.decoder / f.total > 0.8
    # the naive 6 x params x visible tokens is several times too small for MAE
    naive = 6 * encoder_params(get_arch("vit_s14"), 224) * (256 * 0.25 + 1)
    assert f.total / naive > 5


def test_shape_for_params_recovers_registered_and_solves_new_sizes() -> None:
    assert shape_for_params(631_916_800, 476).rule == "registered:vit_h14"
    s = shape_for_params(2.5e9, 952)
    assert s.width / s.depth == pytest.approx(40.0)
    # closed form check: params = 12 L d^2 + 13 L d + embeddings
    n_tok = 68 * 68 + 1
    total = (3 * 196 * s.width + s.width) + s.width + n_tok * s.width + s.depth * (12 * s.width**2 + 13 * s.width)
    total += 2 * s.width
    assert total == pytest.approx(2.5e9, rel=1e-9)


def test_pretrain_compute_of_the_largest_published_run() -> None:
    # ViT-H/14 @476: 640k iterations x global batch 136 (notes-paper §2.1, §2.3) -> ~1.0e20 FLOPs (notes-train §2.3)
    passes = 640_000 * 136 / 17_958_947
    est = pretrain_compute(631_916_800, 17_958_947 / 3600, 476, passes=passes, mask_ratio=0.8)
    assert est.images_seen == pytest.approx(640_000 * 136)
    assert est.flops == pytest.approx(1149.207e9 * 640_000 * 136, rel=1e-5)
    assert math.log10(est.flops) == pytest.approx(20.0, abs=0.01)
