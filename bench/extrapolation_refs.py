"""Each source's own estimator for ``bench/bench_extrapolation.py``, written from the papers' descriptions
(not from their code), and the predictive band every method of the benchmark is scored with.

- alabdulmohsin2022: M4, (L - L_inf) / (L0 - L)^alpha = beta x^c (Alabdulmohsin, Neyshabur, Zhai 2022,
  NeurIPS, arXiv 2209.06640), fitted by least squares on the paper's residual in logs,
  log(L - L_inf) - alpha log(L0 - L) - log(beta x^c), with L_inf, L0, alpha, beta, c all estimated (the
  paper starts L0 at the random-guess error and updates it). This is the toolkit's ``m4`` form with
  ``objective='implicit', huber_delta=1e6 (least squares), l0='fit'`` (and ``l0_max=1`` for an error rate, which cannot
  start above 1): same model and objective; the toolkit minimises it from several starts by bounded
  trust-region least squares where the paper alternates a regression for (log beta, c, alpha) with
  gradient/Newton steps on (L_inf, L0) from one start, so it reaches the paper's optimum or a better one
  of the same objective. Faithful enough to stand for the paper's estimator; it is not re-implemented.
- muennighoff2023: the data-constrained law (Muennighoff et al. 2023, 'Scaling data-constrained language
  models', NeurIPS, arXiv 2305.16264) L = E + A / N'^alpha + B / D'^beta with the effective data
  D' = U + U R* (1 - exp(-R / R*)), R = D / U - 1 the repetitions beyond the first epoch (D' = D within
  it) and R* = 15.387756, the value their repository's README (huggingface/datablations, section
  'Parametric Fit') documents for the fitted law. On one curve N' is fixed, so A / N'^alpha joins E:
  L(D) = E + B D'(D)^-beta, fitted as they fit it, following Hoffmann et al. 2022: the summed Huber loss
  (delta = 1e-3) of log(predicted) - log(observed), from a grid of starts. R* was fitted on their runs,
  these curves' final losses among them: the estimator knows a little about the tail.
- choshen2025: the Chinchilla form L = E + A / N^alpha + B / D^beta fitted by least squares on the loss
  (Choshen, Zhang, Andreas 2025, 'A Hitchhiker's guide to scaling law estimation', ICML, arXiv
  2410.11840, Eq. 1-2; parameters non-negative), fitted as they recommend to a model's intermediate
  checkpoints. On one model's curve: L(D) = E + B D^-beta by least squares.

The band: percentile intervals of the prediction over row-resampled refits (every checkpoint of the
fitting part drawn with replacement: one curve has no runs to cluster), each multiplied by a training
log-residual of the full fit drawn at random (centred): an interval for an observed point, parameter
uncertainty plus the point-to-point noise of the curve. ``params-only`` coverage uses the percentile
interval of the prediction alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls

R_STAR_D = 15.387756  # Muennighoff et al. 2023, huggingface/datablations README, 'Parametric Fit'
HUBER_DELTA = 1e-3  # Hoffmann et al. 2022, App. D.2; Muennighoff et al. follow it
BETA_GRID = np.geomspace(0.01, 3.0, 60)
BETA_MAX = 5.0
N_STARTS = 3


def effective_data(d: np.ndarray, unique: float, r_star: float = R_STAR_D) -> np.ndarray:
    """Muennighoff et al.'s D': tokens seen, with repeated tokens worth less and less (D' = D in epoch 1)."""
    d = np.asarray(d, dtype=float)
    reps = np.maximum(d / unique - 1.0, 0.0)
    return np.where(d <= unique, d, unique + unique * r_star * (1.0 - np.exp(-reps / r_star)))


@dataclass(frozen=True)
class PowerLaw:
    """L = E + B (x / scale)^-beta on a transformed x (``transform``: x -> x_eff)."""

    E: float
    B: float
    beta: float
    scale: float
    transform: Callable[[np.ndarray], np.ndarray]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.E + self.B * (self.transform(np.asarray(x, dtype=float)) / self.scale) ** -self.beta


def _residuals(theta: np.ndarray, z: np.ndarray, y: np.ndarray, log: bool) -> np.ndarray:
    pred = theta[0] + math.exp(theta[1]) * z ** -theta[2]
    if not log:
        return pred - y
    with np.errstate(all="ignore"):
        r = np.log(pred) - np.log(y)
    return np.where(np.isfinite(r), r, 1e3)


def _grid_starts(z: np.ndarray, y: np.ndarray, log: bool) -> list[np.ndarray]:
    """For each beta of the grid, (E, B) >= 0 by non-negative least squares; the best few by the objective."""
    scored = []
    for beta in BETA_GRID:
        zb = z ** -beta
        (E, B), _ = nnls(np.column_stack([np.ones_like(zb), zb]), y)
        if B <= 0:
            continue
        theta = np.array([E, math.log(B), beta])
        r = _residuals(theta, z, y, log)
        scored.append((_objective(r, log), theta))
    scored.sort(key=lambda s: s[0])
    return [t for _, t in scored[:N_STARTS]]


def _objective(r: np.ndarray, log: bool) -> float:
    if not log:
        return float(0.5 * np.sum(r**2))
    a = np.abs(r)
    return float(np.sum(np.where(a <= HUBER_DELTA, 0.5 * r * r, HUBER_DELTA * (a - 0.5 * HUBER_DELTA))))


def fit_power_law(x: np.ndarray, y: np.ndarray, *, log: bool,
                  transform: Callable[[np.ndarray], np.ndarray] = np.asarray) -> PowerLaw:
    """E + B x_eff^-beta (E, B >= 0, 0 <= beta <= 5): least squares on y (``log=False``) or the summed
    Huber (delta 1e-3) of log residuals (``log=True``); grid starts, then bounded trust-region refinement."""
    xe = np.asarray(transform(np.asarray(x, dtype=float)), dtype=float)
    y = np.asarray(y, dtype=float)
    scale = float(np.exp(np.mean(np.log(xe))))
    z = xe / scale
    best: tuple[float, np.ndarray] | None = None
    lo, hi = np.array([0.0, -50.0, 0.0]), np.array([np.inf, 50.0, BETA_MAX])
    for theta0 in _grid_starts(z, y, log):
        res = least_squares(_residuals, np.clip(theta0, lo + 1e-12, hi - 1e-12), args=(z, y, log),
                            bounds=(lo, hi), method="trf", loss="huber" if log else "linear",
                            f_scale=HUBER_DELTA if log else 1.0, x_scale="jac", max_nfev=2000)
        value = _objective(_residuals(res.x, z, y, log), log)
        if best is None or value < best[0]:
            best = (value, res.x)
    if best is None:
        raise ValueError("no start of the power law gave a positive amplitude")
    E, log_b, beta = best[1]
    return PowerLaw(float(E), math.exp(log_b), float(beta), scale, transform)


def data_constrained(unique: float) -> Callable[[np.ndarray, np.ndarray], PowerLaw]:
    """Muennighoff et al.'s law on one curve with ``unique`` tokens per epoch (log-space Huber)."""

    def fit(x: np.ndarray, y: np.ndarray) -> PowerLaw:
        return fit_power_law(x, y, log=True, transform=lambda d: effective_data(d, unique))

    return fit


def chinchilla_ls(x: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Choshen et al.'s fit on one model's checkpoints: least squares on the loss."""
    return fit_power_law(x, y, log=False)


@dataclass(frozen=True)
class Band:
    """Point prediction and the central interval at each tail x (y units); params-only bounds too."""

    predicted: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    lower_params: np.ndarray
    upper_params: np.ndarray
    n_boot: int  # resamples that were fitted


def predictive_band(predicted: np.ndarray, boot: np.ndarray, residuals: np.ndarray, level: float, seed: int,
                    n_noise: int = 20) -> Band:
    """``boot`` (resamples x tail points) of predictions; ``residuals``: the full fit's training log
    residuals (log observed - log predicted). Every resample's prediction is multiplied by ``n_noise``
    draws of exp(centred residual); the band is the central ``level`` share of those draws."""
    boot = boot[np.all(np.isfinite(boot) & (boot > 0), axis=1)]
    if len(boot) < 2:
        raise ValueError(f"only {len(boot)} bootstrap resamples gave a positive prediction")
    q = ((1 - level) / 2, (1 + level) / 2)
    r = residuals[np.isfinite(residuals)]
    r = r - r.mean()
    rng = np.random.default_rng(seed)
    noise = np.exp(rng.choice(r, size=(len(boot), n_noise, boot.shape[1])))
    draws = (boot[:, None, :] * noise).reshape(-1, boot.shape[1])
    lo, hi = np.quantile(draws, q, axis=0)
    plo, phi = np.quantile(boot, q, axis=0)
    return Band(np.asarray(predicted, dtype=float), lo, hi, plo, phi, len(boot))


def bootstrap_ref(fitter: Callable[[np.ndarray, np.ndarray], PowerLaw], x: np.ndarray, y: np.ndarray,
                  x_tail: np.ndarray, *, n_boot: int, level: float, seed: int) -> Band:
    """A reference estimator's band: refit on ``n_boot`` row resamples (cold, same recipe)."""
    full = fitter(x, y)
    residuals = np.log(y) - np.log(full.predict(x))
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(x), len(x))
        if len(np.unique(x[idx])) < 4:
            continue
        try:
            rows.append(fitter(x[idx], y[idx]).predict(x_tail))
        except ValueError:
            continue
    boot = np.array(rows) if rows else np.empty((0, len(x_tail)))
    return predictive_band(full.predict(x_tail), boot, residuals, level, seed)
