"""The run database's training curves as one step table (``load_curves``): the input of Chinchilla's approach 1
(``scaling.compute_optimal(..., method='envelope')``) from the runs themselves rather than a CSV.

One row per (run, logged step) of one history key (default the pretraining ``train_loss``), with the run's
model size and data, the images seen by that step (``samples_seen`` = step x global batch) and the
pretraining FLOPs spent by then (``pretrain_flops``: the run's FLOPs, which the database prices per sample
seen, times the share of its samples seen by that step), and ``epochs``: passes over the run's frames so far.

What the loss is matters: the published grid's pretraining curves are the MAE's reconstruction loss on its
own training frames, and small data fractions see each frame thousands of times, so their training loss
measures memorisation as much as learning. An envelope is meaningful across model sizes at one data set and
resolution (``where={'data_fraction': 1, 'image_px': 224}``), and it answers the compute-optimal allocation
for the MAE's objective on that corpus, not for the downstream accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from runs_db import open_db
from scaling.data.tables import SOURCE_ATTR
from scaling.defaults import CURVE_KEY
from scaling.errors import ScalingError

RUN_COLUMNS = ("run_id", "name", "arch", "n_params", "data_hours", "data_fraction", "data_frames", "image_px",
               "global_batch", "samples_seen", "pretrain_flops")


def _matching(runs: pd.DataFrame, where: Mapping[str, float]) -> pd.DataFrame:
    for column, value in where.items():
        if column not in runs.columns:
            raise ScalingError(f"where: the runs have no column {column!r} (columns: {', '.join(RUN_COLUMNS)})")
        values = pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)
        runs = runs[np.isclose(values, float(value), rtol=1e-9, atol=0.0)]
    return runs


def _run_steps(history: pd.DataFrame, run: pd.Series, key: str) -> pd.DataFrame:
    h = history[history["key"] == key].sort_values(["step", "segment"])
    h = h.drop_duplicates("step", keep="last")  # a resumed job re-logs a step: its last segment counts
    h = h[np.isfinite(h["value"].to_numpy(dtype=float))]
    seen = h["step"].to_numpy(dtype=float) * float(run["global_batch"])
    per_sample = float(run["pretrain_flops"]) / float(run["samples_seen"])
    out = pd.DataFrame({c: run[c] for c in RUN_COLUMNS if c not in ("samples_seen", "pretrain_flops")},
                       index=range(len(h)))
    out["step"] = h["step"].to_numpy()
    out["samples_seen"] = seen
    out["pretrain_flops"] = seen * per_sample
    out["epochs"] = seen / float(run["data_frames"])
    out[key] = h["value"].to_numpy(dtype=float)
    return out[out["samples_seen"] > 0]  # step 0 has seen nothing and costs nothing


def load_curves(db: str | Path | None = None, *, key: str = CURVE_KEY, phase: str = "pretrain",
                where: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The step table of ``key`` in ``phase`` for the completed runs matching ``where`` (column: value).

    ``db``: an SQLite path; default ``$SCALING_DB``, else the user's database (the shipped grid on first use).
    Runs without that key, or without a global batch, samples seen or FLOPs, are left out; a table with no
    rows is refused in one line naming what exists.
    """
    database = open_db(db)
    runs = database.list_runs()
    runs = _matching(runs[runs["status"] == "COMPLETED"], dict(where or {}))
    priced = runs[["global_batch", "samples_seen", "pretrain_flops", "data_frames"]].notna().all(axis=1)
    frames = []
    for _, run in runs[priced].iterrows():
        steps = _run_steps(database.history(str(run["run_id"]), phase=phase), run, key)
        if len(steps):
            frames.append(steps)
    chosen = ", ".join(f"{k}={v:g}" for k, v in (where or {}).items()) or "every run"
    if runs.empty:
        raise ScalingError(f"no completed runs match where {chosen} (see `scaling runs list`)")
    if not frames:
        held = database.get_run(str(runs["run_id"].iloc[0]))["history"]
        have = ", ".join(sorted({f"{h['phase']}:{h['key']}" for h in held})) or "none"
        raise ScalingError(f"no {phase} curves of {key!r} in {len(runs)} matching run(s) (the first one holds: "
                           f"{have})")
    table = pd.concat(frames, ignore_index=True)
    table.attrs[SOURCE_ATTR] = {"source": f"{database.path}: {phase} curves of {key} ({chosen})"}
    return table
