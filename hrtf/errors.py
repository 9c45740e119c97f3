"""Error type raised by the :mod:`hrtf` package."""

from __future__ import annotations

__all__ = ["HRTFError"]


class HRTFError(ValueError):
    """An HRTF file or HRTF data set is unusable.

    Messages start with the file name and name the offending SOFA field, e.g.
    ``"foo.sofa: Data.IR has 1 receiver, expected 2 (left, right)"``.
    """
