"""What every result object of ``scaling`` shares, whatever it answers: it shows itself in Jupyter (a readable
table and its figure: ``scaling.core.display``) and saves itself as JSON that ``scaling.load`` reads back
exactly (``scaling.core.saved``)."""

from __future__ import annotations

from scaling.core.display import Displayed
from scaling.core.saved import Saveable


class Result(Displayed, Saveable):
    """The base of the frozen result dataclasses: ``_repr_html_`` / ``_repr_mimebundle_`` and ``save(path)``."""
