"""A ``StudyReport`` as one self-contained HTML page, for sharing a study.

Every figure is a PNG embedded as a ``data:`` URI, the style sheet is inline, and the page has no script and
fetches nothing (no fonts, no links to other sites): it opens offline, from a mail attachment or a file
share, and shows the same thing everywhere. Each section has its headline, its table (numbers formatted for
reading, units by column name), its figure, its notes, and its full text summary folded under "details".
Text from the data (column names, notes) is escaped.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from scaling.core.display import offscreen, readable
from scaling.errors import ScalingError
from scaling.plots.style import png_bytes
from scaling.selection.backtest import RANKING_COLUMNS

if TYPE_CHECKING:
    from scaling.study.report import Section, StudyReport

FIGURE_DPI = 100  # sharp on screen, a few hundred kB a figure
TABLE_ROWS = 30  # rows of a table shown (pandas shows the first and last halves beyond this)
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em; color: #1b1b1b; background: #ffffff; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 2em;
     border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
p.meta, p.left-out { color: #555; } nav ol { columns: 2; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { border: 1px solid #d0d0d0; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; } pre { font-size: 0.78em; overflow-x: auto; background: #f8f8f8;
     padding: 0.8em; } ul.notes { font-size: 0.85em; color: #444; }
"""


def _png(draw: Callable[[], Any]) -> tuple[bytes | None, str]:
    """What ``draw()`` draws (off pyplot) as PNG bytes, or (None, why not)."""
    try:
        with offscreen():
            drawn = draw()
    except ScalingError as exc:
        return None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = drawn if hasattr(drawn, "figure") else next(iter(getattr(drawn, "flat", [drawn])))
    return png_bytes(first.figure, dpi=FIGURE_DPI), ""


def _projection_figure(result: Any) -> Callable[[], Any] | None:
    """The bootstrap distribution of the compute the first answer needs, where the bootstrap priced one."""
    boot = result.bootstrap
    if boot is None or not any(k.endswith("flops") for k in boot.samples):
        return None
    return lambda: boot.plot()


def _parts(s: Section, top: int) -> tuple[pd.DataFrame | None, Callable[[], Any] | None, str, list[str]]:
    """A section's table, its figure (a drawing call), the figure's caption and its notes."""
    r = s.result
    if s.key == "projection":
        notes = [f"{q}: {line}" for q, p in r.projections for line in (p.reason, p.caution) if line]
        caption = "Bootstrap distribution of the compute the first answer needs (resampled runs, refitted)."
        return r.to_frame().drop(columns="caution"), _projection_figure(r), caption, notes
    if s.key == "forms":
        c = r.combined
        caption = "Each form's answer with its interval beside the combined one (stacking weights)."
        if c is None:
            return r.to_frame(), r.plot, caption, []
        return c.to_frame(), r.plot, caption, [c.summary().splitlines()[0], *c.disagreement, *c.notes]
    if s.key == "backtest":
        frame = pd.DataFrame(r.ranking_rows(), columns=list(RANKING_COLUMNS)).set_index("form")
        caption = "Held-out predictions against observations on the common split with the most held-out rows."
        return frame, r.plot, caption, [f"ranked on {r.ranked_on()}", *r.notes]
    if s.key == "iso":
        caption = "The fitted surface over two axes, the target contour, the data and the projection."
        return None, r.plot, caption, []
    frame = r.to_frame()
    caption = "Candidates on the map, coloured by expected shrinkage of the interval per FLOP; top ranks numbered."
    shown = frame.head(top)
    return shown, r.plot, caption, [f"the top {len(shown)} of {len(frame)} candidates", *getattr(r, "notes", ())]


def _table(frame: pd.DataFrame) -> str:
    return str(readable(frame).to_html(max_rows=TABLE_ROWS, na_rep="", border=0, escape=True))


def _section(s: Section, top: int) -> str:
    e = html.escape
    out = [f'<section id="{e(s.key)}"><h2>{e(s.title)}</h2>']
    if not s.ok:
        out.append(f'<p class="left-out">Left out: {e(s.reason)}</p></section>')
        return "\n".join(out)
    out.append(f"<p><strong>{e(s.headline())}</strong> <span class=\"meta\">({s.seconds:.1f} s)</span></p>")
    frame, draw, caption, notes = _parts(s, top)
    if frame is not None and not frame.empty:
        out.append(_table(frame))
    if draw is not None:
        png, why = _png(draw)
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(s.title)}: figure"/>'
                       f"<figcaption>{e(caption)}</figcaption></figure>")
        else:
            out.append(f'<p class="left-out">No figure: {e(why)}</p>')
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{e(str(n))}</li>" for n in notes) + "</ul>")
    if s.key != "iso":
        out.append(f"<details><summary>Full text</summary><pre>{e(str(s.result.summary()))}</pre></details>")
    out.append("</section>")
    return "\n".join(out)


def render(rep: StudyReport) -> str:
    """The page (see the module docstring)."""
    e = html.escape
    st = rep.settings
    data = rep.data
    where = ", ".join(f"{k}={v}" for k, v in data["source"].items() if v is not None) or "a data frame"
    meta = (f"{e(data['y'])} ~ {e(', '.join(data['axes']))} ({e(data['kind'])}), {data['rows']} rows; {e(where)}."
            f" Form {e(st['form'])}; forms compared {e(', '.join(st['forms']))}; {st['n_boot']} resamples per "
            f"bootstrap (seed {st['seed']}); suggestions from {st['suggest_n_boot']} resamples x "
            f"{st['n_outcomes']} outcome(s). Made by scaling {e(str(st['scaling']))} in {rep.seconds:.1f} s.")
    toc = "".join(f'<li><a href="#{e(s.key)}">{e(s.title)}</a>{"" if s.ok else " (left out)"}</li>'
                  for s in rep.sections)
    body = [f"<h1>{e(rep.title)}</h1>", f'<p class="meta">{meta}</p>',
            "<p>Small settings keep this page to seconds: its intervals are rough. Each section's command "
            "(<code>scaling project</code>, <code>compare</code>, <code>backtest</code>, <code>plot iso</code>, "
            "<code>suggest</code>) gives more resamples.</p>",
            f"<nav><ol>{toc}</ol></nav>",
            *(_section(s, int(st["top"])) for s in rep.sections)]
    if rep.notes:
        body.append('<ul class="notes">' + "".join(f"<li>note: {e(n)}</li>" for n in rep.notes) + "</ul>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n"
            f"<title>{e(rep.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body)
            + "\n</body>\n</html>\n")
