"""Gravity's exception tree: every error names the file and the JSON path it is about."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GravityError", "Issue", "ValidationError", "RuleConflictError"]


class GravityError(Exception):
    """Base class of every error Gravity raises on purpose."""


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
        lines = [i.format(source) for i in self.issues]
        super().__init__("\n".join(lines) if lines else f"{source}: invalid")


class RuleConflictError(ValidationError):
    """The request's hard rules cannot all hold at once (e.g. two anchors at one spot plus a
    separation rule between them).
    """
