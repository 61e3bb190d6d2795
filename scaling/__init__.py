"""Fit scaling surfaces to MAE runs and project what scale and compute reach a target.

The command-line interface is ``scaling`` (``python -m scaling``); library functions return data and
never print.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("humanlike-scaling")
except PackageNotFoundError:  # running from a checkout that was not installed
    __version__ = "0.0.0+unknown"
