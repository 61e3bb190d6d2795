"""``scaling.load``: a result saved with ``result.save(path)`` (a fit, a projection report, a backtest, ...),
read back exactly (``scaling.core.saved``).

A fit of a form made with ``scaling.Form.from_function`` is saved without its function (code is not data):
pass the form again to load it, ``scaling.load("fit.json", forms=[law])``, or register it first.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scaling.core import saved
from scaling.errors import FitError
from scaling.forms import Form, use_form


def load(path: str | Path, *, forms: Sequence[Form] = ()) -> Any:
    """The result saved at ``path``; ``forms``: forms used without registering them (``Form.from_function``)
    that the saved result was fitted with. One-line ``ScalingError`` for a file that is not a saved result, of
    another schema version, or damaged."""
    for form in forms:
        use_form(form)
    try:
        return saved.load(path)
    except FitError as exc:
        if "unknown form" not in str(exc):
            raise
        raise FitError(f"{path}: {exc}; a form made with Form.from_function is not saved with the fit: pass it, "
                       "scaling.load(path, forms=[form])") from None
