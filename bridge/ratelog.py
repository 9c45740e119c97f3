"""Rate-limited, non-blocking problem reports for realtime threads.

The frame thread and the OSC listener must never wait on logging (a slow terminal, a full pipe).
They call :meth:`RateLimitedLog.report`, which only bumps a counter and, at most once per
``interval_s`` per kind, puts the (unformatted) record on a bounded queue. A housekeeping thread
calls :meth:`RateLimitedLog.drain` to format and hand the records to :mod:`logging`.
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any, Callable

__all__ = ["RateLimitedLog"]


class RateLimitedLog:
    """Count problems by kind; log each kind at most once per interval, off the caller's thread.

    Parameters
    ----------
    logger : logging.Logger
        Where drained records go.
    interval_s : float
        Minimum seconds between two records of the same kind.
    maxsize : int
        Bound of the hand-over queue; records beyond it are dropped (and counted).
    max_kinds : int
        Bound on distinct kinds; further kinds are folded into ``"other"`` so hostile input
        cannot grow memory.
    clock : callable
        Monotonic clock in seconds.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval_s: float = 10.0,
        maxsize: int = 256,
        max_kinds: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._interval = float(interval_s)
        self._queue: queue.SimpleQueue[tuple[int, str, str, tuple[Any, ...]]] = queue.SimpleQueue()
        self._maxsize = maxsize
        self._pending = 0
        self._max_kinds = max_kinds
        self._clock = clock
        self._last: dict[str, float] = {}
        self._reported: dict[str, int] = {}
        self.counts: dict[str, int] = {}
        """Problems seen so far, by kind (read freely; written by the reporting threads)."""
        self.dropped = 0

    def report(self, kind: str, fmt: str, *args: Any, level: int = logging.WARNING) -> None:
        """Count one problem of ``kind``; queue a log record if this kind is due.

        Cheap and non-blocking: no formatting, no I/O. ``fmt % args`` is formatted by
        :meth:`drain`. Keep ``kind`` to a fixed vocabulary (never an address from the wire).
        """
        counts = self.counts
        if kind not in counts and len(counts) >= self._max_kinds:
            kind = "other"
        counts[kind] = counts.get(kind, 0) + 1
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._interval:
            return
        self._last[kind] = now
        if self._pending >= self._maxsize:
            self.dropped += 1
            return
        self._pending += 1
        self._queue.put((level, kind, fmt, args))

    def drain(self) -> int:
        """Log every queued record (call from a non-realtime thread); returns how many."""
        n = 0
        while True:
            try:
                level, kind, fmt, args = self._queue.get_nowait()
            except queue.Empty:
                return n
            self._pending -= 1
            total = self.counts.get(kind, 0)
            since = total - self._reported.get(kind, 0)
            self._reported[kind] = total
            try:
                text = fmt % args if args else fmt
            except (TypeError, ValueError):
                text = f"{fmt} {args!r}"
            more = f" [{kind}: {since - 1} more like it since the last report, {total} in all]" if since > 1 else ""
            self._logger.log(level, "%s%s", text, more)
            n += 1

    def total(self) -> int:
        """All problems counted so far, every kind together."""
        return sum(self.counts.values())
