"""Named projection targets, each with its source, and parsing of user-given targets.

A target is a value of one stored metric (protocol, eval set, metric) that a projection tries to reach.
Values are fractions, as in the run database. Besides ImageNet's, the presets hold human 16-class accuracy on
the 17 out-of-distribution sets of Geirhos et al. 2021 (``human-ood-<set>`` on eval set ``mvh-<set>``) and their
mean (``human-ood-mean`` on ``mvh-mean``), computed from the model-vs-human repository's human trials
(``runs_db.ood``); a projection on one of those eval sets aims at its human target unless told otherwise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

from runs_db.ood import MEAN_EVAL_SET, OodSet, human_ood
from runs_db.ood import METRIC as OOD_METRIC
from scaling.core.direction import direction
from scaling.defaults import DEFAULT_EVAL_SET, DEFAULT_METRIC, DEFAULT_PROTOCOL, DEFAULT_TARGET
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


def ood_targets() -> list[Target]:
    """Human 16-class accuracy on each OOD set of Geirhos et al. 2021, and the mean over the 17 sets."""
    data = human_ood()
    def conditions(s: OodSet) -> str:
        if not s.excluded_conditions:
            return ""
        return f"; conditions {', '.join(s.conditions)}, not {', '.join(s.excluded_conditions)}"

    out = [Target(f"human-ood-{s.dataset}", s.human_accuracy, OOD_METRIC, eval_set=s.eval_set,
                  description=f"Human 16-class accuracy on {s.dataset} ({s.subjects} subjects, {s.trials:,} "
                              f"trials{conditions(s)})",
                  source=data.source(s.files))
           for s in data.sets]
    out.append(Target("human-ood-mean", data.mean, OOD_METRIC, eval_set=MEAN_EVAL_SET,
                      description=f"Human 16-class accuracy, mean over the {len(data.sets)} OOD sets",
                      source=data.source("raw-data/*/*.csv")))
    return out


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
        *ood_targets(),
    ]
}


def list_targets(eval_set: str | None = None) -> list[Target]:
    """The named targets (those on ``eval_set`` only, when given)."""
    return [t for t in PRESETS.values() if eval_set is None or t.eval_set == eval_set]


def default_target_for(eval_set: str | None) -> str:
    """The named target a projection on ``eval_set`` aims at when given none: the human target of that set
    where it has one (an OOD set, ``human-ood-sketch`` on ``mvh-sketch``), else ``DEFAULT_TARGET``."""
    if eval_set:
        for t in PRESETS.values():
            if t.eval_set == eval_set and t.name.startswith("human-"):
                return t.name
    return DEFAULT_TARGET


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

    Options override the preset's metric and eval set only for numbers; for a preset they must agree with it,
    because a preset's value means something only on its own metric and set. A protocol given with a preset
    says which of the runs' fine-tunings is compared with it (the value to reach does not depend on it).
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
        return preset if protocol is None else dataclasses.replace(preset, protocol=protocol)
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
