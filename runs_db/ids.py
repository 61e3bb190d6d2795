"""Deterministic run ids.

A run id is the first 16 hex digits of the SHA-256 of the run's *canonical config JSON*: keys sorted at
every level, no insignificant whitespace, UTF-8, floats written as Python's shortest round-trip ``repr``,
NaN/infinity refused. The same frozen config therefore always gives the same id, so importing a record
twice adds nothing, and two records with one id but different content are a conflict.

Only the ``config`` dict is hashed, not the measured results (steps run, accuracies) or provenance (host,
timestamps): a run is identified by what was asked for. A config must hold whatever tells two runs apart
(architecture, image size, data subset and seed, training seed, ...); 64 bits make accidental collisions
negligible for any realistic number of runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

RUN_ID_HEX_DIGITS = 16


def canonical_json(obj: object) -> str:
    """Canonical JSON text of ``obj`` (sorted keys, compact); ``ValueError`` on NaN/infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def run_id_for(config: Mapping[str, object]) -> str:
    """Run id of a config: sha256(canonical_json(config)) truncated to 16 hex digits."""
    digest = hashlib.sha256(canonical_json(dict(config)).encode("utf-8")).hexdigest()
    return digest[:RUN_ID_HEX_DIGITS]
