"""How backtest errors are averaged and what they say about choosing and weighting forms: each split's
weight (its training rows), weighted means and their standard errors, the one-standard-error rule, and the
stacking weights of an ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from scaling.errors import ScalingError

if TYPE_CHECKING:
    from scaling.selection.backtest import FormSummary


class HasTraining(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def n_train(self) -> int: ...


def split_weights(splits: Sequence[HasTraining]) -> dict[str, float]:
    """Each split's weight in the means: its training rows over the total (see the module docstring)."""
    total = float(sum(s.n_train for s in splits)) or 1.0
    return {s.name: s.n_train / total for s in splits}


def weighted_mean(values: Sequence[float | None], weights: Sequence[float]) -> float | None:
    """The weighted mean of ``values``; None when there are none or one is missing."""
    if not values or any(v is None for v in values):
        return None
    w = np.asarray(weights, dtype=float)
    return float(np.sum(w * np.asarray(values, dtype=float)) / np.sum(w))


def weighted_se(values: Sequence[float | None], weights: Sequence[float]) -> float | None:
    """The standard error of ``weighted_mean``: the weighted spread over the root of the effective number
    of splits, (sum w)^2 / sum w^2 (Kish); None with fewer than two splits."""
    mean = weighted_mean(values, weights)
    if mean is None or len(values) < 2:
        return None
    w = np.asarray(weights, dtype=float) / np.sum(weights)
    v = np.asarray(values, dtype=float)
    n_eff = 1.0 / float(np.sum(w**2))
    var = float(np.sum(w * (v - mean) ** 2)) * n_eff / max(n_eff - 1.0, 1e-12)
    return math.sqrt(var / n_eff)


def one_se_choice(ranking: Sequence[str], summary: Mapping[str, FormSummary]) -> str | None:
    """The one-standard-error rule: of the forms whose score is within one standard error of the best's,
    the one with the fewest parameters (the better score on a tie); None without a ranking."""
    if not ranking:
        return None
    best = summary[ranking[0]]
    bar = float(best.score or 0.0) + float(best.score_se or 0.0)
    near = [f for f in ranking if float(summary[f].score or math.inf) <= bar]
    return min(near, key=lambda f: (summary[f].parameters, ranking.index(f)))


# -- stacking of predictive distributions -------------------------------------------------------------------

STACKING = ("stacking of predictive distributions (Yao, Vehtari, Simpson & Gelman 2018, Bayesian Analysis 13): "
            "weights on the simplex maximising the mean log score of the weighted mixture on the held-out rows")


@dataclass(frozen=True)
class EnsembleWeights:
    """Weights of the forms in an ensemble, learnt from their held-out errors."""

    method: str
    weights: dict[str, float]  # form -> weight (sums to 1)
    sigma: dict[str, float]  # form -> the scale of its predictive density (the ranked scale)
    splits: tuple[str, ...]  # the held-out splits the weights were learnt on
    n_points: int
    log_score: float  # mean log score of the mixture (held-out rows weighted by their split's weight)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"method": self.method, "weights": dict(self.weights), "sigma": dict(self.sigma),
                "splits": list(self.splits), "n_points": self.n_points, "log_score": self.log_score,
                "notes": list(self.notes)}


def _held_out_log_densities(residuals: Mapping[str, Mapping[str, Sequence[float]]], split_weight: Mapping[str, float],
                            sigma_floor: float) -> tuple[list[str], list[str], dict[str, dict[str, float]],
                                                         list[tuple[float, np.ndarray]]]:
    """Forms, splits, each form's leave-one-split-out scale per split, and per split (its weight, the
    (rows, forms) log densities of the held-out rows)."""
    forms = list(residuals)
    splits = [s for s in next(iter(residuals.values()))] if forms else []
    if not forms or not splits:
        raise ScalingError("weighting forms needs held-out residuals of at least one form on at least one split")
    sig = {f: _loso_sigma(residuals[f], split_weight, sigma_floor) for f in forms}
    logp = []
    for s in splits:
        cols = [_normal_logpdf(np.asarray(residuals[f][s], dtype=float), sig[f][s]) for f in forms]
        logp.append((split_weight[s], np.column_stack(cols)))
    return forms, splits, sig, logp


def stacking_weights(residuals: Mapping[str, Mapping[str, Sequence[float]]], split_weight: Mapping[str, float],
                     *, sigma_floor: float = 1e-6) -> EnsembleWeights:
    """Stacking weights from held-out residuals: ``residuals[form][split]`` on the ranked scale, the same rows
    for every form. Each form's predictive density at a held-out row is normal around its prediction with
    the root mean square of its residuals on the *other* splits (all splits when there is one), floored at
    ``sigma_floor``; each split counts by ``split_weight`` whatever its number of rows. Deterministic: a
    concave objective climbed from equal weights (``_mixture_em``)."""
    forms, splits, sig, logp = _held_out_log_densities(residuals, split_weight, sigma_floor)
    rows = np.vstack([lp for _, lp in logp])
    row_w = np.concatenate([np.full(lp.shape[0], w / lp.shape[0]) for w, lp in logp])
    row_w = row_w / row_w.sum()
    w = _mixture_em(rows, row_w)
    score = float(row_w @ _logsumexp_rows(rows + np.log(np.maximum(w, 1e-300))))
    return _weights(STACKING, forms, w, sig, splits, logp, score)


def _mixture_em(logp: np.ndarray, row_w: np.ndarray, *, tol: float = 1e-12, max_iter: int = 20000) -> np.ndarray:
    """The simplex weights maximising sum_i row_w[i] log sum_k w_k p_ik (a concave problem): expectation-
    maximisation for mixture weights, which climbs monotonically from equal weights to the maximum and keeps
    every weight on the simplex (a softmax parametrisation stalls near a vertex)."""
    w = np.full(logp.shape[1], 1.0 / logp.shape[1])
    shifted = np.exp(logp - logp.max(axis=1, keepdims=True))
    for _ in range(max_iter):
        mix = shifted @ w
        new = w * ((row_w / mix) @ shifted)
        new /= new.sum()
        if float(np.max(np.abs(new - w))) < tol:
            return new
        w = new
    return w


PSEUDO_BMA = ("pseudo-BMA+ (Yao, Vehtari, Simpson & Gelman 2018, Bayesian Analysis 13, section 3.4): weights "
              "proportional to exp(held-out log score), averaged over a Bayesian bootstrap of the held-out rows")


def pseudo_bma_weights(residuals: Mapping[str, Mapping[str, Sequence[float]]], split_weight: Mapping[str, float],
                       *, n_draws: int = 1000, seed: int = 0, sigma_floor: float = 1e-6) -> EnsembleWeights:
    """Pseudo-BMA+ weights from the same held-out log densities as ``stacking_weights``: each held-out row
    weighs its split's weight over the split's rows (the rows' total is their number, n), and for each of
    ``n_draws`` Dirichlet(1, ..., 1) reweightings of the rows the forms get softmax(n x weighted mean log
    density); the weights are the mean over the draws (seeded: the same weights every run)."""
    forms, splits, sig, logp = _held_out_log_densities(residuals, split_weight, sigma_floor)
    rows = np.vstack([lp for _, lp in logp])
    row_w = np.concatenate([np.full(lp.shape[0], w / lp.shape[0]) for w, lp in logp])
    row_w = row_w / row_w.sum()
    n = rows.shape[0]
    alpha = np.random.default_rng(seed).dirichlet(np.ones(n), size=n_draws) * row_w
    alpha /= alpha.sum(axis=1, keepdims=True)
    z = n * alpha @ rows  # (draws, forms): n x the reweighted mean log density
    z -= z.max(axis=1, keepdims=True)
    w = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    score = float(row_w @ _logsumexp_rows(rows + np.log(np.maximum(w.mean(axis=0), 1e-300))))
    return _weights(PSEUDO_BMA, forms, w.mean(axis=0), sig, splits, logp, score)


def _weights(method: str, forms: list[str], w: np.ndarray, sig: Mapping[str, Mapping[str, float]],
             splits: list[str], logp: list[tuple[float, np.ndarray]], score: float) -> EnsembleWeights:
    notes = () if len(splits) > 1 else ("one held-out split: each form's predictive scale is its own error there",)
    return EnsembleWeights(method, dict(zip(forms, (float(v) for v in w), strict=True)),
                           {f: float(np.mean(list(sig[f].values()))) for f in forms}, tuple(splits),
                           sum(lp.shape[0] for _, lp in logp), score, notes)


def _loso_sigma(by_split: Mapping[str, Sequence[float]], weight: Mapping[str, float],
                floor: float) -> dict[str, float]:
    """Per split, the weighted root mean square of the residuals on the other splits (leave one split out)."""
    out = {}
    for s in by_split:
        others = [t for t in by_split if t != s] or [s]
        ms = [float(np.mean(np.square(np.asarray(by_split[t], dtype=float)))) for t in others]
        out[s] = max(math.sqrt(float(np.average(ms, weights=[weight[t] for t in others]))), floor)
    return out


def _normal_logpdf(r: np.ndarray, sigma: float) -> np.ndarray:
    return -0.5 * (r / sigma) ** 2 - math.log(sigma * math.sqrt(2.0 * math.pi))


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    m = np.max(a, axis=1, keepdims=True)
    return (m + np.log(np.sum(np.exp(a - m), axis=1, keepdims=True))).ravel()
