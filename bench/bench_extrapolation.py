"""Extrapolation of public learning curves: each paper's own estimator against the toolkit's recommended form.

The curves (``bench/data/extrapolation/``, sources, licences and the choice rule in its README): 50
curves from 3 sources, chosen before any method was scored: every ImageNet few-shot, NMT and LM curve of
Alabdulmohsin et al. 2022's benchmark; every 4.2B-parameter repetition curve of Muennighoff et al. 2023;
every OPT trajectory of Choshen et al. 2025's collection. Each curve is fitted on its early part and
predicts its tail; scores on the tail points: RMSE of log(y) (Alabdulmohsin et al.'s metric) and the
coverage of nominal ``--level`` (90%) intervals. Methods:

- paper:        the source's own estimator (``extrapolation_refs``: M4 for Alabdulmohsin et al., the
                data-constrained law for Muennighoff et al., least squares on E + B D^-beta for Choshen et al.);
- recommended:  ``scaling.backtest(fit part, forms=None, y, axes=[x], kind='loss').recommended`` (rolling
                origins along x), fitted with ``scaling.fit``, band from ``scaling.bootstrap``;
- ensemble, ensemble_calibrated: ``scaling.predict`` with every form, stacking weights, bootstrap-only or
                calibrated intervals (``ensemble_predict``);
- form:NAME:    every registered form fitted alone (RMSE only), for the best single baseline.

Bands of paper and recommended: percentile intervals over ``--n-boot`` row resamples of the fitting part,
each resample's prediction times a drawn training log-residual (parameter uncertainty plus the curve's
point-to-point noise; see ``extrapolation_refs``). "params" coverage leaves the residual out. Wins: curves
where a method's RMSE is below the paper estimator's, or below the best single baseline's (the single
method or form with the lowest median RMSE among those that scored every curve of the run), by more than
1% (closer: a tie, counted apart).

    .venv/bin/python bench/bench_extrapolation.py                        # 50 curves, 2 workers
    .venv/bin/python bench/bench_extrapolation.py --sources choshen2025 \\
        --n-boot 50 --workers 1
    .venv/bin/python bench/bench_extrapolation.py --curves 'inet_10' \\
        --csv bench/results/inet10.csv
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from extrapolation_data import SOURCES, Curve, load, log_spaced_subset
from extrapolation_refs import Band, bootstrap_ref, chinchilla_ls, data_constrained, predictive_band

import scaling
from scaling.core.threads import single_threaded_blas
from scaling.errors import ScalingError
from scaling.forms import list_forms
from scaling.uncertainty.bootstrap import Derived

PAPER, RECOMMENDED, ENSEMBLE, ENSEMBLE_CAL = "paper", "recommended", "ensemble", "ensemble_calibrated"
FORM = "form:"
MAIN_METHODS = (PAPER, RECOMMENDED, ENSEMBLE, ENSEMBLE_CAL)
RESULTS = Path(__file__).resolve().parent / "results"
FAILURES = (ScalingError, ValueError, ArithmeticError, np.linalg.LinAlgError)
LEAST_SQUARES_DELTA = 1e6  # log units: beyond every residual, so the Huber loss is the squared one
TIE = 0.01  # two RMSEs within 1% of each other: a tie, neither a win nor a loss


@dataclass(frozen=True)
class Options:
    n_boot: int = 100
    level: float = 0.9
    seed: int = 0
    fit_points: int = 0  # at most this many fitting x values (evenly in log x); 0: all
    forms: bool = True
    ensemble: bool = True


# -- the ensemble hook (issue 18) ------------------------------------------------------------------------

def ensemble_predict(fit: pd.DataFrame, x_new: np.ndarray, *, y: str, x: str, kind: str, level: float,
                     n_boot: int, seed: int) -> tuple[Band, Band]:
    """The library's ensemble of forms on one table: ``scaling.predict`` with every form that applies,
    weighted by stacking on the rolling-origin backtest of the fitting part; one call gives both bands.

    Bootstrap-only: the forms' weighted bootstrap mixture (parameter uncertainty and the uncertainty of which
    law; no observation noise). Calibrated: widened by the split-conformal quantile of the held-out errors
    at each tail point's distance beyond the data, an interval for an observed value. Each band's
    params-only bounds are its own bounds.
    """
    out = scaling.predict(fit, at=pd.DataFrame({x: x_new}), y=y, axes=[x], kind=kind, forms=None,
                          ensemble="stacking", calibrated=True, levels=[level], n_boot=n_boot, seed=seed)
    (lo, hi), (blo, bhi) = out.intervals[level], out.bootstrap_intervals[level]
    return Band(out.predicted, blo, bhi, blo, bhi, n_boot), Band(out.predicted, lo, hi, lo, hi, n_boot)


# -- methods ---------------------------------------------------------------------------------------------

def toolkit_band(fitted: scaling.FitResult, train: pd.DataFrame, x_tail: np.ndarray, opts: Options) -> Band:
    """Band of a ``scaling.fit`` result from ``scaling.bootstrap`` (rows resampled, refitted warm)."""
    at = pd.DataFrame({"x": x_tail})
    keys = [f"tail_{i}" for i in range(len(x_tail))]

    def tail_predictions(fit_like: object) -> Derived:
        pred = np.asarray(fit_like.predict(at), dtype=float)  # type: ignore[attr-defined]
        return Derived(dict(zip(keys, pred.tolist(), strict=True)))

    boot = scaling.bootstrap(fitted, n_boot=opts.n_boot, seed=opts.seed, group=None, derived=tail_predictions)
    samples = np.column_stack([boot.samples[k] for k in keys]) if boot.n_ok else np.empty((0, len(keys)))
    residuals = np.log(train["y"].to_numpy()) - np.log(np.asarray(fitted.predict(train), dtype=float))
    return predictive_band(np.asarray(fitted.predict(at), dtype=float), samples, residuals, opts.level, opts.seed)


def paper_band(curve: Curve, train: pd.DataFrame, x_tail: np.ndarray, opts: Options) -> tuple[Band, str]:
    """The source's own estimator (``extrapolation_refs``) and its band."""
    x, y = train["x"].to_numpy(), train["y"].to_numpy()
    if curve.source == "alabdulmohsin2022":
        extra = {"l0_max": 1.0} if curve.quantity == "error" else {}
        # least squares, as the paper: a Huber delta far beyond any log residual has the same minimiser
        # (the library refuses an infinite delta since issue 23)
        m4 = scaling.fit(train, form="m4", y="y", axes=["x"], kind="loss", objective="implicit",
                         huber_delta=LEAST_SQUARES_DELTA, **extra)
        return toolkit_band(m4, train, x_tail, opts), "M4 (toolkit m4, the paper's implicit residual)"
    if curve.source == "muennighoff2023":
        if curve.unique_tokens is None:
            raise ValueError("the data-constrained law needs the curve's unique tokens per epoch")
        fitter = data_constrained(curve.unique_tokens)
        return (bootstrap_ref(fitter, x, y, x_tail, n_boot=opts.n_boot, level=opts.level, seed=opts.seed),
                "data-constrained law, R*_D = 15.39")
    if curve.source == "choshen2025":
        return (bootstrap_ref(chinchilla_ls, x, y, x_tail, n_boot=opts.n_boot, level=opts.level, seed=opts.seed),
                "E + B D^-beta, least squares")
    raise ValueError(f"no estimator for source {curve.source!r}")


def recommended_band(train: pd.DataFrame, x_tail: np.ndarray, opts: Options) -> tuple[Band, str]:
    bt = scaling.backtest(train, None, y="y", axes=["x"], kind="loss")
    if bt.recommended is None:
        raise ValueError("the backtest recommends no form (no split that every form fits)")
    fitted = scaling.fit(train, form=bt.recommended, y="y", axes=["x"], kind="loss")
    return toolkit_band(fitted, train, x_tail, opts), bt.recommended


def form_predictions(train: pd.DataFrame, x_tail: np.ndarray) -> dict[str, np.ndarray | str]:
    """Every registered form fitted alone with its default options: tail predictions, or why not."""
    out: dict[str, np.ndarray | str] = {}
    for form in list_forms():
        try:
            fitted = scaling.fit(train, form=form.name, y="y", axes=["x"], kind="loss")
            out[form.name] = np.asarray(fitted.predict(pd.DataFrame({"x": x_tail})), dtype=float)
        except FAILURES as exc:
            out[form.name] = str(exc).splitlines()[0]
    return out


# -- one curve -------------------------------------------------------------------------------------------

def score(y_tail: np.ndarray, predicted: np.ndarray, band: Band | None = None) -> dict[str, float]:
    """RMSE of log y on the tail; coverage (share of tail points inside the band) and its log width."""
    with np.errstate(all="ignore"):
        d = np.log(predicted) - np.log(y_tail)
    rmse = float(np.sqrt(np.mean(d**2))) if np.all(np.isfinite(d)) else math.nan
    out = {"rmse_log": rmse, "coverage": math.nan, "coverage_params": math.nan, "width_log": math.nan}
    if band is not None:
        out["coverage"] = float(np.mean((band.lower <= y_tail) & (y_tail <= band.upper)))
        out["coverage_params"] = float(np.mean((band.lower_params <= y_tail) & (y_tail <= band.upper_params)))
        out["width_log"] = float(np.median(np.log(band.upper / band.lower)))
    return out


def fit_part(curve: Curve, opts: Options) -> pd.DataFrame:
    """The fitting part, thinned to ``opts.fit_points`` distinct x evenly in log x (0: all of it)."""
    if not opts.fit_points:
        return curve.fit
    xs = np.unique(curve.fit["x"].to_numpy())
    keep = xs[log_spaced_subset(xs, opts.fit_points)]
    return curve.fit[curve.fit["x"].isin(keep)].reset_index(drop=True)


def timed(fn: Callable[[], tuple[Band, str]]) -> tuple[Band | None, str, float]:
    t0 = time.perf_counter()
    try:
        band, note = fn()
        return band, note, time.perf_counter() - t0
    except NotImplementedError as exc:
        return None, f"skipped: {exc}", math.nan
    except FAILURES as exc:
        return None, f"failed: {str(exc).splitlines()[0]}", time.perf_counter() - t0


def run_curve(curve: Curve, opts: Options) -> list[dict[str, object]]:
    """One row per method: scores on the tail, what was fitted, seconds."""
    train = fit_part(curve, opts)
    x_tail, y_tail = curve.tail["x"].to_numpy(), curve.tail["y"].to_numpy()
    base = {"curve": curve.id, "source": curve.source, "n_fit": len(train), "n_tail": len(y_tail),
            "level": opts.level, "n_boot": opts.n_boot}
    runs: dict[str, Callable[[], tuple[Band, str]]] = {
        PAPER: lambda: paper_band(curve, train, x_tail, opts),
        RECOMMENDED: lambda: recommended_band(train, x_tail, opts)}
    if opts.ensemble:
        both: dict[str, tuple[Band, Band]] = {}  # one library call gives both bands: computed once

        def ensemble_band(i: int) -> tuple[Band, str]:
            if "bands" not in both:
                both["bands"] = ensemble_predict(train, x_tail, y="y", x="x", kind="loss", level=opts.level,
                                                 n_boot=opts.n_boot, seed=opts.seed)
            return both["bands"][i], ""

        runs[ENSEMBLE] = lambda: ensemble_band(0)
        runs[ENSEMBLE_CAL] = lambda: ensemble_band(1)
    rows = []
    with single_threaded_blas():
        for method, fn in runs.items():
            band, note, secs = timed(fn)
            scores = score(y_tail, np.full_like(y_tail, np.nan) if band is None else band.predicted, band)
            rows.append({**base, "method": method, **scores, "seconds": secs, "note": note})
        if opts.forms:
            for name, pred in form_predictions(train, x_tail).items():
                ok = not isinstance(pred, str)
                scores = score(y_tail, pred if ok else np.full_like(y_tail, np.nan))  # type: ignore[arg-type]
                rows.append({**base, "method": FORM + name, **scores, "seconds": math.nan,
                             "note": "" if ok else f"failed: {pred}"})
    return rows


def _run_one(args: tuple[Curve, Options]) -> list[dict[str, object]]:
    return run_curve(*args)


def run(curves: Sequence[Curve], opts: Options, workers: int, log: Callable[[str], None]) -> pd.DataFrame:
    """Every curve (``workers`` processes, forked), rows in curve order; one progress line per curve."""
    jobs = [(c, opts) for c in curves]
    rows: list[dict[str, object]] = []
    t0 = time.perf_counter()
    if workers > 1 and len(jobs) > 1:
        with mp.get_context("fork").Pool(workers) as pool:
            results = pool.imap(_run_one, jobs)
            for i, r in enumerate(results, 1):
                rows += r
                log(f"[{i}/{len(jobs)}] {r[0]['curve']} ({time.perf_counter() - t0:.0f} s)")
    else:
        for i, job in enumerate(jobs, 1):
            rows += _run_one(job)
            log(f"[{i}/{len(jobs)}] {job[0].id} ({time.perf_counter() - t0:.0f} s)")
    return pd.DataFrame(rows)


# -- summary ---------------------------------------------------------------------------------------------

def rmse_table(res: pd.DataFrame) -> pd.DataFrame:
    """RMSE of log y, curves x methods (NaN: the method failed or was skipped on that curve)."""
    return res.pivot(index="curve", columns="method", values="rmse_log")


def best_single(table: pd.DataFrame) -> str | None:
    """The single method or form with the lowest median RMSE among those that scored every curve."""
    singles = [m for m in table.columns if m not in (ENSEMBLE, ENSEMBLE_CAL)]
    complete = [m for m in singles if table[m].notna().all()]
    return min(complete, key=lambda m: float(table[m].median())) if complete else None


def wins(table: pd.DataFrame, method: str, ref: str | None) -> str:
    """'w/n (t ties)': curves where ``method``'s RMSE is below ``ref``'s by more than ``TIE`` (relative), of
    the n both scored, and the curves where the two are within ``TIE`` of each other."""
    if ref is None or method == ref:
        return "-"
    both = table[[method, ref]].dropna()
    if not len(both):
        return "-"
    a, b = both[method].to_numpy(), both[ref].to_numpy()
    tie = np.abs(a - b) <= TIE * np.minimum(a, b)
    won = int(np.sum((a < b) & ~tie))
    n_tie = int(tie.sum())
    return f"{won}/{len(both)}" + (f" ({n_tie} tie{'s' if n_tie > 1 else ''})" if n_tie else "")


def method_rows(res: pd.DataFrame, methods: Sequence[str], best: str | None) -> pd.DataFrame:
    table = rmse_table(res)
    rows = []
    for m in methods:
        sub = res[res["method"] == m]
        banded = sub[sub["coverage"].notna()]
        pooled = (banded["coverage"] * banded["n_tail"]).sum() / banded["n_tail"].sum() if len(banded) else math.nan
        rows.append({"method": m, "curves": f"{int(sub['rmse_log'].notna().sum())}/{len(sub)}",
                     "median RMSE": sub["rmse_log"].median(), "mean RMSE": sub["rmse_log"].mean(),
                     "wins vs paper": wins(table, m, PAPER), f"wins vs best ({best})": wins(table, m, best),
                     "coverage": banded["coverage"].mean(), "pooled": pooled,
                     "params only": banded["coverage_params"].mean()})
    return pd.DataFrame(rows).set_index("method")


def per_curve(res: pd.DataFrame) -> pd.DataFrame:
    """The main methods side by side, one row per curve."""
    out = res[res["method"] == PAPER][["curve", "n_fit", "n_tail"]].set_index("curve")
    for m in MAIN_METHODS:
        sub = res[res["method"] == m].set_index("curve")
        if sub["rmse_log"].notna().any():
            out[f"{m} RMSE"] = sub["rmse_log"]
            out[f"{m} cov"] = sub["coverage"]
    rec = res[res["method"] == RECOMMENDED].set_index("curve")["note"]
    out.insert(2, "recommended", rec.where(~rec.str.contains(":"), "-"))
    out.index = [c.split("/", 1)[1] for c in out.index]
    return out


def report(res: pd.DataFrame, opts: Options, seconds: float, workers: int) -> str:
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    table = rmse_table(res)
    best = best_single(table)
    singles = [m for m in table.columns if m.startswith(FORM)]
    main = [m for m in MAIN_METHODS if res.loc[res["method"] == m, "rmse_log"].notna().any()]
    level = float(res["level"].iloc[0]) if "level" in res else opts.level
    n_boot = int(res["n_boot"].iloc[0]) if "n_boot" in res else opts.n_boot
    lines = [f"{res['curve'].nunique()} curves; fitted on each curve's early part, scored on its tail: RMSE of "
             f"log y, coverage of nominal {level:.0%} intervals ({n_boot} row resamples; 'coverage' "
             "includes the residual noise, 'params only' does not; 'pooled' weights curves by tail points)", "",
             per_curve(res).to_string(float_format=fmt), "",
             method_rows(res, [*main, *singles], best).to_string(float_format=fmt), ""]
    for source, sub in res.groupby("source", sort=False):
        t = rmse_table(sub)
        cov = sub.groupby("method")["coverage"].mean()
        parts = [f"{m} median {t[m].median():.4f}, coverage {cov[m]:.2f}, wins vs paper {wins(t, m, PAPER)}"
                 for m in main if m != PAPER]
        lines.append(f"{source}: {sub['curve'].nunique()} curves; paper median {t[PAPER].median():.4f}, "
                     f"coverage {cov[PAPER]:.2f}; " + "; ".join(parts))
    picks = res[res["method"] == RECOMMENDED]["note"].value_counts().to_dict()
    lines.append("recommended forms: " + ", ".join(f"{k} {v}" for k, v in picks.items()))
    notes = res[res["note"].str.startswith(("skipped", "failed")) & res["method"].isin(MAIN_METHODS)]
    for (method, note), n in notes.groupby(["method", "note"]).size().items():
        lines.append(f"{method}: {note} ({n} curves)")
    lines.append(f"best single baseline: {best} (lowest median RMSE among the single methods and forms that "
                 "scored every curve)")
    secs = res.groupby("method")["seconds"].sum(min_count=1).dropna()
    wall = "" if math.isnan(seconds) else f"wall time {seconds:.0f} s with {workers} worker(s); "
    lines.append(f"{wall}fit time summed per method: " + ", ".join(f"{m} {s:.0f} s" for m, s in secs.items()))
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, Options]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", default=",".join(SOURCES), help=f"comma list of {', '.join(SOURCES)} (default all)")
    ap.add_argument("--curves", default=None, metavar="REGEX", help="only curves whose id matches (re.search)")
    ap.add_argument("--n-boot", type=int, default=100, help="row resamples per band (default 100)")
    ap.add_argument("--level", type=float, default=0.9, help="nominal interval level (default 0.9)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit-points", type=int, default=0, metavar="N",
                    help="fit on at most N distinct x of the fitting part, evenly in log x (default 0: all)")
    ap.add_argument("--workers", type=int, default=2, help="processes, one curve each at a time (default 2)")
    ap.add_argument("--no-forms", dest="forms", action="store_false", help="skip the single-form baselines")
    ap.add_argument("--no-ensemble", dest="ensemble", action="store_false", help="skip the ensemble hook")
    ap.add_argument("--csv", nargs="?", type=Path, const=RESULTS / "extrapolation.csv", default=None,
                    metavar="PATH", help="write the per-curve rows (default path bench/results/extrapolation.csv)")
    ap.add_argument("--report", type=Path, default=None, metavar="CSV",
                    help="print the report of rows written earlier by --csv (runs nothing)")
    args = ap.parse_args(argv)
    if args.n_boot < 2 or not 0 < args.level < 1 or args.workers < 1 or args.fit_points < 0 or args.seed < 0:
        ap.error("--n-boot must be >= 2, --level in (0, 1), --workers >= 1, --fit-points and --seed >= 0")
    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown or not sources:
        ap.error(f"unknown source(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(SOURCES)}")
    args.sources = sources
    return args, Options(args.n_boot, args.level, args.seed, args.fit_points, args.forms, args.ensemble)


def main(argv: Sequence[str] | None = None) -> int:
    args, opts = parse(argv)
    if args.report is not None:
        try:
            rows = pd.read_csv(args.report, keep_default_na=False, na_values=[""])
            print(report(rows, opts, math.nan, args.workers))
        except (OSError, KeyError, ValueError, pd.errors.ParserError) as exc:
            print(f"bench_extrapolation: cannot report {args.report}: {str(exc).splitlines()[0]}", file=sys.stderr)
            return 1
        return 0
    try:
        curves = load(args.sources, args.curves)
    except (OSError, ValueError) as exc:
        print(f"bench_extrapolation: {exc}", file=sys.stderr)
        return 1
    if not curves:
        print(f"bench_extrapolation: no curve of {', '.join(args.sources)} matches {args.curves!r}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    res = run(curves, opts, args.workers, lambda s: print(s, file=sys.stderr, flush=True))
    print(report(res, opts, time.perf_counter() - t0, args.workers))
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.csv.with_name(args.csv.name + ".tmp")
        res.to_csv(tmp, index=False)
        tmp.replace(args.csv)
        print(f"rows written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
