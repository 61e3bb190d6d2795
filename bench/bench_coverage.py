"""Coverage of nominal intervals on grids drawn from laws that no registered form states (issue 18).

Each replication draws a law (``scaling.ensemble.synthetic``: product, minimum, broken and power families in
turn), draws the published grid's 78 runs from it with the grid's seed-to-seed noise (1.83 top-5 points),
and asks every predictor for the accuracy at the study's scenario (2.5B parameters, 20,000 h, 952 px; the
truth is the law's value there, about 0.6 decades beyond the grid). Predictors:

- ``recommended``: the form the backtest recommends (one-standard-error rule), bootstrap-only and calibrated;
- ``stacking`` and ``pseudo-bma+``: the ensembles of every form the backtest ranks, their bootstrap
  distributions mixed (bootstrap-only) and calibrated by split-conformal on held-out errors.

The candidates are every registered form but ``bnsl`` (a broken power law per axis: slow, and it fits no
backtest split of a 78-run grid, so it is never ranked). Printed: for each predictor and interval kind, the
share of replications whose nominal 50/80/90/95% interval covers the truth (with a 95% Wilson interval on
that share), the median absolute error and the median width of the 90% interval, and per law family.

    .venv/bin/python bench/bench_coverage.py --reps 200 --out /tmp/coverage.jsonl   # resumable
    .venv/bin/python bench/bench_coverage.py --out /tmp/coverage.jsonl --summary    # the table only
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from scaling.core.direction import direction
from scaling.data.tables import load_runs, select
from scaling.defaults import PAPER_SCENARIO
from scaling.ensemble.calibration import point_interval
from scaling.ensemble.mixture import mixture_interval, mixture_quantile
from scaling.ensemble.predictor import form_residuals
from scaling.ensemble.synthetic import LAWS, draw_law, synthetic_grid, truth_at
from scaling.ensemble.workflow import backtest_forms
from scaling.fitting import fit_dataset
from scaling.forms import list_forms
from scaling.questions.objects import At
from scaling.questions.workflow import project as project_one
from scaling.selection.conformal import conformal_scale, euclidean_decades
from scaling.selection.splits import ranked_residuals
from scaling.selection.weights import pseudo_bma_weights, stacking_weights
from scaling.uncertainty.resampling import Bootstrap

LEVELS = (0.5, 0.8, 0.9, 0.95)
METHODS = ("stacking", "pseudo-bma+")
CANDIDATES = tuple(f.name for f in list_forms() if f.name != "bnsl")
# The first-order forms alone: the quadratic polynomials (poly2, logit2) can turn over just past the grid.
FIRST_ORDER = tuple(f for f in CANDIDATES if f not in ("poly2", "logit2"))


def _design() -> pd.DataFrame:
    runs = load_runs(metric="top5")
    return runs[runs["metric"] == "top5"].reset_index(drop=True)


def one(rep: int, n_boot: int) -> dict[str, Any]:
    """One replication's raw material: the law, the truth, each ranked form's estimate and bootstrap samples
    at the scenario, and its held-out residuals on the backtest's common splits (``evaluate`` turns them
    into intervals with the library's own functions, for any subset of the forms)."""
    t0 = time.perf_counter()
    family = LAWS[rep % len(LAWS)]
    rng = np.random.default_rng(rep)
    design = _design()
    law = draw_law(family, design, rng)
    sel = select(synthetic_grid(design, law, rng), metric="top5")
    bt, opts = backtest_forms(sel, CANDIDATES, {})
    spec = Bootstrap(n_boot, seed=rep, levels=LEVELS)
    forms: dict[str, Any] = {}
    for f in bt.ranking:
        boot = project_one(fit_dataset(sel, f, **opts[f]), None, [At()], uncertainty=spec).bootstrap
        res, dist = form_residuals(bt, f, bt.common_splits)
        forms[f] = {"estimate": boot.derived["at.predicted"].estimate,
                    "samples": boot.samples["at.predicted"].tolist(), "residuals": res, "distances": dist,
                    "predictions": {r.split: r.predictions for r in bt.results if r.form == f and r.ok
                                    and r.split in bt.common_splits},
                    "score": bt.by_form[f].score}
    observed = {r.split: r.observed for r in bt.results if r.ok and r.split in bt.common_splits}
    return {"rep": rep, "family": family, "truth": truth_at(law, PAPER_SCENARIO), "recommended": bt.recommended,
            "ranking": bt.ranking, "split_weights": {s: bt.split_weights[s] for s in bt.common_splits},
            "observed": observed, "forms": forms, "seconds": time.perf_counter() - t0}


def _distance_of_scenario() -> float:
    design = _design()
    return euclidean_decades([math.log10(PAPER_SCENARIO[a] / float(design[a].max())) for a in PAPER_SCENARIO])


def evaluate(raw: dict[str, Any], weights: dict[str, float], distance: float) -> dict[str, Any]:
    """The predictor ``weights`` (one form: weight 1) at the scenario: its estimate (the mixture's median),
    its bootstrap-only intervals (the mixture's percentiles) and its calibrated ones (the union with the
    weighted mean prediction +- the split-conformal half-width of its held-out errors at ``distance``)."""
    forms = raw["forms"]
    samples = {f: np.asarray(forms[f]["samples"], dtype=float) for f in weights}
    splits = list(raw["split_weights"])
    res, dist = [], []
    for s in splits:
        pred = np.sum([w * np.asarray(forms[f]["predictions"][s]) for f, w in weights.items()], axis=0)
        res.append(ranked_residuals(pred, np.asarray(raw["observed"][s]), direction("accuracy")).tolist())
        dist.append(forms[next(iter(weights))]["distances"][s])
    scale = conformal_scale(res, dist, "bench")
    centre = float(sum(w * forms[f]["estimate"] for f, w in weights.items()))
    out: dict[str, Any] = {"estimate": mixture_quantile(samples, weights, 0.5), "bootstrap": {}, "calibrated": {}}
    for lvl in LEVELS:
        b = mixture_interval(samples, weights, lvl)
        c = point_interval(centre, scale.half_width(lvl, distance), direction("accuracy"))
        out["bootstrap"][f"{lvl:g}"] = b
        out["calibrated"][f"{lvl:g}"] = (min(b[0], c[0]), max(b[1], c[1]))
    return out


def predictors(raw: dict[str, Any], candidates: tuple[str, ...] | None, distance: float) -> dict[str, Any]:
    """The recommended form, and each method's ensemble of the ranked forms among ``candidates``."""
    ranked = [f for f in raw["ranking"] if candidates is None or f in candidates]
    out = {"recommended": evaluate(raw, {raw["recommended"]: 1.0}, distance)}
    residuals = {f: raw["forms"][f]["residuals"] for f in ranked}
    for m in METHODS:
        weigh = stacking_weights if m == "stacking" else pseudo_bma_weights
        w = {f: v for f, v in weigh(residuals, raw["split_weights"]).weights.items() if v >= 0.01}
        total = sum(w.values())
        out[m] = evaluate(raw, {f: v / total for f, v in w.items()}, distance) | {"weights": w}
    return out


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    z, p = 1.96, k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (mid - half, mid + half)


def summary(raws: list[dict[str, Any]], candidates: tuple[str, ...] | None = None) -> str:
    """The coverage table: per predictor and interval kind, coverage at each level, errors and widths."""
    distance = _distance_of_scenario()
    rows = [{**r, "predictors": predictors(r, candidates, distance)} for r in raws]
    lines = [f"candidates: {'every ranked form' if candidates is None else ', '.join(candidates)}; the scenario "
             f"lies {distance:.2f} decades beyond the grid",
             f"{len(rows)} replications ({', '.join(f'{k} {v}' for k, v in sorted(_count(rows).items()))}); truth "
             "= the law's accuracy at 2.5B params, 20,000 h, 952 px",
             f"{'predictor':<12} {'interval':<10} " + " ".join(f"{f'{100 * lvl:g}%':>16}" for lvl in LEVELS)
             + f" {'median |err| (pts)':>19} {'median 90% width':>17}"]
    for name in ("recommended", *METHODS):
        for kind in ("bootstrap", "calibrated"):
            cells = []
            for lvl in LEVELS:
                hits = [r["predictors"][name][kind][f"{lvl:g}"] for r in rows]
                k = sum(lo <= r["truth"] <= hi for (lo, hi), r in zip(hits, rows, strict=True))
                lo_ci, hi_ci = _wilson(k, len(rows))
                cells.append(f"{100 * k / len(rows):5.1f} [{100 * lo_ci:3.0f},{100 * hi_ci:3.0f}]")
            err = np.median([abs(r["predictors"][name]["estimate"] - r["truth"]) for r in rows]) * 100
            width = np.median([np.subtract(*r["predictors"][name][kind]["0.9"][::-1]) for r in rows]) * 100
            lines.append(f"{name:<12} {kind:<10} " + " ".join(f"{c:>16}" for c in cells)
                         + f" {err:19.2f} {width:17.2f}")
    lines.append("\nper law family, 90% calibrated coverage: " + "; ".join(
        f"{fam}: " + ", ".join(f"{name} {100 * _share(rows, fam, name):.0f}%" for name in ("recommended", *METHODS))
        for fam in LAWS))
    return "\n".join(lines)


def _count(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for r in rows:
        out[r["family"]] += 1
    return out


def _share(rows: list[dict[str, Any]], family: str, name: str) -> float:
    sub = [r for r in rows if r["family"] == family]
    hits = [r["predictors"][name]["calibrated"]["0.9"] for r in sub]
    return sum(lo <= r["truth"] <= hi for (lo, hi), r in zip(hits, sub, strict=True)) / max(len(sub), 1)


def _one_star(args: tuple[int, int]) -> dict[str, Any]:
    return one(*args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("coverage.jsonl"))
    ap.add_argument("--summary", action="store_true", help="print the table of --out and stop")
    ap.add_argument("--from-rep", type=int, default=0,
                    help="summarise replications from this one on (23: those after the Euclidean distance was "
                         "chosen on the first 23)")
    args = ap.parse_args()
    done = [json.loads(line) for line in args.out.read_text().splitlines()] if args.out.exists() else []
    if not args.summary:
        todo = [(r, args.n_boot) for r in range(args.reps) if r not in {d["rep"] for d in done}]
        with get_context("fork").Pool(args.workers) as pool, args.out.open("a") as fh:
            for i, row in enumerate(pool.imap_unordered(_one_star, todo), 1):
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                done.append(row)
                print(f"rep {row['rep']} ({row['family']}) {row['seconds']:.1f} s  [{i}/{len(todo)}]", flush=True)
    done = sorted((r for r in done if r["rep"] >= args.from_rep), key=lambda r: r["rep"])
    print(summary(done))
    print()
    print(summary(done, FIRST_ORDER))


if __name__ == "__main__":
    main()
