"""``Ensemble``: which forms answer together and how they are weighted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scaling.errors import ScalingError

METHODS = ("stacking", "pseudo-bma+")  # scaling.selection.weights.STACKING and PSEUDO_BMA say what they are
DEFAULT_MIN_WEIGHT = 0.01


@dataclass(frozen=True)
class Ensemble:
    """Forms weighted by how well they predicted held-out larger runs.

    ``forms``: the candidates (None: every registered form that applies to the data); ``method``:
    'stacking' or 'pseudo-bma+' (both Yao, Vehtari, Simpson & Gelman 2018); forms whose weight falls below
    ``min_weight`` are left out and the rest renormalised (each form kept costs a bootstrap)."""

    forms: tuple[str, ...] | None = None
    method: str = "stacking"
    min_weight: float = DEFAULT_MIN_WEIGHT

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ScalingError(f"unknown ensemble method {self.method!r}; known: {', '.join(METHODS)}")
        if not 0.0 <= self.min_weight < 0.5:
            raise ScalingError(f"min_weight must be in [0, 0.5); got {self.min_weight}")
        if self.forms is not None:
            forms = tuple(self.forms)
            if len(forms) < 2:
                raise ScalingError("an ensemble needs at least two forms")
            object.__setattr__(self, "forms", forms)

    @classmethod
    def of(cls, spec: Ensemble | bool | Sequence[str] | str | None) -> Ensemble | None:
        """An ensemble from what a caller passed: True (every form), a list or 'a,b,c' of forms, or an
        ``Ensemble``; None or False: none."""
        if spec is None or spec is False:
            return None
        if isinstance(spec, Ensemble):
            return spec
        if spec is True:
            return cls()
        names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
        names = [n for n in names if n]
        return cls() if names in ([], ["all"]) else cls(tuple(names))
