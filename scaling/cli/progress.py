"""Progress on stderr for long library loops (bootstraps, backtests): a bar with an ETA on a terminal, and
a plain line every few seconds when stderr is a file or a pipe (a log, CI), where a bar would not show.

Library functions take a ``progress(done, total)`` callback; this turns it into progress on stderr, so
stdout keeps carrying data only (``--json`` output stays one document).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Callback = Callable[[str, int, int], None]

# Seconds between plain progress lines; $SCALING_PROGRESS_EVERY overrides (0: every update).
PLAIN_EVERY_S = 5.0


def _clock(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class PlainProgress:
    """``update(label, done, total)`` printing at most one line per ``every`` seconds per label, the first
    only once ``every`` seconds have passed (quick work stays silent), and a last line when a label that
    printed finishes."""

    def __init__(self, every: float, write: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.every, self.write, self.clock = every, write, clock
        self.started: dict[str, float] = {}
        self.printed: dict[str, float] = {}
        self.last = clock()  # a label's work began at the previous update (of any label), or here

    def update(self, label: str, done: int, total: int, info: str = "") -> None:
        now = self.clock()
        start = self.started.setdefault(label, self.last)
        self.last = now
        elapsed = now - start
        finished = total > 0 and done >= total
        if finished:
            if label in self.printed:
                self.write(f"{label}: {done}/{total} done in {_clock(elapsed)}")
                del self.printed[label]
            self.started.pop(label, None)
            return
        if now - self.printed.get(label, start) < self.every:
            return
        self.printed[label] = now
        pct = f" ({100 * done / total:.0f}%)" if total > 0 else ""
        eta = f", about {_clock(elapsed / done * (total - done))} left" if 0 < done < total else ""
        self.write(f"{label}: {done}/{total}{pct}, {_clock(elapsed)} elapsed{eta}" + (f", {info}" if info else ""))


def _plain_every() -> float:
    try:
        return max(0.0, float(os.environ.get("SCALING_PROGRESS_EVERY", PLAIN_EVERY_S)))
    except ValueError:
        return PLAIN_EVERY_S


def _stderr_line(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def progress_bar() -> Iterator[Callback]:
    """Yield ``update(label, done, total)``; each label gets its own bar (removed when done)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield PlainProgress(_plain_every(), _stderr_line).update
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


class TrainReporter:
    """Training progress on stderr, rank 0 only: a rich bar on a terminal; off a terminal (a log, SLURM),
    a plain line every few seconds with the latest loss, where a bar would show nothing."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.console = Console(stderr=True, highlight=False)
        self.plain = None if self.console.is_terminal else PlainProgress(_plain_every(), _stderr_line)
        self.progress: Progress | None = None
        self.task: Any = None
        self.phase, self.total = "", 0

    def start(self, phase: str, total: float | None, unit: str) -> None:
        if not self.enabled:
            return
        self.stop()
        self.phase, self.total = phase, int(total or 0)
        if self.plain is not None:
            return
        counter = MofNCompleteColumn() if unit != "s" else TextColumn("{task.completed:.0f}/{task.total:.0f} s")
        self.progress = Progress(TextColumn(f"{phase:<9}"), BarColumn(), counter, TimeElapsedColumn(),
                                 TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=self.console,
                                 transient=False)
        self.progress.start()
        self.task = self.progress.add_task(phase, total=total, info="")

    def update(self, completed: float, info: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=completed, info=info)
        elif self.plain is not None and self.enabled:
            self.plain.update(self.phase, int(completed), self.total, info)

    def note(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, markup=False, highlight=False)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
