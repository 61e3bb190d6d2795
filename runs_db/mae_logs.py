"""Parse MAE-format JSON-lines logs (the layout of eminorhan/humanlike-vits ``logs/``) into run records.

Layout::

    <root>/pretraining_logs/<arch>_logs/<arch>_<frac>_<seed>_log.txt
    <root>/finetuning_logs/<arch>_logs/<arch>_<frac>_<seed>_log.txt

``<arch>`` is a published name (``vits14``), optionally with the image size (``vith14@448``; 224 px when
absent), ``<frac>`` the fraction of the pretraining corpus and ``<seed>`` the subset seed. A run is keyed
by its pretraining log; its fine-tune log (same name) is optional, a fine-tune log without a pretraining
log is an error.

Pretraining log: one JSON object per line, ``{"train_loss", "train_lr", "it"}``, written when a checkpoint
is saved (every 1,000, 5,000 or 10,000 iterations depending on the run). ``it`` restarts at 0 whenever a
job was resumed from the last checkpoint, so a log is a sequence of *segments*, each starting at
``it == 0`` with ``it`` increasing inside it. **Total iterations = sum over segments of the last ``it``
logged in that segment**: a resumed job continues from the last checkpoint of the previous one, so work
after that checkpoint was lost and is not counted (a segment holding only ``it == 0`` adds nothing).
``it`` is the 0-based index of the iteration at which the line was written, so the count can be low by
at most one iteration per segment (< 1e-5 relative). History steps are cumulative iterations
(previous segments' totals + ``it``), with the segment index kept alongside.

Fine-tune log: one JSON object per epoch, ``{"train_lr", "train_loss", "test_loss", "test_acc1",
"test_acc5", "epoch", "n_parameters"}`` with accuracies in **percent**. Evaluations stored (as fractions):
``best-epoch`` = the first epoch with the highest ``test_acc1`` (the study saved its checkpoint whenever
top-1 improved), and *both* top-1 and top-5 are read at that epoch (top-5 is not maximised separately, so
the pair describes one checkpoint); ``last-epoch`` = the final line. The history keeps the logged keys and
values verbatim (``test_acc1``/``test_acc5`` in percent) with ``step = epoch``.

What the logs do not say (corpus size, batch size, mask ratio, protocol) comes from a ``GridSpec``; the
published one is in ``runs_db.published``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import archs
from .errors import ValidationError
from .types import JSONObject, Value
from .validate import INT64_MAX, PLAUSIBLE_MAX, Loc, RunRecord, build_record, loads_json

LOG_NAME = re.compile(
    r"^(?P<arch>[A-Za-z0-9]+)(?:@(?P<px>\d+))?_(?P<frac>[0-9.eE-]+)_(?P<seed>\d+)_log\.txt$"
)
DEFAULT_IMAGE_PX = 224


@dataclass(frozen=True)
class ArchRecipe:
    """Per arch/resolution facts the logs do not carry."""

    global_batch: int
    mask_ratio: float
    pretrain_lr: float
    finetune_lr: float
    finetune_batch: int


@dataclass(frozen=True)
class GridSpec:
    """How to turn a logs directory into runs: corpus, recipe table, eval naming and provenance."""

    source: str
    dataset: str
    corpus_frames: int
    recipes: dict[str, ArchRecipe]  # keyed by the log label: 'vits14', 'vith14@448', ...
    protocol: str
    eval_set: str
    code_version: str | None = None
    flops_method: str | None = None  # stored with the analytic FLOPs (e.g. to name the batch source)
    config_extra: JSONObject = field(default_factory=dict)  # hashed into the run id
    tags: Callable[[str], dict[str, str]] = lambda label: {}


@dataclass
class LogName:
    label: str  # 'vith14@448'
    arch: str  # 'vith14'
    image_px: int
    fraction: Decimal
    fraction_text: str
    subset_seed: int

    @property
    def run_name(self) -> str:
        return f"{self.label}_{self.fraction_text}_{self.subset_seed}"


def parse_log_name(path: Path, loc: Loc) -> LogName:
    m = LOG_NAME.match(path.name)
    if not m:
        raise loc.error(None, "file name is not <arch>[@<px>]_<fraction>_<seed>_log.txt")
    try:
        fraction = Decimal(m["frac"])
    except InvalidOperation:
        raise loc.error(None, f"bad data fraction {m['frac']!r} in the file name") from None
    if not 0 < fraction <= 1:
        raise loc.error(None, f"data fraction {m['frac']} in the file name is not in (0, 1]")
    px = int(m["px"]) if m["px"] else DEFAULT_IMAGE_PX
    if not 0 < px <= PLAUSIBLE_MAX["image_px"]:
        raise loc.error(None, f"image size {m['px']} px in the file name is not in (0, {PLAUSIBLE_MAX['image_px']:g}]")
    label = f"{m['arch']}@{m['px']}" if m["px"] else m["arch"]
    return LogName(label, m["arch"], px, fraction, m["frac"], int(m["seed"]))


def read_json_lines(path: Path, shown: str,
                    errors: list[ValidationError] | None = None) -> Iterator[tuple[int, JSONObject]]:
    """Yield (line number, object) for each non-blank line; a bad line is a ``ValidationError``, raised, or
    appended to ``errors`` (and skipped) when a list is given."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationError(f"cannot read: {e}", file=shown) from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = loads_json(line, Loc(shown, lineno), None)
            if not isinstance(obj, dict):
                raise ValidationError("expected a JSON object", file=shown, row=lineno)
        except ValidationError as e:
            if errors is None:
                raise
            errors.append(e)
            continue
        yield lineno, obj


def _num(obj: JSONObject, key: str, loc: Loc, *, allow_nan: bool = False) -> float:
    if key not in obj:
        raise loc.error(key, "missing")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise loc.error(key, f"expected a number, got {v!r}")
    if isinstance(v, int) and abs(v) > INT64_MAX:
        raise loc.error(key, f"integer too large ({len(str(abs(v)))} digits)")
    if math.isnan(v) and not allow_nan:
        raise loc.error(key, "value is NaN")
    if math.isinf(v) and not allow_nan:
        raise loc.error(key, f"value is {v}")
    return float(v)


@dataclass
class PretrainSummary:
    steps: int
    segment_ends: list[int]
    history: list[tuple[dict[str, Value], Loc]]


def parse_pretrain_log(path: Path, shown: str) -> PretrainSummary:
    ends: list[int] = []
    history: list[tuple[dict[str, Value], Loc]] = []
    offset = 0
    prev: int | None = None
    for lineno, obj in read_json_lines(path, shown):
        loc = Loc(shown, lineno)
        it_f = _num(obj, "it", loc)
        if not it_f.is_integer() or it_f < 0:
            raise loc.error("it", f"expected a non-negative integer, got {obj['it']!r}")
        it = int(it_f)
        if prev is None or it <= prev:  # a new job: it restarts at 0
            if it != 0:
                raise loc.error("it", f"a resumed segment must start at it=0, got {it}")
            if prev is not None:
                offset += prev
                ends.append(prev)
        prev = it
        segment = len(ends)
        for key in ("train_loss", "train_lr"):
            value = _num(obj, key, loc, allow_nan=True)  # a diverged loss is data, kept as NULL
            history.append(({"phase": "pretrain", "key": key, "step": offset + it, "segment": segment,
                             "value": None if math.isnan(value) else value}, loc))
    if prev is None:
        raise ValidationError("empty pretraining log", file=shown)
    ends.append(prev)
    return PretrainSummary(sum(ends), ends, history)


@dataclass
class FinetuneSummary:
    n_parameters: int
    evals: list[tuple[dict[str, Value], Loc]]
    history: list[tuple[dict[str, Value], Loc]]


FINETUNE_KEYS = ("train_lr", "train_loss", "test_loss", "test_acc1", "test_acc5")


def parse_finetune_log(path: Path, shown: str, protocol: str, eval_set: str) -> FinetuneSummary:
    epochs: list[tuple[int, float, float, Loc]] = []
    history: list[tuple[dict[str, Value], Loc]] = []
    n_parameters: int | None = None
    for lineno, obj in read_json_lines(path, shown):
        loc = Loc(shown, lineno)
        epoch_f = _num(obj, "epoch", loc)
        epoch = int(epoch_f)
        if not epoch_f.is_integer() or epoch != (epochs[-1][0] + 1 if epochs else 0):
            raise loc.error("epoch", f"expected epoch {len(epochs)}, got {obj['epoch']!r}")
        n = int(_num(obj, "n_parameters", loc))
        if n_parameters is not None and n != n_parameters:
            raise loc.error("n_parameters", f"{n} differs from {n_parameters} on earlier lines")
        n_parameters = n
        acc = []
        for key in ("test_acc1", "test_acc5"):
            v = _num(obj, key, loc)
            if not 0 <= v <= 100:
                raise loc.error(key, f"{v!r} is not a percent in [0, 100]")
            acc.append(v)
        epochs.append((epoch, acc[0], acc[1], loc))
        for key in FINETUNE_KEYS:
            value = _num(obj, key, loc, allow_nan=True)
            history.append(({"phase": "finetune", "key": key, "step": epoch,
                             "value": None if math.isnan(value) else value}, loc))
    if not epochs or n_parameters is None:
        raise ValidationError("empty fine-tuning log", file=shown)
    # max() keeps the first of equal values: the first epoch reaching the best top-1.
    best = max(epochs, key=lambda e: e[1])
    last = epochs[-1]
    evals: list[tuple[dict[str, Value], Loc]] = []
    for selection, (epoch, top1, top5, loc) in (("best-epoch", best), ("last-epoch", last)):
        for metric, pct in (("top1", top1), ("top5", top5)):
            ev: dict[str, Value] = {"protocol": protocol, "eval_set": eval_set, "metric": metric,
                                    "selection": selection, "value": pct / 100.0, "epoch": epoch,
                                    "n_epochs": len(epochs), "source_file": shown}
            evals.append((ev, loc))
    return FinetuneSummary(n_parameters, evals, history)


def is_mae_logs_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "pretraining_logs").is_dir() or (path / "finetuning_logs").is_dir())


def read_mae_logs(root: Path, spec: GridSpec, errors: list[ValidationError] | None = None) -> list[RunRecord]:
    """All runs of a logs directory, sorted by pretraining log path; raises on the first bad input, or,
    with ``errors`` (a list), appends the first problem of each bad run there and skips that run."""
    root = Path(root)
    shown_base = root.name

    def shown(p: Path) -> str:
        # Relative names keep provenance stable wherever the directory lives.
        return f"{shown_base}/{p.relative_to(root).as_posix()}"

    pre = sorted((root / "pretraining_logs").glob("*/*_log.txt"))
    fin = {p.name: p for p in sorted((root / "finetuning_logs").glob("*/*_log.txt"))}
    pre_names = {p.name for p in pre}
    if not pre:
        raise ValidationError("no pretraining logs found (expected pretraining_logs/<arch>_logs/*_log.txt)",
                              file=str(root))
    for name, p in fin.items():
        if name not in pre_names:
            orphan = ValidationError("fine-tuning log has no matching pretraining log", file=shown(p))
            if errors is None:
                raise orphan
            errors.append(orphan)

    records = []
    for path in pre:
        try:
            records.append(_read_run(path, spec, shown, fin.get(path.name)))
        except ValidationError as e:
            if errors is None:
                raise
            errors.append(e)
    return records


def _read_run(path: Path, spec: GridSpec, shown: Callable[[Path], str], ft_path: Path | None) -> RunRecord:
    """One run: its pretraining log, and its fine-tuning log when there is one."""
    loc = Loc(shown(path))
    name = parse_log_name(path, loc)
    recipe = spec.recipes.get(name.label)
    if recipe is None:
        raise loc.error(None, f"no recipe for {name.label!r} in grid spec {spec.source!r}")
    try:
        shape = archs.get_arch(name.arch)
    except KeyError:
        raise loc.error(None, f"unknown architecture {name.arch!r}") from None
    summary = parse_pretrain_log(path, loc.file)
    frames = math.ceil(spec.corpus_frames * name.fraction)  # subset size = ceil(N * frac)
    fields: dict[str, Value] = {
        "name": name.run_name,
        "arch": shape.name,
        "image_px": name.image_px,
        "dataset": spec.dataset,
        "data_frames": frames,
        "data_fraction": float(name.fraction),
        "subset_seed": name.subset_seed,
        "pretrain_steps": summary.steps,
        "global_batch": recipe.global_batch,
        "mask_ratio": recipe.mask_ratio,
        "flops_method": spec.flops_method,
        "status": "COMPLETED",
        "source": spec.source,
        "source_file": loc.file,
        "code_version": spec.code_version,
    }
    evals: list[tuple[dict[str, Value], Loc]] = []
    history = list(summary.history)
    if ft_path is not None:
        ft = parse_finetune_log(ft_path, shown(ft_path), spec.protocol, spec.eval_set)
        encoder = archs.encoder_params(shape, name.image_px)
        expected = encoder + archs.head_params(shape.width)
        if ft.n_parameters != expected:
            raise ValidationError(
                f"{ft.n_parameters:,} parameters logged, but {shape.name} at {name.image_px} px has "
                f"{encoder:,} (encoder) + {archs.head_params(shape.width):,} (head) = {expected:,}",
                file=shown(ft_path), row=1, column="n_parameters")
        fields["n_params_with_head"] = ft.n_parameters
        evals = ft.evals
        history += ft.history
    config = {
        **spec.config_extra,
        "name": name.run_name,
        "arch": shape.name,
        "image_px": name.image_px,
        "patch_px": shape.patch_px,
        "dataset": spec.dataset,
        "corpus_frames": spec.corpus_frames,
        "data_fraction": float(name.fraction),
        "subset_seed": name.subset_seed,
        "mask_ratio": recipe.mask_ratio,
        "global_batch": recipe.global_batch,
        "pretrain_lr": recipe.pretrain_lr,
    }
    tags = dict(spec.tags(name.label))
    tags["pretrain_segments"] = ",".join(str(e) for e in summary.segment_ends)
    tags["finetune_recipe"] = json.dumps(
        {"protocol": spec.protocol, "lr": recipe.finetune_lr, "batch": recipe.finetune_batch},
        sort_keys=True)
    return build_record(fields, loc, config=config, evals=evals, history=history, tags=tags)
