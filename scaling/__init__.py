"""Fit scaling surfaces to MAE runs and project what scale and compute reach a target.

The Python API (every workflow returns a result or report object with ``summary()``, ``to_frame()``,
``to_dict()`` and, where a figure exists, ``plot(ax=None)``)::

    import scaling
    runs = scaling.load_runs()                                 # the shipped grid, or load_runs(db=...)
    fit = scaling.fit(runs, form="logit1", metric="top5")
    rep = scaling.project(fit, target="human-top5", bootstrap=1000, seed=1)
    scaling.compare(runs, metric="top5"); scaling.backtest(runs); scaling.optimal(fit, target="human-top5")
    scaling.fit(pd.read_csv("lm.csv"), y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw")

The command line ``scaling`` (``python -m scaling``) renders the same calls. Names are imported on first
use, so ``import scaling`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("humanlike-scaling")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0.0.0+unknown"

# public name -> module that defines it
_API = {
    "load_runs": "scaling.data",
    "read_table": "scaling.data",
    "fit": "scaling.study",
    "project": "scaling.study",
    "bootstrap": "scaling.study",
    "backtest": "scaling.study",
    "compare": "scaling.study",
    "optimal": "scaling.study",
    "form_options": "scaling.study",
    "FitResult": "scaling.fitting",
    "ProjectionReport": "scaling.report",
    "Projection": "scaling.projection",
    "BootstrapResult": "scaling.resampling",
    "BacktestResult": "scaling.backtesting",
    "CompareResult": "scaling.comparison",
    "OptimalResult": "scaling.allocation",
    "Form": "scaling.forms",
    "get_form": "scaling.forms",
    "list_forms": "scaling.forms",
    "register_form": "scaling.forms",
    "Target": "scaling.targets",
    "list_targets": "scaling.targets",
    "resolve_target": "scaling.targets",
    "pretrain_compute": "scaling.compute",
    "plan": "scaling.planner",
    "PlanReport": "scaling.planner",
    "nearest_arch": "runs_db.archs",
    "suggest": "scaling.suggest_runs",
    "SuggestResult": "scaling.suggest_result",
    "write_configs": "scaling.suggest_configs",
    "suggest_replay": "scaling.suggest_replays",  # another module name: scaling.suggest_replay stays the function
    "ScalingError": "scaling.errors",
    "FitError": "scaling.errors",
    "ProjectionError": "scaling.errors",
    "defaults": "scaling.defaults",
    "plots": "scaling.plots",
}
_MODULES = {"defaults", "plots"}  # names that are modules themselves
_RENAMED = {"bootstrap": "resample"}  # scaling.bootstrap() is study.resample (the module name is taken)

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'scaling' has no attribute {name!r}")
    module = import_module(_API[name])
    value = module if name in _MODULES else getattr(module, _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
