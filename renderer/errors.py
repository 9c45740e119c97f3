"""The renderer's one exception type."""

from __future__ import annotations

from gravity.errors import GravityError

__all__ = ["RenderError"]


class RenderError(GravityError, ValueError):
    """A render cannot start or finish.

    A missing or unreadable stem, a stem the scene names but no file provides, a bad SOFA
    file, an unwritable output, non-finite samples.
    The message names the file (or scene object) and says what to fix. Subclasses
    :class:`ValueError` (bad input) and :class:`gravity.errors.GravityError` (so the CLI prints
    it as one clear line).
    """
