"""The work estimates of ``scaling.core.work`` against the work itself, side by side in one run.

Each unit the estimators price is measured here: a bootstrap resample (memory kept, by tracemalloc, and
time per warm refit of poly1 on the published grid), building a candidate run (on the run database and on
a loss table), a row of the iso-target frontier, and a figure's pixels (peak resident memory: Agg's canvas
is not Python memory). The printed ratio is measured /
estimated: memory estimates are meant to be at or above what is kept (ratio <= 1), time estimates a lower
bound (ratio >= 1; the fastest form, so only work that is surely too long is refused).

    .venv/bin/python bench/bench_work.py
"""

from __future__ import annotations

import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import pandas as pd

import runs_db
import scaling
from scaling.compute.costs import cost_model
from scaling.core import work
from scaling.design.candidates import load_candidates

LM = Path(__file__).resolve().parents[1] / "tests" / "golden" / "lm_loss.csv"


def timed(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    """Seconds of one call (best of two)."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    return best


def traced(fn, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    """tracemalloc's peak bytes during one call (Python and numpy allocations)."""
    tracemalloc.start()
    fn(*args, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def rss_growth(fn, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    """Growth of the process's peak resident memory during one call (C++ buffers too, e.g. Agg's canvas)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn(*args, **kwargs)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024


def row(what: str, unit_measured: float, unit_estimated: float, unit: str) -> None:
    print(f"{what:<44} {unit_measured:>12.4g} {unit_estimated:>12.4g} {unit:<6} {unit_measured / unit_estimated:>7.2f}")


def main() -> None:
    db = Path(tempfile.mkdtemp()) / "runs.sqlite"
    runs_db.open_db(db).close()
    runs = scaling.load_runs(db, metric="top5")
    fit = scaling.fit(runs, "poly1")
    print(f"{'unit':<44} {'measured':>12} {'estimated':>12} {'':<6} {'ratio':>7}")

    n = 2000
    t_boot = (timed(scaling.fit, runs, "poly1", n_boot=n) - timed(scaling.fit, runs, "poly1")) / n
    kept = (traced(scaling.fit, runs, "poly1", n_boot=n) - traced(scaling.fit, runs, "poly1")) / n
    est = work.bootstrap(1, len(runs))
    row("bootstrap resample: memory kept", kept, est.bytes, "B")
    row("bootstrap resample: time (poly1, 1 process)", t_boot, est.seconds, "s")

    k = 1000
    rows = pd.DataFrame({"arch": ["vit_h14"] * k, "image_px": [476] * k, "data_hours": [5000.0 + i for i in range(k)]})
    est = work.candidates(1, run_database=True)
    row("candidate on the run database: time", timed(load_candidates, rows, fit.data, fit.axes, None) / k,
        est.seconds, "s")
    row("candidate on the run database: memory", traced(load_candidates, rows, fit.data, fit.axes, None) / k,
        est.bytes, "B")
    lm = scaling.fit(pd.read_csv(LM), "poly1", y="loss", axes=["params", "tokens"], kind="loss")
    table = pd.DataFrame({"params": [1e9 + i for i in range(k)], "tokens": [1e11] * k})
    t = timed(load_candidates, table, lm.data, lm.axes, cost_model("6nd", lm.axes))
    row("candidate on a table: time", t / k, work.candidates(1, run_database=False).seconds, "s")

    r = 20
    t_row = (timed(scaling.optimal, fit, frontier_rows=r) - timed(scaling.optimal, fit, frontier_rows=0)) / r
    row("frontier row: time", t_row, work.frontier(1).seconds, "s")

    from scaling.plots.style import new_figure, save_figure

    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    dpi = 1500.0
    w, h = (float(v) for v in fig.get_size_inches())
    out = Path(tempfile.mkdtemp()) / "f.png"
    est = work.raster(w, h, dpi)
    row(f"figure at {dpi:g} dpi: peak resident growth", rss_growth(save_figure, fig, out, dpi=dpi), est.bytes, "B")
    row(f"figure at {dpi:g} dpi: time", timed(save_figure, fig, out, dpi=dpi), est.seconds, "s")

if __name__ == "__main__":
    main()
