"""Extrapolation of learning curves drawn from M4: m4 against the forms it is meant to beat.

Each seed draws one single-axis curve (L - L_inf) / (L0 - L)^alpha = beta x^c of an error rate that
starts near chance (L0 = 0.999, ImageNet top-1) over five decades of x, with L_inf ~ U(0.05, 0.4),
alpha ~ U(0.5, 3), c ~ U(-0.7, -0.2) and beta set so that the error at the smallest x is 90% of the
way from L_inf to L0; 30 log-spaced points with multiplicative log-normal noise. Every form is fitted on
the smallest part of the log-range of x (60% or 80%) and scored by the RMSE of log(error) on the larger
x (the metric of Alabdulmohsin et al. 2022), at two noise levels. Forms:

- m4:           ``m4`` as ``default_options`` gives it for a top-k accuracy: L0 = chance, Huber delta 1e-3;
- m4_ls:        the same by least squares (huber_delta = inf);
- m4_l0fit:     ``m4`` with L0 fitted in (max error, 1];
- m4_paper:     the paper's estimator: least squares on its implicit residual, L0 fitted;
- powerlaw_chance (chance = 0.999, i.e. M4 with alpha = 1), powerlaw (= saturating, M2).

Fit time is wall time per curve of ``scaling.forms.result.fit`` (one process).

    .venv/bin/python bench/bench_m4.py                  # 4 settings x 20 seeds (a few minutes on 2 cores)
    .venv/bin/python bench/bench_m4.py --seeds 50 --noise 0.02 --train-frac 0.7
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd

from scaling.errors import ScalingError
from scaling.forms.m4_core import solve_level
from scaling.forms.result import fit

CHANCE = 0.999
FORMS: dict[str, tuple[str, dict]] = {
    "m4": ("m4", {"l0": CHANCE}),
    "m4_ls": ("m4", {"l0": CHANCE, "huber_delta": math.inf}),
    "m4_l0fit": ("m4", {"l0": "fit"}),
    "m4_paper": ("m4", {"l0": "fit", "objective": "implicit", "huber_delta": math.inf}),
    "powerlaw_chance": ("powerlaw_chance", {"chance": CHANCE}),
    "powerlaw": ("powerlaw", {}),
}


def curve(seed: int, noise: float, points: int) -> tuple[pd.DataFrame, dict[str, float]]:
    rng = np.random.default_rng(seed)
    E, alpha, c = rng.uniform(0.05, 0.4), rng.uniform(0.5, 3.0), rng.uniform(-0.7, -0.2)
    x = np.geomspace(1e2, 1e7, points)
    e0 = E + 0.9 * (CHANCE - E)  # error at the smallest x
    beta = (e0 - E) / (CHANCE - e0) ** alpha / x[0] ** c
    err = solve_level(E, CHANCE, alpha, beta * x**c)[0] * np.exp(noise * rng.standard_normal(points))
    err = np.minimum(err, CHANCE - 1e-4)  # an observed error rate stays below chance
    return pd.DataFrame({"x": x, "acc": 1.0 - err}), {"L_inf": E, "alpha": alpha, "c": c, "beta": beta}


def run(seeds: int, noise: float, points: int, train_frac: float) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        df, _ = curve(seed, noise, points)
        lx = np.log(df["x"].to_numpy())
        train = lx <= lx[0] + train_frac * (lx[-1] - lx[0])
        test = df[~train]
        e_obs = 1.0 - test["acc"].to_numpy()
        for label, (form, opts) in FORMS.items():
            t0 = time.perf_counter()
            try:
                r = fit(df[train], form, y="acc", axes=["x"], **opts)
            except ScalingError as exc:
                rows.append({"seed": seed, "form": label, "rmse_log": math.nan, "seconds": math.nan,
                             "error": str(exc)})
                continue
            seconds = time.perf_counter() - t0
            e_pred = 1.0 - r.predict(test)
            rmse = float(np.sqrt(np.mean((np.log(e_pred) - np.log(e_obs)) ** 2)))
            rows.append({"seed": seed, "form": label, "rmse_log": rmse, "seconds": seconds, "error": ""})
    return pd.DataFrame(rows)


def report(res: pd.DataFrame, title: str) -> None:
    summary = res.groupby("form", sort=False).agg(
        mean_rmse_log=("rmse_log", "mean"), median_rmse_log=("rmse_log", "median"),
        failed=("rmse_log", lambda v: int(v.isna().sum())), mean_s=("seconds", "mean"), max_s=("seconds", "max"))
    summary["ratio_to_m4"] = summary["mean_rmse_log"] / summary.loc["m4", "mean_rmse_log"]
    wins = res.pivot(index="seed", columns="form", values="rmse_log")
    summary["m4_better_in"] = [f"{int((wins['m4'] < wins[f]).sum())}/{len(wins)}" if f != "m4" else "-"
                               for f in summary.index]
    print(title)
    print(summary.to_string(float_format=lambda v: f"{v:.4g}"))
    for _, row in res[res["error"] != ""].iterrows():
        print(f"  seed {row['seed']} {row['form']}: {row['error']}")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--noise", type=float, nargs="*", default=[0.003, 0.01],
                    help="sd of the multiplicative log-normal noise (one or more)")
    ap.add_argument("--points", type=int, default=30)
    ap.add_argument("--train-frac", type=float, nargs="*", default=[0.6, 0.8],
                    help="share of the log-range of x fitted (one or more)")
    args = ap.parse_args()
    fit(curve(0, 0.01, args.points)[0], "m4", y="acc", axes=["x"], l0=CHANCE)  # imports, caches: untimed
    times = []
    for frac in args.train_frac:
        for noise in args.noise:
            res = run(args.seeds, noise, args.points, frac)
            times.append(res)
            report(res, f"{args.seeds} curves from M4, noise {noise:g}, {args.points} points, fitted on the smallest "
                        f"{frac:.0%} of log x; RMSE of log error on the rest")
    t = pd.concat(times).groupby("form", sort=False)["seconds"]
    print("fit time per curve over all settings (s): " + ", ".join(
        f"{f} mean {m:.3f} max {x:.3f}" for f, m, x in zip(t.mean().index, t.mean(), t.max(), strict=True)))


if __name__ == "__main__":
    main()
