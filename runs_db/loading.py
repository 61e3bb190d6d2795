"""Reading import inputs: a user's paths expanded into files by format, each parsed into run records.

Formats: MAE log folders (``mae_logs``), CSV tables, ``run.json`` records and JSON-lines files
(``records``), and Parquet files of the export's table (``parquet``). A plain folder is searched recursively
for ``run.json`` (train's output tree).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from . import records as rec_io
from .errors import ValidationError
from .mae_logs import is_mae_logs_dir, read_mae_logs
from .parquet import read_parquet_rows
from .published import PUBLISHED_SPEC
from .validate import RunRecord

FORMATS = ("auto", "mae-logs", "csv", "run-json", "jsonl", "parquet")
T = TypeVar("T")


def _detect(path: Path, fmt: str) -> list[tuple[str, Path]]:
    """Expand one user path into (format, file or directory) pairs."""
    if not path.exists():
        raise ValidationError("no such file or directory", file=str(path))
    if path.is_dir():
        if fmt in ("auto", "mae-logs") and is_mae_logs_dir(path):
            return [("mae-logs", path)]
        if fmt == "mae-logs":
            raise ValidationError("not an MAE logs directory (no pretraining_logs/ or finetuning_logs/)",
                                  file=str(path))
        # A plain directory is searched recursively for run.json records (train's output tree); other CSV
        # or JSON-lines files there (metrics logs, ...) are only taken when the format is asked for.
        found: list[tuple[str, Path]] = []
        if fmt in ("auto", "run-json"):
            found += [("run-json", p) for p in sorted(path.rglob("run.json"))]
        if fmt == "jsonl":
            found += [("jsonl", p) for p in sorted(path.rglob("*.jsonl"))]
        if fmt == "csv":
            found += [("csv", p) for p in sorted(path.rglob("*.csv"))]
        if not found:
            raise ValidationError(f"no importable files found (format {fmt})", file=str(path))
        return found
    if fmt != "auto":
        return [(fmt, path)]
    suffix = path.suffix.lower()
    by_suffix = {".csv": "csv", ".json": "run-json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
    if suffix not in by_suffix:
        raise ValidationError("unknown file type (expected .csv, .json, .jsonl, .parquet or an MAE logs directory)",
                              file=str(path))
    return [(by_suffix[suffix], path)]


def _read_parquet(path: Path, shown: str, errors: list[ValidationError] | None) -> list[RunRecord]:
    header, rows = read_parquet_rows(path, shown)
    return rec_io.records_from_rows(header, rows, shown, errors)


def load_records(paths: Sequence[str | Path], fmt: str = "auto",
                 errors: list[ValidationError] | None = None) -> tuple[int, list[RunRecord]]:
    """Parse and validate every input; returns (files read, records). Raises on the first bad input, or,
    with ``errors`` (a list), appends every problem there (one per bad CSV row, JSON line, run.json file,
    MAE log or unreadable path) and returns the good records."""
    if fmt not in FORMATS:
        raise ValidationError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if isinstance(paths, str | Path):
        paths = [paths]
    n_files = 0
    out: list[RunRecord] = []

    def collect(read: Callable[..., list[T]], *args: object) -> list[T]:
        try:
            return read(*args)
        except ValidationError as e:
            if errors is None:
                raise
            errors.append(e)
            return []

    for given in paths:
        for kind, path in collect(_detect, Path(given), fmt):
            shown = str(path)
            if kind == "mae-logs":
                out += collect(read_mae_logs, path, PUBLISHED_SPEC, errors)
                n_files += sum(1 for _ in path.glob("*_logs/*/*_log.txt"))
                continue
            n_files += 1
            if kind == "csv":
                out += collect(rec_io.read_csv, path, shown, errors)
            elif kind == "parquet":
                out += collect(_read_parquet, path, shown, errors)
            elif kind == "run-json":
                out += collect(rec_io.read_run_json, path, shown)
            else:
                out += collect(rec_io.read_jsonl, path, shown, errors)
    return n_files, out
