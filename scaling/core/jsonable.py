"""JSON-ready values: what every ``to_dict()`` returns and every ``--json`` prints."""

from __future__ import annotations

import math
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

# What every ``to_dict()`` returns: a JSON object (its values JSON values, checked by ``jsonable``).
JSONDict: TypeAlias = dict[str, object]


def jsonable(value: object) -> Any:
    """Dicts, lists and plain scalars only; NaN, +-inf and missing values become null (JSON has none)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    scalar: Any = value  # pandas' isna is typed for its own scalars
    if value is pd.NaT or (not isinstance(value, str | bytes) and pd.api.types.is_scalar(value) and pd.isna(scalar)):
        return None
    return value
