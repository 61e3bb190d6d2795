"""The encoder shape a plan trains: the registered ViT/14 nearest the requested parameter count when it is
within ``MAX_SHAPE_RATIO``, else one derived by a stated rule (``DERIVED_SHAPE_RULE``), else a one-line error.
A derived shape is a ``runs_db.archs.ViTShape`` that is not added to the registry.
"""

from __future__ import annotations

import math
from dataclasses import replace

from runs_db.archs import PATCH_PX, ViTShape, encoder_params, nearest_arch
from scaling.compute.flops import ASPECT_WIDTH_PER_LAYER
from scaling.errors import ScalingError

MAX_SHAPE_RATIO = 1.5  # a plan's shape is never further than this factor from the requested parameter count
HEAD_DIM = 128  # derived shapes: heads of 128, as vit_2p5b14 and vit_3b14
MAX_DERIVED_WIDTH = 16384  # derived shapes: at most 128 heads of 128 (about 1.3e12 encoder parameters)
# ``derive_shape``'s rule in one line, as the plan's notes and JSON show it
DERIVED_SHAPE_RULE = (f"width and depth scaled as the registered ViTs are (width = {ASPECT_WIDTH_PER_LAYER:g} x depth, "
                      f"MLP ratio 4), made trainable: integer depth, width = {HEAD_DIM} x round("
                      f"{ASPECT_WIDTH_PER_LAYER:g} x depth / {HEAD_DIM}) (at least "
                      f"{HEAD_DIM}, at most {MAX_DERIVED_WIDTH:,}), heads = width / {HEAD_DIM}, {PATCH_PX}-px "
                      "patches; the depth whose encoder count at the planned image size is nearest the request "
                      "in log scale")


def plan_shape(n_params: float, image_px: int) -> tuple[ViTShape, str | None]:
    """The shape a plan of ``n_params`` encoder parameters at ``image_px`` (a multiple of the 14-px patch)
    uses: the nearest registered shape when its encoder count there is within ``MAX_SHAPE_RATIO`` (1.5x, in
    either direction) of ``n_params``, else ``derive_shape``'s; and for a derived shape, the note that says
    why, how far it is and by which rule. A one-line ``ScalingError`` when neither comes within 1.5x."""
    registered = nearest_arch(n_params, image_px)
    ratio = encoder_params(registered, image_px) / n_params
    if abs(math.log(ratio)) <= math.log(MAX_SHAPE_RATIO):
        return registered, None
    why = (f"{_count(n_params)} parameters at {image_px} px: no registered shape within {MAX_SHAPE_RATIO:g}x "
           f"(the nearest, {registered.name}, has {_count(encoder_params(registered, image_px))}: {ratio:.3g}x)")
    try:
        shape = derive_shape(n_params, image_px)
    except ScalingError as exc:
        raise ScalingError(f"{why}; {exc}") from None
    n = encoder_params(shape, image_px)
    return shape, (f"{why}; planned as {shape.name}: {shape.width} wide, {shape.depth} deep, {shape.heads} heads, "
                   f"{_count(n)} ({n / n_params:.3g}x the request), derived by the rule: {DERIVED_SHAPE_RULE}")


def _derived_width(depth: int) -> int:
    return HEAD_DIM * max(1, math.floor(ASPECT_WIDTH_PER_LAYER * depth / HEAD_DIM + 0.5))


def derive_shape(n_params: float, image_px: int, *, patch_px: int = PATCH_PX) -> ViTShape:
    """A trainable ViT shape for ``n_params`` encoder parameters at ``image_px`` (a multiple of ``patch_px``),
    past the registry.

    The rule (``DERIVED_SHAPE_RULE`` says it in one line): width and depth scaled as the registered ViTs are,
    the aspect of ``scaling.compute.flops.shape_for_params`` (ViT-H/14's width = 40 x depth,
    ``ASPECT_WIDTH_PER_LAYER``) with MLP ratio 4, made trainable: an integer depth, a width that is a multiple
    of the 128-wide head (as vit_2p5b14 and vit_3b14), width = 128 x round(40 x depth / 128) rounded half up
    and at least 128, heads = width / 128, 14-px patches.
    That is one shape per depth, up to width ``MAX_DERIVED_WIDTH`` (16,384: 128 heads); the one whose encoder
    count (``runs_db.archs.encoder_params``: class token and position embeddings at ``image_px`` included) is
    nearest ``n_params`` in log scale is returned as a ``runs_db.archs.ViTShape`` named by that count,
    ``vit_15.5b14 (derived)``, and is not registered.

    A one-line ``ScalingError`` when that shape is more than ``MAX_SHAPE_RATIO`` (1.5x) from ``n_params``:
    a count past what the widest shape holds, one under the smallest (whose position embeddings alone can be
    that large at a large image), or one in a gap between the small shapes.
    """
    if not (n_params > 0 and math.isfinite(n_params)):
        raise ScalingError(f"the parameter count must be positive, got {n_params:g}")
    lattice: list[tuple[int, ViTShape]] = []
    depth = 1
    while (width := _derived_width(depth)) <= MAX_DERIVED_WIDTH:
        shape = ViTShape("derived", width, depth, width // HEAD_DIM, patch_px)
        lattice.append((encoder_params(shape, image_px), shape))
        depth += 1
    count, shape = min(lattice, key=lambda c: abs(math.log(c[0] / n_params)))
    if abs(math.log(count / n_params)) > math.log(MAX_SHAPE_RATIO):
        small, big = lattice[0], lattice[-1]
        if n_params > big[0]:
            raise ScalingError(f"a derived shape would need a width beyond {MAX_DERIVED_WIDTH:,} (the rule's limit, "
                               f"{MAX_DERIVED_WIDTH // HEAD_DIM} heads of {HEAD_DIM}): the widest, "
                               f"{big[1].width} wide and {big[1].depth} deep, has {_count(big[0])}")
        if n_params < small[0]:
            pos = (small[1].n_patches(image_px) + 1) * small[1].width
            raise ScalingError(f"the smallest derived shape ({small[1].width} wide, {small[1].depth} deep) has "
                               f"{_count(small[0])} ({_count(pos)} of them position embeddings at {image_px} px)")
        raise ScalingError(f"the nearest derived shape ({shape.width} wide, {shape.depth} deep) has {_count(count)} "
                           f"({count / n_params:.3g}x), none comes within {MAX_SHAPE_RATIO:g}x")
    name = f"vit_{_count(count).lower()}{patch_px} (derived)"
    return replace(shape, name=name, description=f"derived for {_count(n_params)} at {image_px} px: "
                                                 f"{DERIVED_SHAPE_RULE}")


def _count(n: float) -> str:
    """1.545e10 -> '15.5B', 2.17e7 -> '21.7M' (3 significant figures; parameter counts)."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= 0.9995 * scale:  # 999.6e9 is '1T', not '1e+03B'
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


