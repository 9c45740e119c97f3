"""Text normalisation for the phrase parser, and the scan that uses each word once.

:func:`normalize` lower-cases, folds unicode quotes, dashes and degree signs, turns number words
into digits ("forty five" -> "45", "half past 2" -> "2:30") and rewrites the few idioms the
readers would misread ("right above me" -> "directly above me"). Every reader in
:mod:`gravity.plan.hint` and :mod:`gravity.plan.prompt` sees only normalised text. :class:`Scan`
holds one normalised clause and blanks each span a reader takes, so "far left" is a direction
and "far" alone a distance.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, Callable

__all__ = ["MAX_CHARS", "Scan", "normalize"]

log = logging.getLogger(__name__)

MAX_CHARS = 20000  # longer input is truncated (characters)
_rx = re.compile


_CHAR_MAP = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2212": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u00ba": "\u00b0",
        "\u02da": "\u00b0",
    }
)
_UNITS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_NUMVAL = {
    **{w: i for i, w in enumerate(_UNITS)},
    **{w: 20 + 10 * i for i, w in enumerate(_TENS)},
    "fourty": 40,
    "hundred": 100,
}
_NW = "|".join(sorted(_NUMVAL, key=len, reverse=True))
_NUMRUN = _rx(rf"\b(?:{_NW})\b(?:\s+(?:and\s+)?(?:{_NW})\b)*")
_ONE_IS_NUMBER = _rx(
    r"\s*(?:oclock|degrees|:|m\b|metres?|meters?|bars?|beats?|feet|foot|ft"
    r"|yards?)"
)
_CLOCK_WORDS = _rx(r"\b(half|quarter)\s+(past|to)\s+(\d{1,2})\b")
# "right" as an adverb ("right above me") unless a side context precedes it ("to the right").
_ADVERB_RIGHT = (
    "".join(
        rf"(?<!\b{w.replace('_', ' ')} )"
        for w in (
            "to the on at hard far from my your front rear back or bit little touch more fully way "
            "left slightly towards toward in left_and front_and back_and rear_and"
        ).split()
    )
    + r"\bright\s+"
)
_NORM_SUBS = tuple(
    (_rx(a), b)
    for a, b in (
        (r"(?<=[a-z0-9])-(?=[a-z])", " "),
        (r"(?<=[a-z])-(?=[0-9])", " "),
        (r"\bo\s*'?\s*clock\b", " oclock"),
        (r"\s*\u00b0\s*", " degrees "),
        (r"(?<![a-z])(?:degs?|degrees?)(?![a-z])", " degrees "),
        (r"\bupfront\b", "up front"),
        (r"\b(left|right)ish\b", r"\1 ish"),
        (r"[^\w\s.,;:!?'%+\-/&]", " "),
        (_ADVERB_RIGHT + r"(?=(?:above|below|over|under|beneath|on\s+top|overhead)\b)", "directly "),
        (
            _ADVERB_RIGHT + r"(?=(?:in\s+front|behind|next|here|there|at|beside|by|up|into|against|"
            r"away|now|in\s+(?:my|your|the))\b)",
            "",
        ),
        (r"\b(?:about|around|approximately|approx|roughly|circa|some|like|maybe)\s+(?=[-+]?\d)", ""),
        (
            r"\b(?:the\s+right\s+(?=(?:amount|way|balance|level|time|feel|vibe|kind|sort|thing|choice)"
            r"\b)|all\s+right\b(?!\s+(?:side|of))|(?:bring|brings|brought|come|comes|came|coming|kicks?)"
            r"\s+(?:it\s+|them\s+)?back\b(?!\s+(?:and\s+forth|left|right|of|to)))",
            " ",
        ),
        (r"\bhalf\s+(?:a\s+)?(?=(?:metres?|meters?)\b)", "0.5 "),
        (r"\b(?:a|an|one)\s+(?=(?:metres?|meters?|foot|yard)\b)", "1 "),
        (r"\bleft\s+(?=(?:alone|untouched|as\s+is|unchanged|where|in\s+place)\b)", ""),
        (r"[ \t]+", " "),
    )
)


def _num_words(m: re.Match[str]) -> str:
    if (
        m.group(0) == "one"
        and not _ONE_IS_NUMBER.match(m.string, m.end())
        and not m.string[: m.start()].endswith("at ")
    ):
        return "one"  # a pronoun: "this one on the left"
    total = 0
    for w in m.group(0).split():
        if w == "hundred":
            total = max(total, 1) * 100
        elif w != "and":
            total += _NUMVAL[w]
    return str(total)


def _clock_words(m: re.Match[str]) -> str:
    h = int(m.group(3))
    if m.group(2) == "to":
        return f"{(h - 2) % 12 + 1}:45"
    return f"{h}:{30 if m.group(1) == 'half' else 15}"


def normalize(text: Any) -> str:
    """Lower-case, fold unicode and punctuation, turn number words into digits."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > MAX_CHARS:
        log.warning("text of %d characters truncated to %d", len(text), MAX_CHARS)
        text = text[:MAX_CHARS]
    text = unicodedata.normalize("NFKC", text.translate(_CHAR_MAP)).lower()
    for rx, rep in _NORM_SUBS:
        text = rx.sub(rep, text)
    return _CLOCK_WORDS.sub(_clock_words, _NUMRUN.sub(_num_words, text)).strip()


_GAP = "\x00"  # fills consumed spans: never in normalised text, neither space nor word char
_BLANK = " " + _GAP


class Scan:
    """A normalised clause whose matched spans get blanked, so each word is used once."""

    __slots__ = ("src", "work", "spans")

    def __init__(self, text: str) -> None:
        self.src, self.work = text, text
        self.spans: list[tuple[int, str]] = []

    def find(self, rx: re.Pattern[str], ok: Callable[[re.Match[str]], bool] | None = None) -> re.Match[str] | None:
        """The first match of ``rx`` in the words not yet taken (and accepted by ``ok``), else None."""
        m = rx.search(self.work)  # most readers find nothing: one search, no iterator
        if m is None or (m.group(0).strip(_BLANK) and (ok is None or ok(m))):
            return m
        for later in rx.finditer(self.work, m.end() + (m.end() == m.start())):
            if later.group(0).strip(_BLANK) and (ok is None or ok(later)):
                return later
        return None

    def take(self, m: re.Match[str] | None, group: int | str = 0) -> re.Match[str] | None:
        """Blank out ``group`` of match ``m`` so no later reader uses it; returns ``m`` (None passes through)."""
        if m is not None:
            s, e = m.span(group)
            self.spans.append((s, self.src[s:e].strip()))
            self.work = self.work[:s] + _GAP * (e - s) + self.work[e:]
        return m

    def take_all(self, rx: re.Pattern[str]) -> list[re.Match[str]]:
        """Blank every match of ``rx`` in the words not yet taken, in one pass; returns the matches."""
        found = [m for m in rx.finditer(self.work) if m.group(0).strip(_BLANK)]
        if found:
            parts, last = [], 0
            for m in found:
                s, e = m.span()
                self.spans.append((s, self.src[s:e].strip()))
                parts += [self.work[last:s], _GAP * (e - s)]
                last = e
            self.work = "".join(parts) + self.work[last:]
        return found

    def gap_before(self, pos: int, n: int = 3) -> bool:
        """Whether the ``n`` characters before ``pos`` are only spaces or taken text."""
        return not self.work[max(0, pos - n) : pos].strip(" " + _GAP)
