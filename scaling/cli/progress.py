"""A progress bar on stderr for long library loops (bootstraps, backtests), off when stderr is no terminal.

Library functions take a ``progress(done, total)`` callback; this turns it into a rich progress bar, so
stdout keeps carrying data only (``--json`` output stays one document).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

Callback = Callable[[str, int, int], None]


@contextmanager
def progress_bar() -> Iterator[Callback]:
    """Yield ``update(label, done, total)``; each label gets its own bar (removed when done)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda label, done, total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update
