"""Tables of the compute-optimal methods (``scaling project --method``) and of the IsoFLOP consistency check
of a parametric allocation: rendering only."""

from __future__ import annotations

from typing import Any

from scaling.cli.render import fmt_interval, fmt_number, stderr_console, stdout_console, table


def check_cell(check: Any) -> str:
    """The IsoFLOP check in one table cell: 'fires (-0.18 dec)', 'passes (+0.01 dec)' or 'not made'."""
    if check is None:
        return "-"
    if not check.made:
        return "not made"
    return f"{'fires' if check.fires else 'passes'} ({check.bias_decades:+.2f} dec)"


def print_check(check: Any, label: str = "") -> None:
    """The check's sentence on stdout (a finding of the answer, not a note)."""
    if check is not None:
        stdout_console().print(f"{label}{check.verdict}", markup=False)


def render_methods(result: Any) -> None:
    """One row per method: N*, D*, the exponents a and b, each with its widest interval; the consistency
    check's sentence; methods without an answer and notes on stderr."""
    level = max(result.levels)
    n_axis, d_axis = result.axes
    rows = []
    for a in result.answers:
        if not a.available:
            rows.append([a.method, *["-"] * 8, "-", "no answer"])
            continue
        cells = []
        for q in ("n_opt", "d_opt", "a", "b"):
            lo, hi = a.intervals[q].intervals[level] if q in a.intervals else (None, None)
            cells += [fmt_number(a.estimates.get(q)), fmt_interval(lo, hi)]
        rows.append([a.method, *cells, f"{a.n_ok}/{a.n_boot}" if a.n_boot else "-",
                     check_cell(a.consistency)])
    pct = f"{100 * level:g}%"
    cols = ["method", f"{n_axis}*", pct, f"{d_axis}*", pct, "a", pct, "b", pct, "resamples", "IsoFLOP check"]
    cost = f" under {result.cost_model['formula']}" if result.cost_model else ""
    caption = (f"a, b: exponents of {n_axis}* ~ C^a and {d_axis}* ~ C^b. Intervals: {pct} bootstrap percentile "
               f"({'; '.join(f'{a.method}: {a.resampling}' for a in result.answers if a.resampling)}).")
    stdout_console().print(table(result.title() + cost, cols, rows, caption=caption))
    print_check(result.consistency, "parametric: ")
    err = stderr_console()
    for a in result.answers:
        if not a.available:
            err.print(f"{a.method}: no answer: {a.reason}", markup=False, soft_wrap=True)
        for note in a.notes:
            err.print(f"{a.method}: note: {note}", markup=False, soft_wrap=True)
