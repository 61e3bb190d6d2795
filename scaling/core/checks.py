"""The rules every number a user gives is checked by, written once for the library and the command line.

Each function takes the value and ``what`` (the argument's name in Python, the option's name on the command
line: the CLI's validators in ``scaling.cli.validate`` call these with the flag) and returns the value
checked, or raises a one-line ``ScalingError`` that names ``what`` and the value. Text is parsed too, so a
grid spec's ``subset_seed=1.5`` meets the same rule as ``seed=1.5``.

- ``positive``: a finite number > 0 (sizes, prices, resolutions, Huber delta, exponent bound);
- ``non_negative``: a finite number >= 0 (a price of 0, a level tolerance of 0);
- ``fraction``: in (0, 1), or (0, 1] with ``closed``;
- ``seed``: an integer in [0, 2**63 - 1] (SQLite's and numpy's), never a truncated 1.5;
- ``count``: an integer >= ``minimum`` (resamples, outcomes, GPUs, rows), at most ``maximum``;
- ``point``: a mapping that names exactly ``axes``, each value ``positive``;
- ``box``: bounds ``lo <= hi`` for known axes, each ``positive``;
- ``alpha_max`` and ``level_tol``: the fit options with a range of their own.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from scaling.defaults import ALPHA_MAX_LIMIT, MAX_SEED
from scaling.errors import ScalingError


def _shown(value: Any) -> str:
    """The value as the message shows it: short, on one line, control characters escaped."""
    text = repr(value) if isinstance(value, str) else str(value)
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= 40 else text[:37] + "..."


def number(value: Any, what: str) -> float:
    """``value`` (a number or its text) as a float; a bool, None or other text is refused."""
    if isinstance(value, bool) or value is None:
        raise ScalingError(f"{what} must be a number; got {_shown(value)}")
    if isinstance(value, numbers.Real):
        try:
            return float(value)
        except OverflowError:  # an int past the float range
            raise ScalingError(f"{what} is too large: {_shown(value)}") from None
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        raise ScalingError(f"{what} must be a number; got {_shown(value)}") from None


def positive(value: Any, what: str, *, maximum: float | None = None) -> float:
    """A finite number > 0 (and <= ``maximum`` when given)."""
    v = number(value, what)
    if not (math.isfinite(v) and v > 0):
        raise ScalingError(f"{what} must be a finite positive number; got {_shown(value)}")
    if maximum is not None and v > maximum:
        raise ScalingError(f"{what} must be at most {maximum:g}; got {_shown(value)}")
    return v


def non_negative(value: Any, what: str) -> float:
    """A finite number >= 0."""
    v = number(value, what)
    if not (math.isfinite(v) and v >= 0):
        raise ScalingError(f"{what} must be a finite number >= 0; got {_shown(value)}")
    return v


def fraction(value: Any, what: str, *, closed: bool = False) -> float:
    """A number in (0, 1), or in (0, 1] with ``closed``."""
    v = number(value, what)
    if not (0.0 < v < 1.0 or (closed and v == 1.0)):
        raise ScalingError(f"{what} must be in (0, 1{']' if closed else ')'}; got {_shown(value)}")
    return v


def _integer(value: Any, what: str, rule: str) -> int:
    """An integer given as an int, an integral float (3.0) or its text ('3', '3e2'); never truncated."""
    if isinstance(value, bool) or value is None:
        raise ScalingError(f"{what} must be {rule}; got {_shown(value)}")
    if isinstance(value, numbers.Integral):
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        v = number(value, what)
    except ScalingError:
        raise ScalingError(f"{what} must be {rule}; got {_shown(value)}") from None
    if not (math.isfinite(v) and v == math.floor(v)):
        raise ScalingError(f"{what} must be {rule}; got {_shown(value)}")
    return int(v)


def seed(value: Any, what: str = "seed") -> int:
    """A seed: an integer in [0, 2**63 - 1]."""
    rule = f"an integer from 0 to {MAX_SEED}"
    n = _integer(value, what, rule)
    if not 0 <= n <= MAX_SEED:
        raise ScalingError(f"{what} must be {rule}; got {_shown(value)}")
    return n


def count(value: Any, what: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer >= ``minimum`` (and <= ``maximum``)."""
    rule = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum:,}")
    n = _integer(value, what, rule)
    if n < minimum or (maximum is not None and n > maximum):
        raise ScalingError(f"{what} must be {rule}; got {_shown(value)}")
    return n


def point(values: Mapping[str, Any], axes: Sequence[str], what: str) -> dict[str, float]:
    """A point that names exactly ``axes`` (none missing, none extra), each value ``positive``."""
    missing = [a for a in axes if a not in values]
    if missing:
        raise ScalingError(f"{what} lacks axis {_shown(missing[0])}; the axes are {', '.join(axes)}")
    extra = [str(a) for a in values if a not in axes]
    if extra:
        raise ScalingError(f"{what} names {_shown(extra[0])}, which is not an axis; the axes are {', '.join(axes)}")
    return {a: positive(values[a], f"{what}: {a}") for a in axes}


def box(bounds: Mapping[str, Any], axes: Sequence[str], what: str) -> dict[str, tuple[float, float]]:
    """Bounds (lower, upper) for some of ``axes``: each positive, lower <= upper."""
    out: dict[str, tuple[float, float]] = {}
    for a, pair in bounds.items():
        if a not in axes:
            raise ScalingError(f"{what} for {_shown(a)}, which is not an axis; the axes are {', '.join(axes)}")
        try:
            lo_given, hi_given = pair
        except (TypeError, ValueError):
            raise ScalingError(f"{what} of {a!r} must be a pair (lower, upper); got {_shown(pair)}") from None
        lo, hi = positive(lo_given, f"{what} of {a!r}: lower"), positive(hi_given, f"{what} of {a!r}: upper")
        if lo > hi:
            raise ScalingError(f"{what} of {a!r}: lower {lo:g} is above upper {hi:g}")
        out[a] = (lo, hi)
    return out


def alpha_max(value: Any, what: str = "alpha_max") -> float:
    """The upper bound of power-law exponents: positive, at most ``ALPHA_MAX_LIMIT``."""
    return positive(value, what, maximum=ALPHA_MAX_LIMIT)


def level_tol(value: Any, what: str = "level_tol") -> float:
    """A relative tolerance within which axis values are one level: in [0, 1)."""
    v = non_negative(value, what)
    if not v < 1.0:
        raise ScalingError(f"{what} is a relative tolerance in [0, 1) (0.05 = 5%); got {_shown(value)}")
    return v
