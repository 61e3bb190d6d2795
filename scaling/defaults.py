"""One home for every default of a study: what the CLI, the Python API and the notebooks assume when the
user says nothing. Facts about the published grid and the MAE recipe live in ``runs_db`` (where the data
are described) and are re-exported here, so nothing is written twice.
"""

from __future__ import annotations

from runs_db.archs import MASK_RATIO, PATCH_PX
from runs_db.published import EVAL_SET_IMAGENET, PROTOCOL_PERMISSIVE
from runs_db.validate import FRAMES_PER_HOUR

__all__ = [
    "ALLOCATION_FORM",
    "ALLOCATION_METHODS",
    "ALLOCATION_N_BOOT",
    "ALPHA_MAX",
    "ALPHA_MAX_LIMIT",
    "AXES",
    "BNSL_SLOPE_MAX",
    "CAUTION_DECADES",
    "COMPUTE_AXES",
    "COST_MAX_CHARS",
    "COST_MAX_DEPTH",
    "CURVE_AXES",
    "CURVE_COST",
    "CURVE_KEY",
    "DEFAULT_BACKTEST_FORMS",
    "DEFAULT_EVAL_SET",
    "DEFAULT_FORM",
    "DEFAULT_GROUP",
    "DEFAULT_LEVELS",
    "DEFAULT_LEVEL_TOL",
    "DEFAULT_METRIC",
    "DEFAULT_N_BOOT",
    "DEFAULT_PROTOCOL",
    "DEFAULT_SELECTION",
    "DEFAULT_TARGET",
    "ENVELOPE_POINTS",
    "FRAMES_PER_HOUR",
    "HUBER_DELTA",
    "ISOFLOP_BUDGET_TOL",
    "ISOFLOP_CHECK_MIN_DECADES",
    "ISOFLOP_CHECK_Z",
    "ISOFLOP_MIN_SIZES",
    "MASK_RATIO",
    "MAX_SEED",
    "MAX_WORKERS",
    "N_CLASSES",
    "PAPER_SCENARIO",
    "PATCH_PX",
    "PLAN_GLOBAL_BATCH",
    "REPORT_FORMS",
    "REPORT_N_BOOT",
    "REPORT_SUGGEST_N_BOOT",
    "REPORT_SUGGEST_OUTCOMES",
    "REPORT_SUGGEST_TOP",
    "SLOPE_MAX",
    "WORK_MAX_BYTES",
    "WORK_MAX_S",
    "WORK_SILENT_MAX_S",
]

# What is fitted: the run database's three axes, ImageNet top-5 of the 2% fine-tune, best epoch.
AXES: tuple[str, ...] = ("n_params", "data_hours", "image_px")
COMPUTE_AXES: tuple[str, ...] = AXES  # the axes the MAE FLOPs model prices (scaling.compute.flops)
DEFAULT_PROTOCOL = PROTOCOL_PERMISSIVE  # "finetune-in1k-2pct": whole network, 2% of ImageNet's labels
DEFAULT_EVAL_SET = EVAL_SET_IMAGENET  # "imagenet-val"
DEFAULT_METRIC = "top5"  # the default target's metric (human-top5): every command fits what it projects
DEFAULT_SELECTION = "best-epoch"
N_CLASSES = 1000  # ImageNet-1k: the chance error of top-k is 1 - k / N_CLASSES

# Fitting: the power laws' log-space Huber delta (Hoffmann et al. 2022's approach 3: 1e-3), and the largest
# exponent each family allows: 2 for the additive laws of N, D and R (their fits sit well below), 5 for M4's
# slopes, 10 for the broken power law's segment slopes (issue 19: its authors' fit of their 4-digit addition
# curve has a slope of 5.7 after the break, and a bound of 5 sent the fit to another basin, 16x worse in the
# tail; bench/bench_bnsl_authors.py).
HUBER_DELTA = 1e-3
# Chinchilla's approach 1 on the run database's own curves (scaling.data.curves): the pretraining history key,
# the two axes of its step table (model size, images seen by the step) and the column of each step's FLOPs.
CURVE_KEY = "train_loss"
CURVE_AXES: tuple[str, str] = ("n_params", "samples_seen")
CURVE_COST = "pretrain_flops"
ALPHA_MAX = 2.0
SLOPE_MAX = 5.0
BNSL_SLOPE_MAX = 10.0
ALPHA_MAX_LIMIT = 100.0  # the largest exponent bound a user may set: x**-100 is 0 in float64 past x = 1e4
# The backtest figure's forms: one of each family.
DEFAULT_BACKTEST_FORMS: tuple[str, ...] = ("poly1", "logit1", "powerlaw")

# How: the study's form (reconstructed); `scaling compare` ranks the forms by backtest.
DEFAULT_FORM = "poly1"
DEFAULT_TARGET = "human-top5"  # scaling.core.targets.PRESETS
# The paper's headline scenario (Orhan 2023, abstract): 2.5B parameters, 20,000 h of video, 952 px.
PAPER_SCENARIO: dict[str, float] = {"n_params": 2.5e9, "data_hours": 20000.0, "image_px": 952.0}
# The global batch a training plan keeps, whatever fits one GPU (the rest is gradient accumulation): MAE's
# pretraining recipe, 4,096 (He et al. 2022, arXiv 2111.06377, Table 8: batch size 4096; facebookresearch/mae
# reaches it as batch x accum_iter x GPUs).
PLAN_GLOBAL_BATCH = 4096

# An answer more than this many decades beyond the data along any axis carries a caution.
CAUTION_DECADES = 1.0

# Uncertainty: percentile intervals at these levels (``levels``: the intervals computed; ``level``: the one
# shown, in figures and rankings), from this many resamples of whole runs. 1,000 keeps the 2.5% tails of a
# 95% interval on about 25 resamples each.
DEFAULT_LEVELS: tuple[float, ...] = (0.9, 0.95)
DEFAULT_N_BOOT = 1000
DEFAULT_GROUP = "run_id"

# The one-page study report (``scaling report``, ``scaling.report``): small settings that keep it to seconds
# (about 15-25 s on a loaded 2-core machine, for the shipped grid or a 20-row table): three forms side by side
# and backtested, 100 resamples per bootstrap, and a suggestion from 20 resamples x 1 simulated outcome per
# candidate, its top 5 shown. Its intervals are rough at these sizes; the commands of each section give more.
REPORT_FORMS: tuple[str, ...] = DEFAULT_BACKTEST_FORMS
REPORT_N_BOOT = 100
REPORT_SUGGEST_N_BOOT = 20
REPORT_SUGGEST_OUTCOMES = 1
REPORT_SUGGEST_TOP = 5

# Backtests: axis values within 5% are one level (the ViT-H runs at 224/448/476 px differ in parameters by
# their position embeddings, 0.2%); on a table that is not the run database levels are exact.
DEFAULT_LEVEL_TOL = 0.05

# Bounded inputs (issue 23). A cost expression is at most this long and this deeply nested (a 40-term sum
# nests 40 deep; real costs are a few terms); a seed is a non-negative integer that SQLite's 64-bit integers
# and numpy's generators both hold.
COST_MAX_CHARS = 1000
COST_MAX_DEPTH = 48
MAX_SEED = 2**63 - 1
MAX_WORKERS = 256  # processes a command may fork (--workers)

# Bounded work: before it starts, a command estimates its peak memory and its time from its sizes
# (resamples, outcomes, candidates, frontier rows, dpi; ``scaling.core.work``) and refuses past these limits
# unless allowed (``--allow-large``, ``scaling.core.work.allow_large_work()``). Work that shows a
# progress bar may take up to WORK_MAX_S; work that shows nothing until it ends, WORK_SILENT_MAX_S.
WORK_MAX_BYTES = 2 * 2**30
WORK_MAX_S = 3600.0
WORK_SILENT_MAX_S = 60.0
# Compute-optimal allocation by every method (issue 19): Chinchilla's approaches 1-3 (Hoffmann et al. 2022).
# IsoFLOP budgets: points whose cost lies within 10% of the next one (sorted) form one budget, and a budget
# whose costs spread over more than twice that is not one. A parabola needs 3 model sizes. The parametric
# method's form is Chinchilla's law (approach 3). The envelope is read at 200 log-spaced costs.
ISOFLOP_BUDGET_TOL = 0.10
ISOFLOP_MIN_SIZES = 3
ALLOCATION_FORM = "powerlaw"
ALLOCATION_METHODS: tuple[str, ...] = ("parametric", "isoflop", "envelope")
ENVELOPE_POINTS = 200
# Every method's intervals by default: 200 resamples (the parametric method refits the law and finds two
# allocations again in each, about 0.05 s a resample; ``n_boot``/``--bootstrap`` asks for more).
ALLOCATION_N_BOOT = 200
# The consistency check of a parametric allocation: its N* at the training budgets is biased when the mean
# of log10(law N* / vertex N*) is beyond 2 standard errors of the vertices' scatter and at least 0.05 decades
# (12%): below that, a parabola's own vertex bias on an asymmetric IsoFLOP curve can be as large.
ISOFLOP_CHECK_Z = 2.0
ISOFLOP_CHECK_MIN_DECADES = 0.05

# Ensembles of forms (issue 18): forms weighted below this share are left out of the mixture (their bootstraps
# would cost as much as the others' and move no percentile); the notes name them.
ENSEMBLE_MIN_WEIGHT = 0.01
