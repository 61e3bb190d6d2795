"""Extrapolation of learning curves drawn from a 1-break BNSL: bnsl against powerlaw and every other form.

Each seed draws one single-axis loss curve a + b x^-c0 (1 + (x/d)^(1/f))^(-c1 f) (Caballero et al. 2022)
over four decades of x (1e3 .. 1e7, 30 log-spaced points, multiplicative log-normal noise) with
a ~ U(0.5, 2), c0 ~ U(0, 0.2), c1 ~ U(0.3, 0.8) (slope after the break 0.3 .. 1), the break d log-uniform
in [1e4, 1e5] and its width f log-uniform in [0.05, 0.5] (sharp), b set so that the reducible loss at the
smallest x is U(1, 4) times a. Every form is fitted on the smallest 70% of the log-range of x and scored
by the RMSE of log(loss) on the larger x (Alabdulmohsin et al. 2022's metric). Rows:

- bnsl:        ``bnsl`` with ``breaks='auto'`` (chosen by held-out error inside the fit; what a user gets);
- bnsl_1:      ``bnsl`` with the generating number of breaks (1) given;
- powerlaw:    ``powerlaw`` (E + A x^-alpha);
- every other registered form that fits a one-axis loss with its default options;
- selected:    the form ``scaling.backtest`` recommends on the training part (all forms, rolling origins
  along x), scored on the held-out part: what ``scaling compare`` would have a user extrapolate with.

"best fixed" is the form other than bnsl and powerlaw with the lowest mean error over the seeds (among
those that fitted every seed). Fit time: wall time of one ``bnsl`` fit (auto) per curve, one process,
BLAS single-threaded inside the fit.

    .venv/bin/python bench/bench_bnsl.py                      # 10 seeds, 1% noise
    .venv/bin/python bench/bench_bnsl.py --seeds 20 --noise 0.02 --no-select
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

import scaling
from scaling.errors import ScalingError
from scaling.forms import bnsl_core as core
from scaling.forms import list_forms
from scaling.forms.result import fit

TRAIN_FRAC = 0.7


def curve(seed: int, noise: float, points: int) -> tuple[pd.DataFrame, core.Solution]:
    rng = np.random.default_rng(seed)
    a, c0, c1 = rng.uniform(0.5, 2.0), rng.uniform(0.0, 0.2), rng.uniform(0.3, 0.8)
    d, f = math.exp(rng.uniform(math.log(1e4), math.log(1e5))), math.exp(rng.uniform(math.log(0.05), math.log(0.5)))
    x = np.geomspace(1e3, 1e7, points)
    unit = core.Solution(0.0, 1.0, np.array([c0, c1]), np.array([d]), np.array([f]), 0.0, True, "")
    b = rng.uniform(1.0, 4.0) * a / float(core.predict_error(unit, x[:1])[0])
    truth = core.Solution(a, b, unit.c, unit.d, unit.f, 0.0, True, "")
    loss = core.predict_error(truth, x) * np.exp(noise * rng.standard_normal(points))
    return pd.DataFrame({"x": x, "loss": loss}), truth


def forms() -> dict[str, tuple[str, dict]]:
    out: dict[str, tuple[str, dict]] = {"bnsl": ("bnsl", {}), "bnsl_1": ("bnsl", {"breaks": 1})}
    for f in list_forms():
        if f.name != "bnsl":
            out[f.name] = (f.name, f.default_options(metric=None, kind="loss"))
    return out


def rmse_log(r: scaling.FitResult, test: pd.DataFrame) -> float:
    pred = np.asarray(r.predict(test), dtype=float)
    with np.errstate(all="ignore"):
        d = np.log(pred) - np.log(test["loss"].to_numpy())
    return float(np.sqrt(np.mean(d**2))) if np.all(np.isfinite(d)) else math.nan


def run(seeds: int, noise: float, points: int, select: bool) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        df, _ = curve(seed, noise, points)
        lx = np.log(df["x"].to_numpy())
        is_train = lx <= lx[0] + TRAIN_FRAC * (lx[-1] - lx[0])
        train, test = df[is_train], df[~is_train]
        fitted: dict[str, float] = {}
        for label, (form, opts) in forms().items():
            t0 = time.perf_counter()
            try:
                r = fit(train, form, y="loss", axes=["x"], kind="loss", **opts)
            except ScalingError as exc:
                rows.append({"seed": seed, "form": label, "rmse_log": math.nan, "seconds": math.nan,
                             "breaks": None, "error": str(exc).splitlines()[0]})
                continue
            fitted[label] = rmse_log(r, test)
            rows.append({"seed": seed, "form": label, "rmse_log": fitted[label], "seconds": time.perf_counter() - t0,
                         "breaks": r.options.get("breaks"), "error": ""})
        if select:
            bt = scaling.backtest(train, [f.name for f in list_forms()], y="loss", axes=["x"], kind="loss",
                                  rolling_axis="x")
            rec = bt.recommended
            rows.append({"seed": seed, "form": "selected", "rmse_log": fitted.get(rec or "", math.nan),
                         "seconds": math.nan, "breaks": None, "error": f"recommended {rec}"})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.01, help="sd of the multiplicative log-normal noise")
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--no-select", dest="select", action="store_false", help="skip the backtest selection row")
    args = ap.parse_args()
    res = run(args.seeds, args.noise, args.points, args.select)
    ok = res[res["error"].eq("") | res["form"].eq("selected")]
    table = ok.groupby("form")["rmse_log"].agg(["mean", "median", "max", "count"]).sort_values("mean")
    print(f"{args.seeds} curves from a 1-break BNSL, {args.noise:.1%} noise, {args.points} points; fitted on the "
          f"smallest {TRAIN_FRAC:.0%} of log x, RMSE of log(loss) on the rest")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"(count < {args.seeds}: on the other seeds the form failed or predicted a loss <= 0 on held-out x)")
    complete = [f for f in table.index if table.loc[f, "count"] == args.seeds and f not in
                ("bnsl", "bnsl_1", "powerlaw", "selected")]
    best = min(complete, key=lambda f: table.loc[f, "mean"]) if complete else None
    b = table.loc["bnsl", "mean"]
    print(f"\nratios of mean RMSE(log) to bnsl's: powerlaw {table.loc['powerlaw', 'mean'] / b:.2f}x"
          + (f", best fixed form ({best}) {table.loc[best, 'mean'] / b:.2f}x" if best else "")
          + (f", selected {table.loc['selected', 'mean'] / b:.2f}x" if "selected" in table.index else ""))
    picks = res[res["form"].eq("bnsl")]["breaks"].value_counts().sort_index()
    print("breaks chosen by bnsl (auto):", ", ".join(f"{int(k)}: {v}" for k, v in picks.items()))
    if args.select:
        print("selected forms:", res[res["form"].eq("selected")]["error"].str.removeprefix("recommended ")
              .value_counts().to_dict())
    secs = res[res["form"].eq("bnsl")]["seconds"]
    print(f"bnsl fit time per curve: mean {secs.mean():.2f} s, median {secs.median():.2f} s, max {secs.max():.2f} s"
          " (target < 1 s)")
    failed = res[res["error"].ne("") & res["form"].ne("selected")].groupby("form")["error"].first()
    for form, err in failed.items():
        print(f"{form}: failed on some seeds ({err})")


if __name__ == "__main__":
    main()
