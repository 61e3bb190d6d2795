"""``bnsl`` against its authors' fitting recipe (issue 19), on public curves and on synthetic curves with known
breaks: the RMSE of log(y) on each curve's held-out tail.

The reference is ``bench/bnsl_reference.py``: Caballero et al. 2023's recipe (arXiv 2210.14891) as their code
release describes it, one break, a 163,840-point grid of starts scored by the mean squared error of
log(y + 1), then Levenberg-Marquardt on log(y + 1). Ours is ``scaling.fit(form='bnsl')``: the summed Huber
loss of log(pred) - log(y), bounded slopes, the number of breaks (0-2) chosen by held-out error.

Curves (fitted on their ``fit`` part, scored on their ``tail``):

- ``caballero2023/4-digit-addition``: the authors' own showcase, one sharp break
  (``bench/data/bnsl/curves.csv``, their split);
- the 18 ImageNet 5/10/25-shot error curves of Alabdulmohsin et al. 2022 (``bench/data/extrapolation``),
  which break from a plateau near chance, and with ``--all-public`` the other 32 curves of that set;
- ``gentle``: ``--seeds`` curves of ``bench_bnsl.curve`` (one break, slope after it 0.3-1, four decades of x,
  1% noise), fitted on the smallest 70% of log x;
- ``steep``: ``--seeds`` curves shaped like 4-digit addition: a floor a ~ U(0.2, 1), slope before the break
  c0 ~ U(0, 0.2), after it c0 + c1 with c1 ~ U(2, 7), the break d log-uniform in [250, 500], its width f
  log-uniform in [0.03, 0.3], 20 points from x = 100 to 1,000, the reducible loss at x = 100 U(1, 4) times a,
  1% noise; fitted on the smallest 70% of log x.

A fit that fails, or predicts y <= 0 on the tail, scores nan and is counted. Per group: the median and mean
tail error of each method over the curves where every method scored, nan counts, and how often ours is
better or worse than the reference by more than 1%. ``--variant`` adds rows for ``bnsl`` with other options,
e.g. ``--variant alpha_max=5`` (the slope bound before issue 19's fix).

    .venv/bin/python bench/bench_bnsl_authors.py                 # about a minute
    .venv/bin/python bench/bench_bnsl_authors.py --seeds 30 --all-public --variant alpha_max=5 --variant huber_delta=1
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

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT.parent), str(ROOT)]  # this checkout's packages, not an installed copy's
import bnsl_reference as reference  # noqa: E402
from bench_bnsl import TRAIN_FRAC, curve  # noqa: E402

from scaling.errors import ScalingError  # noqa: E402
from scaling.forms import bnsl_core as core  # noqa: E402
from scaling.forms.result import fit  # noqa: E402

Curve = tuple[str, str, pd.DataFrame, pd.DataFrame, str]  # group, name, fit part, tail, kind
INET = "alabdulmohsin2022/ic/inet_"


def _split(group: str, name: str, df: pd.DataFrame, kind: str) -> Curve:
    lx = np.log(df["x"].to_numpy(dtype=float))
    train = lx <= lx[0] + TRAIN_FRAC * (lx[-1] - lx[0])
    return group, name, df[train], df[~train], kind


def steep(seed: int, noise: float = 0.01, points: int = 20) -> pd.DataFrame:
    """One curve of the ``steep`` family (the module's docstring), seeded."""
    rng = np.random.default_rng(10_000 + seed)
    a, c0, c1 = rng.uniform(0.2, 1.0), rng.uniform(0.0, 0.2), rng.uniform(2.0, 7.0)
    d, f = math.exp(rng.uniform(math.log(250), math.log(500))), math.exp(rng.uniform(math.log(0.03), math.log(0.3)))
    x = np.geomspace(100.0, 1000.0, points)
    unit = core.Solution(0.0, 1.0, np.array([c0, c1]), np.array([d]), np.array([f]), 0.0, True, "")
    b = rng.uniform(1.0, 4.0) * a / float(core.predict_error(unit, x[:1])[0])
    truth = core.Solution(a, b, unit.c, unit.d, unit.f, 0.0, True, "")
    return pd.DataFrame({"x": x, "y": core.predict_error(truth, x) * np.exp(noise * rng.standard_normal(points))})


def curves(seeds: int, all_public: bool) -> Iterator[Curve]:
    for path in (ROOT / "data" / "bnsl" / "curves.csv", ROOT / "data" / "extrapolation" / "curves.csv"):
        table = pd.read_csv(path)
        for name, c in table.groupby("curve", sort=True):
            name = str(name)
            group = ("4-digit addition" if "caballero" in name else "ImageNet few-shot" if INET in name
                     else "other public")
            if group == "other public" and not all_public:
                continue
            kind = "error" if c["y"].between(0, 1, inclusive="neither").all() else "loss"
            yield group, name, c[c["split"] == "fit"][["x", "y"]], c[c["split"] == "tail"][["x", "y"]], kind
    for seed in range(seeds):
        yield _split("gentle (synthetic)", f"gentle-{seed}", curve(seed, 0.01, 30)[0].rename(columns={"loss": "y"}),
                     "loss")
    for seed in range(seeds):
        yield _split("steep (synthetic)", f"steep-{seed}", steep(seed), "loss")


def _score(pred: np.ndarray, tail: pd.DataFrame) -> float:
    with np.errstate(all="ignore"):
        d = np.log(np.asarray(pred, dtype=float)) - np.log(tail["y"].to_numpy(dtype=float))
    return float(np.sqrt(np.mean(d**2))) if np.all(np.isfinite(d)) else math.nan


def score_ours(train: pd.DataFrame, tail: pd.DataFrame, kind: str, **options: object) -> tuple[float, float]:
    t0 = time.perf_counter()
    try:
        r = fit(train, "bnsl", y="y", axes=["x"], kind=kind, **options)
    except ScalingError:
        return math.nan, time.perf_counter() - t0
    return _score(r.predict(tail), tail), time.perf_counter() - t0


def score_reference(train: pd.DataFrame, tail: pd.DataFrame) -> tuple[float, float]:
    t0 = time.perf_counter()
    r = reference.fit(train["x"].to_numpy(dtype=float), train["y"].to_numpy(dtype=float))
    seconds = time.perf_counter() - t0
    return (_score(r.predict(tail["x"].to_numpy(dtype=float)), tail) if r.ok else math.nan), seconds


def variant(text: str) -> dict[str, object]:
    """``key=value,key=value`` as bnsl options (numbers where they parse)."""
    out: dict[str, object] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def run(seeds: int, all_public: bool, extra: list[str]) -> pd.DataFrame:
    rows = []
    variants: dict[str, dict[str, object]] = {"bnsl": {}, "bnsl, 1 break": {"breaks": 1}}
    variants |= {f"bnsl, {text}": variant(text) for text in extra}
    for group, name, train, tail, kind in curves(seeds, all_public):
        row: dict[str, object] = {"group": group, "curve": name}
        row["authors"], row["authors s"] = score_reference(train, tail)
        for label, options in variants.items():
            row[label], row[f"{label} s"] = score_ours(train, tail, kind, **options)
        rows.append(row)
        print(f"{name}: authors {row['authors']:.4f}, bnsl {row['bnsl']:.4f}", flush=True)
    return pd.DataFrame(rows)


def summary(res: pd.DataFrame) -> pd.DataFrame:
    methods = [c for c in res.columns if c not in ("group", "curve") and not c.endswith(" s")]
    out = []
    for group, g in res.groupby("group", sort=False):
        both = g[methods].notna().all(axis=1)
        for m in methods:
            ratio = g.loc[both, m] / g.loc[both, "authors"]
            out.append({"group": group, "method": m, "curves": len(g), "nan": int(g[m].isna().sum()),
                        "median": g.loc[both, m].median(), "mean": g.loc[both, m].mean(),
                        "better by >1%": int((ratio < 1 / 1.01).sum()), "worse by >1%": int((ratio > 1.01).sum()),
                        "median s": g[f"{m} s"].median()})
    return pd.DataFrame(out).set_index(["group", "method"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10, help="synthetic curves per family")
    parser.add_argument("--all-public", action="store_true", help="also the 32 other public curves")
    parser.add_argument("--variant", action="append", default=[], help="an extra bnsl row: key=value[,key=value]")
    parser.add_argument("--csv", help="write the per-curve table here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    res = run(args.seeds, args.all_public, args.variant)
    if args.csv:
        res.to_csv(args.csv, index=False)
    pd.set_option("display.width", 200)
    print("\nTail RMSE of log(y), over the curves where every method scored ('better'/'worse': than the authors'"
          " recipe; 'median s': fit seconds):")
    print(summary(res).to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
