"""Named projection targets, each with its source, and parsing of user-given targets.

A target is a value of one stored metric (protocol, eval set, metric) that a projection tries to reach.
Values are fractions, as in the run database.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scaling.core.direction import direction
from scaling.defaults import DEFAULT_EVAL_SET, DEFAULT_METRIC, DEFAULT_PROTOCOL
from scaling.errors import ProjectionError


@dataclass(frozen=True)
class Target:
    """Reach ``value`` (a fraction) on ``metric`` of ``eval_set`` under ``protocol``."""

    name: str
    value: float
    metric: str
    eval_set: str = DEFAULT_EVAL_SET
    protocol: str = DEFAULT_PROTOCOL
    description: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


PRESETS: dict[str, Target] = {
    t.name: t
    for t in [
        Target(
            "human-top5",
            0.949,
            "top5",
            description="Human top-5 accuracy on ImageNet (top-5 error 5.1%, trained annotator)",
            source="Russakovsky et al. 2015, ImageNet Large Scale Visual Recognition Challenge, IJCV 115, §6.4",
        ),
        Target(
            "mae-vit-h-full-imagenet",
            0.869,
            "top1",
            description="MAE ViT-H/14 fine-tuned on all of ImageNet-1k at 224 px (86.9% top-1)",
            source="He et al. 2022, Masked Autoencoders Are Scalable Vision Learners, CVPR, Table 3",
        ),
    ]
}


def list_targets() -> list[Target]:
    return list(PRESETS.values())


def resolve_target(
    spec: str,
    *,
    metric: str | None = None,
    eval_set: str | None = None,
    protocol: str | None = None,
    kind: str = "accuracy",
) -> Target:
    """A preset name, or a number (a fraction such as 0.8, or a percent such as 80%) for ``metric``.

    For ``kind="loss"`` any positive number is a target, for ``kind="error"`` a fraction or a percent (both
    lower is better).

    Options override the preset's metric, eval set and protocol only for numbers; for a preset they must
    agree with it, because a preset's value means something only on its own metric.
    """
    d = direction(kind)
    if spec in PRESETS:
        preset = PRESETS[spec]
        if not d.higher_is_better:
            raise ProjectionError(f"target {spec!r} is an accuracy ({preset.metric}); for a {kind} give the value "
                                  "to reach, e.g. 2.1")
        for given, own, what in [(metric, preset.metric, "metric"), (eval_set, preset.eval_set, "eval set")]:
            if given is not None and given != own:
                raise ProjectionError(f"target {spec!r} is defined on {what} {own!r}, not {given!r}")
        return preset
    text = spec.strip()
    percent = text.endswith("%")
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        known = ", ".join(PRESETS)
        raise ProjectionError(f"target {spec!r} is neither a preset ({known}) nor a number") from None
    if percent and not d.is_fraction:
        raise ProjectionError(f"target {spec!r}: a percent is an accuracy; for a {kind} give the value to reach")
    if percent:
        value /= 100.0
    if d.is_fraction and not 0.0 < value < 1.0:
        raise ProjectionError(f"target {spec!r} must be a fraction in (0, 1) or a percent such as 80%")
    if not (math.isfinite(value) and value > 0.0):
        raise ProjectionError(f"target {spec!r} must be a finite positive number")
    if not d.higher_is_better:  # a loss or error rate of a user's table: no eval set or protocol of the grid
        name = metric or kind
        shown = f"{100 * value:g}%" if percent else f"{value:g}"
        return Target(name=f"{name} {shown}", value=value, metric=name, eval_set="", protocol="",
                      description=f"user-given {kind} target (lower is better)", source="user")
    return Target(
        name=f"{100 * value:g}% {metric or DEFAULT_METRIC}",
        value=value,
        metric=metric or DEFAULT_METRIC,
        eval_set=eval_set or DEFAULT_EVAL_SET,
        protocol=protocol or DEFAULT_PROTOCOL,
        description="user-given target",
        source="user",
    )
