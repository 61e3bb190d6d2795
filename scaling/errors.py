"""User-facing errors of the ``scaling`` package.

A ``ScalingError`` is a problem with the user's input or data (too few points for a form, a fit that did
not converge, a target that cannot be reached): the CLI prints its message as one line and exits 1.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class ScalingError(Exception):
    """A domain error whose message is one line naming what is wrong."""


class FitError(ScalingError):
    """The data cannot support the requested fit, or the optimiser did not converge."""


class ProjectionError(ScalingError):
    """A projection request that cannot be answered (unknown axis, bad target, ...)."""
