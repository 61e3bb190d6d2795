"""The learning curves of the extrapolation benchmark (``bench/data/extrapolation/``), as data frames.

Two files (see ``bench/data/extrapolation/README.md`` for sources, licences and the choice rule):

- ``manifest.csv``: one row per curve: ``curve`` (id), ``source``, ``task``, ``model``, ``x_name``,
  ``y_name``, ``quantity`` ('error': an error rate in (0, 1); 'loss': a loss in nats), ``unique_tokens``
  (source muennighoff2023 only: tokens per epoch, the U_D of its data-constrained law), ``n_fit``,
  ``n_tail`` (tail points shipped) and ``n_tail_released`` (tail points in the released file);
- ``curves.csv``: one row per point: ``curve``, ``x``, ``y``, ``split`` ('fit': the part every method is
  fitted on; 'tail': the held-out extrapolation tail).

Used by ``bench/bench_extrapolation.py``, ``bench/build_extrapolation_data.py`` and the test
``tests/test_extrapolation_bench_data.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DATA_DIR = Path(__file__).resolve().parent / "data" / "extrapolation"
SOURCES = ("alabdulmohsin2022", "muennighoff2023", "choshen2025")
MAX_TAIL = 30  # tail points kept per curve, evenly spaced in log x
MANIFEST_COLUMNS = ("curve", "source", "task", "model", "x_name", "y_name", "quantity", "unique_tokens", "n_fit",
                    "n_tail", "n_tail_released")
POINT_COLUMNS = ("curve", "x", "y", "split")


@dataclass(frozen=True)
class Curve:
    """One learning curve: its manifest row and its fitting part and tail, sorted by x (columns x, y)."""

    id: str
    source: str
    quantity: str
    x_name: str
    y_name: str
    unique_tokens: float | None
    fit: pd.DataFrame
    tail: pd.DataFrame


def log_spaced_subset(x: np.ndarray, k: int) -> np.ndarray:
    """Indices (sorted, distinct) of at most ``k`` points of ``x`` evenly spaced in log x: for each of ``k``
    targets spaced evenly in log x between the smallest and the largest x, the point nearest in log x.
    The smallest and the largest point are always kept; with k or fewer points every index is returned."""
    x = np.asarray(x, dtype=float)
    if len(x) <= k:
        return np.arange(len(x))
    lx = np.log(x)
    targets = np.linspace(lx.min(), lx.max(), k)
    picked = {int(np.argmin(np.abs(lx - t))) for t in targets}
    return np.array(sorted(picked, key=lambda i: (x[i], i)))


def read(data_dir: Path = DATA_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, points) as shipped."""
    manifest = pd.read_csv(data_dir / "manifest.csv")
    points = pd.read_csv(data_dir / "curves.csv")
    return manifest, points


def load(sources: tuple[str, ...] | None = None, pattern: str | None = None, *,
         data_dir: Path = DATA_DIR) -> list[Curve]:
    """The curves of ``sources`` (default all) whose id matches the regular expression ``pattern``
    (``re.search``; default all), in manifest order."""
    manifest, points = read(data_dir)
    if sources is not None:
        unknown = sorted(set(sources) - set(manifest["source"]))
        if unknown:
            raise ValueError(f"unknown source(s) {', '.join(unknown)}; the sources are {', '.join(SOURCES)}")
        manifest = manifest[manifest["source"].isin(sources)]
    if pattern:
        manifest = manifest[manifest["curve"].map(lambda c: re.search(pattern, c) is not None)]
    by_curve = {c: g.sort_values("x", kind="stable") for c, g in points.groupby("curve", sort=False)}
    out = []
    for row in manifest.itertuples(index=False):
        g = by_curve[row.curve]
        fit, tail = (g[g["split"] == s][["x", "y"]].reset_index(drop=True) for s in ("fit", "tail"))
        u = float(row.unique_tokens) if pd.notna(row.unique_tokens) else None
        out.append(Curve(row.curve, row.source, row.quantity, row.x_name, row.y_name, u, fit, tail))
    return out
