"""Run-clustered bootstrap of the additive power law on the 78-run grid: fast refits vs plain multi-start.

Both sides refit the same resamples (whole runs drawn with replacement, seed fixed) with the same
objective, the summed Huber (delta 1e-3) loss of log(pred) - log(1 - accuracy) for
1 - accuracy = E + sum_k A_k x_k^-alpha_k over x = (n_params, data_hours, image_px):

- fast: ``scaling.uncertainty.bootstrap.bootstrap`` (each resample warm-started from the full-data solution by
  ``scaling.forms.varpro.solve_warm``: L-BFGS-B from it, an IRLS-screened search for other basins, cold
  VarPro fit if the warm start fails), timed end to end over all resamples, plus the full-data fit;
- plain: a straightforward loop written here: for every resample, L-BFGS-B from a grid of starts in the
  log-sum-exp parametrisation pred = LSE(a_k - alpha_k log x_k, e) (Hoffmann et al. 2022, App. D.2),
  alpha_k in {0.25, 0.75, 1.25, 1.75} and e in {-3, -1}, a_k set so that each term starts at a third of
  the mean error (128 starts), best objective kept. It is run on the first ``--plain`` resamples (all
  of them takes tens of minutes) and its time per resample is compared with the fast one's;
- cold VarPro: this package's own fit from scratch on every resample (``solve_powerlaw``: exponent grid +
  NNLS, refinement), on the same first ``--plain`` resamples: the fast path's own reference.

Agreement on the shared resamples is printed: the objective difference (fast - plain; <= 0 means the
fast refit is at least as good) and the predicted accuracy at the paper's scenario.

    .venv/bin/python bench/bench_bootstrap.py                 # 1,000 fast resamples, 20 plain ones
    .venv/bin/python bench/bench_bootstrap.py --plain 1000    # the plain loop on every resample
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp

from scaling.core.threads import single_threaded_blas
from scaling.forms.result import fit
from scaling.forms.varpro import make_problem, objective, solve_powerlaw
from scaling.questions.derived import projection_quantities
from scaling.uncertainty.bootstrap import bootstrap, group_codes, resample_indices

DELTA = 1e-3
AXES = ["n_params", "data_hours", "image_px"]
SCENARIO = {"n_params": 2.5e9, "data_hours": 20000.0, "image_px": 952.0}


def lse_objective(theta: np.ndarray, L: np.ndarray, lerr: np.ndarray) -> tuple[float, np.ndarray]:
    """Summed log-space Huber of pred = LSE(a_k - alpha_k log x_k, e); theta = (a_1..a_k, e, alpha_1..k)."""
    k = L.shape[1]
    a, e, alpha = theta[:k], theta[k], theta[k + 1 :]
    terms = np.column_stack([a - alpha * L, np.full(len(L), e)])
    pred = logsumexp(terms, axis=1)
    r = pred - lerr
    soft = np.exp(terms - pred[:, None])
    psi = np.clip(r, -DELTA, DELTA)
    grad = np.concatenate([psi @ soft[:, :k], [psi @ soft[:, k]], -(psi[:, None] * soft[:, :k] * L).sum(0)])
    return float(np.sum(huber(DELTA, r))), grad


def plain_fit(X: np.ndarray, err: np.ndarray) -> tuple[float, np.ndarray]:
    """Best of 128 L-BFGS-B starts; returns (objective, theta)."""
    L, lerr = np.log(X), np.log(err)
    k = X.shape[1]
    best_val, best_x = np.inf, None
    for alphas in itertools.product([0.25, 0.75, 1.25, 1.75], repeat=k):
        al = np.array(alphas)
        a0 = al * L.mean(0) + np.log(err.mean() / 3)
        for e0 in (-3.0, -1.0):
            x0 = np.concatenate([a0, [e0], al])
            bounds = [(None, None)] * (k + 1) + [(0.0, 2.0)] * k
            res = minimize(lse_objective, x0, args=(L, lerr), jac=True, method="L-BFGS-B", bounds=bounds)
            if res.fun < best_val:
                best_val, best_x = float(res.fun), res.x
    return best_val, best_x


def plain_predict(theta: np.ndarray, point: dict[str, float]) -> float:
    k = len(AXES)
    L = np.log([point[a] for a in AXES])
    return 1.0 - float(np.exp(logsumexp(np.concatenate([theta[:k] - theta[k + 1 :] * L, [theta[k]]]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="bootstrap resamples of the fast side")
    parser.add_argument("--plain", type=int, default=20, help="resamples refitted by the plain loop")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metric", default="top1")
    parser.add_argument("--workers", type=int, default=2, help="also time the fast side with this many processes")
    args = parser.parse_args()

    from runs_db import open_db

    with tempfile.TemporaryDirectory() as tmp:
        db = open_db(Path(os.environ.get("SCALING_BENCH_DB", Path(tmp) / "runs.sqlite")))
        g = db.grid(metric=args.metric).reset_index(drop=True)
    X = g[AXES].to_numpy(dtype=float)
    err = 1.0 - g["value"].to_numpy(dtype=float)
    idx = resample_indices(group_codes(g, "run_id")[0], args.n, args.seed)

    t0 = time.perf_counter()
    full = fit(g, "powerlaw", y="value", axes=AXES)
    t_full = time.perf_counter() - t0
    derived = projection_quantities(None, reference={}, at=SCENARIO, scale=False)
    t0 = time.perf_counter()
    boot = bootstrap(g, "powerlaw", y="value", axes=AXES, n_boot=args.n, seed=args.seed, full=full, derived=derived)
    t_fast = time.perf_counter() - t0

    t_par = None
    if args.workers > 1:
        t0 = time.perf_counter()
        par = bootstrap(g, "powerlaw", y="value", axes=AXES, n_boot=args.n, seed=args.seed, full=full, derived=derived,
                        workers=args.workers)
        t_par = time.perf_counter() - t0
        same = all(np.array_equal(par.samples[k], boot.samples[k], equal_nan=True) for k in boot.samples)

    n_plain = min(args.plain, args.n)
    t0 = time.perf_counter()
    with single_threaded_blas():  # the same BLAS setting as the fast side
        plain = [plain_fit(X[i], err[i]) for i in idx[:n_plain]]
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    cold = [solve_powerlaw(X[i], err[i]).objective for i in idx[:n_plain]]
    t_cold = time.perf_counter() - t0

    # Agreement on the shared resamples: the fast side's objective, recomputed here from its parameters.
    fast_obj, diffs, cold_diffs, dpred = [], [], [], []
    samples = boot.samples
    for b, i in enumerate(idx[:n_plain]):
        prob = make_problem(X[i], err[i], None, DELTA)
        E = samples["E"][b]
        A = np.array([samples[f"A_{a}"][b] for a in AXES])
        al = np.array([samples[f"alpha_{a}"][b] for a in AXES])
        se = np.exp(prob.log_se)
        amps = np.concatenate([[E / se], A * np.exp(-al * prob.log_sx) / se])
        theta = np.concatenate([np.log(np.maximum(amps, 1e-300)), al])
        v = objective(theta, prob)[0] * DELTA
        fast_obj.append(v)
        diffs.append((v - plain[b][0]) / plain[b][0])
        cold_diffs.append((v - cold[b]) / cold[b])
        dpred.append(samples["at.predicted"][b] - plain_predict(plain[b][1], SCENARIO))
    diffs_a, dpred_a = np.array(diffs), np.array(dpred)

    per_fast, per_plain = t_fast / args.n, t_plain / n_plain
    print(f"grid: {len(g)} runs ({args.metric}), resampled by run_id; seed {args.seed}")
    print(f"full-data VarPro fit:             {t_full:8.2f} s")
    print(f"fast bootstrap, {args.n} resamples:   {t_fast:8.2f} s  ({1e3 * per_fast:.1f} ms each; "
          f"refits {boot.paths}, failures {boot.failures or 0})")
    print(f"  whole bootstrap incl. full fit: {t_full + t_fast:8.2f} s")
    if t_par is not None:
        print(f"fast bootstrap, {args.workers} worker processes: {t_par:8.2f} s  (incl. full fit: "
              f"{t_full + t_par:.2f} s; results identical to 1 process: {same})")
    print(f"plain multi-start, {n_plain} resamples: {t_plain:8.2f} s  ({1e3 * per_plain:.1f} ms each, 128 starts)")
    print(f"  plain loop for {args.n} resamples (extrapolated): {per_plain * args.n:.0f} s")
    print(f"cold VarPro, {n_plain} resamples:       {t_cold:8.2f} s  ({1e3 * t_cold / n_plain:.1f} ms each)")
    print(f"speed ratio plain/fast per resample: {per_plain / per_fast:.1f}x "
          f"(cold VarPro/fast: {t_cold / n_plain / per_fast:.1f}x)")
    print(f"objective (fast - plain) / plain on the {n_plain} shared resamples: "
          f"median {np.median(diffs_a):+.2e}, max {diffs_a.max():+.2e}; fast better or equal (<= 1e-6) in "
          f"{int(np.sum(diffs_a <= 1e-6))}/{n_plain}")
    cd = np.array(cold_diffs)
    print(f"objective (fast - cold VarPro) / cold: max {cd.max():+.2e}; fast better or equal (<= 1e-6) in "
          f"{int(np.sum(cd <= 1e-6))}/{n_plain}")
    print(f"prediction at 2.5B/20,000 h/952 px, fast - plain (accuracy points): "
          f"max |diff| {100 * np.max(np.abs(dpred_a)):.3f}")
    lo, hi = boot.interval("at.predicted", 0.95)
    print(f"95% interval of that prediction (fast, {boot.n_ok} resamples): {100 * lo:.2f}% .. {100 * hi:.2f}%")


if __name__ == "__main__":
    main()
