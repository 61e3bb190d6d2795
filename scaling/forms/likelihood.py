"""Goodness of fit on the y scale, the same for every form: residual statistics and the Gaussian likelihood
that AICc and BIC are computed from, so that forms fitted on different scales (log, logit, linear) compare.
"""

from __future__ import annotations

import math

import numpy as np


def gaussian_stats(
    y: np.ndarray, yhat: np.ndarray, n_params: int, weights: np.ndarray | None = None
) -> dict[str, float]:
    """Residual statistics on the y scale and AICc/BIC of a Gaussian likelihood with k = n_params + 1.

    With weights the residual variance of point i is sigma^2 / w_i (heteroscedastic Gaussian); the
    variance sigma^2 is at its maximum-likelihood value.
    """
    r = y - yhat
    n = len(y)
    w = np.ones(n) if weights is None else weights / np.mean(weights)
    ss_res = float(np.sum(r**2))
    ss_tot = float(np.sum((y - np.mean(y)) ** 2))
    sigma2 = float(np.sum(w * r**2)) / n
    if sigma2 > 0:
        loglik = -0.5 * n * (math.log(2 * math.pi * sigma2) + 1.0) + 0.5 * float(np.sum(np.log(w)))
    else:  # an exact fit: the likelihood is unbounded
        loglik = math.inf
    k = n_params + 1
    aic = 2 * k - 2 * loglik
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else math.inf
    return {
        "rmse": math.sqrt(ss_res / n),
        "mae": float(np.mean(np.abs(r))),
        "max_abs": float(np.max(np.abs(r))),
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        "loglik": loglik,
        "aicc": aicc,
        "bic": k * math.log(n) - 2 * loglik,
        "n_params": float(n_params),
    }
