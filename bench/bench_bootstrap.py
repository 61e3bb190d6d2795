"""Bootstrap speed (issue 24), measured side by side in one run, with the machine's load printed.

1. The shipped grid (78 runs, top-1): ``scaling fit --form F --bootstrap 1000`` as whole processes (1 and 2
   worker processes), for every form with a batched refitter and bnsl (one axis: data hours), beside the
   same command without ``--bootstrap`` (start-up and cold fit) and the per-resample reference
   (``bootstrap(..., batched=False)``, today's refits) on the first ``--reference`` resamples, scaled to
   ``--n``. Wall and CPU seconds (user + system of the child processes).
2. Agreement on the same resample indices: batched against per-resample refits, resample by resample (the
   parameters, and the prediction at the paper's point) and their percentiles, in units of the interval's
   width (the issue's hard check; ``tests/test_bootstrap_batch.py`` checks it on small grids).
3. A Chinchilla-sized loss table (Hoffmann et al. 2022's 240 points are not shipped with any installed
   package): 240 points generated from their fitted law L = 1.69 + 406.4 N^-0.34 + 410.7 D^-0.28 along
   10 iso-FLOP budgets from 6e18 to 3e21 FLOPs (24 model sizes from 1/6 to 6 times each budget's optimum,
   D = C / 6N), with 1% multiplicative log-normal noise (seed 0). CPU seconds of 1,000 resamples of the
   additive law (single points resampled) against one fit from 4,500 L-BFGS starts of the same law and
   objective as Besiroglu et al. 2024 describe it ('Chinchilla scaling: a replication attempt': Huber,
   delta 1e-3, on log loss, the log-sum-exp parametrisation, alpha, beta in {0, 0.5, .., 2}, e in {-1, -0.5,
   .., 1}, a, b in {0, 5, .., 25}; ``bench/bench_varpro.py``'s ``plain_fit``), both with one BLAS thread.
4. BLAS threads: the batched refits of section 3 with one BLAS thread and with every thread.
5. Ensemble answers, calibration included, as whole processes: ``scaling project --ensemble --calibrated``
   (every applicable form backtested, weighted by stacking, the forms above 1% weight bootstrapped with
   1,000 resamples each, intervals widened by the backtest's held-out errors), 1 and 2 workers; the same
   through ``scaling.project`` with ``Ensemble(min_weight=0)``, so that every ranked form is bootstrapped
   (the worst case); and ``scaling compare --bootstrap 1000`` (every form's backtest and 1,000 resamples).

    .venv/bin/python bench/bench_bootstrap.py                         # everything (several minutes)
    .venv/bin/python bench/bench_bootstrap.py --starts 450 --no-ensemble  # quicker: 450 reference starts
    .venv/bin/python bench/bench_bootstrap.py --only chinchilla      # sections 3 and 4 only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # this checkout's packages, not an installed copy's
from bench_varpro import plain_fit  # noqa: E402  (the 4,500-start L-BFGS fit: this project's own code)

import scaling  # noqa: E402
from scaling.core.threads import single_threaded_blas  # noqa: E402
from scaling.forms import get_form  # noqa: E402
from scaling.forms.options import form_options  # noqa: E402
from scaling.forms.result import fit  # noqa: E402
from scaling.uncertainty.bootstrap import BootstrapResult, bootstrap, group_codes, resample_indices  # noqa: E402

FORMS = {"powerlaw": [], "saturating": [], "m4": [], "powerlaw_chance": [], "bnsl": ["--axes", "data_hours"]}
CHINCHILLA = {"E": 1.69, "A": 406.4, "alpha": 0.34, "B": 410.7, "beta": 0.28}  # Hoffmann et al. 2022, eq. 10


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def run_child(argv: list[str]) -> tuple[float, float, str]:
    """(wall, CPU seconds, stdout) of ``python ARGV`` as a child process (CPU: user + system of it and of
    the worker processes it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the child imports this checkout too
    out = subprocess.run([sys.executable, *argv], check=True, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), out


def run_cli(db: Path, args: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of ``python -m scaling --db DB ARGS`` as a child process."""
    wall, cpu_s, _ = run_child(["-m", "scaling", "--db", str(db), *args])
    return wall, cpu_s


def cpu(fn: Callable[[], T]) -> tuple[T, float, float]:
    """(result, wall, CPU seconds of this process) of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def grid_processes(db: Path, grid: pd.DataFrame, n: int, n_ref: int) -> None:
    print(f"\n1. The shipped grid, {n} resamples of whole runs, as whole processes ({load()})")
    print(f"{'form':<16}{'no bootstrap':>14}{'workers 1':>16}{'workers 2':>16}{'batched':>10}{'per-resample':>14}"
          f"{'ratio':>8}")
    print(f"{'':<16}{'wall/CPU s':>14}{'wall/CPU s':>16}{'wall/CPU s':>16}{'CPU s':>10}{'CPU s':>14}{'CPU':>8}")
    for form, extra in FORMS.items():
        base = ["fit", "--form", form, "--metric", "top1", "--json", *extra]
        cold = run_cli(db, base)
        one = run_cli(db, [*base, "--bootstrap", str(n), "--seed", "1"])
        two = run_cli(db, [*base, "--bootstrap", str(n), "--seed", "1", "--workers", "2"])
        axes = extra[1].split(",") if extra else ["n_params", "data_hours", "image_px"]
        options = form_options(form, metric="top1", kind="accuracy")
        full = fit(grid, form, y="value", axes=axes, **options)
        kw = {"y": "value", "axes": axes, "seed": 1, "full": full, **options}
        _, _, c_new = cpu(partial(bootstrap, grid, form, n_boot=n, **kw))
        _, _, c_ref = cpu(partial(bootstrap, grid, form, n_boot=n_ref, batched=False, **kw))
        ref = c_ref * n / n_ref
        print(f"{form:<16}{cold[0]:7.2f}/{cold[1]:<6.2f}{one[0]:9.2f}/{one[1]:<6.2f}{two[0]:9.2f}/{two[1]:<6.2f}"
              f"{c_new:10.2f}{ref:14.1f}{ref / c_new:7.1f}x")
    print(f"batched: scaling.bootstrap's CPU seconds in this process; per-resample: bootstrap(..., batched=False) on "
          f"{n_ref} resamples, scaled to {n}; ratio: per-resample / batched ({load()})")


T = TypeVar("T")
POINT = {"n_params": 2.5e9, "data_hours": 2e4, "image_px": 952.0}  # the paper's question: 2.5B, 20,000 h, 952 px


def _shift(a: np.ndarray, b: np.ndarray, levels: tuple[float, ...]) -> float:
    """The largest difference between the percentiles (interval ends and median) of a and b, in units of the
    width of b's widest interval (at least 1e-4 of its largest percentile: a parameter at a bound in every
    resample has an interval of width ~0)."""
    qs = sorted({0.5, *((1 - lv) / 2 for lv in levels), *((1 + lv) / 2 for lv in levels)})
    qa, qb = np.quantile(a, qs), np.quantile(b, qs)
    width = max(qb[-1] - qb[0], 1e-4 * max(float(np.max(np.abs(qb))), 1e-12))
    return float(np.max(np.abs(qa - qb)) / width)


def at_point(full: scaling.FitResult, res: BootstrapResult, point: np.ndarray) -> np.ndarray:
    """Each resample's prediction at ``point`` (its parameters through the form's predictor)."""
    predict = get_form(full.form).predictor
    names = list(full.params.index)
    return np.array([predict(full, {k: res.samples[k][i] for k in names})(point)[0]  # type: ignore[misc]
                     for i in range(res.n_ok)])


def agreement(grid: pd.DataFrame, n_ref: int) -> None:
    print(f"\n2. Batched against per-resample refits, the same {n_ref} resample indices (seed 1)")
    for form, extra in FORMS.items():
        axes = extra[1].split(",") if extra else ["n_params", "data_hours", "image_px"]
        options = form_options(form, metric="top1", kind="accuracy")
        full = fit(grid, form, y="value", axes=axes, **options)
        kw = {"y": "value", "axes": axes, "n_boot": n_ref, "seed": 1, "full": full, **options}
        a, b = bootstrap(grid, form, batched=True, **kw), bootstrap(grid, form, batched=False, **kw)
        names = list(full.params.index)
        rel = np.vstack([np.abs(a.samples[k] - b.samples[k]) / np.maximum(np.abs(b.samples[k]), 1e-12)
                         for k in names])
        point = np.array([[POINT[x] for x in axes]])
        pa, pb = at_point(full, a, point), at_point(full, b, point)
        params = max(_shift(a.samples[k], b.samples[k], a.levels) for k in names)
        print(f"{form:<16} resamples whose parameters differ by > 1e-4 (relative): {int(np.sum(rel.max(0) > 1e-4))}"
              f"/{n_ref}, whose prediction at 2.5B / 20,000 h / 952 px differs by > 1e-4: "
              f"{int(np.sum(np.abs(pa - pb) > 1e-4))} (largest {float(np.max(np.abs(pa - pb))):.1e}); percentiles "
              f"moved by at most {params:.1e} of their interval's width (parameters), {_shift(pa, pb, a.levels):.1e}"
              f" (prediction); paths {a.paths} / {b.paths}")
        if form == "powerlaw_chance":
            objectives(grid, full, n_ref)


def objectives(grid: pd.DataFrame, full: scaling.FitResult, n_ref: int) -> None:
    """Where the chance law's two paths end apart: whose objective is lower (``varpro.solve_warm``, the
    reference, against ``varpro_batch.solve_warm_batch`` on the same resamples)."""
    from scaling.forms import varpro, varpro_batch  # lazy: only this section

    X = grid[list(full.axes)].to_numpy(float)
    sol0, err = full.require_model().sol, 1.0 - grid["value"].to_numpy(float)
    codes, _ = group_codes(grid, "run_id")
    idx = resample_indices(codes, n_ref, 1)
    kw = {"delta": full.options["huber_delta"], "alpha_max": full.options["alpha_max"]}
    batch = varpro_batch.solve_warm_batch(X, err, sol0, idx, **kw)
    rel = []
    for rows, sb in zip(idx, batch, strict=True):
        ref = varpro.solve_warm(X[rows], err[rows], sol0, **kw)
        if sb is not None and np.max(np.abs(sb.alpha - ref.alpha)) > 1e-4:
            rel.append((sb.objective - ref.objective) / ref.objective)
    r = np.array(rel)
    if r.size:
        print(f"{'':<16} where the exponents differ ({r.size}): the batched objective is lower in "
              f"{int(np.sum(r < 0))}, higher in {int(np.sum(r > 0))}; relative difference from {r.min():+.1e} to "
              f"{r.max():+.1e} (median {np.median(r):+.1e}): both stop at different points of a flat, kinked "
              "valley (Huber delta 1e-3)")


def chinchilla_table() -> pd.DataFrame:
    c = CHINCHILLA
    g = (c["alpha"] * c["A"] / (c["beta"] * c["B"])) ** (1 / (c["alpha"] + c["beta"]))
    rows = []
    for budget in np.geomspace(6e18, 3e21, 10):
        n_opt = g * (budget / 6) ** (c["beta"] / (c["alpha"] + c["beta"]))
        rows += [(n, budget / (6 * n)) for n in n_opt * np.geomspace(1 / 6, 6, 24)]
    X = np.array(rows)
    loss = c["E"] + c["A"] * X[:, 0] ** -c["alpha"] + c["B"] * X[:, 1] ** -c["beta"]
    loss = loss * np.exp(0.01 * np.random.default_rng(0).standard_normal(len(X)))
    return pd.DataFrame({"params": X[:, 0], "tokens": X[:, 1], "loss": loss})


def chinchilla(n: int, starts: int) -> None:
    table = chinchilla_table()
    print(f"\n3. Chinchilla-sized table: {len(table)} points generated from Chinchilla's law (see above), one BLAS "
          f"thread each ({load()})")
    X, y = table[["params", "tokens"]].to_numpy(), table["loss"].to_numpy()
    with single_threaded_blas():
        (obj, _), w_ref, c_ref = cpu(lambda: plain_fit(X, y, starts))
        full, _, c_fit = cpu(lambda: scaling.fit(table, y="loss", axes=["params", "tokens"], kind="loss",
                                                 form="powerlaw"))
        boot, w_boot, c_boot = cpu(lambda: scaling.bootstrap(full, n_boot=n, seed=1))
    ref_4500 = c_ref * 4500 / starts
    print(f"reference fit, {starts} L-BFGS starts: {w_ref:.1f} s wall, {c_ref:.1f} s CPU"
          + (f" (4,500 starts: {ref_4500:.1f} s CPU, scaled)" if starts != 4500 else ""))
    print(f"scaling.fit (VarPro, cold): {c_fit:.2f} s CPU; its objective - the reference's: "
          f"{full.objective - obj:+.2e} (<= 0: at least as good)")
    print(f"{n} resamples (scaling.bootstrap, batched): {w_boot:.2f} s wall, {c_boot:.2f} s CPU; refits {boot.paths}")
    print(f"ratio reference fit / {n} resamples (CPU): {ref_4500 / c_boot:.1f}x (issue 24's target: >= 50x)")
    blas_threads(table, full, n)


def blas_threads(table: pd.DataFrame, full: scaling.FitResult, n: int) -> None:
    print(f"\n4. BLAS threads ({load()})")
    from scaling.forms.varpro_batch import solve_warm_batch  # lazy: only this section

    X, err = table[["params", "tokens"]].to_numpy(), table["loss"].to_numpy()
    idx = [np.random.default_rng(b).integers(0, len(X), len(X)) for b in range(n)]
    sol = full.require_model().sol
    with threadpool_limits(1, user_api="blas"):
        _, w1, c1 = cpu(lambda: solve_warm_batch(X, err, sol, idx, delta=1e-3, alpha_max=2.0))
    with threadpool_limits(os.cpu_count(), user_api="blas"):
        _, wn, cn = cpu(lambda: solve_warm_batch(X, err, sol, idx, delta=1e-3, alpha_max=2.0))
    print(f"batched refits of {n} resamples: 1 BLAS thread {w1:.2f} s wall / {c1:.2f} s CPU; {os.cpu_count()} BLAS "
          f"threads {wn:.2f} s wall / {cn:.2f} s CPU (the bootstrap runs its refits with 1)")


EVERY_FORM = """
import json, sys
import scaling
report = scaling.project(None, ensemble=scaling.Ensemble(min_weight=0.0), calibrated=True, db=sys.argv[1],
                         n_boot=int(sys.argv[2]))
print(json.dumps(report.to_dict()["combined"]["weights"]))
"""


def ensembles(db: Path, n: int) -> None:
    print(f"\n5. Ensemble answers, calibration included, as whole processes ({load()})")
    for workers in (1, 2):
        args = ["project", "--ensemble", "--calibrated", "--bootstrap", str(n), "--workers", str(workers), "--json"]
        w, c = run_cli(db, args)
        print(f"scaling project --ensemble --calibrated --bootstrap {n} --workers {workers}: {w:.1f} s wall, "
              f"{c:.1f} s CPU")
    w, c, out = run_child(["-c", EVERY_FORM, str(db), str(n)])
    weights = json.loads(out.strip().splitlines()[-1])
    print(f"scaling.project(ensemble=Ensemble(min_weight=0), calibrated=True, n_boot={n}): {w:.1f} s wall, "
          f"{c:.1f} s CPU; {len(weights)} forms bootstrapped ({', '.join(weights)})")
    w, c = run_cli(db, ["compare", "--metric", "top1", "--bootstrap", str(n), "--json"])
    print(f"scaling compare --metric top1 --bootstrap {n}: {w:.1f} s wall, {c:.1f} s CPU ({load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--reference", type=int, default=200, help="resamples refitted by the per-resample path")
    parser.add_argument("--starts", type=int, default=4500, help="L-BFGS starts of the Chinchilla reference fit")
    parser.add_argument("--no-ensemble", action="store_true", help="skip section 5")
    parser.add_argument("--only", choices=["chinchilla"], help="only sections 3 and 4 (the Chinchilla-sized table)")
    args = parser.parse_args()
    from runs_db import open_db  # lazy: builds the database

    print(f"machine: {os.cpu_count()} cores, {load()}; python {sys.version.split()[0]}, numpy {np.__version__}; "
          f"scaling from {Path(scaling.__file__).parent}")
    if args.only == "chinchilla":
        chinchilla(args.n, args.starts)
        print(f"\nafter: {load()}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "runs.sqlite"
        grid = open_db(db_path).grid(metric="top1").reset_index(drop=True)
        grid_processes(db_path, grid, args.n, args.reference)
        agreement(grid, args.reference)
        chinchilla(args.n, args.starts)
        if not args.no_ensemble:
            ensembles(db_path, args.n)
        print(f"\nafter: {load()}")


if __name__ == "__main__":
    main()
