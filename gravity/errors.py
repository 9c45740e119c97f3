"""Gravity's exception tree: every error names the file and the JSON path it is about.

Errors quote user values with :func:`quote`: at most about :data:`QUOTE_LIMIT` characters of
them, so a megabyte hint or a 4000-digit number never floods a terminal or a log.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass

__all__ = [
    "GravityError",
    "UsageError",
    "Issue",
    "ValidationError",
    "RuleConflictError",
    "quote",
    "clip",
    "QUOTE_LIMIT",
    "MAX_ISSUES_SHOWN",
]

QUOTE_LIMIT = 200  # characters of an offending value an error message shows
MAX_ISSUES_SHOWN = 20  # a ValidationError's message lists this many issues, then a count of the rest


class _Short(reprlib.Repr):
    """``reprlib`` with a bound on integers too (``repr`` of a 5000-digit int raises ValueError)."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 3 * self.maxlong:  # ~0.3 digits per bit: more digits than are shown
            return f"<integer of about {int((x.bit_length() - 1) * 0.30103) + 1} digits>"
        return super().repr_int(x, level)


def clip(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` as it is when short, else its first ``limit`` characters and its length (for a
    value shown without quotes, e.g. ``--set n_train=abc``).
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for an error message, shortened to about ``limit`` characters.

    A short value reads exactly as ``repr`` (so ``f"{quote(v)}"`` replaces ``f"{v!r}"``); a long
    string shows its first ``limit`` characters and its length, a long container its first items
    (``reprlib``), a huge integer its size in digits. Never raises.

    Examples
    --------
    >>> quote("slightly left")
    "'slightly left'"
    >>> quote("a" * 1000, limit=5)
    "'aaaaa'... (1,000 characters)"
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value):,} characters)"
    short = _Short()
    short.maxstring = short.maxother = max(limit // 2, 20)
    short.maxlong = limit
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 8
    short.maxlevel = 4
    try:
        text = short.repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit + 20 else text[:limit] + "..."


class GravityError(Exception):
    """Base class of every error Gravity raises on purpose."""


class UsageError(GravityError):
    """A command-line argument is wrong; the CLI exits 2, argparse's code for a usage error."""

    exit_code = 2


@dataclass(frozen=True)
class Issue:
    """One problem found in a document.

    Attributes
    ----------
    path : str
        JSON path of the offending value, e.g. ``stems[2].band_energy.low`` (``$`` = root).
    message : str
        What is wrong and, where possible, how to fix it.
    rule : str
        The schema keyword or hard rule that flagged it (``type``, ``enum``, ``anchor`` ...).
    """

    path: str
    message: str
    rule: str = ""

    def format(self, source: str = "") -> str:
        """One line: ``source: path: message [rule]`` (the source and rule when known)."""
        where = f"{source}: " if source else ""
        tag = f" [{self.rule}]" if self.rule else ""
        return f"{where}{self.path}: {self.message}{tag}"


class ValidationError(GravityError, ValueError):
    """A request or scene failed validation; ``issues`` lists every problem found."""

    def __init__(self, issues: list[Issue], source: str = "") -> None:
        self.issues = list(issues)
        self.source = source
        lines = [i.format(source) for i in self.issues[:MAX_ISSUES_SHOWN]]
        if len(self.issues) > MAX_ISSUES_SHOWN:
            lines.append(f"{source}: ... and {len(self.issues) - MAX_ISSUES_SHOWN} more issues")
        super().__init__("\n".join(lines) if lines else f"{source}: invalid")


class RuleConflictError(ValidationError):
    """The request's hard rules cannot all hold at once (e.g. two anchors at one spot plus a
    separation rule between them).
    """
