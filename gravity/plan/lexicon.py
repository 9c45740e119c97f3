r"""Shared vocabulary of the phrase parser: regex fragments that several readers build on.

Fragments are pattern strings, composed into the readers' patterns in :mod:`gravity.plan.hint`;
they match normalised text (:func:`gravity.plan.normalise.normalize`: lower case, digits for
numbers) in which ``\x00`` fills the spans an earlier reader took. :func:`alt` writes an
alternation from a word list (for the readers and the prompt's stem aliases alike).
:data:`SECTION_WORDS` and :data:`SCENE_NOUN` name song sections and the whole scene, for the
prompt's clause scopes and :mod:`gravity.plan.scene_words`; :func:`section_of` maps a span to
its :data:`gravity.vocab.SECTIONS` name.
"""

from __future__ import annotations

import re

__all__ = [
    "DIRNUM",
    "DIRW",
    "DIRWORD",
    "END",
    "HALF",
    "HARD",
    "HEAD",
    "ME",
    "SIDE_AHEAD",
    "SLIGHT",
    "SPAN",
    "UN",
    "WIDE",
    "N",
    "SCENE_NOUN",
    "SECTION_WORDS",
    "alt",
    "section_of",
]


def alt(words: str) -> str:
    """Regex alternation of space-separated alternatives; ``_`` = whitespace, ``_?`` = optional."""
    alts = (w.replace("_?", r"\s*").replace("_", r"\s+") for w in words.split())
    return "(?:" + "|".join(alts) + ")"


N = r"[-+]?\d{1,6}(?:\.\d{1,4})?"  # a number, maybe signed
UN = r"(?<![\d.])\d{1,6}(?:\.\d{1,4})?"  # an unsigned number, not the tail of another
ME = r"(?:me|you|us|the\s+listener)"  # the listener
HEAD = r"(?:(?:my|your|the|our)\s+heads?)"  # the listener's head
# how much: slight, half, wide, hard (to a side 20, 45, 60 and 90 deg; SLIGHT also for height
# and distance: "slightly above", "slightly further")
SLIGHT = r"(?:very\s+|just\s+)?" + alt(
    "slightly a_(?:little_|tiny_)?bit a_little a_touch a_tad a_hair a_smidge just_off barely "
    "marginally subtly mildly not_too_far not_all_the_way not_fully not_hard not_too "
    "a_few_degrees nudged just touch bit little"
)
HALF = alt("half_?way half partly partially somewhat moderately semi part_way")
WIDE = alt("wide wider mostly pretty_far quite_far well quite")
HARD = alt(
    "hard_panned panned_hard hard fully full extremely extreme really_far very_far far "
    "all_the_way way_over way completely totally entirely dead maximum max 100_?% "
    "as_far_as_possible directly straight due exactly"
)
# no side or height word follows: "far" is a distance, "far left" a direction
SIDE_AHEAD = r"(?!\s+(?:to\s+(?:the\s+)?)?(?:left|right|up|above|over|below|down)\b)"
# where a phrase ends: punctuation, a taken span, a conjunction or a time phrase
END = (
    r"(?=\s*(?:$|[,;.!?\x00]|\b(?:and|then|every|over|within|across|slowly|quickly)\b"
    r"|\bin\s+\d))"
)
# a direction as one place ("front left"), or a clock position or signed degrees
DIRWORD = (
    r"(?:(?:hard|far)\s+)?(?:the\s+)?(?:(?:(?:front|back|rear)\s+)?(?:left|right)"  # "front left": one place
    r"|front|back|rear|behind|cent(?:er|re)|middle)(?:\s+side)?"
)
DIRNUM = r"\d{1,2}(?::\d\d)?\s+oclock|[-+]?\d{1,3}\s*degrees"
DIRW = f"{DIRWORD}|{DIRNUM}"
SPAN = r"[^,;.!?\x00]{1,40}?"  # an endpoint phrase inside "from X to Y"

# the song sections of gravity.vocab.SECTIONS (less "full") and the words that name them; the
# ones that are also everyday verbs or nouns ("drop the bass", "build up") need a determiner
SECTION_WORDS: dict[str, str] = {
    "pre_chorus": r"pre\s*choruse?s?",
    "post_chorus": r"post\s*choruse?s?",
    "chorus": r"choruse?s?|refrains?",
    "intro": r"intros?",
    "verse": r"verses?",
    "breakdown": r"break\s*downs?",
    "interlude": r"interludes?",
    "outro": r"outros?",
    "hook": r"(?<=the\s)hooks?",
    "bridge": r"(?<=the\s)bridges?|middle\s+8",
    "build": r"(?<=the\s)build(?:\s*ups?)?|build\s*ups?",
    "drop": r"(?<=the\s)drops?",
    "solo": r"(?<=the\s)solos?",
}
_AFTER_THE = r"(?<=the\s)"
_SECTION_RX = re.compile("|".join(f"(?P<{k}>{v.replace(_AFTER_THE, '')})" for k, v in SECTION_WORDS.items()))
# the whole scene as a subject ("make the mix huge"); "the whole mix" names every stem instead
SCENE_NOUN = r"(?:the\s+)?(?:mix|scene|space|soundstage|sound\s*field|song|track|record|overall\s+sound)"


def section_of(text: str) -> str | None:
    """The vocabulary name of the section a whole word span names ("pre chorus" -> "pre_chorus")."""
    m = _SECTION_RX.fullmatch(re.sub(r"^(?:the|each|every|this|that|our)\s+", "", text.strip()))
    return None if m is None else m.lastgroup
