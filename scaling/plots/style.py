"""One style for every figure: colours, markers, axis formatters and byte-reproducible saving.

Colours are from the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), which stays
distinguishable under the common colour-vision deficiencies; each model size keeps its colour and marker
in every figure. Sequential quantities (accuracy surfaces, image resolution) use viridis/cividis.
Vermillion is reserved for the target (human level) and black for projections.

Saved files are byte-reproducible: no software/date metadata in PNG, PDF or SVG, and a fixed SVG hash
salt (the ids SVG elements get). ``save_figure`` is the only place that writes a file.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import matplotlib as mpl
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter

from runs_db.archs import PUBLISHED_ARCH_NAMES
from scaling.core import checks, work
from scaling.errors import ScalingError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType
    from numpy.typing import ArrayLike

OKABE_ITO = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}
NEUTRAL = "#7F7F7F"  # sizes that are not registered
TARGET_COLOUR = OKABE_ITO["vermillion"]
PROJECTION_COLOUR = OKABE_ITO["black"]

# Model size -> (label, colour, marker). Keys are runs_db.archs registry names.
SIZES: dict[str, tuple[str, str, str]] = {
    "vit_t14": ("ViT-Ti/14", OKABE_ITO["sky blue"], "v"),
    "vit_s14": ("ViT-S/14", OKABE_ITO["orange"], "o"),
    "vit_b14": ("ViT-B/14", OKABE_ITO["bluish green"], "s"),
    "vit_l14": ("ViT-L/14", OKABE_ITO["reddish purple"], "^"),
    "vit_h14": ("ViT-H/14", OKABE_ITO["blue"], "D"),
}
SIZE_ORDER = tuple(SIZES)
# Forms in backtest plots: fixed order of the built-in forms, then the palette again for others.
FORM_COLOURS = [OKABE_ITO[c] for c in ("blue", "orange", "bluish green", "reddish purple", "sky blue", "vermillion",
                                       "black")]
FORM_MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
RESOLUTION_MARKERS = {224: "D", 448: "s", 476: "o"}
FORMATS = ("png", "pdf", "svg")
DEFAULT_DPI = 150
SVG_HASHSALT = "humanlike-scaling"

STYLE: dict[RcKeyType, Any] = {
    "figure.figsize": (6.4, 4.4),
    "figure.dpi": 100,
    "savefig.dpi": DEFAULT_DPI,
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs on every machine
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "axes.prop_cycle": cycler(color=FORM_COLOURS),
    "image.cmap": "cividis",
    "lines.linewidth": 1.6,
    "lines.markersize": 5.0,
    "hatch.color": "#9A9A9A",
    "hatch.linewidth": 0.5,
    "svg.hashsalt": SVG_HASHSALT,
    "svg.fonttype": "path",
    "pdf.fonttype": 42,
}


@contextmanager
def style() -> Iterator[None]:
    """The toolkit's rcParams, for creating figures and artists."""
    with mpl.rc_context(STYLE):
        yield


INLINE_DPI = 100  # notebooks: sharp enough on screen, small enough to keep executed notebooks light


def png_bytes(fig: Figure, *, dpi: float = INLINE_DPI) -> bytes:
    """The figure as PNG bytes (layout fixed as at a save, no metadata): what a notebook displays."""
    buffer = io.BytesIO()
    freeze_layout(fig)
    with style():
        fig.savefig(buffer, format="png", dpi=dpi, metadata=fixed_metadata("png"))
    return buffer.getvalue()


class InlineFigure(Figure):
    """A pyplot-free Figure that Jupyter displays as an image.

    Without pyplot no backend registers a display hook for ``Figure``, so a notebook would show only
    ``<Figure size ...>``; IPython looks for ``_repr_png_`` on any object instead.
    """

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


@overload
def new_figure(nrows: Literal[1] = 1, ncols: Literal[1] = 1, *, figsize: tuple[float, float] | None = None,
               squeeze: Literal[True] = True, **subplot_kw: Any) -> tuple[Figure, Axes]: ...


@overload
def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
               squeeze: bool = True, **subplot_kw: Any) -> tuple[Figure, Any]: ...


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
               squeeze: bool = True, **subplot_kw: Any) -> tuple[Figure, Any]:
    """A styled Figure and its axes, without pyplot (no global state, nothing to close or show); in a
    notebook the figure displays itself as an image. ``subplot_kw``: ``sharex``/``sharey`` of ``subplots``.

    The axes are those of ``Figure.subplots``: one Axes for one panel (typed so), else an array of them."""
    with style():
        fig = InlineFigure(figsize=figsize or STYLE["figure.figsize"], layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


# What a multi-panel figure is drawn on: one Axes, whose place its panels take, or an array (or sequence) of
# as many axes as it has panels.
Panels: TypeAlias = Axes | np.ndarray | Sequence[Axes]


def host_figure(ax: Panels) -> tuple[Figure | SubFigure, bool]:
    """The figure ``ax`` is on, and whether ``ax`` is one subplot alone on it (a multi-panel figure drawn in its
    place then titles the whole figure)."""
    if isinstance(ax, Axes):
        return ax.figure, len(ax.figure.axes) == 1
    return np.ravel(np.asarray(ax))[0].figure, False


def split_axes(ax: Panels, nrows: int, ncols: int, *, sharey: bool = False) -> np.ndarray:
    """``nrows`` x ``ncols`` axes in the place of ``ax`` (a figure's subplot), for multi-panel figures drawn
    through a one-``ax`` interface; a sequence of axes with that many entries is used as it is."""
    if not isinstance(ax, Axes):
        axes = np.asarray(ax, dtype=object).ravel()
        if axes.size != nrows * ncols:
            raise ScalingError(f"this figure needs {nrows * ncols} axes; got {axes.size}")
        return axes.reshape(nrows, ncols)
    if nrows * ncols == 1:
        return np.array([[ax]], dtype=object)
    spec = ax.get_subplotspec()
    if spec is None:
        raise ScalingError(f"this figure needs {nrows * ncols} axes: pass them, or a subplot to put them in the "
                           "place of (not an Axes placed with add_axes)")
    fig = ax.figure
    ax.remove()
    grid = spec.subgridspec(nrows, ncols)
    out = np.empty((nrows, ncols), dtype=object)
    with style():
        for i in range(nrows):
            for j in range(ncols):
                share = out[i, 0] if sharey and j > 0 else None
                out[i, j] = fig.add_subplot(grid[i, j], sharey=share)
    return out


def size_key(arch: object) -> str:
    """Registry name of an architecture given as ``vit_h14`` or as the published ``vith14``."""

    text = str(arch)
    return PUBLISHED_ARCH_NAMES.get(text, text)


def size_label(arch: object) -> str:
    return SIZES.get(size_key(arch), (str(arch), NEUTRAL, "o"))[0]


def size_colour(arch: object) -> str:
    """The fixed colour of a model size (neutral grey for unregistered sizes)."""
    return SIZES.get(size_key(arch), ("", NEUTRAL, "o"))[1]


def size_marker(arch: object) -> str:
    return SIZES.get(size_key(arch), ("", NEUTRAL, "o"))[2]


def size_rank(arch: object) -> int:
    key = size_key(arch)
    return SIZE_ORDER.index(key) if key in SIZE_ORDER else len(SIZE_ORDER)


# Image side (px) -> position on viridis: the study's three sizes far apart (448 and 476 px are close in
# value but must be told apart), log-interpolated in between and beyond.
_RESOLUTION_ANCHORS = ((112.0, 0.0), (224.0, 0.12), (448.0, 0.5), (476.0, 0.78), (1904.0, 0.95))


def resolution_colour(image_px: float) -> str:
    """Viridis by image side: 224 px dark purple, 448 px teal, 476 px green; larger towards yellow."""
    xs = [math.log(a) for a, _ in _RESOLUTION_ANCHORS]
    ts = [t for _, t in _RESOLUTION_ANCHORS]
    t = float(np.interp(math.log(max(image_px, 1.0)), xs, ts))
    return mpl.colors.to_hex(mpl.colormaps["viridis"](t))


def resolution_marker(image_px: float) -> str:
    return RESOLUTION_MARKERS.get(round(image_px), "o")


def level_colour(rank: int, count: int) -> str:
    """The colour of the rank-th of ``count`` ordered levels of a table's axis (viridis, dark to light)."""
    t = 0.05 + 0.85 * rank / max(count - 1, 1)
    return mpl.colors.to_hex(mpl.colormaps["viridis"](t))


def form_style(index: int) -> tuple[str, str]:
    """(colour, marker) of the index-th form in a plot."""
    return FORM_COLOURS[index % len(FORM_COLOURS)], FORM_MARKERS[index % len(FORM_MARKERS)]


# -- formatters (units live in the axis labels; ticks stay short)


def fmt_count(x: float) -> str:
    """22M / 86M / 632M / 2.5B / 1T style, for parameter counts and images."""
    if not math.isfinite(x) or x <= 0:
        return ""
    if x >= 1e15:  # beyond trillions a suffix hides the magnitude
        return f"{x:.2g}"
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            v = x / scale
            return f"{v:.3g}{unit}"
    return f"{x:.3g}"


def fmt_hours_tick(x: float) -> str:
    """0.5 / 5 / 50 / 500 / 5,000 / 1e+05 hours."""
    if not math.isfinite(x) or x <= 0:
        return ""
    if x >= 1e5:
        exp = round(math.log10(x))
        return f"$10^{{{exp}}}$" if math.isclose(x, 10.0**exp, rel_tol=1e-6) else f"{x:.0e}"
    return f"{x:,.0f}" if x >= 1 else f"{x:g}"


def fmt_px(x: float) -> str:
    """Image side: '952 px', or '3.5e+12 px' for the sizes far projections ask for."""
    return f"{x:.0f} px" if x < 1e6 else f"{x:.2g} px"


def fmt_hours(x: float) -> str:
    """Hours in labels, one format at every magnitude: '0.5 h', '1,321 h', '197,422 h', '3.2e+07 h'."""
    if not math.isfinite(x):
        return "- h"
    if x < 10:
        return f"{x:.2g} h"
    return f"{x:,.0f} h" if x < 1e7 else f"{x:.2g} h"


def fmt_flops(x: float | None) -> str:
    """'4.85e+22 FLOPs', '1.30e+23 FLOPs' (three significant figures, one format in every figure)."""
    return "-" if x is None or not math.isfinite(x) else f"{x:.2e} FLOPs"


def fmt_percent_tick(x: float) -> str:
    return f"{100 * x:.0f}%"


def _fmt_sci(x: float) -> str:
    return f"{x:.2e}"


def _fmt_pxs(x: float) -> str:
    return f"{x:,.0f} px" if x < 1e6 else f"{x:.2g} px"


# Column name -> format of ``readable_frame``: the units of the toolkit's column names.
COLUMN_FORMATS = {"n_params": fmt_count, "data_hours": fmt_hours, "image_px": _fmt_pxs, "flops": _fmt_sci,
                  "FLOPs": _fmt_sci, "pretrain_flops": _fmt_sci}


def readable_frame(frame: pd.DataFrame, formats: Mapping[str, Callable[[Any], str] | str] | None = None, *,
                   digits: int = 4) -> pd.DataFrame:
    """A copy of a DataFrame for display: parameters as '2.92B', hours as '23,059 h', image sides as
    '2,200 px', FLOPs as '6.11e+22' (by column name, or ``formats``: name -> callable or format spec), other
    floats to ``digits`` significant figures; NaN stays blank. Numbers become strings: display only."""

    table: dict[str, Callable[[Any], str] | str] = {**COLUMN_FORMATS, **(formats or {})}
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if not pd.api.types.is_float_dtype(values) and col not in (formats or {}):
            continue
        fmt = table.get(col, table.get(str(col).lower(), f"{{:,.{digits}g}}"))
        if "flops" in str(col).lower() and col not in table:
            fmt = _fmt_sci
        call = fmt if callable(fmt) else fmt.format
        out[col] = [("" if v is None or (isinstance(v, float) and math.isnan(v)) else call(v)) for v in values]
    return out


COUNT_FORMATTER = FuncFormatter(lambda x, _pos: fmt_count(x))
HOURS_FORMATTER = FuncFormatter(lambda x, _pos: fmt_hours_tick(x))
PERCENT_FORMATTER = FuncFormatter(lambda x, _pos: fmt_percent_tick(x))


def log_range(values: ArrayLike, *, pad_decades: float = 0.15) -> tuple[float, float]:
    """(low, high) around positive ``values`` on a log axis with a margin in decades."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        raise ScalingError("no positive values to place on a log axis")
    return float(v.min() / 10**pad_decades), float(v.max() * 10**pad_decades)


# -- saving


def figure_format(path: str | Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise ScalingError(f"{path}: figures are written as .png, .pdf or .svg (got {suffix or 'no suffix'!r})")
    return suffix


def fixed_metadata(fmt: str) -> dict[str, str | None]:
    """Metadata that makes the bytes depend only on the figure: no software, no dates."""
    if fmt == "png":
        return {"Software": None}
    if fmt == "pdf":
        return {"Creator": None, "Producer": None, "CreationDate": None, "ModDate": None}
    if fmt == "svg":
        return {"Date": None, "Creator": None}
    raise ScalingError(f"unknown figure format {fmt!r}; use one of {', '.join(FORMATS)}")


def freeze_layout(fig: Figure) -> None:
    """Run the figure's layout engine once and then fix the axes where it put them.

    Constrained layout does not reach an exact fixed point when a legend sits outside the axes: every draw
    moves the axes by a little, so saving one figure twice would give two different files. Fixing the layout
    at the first save makes every save of the figure (in any format) draw the same thing.
    """
    if fig.get_layout_engine() is None or getattr(fig, "_scaling_layout_frozen", False):
        return
    with style():
        fig.draw_without_rendering()
    fig.set_layout_engine("none")
    fig._scaling_layout_frozen = True  # type: ignore[attr-defined]  # our mark on a matplotlib Figure


def save_figure(fig: Figure, path: str | Path, *, dpi: float | None = None) -> Path:
    """Write ``fig`` to ``path`` (.png, .pdf or .svg, chosen by the suffix) byte-reproducibly, whole: into a
    temporary file beside it, then renamed (a failed write leaves no half-written figure).

    ``dpi`` is a finite positive number (default ``DEFAULT_DPI``), and the figure's pixels at that dpi are
    bounded before drawing (``scaling.core.work.raster``). The layout is fixed at the first save
    (``freeze_layout``): add nothing to a figure after saving it.
    """
    out = Path(path)
    fmt = figure_format(out)
    resolution = DEFAULT_DPI if dpi is None else checks.positive(dpi, "dpi")
    width_in, height_in = (float(v) for v in fig.get_size_inches())
    work.check(work.raster(width_in, height_in, resolution))
    if not out.parent.exists():
        raise ScalingError(f"{out}: directory {out.parent} does not exist")
    freeze_layout(fig)
    tmp = out.with_name(f".{out.name}.tmp")
    with style():
        try:
            fig.savefig(tmp, format=fmt, dpi=resolution, metadata=fixed_metadata(fmt))
            os.replace(tmp, out)
        except OSError as exc:
            raise ScalingError(f"{out}: cannot write figure ({exc.strerror or exc})") from None
        finally:
            tmp.unlink(missing_ok=True)
    return out
