"""The export's table (``records.CSV_COLUMNS``, one row per run x evaluation) as Parquet, through pyarrow (the
``parquet`` extra).

Columns are typed as the run database stores them: integers as int64, numbers as float64 and everything else
as text, with nulls where a value is not given. Read back, every cell becomes the text the CSV export would
hold (floats in their shortest round-trip form), so a Parquet export re-imports through the CSV reader's
checks as "unchanged".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .errors import RunsDBError, ValidationError
from .records import CSV_COLUMNS
from .validate import RUN_FIELDS

INSTALL_HINT = "Parquet needs pyarrow: pip install 'humanlike-scaling[parquet]'"
_KINDS = {**RUN_FIELDS, "value": "float", "epoch": "int", "n_epochs": "int"}


def column_type(column: str) -> str:
    """'int64', 'float64' or 'string': how the export stores ``column``."""
    kind = _KINDS.get(column, "str")
    if kind.startswith("int"):
        return "int64"
    if kind.startswith("float") or kind in ("fraction01", "mask"):
        return "float64"
    return "string"


def _pyarrow() -> Any:
    try:
        import pyarrow as pa  # lazy: an optional extra
        import pyarrow.parquet as pq  # lazy: as above
    except ImportError:
        return None
    return pa, pq


def _typed(cell: str, kind: str) -> object:
    if cell == "":
        return None
    if kind == "int64":
        return int(cell)
    if kind == "float64":
        return float(cell)
    return cell


def parquet_writer(rows: Iterable[Sequence[str]]) -> Any:
    """A function that writes the export's text ``rows`` as one Parquet table into a binary file."""
    modules = _pyarrow()
    if modules is None:
        raise RunsDBError(INSTALL_HINT)
    pa, pq = modules
    kinds = [column_type(c) for c in CSV_COLUMNS]
    columns: list[list[object]] = [[] for _ in CSV_COLUMNS]
    for row in rows:
        for values, cell, kind in zip(columns, row, kinds, strict=True):
            values.append(_typed(cell, kind))
    arrow = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    schema = pa.schema([(c, arrow[k]) for c, k in zip(CSV_COLUMNS, kinds, strict=True)])
    table = pa.Table.from_arrays([pa.array(v, type=arrow[k]) for v, k in zip(columns, kinds, strict=True)],
                                 schema=schema)

    def write(f: BinaryIO) -> None:
        pq.write_table(table, f)

    return write


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def read_parquet_rows(path: Path, shown: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows as text) of a Parquet file, for ``records.records_from_rows``."""
    modules = _pyarrow()
    if modules is None:
        raise ValidationError(INSTALL_HINT, file=shown)
    pa, pq = modules
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException, ValueError) as e:
        raise ValidationError(f"cannot read Parquet: {str(e).splitlines()[0] if str(e) else e}", file=shown) from None
    header = [str(n) for n in table.column_names]
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[_cell(col[i]) for col in columns] for i in range(table.num_rows)]
    return header, rows
