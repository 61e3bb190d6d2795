"""Chinchilla's approach 1 (Hoffmann et al. 2022, arXiv 2203.15556, §3.1): the envelope of training curves.
Each run's curve (its loss at every logged amount of data, priced by the cost model) is read at log-spaced
costs; at each cost, the run with the lowest loss among those whose curve reaches it gives N*(C), and its
data at that cost D*(C); power laws N*(C) = k C^a and D*(C) = k' C^b are fitted through them.

- **Curves** (``curves``): the rows of a table grouped into runs by a run column (``run_id`` when the table has
  one), else by model size; each row is one logged step (D: the data seen so far), priced by the cost model
  or by a column of each step's compute. A run with one size, and at least two points. The run database's
  own curves come as such a table from ``scaling.data.curves.load_curves``.
- **Envelope** (``envelope_fit``): ``ENVELOPE_POINTS`` costs log-spaced over the curves' span; each curve
  linear in ln C between its points. A cost counts only where the best run is interior: some run with a
  smaller and some with a larger model reaches that cost too (as IsoFLOP vertices must lie inside the sizes
  trained), so the fit never rests on an edge of the sizes trained.
- **Resampling** (``resample``): runs drawn with replacement, the envelope redrawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scaling.allocation.isoflop import PowerLaw, columns
from scaling.compute.costs import CostModel
from scaling.core.jsonable import JSONDict
from scaling.defaults import DEFAULT_GROUP, ENVELOPE_POINTS
from scaling.errors import ScalingError


@dataclass(frozen=True)
class Curve:
    """One run: its size and its points sorted by cost (ln C, error-like value, ln D)."""

    run: str
    n: float
    log_c: np.ndarray
    err: np.ndarray
    log_d: np.ndarray


def curves(frame: pd.DataFrame, axes: Sequence[str], y: str, kind: str, cost: CostModel | str,
           run_column: str | None = None) -> tuple[list[Curve], str]:
    """The training curves of ``frame`` and how its rows were grouped into runs. ``cost``: a cost model of the
    axes, or the name of a column holding each row's compute (a run database's ``pretrain_flops``)."""
    column = run_column if run_column is not None else (DEFAULT_GROUP if DEFAULT_GROUP in frame.columns else None)
    if column is not None and column not in frame.columns:
        raise ScalingError(f"run column {column!r} is not in the table (columns: {', '.join(map(str, frame.columns))})")
    n, d, err = columns(frame, axes, y, kind)
    if isinstance(cost, str):
        if cost not in frame.columns:
            raise ScalingError(f"cost column {cost!r} is not in the table")
        c = pd.to_numeric(frame[cost], errors="coerce").to_numpy(dtype=float)
    else:
        c = np.broadcast_to(np.asarray(cost.cost({axes[0]: n, axes[1]: d}), dtype=float), n.shape)
    ok = np.isfinite(n) & np.isfinite(c) & (c > 0)
    keys = frame[column].astype(str).to_numpy() if column is not None else np.array([f"{v:.6g}" for v in n])
    out = []
    for key in dict.fromkeys(keys[ok]):
        rows = np.flatnonzero(ok & (keys == key))
        if len(np.unique(n[rows])) > 1:
            raise ScalingError(f"run {key!r} has {len(np.unique(n[rows]))} model sizes ({axes[0]}): a training curve "
                               "is one run of one size")
        order = rows[np.argsort(c[rows], kind="stable")]
        lc = np.log(c[order])
        if len(np.unique(lc)) >= 2:
            out.append(Curve(str(key), float(n[order[0]]), lc, err[order], np.log(d[order])))
    how = f"runs by column {column!r}" if column is not None else f"one run per {axes[0]} value"
    return out, how


@dataclass(frozen=True)
class EnvelopeFit:
    """The envelope's interior points (cost, best run's size and data) and N*(C), D*(C) through them."""

    axes: tuple[str, str]
    runs_from: str
    n_runs: int
    compute: tuple[float, ...]
    n_best: tuple[float, ...]
    d_best: tuple[float, ...]
    error_best: tuple[float, ...]
    n_opt: PowerLaw | None
    d_opt: PowerLaw | None
    reason: str = ""

    def to_dict(self) -> JSONDict:
        return {"axes": list(self.axes), "runs_from": self.runs_from, "n_runs": self.n_runs,
                "points": {"compute": list(self.compute), "n": list(self.n_best), "d": list(self.d_best),
                           "error": list(self.error_best)},
                "n_opt": None if self.n_opt is None else self.n_opt.to_dict(),
                "d_opt": None if self.d_opt is None else self.d_opt.to_dict(), "reason": self.reason}


def envelope_fit(runs: Sequence[Curve], axes: Sequence[str], runs_from: str,
                 points: int = ENVELOPE_POINTS) -> EnvelopeFit:
    """Approach 1 on ``runs`` (see the module)."""
    ax = (axes[0], axes[1])
    if len(runs) < 3:
        return EnvelopeFit(ax, runs_from, len(runs), (), (), (), (), None, None,
                           f"{len(runs)} training curve(s) of two or more points ({runs_from}); the envelope "
                           "needs per-step curves of 3 runs or more (a best run between two others)")
    lo = min(float(r.log_c[0]) for r in runs)
    hi = max(float(r.log_c[-1]) for r in runs)
    grid = np.linspace(lo, hi, points)
    err = np.full((len(runs), points), np.inf)
    for i, r in enumerate(runs):
        inside = (grid >= r.log_c[0]) & (grid <= r.log_c[-1])
        err[i, inside] = np.interp(grid[inside], r.log_c, r.err)
    sizes = np.array([r.n for r in runs])
    best = np.argmin(err, axis=0)
    reach = np.isfinite(err)
    smaller = (reach & (sizes[:, None] < sizes[best][None, :])).any(axis=0)
    larger = (reach & (sizes[:, None] > sizes[best][None, :])).any(axis=0)
    keep = np.flatnonzero(smaller & larger & reach[best, np.arange(points)])
    if len(np.unique(sizes[best[keep]])) < 2:
        return EnvelopeFit(ax, runs_from, len(runs), (), (), (), (), None, None,
                           "the envelope's best run is one size (or an edge size) at every cost: no power law")
    c = np.exp(grid[keep])
    n = sizes[best[keep]]
    d = np.exp([float(np.interp(grid[j], runs[best[j]].log_c, runs[best[j]].log_d)) for j in keep])
    e = err[best[keep], keep]
    return EnvelopeFit(ax, runs_from, len(runs), tuple(map(float, c)), tuple(map(float, n)), tuple(map(float, d)),
                       tuple(map(float, e)), PowerLaw.through(c, n), PowerLaw.through(c, d))


def resample(runs: Sequence[Curve], axes: Sequence[str], runs_from: str, n_boot: int, seed: int) -> list[EnvelopeFit]:
    """``n_boot`` envelopes of runs drawn with replacement (seeded)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        chosen = sorted(set(rng.integers(0, len(runs), len(runs)).tolist()))
        out.append(envelope_fit([runs[i] for i in chosen], axes, runs_from))
    return out

