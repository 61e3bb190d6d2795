"""How ``bnsl`` picks its number of breaks, and what it costs in extrapolation (issue 19): the rule of issue 19
(score every count on the held-out folds, take the fewest that no more breaks beat by ``select_tol``)
against the rule before it (add breaks from 0 while one more cuts the held-out error by ``select_tol``, and
stop at the first that does not), on curves with real breaks.

Curves:

- synthetic: ``--seeds`` one-break curves of ``bench_bnsl.curve`` (Caballero et al. 2022's law with a sharp
  break between 1e4 and 1e5, four decades of x, 1% log-normal noise), fitted on the smallest 70% of log x;
- ``--curves FILE``: public learning curves in the layout ``curve, x, y, split`` (``split`` fit/tail), e.g.
  ``bench/data/extrapolation/curves.csv`` (Alabdulmohsin et al. 2022's
  benchmark, Apache-2.0: its ImageNet few-shot error curves break sharply), filtered by ``--match``.

For each curve, ``bnsl`` is fitted with 0, 1 and 2 breaks on the fitting part, and each count is scored on
the held-out folds of ``scaling.forms.bnsl`` (the largest 15% and 30% of the distinct x); both rules then
choose from the same scores. Printed: the tail RMSE of log(y) of each rule's choice, of each fixed count
and of the best count in hindsight (oracle), and per rule the median, the mean and the number of curves
where it is worse than the other by more than 1%.

The authors' own fitting recipe is compared in ``bench/bench_bnsl_authors.py``.

    .venv/bin/python bench/bench_bnsl_breaks.py --seeds 10
    .venv/bin/python bench/bench_bnsl_breaks.py --seeds 0 --curves bench/data/extrapolation/curves.csv --match ic/inet_
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.errors import ScalingError
from scaling.forms import bnsl
from scaling.forms.result import fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bnsl import TRAIN_FRAC, curve

TOL = 0.2  # bnsl's select_tol default
COUNTS = (0, 1, 2)


def _synthetic(seeds: int) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame, str]]:
    for seed in range(seeds):
        df, _ = curve(seed, 0.01, 30)
        lx = np.log(df["x"].to_numpy())
        train = lx <= lx[0] + TRAIN_FRAC * (lx[-1] - lx[0])
        yield f"synthetic-{seed}", df[train].rename(columns={"loss": "y"}), df[~train].rename(columns={"loss": "y"}), \
            "loss"


def _public(path: str, match: str) -> Iterator[tuple[str, pd.DataFrame, pd.DataFrame, str]]:
    table = pd.read_csv(path)
    for name, c in table[table["curve"].str.contains(match, regex=False)].groupby("curve", sort=True):
        kind = "error" if c["y"].between(0, 1, inclusive="neither").all() else "loss"
        yield str(name), c[c["split"] == "fit"][["x", "y"]], c[c["split"] == "tail"][["x", "y"]], kind


def _tail_rmse(train: pd.DataFrame, tail: pd.DataFrame, kind: str, n: int) -> float:
    try:
        r = fit(train, "bnsl", y="y", axes=["x"], kind=kind, breaks=n)
    except ScalingError:
        return math.nan
    with np.errstate(all="ignore"):
        d = np.log(np.asarray(r.predict(tail), dtype=float)) - np.log(tail["y"].to_numpy(dtype=float))
    return float(np.sqrt(np.mean(d**2))) if np.all(np.isfinite(d)) else math.nan


def _rules(x: np.ndarray, err: np.ndarray) -> tuple[int, int]:
    """(the earlier forward rule's count, this rule's count) from the same held-out fold scores."""
    masks = bnsl.holdout_masks(x)
    usable = {n: {i: m for i, m in enumerate(masks) if bnsl.feasible(x[m], n)} for n in COUNTS}
    per = {n: bnsl.fold_errors(x, err, None, n, usable[n]) for n in COUNTS if usable[n] and bnsl.feasible(x, n)}
    forward = 0
    for n in COUNTS[1:]:
        if n not in per or not np.mean(list(per[n].values())) < (1 - TOL) * np.mean([per[forward][i] for i in per[n]]):
            break
        forward = n
    largest = max(per)
    score = {n: float(np.mean([per[n][i] for i in per[largest]])) for n in per}
    best = min(score.values())
    every = next(n for n in sorted(score) if best >= (1 - TOL) * score[n])
    return forward, every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="synthetic one-break curves")
    parser.add_argument("--curves", help="a CSV of public curves: curve, x, y, split (fit/tail)")
    parser.add_argument("--match", default="", help="keep the curves whose id contains this")
    args = parser.parse_args()
    t0 = time.perf_counter()
    sources = [_synthetic(args.seeds)] + ([_public(args.curves, args.match)] if args.curves else [])
    rows = []
    for source in sources:
        for name, train, tail, kind in source:
            tails = {n: _tail_rmse(train, tail, kind, n) for n in COUNTS}
            x, y = train["x"].to_numpy(dtype=float), train["y"].to_numpy(dtype=float)
            forward, every = _rules(x, y)
            rows.append({"curve": name, "forward (before)": tails[forward], "every count (now)": tails[every],
                         **{f"{n} breaks": tails[n] for n in COUNTS}, "oracle": np.nanmin(list(tails.values())),
                         "chosen before": forward, "chosen now": every})
            print(f"{name}: before {forward} breaks {tails[forward]:.4f}, now {every} breaks {tails[every]:.4f}",
                  flush=True)
    table = pd.DataFrame(rows).set_index("curve")
    pd.set_option("display.width", 200)
    print("\nTail RMSE of log(y):")
    print(table.round(4).to_string())
    before, now = table["forward (before)"], table["every count (now)"]
    print(f"\nmedian: before {before.median():.4f}, now {now.median():.4f}; mean: before {before.mean():.4f}, "
          f"now {now.mean():.4f}; oracle median {table['oracle'].median():.4f}")
    print(f"now worse by > 1%: {int((now > 1.01 * before).sum())} curves; now better by > 1%: "
          f"{int((now < before / 1.01).sum())} of {len(table)}")
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
