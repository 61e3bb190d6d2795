"""The tables a study fits: the run database's grid (``load_runs``), any CSV (``read_table``), and the
selection of one metric's rows and axes from them (``select``).

A frame from ``load_runs`` has one row per run and evaluated metric (columns ``metric`` and ``value``, a
fraction), for one protocol, eval set and epoch selection; where it came from travels in
``frame.attrs["scaling.source"]`` so that every result can say what it was fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from scaling.defaults import AXES, DEFAULT_EVAL_SET, DEFAULT_METRIC, DEFAULT_PROTOCOL, DEFAULT_SELECTION
from scaling.errors import ScalingError

SOURCE_ATTR = "scaling.source"
RUNS_Y = "value"  # the response column of run-database frames (a fraction)


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
    from runs_db import open_db

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
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ScalingError(f"{path}: cannot read CSV ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    frame.attrs[SOURCE_ATTR] = {"source": str(path)}
    return frame


def is_runs_frame(frame: pd.DataFrame) -> bool:
    """A frame of run-database evaluations (``load_runs``), as opposed to a user's own table."""
    return {"metric", RUNS_Y, "run_id"} <= set(frame.columns)


@dataclass(frozen=True)
class Selection:
    """The rows, response column and axes of one fit, and a description of where they came from."""

    frame: pd.DataFrame
    y: str
    axes: tuple[str, ...]
    source: dict[str, Any]
    metric: str | None  # the run database's metric; None for any other table (even if metric= was given)


def select(
    data: pd.DataFrame | None,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
) -> Selection:
    """The rows to fit. A run-database frame (``y`` not given) keeps the rows of ``metric`` (default top-1)
    and fits ``value`` against ``axes`` (default parameters, hours, px); any other table needs ``y`` and
    ``axes`` naming its columns."""
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
        return Selection(frame, RUNS_Y, axis_list, source, m)
    if axes is None:
        raise ScalingError(f"axes= names the axis columns of the table to fit against {y!r}")
    name = origin.get("source", "data frame")
    missing = [c for c in [y, *axes] if c not in data.columns]
    if missing:
        raise ScalingError(f"{name}: missing column {missing[0]!r} (columns: {', '.join(map(str, data.columns))})")
    return Selection(data.reset_index(drop=True), y, tuple(axes), {"source": name, "y": y}, None)
