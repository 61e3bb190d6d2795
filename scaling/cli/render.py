"""Rendering for the CLI: rich tables on stdout, talk on stderr, one JSON document with ``--json``.

stdout carries data only (a table, or exactly one JSON document); warnings and hints go to stderr so
``scaling ... --json | jq`` always parses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from scaling.jsonable import jsonable


def stdout_console() -> Console:
    # Outside a terminal rich would wrap at 80 columns and squash tables; data should not be wrapped.
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(document: dict[str, Any]) -> None:
    """Exactly one JSON document on stdout."""
    print(json.dumps(jsonable(document), indent=2, sort_keys=False))


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
          caption: str | None = None) -> Table:
    t = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*[cell if isinstance(cell, str) else fmt_number(cell) for cell in r])
    return t


def fmt_number(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    x = float(x)
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt_params(n: float | None) -> str:
    """2.5e9 -> '2.50B', 631916800 -> '632M' (parameters)."""
    if n is None or not math.isfinite(n):
        return "-"
    if abs(n) >= 1e15:  # beyond trillions a suffix hides the magnitude
        return f"{n:.2e}"
    for scale, unit in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")]:
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{n:.0f}"


def fmt_hours(h: float | None) -> str:
    if h is None or not math.isfinite(h):
        return "-"
    if h >= 1e9:
        return f"{h:.2e} h"
    return f"{h:,.0f} h" if h >= 100 else f"{h:.3g} h"


def fmt_px(px: float | None) -> str:
    """Image side in px; far projections (millions of px and more) in scientific notation."""
    if px is None or not math.isfinite(px):
        return "-"
    return f"{px:.0f} px" if px < 1e6 else f"{px:.2e} px"


def fmt_percent(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def fmt_flops(f: float | None) -> str:
    return "-" if f is None or not math.isfinite(f) else f"{f:.2e}"
