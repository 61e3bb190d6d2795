"""Rendering for the CLI: rich tables on stdout, talk on stderr, one JSON document with ``--json``.

stdout carries data only (a table, or exactly one JSON document); warnings and hints go to stderr so
``scaling ... --json | jq`` always parses.

Tables fit the terminal (or ``COLUMNS``) without ever splitting a number or a word: numeric and short cells
never wrap, text cells wrap between words, and when the columns do not fit side by side they are stacked
into several tables that repeat the key column (the first), as many as the width needs. Every command's
tables go through :func:`table`, so these rules hold for all of them.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from scaling.core.direction import direction
from scaling.core.jsonable import jsonable

# Piped output without COLUMNS is read by scripts and files, not a terminal: wide enough for every table.
PIPED_WIDTH = 200
# A cell this short (or a number) never wraps: wrapping "COMPLETED" or "6.11e+22" only makes it unreadable.
SHORT_CELL = 20
# A text column is stacked into the next part rather than squeezed below this width (or its natural width).
TEXT_ROOM = 36
# A word longer than this in a text cell (a path, a long id) may be folded rather than force a wide column.
LONG_WORD = 30
CONTINUED = "(continued)"


# Control characters (C0, DEL, C1) and the bidirectional overrides and isolates that reorder what a terminal
# shows: text from a user's file (a CSV column name, a config value) is printed with these escaped (\x1b,
# \u202e), never raw. Newlines and tabs stay in messages and go in table cells, which are one line each.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_IN_CELL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    c = match.group(0)
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100
                                                                 else f"\\u{ord(c):04x}")


def printable(text: str, *, cell: bool = False) -> str:
    """``text`` with control characters escaped (in a table ``cell``, newlines and tabs too)."""
    return (_CONTROL_IN_CELL if cell else _CONTROL).sub(_escape, text)


class SafeConsole(Console):
    """A rich console that escapes control characters in the strings it prints (``printable``)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


def stdout_console() -> Console:
    """The console of tables: the terminal's width, or $COLUMNS, or 200 columns when piped without it."""
    if os.environ.get("COLUMNS", "").strip().isdigit():
        return SafeConsole(highlight=False)  # rich reads COLUMNS itself, terminal or not
    console = SafeConsole(highlight=False)
    if not console.is_terminal:
        console = SafeConsole(highlight=False, width=PIPED_WIDTH)
    return console


# Rich markup the help texts mean as markup; any other "[...]" is text ("[default: 224]", "[pretrain]").
_STYLE_TAG = r"/?(?:bold|b|dim|italic|i|underline|u)"
_BARE_BRACKET = re.compile(rf"(?<!\\)\[(?!{_STYLE_TAG}\])")


def _escape_brackets(text: str) -> str:
    return _BARE_BRACKET.sub(r"\\[", text)


def reflow_help(doc: str | None) -> str | None:
    """A command's docstring as its --help shows it well: each prose paragraph joined into one line (rich
    wraps it at the terminal's width; left as written, every source line break would show), indented
    paragraphs (the examples) kept line for line, to be pasted, and brackets that are not a style tag
    escaped, so that rich markup does not swallow "[one object per run]"."""
    if not doc:
        return doc
    paragraphs = []
    for para in _escape_brackets(inspect.cleandoc(doc)).split("\n\n"):
        lines = para.splitlines()
        verbatim = para.startswith("\b") or any(line.startswith(" ") for line in lines)
        paragraphs.append(para if verbatim else " ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def reflow_app_help(app: Any) -> None:
    """Reflow the help of every command and group callback of a Typer app, sub-apps included."""
    callbacks = [info.callback for info in app.registered_commands]
    if app.registered_callback is not None:
        callbacks.append(app.registered_callback.callback)
    for func in callbacks:
        if func is not None:
            func.__doc__ = reflow_help(func.__doc__)
    for group in app.registered_groups:
        if group.typer_instance is not None:
            reflow_app_help(group.typer_instance)


def stderr_console() -> Console:
    return SafeConsole(stderr=True, highlight=False)


def print_json(document: dict[str, Any]) -> None:
    """Exactly one JSON document on stdout."""
    print(json.dumps(jsonable(document), indent=2, sort_keys=False))


@dataclass(frozen=True)
class Column:
    """A column of :func:`table`: its header, and whether its cells may wrap between words (None: decided
    from the cells: text longer than SHORT_CELL wraps, numbers and short cells never do)."""

    header: str
    wrap: bool | None = None


def table(title: str | None, columns: Sequence[str | Column], rows: Iterable[Sequence[Any]], *,
          caption: str | None = None, key: int = 1) -> FitTable:
    """A table that fits the console: cells that are not strings are formatted with :func:`fmt_number`;
    ``key`` leading columns are repeated in each part when the columns must be stacked."""
    cols = [Column(printable(c.header, cell=True), c.wrap) if isinstance(c, Column) else Column(printable(c, cell=True))
            for c in columns]
    cells = [[printable(cell if isinstance(cell, str) else fmt_number(cell), cell=True) for cell in r] for r in rows]
    return FitTable(None if title is None else printable(title, cell=True), cols, cells,
                    None if caption is None else printable(caption, cell=True), key)


def _words(text: str) -> list[str]:
    return text.split()


def _longest_word(texts: Iterable[str]) -> int:
    return max((cell_len(w) for t in texts for w in _words(t)), default=0)


def _widest_line(texts: Iterable[str]) -> int:
    return max((cell_len(line) for t in texts for line in t.splitlines()), default=0)


def _break_after(word: str, i: int) -> bool:
    """May a word too long for its column break after word[i]? After a separator, never inside a number:
    not after the comma of a thousands group ("10,564") nor in an exponent ("1e-05")."""
    c = word[i]
    if c == ",":
        group = word[i + 1: i + 5]
        return not (len(group) >= 3 and group[:3].isdigit() and not group[3:].isdigit())
    if c == "-":
        return i > 0 and word[i - 1] not in "eE"
    return c in ";/_@=:&|"


def break_long_words(text: str, width: int) -> str:
    """Words wider than ``width`` (paths, long lists) cut into lines at separators, so that a fold never
    lands inside a number; a word without any separator is cut at the width."""
    if width < 1:
        return text

    def cut(match: re.Match[str]) -> str:
        word, pieces = match.group(0), []
        while cell_len(word) > width:
            at = max((i for i in range(min(width, len(word) - 1)) if _break_after(word, i)), default=width - 1)
            pieces.append(word[: at + 1])
            word = word[at + 1:]
        return "\n".join([*pieces, word])

    return re.sub(r"\S+", cut, text)


class FitTable:
    """A rich renderable: one table when the columns fit the width, else the columns stacked into parts."""

    def __init__(self, title: str | None, columns: list[Column], rows: list[list[str]], caption: str | None,
                 key: int) -> None:
        self.title, self.columns, self.rows, self.caption = title, columns, rows, caption
        self.key = max(0, min(key, len(columns) - 1))
        self.no_wrap: list[bool] = []
        self.natural: list[int] = []
        self.minimum: list[int] = []
        for i, col in enumerate(columns):
            texts = [r[i] for r in rows if i < len(r)]
            widest = _widest_line(texts)
            header_min = max(_longest_word([col.header]), math.ceil(cell_len(col.header) / 3))
            natural = max(cell_len(col.header), widest, 1)
            # Key columns name each row of every part: whole unless very long.
            short = widest <= (LONG_WORD if i < self.key else SHORT_CELL)
            no_wrap = short if col.wrap is None else not col.wrap
            if no_wrap:
                minimum = max(widest, header_min)
            else:
                minimum = max(min(_longest_word(texts), LONG_WORD), header_min, min(natural, 12))
            self.no_wrap.append(no_wrap)
            self.natural.append(natural)
            self.minimum.append(min(minimum, natural))

    @staticmethod
    def _frame(n: int) -> int:
        """Width of borders and padding of an n-column table (one space each side, n + 1 rules)."""
        return 3 * n + 1

    def _fits(self, idx: list[int], width: int) -> bool:
        return sum(self.minimum[i] for i in idx) + self._frame(len(idx)) <= width

    def _fits_well(self, idx: list[int], width: int) -> bool:
        """Fits with text columns at least TEXT_ROOM wide: packing parts by this keeps notes readable."""
        room = [self.minimum[i] if self.no_wrap[i] else max(self.minimum[i], min(self.natural[i], TEXT_ROOM))
                for i in idx]
        return sum(room) + self._frame(len(idx)) <= width

    def _widths(self, idx: list[int], width: int) -> list[int]:
        """The minimum of each column, and the room left shared towards each column's natural width."""
        widths = [self.minimum[i] for i in idx]
        room = width - self._frame(len(idx)) - sum(widths)
        wants = [self.natural[i] - self.minimum[i] for i in idx]
        while room > 0 and any(wants):
            total = sum(wants)
            given = 0
            for j, want in enumerate(wants):
                share = min(want, max(1, room * want // total)) if want else 0
                share = min(share, room - given)
                widths[j] += share
                wants[j] -= share
                given += share
            if given == 0:
                break
            room -= given
        return widths

    def parts(self, width: int) -> list[list[int]]:
        """Column indices of each part: all in one when they fit, else key columns + as many as fit, repeated."""
        everything = list(range(len(self.columns)))
        if self._fits_well(everything, width):
            return [everything]
        keys, rest = everything[: self.key], everything[self.key:]
        parts: list[list[int]] = []
        current: list[int] = []
        for i in rest:
            if current and not self._fits_well(keys + current + [i], width):
                parts.append(keys + current)
                current = []
            current.append(i)
        if current:
            parts.append(keys + current)
        return parts

    def _render_part(self, idx: list[int], width: int) -> Table:
        t = Table(show_edge=True)
        for i, w in zip(idx, self._widths(idx, width), strict=True):
            # The width holds every unwrappable cell whole; headers still wrap between their words.
            t.add_column(Text(self.columns[i].header), width=w, overflow="fold")
        widths = dict(zip(idx, self._widths(idx, width), strict=True))
        for r in self.rows:
            t.add_row(*[Text(break_long_words(r[i], widths[i])) if i < len(r) else Text("") for i in idx])
        return t

    def _records(self) -> Table:
        """Last resort for very narrow widths: one field per line, each record under its key."""
        t = Table(show_header=False, show_edge=True)
        t.add_column(no_wrap=False, overflow="fold")
        t.add_column(no_wrap=False, overflow="fold")
        for n, r in enumerate(self.rows):
            for i, col in enumerate(self.columns):
                t.add_row(Text(col.header), Text(r[i] if i < len(r) else ""),
                          end_section=(i == len(self.columns) - 1 and n < len(self.rows) - 1))
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self.title:
            yield Text(self.title, style="italic")
        parts = self.parts(width)
        if any(not self._fits(p, width) for p in parts):
            yield self._records()
        else:
            for n, idx in enumerate(parts):
                if n:
                    yield Text(f"{self.title or ''} {CONTINUED}".strip(), style="italic")
                yield self._render_part(idx, width)
        if self.caption:
            yield Text(self.caption, style="dim")


def fmt_number(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    x = float(x)
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def fmt_params(n: float | None) -> str:
    """2.5e9 -> '2.50B', 631916800 -> '632M' (parameters)."""
    if n is None or not math.isfinite(n):
        return "-"
    if abs(n) >= 1e15:  # beyond trillions a suffix hides the magnitude
        return f"{n:.2e}"
    for scale, unit in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")]:
        if abs(n) >= scale:
            v = n / scale
            return f"{v:.3g}{unit}" if v < 100 else f"{v:.0f}{unit}"
    return f"{n:.0f}"


def fmt_hours(h: float | None) -> str:
    if h is None or not math.isfinite(h):
        return "-"
    if h >= 1e9:
        return f"{h:.2e} h"
    return f"{h:,.0f} h" if h >= 100 else f"{h:.3g} h"


def fmt_px(px: float | None) -> str:
    """Image side in px; far projections (millions of px and more) in scientific notation."""
    if px is None or not math.isfinite(px):
        return "-"
    return f"{px:.0f} px" if px < 1e6 else f"{px:.2e} px"


def fmt_percent(v: float | None) -> str:
    return "-" if v is None or not math.isfinite(v) else f"{100 * v:.1f}%"


def fmt_value(kind: str) -> Any:
    """The formatter of a value of ``kind``: a percent for fractions (accuracies), a number otherwise."""
    return fmt_percent if direction(kind).is_fraction else fmt_number


def fmt_flops(f: float | None) -> str:
    return "-" if f is None or not math.isfinite(f) else f"{f:.2e}"


def _last_digit(se: float) -> int:
    """Decimal exponent of the last digit worth showing: the standard error's second significant digit."""
    return math.floor(math.log10(se)) - 1


def _fixed_or_sci(value: float, place: int) -> str:
    rounded = round(value / 10.0**place) * 10.0**place
    if rounded == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(rounded)))
    if -3 <= magnitude < 6:
        return f"{rounded:.{max(0, -place)}f}"
    return f"{rounded:.{max(0, magnitude - place)}e}"


def fmt_estimate(value: float | None, se: float | None) -> str:
    """An estimate rounded to the precision its standard error supports (28.79 with SE 122.4 -> '30'), at
    most 8 significant digits; without a usable standard error, six significant digits."""
    if value is None or not math.isfinite(value):
        return fmt_number(value) if value is None or math.isnan(value) else ("inf" if value > 0 else "-inf")
    if se is None or not math.isfinite(se) or se <= 0:
        return f"{value:.6g}"
    place = _last_digit(float(se))
    if value != 0:  # past 8 significant digits a standard error reflects float precision, not the data
        place = max(place, math.floor(math.log10(abs(value))) - 7)
    return _fixed_or_sci(float(value), place)


def fmt_stderr(se: float | None) -> str:
    """A standard error to two significant digits (122.4 -> '120', 0.03741 -> '0.037')."""
    if se is None or not math.isfinite(se) or se <= 0:
        return fmt_number(se)
    return _fixed_or_sci(float(se), _last_digit(float(se)))


def fmt_interval(lo: float | None, hi: float | None, fmt: Any = fmt_number) -> str:
    def one(v: float | None) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return "inf" if math.isinf(v) else fmt(v)

    return f"{one(lo)} .. {one(hi)}"


def render_bootstrap(boot: Any, summaries: dict[str, Any], title: str, fmt_for: Any = None,
                     limit_name: str = "ceiling") -> None:
    """One table of estimate, median and intervals; notes and failures on stderr. The library's "ceiling"
    quantity is labelled by kind: a loss falls to a floor."""
    rows = []
    for name, s in summaries.items():
        fmt = fmt_for(name) if fmt_for is not None else fmt_number
        est = "-" if s.estimate is None else ("inf" if math.isinf(s.estimate) else fmt(s.estimate))
        med = "inf" if math.isinf(s.median) else (fmt(s.median) if not math.isnan(s.median) else "-")
        cells = [fmt_interval(lo, hi, fmt=fmt) for lo, hi in (s.intervals[lvl] for lvl in boot.levels)]
        label = name.replace("ceiling", limit_name)
        rows.append([label, est, med, *cells, f"{s.n} of {boot.n_requested}",
                     str(s.n_infinite) if s.n_infinite else ""])
    cols = ["quantity", "estimate", "median", *[f"{100 * lvl:g}% interval" for lvl in boot.levels],
            "resamples used", "unbounded"]
    group = ", ".join(boot.group) if boot.group else "single rows"
    caption = (f"{boot.n_ok} of {boot.n_requested} resamples fitted (seed {boot.seed}; resampling {boot.n_groups} "
               f"groups by {group}; refits: {', '.join(f'{k} {v}' for k, v in boot.paths.items())})")
    stdout_console().print(table(title, cols, rows, caption=caption))
    for note in boot.notes:
        stderr_console().print(f"note: {note}", markup=False, soft_wrap=True)
