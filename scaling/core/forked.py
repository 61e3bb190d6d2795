"""Independent work split into chunks and run in forked processes, in order, with progress.

The bootstrap (``scaling.uncertainty.bootstrap``) and the preposterior loop of ``scaling.suggest`` share this. Workers
read their inputs from a module-level dict the caller fills before forking, so nothing large is pickled.
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing.context import BaseContext
from typing import TypeVar

T = TypeVar("T")


def fork_context(workers: int, n: int, min_items: int) -> BaseContext | None:
    """A fork context when ``workers`` > 1 and there are at least ``min_items`` items; None: run in process.

    Only fork: the workers must see the caller's module-level job state without pickling it."""
    if workers <= 1 or n < min_items:
        return None

    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None


def map_chunks(fn: Callable[[int, int], list[T]], n: int, chunk: int, workers: int, ctx: BaseContext | None,
               progress: Callable[[int, int], None] | None = None) -> list[T]:
    """``fn(start, stop)`` over ``range(0, n, chunk)`` in ``workers`` processes; the results concatenated in
    order (the same as one process), ``progress(done, n)`` as chunks finish. Without a fork context
    (``fork_context`` said no) the items run here one at a time, with progress after each."""
    if ctx is None:
        out: list[T] = []
        for i in range(n):
            out += fn(i, i + 1)
            if progress is not None:
                progress(i + 1, n)
        return out
    results: dict[int, list[T]] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {pool.submit(fn, s, min(s + chunk, n)): s for s in range(0, n, chunk)}
        done = 0
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            done += len(results[futures[fut]])
            if progress is not None:
                progress(done, n)
    return [item for s in sorted(results) for item in results[s]]
