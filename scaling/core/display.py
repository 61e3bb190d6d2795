"""How results show themselves in Jupyter, and the Axes their ``plot()`` draws on.

- ``Text``: what every ``summary()`` returns. It is a ``str`` (printing, ``in``, ``==`` and JSON work as for
  any string) that IPython displays as its text: ``fit.summary()`` as the last line of a cell shows the
  report, not an escaped one-line string. The plain ``python`` prompt still shows the quoted repr: changing a
  string's ``__repr__`` would also change it inside lists, f-strings (``!r``), logs and test diffs.
- ``new_axes``: the Axes a result's ``plot()`` draws on when given none: on a figure that pyplot manages,
  as pandas' ``df.plot()`` does, so that Jupyter's inline backend shows it after the cell, ``plt.show()``
  shows it in a script and ``plt.savefig`` writes it. While a result renders itself for display
  (``offscreen``) the figure is one pyplot does not see, so that displaying a result draws nothing twice.
- ``result_html``: a result's ``_repr_html_``: its first summary line, its table (``to_frame()``, numbers
  formatted for reading), its figure where it has one (an embedded PNG) and its notes.

matplotlib and ``scaling.plots`` are imported inside the functions that draw: drawing is optional, and
``import scaling`` stays cheap.
"""

from __future__ import annotations

import base64
import contextvars
import html
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

from scaling.errors import ScalingError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_ROWS = 60  # rows of a displayed table (pandas shows the first and last halves beyond this)
_OFFSCREEN: contextvars.ContextVar[bool] = contextvars.ContextVar("scaling_offscreen", default=False)


class Text(str):
    """A report as text: a ``str`` that IPython and Jupyter display as its lines (see the module docstring)."""

    __slots__ = ()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        for i, line in enumerate(self.splitlines()):
            if i:
                p.break_()
            p.text(line)


def new_axes(figsize: tuple[float, float] | None = None) -> Axes:
    """A new styled Axes for a result's ``plot()``: on a pyplot-managed figure, or (while ``offscreen``) on
    one pyplot does not see."""
    from scaling.plots import style as st  # lazy: drawing (matplotlib) is optional

    if _OFFSCREEN.get():
        return st.new_figure(figsize=figsize)[1]
    import matplotlib.pyplot as plt  # lazy: drawing (matplotlib) is optional

    with st.style():
        fig = plt.figure(figsize=figsize or st.STYLE["figure.figsize"], layout="constrained")
        return fig.subplots()


@contextmanager
def offscreen() -> Iterator[None]:
    """Within the block, ``new_axes`` makes figures that pyplot does not manage."""
    token = _OFFSCREEN.set(True)
    try:
        yield
    finally:
        _OFFSCREEN.reset(token)


def figure_png(result: Any) -> tuple[bytes | None, str]:
    """``result.plot()`` drawn off pyplot as PNG bytes, or (None, why not) where it has no figure."""
    if not callable(getattr(result, "plot", None)):
        return None, ""
    from scaling.plots import png_bytes  # lazy: drawing (matplotlib) is optional

    try:
        with offscreen():
            ax = result.plot()
    except ScalingError as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = ax if hasattr(ax, "figure") else next(iter(getattr(ax, "flat", [ax])))
    return png_bytes(first.figure), ""


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` for reading: ``scaling.plots.readable_frame`` (units by column name, 4 significant figures),
    and floats inside mixed columns formatted the same way."""
    from scaling.plots import readable_frame  # lazy: drawing (matplotlib) is optional

    out = readable_frame(frame)
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = [_cell(v) for v in out[col]]
    return out


def _cell(v: Any) -> Any:
    if isinstance(v, float) and not isinstance(v, bool):
        return "" if math.isnan(v) else f"{v:,.4g}"
    return v


def result_html(result: Any, png: bytes | None = None, why: str = "") -> str:
    """The HTML a result shows in Jupyter: title, table, figure, notes."""
    title = str(result.summary()).splitlines()[0] if callable(getattr(result, "summary", None)) else ""
    parts = [f"<div class=\"scaling-result\"><p><strong>{html.escape(type(result).__name__)}</strong>"
             f"{': ' + html.escape(title) if title else ''}</p>"]
    frame = result.to_frame() if callable(getattr(result, "to_frame", None)) else None
    if isinstance(frame, pd.DataFrame) and not frame.empty:
        parts.append(readable(frame).to_html(max_rows=MAX_ROWS, na_rep=""))
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<p><img src=\"data:image/png;base64,{data}\" alt=\"{html.escape(type(result).__name__)} "
                     "figure\"/></p>")
    elif why:
        parts.append(f"<p><em>no figure: {html.escape(why)}</em></p>")
    notes = [str(n) for n in getattr(result, "notes", ()) or ()]
    if notes:
        parts.append("<ul>" + "".join(f"<li>note: {html.escape(n)}</li>" for n in notes) + "</ul>")
    parts.append("</div>")
    return "\n".join(parts)


class Displayed:
    """What every result object shares in Jupyter: a readable table and its figure (``_repr_mimebundle_``:
    ``text/html`` with the figure embedded, and the figure as ``image/png`` for front ends without HTML).
    The figure is drawn once per display, off pyplot."""

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        png, why = figure_png(self)
        bundle: dict[str, Any] = {"text/html": result_html(self, png, why)}
        if png is not None:
            bundle["image/png"] = png
        return bundle

    def _repr_html_(self) -> str:
        png, why = figure_png(self)
        return result_html(self, png, why)
