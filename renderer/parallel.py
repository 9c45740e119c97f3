"""Hop ranges rendered on several cores.

numpy's element-wise loops, scipy's FFTs and its sparse products release the GIL, so plain
threads share the work of one block: each thread renders a contiguous range of hops. A hop's
arithmetic never depends on the range it falls in, so the output is bit-identical for any
number of threads (tested).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

__all__ = ["default_threads", "for_ranges", "submit"]

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
#: Most threads any renderer uses (the pool is shared by every renderer of the process).
MAX_THREADS = 8


def default_threads() -> int:
    """Threads for ``RenderConfig(threads=0)``: the CPU cores this process may use, <= 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, n))


def _get_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="gravity-render")
        return _pool


def for_ranges(fn: Callable[[int, int], None], n: int, threads: int, min_size: int) -> None:
    """Call ``fn(start, stop)`` over contiguous ranges covering ``range(n)``.

    Parameters
    ----------
    fn : callable
        Work on items ``start .. stop - 1``; ranges never overlap, so ``fn`` may write its own
        slice of a shared output array.
    n : int
        Number of items (hops).
    threads : int
        Threads to use at most (1 = run in the calling thread).
    min_size : int
        Fewest items per range: below this, threading costs more than it saves.
    """
    k = max(1, min(threads, n // max(1, min_size)))
    if k == 1:
        fn(0, n)
        return
    bounds = [round(i * n / k) for i in range(k + 1)]
    futures = [_get_pool().submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:], strict=True)]
    fn(bounds[0], bounds[1])  # the caller's thread takes the first range
    for f in futures:
        f.result()  # re-raises a worker's exception here


def submit(fn: Callable[..., Any], *args: Any) -> Future:
    """Run ``fn(*args)`` on the shared pool (work that releases the GIL, such as decoding the
    next chunk of stems while the engine renders this one); ``result()`` re-raises its error.
    """
    return _get_pool().submit(fn, *args)
