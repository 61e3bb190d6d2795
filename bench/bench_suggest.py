"""One suggestion over 100 candidate runs with 200 resamples each: warm refits vs refits from scratch.

``scaling.suggest`` scores each candidate by a preposterior analysis: for every simulated outcome of the
run (2 by default, an antithetic pair), each of the 200 bootstrap resamples is refitted with the run
added, and the projection ('scale every axis' to human-level top-5) is solved on every refit: 100 x 2 x 200
= 40,000 refits. Side by side, in one run:

- warm: ``scaling.suggest`` as shipped (each resample refitted by the form's refitter, started from the
  full-data fit: for the polynomial forms weighted least squares on the retained design), timed end to end
  on 1 process and on ``--workers`` processes;
- cold: the same candidates refitted from scratch with the form's own ``fit`` (statsmodels for the
  polynomial forms, VarPro for the power laws), on the first ``--cold`` candidates (all 100 take minutes);
  its time per candidate is compared with the warm one's, and the intervals are compared candidate by
  candidate (they agree: the same resamples, the same least-squares solutions).

    .venv/bin/python bench/bench_suggest.py                    # poly1, 100 candidates, 200 resamples
    .venv/bin/python bench/bench_suggest.py --form logit1 --cold 10
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

GRID = "arch=vit_s14,vit_b14,vit_l14,vit_h14;image_px=224,448,476,700,952;data_hours=0.5,5,50,500,5000"  # 100 runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--form", default="poly1")
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--outcomes", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cold", type=int, default=5, help="candidates refitted from scratch for the baseline")
    args = ap.parse_args()
    os.environ.setdefault("SCALING_DB", str(Path(tempfile.mkdtemp()) / "published.sqlite"))

    import scaling
    from scaling.design.candidates import load_candidates

    runs = scaling.load_runs(metric="top5")
    fit = scaling.fit(runs, args.form, metric="top5")
    cands = load_candidates(GRID, fit.data, fit.axes, None)
    print(f"{len(cands)} candidates x {args.resamples} resamples x {args.outcomes} outcomes, form {args.form}, "
          f"{os.cpu_count()} CPUs")
    kw = {"n_boot": args.resamples, "n_outcomes": args.outcomes, "seed": 0}

    t0 = time.perf_counter()
    one = scaling.suggest(fit, candidates=cands, workers=1, **kw)
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = scaling.suggest(fit, candidates=cands, workers=args.workers, **kw)
    t_many = time.perf_counter() - t0
    same = [a.label for a in one.scores] == [b.label for b in many.scores]
    print(f"warm, 1 process:   {t_one:7.1f} s  ({one.refits:,} refits, {1e3 * t_one / one.refits:.2f} ms each "
          "incl. the projection)")
    print(f"warm, {args.workers} processes: {t_many:7.1f} s  (same ranking: {same}); target < 60 s")

    sub = cands[: args.cold]
    t0 = time.perf_counter()
    cold = scaling.suggest(fit, candidates=sub, warm=False, **kw)
    t_cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm_sub = scaling.suggest(fit, candidates=sub, warm=True, **kw)
    t_warm_sub = time.perf_counter() - t0
    by_label = {s.label: s for s in warm_sub.scores}
    diff = max(abs(s.width_after - by_label[s.label].width_after) for s in cold.scores)
    per_cold, per_warm = t_cold / len(sub), t_warm_sub / len(sub)
    print(f"cold (from scratch), {len(sub)} candidates: {per_cold:.2f} s per candidate; warm {per_warm:.2f} s: "
          f"{per_cold / per_warm:.1f}x faster warm; largest difference in the width after: {diff:.2e} "
          f"({one.unit})")
    print(f"cold, all {len(cands)} candidates (extrapolated): {per_cold * len(cands):.0f} s on 1 process vs "
          f"{t_one:.0f} s warm ({per_cold * len(cands) / t_one:.1f}x)")
    best = one.best
    print(f"best: {best.label} ({best.flops:.3g} FLOPs, shrinkage {best.shrinkage:.3g} {one.unit}); "
          f"width now {one.width_before:.3g}")
    assert np.isfinite(one.width_before)


if __name__ == "__main__":
    main()
