# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 5. The compute-optimal frontier
#
# Scaling every axis by one factor (notebook 3) is one way to reach human level; it is not the cheapest.
# `scaling.project(..., optimal=True)` finds the (parameters, hours, image size) that reach the target for
# the least pretraining compute, with compute from the MAE FLOPs model (`scaling.pretrain_compute`:
# encoder on the visible patches, decoder on all of them) and the passes over the data of the largest
# trained run. The search
# box runs from the smallest trained value of each axis to 10^6 times the largest (8 times for the image
# side). The frontier is the cheapest (hours, px) at each parameter count; the bootstrap (whole runs
# resampled) gives the spread of the compute needed (figure 5).

# %%
from pathlib import Path

import pandas as pd

import scaling
from scaling import plots

# %% tags=["parameters"]
DB = None  # run database (SQLite path); None: the default
FIG_DIR = None  # write the figures here as .png when set
FORM = "poly1"
TARGET = "human-top5"
N_BUDGETS = 9  # parameter counts on the frontier
N_BOOT = 1000  # bootstrap resamples
SEED = 0
LEVEL = 0.9

# %%
target = scaling.resolve_target(TARGET)
label = f"{target.name} ({100 * target.value:.1f}% {target.metric})"
result = scaling.fit(scaling.load_runs(DB, metric=target.metric), FORM, metric=target.metric)
# One call: the common-factor projection, the compute-optimal allocation with its frontier, and the
# bootstrap that projects every refitted resample again (figure 5).
report = scaling.project(result, target, mode="scale", optimal=True, frontier_rows=N_BUDGETS,
                         n_boot=N_BOOT, seed=SEED, levels=(LEVEL,))
opt = report.optimal
scale = report.answer("scale every axis")
boot = report.bootstrap


def save(fig, name):
    if FIG_DIR is not None:
        plots.save_figure(fig, Path(FIG_DIR) / f"{name}.png", dpi=80)
    return fig


allocations = pd.DataFrame([
    {"allocation": "compute-optimal", **opt.optimum.point, "FLOPs": opt.optimum_flops_exact,
     "at bounds": ", ".join(opt.optimum.at_bounds)},
    {"allocation": "every axis x k", **scale.point, "FLOPs": scale.compute.flops, "at bounds": ""},
]).set_index("allocation")
plots.readable_frame(allocations)  # 12.2B, 1,321 h, 3,808 px, 4.85e+22 (display only)

# %%
print(report.compute_assumptions)
for note in opt.notes:
    print("note:", note)

# %% [markdown]
# ## The frontier
#
# At each parameter count, the cheapest hours and image size that reach the target; hollow points sit
# at a bound of the search (here the image side, capped at 8 x 476 = 3,808 px). The optimum itself sits
# on that bound, so it is the cheapest point *within the search box*: with larger images allowed the fit
# would trade still more resolution for parameters and data (the legend says so).

# %%
front = plots.frontier_data(opt, target_label=label)
fig, ax = plots.new_figure()
plots.plot_frontier(front, ax)
save(fig, "frontier")

# %%
plots.readable_frame(front.frame, {"relative_cost": "x{:.3f}"})

# %% [markdown]
# ## Figure 5: bootstrap distribution of the compute needed
#
# For the common-factor question and for the compute-optimal allocation, each refitted resample is
# projected again (same reference point and passes): the report's bootstrap, `scale.flops` and
# `optimal.flops`.

# %%
dists = {key: plots.compute_distribution_from_bootstrap(boot, key=key, target=target.value, target_label=label,
                                                        level=LEVEL)
         for key in ("scale.flops", "optimal.flops")}
fig, axes = plots.new_figure(1, 2, figsize=(12.0, 4.6))
for ax, (key, dist) in zip(axes, dists.items(), strict=True):
    what = "every axis x k (one common factor)" if key == "scale.flops" else "the compute-optimal allocation"
    plots.plot_compute_distribution(dist, ax, title=f"Compute to reach {label}\nby {what}, fit {FORM}: "
                                                    f"{boot.n_ok} bootstrap resamples (whole runs)")
save(fig, "fig5-bootstrap-compute")

# %%
spread = pd.DataFrame({k: {"point estimate": d.point_estimate, "median": d.median,
                           f"{100 * LEVEL:.0f}% low": d.interval[0], f"{100 * LEVEL:.0f}% high": d.interval[1]}
                       for k, d in dists.items()}).transpose()
spread["never reach"] = [d.n_unreachable for d in dists.values()]
plots.readable_frame(spread, {c: "{:.2e}" for c in spread.columns[:4]})  # FLOPs

# %% [markdown]
# ## Checks

# %%
assert opt.optimum.reachable and "image_px upper" in opt.optimum.at_bounds  # resolution is the cheapest lever
assert abs(opt.optimum.point["image_px"] - 8 * 476) < 1e-3
assert opt.optimum_flops_exact < scale.compute.flops  # cheaper than scaling every axis alike
assert FORM != "poly1" or abs(opt.optimum_flops_exact / 4.85e22 - 1) < 0.01
assert FORM != "poly1" or abs(scale.compute.flops / 6.11e22 - 1) < 0.01
assert (front.frame["relative_cost"] > 1 - 1e-3).all()  # nothing on the frontier beats the optimum
assert N_BUDGETS % 2 == 0 or front.frame["relative_cost"].min() < 1 + 1e-3  # odd: the middle row is it
for d in dists.values():
    assert d.n_total == boot.n_ok and d.interval[0] < d.point_estimate < d.interval[1]
