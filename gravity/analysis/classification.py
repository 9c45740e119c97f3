"""Stem classes: from a file name's words, or from the audio features by a small fitted model.

Confidences are 0..1; classes are :data:`gravity.vocab.STEM_CLASSES` (``other`` when nothing fits
or the features are unsure). The feature classifier is a multinomial logistic regression whose
table (:mod:`gravity.analysis.feature_model`) ``benchmarks/stem_classes.py`` fits on real
recordings; that benchmark also reports its held-out confusion table.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Sequence

import numpy as np

from gravity.analysis import feature_model
from gravity.analysis.features import StemFeatures
from gravity.analysis.reading import AUDIO_EXTENSIONS
from gravity.vocab import family_of

__all__ = ["class_from_name", "classify_features", "decide", "typicality", "FEATURE_CLASSES"]


# ------------------------------------------------------------------ names
# A stem's file name is read the way studios and stem packs write them ("01_KickIn",
# "OH L", "Gtr1_Amp", "LeadVox_Dbl", "Streicher"): split into words, then matched whole word by
# whole word. Never inside a longer word: "whatever" holds "hat" and "harmonica" holds "harm",
# and neither names a hi-hat or a harmony vocal.

_MAX_NAME_CHARS = 200  # longer names are cut: no stem name needs more, and it bounds the work
_MAX_COMPOUND_CHARS = 24  # a run-together word ("leadvoxdbl") longer than this is not split

# ASCII spellings of letters NFKD does not decompose.
_FOLD = str.maketrans({"ß": "ss", "œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "ł": "l"})


def _tokens(name: str) -> list[str]:
    """Lower-case ASCII words of a name: ``"01_LeadVox-dbl"`` -> ``["01", "lead", "vox", "dbl"]``.

    Splits at anything but a letter or digit, at camelCase (``"KickIn"``), at an upper-case run
    before a capitalised word (``"SFXVox"``, ``"AGtr"``; ``"BVs"``, ``"OHs"`` stay whole) and between
    letters and digits (``"Gtr1"``, ``"B3"``). Accents are dropped (``"Bläser"`` -> ``"blaser"``).
    """
    s = unicodedata.normalize("NFKD", name[:_MAX_NAME_CHARS].translate(_FOLD))
    s = s.encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"([a-z])([A-Z])", r"\1 \2", s)
    s = re.sub(r"([A-Z]+)([A-Z][a-z]{2,})", r"\1 \2", s)
    s = re.sub(r"([A-Za-z])(\d)", r"\1 \2", s)
    s = re.sub(r"(\d)([A-Za-z])", r"\1 \2", s)
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


# Word groups: group -> (full words, abbreviations). A group is hit by one of its words standing
# alone (or as a part of a run-together word, see _split); abbreviations count a little less.
# Words of other languages are the common studio ones (German, French, Spanish, Italian).
_GROUP_WORDS: dict[str, tuple[str, str]] = {
    "kick": ("kick kickdrum bassdrum bombo cassa", "kik kck bd"),
    "snare": ("snare snaredrum rim rimshot sidestick caja rullante redoblante", "snr sn sd"),
    "clap": ("clap handclap palmas", "clp"),
    "hat": ("hat hihat charleston", "hh hhat"),
    "cymbal": (
        "cymbal crash ride splash china gong becken cymbale platillo platillos piatti",
        "cym cyms",
    ),
    "tom": ("tom floortom racktom", ""),
    "perc": (
        "percussion percussions percusion percussioni perkussion shaker tambourine tamburin pandereta "
        "conga bongo cowbell clave triangle cabasa guiro woodblock maracas djembe cajon tabla darbuka "
        "timbale timbales agogo castanets shekere timpani pauken",
        "perc percs tamb shk",
    ),
    "drums": ("drums drum drumkit kit drumloop breakbeat breaks schlagzeug batterie bateria batteria", "drms"),
    "overhead": ("overhead overheads", "oh ohs ohl ohr"),
    "room": ("room roommic raum", "rm"),
    "bass": (
        "bass bassline basses basse bajo basso kontrabass contrabass contrebasse contrabajo contrabbasso",
        "bs",
    ),
    "sub": ("sub subbass 808", ""),
    "vox": (
        "vox vocal vocals vocale voice voices singer singing sing vocalist topline leadvox leadvocal gesang "
        "hauptstimme stimme stimmen sanger sangerin chant chanteur chanteuse voix voz voces voce voci canto cantante "
        "rap rapper",
        "voc vocs vx lv ldv ldvox",
    ),
    # Vocal-only words: a harmony or backing vocal even without "vox".
    "bvox": (
        "backings backingvox backingvocals harmony harmonies adlib adlibs ooh oohs aah aahs choeur choeurs "
        "coro coros cori",
        "bv bvs bgv bgvs bvox bgvox harm",
    ),
    # Words that make a voice a backing one, and say nothing alone ("Backing Track", "Gtr Dbl").
    "backing": ("backing background backgrounds gang gangs stack stacks", "bg bgd"),
    "double": ("double doubles doubletrack doubled", "dbl dt"),
    "choir": ("choir choirs chorale chor", ""),
    "spoken": (
        "spoken speech dialog dialogue narration narrator voiceover podcast talk host interview sprecher "
        "locutor locucion parlato",
        "dx vo",
    ),
    "vocalfx": ("vocoder talkbox", ""),
    "lead": ("lead", "ld"),
    "solo": ("solo", ""),
    "pad": ("pad flache flachen", ""),
    "keys": (
        "keys keyboard keyboards rhodes wurlitzer epiano clavinet mellotron harpsichord cembalo clavecin "
        "tastiera tastiere teclado teclados",
        "kb ep clav wurli",
    ),
    "piano": ("piano pianos pianoforte klavier", "pno pf"),
    "organ": (
        "organ organs orgel orgue organo hammond leslie harmonium accordion accordian akkordeon accordeon "
        "acordeon fisarmonica bandoneon",
        "org",
    ),
    "guitar": (
        "guitar guitars gitarre gitarren guitare guitares guitarra guitarras chitarra chitarre egtr elecgtr ebow",
        "gtr gtrs git",
    ),
    # Plucked strings placed like an acoustic guitar.
    "plucked": ("mandolin banjo ukulele ukelele bouzouki dobro sitar oud lute", ""),
    "acoustic": ("acoustic akustik akustisch acoustique acustica acustico nylon", "acou ac agtr acgtr"),
    "electric": ("electric", "elec"),
    "strings": (
        "strings string violin violins viola violas cello cellos violoncello fiddle geige geigen bratsche "
        "violon violons violines violino violini orchestra streicher cordes cuerdas archi pizz pizzicato",
        "str strs vln vla vc vlc orch",
    ),
    "brass": (
        "brass horn horns trumpet trumpets trombone trombones tuba tubas flugelhorn cornet euphonium trompete "
        "trompeten posaune posaunen trompette trompeta tromba trombon blaser blechblaser cuivres metales ottoni",
        "brs hrn tpt tbn tbone",
    ),
    "woodwind": (
        "woodwind woodwinds flute flutes flote floete flauta flauto piccolo clarinet clarinets klarinette "
        "clarinette clarinete clarinetto oboe oboes hautbois bassoon fagott sax saxes saxophone saxophon "
        "saxofon sassofono holzblaser legni harmonica melodica bagpipe bagpipes dudelsack ocarina",
        "ww fl cl",
    ),
    "synth": ("synth synths synthesizer synthesiser synthe moog stab stabs saw supersaw sintetizador", "syn"),
    "arp": ("arp arps arpeggio arpeggiator arpeggiated sequence sequencer", "seq"),
    "pluck": ("pluck plucks", "plk"),
    "bell": (
        "bell bells glock glockenspiel celesta celeste chime chimes mallet mallets marimba vibes vibraphone "
        "xylophone musicbox kalimba glocke glocken cloche cloches campana campanas",
        "",
    ),
    "fxword": (
        "fx sfx effect effects effekt effekte efectos effetti impact impacts downlifter whoosh swoosh "
        "transition transitions chop chops",
        "efx",
    ),
    "riser": ("riser risers rise uplifter sweep sweeps upsweep buildup swell", ""),
    "ambience": ("ambience ambiance ambient roomtone environment ambiente", "amb ambi"),
    "atmos": ("atmos atmosphere atmospheres atmosphare atmosfera texture textures drone drones soundscape", "atmo"),
    "foley": ("foley footsteps", ""),
    "noise": ("noise noises hiss vinyl crackle static bruit ruido rauschen", ""),
}
_WORDS: dict[str, frozenset[str]] = {g: frozenset(f"{full} {abbr}".split()) for g, (full, abbr) in _GROUP_WORDS.items()}
_ABBREVIATIONS: frozenset[str] = frozenset(w for _, abbr in _GROUP_WORDS.values() for w in abbr.split())
_WORD_GROUP: dict[str, str] = {w: g for g, words in _WORDS.items() for w in words}

# Words that name no class but are allowed as parts of a run-together word ("kickin", "snaretop",
# "gtrdi", "drumsroomstereo") and in phrases.
_MODIFIERS: frozenset[str] = frozenset(
    "in out top bot bottom btm up down under side front back inside outside beater reso di amp mic mics "
    "lt rt left right st ster stereo mono open closed close far near dry wet hi high lo low mid main "
    "fill fills sample samples trig trigger clean dirty dist crunch rhythm rhy direct line loop loops "
    "ensemble section spot l r".split()
)

# Several words taken as one, longest first, before single words: a group ("" = names nothing,
# the words are used up). "Double Bass" is a bass, not a doubled voice; "Bass Drum" a kick.
_PHRASE_TEXT: dict[str, str] = {
    "bass": (
        "double bass|upright bass|acoustic bass|string bass|stand up bass|contra bass|electric bass|elec bass|"
        "e bass|fretless bass|slap bass|bass guitar|bass guitars|bass gtr|bass gitarre|bass git|bass guitare|"
        "bajo electrico|basso elettrico"
    ),
    "kick": "bass drum|bass drums|kick drum|grosse caisse",
    "snare": "snare drum|caisse claire|kleine trommel",
    "hat": "hi hat|hi hats|high hat|hi hh",
    "tom": "floor tom|rack tom|tom tom",
    "perc": "hand drum|hand drums|frame drum|taiko drum|talking drum|top loop|perc loop",
    "bell": "steel drum|steel drums|steel pan|tubular bells|hand bells|music box",
    "room": "drum room|drums room|drum amb|drums amb|drum ambience|drums ambience|room mic|room mics",
    "ambience": "room tone",
    "sub": "sub bass|808 bass|bass 808",
    "fxword": "sub drop",
    "vocalfx": "vox chop|vox chops|vocal chop|vocal chops",
    "acoustic_guitar": (
        "a gtr|a guitar|ac gtr|acc gtr|guitare seche|akustik gitarre|akustische gitarre|guitarra acustica|"
        "chitarra acustica"
    ),
    "guitar": "e gtr|e guitar|e gitarre|el gtr|lap steel|pedal steel",
    "keys": "electric piano|elec piano|e piano|el piano",
    "organ": "b 3",
    "brass": "french horn|french horns",
    "woodwind": "english horn|cor anglais",
    "spoken": "male speaker|female speaker|voix off",
    "bvox": "ad lib|ad libs",
    "": "sub mix|sub group|sub grp",
}
_PHRASES: dict[tuple[str, ...], str] = {
    tuple(p.split()): g for g, text in _PHRASE_TEXT.items() for p in text.split("|")
}
_MAX_PHRASE = max(len(p) for p in _PHRASES)
_PHRASE_WORDS: frozenset[str] = frozenset(w for p in _PHRASES for w in p)
_KNOWN: frozenset[str] = frozenset(_WORD_GROUP) | _MODIFIERS | _PHRASE_WORDS
# Parts a run-together word may be made of: the known words less the phrase words that are
# common English on their own ("keystone" is not keys + tone).
_PARTS: frozenset[str] = _KNOWN - frozenset("tone box off pan lap cor speaker male female lib libs music".split())

# Groups that qualify another ("Lead" Gtr, "Acoustic" Piano, Gtr "Dbl"): they never make a name
# ambiguous. Some qualify only a family: drums, room and overhead a drum ("Drumkit_KickIn"),
# synth an instrument it plays ("SynthPad", "SynthArp", "Synth Strings").
_QUALIFIERS = frozenset({"lead", "solo", "acoustic", "electric", "backing", "double"})
_FAMILY_QUALIFIERS: dict[str, frozenset[str]] = {
    "drums": frozenset({"drums", "room", "overhead"}),
    "bass": frozenset({"synth"}),
    "harmony": frozenset({"synth"}),
    "melody": frozenset({"synth"}),
}

_ABBREVIATION_FACTOR = 0.9  # "Gtr", "BV", "HH": a little less sure than "Guitar"
_COMPOUND_FACTOR = 0.9  # a run-together word split into known words ("leadvoxdbl")
_AMBIGUOUS_FACTOR = 0.8  # the name also names another class ("kick_snare")

# (groups that must all be hit, class, confidence), first match wins.
_NAME_RULES: tuple[tuple[tuple[str, ...], str, float], ...] = (
    (("vox", "fxword"), "vocal_fx", 0.95),
    (("vocalfx",), "vocal_fx", 0.95),
    (("vox", "bvox"), "backing_vocal", 0.95),
    (("bvox",), "backing_vocal", 0.95),
    (("vox", "backing"), "backing_vocal", 0.95),
    # A double of a voice ("Vox Dbl", "LeadVoxDT") supports the lead: it must not compete with
    # the lead for the front-centre anchor, and is placed like a backing vocal.
    (("vox", "double"), "backing_vocal", 0.8),
    (("choir",), "choir", 0.95),
    (("spoken",), "spoken", 0.9),
    (("kick", "sub"), "kick", 0.95),  # "Kick Sub": the kick's sub mic, not a sub-bass
    (("kick",), "kick", 0.95),
    (("snare",), "snare", 0.95),
    (("clap",), "clap", 0.95),
    (("hat",), "hihat", 0.95),
    (("cymbal",), "cymbal", 0.95),
    (("tom",), "tom", 0.95),
    (("perc",), "percussion", 0.95),
    (("lead", "guitar"), "lead_guitar", 0.95),
    (("solo", "guitar"), "lead_guitar", 0.9),
    (("acoustic", "guitar"), "acoustic_guitar", 0.95),
    (("acoustic_guitar",), "acoustic_guitar", 0.95),
    (("guitar",), "guitar", 0.95),
    (("plucked",), "acoustic_guitar", 0.8),
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
    (("room",), "room_mic", 0.85),
    (("overhead",), "overheads", 0.9),
    (("drums",), "drum_loop", 0.8),
    (("acoustic",), "acoustic_guitar", 0.7),
    (("electric",), "guitar", 0.6),
    (("lead",), "lead_vocal", 0.6),
)


def _lemma(word: str) -> str | None:
    """The known word a plural stands for (``"kicks"`` -> ``"kick"``), or ``None``."""
    for cut in ("s", "es"):
        base = word[: -len(cut)]
        if word.endswith(cut) and len(base) >= 3 and base in _KNOWN:
            return base
    return None


def _split(word: str) -> list[str] | None:
    """A run-together word as known words (``"kickin"`` -> ``["kick", "in"]``), or ``None``.

    Every part must be a known word of 3+ letters, or a known two-letter modifier (``in``,
    ``di``), or a closing ``l``/``r``; at least one part must name a group, and the fewest
    parts win. So ``"whatever"``, ``"harmonica"`` and ``"basket"`` are not split.
    """
    n = len(word)
    if n > _MAX_COMPOUND_CHARS:
        return None

    def part(piece: str, end: int) -> str | None:
        if len(piece) >= 3:
            return piece if piece in _PARTS else (lemma if (lemma := _lemma(piece)) in _PARTS else None)
        if len(piece) == 2 and piece in _MODIFIERS:
            return piece
        return piece if piece in ("l", "r") and end == n else None

    best: list[list[str] | None] = [[]] + [None] * n  # best[i]: fewest parts spelling word[:i]
    for end in range(1, n + 1):
        for start in range(end):
            head, p = best[start], part(word[start:end], end)
            if head is not None and p is not None and (best[end] is None or len(head) + 1 < len(best[end] or [])):
                best[end] = [*head, p]
    parts = best[n]
    if not parts or len(parts) < 2 or not any(p in _WORD_GROUP for p in parts):
        return None
    return parts


def _words(tokens: Sequence[str]) -> list[tuple[str, float]]:
    """Known words of the tokens with a weight: 1, or less for a part of a run-together word."""
    out: list[tuple[str, float]] = []
    for t in tokens:
        if t not in _KNOWN and _lemma(t) is None and (parts := _split(t)) is not None:
            out.extend((p, _COMPOUND_FACTOR) for p in parts)
        else:
            out.append((t, 1.0))  # an unknown word is kept too, so that no phrase reaches across it
    return out


def _groups_hit(tokens: Sequence[str]) -> dict[str, float]:
    """Groups the tokens name, each with its best weight (1 for a full word, less for an abbreviation).

    Phrases are taken first, longest first, and use their words up; the rest is read word by word.
    """
    words = _words(tokens)
    hit: dict[str, float] = {}

    def add(group: str, weight: float) -> None:
        if group:
            hit[group] = max(hit.get(group, 0.0), weight)

    i = 0
    while i < len(words):
        for k in range(min(_MAX_PHRASE, len(words) - i), 1, -1):
            span = words[i : i + k]
            group = _PHRASES.get(tuple(w for w, _ in span))
            if group is not None:
                abbreviated = any(w in _ABBREVIATIONS or len(w) == 1 for w, _ in span)
                add(group, min(q for _, q in span) * (_ABBREVIATION_FACTOR if abbreviated else 1.0))
                i += k
                break
        else:
            w, q = words[i]
            w = w if w in _WORD_GROUP else (_lemma(w) or w)  # "hats" -> "hat"
            if w in _WORD_GROUP:
                add(_WORD_GROUP[w], q * (_ABBREVIATION_FACTOR if w in _ABBREVIATIONS else 1.0))
            i += 1
    return hit


def class_from_name(name: str) -> tuple[str, float] | None:
    """The stem class a file name names, with a confidence, or ``None``.

    The name is split into words (separators, camelCase, digits: ``"01_KickIn"`` -> ``01 kick
    in``), known run-together words are split (``"leadvoxdbl"``), plurals are read as the word,
    phrases are read before single words (``"Double Bass"`` -> bass, ``"Bass Drum"`` -> kick), and
    words are matched whole, never inside a longer word (``"whatever"`` names no hi-hat). Take
    numbers, channel suffixes (``L``, ``R``, ``St``), mic positions (``In``, ``Top``, ``DI``) and
    words that name no instrument (``Audio``, ``Mix``, ``final``) are passed over.

    Parameters
    ----------
    name : str
        File name or stem (``"02 Kick In.wav"``, ``"LeadVox_dbl"``, ``"808"``).

    Returns
    -------
    (str, float) or None
        Class (one of :data:`gravity.vocab.STEM_CLASSES`) and confidence 0..1: 0.95 for a clear
        word, less for vague ones (``lead`` alone -> lead_vocal 0.6), times 0.9 for an
        abbreviation (``Gtr``) or a run-together word split into known ones (``kickin``), and times 0.8 when the name
        also names another class (``kick_snare``). ``None`` when no word names a class: the
        features decide.
    """
    stem = Path(name).stem if Path(name).suffix.lower() in AUDIO_EXTENSIONS else name
    hit = _groups_hit(_tokens(stem))
    matched = [(cls, conf, need) for need, cls, conf in _NAME_RULES if all(g in hit for g in need)]
    if not matched:
        return None
    cls, conf, need = matched[0]
    conf *= min(hit[g] for g in need)
    context = _QUALIFIERS | _FAMILY_QUALIFIERS.get(family_of(cls), frozenset())
    # Another class named by words that are not the winner's, nor merely qualify it, makes it vaguer.
    if any(c != cls and set(n) - set(need) - context for c, _, n in matched[1:]):
        conf *= _AMBIGUOUS_FACTOR
    return cls, round(conf, 3)


# ------------------------------------------------------------------ features
# A small multinomial logistic regression over StemFeatures.vector(); its table (a mean and a
# scale per feature, a weight per class and feature, a bias per class, a temperature, and each
# class's mean and spread) is fitted by benchmarks/stem_classes.py on real recordings and
# written to feature_model.py. Features say less than a name: on held-out real stems its likeliest
# class has the right family about four times in five, so it answers "other" below
# _MIN_CONFIDENCE (the planner then places the stem neutrally) and never claims more than
# _MAX_CONFIDENCE. A linear model is overconfident far from its data, so a stem unlike the
# training stems of the class it picks is less sure too: its typicality is the mean of its four
# largest squared z-scores against that class (a few features far off are enough to tell).

_MIN_CONFIDENCE = 0.5  # below this the answer is "other"
_MAX_CONFIDENCE = 0.8  # features alone are never surer than this: a name (0.95) always outranks them
_FULL_DURATION_S = 2.0  # a shorter stem is less sure: confidence times duration / 2 s
_TYPICAL = 8.0  # typicality up to which a stem is like its class (~93rd percentile of held-out answers)
_TYPICAL_TOP = 4  # the typicality averages this many of the largest squared z-scores
CLASS_SD_FLOOR = 0.5  # standardised units: no feature is trusted to be tighter than this per class

FEATURE_CLASSES: tuple[str, ...] = feature_model.CLASSES


def decide(logits: np.ndarray, classes: Sequence[str], duration_s: float, typicality: float = 0.0) -> tuple[str, float]:
    """The answer for temperature-scaled logits: the likeliest class, or ``other`` when unsure.

    Parameters
    ----------
    logits : np.ndarray [shape=(len(classes),)]
        Class scores already divided by the table's temperature.
    classes : sequence of str
        Class of each score.
    duration_s : float
        Stem length in seconds.
    typicality : float
        See :func:`typicality` (for the likeliest class); 0 to skip the check.

    Returns
    -------
    (str, float)
        The class with the highest probability ``p`` and ``confidence = p * min(1, duration / 2 s)
        * min(1, 8 / typicality)``, capped at 0.8; or ``("other", confidence)`` when that is below
        0.5 (so always < 0.5).
    """
    z = np.asarray(logits, dtype=float)
    p = np.exp(z - z.max())
    p /= p.sum()
    k = int(np.argmax(p))
    conf = float(p[k]) * min(1.0, max(duration_s, 0.0) / _FULL_DURATION_S)
    if typicality > _TYPICAL:
        conf *= _TYPICAL / typicality
    if conf < _MIN_CONFIDENCE:
        return "other", round(conf, 3)
    return classes[k], round(min(conf, _MAX_CONFIDENCE), 3)


def typicality(z: np.ndarray, class_mean: np.ndarray, class_sd: np.ndarray) -> float:
    """How unlike a class's training stems a stem is: the mean of its four largest squared z-scores.

    Parameters
    ----------
    z : np.ndarray [shape=(features,)]
        The stem's standardised feature vector.
    class_mean, class_sd : np.ndarray [shape=(features,)]
        The class's training stems' mean and spread, standardised (floored at
        :data:`CLASS_SD_FLOOR`).

    Returns
    -------
    float
        Dimensionless; on held-out real stems the answered ones score 2.6 (median) to 9 (95th
        percentile); synthetic test tones and noises 10-60.
    """
    d = ((np.asarray(z) - class_mean) / class_sd) ** 2
    return float(np.mean(np.sort(d)[-_TYPICAL_TOP:]))


def classify_features(features: StemFeatures) -> tuple[str, float, dict[str, float]]:
    """Class of a stem from its features alone.

    Parameters
    ----------
    features : StemFeatures

    Returns
    -------
    cls : str
        One of :data:`FEATURE_CLASSES`, or ``"other"`` when unsure (see :func:`decide`).
    confidence : float
        0..0.8 (below 0.5 exactly when ``cls`` is ``"other"``).
    scores : dict of str to float
        Probability of every class of the table (they sum to 1).
    """
    m = feature_model
    z = (features.vector() - np.array(m.MEAN)) / np.array(m.SCALE)
    logits = (np.array(m.WEIGHTS) @ z + np.array(m.BIAS)) / m.TEMPERATURE
    k = int(np.argmax(logits))
    typ = typicality(z, np.array(m.CLASS_MEAN[k]), np.array(m.CLASS_SD[k]))
    cls, conf = decide(logits, m.CLASSES, features.duration_s, typ)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    return cls, conf, {c: float(v) for c, v in zip(m.CLASSES, p, strict=True)}
