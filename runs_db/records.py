"""File formats other than MAE logs: the per-run ``run.json`` record, JSON lines and CSV tables.

``run.json`` (schema ``runs_db/run.json@1``; what ``train`` writes, atomically, into each run's output
directory; JSON lines files hold one such object per line)::

    {
      "schema": "runs_db/run.json@1",       # optional
      "run_id": "3f2a...",                  # optional; if given must equal run_id_for(config)
      "name": "vits14_0.01_2",              # optional label
      "status": "COMPLETED",                # required: RUNNING | COMPLETED | FAILED
      "arch": "vit_s14",                    # required: registry name (or published name 'vits14')
      "image_px": 224,                      # required
      "patch_px": 14,                       # optional for a registered arch (must match it)
      "n_params": 21619584,                 # optional for a registered arch (must match the registry count:
                                            #   encoder + class token + position embeddings, no head/decoder)
      "n_params_nonembed": ..., "n_params_with_head": ...,   # optional, derived for a registered arch
      "dataset": "sayavakepicutego4d",      # optional corpus name
      "data_frames": 179590,                # data size: data_frames and/or data_hours (one required;
      "data_hours": 49.886,                 #   hours = frames / 3600 when only frames are given)
      "data_fraction": 0.01, "subset_seed": 2, "train_seed": 0,     # optional
      "pretrain_steps": 300000, "global_batch": 1024,  # optional; samples_seen = steps x batch if absent
      "samples_seen": 307200000,            # optional: images seen in pretraining
      "pretrain_flops": 1.2e20,             # optional; analytic if absent and arch/samples/mask known
      "flops_method": "profiled:torch",     # optional ('reported' when flops are given without it)
      "mask_ratio": 0.75,                   # optional, in [0, 1)
      "source": "local",                    # optional, default 'local'
      "code_version": "git:abc123+dirty",   # optional provenance ...
      "package_versions": {"torch": "2.4.0"},
      "host": "node17",
      "started_at": "2025-01-01T10:00:00Z", "finished_at": "...",   # ISO-8601; naive = UTC
      "config": {...},                      # required: the full frozen config; hashed into run_id
      "tags": {"key": "text"},              # optional free-form facts
      "evals": [                            # optional; value is a FRACTION in [0, 1]
        {"protocol": "finetune-in1k-2pct", "eval_set": "imagenet-val", "metric": "top1",
         "selection": "best-epoch", "value": 0.2112, "epoch": 23, "n_epochs": 50}
      ],
      "history": [                          # optional curves; value may be null (diverged)
        {"phase": "pretrain", "key": "train_loss", "step": 1000, "segment": 0, "value": 0.31}
      ]
    }

Unknown top-level keys are refused (a typo must not be dropped silently). ``source_file`` (default: the
file the record was read from) and ``imported_at`` are provenance of the import, not content: they never
cause a conflict, and ``imported_at`` in an export is ignored on re-import.

CSV (one row per run x evaluation; the header is row 1). Required columns: ``arch``, ``image_px``,
``data_hours`` or ``data_frames``, ``protocol``, ``eval_set``, ``metric``, ``selection``, ``value``
(fraction). Optional: every other run.json scalar field above, ``status`` (default COMPLETED),
``source`` (default ``import:csv``), ``run_id``, ``config_json`` (the config as JSON text; without it the
config is built from the row's typed run columns ``CSV_CONFIG_FIELDS``), ``tags_json``, ``epoch``,
``n_epochs``, ``eval_source_file``, ``imported_at`` (ignored). A row with all eval columns empty declares
a run without evaluations. Rows of the same run must agree on every run column. ``export`` writes this
format (all columns), so an export re-imports as "unchanged".

A file with no runs (a CSV with only a header, a JSON-lines file with no non-blank line) is an error, not
an import of 0 runs. Integers must fit SQLite's 64 bits, text fields must not hold control characters (a
NUL, an escape sequence), JSON objects nest at most ``validate.MAX_JSON_DEPTH`` levels, and sizes beyond
any real run (``validate.PLAUSIBLE_MAX``: 1e9 hours, 65,536 px) are refused as typos.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from .errors import RunsDBError, ValidationError
from .mae_logs import read_json_lines
from .types import Evaluation, JSONObject, Value
from .validate import (
    EVAL_FIELDS,
    NON_CONTENT_FIELDS,
    RUN_FIELDS,
    Loc,
    RunRecord,
    build_record,
    eval_key_of,
    loads_json,
    same_eval,
    same_value,
)

RUN_JSON_SCHEMA = "runs_db/run.json@1"
IGNORED_KEYS = ("imported_at",)
RUN_JSON_KEYS = {*RUN_FIELDS, "schema", "run_id", "config", "tags", "evals", "history", *IGNORED_KEYS}

CSV_EVAL_COLUMNS = ("protocol", "eval_set", "metric", "selection", "value", "epoch", "n_epochs",
                    "eval_source_file")
CSV_COLUMNS = ("run_id", *RUN_FIELDS, "imported_at", "config_json", "tags_json", *CSV_EVAL_COLUMNS)
CSV_REQUIRED = ("arch", "image_px", "protocol", "eval_set", "metric", "selection", "value")
CSV_CONFIG_FIELDS = ("name", "arch", "image_px", "patch_px", "dataset", "data_frames", "data_hours",
                     "data_fraction", "subset_seed", "train_seed", "mask_ratio", "global_batch",
                     "pretrain_steps", "source")


# ----------------------------------------------------------------------------------------------- run.json
def record_from_json(obj: object, loc: Loc, *, source_file: str | None = None) -> RunRecord:
    """Validate one run.json-shaped object; ``source_file`` is the default for the field of that name."""
    if not isinstance(obj, Mapping):
        raise loc.error(None, "expected a JSON object (a run record)")
    unknown = sorted(set(obj) - RUN_JSON_KEYS)
    if unknown:
        raise loc.error(unknown[0], "unknown field of a run record (see runs_db.records for the schema)")
    schema = obj.get("schema")
    if schema is not None and schema != RUN_JSON_SCHEMA:
        raise loc.error("schema", f"unsupported schema {schema!r}; this runs_db reads {RUN_JSON_SCHEMA!r}")
    fields = {k: obj.get(k) for k in RUN_FIELDS}
    if fields.get("source") is None:
        fields["source"] = "local"
    if fields.get("source_file") is None:
        fields["source_file"] = source_file
    config = obj.get("config")
    if not isinstance(config, Mapping):
        raise loc.error("config", "missing or not a JSON object")
    evals = _list_of_objects(obj.get("evals"), loc, "evals")
    history = _list_of_objects(obj.get("history"), loc, "history")
    tags = obj.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        raise loc.error("tags", "expected a JSON object of text values")
    return build_record(fields, loc, config=config, evals=evals, history=history, tags=tags,
                        run_id=obj.get("run_id"))


def _list_of_objects(value: object, loc: Loc, name: str) -> list[tuple[Mapping[str, object], Loc]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise loc.error(name, "expected a JSON list")
    out: list[tuple[Mapping[str, object], Loc]] = []
    for i, item in enumerate(value):
        sub = loc.sub(f"{name}[{i}].")
        if not isinstance(item, Mapping):
            raise sub.error(None, "expected a JSON object")
        out.append((item, sub))
    return out


def read_run_json(path: Path, shown: str) -> list[RunRecord]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValidationError(f"cannot read: {e}", file=shown) from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationError(f"not valid JSON ({e.msg})", file=shown, row=e.lineno) from None
    except RecursionError:
        obj = loads_json(text, Loc(shown), None)  # raises the one-line "nested too deeply"
    return [record_from_json(obj, Loc(shown), source_file=shown)]


def read_jsonl(path: Path, shown: str, errors: list[ValidationError] | None = None) -> list[RunRecord]:
    """One record per non-blank line. With ``errors`` (a list), a bad line is appended there and skipped."""
    out: list[RunRecord] = []
    n_bad = len(errors) if errors is not None else 0
    for lineno, obj in read_json_lines(path, shown, errors):
        try:
            out.append(record_from_json(obj, Loc(shown, lineno), source_file=f"{shown}:{lineno}"))
        except ValidationError as e:
            if errors is None:
                raise
            errors.append(e)
    if not out and (errors is None or len(errors) == n_bad):
        raise ValidationError("no run records (the file has no non-blank lines)", file=shown)
    return out


# -------------------------------------------------------------------------------------------------- CSV
def read_csv_rows(path: Path, shown: str) -> tuple[list[str], list[list[str]]]:
    """(the stripped header, the other rows) of a CSV file; one ``ValidationError`` naming ``shown`` when it
    cannot be read or has no header."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValidationError(f"cannot read CSV: {e}", file=shown) from None
    if not rows:
        raise ValidationError("empty CSV (no header)", file=shown, row=1)
    return [h.strip() for h in rows[0]], rows[1:]


def read_csv(path: Path, shown: str, errors: list[ValidationError] | None = None) -> list[RunRecord]:
    """Parse a CSV of run x eval rows into merged run records (one per run id).

    A problem with the header raises. A problem with a row raises too, or, with ``errors`` (a list), is
    appended there and the row skipped, so that one pass finds every bad row."""
    header, rows = read_csv_rows(path, shown)
    return records_from_rows(header, rows, shown, errors)


def records_from_rows(header: Sequence[str], rows: Iterable[Sequence[str]], shown: str,
                      errors: list[ValidationError] | None = None) -> list[RunRecord]:
    """Run records from the text cells of a table in the export's columns (``CSV_COLUMNS``): a CSV file, or a
    Parquet file's rows as text. The header is row 1; rows that are all blank are skipped."""
    for column in header:
        if column not in CSV_COLUMNS:
            raise ValidationError("unknown column (see runs_db.records for the CSV columns)",
                                  file=shown, row=1, column=column)
    if len(set(header)) != len(header):
        dup = next(h for h in header if list(header).count(h) > 1)
        raise ValidationError("duplicate column", file=shown, row=1, column=dup)
    for column in CSV_REQUIRED:
        if column not in header:
            raise ValidationError("missing required column", file=shown, row=1, column=column)
    if "data_hours" not in header and "data_frames" not in header:
        raise ValidationError("missing required column (or data_frames)", file=shown, row=1,
                              column="data_hours")

    merged: dict[str, RunRecord] = {}
    n_rows = 0
    for rowno, cells in enumerate(rows, start=2):
        if not any(c.strip() for c in cells):
            continue
        n_rows += 1
        try:
            if len(cells) != len(header):
                raise ValidationError(f"{len(cells)} cells, header has {len(header)}", file=shown, row=rowno)
            row = dict(zip(header, cells, strict=True))
            merge_into(merged, _record_from_csv_row(row, Loc(shown, rowno)))
        except ValidationError as e:
            if errors is None:
                raise
            errors.append(e)
    if not n_rows:
        raise ValidationError("no data rows (only a header): nothing to import", file=shown, row=2)
    return list(merged.values())


def merge_into(merged: dict[str, RunRecord], rec: RunRecord) -> None:
    """Add ``rec`` to ``merged`` (by run id), pooling it with an earlier row of the same run."""
    first = merged.get(rec.run_id)
    if first is None:
        merged[rec.run_id] = rec
    else:
        _merge_same_run(first, rec)


def _record_from_csv_row(row: dict[str, str], loc: Loc) -> RunRecord:
    fields: dict[str, str | None] = {k: row.get(k) for k in RUN_FIELDS}
    if not (fields.get("status") or "").strip():
        fields["status"] = "COMPLETED"
    if not (fields.get("source") or "").strip():
        fields["source"] = "import:csv"
    if not (fields.get("source_file") or "").strip():
        fields["source_file"] = f"{loc.file}:{loc.row}"
    config = _json_cell(row, "config_json", loc)
    tags = _json_cell(row, "tags_json", loc)
    eval_cells = {k: row.get(k, "") for k in CSV_EVAL_COLUMNS}
    evals: list[tuple[Mapping[str, object], Loc]] = []
    if any((v or "").strip() for v in eval_cells.values()):
        ev = {k: eval_cells[k] for k in EVAL_FIELDS if k != "source_file"}
        ev["source_file"] = eval_cells["eval_source_file"]
        evals.append((ev, loc))
    return build_record(fields, loc, config=config, evals=evals, tags=tags, run_id=row.get("run_id"),
                        config_from_fields=CSV_CONFIG_FIELDS if config is None else ())


def _json_cell(row: Mapping[str, str], column: str, loc: Loc) -> JSONObject | None:
    text = (row.get(column) or "").strip()
    if not text:
        return None
    value = loads_json(text, loc, column)
    if not isinstance(value, dict):
        raise loc.error(column, "expected a JSON object")
    return value


def _merge_same_run(first: RunRecord, other: RunRecord) -> None:
    """Rows of one run must agree on every run column; their evals and tags are pooled."""
    for column in RUN_FIELDS:
        if column in NON_CONTENT_FIELDS:
            continue
        if not same_value(first.run[column], other.run[column]):
            raise other.loc.error(
                column, f"conflicts with row {first.loc.row} of the same run ({first.run[column]!r} there, "
                        f"{other.run[column]!r} here)")
    for key, value in other.tags.items():
        if first.tags.setdefault(key, value) != value:
            raise other.loc.error("tags_json", f"tag {key!r} conflicts with row {first.loc.row}")
    keys: dict[tuple[str, str, str, str], Evaluation] = {eval_key_of(e): e for e in first.evals}
    for ev, eloc in zip(other.evals, other.eval_locs, strict=True):
        eval_key = eval_key_of(ev)
        if eval_key in keys:
            if not same_eval(keys[eval_key], ev):
                raise eloc.error("value", f"duplicate {'/'.join(eval_key)} with a different value "
                                          f"({keys[eval_key]['value']!r} on an earlier row)")
            continue
        keys[eval_key] = ev
        first.evals.append(ev)
        first.eval_locs.append(eloc)


# ----------------------------------------------------------------------------------------------- export
def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text: a re-import compares equal
    return str(value)


def csv_rows(runs: Iterable[Mapping[str, Value]], evals_by_run: Mapping[str, Sequence[Mapping[str, Value]]],
             tags_by_run: Mapping[str, Mapping[str, str]]) -> Iterator[list[str]]:
    """The export's CSV rows (``CSV_COLUMNS``): one per run x evaluation, or one per run without any;
    ``runs`` are rows of the ``runs`` table, ``evals_by_run`` rows of ``evals`` by run id."""
    for run in runs:
        rid = str(run["run_id"])
        tags = tags_by_run.get(rid) or {}
        base = [_cell(run.get(c)) for c in ("run_id", *RUN_FIELDS, "imported_at", "config_json")]
        base.append(json.dumps(dict(tags), sort_keys=True) if tags else "")
        evs = evals_by_run.get(rid)
        if not evs:
            yield base + [""] * len(CSV_EVAL_COLUMNS)
            continue
        for ev in evs:
            yield base + [_cell(ev.get(k if k != "eval_source_file" else "source_file")) for k in CSV_EVAL_COLUMNS]


def run_json_object(run: Mapping[str, Value], evals: Sequence[Mapping[str, Value]], tags: Mapping[str, str],
                    history: Sequence[Mapping[str, Value]]) -> dict[str, object]:
    """The run.json object of a run (see the module docstring) from its rows of ``runs``, ``evals`` (without
    run ids), ``tags`` and ``history``."""
    obj: dict[str, object] = {"schema": RUN_JSON_SCHEMA, "run_id": run["run_id"]}
    for column in RUN_FIELDS:
        value: object = run.get(column)
        if column == "package_versions" and isinstance(value, str):  # stored as JSON text
            value = json.loads(value)
        obj[column] = value
    obj["imported_at"] = run.get("imported_at")
    obj["config"] = json.loads(str(run["config_json"]))
    obj["tags"] = dict(tags)
    obj["evals"] = [dict(e) for e in evals]
    obj["history"] = [dict(h) for h in history]
    return obj


def atomic_write(path: Path, write: Callable[[TextIO], None] | Callable[[BinaryIO], None], *,
                 binary: bool = False) -> None:
    """Write through ``write(file)`` (a text file, or a binary one with ``binary``) into a temp file next to
    ``path``, then ``os.replace`` it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:  # a parent that is a file, no permission, a full disk: one line, nothing written
        raise RunsDBError(f"cannot write the file ({e.strerror or e}: {e.filename or path})", file=str(path)) from None
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", newline="", encoding="utf-8")) as f:
            write(f)  # type: ignore[arg-type]  # the file's mode follows ``binary``, as the caller's writer does
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give the export the permissions of an ordinary new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a folder where the file goes: one line, the old file (if any) intact
        Path(tmp).unlink(missing_ok=True)
        raise RunsDBError(f"cannot write the file ({e.strerror or e})", file=str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
