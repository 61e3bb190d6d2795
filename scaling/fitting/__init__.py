"""Fitting as a study does it: ``scaling.fit`` selects the rows (``scaling.data``), gives the form the options
the data imply (``scaling.forms.options``), fits it and, on request, bootstraps it
(``scaling.uncertainty``). The result carries its ``Dataset``, whose defaults every later question uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from scaling.core import checks, work
from scaling.core.direction import direction
from scaling.data.dataset import Dataset
from scaling.data.tables import check_chance, select
from scaling.defaults import DEFAULT_FORM
from scaling.forms import Form, get_form, use_form
from scaling.forms.options import form_options
from scaling.forms.result import FitResult
from scaling.forms.result import fit as fit_table
from scaling.uncertainty.resampling import AUTO, Bootstrap, bootstrap_fit

Progress = Callable[[str, int, int], None]


def fit(
    data: pd.DataFrame | None = None,
    form: str | Form = DEFAULT_FORM,
    *,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str | None = None,
    weights: str | None = None,
    chance: float | None = None,
    huber_delta: float | None = None,
    alpha_max: float | None = None,
    n_boot: int = 0,
    seed: int = 0,
    levels: Sequence[float] | None = None,
    group: str | Sequence[str] | None = AUTO,
    workers: int = 1,
    progress: Progress | None = None,
    **options: Any,
) -> FitResult:
    """Fit ``form`` to the run database's grid (default: the shipped one) or to any table.

    Run-database frames (``load_runs``): ``metric`` (default: the default target's, top-5) against
    parameters, hours and px. Other tables: ``y`` and ``axes`` name the columns, ``kind`` says whether y is
    an accuracy (a fraction, higher is better) or a loss (lower is better); by default the form's own kind
    where it models one only (``Form.kind``), else accuracy. ``chance``, ``huber_delta`` and
    ``alpha_max`` reach the forms that take them; ``n_boot=N`` adds percentile intervals from N resamples of
    whole runs (``group``). ``form`` is a registered form's name or a ``Form`` object
    (``scaling.Form.from_function``), which needs no registering.
    """
    form = use_form(form)
    kind = kind or get_form(form).kind or "accuracy"
    sel = select(data, metric=metric, y=y, axes=axes, kind=kind)
    check_chance(chance, kind, sel)
    huber_delta = None if huber_delta is None else checks.positive(huber_delta, "huber_delta")
    alpha_max = None if alpha_max is None else checks.alpha_max(alpha_max)
    n_boot, seed = checks.count(n_boot, "n_boot", minimum=0), checks.seed(seed)
    if n_boot:  # bounded before the fit: the resamples are drawn and kept whole
        work.check(work.bootstrap(n_boot, len(sel.frame), workers=workers))
    opts = form_options(form, metric=sel.metric, kind=kind, chance=chance, huber_delta=huber_delta,
                        alpha_max=alpha_max) | options
    result = fit_dataset(sel, form, weights=weights, **opts)
    if n_boot:
        spec = Bootstrap.of(n_boot, seed=seed, levels=levels, group=group, workers=workers)
        result = dataclasses.replace(result, bootstrap=bootstrap_fit(result, spec, progress=progress))
    return result


def fit_dataset(sel: Dataset, form: str, *, weights: str | None = None, **options: Any) -> FitResult:
    """Fit ``form`` with ``options`` (its ``form_options`` and any more) to a selected ``Dataset``: the result
    carries the rows, the options, the notes and the dataset, as every later question needs them."""
    result = fit_table(sel.frame, form, y=sel.y, axes=sel.axes, kind=direction(sel.kind).kind, weights=weights,
                       **options)
    return dataclasses.replace(result, source=sel.source, data=sel.frame, fit_options=dict(options), weights=weights,
                               notes=(*sel.notes, *result.notes), dataset=sel)

