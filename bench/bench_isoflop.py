"""Held-out N* by every compute-optimal method (issue 19): fit each method on an IsoFLOP sweep without its two
largest budgets, and measure its N* at those two budgets against the truth, in decades (log10 of
predicted / true; negative = too small).

Sweeps:

- ``synthetic`` (default): sweeps drawn from Chinchilla's additive law and Kaplan's law with an N-D
  interaction (``scaling.allocation.sweeps``; 7 budgets 1e18..1e21, 9 sizes each, centred 0.2 decades off
  the true optimum, loss noise 0.01), ``--seeds`` of each. The truth is the law's own N*(C). The envelope is
  fitted to training curves of the same law (15 sizes, 40 logged points each) cut at the largest training
  budget.
- ``--data FILE.csv``: public sweeps (columns ``params``, ``tokens``, ``loss`` and a budget column; one
  sweep per value of ``--group``). The truth of a held-out budget is its own parabola vertex (it has no
  other); a held-out budget without an interior, convex vertex is skipped. The parametric law allocates under
  C = k N D with k the median of budget / (N D) over the sweep (its FLOPs count is not exactly 6 N D).
  Nothing from such a file is shipped here unless its licence permits.

For every sweep the parametric law's consistency check on its training budgets is printed as well. Printed
at the end: per method, the median |error|, the share of held-out N* that are too small, and the ratio of
median errors against the IsoFLOP method.

    .venv/bin/python bench/bench_isoflop.py --seeds 5
    .venv/bin/python bench/bench_isoflop.py --data isoflops.csv --group experiment --budget-column budget
"""

from __future__ import annotations

import argparse
import math
import time
from collections import defaultdict
from collections.abc import Iterator

import numpy as np
import pandas as pd

import scaling
from scaling.allocation.budget import best_at_budget
from scaling.allocation.consistency import consistency_check
from scaling.allocation.envelope import curves, envelope_fit
from scaling.allocation.isoflop import budget_groups, isoflop_fit
from scaling.allocation.sweeps import LossLaw, isoflop_sweep, training_curves
from scaling.compute.costs import cost_model
from scaling.errors import ScalingError

AXES = ["params", "tokens"]
BUDGETS = [1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21]


def _synthetic(seeds: int) -> Iterator[tuple[str, pd.DataFrame, str, dict[float, float], pd.DataFrame | None]]:
    for law_name in ("chinchilla", "kaplan"):
        law = LossLaw.of(law_name)
        for seed in range(seeds):
            df = isoflop_sweep(law, BUDGETS, center=10 ** 0.2, seed=seed)
            held = BUDGETS[-2:]
            cut = BUDGETS[-3]  # curves cut at the largest training budget
            crv = training_curves(law, np.geomspace(3e7, 1e10, 15), seed=seed)
            crv = crv[6 * crv["params"] * crv["tokens"] <= cut]
            yield f"{law_name}-{seed}", df, "6nd", {c: law.n_opt(c) for c in held}, crv


def _public(path: str, group: str, column: str) -> Iterator[tuple[str, pd.DataFrame, str, dict[float, float], None]]:
    table = pd.read_csv(path)
    for name, df in table.groupby(group, sort=True):
        df = df.reset_index(drop=True)
        k = float(np.median(df[column] / (df["params"] * df["tokens"])))
        budgets = sorted(df[column].unique())
        if len(budgets) < 4:
            continue
        full = isoflop_fit(df, AXES, "loss", "loss", budget_groups(df, AXES, column=column))
        truth = {p.budget: p.vertex_n for p in full.parabolas if p.kept and p.budget in budgets[-2:]}
        yield str(name), df, f"{k!r}*params*tokens", truth, None


def _held_out(name: str, df: pd.DataFrame, cost: str, truth: dict[float, float], crv: pd.DataFrame | None,
              column: str) -> list[dict[str, object]]:
    model = cost_model(cost, AXES)
    budgets = sorted(df[column].unique())
    held = budgets[-2:]
    train = df[~df[column].isin(held)].reset_index(drop=True)
    rows: list[dict[str, object]] = []
    iso = isoflop_fit(train, AXES, "loss", "loss", budget_groups(train, AXES, column=column))
    fit = scaling.fit(train, "powerlaw", y="loss", axes=AXES, kind="loss")
    check = consistency_check(fit, model, budget_column=column)
    env = None
    if crv is not None:
        runs, how = curves(crv, AXES, "loss", "loss", model)
        env = envelope_fit(runs, AXES, how)
    for c in held:
        if c not in truth or truth[c] is None:
            continue
        got = {"parametric": (best_at_budget(fit, float(c), model).point or {}).get("params"),
               "isoflop": None if iso.n_opt is None else float(iso.n_opt.at(c))}
        if env is not None:
            got["envelope"] = None if env.n_opt is None else float(env.n_opt.at(c))
        for method, n in got.items():
            err = None if n is None else math.log10(n / truth[c])
            rows.append({"sweep": name, "budget": float(c), "method": method, "decades": err,
                         "check": "fires" if check.fires else ("passes" if check.made else "not made"),
                         "bias": check.bias_decades, "span": _span(check)})
    return rows


def _span(check: object) -> str:
    per = [b.decades for b in getattr(check, "budgets", ()) if b.decades is not None]
    return f"{min(per):+.2f}..{max(per):+.2f}" if per else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="synthetic sweeps of each law")
    parser.add_argument("--data", help="a CSV of public sweeps (params, tokens, loss, a budget column)")
    parser.add_argument("--group", default="experiment", help="the column naming each sweep of --data")
    parser.add_argument("--budget-column", default="budget", help="the budget column of --data")
    args = parser.parse_args()
    t0 = time.perf_counter()
    source = _public(args.data, args.group, args.budget_column) if args.data else _synthetic(args.seeds)
    rows = []
    for name, df, cost, truth, crv in source:
        try:
            rows += _held_out(name, df, cost, truth, crv, args.budget_column if args.data else "budget")
        except ScalingError as exc:
            print(f"{name}: skipped ({exc})")
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    wide = table.pivot_table(index=["sweep", "budget"], columns="method", values="decades")
    checks = table.groupby("sweep")[["check", "bias", "span"]].first()
    print("N* at the held-out budgets, log10(predicted / true) in decades:")
    print(wide.round(3).to_string())
    print("\nThe parametric law's consistency check on its training budgets (mean and per-budget decades):")
    print(checks.round(3).to_string())
    print("\nSummary over sweeps x held-out budgets:")
    summary: dict[str, dict[str, float]] = defaultdict(dict)
    for method, part in table.dropna(subset=["decades"]).groupby("method"):
        d = part["decades"].to_numpy(dtype=float)
        summary[str(method)] = {"median |error| (decades)": float(np.median(np.abs(d))),
                                "share too small": float(np.mean(d < 0)), "n": float(len(d))}
    out = pd.DataFrame(summary).T
    if "isoflop" in out.index:
        out["vs isoflop"] = out["median |error| (decades)"] / out.loc["isoflop", "median |error| (decades)"]
    print(out.round(3).to_string())
    print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
