"""The 16-class out-of-distribution sets of Geirhos et al. 2021 and human accuracy on them (``data/model-vs-
human/human_ood.json``, recomputed by ``tools/ood_human_targets.py`` from bethgelab/model-vs-human's raw data).

The run database names each set ``mvh-<set>`` (``mvh-sketch``, ``mvh-contrast``, ...) and their mean ``mvh-mean``:
``scaling`` turns them into named targets (``human-ood-sketch``, ``human-ood-mean``), and ``train`` records a
fine-tuned model's 16-class top-1 under the same names (``--ood mvh-sketch=DIR``), leaving out the images of the
conditions the human numbers leave out, so that model and humans are scored on the same conditions.

A condition is read from a model-vs-human file name, whose fourth ``_``-separated field it is
(``0001_cop_s01_c30_knife_10_n03041632_7380.png``: contrast ``c30``), and compared by value (``3`` = ``3.0``,
``false`` = ``False``), as the human files spell conditions differently from the repository's lists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "model-vs-human" / "human_ood.json"
PREFIX = "mvh-"
MEAN_EVAL_SET = "mvh-mean"
METRIC = "top1"  # humans give one answer: the 16-class top-1


@dataclass(frozen=True)
class OodSet:
    """One set: its run-database name, human accuracy (a fraction) and how it was computed."""

    dataset: str
    eval_set: str
    human_accuracy: float
    trials: int
    subjects: int
    conditions: tuple[str, ...]
    excluded_conditions: tuple[str, ...]
    files: str


@dataclass(frozen=True)
class HumanOod:
    """Everything ``human_ood.json`` holds: the sets, their mean, the source and the 16-class map."""

    sets: tuple[OodSet, ...]
    mean: float
    repository: str
    commit: str
    paper: str
    method: str
    licence: str
    categories: dict[str, tuple[str, ...]]  # category -> the ImageNet WNIDs read as it

    def by_eval_set(self, name: str) -> OodSet | None:
        return next((s for s in self.sets if s.eval_set == name), None)

    def source(self, files: str) -> str:
        """A citation of ``files`` of the repository at its commit."""
        return f"{self.paper}; {self.repository}@{self.commit} {files} (recomputed by tools/ood_human_targets.py)"


@cache
def human_ood() -> HumanOod:
    """The shipped human OOD data (read once)."""
    doc: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    sets = tuple(OodSet(dataset=s["dataset"], eval_set=s["eval_set"], human_accuracy=float(s["value"]),
                        trials=int(s["trials"]), subjects=int(s["subjects"]), conditions=tuple(s["conditions"]),
                        excluded_conditions=tuple(s["excluded_conditions"]), files=str(s["files"]))
                 for s in doc["sets"])
    categories = {str(k): tuple(v) for k, v in doc["sixteen_classes"]["categories"].items()}
    return HumanOod(sets=sets, mean=float(doc["mean"]["value"]), repository=doc["repository"], commit=doc["commit"],
                    paper=doc["paper"], method=doc["method"], licence=doc["licence"], categories=categories)


def same_condition(a: str, b: str) -> bool:
    """Equal text (any case), or the same number (``3`` and ``3.0``)."""
    if a.strip().lower() == b.strip().lower():
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def condition_of(file_name: str) -> str | None:
    """The condition field of a model-vs-human image name, or None when the name has no such field."""
    parts = Path(file_name).stem.split("_")
    return parts[3] if len(parts) >= 5 and parts[0].isdigit() else None


def left_out(eval_set: str, file_name: str) -> bool:
    """Whether the human number of ``eval_set`` leaves out the condition of this image. A file name without a
    condition field in a set that leaves conditions out is a ``ValueError`` (it cannot be placed)."""
    found = human_ood().by_eval_set(eval_set)
    if found is None or not found.excluded_conditions:
        return False
    condition = condition_of(file_name)
    if condition is None:
        raise ValueError(f"{file_name!r} has no model-vs-human condition field (NNNN_xx_sNN_CONDITION_...): "
                         f"{eval_set} leaves conditions {', '.join(found.excluded_conditions)} out")
    return any(same_condition(condition, c) for c in found.excluded_conditions)
