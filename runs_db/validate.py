"""Checks and normalisation of one run record, whatever file format it came from.

Every importer (MAE logs, CSV, run.json, JSON lines) turns its input into plain dicts and calls
``build_record``, which types each field, derives what can be derived and raises a ``ValidationError``
naming file/row/column for anything wrong. Nothing here touches the database.

Derivations (applied only where the field is missing):

- ``arch``: a registered name (``vit_s14``) or published log name (``vits14``) is stored as the registry
  name; unregistered architectures are kept verbatim but must then give ``n_params`` and ``patch_px``.
- ``patch_px``, ``n_params``, ``n_params_nonembed``, ``n_params_with_head`` from ``runs_db.archs`` for a
  registered arch (a given ``n_params`` / ``patch_px`` must equal the registry value: fail loudly).
- ``data_hours = data_frames / 3600`` (corpora decoded at 1 frame/s, as in the study).
- ``samples_seen = pretrain_steps x global_batch``.
- ``pretrain_flops = mae_flops_for_arch(shape, image_px, mask_ratio).total x samples_seen`` with
  ``flops_method = FLOPS_METHOD_ANALYTIC``; a given ``pretrain_flops`` without a method is ``'reported'``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from . import archs
from .errors import ValidationError
from .ids import canonical_json, run_id_for
from .schema import PHASES, SELECTIONS, STATUSES
from .types import JSON, Evaluation, JSONObject, Value

FRAMES_PER_HOUR = 3600  # 1 frame/s
# SQLite stores integers in 64 bits; a larger one cannot be stored at all.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Values no run can have. Beyond them a number is a typo or garbage, and it would overflow float arithmetic
# downstream (a 1e308-hour run makes every projection's x k multiply overflow). A billion hours is 114,000
# years of video, ~100x the largest video corpora; 65,536 px is ~70x the largest resolution in the study.
PLAUSIBLE_MAX: dict[str, float] = {"data_hours": 1e9, "image_px": 65_536, "patch_px": 65_536}
# Nesting deeper than this in a config/tags/package_versions object is refused (deep enough for any real
# config; much deeper input exhausts Python's recursion limit in every JSON reader downstream).
MAX_JSON_DEPTH = 64
FLOPS_METHOD_ANALYTIC = "analytic:mae-matmul-v1 x samples_seen"

# Column -> kind. Kinds: str, int+ (> 0), int0 (>= 0), int, float+ (> 0), float0 (>= 0), fraction01
# ((0, 1]), mask ([0, 1)), status, json (a dict, stored as canonical JSON text), time (ISO-8601, to UTC).
RUN_FIELDS: dict[str, str] = {
    "name": "str",
    "arch": "str",
    "n_params": "int+",
    "n_params_nonembed": "int+",
    "n_params_with_head": "int+",
    "patch_px": "int+",
    "image_px": "int+",
    "dataset": "str",
    "data_frames": "int+",
    "data_hours": "float+",
    "data_fraction": "fraction01",
    "subset_seed": "int",
    "train_seed": "int",
    "pretrain_steps": "int0",
    "global_batch": "int+",
    "samples_seen": "int0",
    "pretrain_flops": "float0",
    "flops_method": "str",
    "mask_ratio": "mask",
    "status": "status",
    "source": "str",
    "source_file": "str",
    "code_version": "str",
    "package_versions": "json",
    "host": "str",
    "started_at": "time",
    "finished_at": "time",
}
REQUIRED_RUN_FIELDS = ("arch", "image_px", "status", "source")
# Provenance of the import itself, not of the run: never part of the content compared for conflicts.
NON_CONTENT_FIELDS = ("source_file",)

EVAL_FIELDS: dict[str, str] = {
    "protocol": "str",
    "eval_set": "str",
    "metric": "str",
    "selection": "selection",
    "value": "accuracy",
    "epoch": "int0",
    "n_epochs": "int+",
    "source_file": "str",
}
REQUIRED_EVAL_FIELDS = ("protocol", "eval_set", "metric", "selection", "value")
EVAL_KEY = ("protocol", "eval_set", "metric", "selection")

GRID_AXES: dict[str, str] = {
    "n_params": "parameters (ViT encoder incl. class token and position embeddings; no head, no decoder)",
    "n_params_nonembed": "parameters (encoder without position embeddings, which grow with image_px)",
    "n_params_with_head": "parameters (encoder + 1000-way BatchNorm/linear fine-tune head)",
    "patch_px": "patch side in px",
    "image_px": "image side in px (pretraining and fine-tuning)",
    "data_frames": "frames in the pretraining subset (video decoded at 1 frame/s)",
    "data_hours": "hours of video at 1 frame/s (data_frames / 3600)",
    "data_fraction": "fraction of the full pretraining corpus",
    "subset_seed": "which random subset of that size (integer id)",
    "samples_seen": "images (frames) processed in pretraining = steps x global batch",
    "pretrain_flops": "pretraining FLOPs (see flops_method; analytic = matmul FLOPs, 2 per multiply-add)",
    "mask_ratio": "MAE mask ratio (fraction of patches hidden from the encoder)",
    "value": "evaluation value as a fraction in [0, 1]",
}


@dataclass(frozen=True)
class Loc:
    """Where a value came from, for error messages; ``prefix`` is a JSON path prefix (``evals[2].``)."""

    file: str
    row: int | None = None
    prefix: str = ""

    def error(self, column: str | None, message: str) -> ValidationError:
        col = f"{self.prefix}{column}" if column is not None else (self.prefix.rstrip(".") or None)
        return ValidationError(message, file=self.file, row=self.row, column=col)

    def sub(self, prefix: str, row: int | None = None) -> Loc:
        return Loc(self.file, self.row if row is None else row, self.prefix + prefix)


@dataclass
class RunRecord:
    """A validated run: typed ``run`` columns, its ``config``, evals, history and tags."""

    run_id: str
    run: dict[str, Value]
    config: JSONObject
    evals: list[Evaluation] = field(default_factory=list)
    eval_locs: list[Loc] = field(default_factory=list)
    history: list[tuple[str, str, int, int, float | None]] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    loc: Loc = field(default_factory=lambda: Loc("<input>"))

    @property
    def config_json(self) -> str:
        return canonical_json(self.config)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _number(value: object, loc: Loc, column: str) -> float:
    if isinstance(value, bool):
        raise loc.error(column, f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        x = float(value)
    elif isinstance(value, str):
        try:
            x = float(value.strip())
        except ValueError:
            raise loc.error(column, f"expected a number, got {value.strip()!r}") from None
    else:
        raise loc.error(column, f"expected a number, got {type(value).__name__} {value!r}")
    if math.isnan(x):
        raise loc.error(column, "value is NaN")
    if math.isinf(x):
        raise loc.error(column, f"value is {x}")
    return x


def _integer(value: object, loc: Loc, column: str) -> int:
    n: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isascii() and value.strip().lstrip("+-").isdigit():
        n = int(value.strip())
    else:
        x = _number(value, loc, column)
        if not x.is_integer():
            raise loc.error(column, f"expected an integer, got {x!r}")
        n = int(x)
    check_int64(n, loc, column)
    return n


def check_int64(n: int, loc: Loc, column: str) -> None:
    """A one-line error for an integer SQLite cannot store (64 bits)."""
    if not INT64_MIN <= n <= INT64_MAX:
        digits = len(str(abs(n)))
        raise loc.error(column, f"integer too large ({digits} digits; at most {INT64_MAX:,} can be stored)")


def json_depth(value: object, loc: Loc, column: str) -> None:
    """Refuse JSON nested deeper than ``MAX_JSON_DEPTH`` (iteratively: no recursion on hostile input)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise loc.error(column, f"nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, Mapping) else item
            stack.extend((child, depth + 1) for child in children)


def loads_json(text: str | bytes, loc: Loc, column: str | None) -> JSON:
    """``json.loads`` with one-line errors, also for input nested too deeply for the parser."""
    try:
        value: JSON = json.loads(text)
    except json.JSONDecodeError as e:
        raise loc.error(column, f"not valid JSON ({e.msg})") from None
    except RecursionError:
        raise loc.error(column, f"JSON nested too deeply (more than {MAX_JSON_DEPTH} levels)") from None
    return value


def _timestamp(value: object, loc: Loc, column: str) -> str:
    if not isinstance(value, str):
        raise loc.error(column, f"expected an ISO-8601 timestamp, got {value!r}")
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise loc.error(column, f"expected an ISO-8601 timestamp, got {value.strip()!r}") from None
    # Naive timestamps are taken as UTC (what the training code writes); all are stored in UTC.
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def coerce_text(value: object, loc: Loc, column: str) -> str:
    """``coerce`` of kind ``str``: stripped text without control characters."""
    if not isinstance(value, str):
        raise loc.error(column, f"expected text, got {value!r}")
    text = value.strip()
    bad = next((c for c in text if (c < " " and c != "\t") or "\x7f" <= c <= "\x9f"), None)
    if bad is not None:  # a NUL or escape sequence in a name would corrupt every table it is shown in
        raise loc.error(column, f"contains the control character {bad!r}")
    return text


def coerce_int(value: object, kind: str, loc: Loc, column: str) -> int:
    """``coerce`` of the integer kinds ``int``, ``int+`` (> 0) and ``int0`` (>= 0)."""
    n = _integer(value, loc, column)
    if kind == "int+" and n <= 0:
        raise loc.error(column, f"must be positive, got {n}")
    if kind == "int0" and n < 0:
        raise loc.error(column, f"must be non-negative, got {n}")
    return n


def coerce(value: object, kind: str, loc: Loc, column: str) -> str | int | float:
    """Type one present (non-missing) value by ``kind``; raise a one-line ``ValidationError`` if bad."""
    if kind == "str":
        return coerce_text(value, loc, column)
    if kind in ("int", "int+", "int0"):
        return coerce_int(value, kind, loc, column)
    if kind in ("float+", "float0", "fraction01", "mask", "float"):
        x = _number(value, loc, column)
        if kind == "float+" and x <= 0:
            raise loc.error(column, f"must be positive, got {x!r}")
        if kind == "float0" and x < 0:
            raise loc.error(column, f"must be non-negative, got {x!r}")
        if kind == "fraction01" and not 0 < x <= 1:
            raise loc.error(column, f"must be a fraction in (0, 1], got {x!r}")
        if kind == "mask" and not 0 <= x < 1:
            raise loc.error(column, f"must be in [0, 1), got {x!r}")
        return x
    if kind == "accuracy":
        x = _number(value, loc, column)
        if x > 1:
            raise loc.error(column, f"{x!r} looks like a percent; expected a fraction in [0, 1]")
        if x < 0:
            raise loc.error(column, f"must be a fraction in [0, 1], got {x!r}")
        return x
    if kind == "status":
        s = str(value).strip().upper()
        if s not in STATUSES:
            raise loc.error(column, f"status must be one of {', '.join(STATUSES)}, got {value!r}")
        return s
    if kind == "selection":
        s = str(value).strip()
        if s not in SELECTIONS:
            raise loc.error(column, f"selection must be one of {', '.join(SELECTIONS)}, got {value!r}")
        return s
    if kind == "json":
        if isinstance(value, str):
            value = loads_json(value, loc, column)
        if not isinstance(value, dict):
            raise loc.error(column, f"expected a JSON object, got {type(value).__name__}")
        json_depth(value, loc, column)
        try:
            return canonical_json(value)
        except (TypeError, ValueError) as e:
            raise loc.error(column, f"not valid JSON ({e})") from None
    if kind == "time":
        return _timestamp(value, loc, column)
    raise AssertionError(f"unknown kind {kind}")


def _derive(run: dict[str, Any], loc: Loc) -> None:
    """Fill what the registry and the documented formulas give; check given values against them."""
    try:
        shape = archs.get_arch(run["arch"])
    except KeyError:
        shape = None
    if shape is not None:
        run["arch"] = shape.name
        given_patch = run.get("patch_px")
        if given_patch is not None and given_patch != shape.patch_px:
            raise loc.error("patch_px", f"{given_patch} differs from the {shape.patch_px}-px patch of "
                                        f"{shape.name}")
        run["patch_px"] = shape.patch_px
        if run["image_px"] % shape.patch_px:
            raise loc.error("image_px", f"{run['image_px']} px is not a multiple of the "
                                        f"{shape.patch_px}-px patch")
        expected = archs.encoder_params(shape, run["image_px"])
        if run.get("n_params") is not None and run["n_params"] != expected:
            raise loc.error(
                "n_params",
                f"{run['n_params']:,} differs from the {expected:,} encoder parameters of {shape.name} at "
                f"{run['image_px']} px (class token + position embeddings + blocks; no head/decoder)",
            )
        run["n_params"] = expected
        if run.get("n_params_nonembed") is None:
            run["n_params_nonembed"] = archs.encoder_params(shape, run["image_px"], position_embedding=False)
        if run.get("n_params_with_head") is None:
            run["n_params_with_head"] = expected + archs.head_params(shape.width)
    else:
        for column in ("n_params", "patch_px"):
            if run.get(column) is None:
                raise loc.error(column, f"missing, and architecture {run['arch']!r} is not in the registry")
    if run.get("data_hours") is None:
        if run.get("data_frames") is None:
            raise loc.error("data_hours", "missing (give data_hours or data_frames)")
        run["data_hours"] = run["data_frames"] / FRAMES_PER_HOUR
    if run.get("samples_seen") is None and run.get("pretrain_steps") is not None and run.get("global_batch"):
        run["samples_seen"] = run["pretrain_steps"] * run["global_batch"]
    if run.get("pretrain_flops") is None:
        if shape is not None and run.get("samples_seen") is not None and run.get("mask_ratio") is not None:
            per_image = archs.mae_flops_for_arch(shape, run["image_px"], run["mask_ratio"]).total
            run["pretrain_flops"] = per_image * run["samples_seen"]
            run["flops_method"] = run.get("flops_method") or FLOPS_METHOD_ANALYTIC
        else:
            run["flops_method"] = None  # a method without a number says nothing
    elif run.get("flops_method") is None:
        run["flops_method"] = "reported"


def _check_plausible(run: dict[str, Any], loc: Loc) -> None:
    for column, kind in RUN_FIELDS.items():
        value = run.get(column)
        if value is None:
            continue
        if kind.startswith("int"):
            check_int64(value, loc, column)
        limit = PLAUSIBLE_MAX.get(column)
        if limit is not None and value > limit:
            raise loc.error(column, f"{value:g} is beyond any real run (at most {limit:g}); a typo?")
    flops = run.get("pretrain_flops")
    if flops is not None and math.isinf(flops):
        raise loc.error("pretrain_flops", "overflows (infinite)")


def build_eval(raw: Mapping[str, object], loc: Loc, *, source_file: str | None = None) -> Evaluation:
    """Type one evaluation; unknown keys are refused so a typo is not silently dropped."""
    unknown = sorted(set(raw) - set(EVAL_FIELDS) - {"run_id"})
    if unknown:
        raise loc.error(unknown[0], f"unknown eval field (known: {', '.join(EVAL_FIELDS)})")
    ev: dict[str, Value] = {}
    for column, kind in EVAL_FIELDS.items():
        value = raw.get(column)
        if _missing(value):
            if column in REQUIRED_EVAL_FIELDS:
                raise loc.error(column, "missing")
            ev[column] = None
        else:
            ev[column] = coerce(value, kind, loc, column)
    if ev["source_file"] is None:
        ev["source_file"] = source_file
    return cast(Evaluation, ev)  # every EVAL_FIELDS column, typed by its kind above


def build_history(raw: Mapping[str, object], loc: Loc) -> tuple[str, str, int, int, float | None]:
    """One history point ``(phase, key, step, segment, value)``; a NaN value (a diverged loss) is NULL."""
    for column in ("phase", "key", "step"):
        if _missing(raw.get(column)):
            raise loc.error(column, "missing")
    phase = str(raw["phase"])
    if phase not in PHASES:
        raise loc.error("phase", f"must be one of {', '.join(PHASES)}, got {phase!r}")
    step = coerce_int(raw["step"], "int", loc, "step")
    segment = 0 if _missing(raw.get("segment")) else coerce_int(raw["segment"], "int0", loc, "segment")
    value = raw.get("value")
    number: float | None = None
    if not _missing(value):
        try:
            number = _number(value, loc, "value")
        except ValidationError:
            if isinstance(value, float) and math.isnan(value):
                number = None
            else:
                raise
    return phase, coerce_text(raw["key"], loc, "key"), step, segment, number


def build_record(
    fields: Mapping[str, object],
    loc: Loc,
    *,
    config: Mapping[str, object] | None = None,
    evals: Sequence[tuple[Mapping[str, object], Loc]] = (),
    history: Sequence[tuple[Mapping[str, object], Loc]] = (),
    tags: Mapping[str, object] | None = None,
    run_id: object = None,
    config_from_fields: Sequence[str] = (),
    extra_config: Mapping[str, object] | None = None,
) -> RunRecord:
    """Validate run fields (``RUN_FIELDS`` names) and attached data into a ``RunRecord``.

    ``config`` is hashed into the run id; without one, the config is the subset ``config_from_fields``
    of the typed fields (used by CSV rows that carry no ``config_json``), plus ``extra_config`` (a run's
    identity in another tracker, the settings that tell runs apart there). A given ``run_id`` must equal
    the hash of the config.
    """
    run: dict[str, Value] = {}
    for column, kind in RUN_FIELDS.items():
        value = fields.get(column)
        if _missing(value):
            if column in REQUIRED_RUN_FIELDS:
                raise loc.error(column, "missing")
            run[column] = None
        else:
            run[column] = coerce(value, kind, loc, column)
    _check_plausible(run, loc)
    _derive(run, loc)
    _check_plausible(run, loc)  # derived values too (hours from frames, samples = steps x batch)

    if config is None:
        config = {c: run[c] for c in config_from_fields if run.get(c) is not None} | dict(extra_config or {})
    if not isinstance(config, Mapping) or not config:
        raise loc.error("config", "missing or empty: the run id is the hash of the config")
    json_depth(config, loc, "config")
    json_depth(tags or {}, loc, "tags")
    try:
        config_dict: JSONObject = json.loads(canonical_json(dict(config)))
    except (TypeError, ValueError) as e:
        raise loc.error("config", f"not serialisable as strict JSON ({e})") from None
    rid = run_id_for(config_dict)
    if not _missing(run_id) and str(run_id).strip() != rid:
        raise loc.error("run_id", f"{run_id!r} is not the hash of this record's config ({rid})")

    rec = RunRecord(run_id=rid, run=run, config=config_dict, loc=loc)
    seen: dict[tuple[str, str, str, str], Evaluation] = {}
    source_file = run.get("source_file")
    for raw, eloc in evals:
        ev = build_eval(raw, eloc, source_file=source_file if isinstance(source_file, str) else None)
        eval_key = eval_key_of(ev)
        if eval_key in seen:
            if not same_eval(seen[eval_key], ev):
                raise eloc.error("value", f"duplicate {'/'.join(eval_key)} with a different value")
            continue
        seen[eval_key] = ev
        rec.evals.append(ev)
        rec.eval_locs.append(eloc)
    points: dict[tuple[str, str, int, int], float | None] = {}
    for raw, hloc in history:
        phase, key, step, segment, value = build_history(raw, hloc)
        where = (phase, key, step, segment)
        if where in points:
            if not same_value(points[where], value):
                raise hloc.error("value", f"duplicate history point {phase}/{key} step {step} "
                                          "with another value")
            continue
        points[where] = value
        rec.history.append((phase, key, step, segment, value))
    for key, value in (tags or {}).items():
        rec.tags[str(key)] = value if isinstance(value, str) else canonical_json(value)
    return rec


def eval_key_of(ev: Evaluation) -> tuple[str, str, str, str]:
    """The ``EVAL_KEY`` of an evaluation: (protocol, eval_set, metric, selection)."""
    return ev["protocol"], ev["eval_set"], ev["metric"], ev["selection"]


def same_value(a: Value, b: Value) -> bool:
    """Equality for stored values: floats to 12 significant digits (text round trips are exact anyway)."""
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def same_eval(a: Evaluation, b: Evaluation) -> bool:
    return (same_value(a["value"], b["value"]) and same_value(a["epoch"], b["epoch"])
            and same_value(a["n_epochs"], b["n_epochs"]))
