"""The tables a study fits: the run database's grid (``load_runs``), any CSV (``read_table``), and the
selection of one metric's rows and axes from them (``select``, which leaves out accuracies of exactly 0
or 1 with a note), and the check of a user's chance level against them (``check_chance``).

A frame from ``load_runs`` has one row per run and evaluated metric (columns ``metric`` and ``value``, a
fraction), for one protocol, eval set and epoch selection; where it came from travels in
``frame.attrs["scaling.source"]`` so that every result can say what it was fitted on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from runs_db import open_db
from scaling.core.direction import direction
from scaling.data.dataset import Dataset
from scaling.defaults import AXES, DEFAULT_EVAL_SET, DEFAULT_METRIC, DEFAULT_PROTOCOL, DEFAULT_SELECTION
from scaling.errors import ScalingError

SOURCE_ATTR = "scaling.source"
RUNS_Y = "value"  # the response column of run-database frames (a fraction)
# Larger magnitudes are not measurements. Bounding them keeps every derived quantity finite: a product of
# three axes and their squares, as in a cost model or a degree-2 surface, stays below 1e300 < float max.
MAX_MAGNITUDE = 1e100


def load_runs(
    db: str | Path | None = None,
    *,
    metric: str | None = None,
    protocol: str = DEFAULT_PROTOCOL,
    eval_set: str = DEFAULT_EVAL_SET,
    selection: str = DEFAULT_SELECTION,
) -> pd.DataFrame:
    """The completed runs of the run database with their evaluations (every metric, or ``metric``).

    ``db``: an SQLite path; default ``$SCALING_DB``, else the user's database, built from the shipped
    published grid (Orhan 2023, 78 MAE runs) on first use.
    """

    database = open_db(db)
    if metric is not None:
        metrics = [metric]
    else:
        keys = database.eval_keys()
        keys = keys[(keys["protocol"] == protocol) & (keys["eval_set"] == eval_set) & (keys["selection"] == selection)]
        metrics = sorted(keys["metric"].unique()) or [DEFAULT_METRIC]
    frames = [database.grid(protocol=protocol, eval_set=eval_set, metric=m, selection=selection) for m in metrics]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    frame.attrs[SOURCE_ATTR] = {"db": str(database.path), "protocol": protocol, "eval_set": eval_set,
                                "selection": selection}
    return frame


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV table (any columns); one-line ``ScalingError`` when it cannot be read."""
    if Path(path).is_dir():
        raise ScalingError(f"{path}: is a folder, not a CSV file")
    try:
        with open(path, "rb") as f:
            if b"\x00" in f.read(1 << 16):  # UTF-16 or binary: pandas would read garbage column names
                raise ScalingError(f"{path}: has NUL bytes: not a UTF-8 CSV (binary, or UTF-16?)")
    except OSError:
        pass  # pandas says what is wrong, below
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScalingError(f"{path}: cannot read CSV ({first})") from None
    if frame.empty:
        raise ScalingError(f"{path}: no data rows (only a header)")
    frame.attrs[SOURCE_ATTR] = {"source": str(path)}
    return frame


def is_runs_frame(frame: pd.DataFrame) -> bool:
    """A frame of run-database evaluations (``load_runs``), as opposed to a user's own table."""
    return {"metric", RUNS_Y, "run_id"} <= set(frame.columns)


def select(
    data: pd.DataFrame | None,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str | None = None,
) -> Dataset:
    """The rows to fit (a ``Dataset``). A run-database frame (``y`` not given) keeps the rows of ``metric``
    (default: the default target's) and fits ``value`` against ``axes`` (default parameters, hours, px); any
    other table needs ``y`` and
    ``axes`` naming its columns.

    With ``kind='accuracy'``, rows whose accuracy is exactly 0 or 1 are left out and named in the
    selection's notes: they are true measurements (a digit set can be solved), but no form can fit them
    (logit(y) and log(1 - y) are infinite there); a fit of the other rows says what it left out."""
    sel = dataclasses.replace(_select(data, metric=metric, y=y, axes=axes), kind=kind or "accuracy")
    _check_magnitudes(sel)
    return _drop_saturated(sel) if direction(sel.kind).is_fraction else sel


def _check_magnitudes(sel: Dataset) -> None:
    for column in (sel.y, *sel.axes):
        values = pd.to_numeric(sel.frame[column], errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            huge = np.abs(values) > MAX_MAGNITUDE
        if huge.any():
            where = _row_names(sel.frame, huge)
            raise ScalingError(f"column {column!r} has {int(huge.sum())} value(s) beyond {MAX_MAGNITUDE:g} "
                               f"({where}); not a measurement")


def _row_names(frame: pd.DataFrame, mask: np.ndarray, limit: int = 4) -> str:
    """The rows under ``mask``: run names (or ids) of run-database frames, else 1-based row numbers."""
    if "name" in frame.columns or "run_id" in frame.columns:
        col = frame["name"].where(frame["name"].notna(), frame["run_id"]) if "name" in frame.columns \
            else frame["run_id"]
        labels = [str(v) for v in col[mask]]
    else:
        labels = [f"row {i + 1}" for i in np.flatnonzero(mask)]
    more = f", ... ({len(labels) - limit} more)" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def _drop_saturated(sel: Dataset) -> Dataset:
    values = pd.to_numeric(sel.frame[sel.y], errors="coerce").to_numpy(dtype=float)
    saturated = (values == 0.0) | (values == 1.0)
    if not saturated.any():
        return sel
    n, total = int(saturated.sum()), len(values)
    if n == total:
        raise ScalingError(f"every one of the {total} accuracies is exactly 0 or 1: nothing a form can fit "
                           "(logit(y) and log(1 - y) are infinite there)")
    note = (f"left out {n} of {total} points with an accuracy of exactly 0 or 1 ({_row_names(sel.frame, saturated)}): "
            "no form can fit them (logit(y) and log(1 - y) are infinite there)")
    kept = sel.frame[~saturated].reset_index(drop=True)
    kept.attrs = dict(sel.frame.attrs)
    return dataclasses.replace(sel, frame=kept, notes=(*sel.notes, note))


def _select(
    data: pd.DataFrame | None,
    *,
    metric: str | None,
    y: str | None,
    axes: Sequence[str] | None,
) -> Dataset:
    if data is None:
        data = load_runs(metric=metric or DEFAULT_METRIC)
    origin = dict(data.attrs.get(SOURCE_ATTR, {}))
    if y is None:
        if not is_runs_frame(data):
            raise ScalingError("y= names the response column of a table that is not from the run database "
                               f"(columns: {', '.join(map(str, data.columns))})")
        m = metric or DEFAULT_METRIC
        frame = data[data["metric"] == m].reset_index(drop=True)
        where = f"{origin.get('protocol', '?')}/{origin.get('eval_set', '?')}/{m}/{origin.get('selection', '?')}"
        if frame.empty:
            raise ScalingError(f"no completed runs with {where} in {origin.get('db', 'the data')}; "
                               "see `scaling runs list` and `scaling runs import`")
        axis_list = tuple(axes) if axes is not None else AXES
        missing = [a for a in axis_list if a not in frame.columns]
        if missing:
            raise ScalingError(f"unknown axis {missing[0]!r}; run-database axes include {', '.join(AXES)}")
        source = {"db": origin.get("db"), "protocol": origin.get("protocol"), "eval_set": origin.get("eval_set"),
                  "metric": m, "selection": origin.get("selection")}
        return Dataset(frame, RUNS_Y, axis_list, source, m)
    if axes is None:
        raise ScalingError(f"axes= names the axis columns of the table to fit against {y!r}")
    name = origin.get("source", "data frame")
    missing = [c for c in [y, *axes] if c not in data.columns]
    if missing:
        raise ScalingError(f"{name}: missing column {missing[0]!r} (columns: {', '.join(map(str, data.columns))})")
    return Dataset(data.reset_index(drop=True), y, tuple(axes), {"source": name, "y": y}, None)


def check_chance(chance: float | None, kind: str, sel: Dataset | None = None) -> None:
    """A chance level must suit the data: an accuracy's chance error is in (0, 1], any chance level is
    positive, and it lies above every observed error (chance is the error of an untrained model; a chance
    ceiling, or M4's start level, caps the modelled error there). Checked once, so that a wrong value is an
    error rather than every form "skipped"."""
    if chance is None:
        return
    d = direction(kind)
    if d.is_fraction and not 0.0 < chance <= 1.0:
        raise ScalingError(f"a chance-level error of an accuracy is in (0, 1]; got {chance:g}")
    if chance <= 0.0:
        raise ScalingError(f"a chance level must be positive; got {chance:g}")
    if sel is not None and not sel.frame.empty:
        y = pd.to_numeric(sel.frame[sel.y], errors="coerce")
        worst = float(d.error(y).max())
        if worst > chance:
            raise ScalingError(f"chance level {chance:g} is below an observed error of {worst:.4g}: chance is "
                               "the error of an untrained model, above every trained one")
