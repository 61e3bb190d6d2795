"""Fit scaling surfaces to MAE runs and project what scale and compute reach a target.

The Python API (every workflow returns a result or report object with ``summary()``, ``to_frame()``,
``to_dict()`` and, where a figure exists, ``plot(ax=None)``)::

    import scaling
    runs = scaling.load_runs()                                 # the shipped grid, or load_runs(db=...)
    fit = scaling.fit(runs, form="logit1", metric="top5")
    rep = scaling.project(fit, "human-top5", [scaling.Scale(), scaling.At()], uncertainty=scaling.Bootstrap(seed=1))
    scaling.compare(runs, metric="top5"); scaling.backtest(runs); scaling.optimal(fit, target="human-top5")
    scaling.fit(pd.read_csv("lm.csv"), y="loss", axes=["params", "tokens"], kind="loss", form="powerlaw")
    law = scaling.Form.from_function(lambda N, D, E, A, a, B, b: E + A / N**a + B / D**b, p0=..., kind="loss")
    fit.save("fit.json"); scaling.load("fit.json")                 # exactly the same fit back
    scaling.report(runs).save_html("study.html")                   # the study on one self-contained page

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
    "load_runs": "scaling.data.tables",
    "load_curves": "scaling.data.curves",
    "read_table": "scaling.data.tables",
    "Dataset": "scaling.data.dataset",
    "fit": "scaling.fitting",
    "project": "scaling.ensemble.workflow",
    "Ensemble": "scaling.ensemble.spec",
    "calibrate": "scaling.ensemble.calibrate",
    "predict": "scaling.ensemble.predict",
    "Prediction": "scaling.ensemble.predict",
    "CalibrationResult": "scaling.ensemble.calibrate",
    "optimal": "scaling.questions.workflow",
    "bootstrap": "scaling.uncertainty.resampling",
    "Bootstrap": "scaling.uncertainty.resampling",
    "backtest": "scaling.selection.workflow",
    "compare": "scaling.selection.workflow",
    "form_options": "scaling.forms.options",
    "Scale": "scaling.questions.objects",
    "Solve": "scaling.questions.objects",
    "At": "scaling.questions.objects",
    "Cheapest": "scaling.questions.objects",
    "AtBudget": "scaling.questions.objects",
    "Question": "scaling.questions.objects",
    "FitResult": "scaling.forms.result",
    "PredictionResult": "scaling.forms.prediction",
    "load": "scaling.forms.loading",
    "ProjectionReport": "scaling.questions.report",
    "Projection": "scaling.questions.projection",
    "BootstrapResult": "scaling.uncertainty.bootstrap",
    "BacktestResult": "scaling.selection.backtest",
    "CompareResult": "scaling.selection.compare",
    "OptimalResult": "scaling.allocation.mae",
    "CostOptimum": "scaling.allocation.budget",
    "compute_optimal": "scaling.allocation.methods",
    "ComputeOptimalResult": "scaling.allocation.methods_result",
    "consistency_check": "scaling.allocation.consistency",
    "Form": "scaling.forms",
    "get_form": "scaling.forms",
    "list_forms": "scaling.forms",
    "register_form": "scaling.forms",
    "Target": "scaling.core.targets",
    "list_targets": "scaling.core.targets",
    "resolve_target": "scaling.core.targets",
    "pretrain_compute": "scaling.compute.flops",
    "TrainingLength": "scaling.compute.training_length",
    "plan": "scaling.planning.planner",
    "PlanReport": "scaling.planning.planner",
    "nearest_arch": "runs_db.archs",
    "suggest": "scaling.design.suggest",
    "SuggestResult": "scaling.design.result",
    "write_configs": "scaling.design.configs",
    "suggest_replay": "scaling.design.replay",
    "report": "scaling.study.report",
    "StudyReport": "scaling.study.report",
    "ScalingError": "scaling.errors",
    "FitError": "scaling.errors",
    "ProjectionError": "scaling.errors",
    "defaults": "scaling.defaults",
    "plots": "scaling.plots",
}
_MODULES = {"defaults", "plots"}  # names that are modules themselves
_RENAMED = {"bootstrap": "resample"}  # scaling.bootstrap() is resampling.resample (bootstrap names a module)

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
