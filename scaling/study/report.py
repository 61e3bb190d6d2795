"""``scaling.report``: a study on one page. One call answers the study's questions at small settings (bounded
time) and keeps each answer's result object:

    rep = scaling.report(runs)                                  # the shipped grid, human-top5
    rep = scaling.report(lm, 2.2, y="loss", axes=["params", "tokens"], kind="loss", cost="6nd")
    rep.summary(); rep.to_frame(); rep.section("backtest").result   # a BacktestResult
    rep.save_html("study.html")                                 # one self-contained page (scaling.study.page)

Sections, in order: the projection (``scaling.project`` with a bootstrap), the forms side by side (an
ensemble answer, ``scaling.project(ensemble=...)``), their backtest (``scaling.backtest``), the iso map of
the projection, and what to train next (``scaling.suggest``). A section that cannot be made for these data
(no target on a table, no cost model for a table's candidates, a one-axis map) is left out with its reason,
never the whole report. The settings are ``scaling.defaults.REPORT_*`` unless given.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from scaling import __version__
from scaling.core import checks
from scaling.core.display import Text, new_axes
from scaling.core.jsonable import JSONDict, jsonable
from scaling.core.results import Result
from scaling.core.targets import Target
from scaling.defaults import (
    DEFAULT_FORM,
    REPORT_FORMS,
    REPORT_N_BOOT,
    REPORT_SUGGEST_N_BOOT,
    REPORT_SUGGEST_OUTCOMES,
    REPORT_SUGGEST_TOP,
)
from scaling.design.suggest import suggest
from scaling.ensemble.spec import Ensemble
from scaling.ensemble.workflow import project
from scaling.errors import ScalingError
from scaling.forms.result import FitResult
from scaling.plots.labels import point_text
from scaling.questions.workflow import fit_for_question
from scaling.selection.workflow import backtest
from scaling.uncertainty.resampling import Bootstrap

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SCHEMA = "scaling.report/v1"
Progress = Callable[[str, int, int], None]
# key -> the section's heading
SECTIONS = {
    "projection": "What reaches the target",
    "forms": "The forms side by side",
    "backtest": "How each form predicted held-out larger runs",
    "iso": "The iso map",
    "suggestions": "What to train next",
}


@dataclass(frozen=True)
class Section:
    """One section of the report: its result object, or the reason there is none; and how long it took."""

    key: str  # projection | forms | backtest | iso | suggestions
    result: Any = None  # ProjectionReport (projection, forms, iso), BacktestResult, SuggestResult
    reason: str = ""  # why the section is left out
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return SECTIONS[self.key]

    @property
    def ok(self) -> bool:
        return self.result is not None

    def headline(self) -> str:
        """The section's answer in one line, or why it is left out."""
        if not self.ok:
            return f"left out: {self.reason}"
        return _HEADLINES.get(self.key, _first_line)(self.result)

    def to_dict(self) -> JSONDict:
        return {"key": self.key, "title": self.title, "seconds": self.seconds, "reason": self.reason or None,
                "result": self.result.to_dict() if self.ok else None}


@dataclass(frozen=True)
class StudyReport(Result):
    """A study on one page: each section's result object (``section(key).result``) and what made them."""

    title: str
    data: dict[str, Any]  # where the rows came from, the response, axes and kind, and the rows fitted
    settings: dict[str, Any]  # the form, the forms compared, the target, the resamples, the seed, the cost
    sections: tuple[Section, ...]
    seconds: float
    notes: tuple[str, ...] = ()

    def section(self, key: str) -> Section:
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"{key!r}; sections: {', '.join(s.key for s in self.sections)}")

    def to_dict(self) -> JSONDict:
        """Exactly what ``scaling report --json`` prints: the settings and each section's own JSON."""
        return jsonable({"schema": SCHEMA, "title": self.title, "data": self.data, "settings": self.settings,
                         "seconds": self.seconds, "sections": [s.to_dict() for s in self.sections],
                         "notes": list(self.notes)})

    def to_frame(self) -> pd.DataFrame:
        """One row per section: shown or left out, its headline, and its seconds."""
        rows = [{"section": s.title, "shown": s.ok, "headline": s.headline(), "seconds": s.seconds}
                for s in self.sections]
        return pd.DataFrame(rows).set_index("section")

    def summary(self) -> Text:
        """Each section's summary (or why it is left out), under the report's title and settings."""
        head = [self.title, "settings: " + ", ".join(f"{k}={v}" for k, v in self.settings.items())]
        parts = ["\n".join(head)]
        for s in self.sections:
            body = str(s.result.summary()) if s.ok and s.key != "iso" else s.headline()
            parts.append(f"== {s.title} ({s.seconds:.1f} s) ==\n{body}")
        parts += [f"note: {n}" for n in self.notes]
        return Text("\n\n".join(parts))

    def plot(self, ax: Axes | None = None) -> Axes:
        """The iso map of the projection (the iso section's figure). Returns the Axes."""
        iso = self.section("iso")
        if not iso.ok:
            raise ScalingError(f"no iso map: {iso.reason}")
        result: Axes = iso.result.plot(ax if ax is not None else new_axes(figsize=(7.4, 6.8)))
        return result

    def to_html(self) -> str:
        """The whole report as one self-contained HTML page (``scaling.study.page.render``)."""
        from scaling.study.page import render  # lazy: the page draws every figure (matplotlib)

        return render(self)

    def save_html(self, path: str | Path) -> Path:
        """Write ``to_html()`` to ``path`` whole (a temporary file beside it, then renamed); returns the path."""
        out = Path(path)
        if out.suffix.lower() not in (".html", ".htm"):
            raise ScalingError(f"{out}: the report is written as .html (got {out.suffix or 'no suffix'!r})")
        if not out.parent.is_dir():
            raise ScalingError(f"{out}: folder {out.parent} does not exist")
        page = self.to_html()
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(page)
            os.replace(tmp, out)
        except OSError as exc:
            raise ScalingError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
        finally:
            Path(tmp).unlink(missing_ok=True)
        return out

    def __repr__(self) -> str:
        shown = ", ".join(s.key for s in self.sections if s.ok)
        return f"StudyReport({self.title!r}, sections: {shown}, {self.seconds:.1f} s)"


def _first_line(result: Any) -> str:
    return str(result.summary()).splitlines()[0]


def _answer_line(rep: Any) -> str:
    """The first answer of a projection: 'scale every axis: 2.92B params, 23,059 h, 2200 px; predicted 0.949'."""
    if not rep.projections:
        return _first_line(rep)
    label, p = rep.projections[0]
    if p.point is None:
        return f"{rep.title()} {label}: {p.reason or 'no answer'}"
    flops = f"; {p.compute.flops:.3g} FLOPs" if p.compute is not None else ""
    predicted = "" if p.predicted is None else f"; predicted {p.predicted:.4g}"
    return f"{rep.title()} {label}: {point_text(dict(p.point))}{predicted}{flops}"


def _forms_line(rep: Any) -> str:
    """The ensemble's weights and its first quantity: 'weights logit1 0.84, powerlaw 0.16; scale.factor 26.1
    [17.9, 2.64e+10] (95%)'."""
    c = rep.combined
    if c is None:
        return _first_line(rep)
    weights = ", ".join(f"{f} {w:.2f}" for f, w in sorted(c.weights.items(), key=lambda kv: -kv[1]))
    level = max(c.levels)
    name, q = next(iter(c.quantities.items()))
    lo, hi = q.shown(level)
    est = "-" if q.estimate is None else f"{q.estimate:.3g}"
    return f"weights {weights}; {name} {est} [{lo:.3g}, {hi:.3g}] ({100 * level:g}%, {c.interval_kind})"


def _backtest_line(bt: Any) -> str:
    return f"recommended {bt.recommended or 'none'} ({bt.ranked_by}); ranking {', '.join(bt.ranking) or 'none'}"


def _iso_line(rep: Any) -> str:
    data = rep.iso_data(n=12)
    return f"{data.y_label} over ({data.x_axis}, {data.y_axis}), form {data.form}"


_HEADLINES: dict[str, Callable[[Any], str]] = {"projection": _answer_line, "forms": _forms_line,
                                               "backtest": _backtest_line, "iso": _iso_line}


def _timed(key: str, make: Callable[[], Any]) -> Section:
    """A section from ``make()``; a domain error (the data cannot give this section) becomes its reason."""
    start = time.perf_counter()
    try:
        result = make()
        reason = ""
    except ScalingError as exc:
        result, reason = None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return Section(key, result, reason, round(time.perf_counter() - start, 3))


def _backtest(fit: FitResult, forms: Sequence[str], progress: Progress | None) -> Any:
    """The forms backtested on the fit's rows, with the data's own defaults (the run database's or a table's)."""
    ds = fit.dataset
    if ds is not None and ds.is_run_grid:
        return backtest(fit.data, list(forms), metric=ds.metric, axes=fit.axes, progress=progress)
    return backtest(fit.data, list(forms), y=fit.y, axes=fit.axes, kind=fit.kind, progress=progress)


def _iso(projection: Section) -> Any:
    """The projection's report, once its map is known to draw (cheaply, on a small mesh)."""
    if not projection.ok:
        raise ScalingError(f"no projection to map ({projection.reason})")
    projection.result.iso_data(n=12)
    return projection.result


def report(
    data: pd.DataFrame | FitResult | None = None,
    target: str | float | Target | None = None,
    *,
    form: str = DEFAULT_FORM,
    forms: Sequence[str] = REPORT_FORMS,
    metric: str | None = None,
    y: str | None = None,
    axes: Sequence[str] | None = None,
    kind: str | None = None,
    cost: str | None = None,
    n_boot: int = REPORT_N_BOOT,
    seed: int = 0,
    suggest_n_boot: int = REPORT_SUGGEST_N_BOOT,
    n_outcomes: int = REPORT_SUGGEST_OUTCOMES,
    top: int = REPORT_SUGGEST_TOP,
    title: str | None = None,
    progress: Progress | None = None,
) -> StudyReport:
    """A study on one page (see the module docstring): ``data`` is the run database's evaluations (default:
    the shipped grid), any table (``y``, ``axes``, ``kind``; ``cost`` prices its candidate runs, e.g. '6nd')
    or a ``scaling.fit`` result. ``target``: the data's own by default (human-top5 on the run database, none
    on a table). ``form`` answers the projection, ``forms`` are compared side by side and backtested.
    Bounded by its small settings: ``n_boot`` resamples per bootstrap, a suggestion from ``suggest_n_boot``
    resamples x ``n_outcomes`` outcomes per candidate, the ``top`` shown."""
    start = time.perf_counter()
    n_boot, seed = checks.count(n_boot, "n_boot", minimum=2), checks.seed(seed)
    suggest_n_boot = checks.count(suggest_n_boot, "suggest_n_boot", minimum=20)  # scaling.suggest's least
    n_outcomes, top = checks.count(n_outcomes, "n_outcomes"), checks.count(top, "top")
    options: dict[str, Any] = {"form": form, "metric": metric, "y": y, "axes": axes}
    if kind is not None:
        options["kind"] = kind
    fit, tgt = fit_for_question(data, target, {k: v for k, v in options.items() if v is not None})
    boot = Bootstrap(n_boot, seed=seed)
    projection = _timed("projection", lambda: project(fit, tgt, uncertainty=boot, cost=cost, progress=progress))
    sections = [
        projection,
        _timed("forms", lambda: project(fit, tgt, ensemble=Ensemble(tuple(forms)), uncertainty=boot, cost=cost,
                                        progress=progress)),
        _timed("backtest", lambda: _backtest(fit, forms, progress)),
        _timed("iso", lambda: _iso(projection)),
        _timed("suggestions", lambda: _suggestions(fit, tgt, cost=cost, n_boot=suggest_n_boot,
                                                   n_outcomes=n_outcomes, top=top, seed=seed, progress=progress)),
    ]
    what = fit.source.get("metric") or fit.y
    heading = title or (f"Scaling study: what reaches {tgt.name} ({what})" if tgt is not None
                        else f"Scaling study of {what}")
    rows = {"source": dict(fit.source), "y": fit.y, "axes": list(fit.axes), "kind": fit.kind, "rows": fit.n_points}
    settings = {"form": fit.form, "forms": list(forms), "target": None if tgt is None else tgt.name,
                "n_boot": n_boot, "seed": seed, "suggest_n_boot": suggest_n_boot, "n_outcomes": n_outcomes,
                "top": top, "cost": cost, "scaling": __version__}
    return StudyReport(heading, rows, settings, tuple(sections), round(time.perf_counter() - start, 3),
                       tuple(fit.notes))


def _suggestions(fit: FitResult, tgt: Target | None, *, cost: str | None, n_boot: int, n_outcomes: int, top: int,
                 seed: int, progress: Progress | None) -> Any:
    if tgt is None:
        raise ScalingError("what to train next shrinks the interval of what reaching a target needs: give a "
                           "target")
    return suggest(fit, tgt, n_boot=n_boot, n_outcomes=n_outcomes, top=top, seed=seed, cost=cost,
                   progress=progress)


__all__ = ["SECTIONS", "Section", "StudyReport", "report"]

