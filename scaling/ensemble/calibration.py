"""Calibrated intervals of a projection's answers: each answer's bootstrap interval widened by how wrong the
predictor (one form, or the ensemble's weighted mean) has been on held-out runs as far beyond their data.

The scale comes from a backtest (``scaling.selection.conformal``): split-conformal quantiles of held-out
errors per decade of extrapolation. An answer at ``d`` decades beyond the data gets the half-width h(level, d)
on the ranked scale (accuracy points, or log error for a loss or an error rate):

- the prediction at a point: [y - h, y + h] (log error: error x exp(-+h));
- what reaches the target (the scale factor, an axis, the compute): the same answer for the target moved by
  h against the predictor (the pessimistic end: it must predict h better) and by h for it (the optimistic
  end), with d taken at each end's own point (a root by bisection: further answers get wider h).

The interval shown is the union of that and the bootstrap interval: calibration only widens. Allocations
(optimal, cheapest, at a budget) have no observed counterpart and keep their bootstrap intervals, which the
report says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from scaling.core.direction import Direction
from scaling.questions.combined import Interval
from scaling.questions.objects import Answer, Context, Question
from scaling.selection.conformal import ConformalScale, euclidean_decades

CALIBRATED_KEYS = ("at", "scale", "solve")  # questions whose answers the held-out errors speak to
MAX_DECADES = 6.0  # the furthest a calibrated end is sought (a million times the data)
BISECTION_STEPS = 24


def shifted_target(target: float, h: float, d: Direction, pessimistic: bool) -> float:
    """The target the predictor must reach for the truth to reach ``target`` when it errs by ``h`` against
    (pessimistic) or for (optimistic) the answer."""
    better = 1.0 if pessimistic else -1.0
    if not d.ranks_on_log:
        return target + better * h * (1.0 if d.higher_is_better else -1.0)
    err = float(d.error(np.array([target]))[0]) * math.exp(-better * h)
    return float(d.from_error(np.array([err]))[0])


def point_interval(predicted: float, h: float, d: Direction) -> Interval:
    """[y - h, y + h] on the ranked scale, as values of y."""
    if not math.isfinite(h):
        return (-math.inf, math.inf)
    if not d.ranks_on_log:
        return (predicted - h, predicted + h)
    err = float(d.error(np.array([predicted]))[0])
    ends = sorted(float(d.from_error(np.array([err * math.exp(s * h)]))[0]) for s in (-1.0, 1.0))
    return (ends[0], ends[1])


def _distance(values: Mapping[str, float], key: str, predictor: Any) -> float:
    """Decades beyond the data of the answer whose values are ``values`` (Euclidean over the axes, as the
    held-out rows' distances: ``selection.conformal.euclidean_decades``; +inf when it is unreachable)."""
    decades = []
    for a in predictor.axes:
        v = values.get(f"{key}.{a}")
        if v is None:
            continue
        if not math.isfinite(v):
            return math.inf
        decades.append(math.log10(v / predictor.axis_ranges[a][1]))
    return euclidean_decades(decades)


def _needed_end(question: Question, answer: Answer, ctx: Context, predictor: Any, scale: ConformalScale,
                level: float, d: Direction, pessimistic: bool, start: float) -> dict[str, float]:
    """The answer's quantities for the target moved by h(level, distance), at the distance where the moved
    answer itself lies: the root of g(x) = distance(answer for the target moved by h(x)) - x, found by
    bisection between the nominal answer's distance and 0 (optimistic end: the answer comes nearer as x
    grows) or ``MAX_DECADES`` (pessimistic end: unbounded when even that far the moved answer lies further)."""
    assert ctx.target is not None
    target = ctx.target

    def at(x: float) -> tuple[float, dict[str, float]]:
        h = scale.half_width(level, x)
        if not math.isfinite(h):
            return math.inf, {}
        fn = question.quantities(replace(ctx, target=shifted_target(target, h, d, pessimistic)), answer)
        values = fn(predictor).values if fn is not None else {}
        return _distance(values, question.key, predictor), values

    lo, hi = (start, MAX_DECADES) if pessimistic else (0.0, start)
    g_lo, v_lo = at(lo)
    if g_lo - lo <= 0:  # already inside at the near end
        return v_lo
    g_hi, v_hi = at(hi)
    if g_hi - hi > 0:  # beyond the far end: unbounded (pessimistic) or as far as the nominal answer
        return {k: math.inf for k in v_hi} if pessimistic else v_hi
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        g, values = at(mid)
        if g - mid > 0:
            lo = mid
        else:
            hi, v_hi = mid, values
    return v_hi


def calibrated_intervals(asked: Sequence[tuple[Question, Answer]], ctx: Context, predictor: Any,
                         scale: ConformalScale, levels: Sequence[float], d: Direction,
                         bootstrap: Mapping[str, Mapping[float, Interval]]) -> dict[str, dict[float, Interval]]:
    """Per quantity and level, the calibrated interval (the union with the bootstrap's, where there is one).

    ``predictor`` answers the questions (a fit, or ``EnsembleFit``); ``asked`` are the questions with the
    answers of the fit whose context ``ctx`` is (the reference point, the training-length rule)."""
    out: dict[str, dict[float, Interval]] = {}
    for q, a in asked:
        if q.key not in CALIBRATED_KEYS:
            continue
        fn = q.quantities(ctx, a)
        if fn is None:
            continue
        nominal = fn(predictor).values
        for lvl in levels:
            if q.key == "at":
                point = dict(getattr(q, "point", None) or {})
                dist = max((math.log10(point[ax] / predictor.axis_ranges[ax][1]) for ax in predictor.axes
                            if ax in point), default=0.0)
                ends = {"at.predicted": point_interval(nominal["at.predicted"],
                                                       scale.half_width(lvl, max(dist, 0.0)), d)}
            else:
                if ctx.target is None:
                    continue
                start = _distance(nominal, q.key, predictor)
                start = start if math.isfinite(start) else 0.0
                lo = _needed_end(q, a, ctx, predictor, scale, lvl, d, False, start)
                hi = _needed_end(q, a, ctx, predictor, scale, lvl, d, True, start)
                # An end with too few held-out errors for the level is unbounded (needed quantities are > 0).
                ends = {k: (min(lo.get(k, 0.0), hi.get(k, math.inf)), max(lo.get(k, 0.0), hi.get(k, math.inf)))
                        for k in nominal}
            for k, (lo_v, hi_v) in ends.items():
                b = bootstrap.get(k, {}).get(lvl)
                if b is not None:
                    lo_v, hi_v = min(lo_v, b[0]), max(hi_v, b[1])
                out.setdefault(k, {})[lvl] = (lo_v, hi_v)
    return out
