"""Scene-wide words: adjectives that describe the whole scene (or a section), not one stem.

:func:`parse_scene_words` reads "make the chorus huge and enveloping", "slowly drifting, vast
space", "intimate and dry" into four signed amounts in [-1, +1] that a planner turns into
measurable changes -- coverage, width, rear and height (``envelop``), distance (``distance``),
reverb send (``wet``) and motion speed and count (``motion``). Practice behind the axes:
Dolby's music perception notes and Apple Music's spatial-audio guide (a big, enveloping mix
uses the sides, rear and height; an intimate one stays narrow and in front), depth coherent
with reverb (a far scene is a wet one), and motion used sparingly ("drifting" is slow motion).

Only clauses about the scene are read (:func:`gravity.plan.prompt.scene_clauses`): clauses
without a subject, and clauses about "everything", "the mix", "the scene" or a section. A
clause about stems ("the pads wide") is a placement, not a scene word. A clause that names a
section ("make the chorus huge", "everything wide in the drop") counts only when ``section``
is that section; with ``section`` None such a clause is ignored.

Value table
-----------
==========================================================================  =======  ========  ====  ======
words                                                                       envelop  distance  wet   motion
==========================================================================  =======  ========  ====  ======
huge, massive, enormous, giant, gigantic, immense, epic                     +0.8
enveloping, envelop, immersive, immersed, all around, surrounding, 360      +0.8
wide, widescreen, expansive, spacious, broad                                +0.6
big, large, open, open up                                                   +0.5
vast                                                                        +0.5     +0.7      +0.6
cinematic                                                                   +0.5     +0.5      +0.5
tight, focused                                                              -0.7
narrow, small, compact, mono                                                -0.6
intimate                                                                    -0.6     -0.6
in your face, in my face                                                    -0.3     -0.8
close, near, up front, up close, present                                             -0.6
distant, far away, far off, far, in the distance, remote                             +0.7
dry, dead                                                                                      -0.8
bone dry                                                                                       -1.0
wet, washy, drenched, soaked                                                                   +0.7
lush, reverberant, roomy, airy                                                                 +0.6
cavernous, cathedral, church                                                                   +0.9
still, static, motionless, frozen, calm, no motion, nothing moves                                    -1.0
slow, slowly, drifting, floating, gentle, gently, lazy, hovering                                     -0.5
moving, lively, dynamic, animated, restless, busy                                                    +0.6
swirling, spinning, whirling, circling, orbiting                                                     +0.8
==========================================================================  =======  ========  ====  ======

Each axis is the mean of the values of the words found for it (so "huge and enveloping" is
+0.8, "huge but intimate" 0.1). Intensifiers scale a word: "very", "really", "super",
"extremely", "so", "ultra", "totally", "incredibly" x1.25 (clipped to +-1); "a bit", "a little",
"slightly", "somewhat", "a touch", "kind of", "sort of", "fairly", "a tad", "mildly" x0.5.
Negation: "not too huge", "not overly wide", "not that big" count as 0 (they pull the mean
towards neutral); "not huge", "never wide", "less wet" as -0.25 times the word's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gravity.plan.lexicon import SECTION_WORDS, section_of
from gravity.plan.prompt import scene_clauses

__all__ = ["SceneWords", "parse_scene_words"]

_AXES = ("envelop", "distance", "wet", "motion")


@dataclass(frozen=True)
class SceneWords:
    """What the scene-wide words of a prompt ask for, each axis a signed amount in [-1, +1].

    Attributes
    ----------
    envelop : float
        -1 tight / focused / intimate ... +1 huge / enveloping / immersive / wide / big: how
        much of the sphere the scene covers (width, sides, rear and height).
    distance : float
        -1 in your face / close / upfront / intimate ... +1 vast / distant / far away / cinematic.
    wet : float
        -1 dry / dead ... +1 wet / lush / cavernous / cathedral / vast: the reverb send.
    motion : float
        -1 still / static / calm, -0.5 slow / drifting / floating ... +1 lively / moving /
        swirling: how much and how fast things move.
    matched : tuple of str
        The normalised words read, in text order.
    """

    envelop: float = 0.0
    distance: float = 0.0
    wet: float = 0.0
    motion: float = 0.0
    matched: tuple[str, ...] = ()

    def is_neutral(self) -> bool:
        """True when no scene word was read."""
        return not self.matched


# (words, (envelop, distance, wet, motion)); "_" = whitespace. The module docstring's table.
_TABLE: tuple[tuple[str, tuple[float, float, float, float]], ...] = (
    ("huge massive enormous giant gigantic immense epic", (0.8, 0.0, 0.0, 0.0)),
    ("enveloping envelops? immersive immersed all_around surrounding 360", (0.8, 0.0, 0.0, 0.0)),
    ("wide widescreen expansive spacious broad", (0.6, 0.0, 0.0, 0.0)),
    ("big large open_up opens_up opening_up open", (0.5, 0.0, 0.0, 0.0)),
    ("vast", (0.5, 0.7, 0.6, 0.0)),
    ("cinematic", (0.5, 0.5, 0.5, 0.0)),
    ("tight focus(?:s)?ed", (-0.7, 0.0, 0.0, 0.0)),
    ("narrow small compact mono", (-0.6, 0.0, 0.0, 0.0)),
    ("intimate", (-0.6, -0.6, 0.0, 0.0)),
    ("in_(?:your|my|ya|the)_face", (-0.3, -0.8, 0.0, 0.0)),
    ("close near up_front up_close present", (0.0, -0.6, 0.0, 0.0)),
    ("distant far_away far_off in_the_distance remote far", (0.0, 0.7, 0.0, 0.0)),
    ("bone_dry", (0.0, 0.0, -1.0, 0.0)),
    ("dry dead", (0.0, 0.0, -0.8, 0.0)),
    ("wet washy drenched soaked", (0.0, 0.0, 0.7, 0.0)),
    ("lush reverberant roomy airy", (0.0, 0.0, 0.6, 0.0)),
    ("cavernous cathedral church", (0.0, 0.0, 0.9, 0.0)),
    ("still static motionless frozen calm no_motion nothing_moves", (0.0, 0.0, 0.0, -1.0)),
    ("slow slowly drifting floating gentle gently lazy hovering", (0.0, 0.0, 0.0, -0.5)),
    ("moving lively dynamic animated restless busy", (0.0, 0.0, 0.0, 0.6)),
    ("swirling spinning whirling circling orbiting", (0.0, 0.0, 0.0, 0.8)),
)
# words that are something else before these: "far left" is a direction, "dead centre" a point,
# "still wide" an adverb
_NOT_BEFORE = {
    "far": r"(?!\s+(?:to\s+(?:the\s+)?)?(?:left|right|up|above|below|behind|back|front)\b)",
    "dead": r"(?!\s+(?:cent(?:er|re)|middle|ahead|front|behind|left|right|on)\b)",
    "still": r"(?=\s*(?:$|[,;.!?]|and\b|\x00))",
    "wide": r"(?!\s+(?:left|right)\b)",
    "open": r"(?!\s+(?:hats?|hi\s*hats?)\b)",
    "present": r"(?!\s+(?:in|at)\b)",
}


def _word_rx() -> tuple[re.Pattern[str], dict[str, int]]:
    """One pattern for every word of the table, with its modifiers, and group name -> table row."""
    row_of: dict[str, int] = {}
    parts: list[str] = []
    for i, (words, _) in enumerate(_TABLE):
        for w in words.split():
            row_of[name := f"w{len(parts)}"] = i
            parts.append(f"(?P<{name}>{w.replace('_', r'[ ]+')}{_NOT_BEFORE.get(w, '')})")
    rx = re.compile(
        r"\b(?=\w)(?:\b(?P<neg0>not\s+(?:too|overly|that|so|all\s+that)\s+)|\b(?P<neg>not|never|less)\s+)?"
        r"(?:\b(?P<up>very|really|super|extremely|so|ultra|totally|incredibly)\s+"
        r"|\b(?P<down>a\s+(?:little\s+)?bit|a\s+little|slightly|somewhat|a\s+touch|kind\s+of|kinda|sort\s+of"
        r"|fairly|a\s+tad|mildly)\s+)?\b(?:" + "|".join(parts) + r")\b"
    )
    return rx, row_of


_WORD_RX, _ROW_OF = _word_rx()
_SECTION_MOD = re.compile(
    r"\b(?:in|during|for|on|at)\s+(?:the|every|each|this|that|our)\s+(?P<s>" + "|".join(SECTION_WORDS.values()) + r")\b"
)


def _scale(m: re.Match[str]) -> float:
    """The factor a word's modifiers give it: intensifier, softener, negation."""
    if m.group("neg0"):
        return 0.0
    k = 1.25 if m.group("up") else 0.5 if m.group("down") else 1.0
    return -0.25 * k if m.group("neg") else k


def parse_scene_words(text: str, section: str | None = None) -> SceneWords:
    """Read the scene-wide words of a prompt.

    Parameters
    ----------
    text : str
        A scene prompt, e.g. ``"make the chorus huge and enveloping"``.
    section : str or None
        The section being planned (a :data:`gravity.vocab.SECTIONS` name); clauses that name a
        section count only for that section.

    Returns
    -------
    SceneWords
        Signed amounts in [-1, +1] per axis (see the module's value table); all 0 when the text
        has no scene words.
    """
    want = None if section is None else section.strip().lower().replace("-", "_").replace(" ", "_")
    sums = dict.fromkeys(_AXES, 0.0)
    counts = dict.fromkeys(_AXES, 0)
    matched: list[str] = []
    for scope, clause in scene_clauses(text):
        sections = scope or frozenset(s for m in _SECTION_MOD.finditer(clause) if (s := section_of(m.group("s"))))
        if sections and want not in sections:
            continue
        for m in _WORD_RX.finditer(clause):
            row = _TABLE[_ROW_OF[m.lastgroup or ""]][1]
            k = _scale(m)
            for axis, v in zip(_AXES, row, strict=True):
                if v:
                    sums[axis] += max(-1.0, min(1.0, k * v))
                    counts[axis] += 1
            matched.append(m.group(0).strip())
    vals = {a: round(sums[a] / counts[a], 6) + 0.0 if counts[a] else 0.0 for a in _AXES}
    return SceneWords(**vals, matched=tuple(matched))
