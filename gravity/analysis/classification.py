"""Stem classes: from a file name's words, or from the features by a nearest-prototype classifier.

Confidences are 0..1; classes are :data:`gravity.vocab.STEM_CLASSES` (``other`` when nothing fits).
Prototypes are feature vectors (:meth:`gravity.analysis.features.StemFeatures.vector`) set by hand,
so the classifier needs no training data.
"""

from __future__ import annotations

import math
import re
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from gravity.analysis.features import StemFeatures
from gravity.analysis.reading import AUDIO_EXTENSIONS

__all__ = ["class_from_name", "classify_features", "FEATURE_CLASSES"]


def _tokens(name: str) -> list[str]:
    """``"01_LeadVox-dbl"`` -> ``["01", "lead", "vox", "dbl"]``."""
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)
    s = re.sub(r"([A-Za-z])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([A-Za-z])", r"\1 \2", s)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


# Word groups. A name hits a group when one of its words (tokens) is in it; words of 3+ letters
# also hit inside longer words ("kickdrum", "hihats") when no whole word matched.
_WORDS: dict[str, frozenset[str]] = {
    k: frozenset(v.split())
    for k, v in {
        "kick": "kick kicks kik kck bd kickdrum bassdrum",
        "snare": "snare snares snr sn sd",
        "clap": "clap claps clp handclap handclaps",
        "hat": "hat hats hh hihat hihats hihat hathi",
        "hi": "hi",
        "cymbal": "cymbal cymbals cym crash ride splash china",
        "tom": "tom toms floortom racktom",
        "perc": (
            "perc percs percussion shaker shakers shk tamb tambourine conga congas bongo bongos "
            "cowbell rim rimshot clave claves triangle cabasa guiro woodblock"
        ),
        "drums": "drums drum drumloop loop loops breakbeat breakbeats beat beats kit drumkit",
        "overhead": "oh ohs overhead overheads",
        "room": "room rooms roommic",
        "bass": "bass bs bassline basses",
        "sub": "sub subs subbass 808 808s",
        "vox": (
            "vox vocal vocals voc vocs vx voice voices singer sing lv leadvox leadvocal ldvox ldv vocalist topline"
        ),
        "backing": (
            "bv bvs bgv bgvs backing backings bvox bgvox harmony harmonies harm double doubles dbl adlib adlibs"
        ),
        "choir": "choir choirs chorale",
        "spoken": ("spoken speech dialog dialogue dx narration narrator voiceover vo podcast talk host interview"),
        "lead": "lead ld",
        "solo": "solo",
        "pad": "pad pads",
        "keys": "keys key kb keyboard keyboards rhodes wurli wurlitzer epiano ep clav clavinet",
        "piano": "piano pianos pno pf grand upright",
        "organ": "organ organs org hammond b3",
        "guitar": "gtr gtrs guitar guitars gt egtr elecgtr",
        "acoustic": "acoustic acou ac agtr acgtr",
        "strings": ("strings string str strs violin violins viola violas cello cellos vln vla vc vlc orchestra orch"),
        "brass": "brass horn horns trumpet trumpets tpt trombone trombones tbn tuba flugelhorn",
        "woodwind": (
            "woodwind woodwinds winds flute flutes fl clarinet clarinets cl oboe bassoon sax saxophone saxes piccolo"
        ),
        "synth": "synth synths syn saw supersaw stab stabs",
        "arp": "arp arps arpeggio arpeggiator seq sequence sequencer",
        "pluck": "pluck plucks plk",
        "bell": (
            "bell bells glock glockenspiel celesta celeste chime chimes mallet mallets marimba "
            "vibes vibraphone xylophone musicbox"
        ),
        "fxword": "fx sfx effect effects impact impacts downlifter whoosh swoosh transition chop chops vocoder",
        "riser": "riser risers rise uplifter sweep sweeps upsweep buildup swell",
        "ambience": "amb ambience ambiance ambient ambi roomtone environment",
        "atmos": "atmos atmo atmosphere atmospheres texture textures drone drones soundscape",
        "foley": "foley",
        "noise": "noise noises hiss vinyl crackle static",
    }.items()
}

# (groups that must all be hit, class, confidence), first match wins.
_NAME_RULES: tuple[tuple[tuple[str, ...], str, float], ...] = (
    (("vox", "fxword"), "vocal_fx", 0.95),
    (("backing",), "backing_vocal", 0.95),
    (("choir",), "choir", 0.95),
    (("spoken",), "spoken", 0.9),
    (("kick",), "kick", 0.95),
    (("bass", "drums"), "kick", 0.8),
    (("snare",), "snare", 0.95),
    (("clap",), "clap", 0.95),
    (("hat",), "hihat", 0.95),
    (("cymbal",), "cymbal", 0.95),
    (("tom",), "tom", 0.95),
    (("perc",), "percussion", 0.95),
    (("overhead",), "overheads", 0.9),
    (("room",), "room_mic", 0.8),
    (("lead", "guitar"), "lead_guitar", 0.95),
    (("solo", "guitar"), "lead_guitar", 0.9),
    (("acoustic", "guitar"), "acoustic_guitar", 0.95),
    (("guitar",), "guitar", 0.95),
    (("lead", "synth"), "synth_lead", 0.95),
    (("bass", "synth"), "bass_synth", 0.95),
    (("sub",), "sub", 0.9),
    (("bass",), "bass", 0.95),
    (("vox",), "lead_vocal", 0.95),
    (("pad",), "pad", 0.95),
    (("piano",), "piano", 0.95),
    (("keys",), "keys", 0.9),
    (("organ",), "organ", 0.95),
    (("strings",), "strings", 0.95),
    (("brass",), "brass", 0.95),
    (("woodwind",), "woodwind", 0.95),
    (("arp",), "arp", 0.95),
    (("pluck",), "pluck", 0.95),
    (("bell",), "bell", 0.95),
    (("synth",), "synth", 0.9),
    (("riser",), "riser", 0.95),
    (("fxword",), "fx", 0.9),
    (("ambience",), "ambience", 0.9),
    (("atmos",), "atmosphere", 0.9),
    (("foley",), "foley", 0.95),
    (("noise",), "noise", 0.85),
    (("drums",), "drum_loop", 0.8),
    (("acoustic",), "acoustic_guitar", 0.7),
    (("lead",), "lead_vocal", 0.6),
    (("solo",), "lead_guitar", 0.5),
)


def _groups_hit(tokens: Sequence[str]) -> set[str]:
    hit = {g for g, words in _WORDS.items() for t in tokens if t in words}
    if "hi" in hit and "hat" not in hit:  # "hi hat"
        hit.discard("hi")
        if any(t in ("hat", "hats") for t in tokens):
            hit.add("hat")
    hit.discard("hi")
    if hit:
        return hit
    # No whole word: look for keywords (3+ letters) inside words, longest first, so that
    # "bassoon" is woodwind and not bass.
    joined = "".join(tokens)
    spans: list[tuple[int, int, str]] = []
    for g, words in _WORDS.items():
        for w in words:
            if len(w) >= 3 and not w.isdigit() or w == "808":
                for m in re.finditer(re.escape(w), joined):
                    spans.append((m.start(), m.end(), g))
    spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
    taken: list[tuple[int, int]] = []
    for a, b, g in spans:
        if all(b <= ta or a >= tb for ta, tb in taken):
            taken.append((a, b))
            hit.add(g)
    hit.discard("hi")
    return hit


def class_from_name(name: str) -> tuple[str, float] | None:
    """The stem class a file name names, with a confidence, or ``None``.

    Parameters
    ----------
    name : str
        File name or stem (``"02 Kick In.wav"``, ``"LeadVox_dbl"``, ``"808"``).

    Returns
    -------
    (str, float) or None
        Class (one of :data:`gravity.vocab.STEM_CLASSES`) and confidence 0..1: 0.95 for a clear
        word, less for vague ones (``lead`` alone -> lead_vocal 0.6) and, times 0.8 each, when
        the name also names another class (``kick_snare``) or the word was only found inside a
        longer one (``leadsynth``).
    """
    stem = Path(name).stem if Path(name).suffix.lower() in AUDIO_EXTENSIONS else name
    tokens = _tokens(stem)
    exact = bool({g for g, words in _WORDS.items() for t in tokens if t in words} - {"hi"})
    hit = _groups_hit(tokens)
    if not hit:
        return None
    matched = [(cls, conf, need) for need, cls, conf in _NAME_RULES if all(g in hit for g in need)]
    if not matched:
        return None
    cls, conf, need = matched[0]
    # Another class whose words are not part of the winner's ("kick_snare") makes it vaguer.
    if any(c != cls and not set(n) <= set(need) for c, _, n in matched[1:]):
        conf *= 0.8
    if not exact:
        conf *= 0.8
    return cls, round(conf, 3)


# Prototype feature vectors (see StemFeatures.vector): low, mid, high, transient, harmonicity,
# log-centroid, coverage, rise. Set by hand from typical material (and checked on the example
# song); the classifier needs no training data.
_PROTOTYPES: dict[str, tuple[float, ...]] = {
    "kick": (0.85, 0.12, 0.03, 0.85, 0.80, 0.10, 0.70, 0.0),
    "snare": (0.15, 0.45, 0.40, 0.90, 0.25, 0.70, 0.40, 0.0),
    "hihat": (0.00, 0.05, 0.95, 0.90, 0.10, 0.95, 0.85, 0.0),
    "percussion": (0.03, 0.40, 0.57, 0.80, 0.20, 0.75, 0.60, 0.0),
    "bass": (0.80, 0.19, 0.01, 0.40, 0.90, 0.20, 0.95, 0.0),
    "sub": (0.97, 0.03, 0.00, 0.15, 0.95, 0.05, 0.90, 0.0),
    "pad": (0.10, 0.80, 0.10, 0.03, 0.70, 0.45, 1.00, 0.0),
    "lead_vocal": (0.03, 0.90, 0.07, 0.35, 0.90, 0.50, 0.75, 0.0),
    "arp": (0.02, 0.80, 0.18, 0.70, 0.80, 0.60, 0.80, 0.0),
    "riser": (0.05, 0.45, 0.50, 0.05, 0.10, 0.70, 0.30, 0.8),
    "atmosphere": (0.15, 0.50, 0.35, 0.05, 0.20, 0.60, 1.00, 0.0),
}
FEATURE_CLASSES: tuple[str, ...] = tuple(_PROTOTYPES)
# Per-feature scale: a difference of one scale unit costs 1 in the squared distance.
_SCALES = np.array([0.2, 0.2, 0.2, 0.2, 0.25, 0.15, 0.35, 0.3])
_OTHER_DISTANCE = 12.0  # squared distance beyond which nothing fits: "other"


def classify_features(features: StemFeatures) -> tuple[str, float, dict[str, float]]:
    """Class of a stem from its features alone (nearest prototype).

    Parameters
    ----------
    features : StemFeatures

    Returns
    -------
    cls : str
        One of :data:`FEATURE_CLASSES`, or ``"other"`` when even the nearest prototype is far.
    confidence : float
        0..1: the softmax weight ``exp(-d2 / 2)`` of the winner among all prototypes, times
        ``min(1, duration / 2 s)`` (short stems say little).
    scores : dict of str to float
        Softmax weight of every prototype class.
    """
    v = features.vector()
    d2 = {c: float(np.sum(((v - np.array(p)) / _SCALES) ** 2)) for c, p in _PROTOTYPES.items()}
    m = min(d2.values())
    w = {c: math.exp(-(d - m) / 2.0) for c, d in d2.items()}
    tot = sum(w.values())
    scores = {c: x / tot for c, x in w.items()}
    best = min(d2, key=d2.__getitem__)
    conf = scores[best] * min(1.0, features.duration_s / 2.0)
    if m > _OTHER_DISTANCE:
        return "other", round(min(conf, 0.3), 3), scores
    return best, round(conf, 3), scores
