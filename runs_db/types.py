"""Types of what the run database reads and returns: JSON values, stored column values and table rows.

Only annotations: nothing here is checked at run time (``validate`` does the checking). The row types
follow the tables of ``schema`` and the kinds of ``validate.RUN_FIELDS`` / ``validate.EVAL_FIELDS``.
"""

from __future__ import annotations

from typing import TypeAlias, TypedDict

# A JSON document as ``json.loads`` returns it.
JSON: TypeAlias = str | int | float | bool | list["JSON"] | dict[str, "JSON"] | None
JSONObject: TypeAlias = dict[str, JSON]
# One typed run column or evaluation field, as SQLite stores it (None: NULL, not given).
Value: TypeAlias = str | int | float | None


class Evaluation(TypedDict):
    """One evaluation of a run: a row of ``evals`` without its run id; ``value`` is a fraction in [0, 1]."""

    protocol: str
    eval_set: str
    metric: str
    selection: str
    value: float
    epoch: int | None
    n_epochs: int | None
    source_file: str | None


class HistorySummary(TypedDict):
    """One curve of a run in ``RunDB.get_run``: how many points it has and its first and last step."""

    phase: str
    key: str
    n: int
    first_step: int
    last_step: int


class RunDetails(TypedDict):
    """``RunDB.get_run``: the run's columns (``config_json`` and ``package_versions`` parsed), its tags,
    evaluations and curve summaries."""

    run_id: str
    name: str | None
    arch: str
    n_params: int
    n_params_nonembed: int | None
    n_params_with_head: int | None
    patch_px: int
    image_px: int
    dataset: str | None
    data_frames: int | None
    data_hours: float
    data_fraction: float | None
    subset_seed: int | None
    train_seed: int | None
    pretrain_steps: int | None
    global_batch: int | None
    samples_seen: int | None
    pretrain_flops: float | None
    flops_method: str | None
    mask_ratio: float | None
    status: str
    source: str
    source_file: str | None
    code_version: str | None
    package_versions: JSONObject | None
    host: str | None
    started_at: str | None
    finished_at: str | None
    imported_at: str
    config: JSONObject
    tags: dict[str, str]
    evals: list[Evaluation]
    history: list[HistorySummary]
