"""The forms' bootstrap distributions mixed into one answer (``combine_reports``), each form's beside it, and
the plain sentence a report prints where the weighted forms' intervals do not overlap."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from scaling.core.direction import direction
from scaling.ensemble.mixture import gap_decades, mixture_interval, mixture_quantile, overlap
from scaling.questions.combined import CombinedAnswer, CombinedQuantity, Interval
from scaling.questions.report import ProjectionReport

DISAGREE_WEIGHT = 0.05  # forms below this weight do not count when saying the forms disagree

QUANTITY_WORDS = {
    "at.predicted": "the prediction at the point",
    "scale.factor": "the scale factor that reaches the target",
    "scale.flops": "the compute that reaches the target by scaling every axis",
    "solve.flops": "the compute that reaches the target by growing one axis",
    "optimal.flops": "the compute of the optimal allocation",
    "cheapest.cost": "the cost of the cheapest allocation",
    "budget.predicted": "the best prediction at the budget",
}


def words(name: str) -> str:
    """A quantity's name in words ('solve.data_hours': 'data_hours that reaches the target (solved)')."""
    if name in QUANTITY_WORDS:
        return QUANTITY_WORDS[name]
    key, _, axis = name.partition(".")
    what = {"scale": "when scaling every axis", "solve": "solved alone", "optimal": "of the optimal allocation",
            "cheapest": "of the cheapest allocation", "budget": "of the best allocation at the budget"}.get(key, "")
    return f"{axis} {what}".strip() if key in ("optimal", "cheapest", "budget") else \
        f"the {axis} that reaches the target {what}".strip()


def fmt_value(name: str, value: float, kind: str) -> str:
    if name.endswith("predicted") and direction(kind).is_fraction and math.isfinite(value):
        return f"{100 * value:.1f}%"
    return f"{value:.3g}"


def _interval_text(name: str, iv: Interval, kind: str) -> str:
    return f"[{fmt_value(name, iv[0], kind)}, {fmt_value(name, iv[1], kind)}]"


def headline(names: list[str]) -> list[str]:
    """One quantity per question: its compute or cost where it has one, else its prediction, scale factor or
    solved axis (what a reader compares)."""
    out = []
    for key in dict.fromkeys(n.partition(".")[0] for n in names):
        mine = [n for n in names if n.startswith(f"{key}.")]
        preferred = [f"{key}.{s}" for s in ("flops", "cost", "predicted", "factor")]
        out.append(next((n for n in preferred if n in mine), mine[0]))
    return out


def disagreement(quantities: Mapping[str, CombinedQuantity], weights: Mapping[str, float], level: float,
                 kind: str) -> tuple[str, ...]:
    """One plain sentence when, for any question's headline quantity, the intervals of two forms that carry
    weight do not overlap (naming the pair furthest apart for each); none when they all overlap."""
    heavy = [f for f, w in weights.items() if w >= DISAGREE_WEIGHT]
    clauses = []
    for name in headline(list(quantities)):
        q = quantities[name]
        ivs = {f: q.per_form[f][1][level] for f in heavy if f in q.per_form and level in q.per_form[f][1]}
        pairs = [(a, b) for i, a in enumerate(ivs) for b in list(ivs)[i + 1:] if not overlap(ivs[a], ivs[b])]
        if not pairs:
            continue
        a, b = max(pairs, key=lambda p: gap_decades(ivs[p[0]], ivs[p[1]]) or 0.0)
        gap = gap_decades(ivs[a], ivs[b])
        apart = f", {gap:.1f} decades apart" if gap is not None and not name.endswith("predicted") else ""
        clauses.append(f"{words(name)} ({a} {_interval_text(name, ivs[a], kind)} against {b} "
                       f"{_interval_text(name, ivs[b], kind)}{apart})")
    if not clauses:
        return ()
    return (f"The forms' {100 * level:g}% intervals do not overlap for " + "; ".join(clauses)
            + ": which law holds matters more here than resampling the runs, and the combined interval spans "
            "the forms.",)


def combine_reports(reports: Mapping[str, ProjectionReport], weights: Mapping[str, float], *, method: str,
                    weighting: dict[str, Any], notes: tuple[str, ...] = ()) -> CombinedAnswer:
    """The weighted mixture of each form's bootstrap of the same questions."""
    boots = {f: r.bootstrap for f, r in reports.items()}
    first = next(iter(boots.values()))
    levels = tuple(first.levels)
    kind = next(iter(reports.values())).fit.kind
    names = [k for k in first.derived if all(k in b.derived and k in b.samples for b in boots.values())]
    quantities = {}
    for k in names:
        samples = {f: b.samples[k] for f, b in boots.items()}
        est = mixture_quantile(samples, weights, 0.5)
        quantities[k] = CombinedQuantity(
            k, None if math.isnan(est) else est, {lvl: mixture_interval(samples, weights, lvl) for lvl in levels},
            {f: (b.derived[k].estimate, dict(b.derived[k].intervals)) for f, b in boots.items()})
    events = [e for e in first.probabilities if all(e in b.probabilities for b in boots.values())]
    probabilities = {e: float(sum(weights[f] * b.probabilities[e] for f, b in boots.items())) for e in events}
    return CombinedAnswer(method, dict(weights), quantities, probabilities, "bootstrap", levels,
                          disagreement(quantities, weights, max(levels), kind), notes, weighting)
