"""Runs kept elsewhere (a W&B or hand-made table, an MLflow tracking store) read into run records.

A ``ColumnMap`` says which of the source's columns is which run field or evaluation; every record then goes
through ``validate.build_record`` like any other import: one line naming the row and the source's own column
for anything wrong, and nothing written unless every row is good::

    --map 'Name=name,arch=arch,img=image_px,hours=data_hours,val_acc5=imagenet-val/top5'
    --set 'protocol=finetune-in1k-2pct,selection=best-epoch' --percent

Left of ``=`` a column of the source (split at the last ``=``), right of it:

- a run field (``runs_db.records``: ``arch``, ``image_px``, ``data_hours`` or ``data_frames``, ``n_params``,
  ``patch_px``, ``name``, ``status``, ``started_at``, ...);
- ``EVAL_SET/METRIC`` (``imagenet-val/top5``): the column holds that evaluation's value, a fraction (or a
  percent, with ``percent``); its protocol and selection come from ``set`` or from mapped columns;
- ``protocol``, ``eval_set``, ``metric``, ``selection``, ``value``, ``epoch``, ``n_epochs``: a long table, one
  row per run x evaluation (the rows of one run are pooled, as in the native CSV);
- ``foreign_id``: the source's own run id. It joins the config, whose hash is the run id, so that two runs
  with the same settings stay two runs (a mapped ``name`` joins it too);
- ``config.KEY``: joins the config as well (a learning rate that tells runs apart); ``tag.KEY``: a tag.

``set`` gives what is the same for every row (``protocol``, ``selection``, ``image_px``, ...). A mapping file
(``.toml`` or ``.json``) holds the same: ``percent = true``, a ``[columns]`` table (source column = target) and
a ``[set]`` table. A run's status is COMPLETED unless a column or ``set`` says otherwise; the run states of
W&B (finished, crashed, failed, killed, running) and MLflow (FINISHED, FAILED, KILLED, RUNNING, SCHEDULED) are
read as COMPLETED, FAILED or RUNNING.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import ValidationError
from .records import CSV_CONFIG_FIELDS, merge_into, read_csv_rows
from .validate import RUN_FIELDS, Loc, RunRecord, build_record

EVAL_TARGETS = ("protocol", "eval_set", "metric", "selection", "value", "epoch", "n_epochs")
# What ``set`` may give: any run field but the import's own provenance, and any evaluation field but its value.
SET_FIELDS = tuple(f for f in (*RUN_FIELDS, *EVAL_TARGETS) if f not in ("source_file", "value"))
STATES = {"finished": "COMPLETED", "completed": "COMPLETED", "crashed": "FAILED", "failed": "FAILED",
          "killed": "FAILED", "running": "RUNNING", "scheduled": "RUNNING"}


def _target_error(target: str) -> ValidationError:
    return ValidationError(f"mapping: {target!r} is not a run field, an evaluation (EVAL_SET/METRIC such as "
                           "imagenet-val/top5), an evaluation field (protocol, eval_set, metric, selection, value, "
                           "epoch, n_epochs), foreign_id, config.KEY or tag.KEY")


def check_target(target: str) -> None:
    """A one-line ``ValidationError`` unless ``target`` is something a source column can be mapped to."""
    if (target in RUN_FIELDS and target != "source_file") or target in EVAL_TARGETS or target == "foreign_id":
        return
    head, dot, key = target.partition(".")
    if dot and head in ("config", "tag") and key.strip():
        return
    eval_set, slash, metric = target.rpartition("/")
    if slash and eval_set.strip() and metric.strip():
        return
    raise _target_error(target)


def is_evaluation(target: str) -> bool:
    """Whether ``target`` names one evaluation (``EVAL_SET/METRIC``) rather than a field."""
    return "/" in target and not target.startswith(("config.", "tag."))


def _pairs(spec: str, what: str) -> list[tuple[str, str]]:
    out = []
    for part in spec.split(","):
        if not part.strip():
            continue
        left, eq, right = part.rpartition("=")
        if not eq or not left.strip() or not right.strip():
            raise ValidationError(f"{what}: expected NAME=VALUE, got {part.strip()!r}")
        out.append((left.strip(), right.strip()))
    return out


@dataclass(frozen=True)
class ColumnMap:
    """Which source column is which run field or evaluation (``columns``: source column, target), what is the
    same for every row (``constants``: field, value), and whether evaluations are percents."""

    columns: tuple[tuple[str, str], ...] = ()
    constants: tuple[tuple[str, str], ...] = ()
    percent: bool = False

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for column, target in self.columns:
            check_target(target)
            if target in seen:
                raise ValidationError(f"mapping: columns {seen[target]!r} and {column!r} are both mapped to "
                                      f"{target!r}")
            seen[target] = column
        sources = [c for c, _ in self.columns]
        if len(set(sources)) != len(sources):
            dup = next(c for c in sources if sources.count(c) > 1)
            raise ValidationError(f"mapping: column {dup!r} is mapped twice")
        for field, _ in self.constants:
            if field not in SET_FIELDS:
                raise ValidationError(f"set: {field!r} is not a run or evaluation field "
                                      "(e.g. protocol, selection, image_px)")
            if field in seen:
                raise ValidationError(f"set: {field!r} is also mapped from column {seen[field]!r}")

    @classmethod
    def parse(cls, spec: str | None = None, *, constants: str | Mapping[str, object] | None = None,
              percent: bool = False) -> ColumnMap:
        """From ``'COLUMN=TARGET,...'`` and ``constants`` as ``'FIELD=VALUE,...'`` or a mapping."""
        sets = _pairs(constants, "set") if isinstance(constants, str) else \
            [(str(k), str(v)) for k, v in (constants or {}).items()]
        return cls(tuple(_pairs(spec or "", "mapping")), tuple(sets), percent)

    @classmethod
    def read(cls, path: str | Path) -> ColumnMap:
        """A mapping file: ``.toml`` or ``.json`` with ``percent``, ``[columns]`` and ``[set]``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
        except (OSError, UnicodeDecodeError) as e:
            raise ValidationError(f"cannot read the mapping file: {e}", file=str(path)) from None
        except (ValueError, RecursionError) as e:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            raise ValidationError(f"not a valid mapping file ({str(e).splitlines()[0] if str(e) else e})",
                                  file=str(path)) from None
        if not isinstance(data, dict) or set(data) - {"columns", "set", "percent"}:
            raise ValidationError("a mapping file holds [columns], [set] and percent, nothing else", file=str(path))
        columns, sets, percent = data.get("columns", {}), data.get("set", {}), data.get("percent", False)
        if not isinstance(columns, dict) or not isinstance(sets, dict) or not isinstance(percent, bool):
            raise ValidationError("[columns] and [set] must be tables, percent true or false", file=str(path))
        if not all(isinstance(v, str) for v in columns.values()):
            raise ValidationError("every [columns] entry maps a column to a target name (text)", file=str(path))
        if not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in sets.values()):
            raise ValidationError("every [set] entry is text or a number", file=str(path))
        return cls(tuple((str(k), v) for k, v in columns.items()), tuple((k, str(v)) for k, v in sets.items()), percent)

    @classmethod
    def of(cls, mapping: ColumnMap | str | Path | Mapping[str, str] | None, *,
           constants: str | Mapping[str, object] | None = None, percent: bool = False) -> ColumnMap:
        """A ``ColumnMap`` from what a caller gives: one already built, a mapping file (a path, or text naming an
        existing ``.toml``/``.json`` file), ``'COLUMN=TARGET,...'`` or a dict; ``constants`` and ``percent`` are
        added to it."""
        if isinstance(mapping, ColumnMap):
            base = mapping
        elif isinstance(mapping, Path) or (isinstance(mapping, str) and "=" not in mapping and mapping.strip()):
            base = cls.read(mapping)
        elif isinstance(mapping, Mapping):
            base = cls(tuple((str(k), str(v)) for k, v in mapping.items()))
        else:
            base = cls.parse(mapping)
        extra = cls.parse(None, constants=constants)
        return cls(base.columns, (*base.constants, *extra.constants), base.percent or percent)

    def under(self, auto: Iterable[tuple[str, str]]) -> ColumnMap:
        """This map over defaults ``auto``: an automatic entry is kept unless this map names its column or its
        target, or gives that target for every row."""
        taken = {c for c, _ in self.columns} | {t for _, t in self.columns} | {f for f, _ in self.constants}
        kept = tuple((c, t) for c, t in auto if c not in taken and t not in taken)
        return ColumnMap((*kept, *self.columns), self.constants, self.percent)

    def to_dict(self) -> dict[str, object]:
        return {"columns": dict(self.columns), "set": dict(self.constants), "percent": self.percent}


@dataclass(frozen=True)
class SourceLoc(Loc):
    """A ``Loc`` that names the source's own column (``names``: our field, their column) in its errors, and
    says how to give a field that no column was mapped to."""

    names: tuple[tuple[str, str], ...] = ()

    def error(self, column: str | None, message: str) -> ValidationError:
        theirs = dict(self.names).get(column or "")
        if theirs is not None:
            return ValidationError(f"{message} (read as {column})", file=self.file, row=self.row, column=theirs)
        if column is not None and message == "missing":
            message = (f"no {column}: map a column to it (--map COLUMN={column}) or give it for every run "
                       f"(--set {column}=VALUE)")
        return super().error(column, message)


def _missing(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip()) or (isinstance(cell, float) and cell != cell)


def _scaled(cell: object, percent: bool) -> object:
    if not percent or isinstance(cell, bool):
        return cell
    try:
        return float(str(cell).strip()) / 100.0
    except ValueError:
        return cell  # validation says what is wrong with it


def _text(cell: object) -> str:
    return cell if isinstance(cell, str) else json.dumps(cell)


def record_of(row: Mapping[str, object], cmap: ColumnMap, loc: Loc, source: str) -> RunRecord:
    """One source row (column -> cell) as a validated run record."""
    fields: dict[str, object] = {"source": source, "source_file": f"{loc.file}:{loc.row}" if loc.row else loc.file}
    common: dict[str, object] = {}  # evaluation fields shared by the row's evaluations
    for field, value in cmap.constants:
        (common if field in EVAL_TARGETS else fields)[field] = value
    extra: dict[str, object] = {}
    settings: dict[str, object] = {}
    tags: dict[str, object] = {}
    wide: list[tuple[str, str, object]] = []
    names: dict[str, str] = {}
    for column, target in cmap.columns:
        cell = row.get(column)
        if _missing(cell):
            continue
        if is_evaluation(target):
            wide.append((column, target, cell))
            continue
        names[target] = column
        head, _, key = target.partition(".")
        if target == "foreign_id":
            extra["foreign_id"] = _text(cell).strip()
        elif head == "config" and key:
            settings[key] = cell
        elif head == "tag" and key:
            tags[key] = _text(cell)
        elif target in EVAL_TARGETS:
            common[target] = cell
        else:
            fields[target] = cell
    status = fields.setdefault("status", "COMPLETED")  # a table of finished runs need not say so
    if isinstance(status, str):
        fields["status"] = STATES.get(status.strip().lower(), status)
    if settings:
        extra["settings"] = settings
    here = SourceLoc(loc.file, loc.row, names=tuple(names.items()))
    evals: list[tuple[Mapping[str, object], Loc]] = []
    shared = {k: common.get(k) for k in ("protocol", "selection", "epoch", "n_epochs")}
    if not _missing(common.get("value")):
        evals.append(({**shared, "eval_set": common.get("eval_set"), "metric": common.get("metric"),
                       "value": _scaled(common["value"], cmap.percent)}, here))
    for column, target, cell in wide:
        eval_set, _, metric = target.rpartition("/")
        evals.append(({**shared, "eval_set": eval_set, "metric": metric, "value": _scaled(cell, cmap.percent)},
                      SourceLoc(loc.file, loc.row, names=(*here.names, ("value", column)))))
    return build_record(fields, here, evals=evals, tags=tags, config_from_fields=CSV_CONFIG_FIELDS,
                        extra_config=extra)


def records_from_table(rows: Iterable[tuple[Loc, Mapping[str, object]]], cmap: ColumnMap, *, source: str,
                       errors: list[ValidationError] | None = None) -> list[RunRecord]:
    """Validated run records of source rows, the rows of one run pooled. Raises on the first bad row, or, with
    ``errors`` (a list), appends every problem there and returns the good records."""
    merged: dict[str, RunRecord] = {}
    for loc, row in rows:
        try:
            try:
                merge_into(merged, record_of(row, cmap, loc, source))
            except ValidationError as e:
                if "conflicts with row" in e.message or "duplicate" in e.message:
                    raise ValidationError(f"{e.message}; if these rows are different runs, map a column that tells "
                                          "them apart to name, foreign_id or config.KEY",
                                          file=e.file, row=e.row, column=e.column) from None
                raise
        except ValidationError as e:
            if errors is None:
                raise
            errors.append(e)
    return list(merged.values())


def read_mapped_csv(path: str | Path, cmap: ColumnMap, *, errors: list[ValidationError] | None = None
                    ) -> list[RunRecord]:
    """A W&B or hand-made CSV export (one row per run, or per run x evaluation) read through ``cmap``."""
    path = Path(path)
    shown = str(path)
    if path.is_dir():
        raise ValidationError("is a folder; give the CSV file", file=shown)
    header, rows = read_csv_rows(path, shown)
    if not cmap.columns:
        raise ValidationError("no columns mapped: give the mapping (COLUMN=TARGET,...) or a mapping file", file=shown)
    for column, _ in cmap.columns:
        if column not in header:
            listed = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
            raise ValidationError(f"mapped column is not in the file (its columns: {listed})", file=shown, row=1,
                                  column=column)
        if header.count(column) > 1:
            raise ValidationError("mapped column appears twice in the header", file=shown, row=1, column=column)
    table: list[tuple[Loc, Mapping[str, object]]] = []
    for rowno, cells in enumerate(rows, start=2):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise ValidationError(f"{len(cells)} cells, header has {len(header)}", file=shown, row=rowno)
        table.append((Loc(shown, rowno), dict(zip(header, cells, strict=True))))
    if not table:
        raise ValidationError("no data rows (only a header): nothing to import", file=shown, row=2)
    return records_from_table(table, cmap, source="import:mapped-csv", errors=errors)
