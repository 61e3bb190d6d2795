"""The one error type of ``train``: bad input or a failed run, shown to the user as one line."""

from __future__ import annotations


class TrainError(Exception):
    """A problem with the user's input or data (missing folder, corrupt video, bad sizes): one line, exit 1."""


class TrainDiverged(TrainError):
    """The loss became NaN or infinite; the run is recorded as FAILED with this reason."""
