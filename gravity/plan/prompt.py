"""Scene prompts: one text that steers several stems, named by id, id word, class or instrument.

:func:`parse_prompt` finds the stems a prompt names -- the session's stem ids, the words of a
stem id, stem classes and their synonyms, instrument and group nouns, "everything", "the rest",
and "nothing" / "anything" (every stem, for an exclusion: "nothing behind me") -- splits the text
into one clause per subject and reads each clause with the hint readers
(:mod:`gravity.plan.hint`), so a clause places a stem as a hint would: azimuth degrees positive
= left, elevation degrees up, distance metres, width in [0, 1].

Ensembles: several stems named by one clause get ``group`` (their ids) and, for a phrase that
names a region ("behind me", "in front", "all around me", "on each side"), ``arc_deg``, so the
planner spreads them instead of copying one position to all of them.

Scene and section subjects ("make the chorus huge", "the mix should feel vast") and sentences
without a subject that neither move nor place anything steer no stem: they are what
:func:`scene_clauses` hands to :mod:`gravity.plan.scene_words`. A subject-less sentence that
starts with a negation ("No height.") or names "nothing" / "anything" applies to every stem.

Nouns
-----
A noun selects the stems of its classes (else of its fallback classes). Stem ids are read as
words too (split at ``_``, ``-``, digits and camelCase: "vln1" -> vln, "taiko_l" -> taiko l,
"room_mics" -> room mics, "whoosh_01" -> whoosh, "bgv_hi" -> bgv hi). An *instrument word*,
narrower than its class, selects the stems whose id names it when there are any ("the violins"
with vln1, vln2, vla, vc of class strings -> vln1, vln2; "taikos" -> taiko_l of class
percussion), else its class. A class-level noun adds stems of class "other" whose id names it.
Words that are also verbs ("whooshes", "sweeps", "hits") are subjects only after a determiner
or at the start of a clause ("the riser whooshes over my head" names the riser only).

Decisions for instruments without a class of their own: taiko, timpani and hand drums ->
percussion (fallback tom); marimba, xylophone, vibraphone, glockenspiel -> bell (pitched
mallets, high band; fallback percussion); harp -> pluck (plucked and transient; fallback
strings); violin, viola, cello -> strings; double bass -> bass (the jazz upright; fallback
strings); french horn, trumpet, trombone, tuba -> brass; flute, oboe, clarinet, bassoon, sax ->
woodwind; whoosh, swoosh, impact, hit -> fx (fallback riser); sweep -> riser (fallback fx);
"the orchestra" -> strings + brass + woodwind + choir + percussion; "the band" -> every
non-vocal class; "voices" -> choir (fallback any vocal).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from dataclasses import dataclass
from typing import NamedTuple, Sequence

from gravity.plan.hint import Placement, read_clause
from gravity.plan.lexicon import SCENE_NOUN, SECTION_WORDS, alt, section_of
from gravity.plan.normalise import normalize
from gravity.vocab import FAMILIES, STEM_CLASSES

__all__ = ["parse_prompt", "scene_clauses"]

log = logging.getLogger(__name__)
_rx = re.compile

_DRUMS, _VOCALS = FAMILIES["drums"], FAMILIES["vocal"]
_ALL, _REST = "*all*", "*rest*"
_SCENE = "scene"  # the scope of a clause about the whole scene (a section's scope is its name)


class _Noun(NamedTuple):
    """A noun that names stems: its pattern (normalised text), classes and fallback classes."""

    pattern: str
    classes: tuple[str, ...]
    fallback: tuple[str, ...] = ()
    narrow: bool = False  # an instrument word inside its class: stems whose id names it win
    ids: str = ""  # words (space-separated) that name it only inside a stem id: "vln", "vc"
    verb: bool = False  # also a verb ("the riser whooshes"): a subject only after a determiner


_N = _Noun
_NOUNS: tuple[_Noun, ...] = (
    _N(
        r"everything\s+else|the\s+rest(?:\s+of\s+(?:the\s+)?(?:stems|tracks|mix|band|instruments))?"
        r"|all\s+(?:the\s+)?other\s+(?:stems|tracks|instruments|sounds|parts|elements)|(?:all\s+)?the"
        r"\s+others|remaining\s+(?:stems|tracks|instruments|elements)",
        (_REST,),
    ),
    _N(
        r"everything|all\s+(?:the\s+)?(?:stems|tracks|instruments|sounds|elements|parts)|the\s+"
        r"(?:whole|entire|full)\s+(?:mix|band|arrangement|scene)|every\s+(?:stem|track|instrument"
        r"|sound|element)",
        (_ALL,),
    ),
    _N(r"all\s+(?:the\s+)?(?:vocals|vox|voices)|every\s+vocal|vocal\s+(?:group|stems)", _VOCALS),
    _N(r"lead\s+(?:vocals?|vox|voice|singer|vocalist)|main\s+(?:vocals?|vox|voice)", ("lead_vocal",), _VOCALS),
    _N(
        r"backing\s+(?:vocals?|vox|singers?)|back\s*up\s+(?:vocals?|singers?)|background\s+(?:vocals?"
        r"|vox|singers?)|harmony\s+vocals?|"
        + alt("backings? backups? bgvs? bvs? harmonies harmony doubles ad_?libs? adlibs?"),
        ("backing_vocal",),
        ("choir",),
        ids="bvox bgvox harm harms",
    ),
    _N(r"choirs?|choral|chorale|gang\s+vocals?", ("choir",), ("backing_vocal",), ids="chr choral"),
    _N(r"voices", ("choir",), _VOCALS),
    _N(r"(?:vocal|vox)\s+(?:fx|effects?|chops?|throws?)|chops", ("vocal_fx",), ("fx",)),
    _N(r"spoken(?:\s+word)?|narrat(?:ion|or)|voice\s*overs?|dialog(?:ue)?|speech", ("spoken",), ("lead_vocal",)),
    _N(r"vocals?|vox|voice|singers?|vocalists?", ("lead_vocal",), _VOCALS),
    _N(r"lead\s+guitars?|guitar\s+solos?|solo\s+guitars?|lead\s+gtrs?", ("lead_guitar",), ("guitar",)),
    _N(r"lead\s+synths?|synth\s+(?:leads?|lines?|melod(?:y|ies))|saw\s+leads?", ("synth_lead",), ("synth", "arp")),
    _N(r"leads?", ("lead_vocal",), ("synth_lead", "lead_guitar")),
    _N(r"kick\s+drums?|kicks?|bass\s+drums?", ("kick",), ("drum_loop",), ids="kck kik bd"),
    _N(r"snares?(?:\s+drums?)?|rim\s*shots?", ("snare",), ("drum_loop",), ids="snr sn sd"),
    _N(r"(?:hand|finger)\s*claps?|claps?|snaps?", ("clap",), ("snare",), ids="clp"),
    _N(r"(?:closed\s+|open\s+)?(?:hi\s*hats?|high\s*hats?|hats?|hh)", ("hihat",), ("cymbal", "overheads"), ids="hhat"),
    _N(r"cymbals?|crash(?:es)?|rides?|china", ("cymbal",), ("overheads", "hihat"), ids="cym cyms"),
    _N(r"(?:floor\s+|rack\s+)?toms?|tom\s*toms?|tom\s+fills?", ("tom",), ("drum_loop",)),
    _N(r"taikos?(?:\s+drums?)?|odaikos?", ("percussion",), ("tom", "drum_loop"), narrow=True),
    _N(r"timpan[io]s?|timps?|kettle\s*drums?", ("percussion",), ("tom",), narrow=True, ids="tymp timp"),
    _N(
        alt(
            "congas? bongos? djembes? cajons? shakers? tambourines? tambs? cowbells? woodblocks? claves? "
            "triangles? gongs? guiros? cabasas? frame_drums? udus? tablas? darbukas?"
        ),
        ("percussion",),
        ("drum_loop",),
        narrow=True,
        ids="shk tamb cbell",
    ),
    _N(r"percussion|percussive|percs?|hand\s+percussion", ("percussion",), ("drum_loop",)),
    _N(r"drum\s+(?:loops?|breaks?)|break\s*beats?|top\s+loops?", ("drum_loop",), _DRUMS, ids="loop loops brk"),
    _N(r"overheads|ohs|(?:oh|overhead)\s+mics?", ("overheads",), ("cymbal",), ids="oh ovh ovhd overhead"),
    _N(r"room\s+(?:mics?|microphones?)|rooms", ("room_mic",), ("ambience",), ids="room rm rmic"),
    _N(r"drums?|drum\s*kit|kit|drum\s+bus|rhythm\s+section", _DRUMS, ids="drm drms"),
    _N(r"sub\s*bass(?:es)?|subs?|808s?", ("sub",), ("bass", "bass_synth")),
    _N(r"synth\s+bass|bass\s+synths?|reese", ("bass_synth",), ("bass", "sub"), ids="bsyn"),
    _N(
        r"double\s+bass(?:es)?|contra\s*bass(?:es)?|string\s+bass(?:es)?|upright\s+bass(?:es)?",
        ("bass",),
        ("strings",),
        narrow=True,
        ids="cb db kb dbl cbs",
    ),
    _N(r"bass\s*lines?|(?:electric\s+)?bass(?:\s+guitars?)?|basses", ("bass",), ("bass_synth", "sub"), ids="bs bas"),
    _N(r"(?:synth\s+|string\s+)?pads?", ("pad",), ("atmosphere", "synth")),
    _N(
        r"electric\s+pianos?|rhodes|wurli(?:tzer)?|keys|keyboards?|clav(?:inet)?",
        ("keys",),
        ("piano", "organ", "synth"),
        ids="kbd kbds ep",
    ),
    _N(r"(?:grand\s+|upright\s+)?pianos?", ("piano",), ("keys",), ids="pno pn"),
    _N(r"organs?|hammond|b3", ("organ",), ("keys",), ids="org"),
    _N(
        r"acoustic\s+(?:guitars?|gtrs?)|acoustics?|nylon\s+guitars?",
        ("acoustic_guitar",),
        ("guitar",),
        ids="ac_gtrs? acgtr agtr ac",
    ),
    _N(r"guitars|gtrs|all\s+(?:the\s+)?guitars", ("guitar", "acoustic_guitar", "lead_guitar")),
    _N(r"(?:electric\s+|rhythm\s+)?guitar|gtr", ("guitar",), ("acoustic_guitar", "lead_guitar"), ids="egtr gt"),
    _N(r"(?:first\s+|second\s+)?(?:violins?|fiddles?)", ("strings",), ("pad",), narrow=True, ids="vln vlns vn vns vl"),
    _N(r"violas?", ("strings",), ("pad",), narrow=True, ids="vla vlas va"),
    _N(r"cellos?|celli|violoncellos?", ("strings",), ("pad",), narrow=True, ids="vc vcs vlc"),
    _N(r"harps?", ("pluck",), ("strings", "acoustic_guitar"), narrow=True, ids="hp hrp"),
    _N(r"strings?(?:\s+section)?", ("strings",), ("pad",), ids="str strs stg stgs"),
    _N(
        r"(?:the\s+)?orchestra|orchestral\s+(?:stems|sections?|instruments|parts)|(?:the\s+)?ensemble",
        ("strings", "brass", "woodwind", "choir", "percussion"),
        ("pad",),
    ),
    _N(r"the\s+band", tuple(c for c in STEM_CLASSES if c not in _VOCALS)),
    _N(r"(?:french\s+)?horns?(?:\s+section)?", ("brass",), ("woodwind",), narrow=True, ids="hn hns hrn fhn"),
    _N(r"trumpets?|flugel\s*horns?|cornets?", ("brass",), ("woodwind",), narrow=True, ids="tpt tpts trp tp"),
    _N(r"trombones?|bones", ("brass",), ("woodwind",), narrow=True, ids="tbn tbns trb"),
    _N(r"tubas?|euphoniums?", ("brass",), ("woodwind",), narrow=True, ids="tba"),
    _N(r"brass(?:\s+section)?", ("brass",), ("woodwind",), ids="brs"),
    _N(r"flutes?|piccolos?", ("woodwind",), ("brass",), narrow=True, ids="fl fls flt picc"),
    _N(r"oboes?|cor\s+anglais|english\s+horns?", ("woodwind",), ("brass",), narrow=True, ids="ob obs"),
    _N(r"clarinets?", ("woodwind",), ("brass",), narrow=True, ids="cl cls clar clt"),
    _N(r"bassoons?", ("woodwind",), ("brass",), narrow=True, ids="bsn bsns fg"),
    _N(
        r"(?:alto\s+|tenor\s+|bari(?:tone)?\s+|soprano\s+)?sax(?:ophone)?(?:e?s)?",
        ("woodwind",),
        ("brass",),
        narrow=True,
        ids="asx tsx bsx",
    ),
    _N(r"woodwinds?|winds|reeds", ("woodwind",), ("brass",), ids="ww wwd wwds"),
    _N(r"synths", ("synth", "synth_lead"), ("arp", "pluck", "pad")),
    _N(r"synth(?:esi[sz]er)?s?|stabs?|chords", ("synth",), ("synth_lead", "pad", "keys"), ids="syn syns"),
    _N(r"arp(?:eggio|eggiator)?s?", ("arp",), ("synth", "pluck")),
    _N(r"plucks?", ("pluck",), ("arp", "synth")),
    _N(
        r"marimbas?|xylophones?|vibraphones?|vibes|glock(?:enspiel)?s?|celestas?|mallets?",
        ("bell",),
        ("percussion",),
        narrow=True,
        ids="mar mrb xyl vib glk",
    ),
    _N(r"bells?|chimes?|music\s*box(?:es)?|tubular\s+bells", ("bell",)),
    _N(r"risers?|uplifters?|swells?|reverse\s+cymbals?", ("riser",), ("fx",), ids="rsr rise"),
    _N(r"(?:down\s*)?sweeps?|downlifters?", ("riser",), ("fx",), narrow=True, verb=True),
    _N(r"whoosh(?:es)?|swoosh(?:es)?|woosh(?:es)?", ("fx",), ("riser",), narrow=True, verb=True),
    _N(r"impacts?|hits|booms?|braams?|slams?|transitions?", ("fx",), ("riser", "percussion"), narrow=True, verb=True),
    _N(r"sound\s+effects?|sfx|fx|effects?", ("fx",), ("riser", "vocal_fx", "foley", "noise")),
    _N(r"ambiences?|room\s+tone|field\s+recordings?|soundscapes?", ("ambience",), ("atmosphere",), ids="amb ambi"),
    _N(r"atmospheres?|atmospherics|drones?|textures?", ("atmosphere",), ("ambience", "pad"), ids="atmos atm"),
    _N(r"foley|footsteps?", ("foley",), ("fx",)),
    _N(r"(?:white\s+)?noises?|hiss|crackle", ("noise",), ("fx",)),
    *(_N(c.replace("_", r"(?:_|\s+)") + "s?", (c,)) for c in STEM_CLASSES if c != "other"),
)
# one pattern for all nouns; the word start is tested once, not once per noun (5x faster)
_ALIAS_RX = _rx(r"\b(?=\w)(?:" + "|".join(rf"(?P<a{i}>(?:{n.pattern})\b)" for i, n in enumerate(_NOUNS)) + ")")
# nouns inside stem ids ("room mics", "vln", "taiko l"): the text patterns and the id-only words
_ID_RX = _rx(
    "|".join(
        rf"(?P<a{i}>(?<![a-z])(?:{n.pattern}{'|' + alt(n.ids)[3:-1] if n.ids else ''})(?![a-z]))"
        for i, n in enumerate(_NOUNS)
        if n.classes[0] not in (_ALL, _REST)
    )
)
# a verb-like noun is a subject only here: at a clause start or after a determiner / connective
_DETERMINED = _rx(
    r"(?:^|[,;:.!?(&/+]|\b(?:the|some|those|these|my|our|your|all|and|or|with|plus|of|both|a|an|any|then"
    r"|but|no|put|make|have|let|keep|place|pan|send|get|bring|want|add)\b)\s*$"
)
# "nothing" / "anything": every stem, for the exclusion the clause states; the word stays in it
_QUANTIFIER = _rx(r"\b(?:nothing|anything|none|nobody|no\s+one)(?P<els>\s+else)?\b")
_SECTION_ALT = "|".join(SECTION_WORDS.values())
# the scene or a section as a subject ("make the chorus huge"), not as a place ("back in the mix")
_SCOPE_RX = _rx(rf"\b(?:{SCENE_NOUN}|(?:(?:the|each|every|this|that|our)\s+)?(?:{_SECTION_ALT}))\b")
_SUBJECT_START = _rx(
    r"(?:^|[,;:.!?]|\b(?:and|but|then|so|also|now|while|whereas|make|makes|let|keep|have|get|give|open|opens"
    r"|want|like|please|turn|bring|push|set|up|should|let's)\b)\s*$"
)
_SENTENCE = _rx(r"(?<!\d)[.!?]+(?!\d)|[;\n]+")
_COMMA = _rx(r",|\b(?:but|while|whereas|meanwhile)\b")
_CONNECT = _rx(
    r"^[\s,&/+:-]*(?:(?:and|or|plus|as\s+well\s+as|along\s+with|together\s+with|with"
    r"|both|also|the|my|our|all|of|its|their)\b[\s,&/+:-]*)*$"
)
_TRAIL_ARTICLE = _rx(r"(?:\b(?:the|my|our|all|those|these|of|both)\s*)+$")
# a verb just before the subject belongs with the words after it: "keep [the pads] out of the
# height", "don't put [anything] on the left"
_VERB_END = _rx(
    r"\b(?:keep|stay|put|place|pan|send|have|want|position|let|make|move|get|bring|leave|set|lift|raise"
    r"|lower|drop|push|pull|turn|hold)\s*$"
)
_BARE = _rx(r"^[\s,:;&/+\-]*(?:(?:and|or|plus|with|also|the|my|our|all|both|then)\b[\s,:;&/+\-]*)*$")
# a sentence without a subject: applies to every stem when it opens with a negation ("No height.")
_SCENE_NEG = _rx(
    r"^\s*(?:no|not|never|don'?t|dont|do\s+not|avoid|without|keep\s+(?:out|off|away|clear)"
    r"|stay\s+(?:out|off|away|clear))\b"
)
_PRONOUN = _rx(r"\b(?:they|them|their|it|its|those|these)\b")
# ... and steers the subject before it when it opens with a pronoun or a continuation
_CONTINUES = _rx(
    r"^\s*(?:they|them|their|it|its|those|these|both|each|all\s+of\s+them|and|also|then|plus|which|same)\b"
)


class _Mention(NamedTuple):
    start: int
    end: int
    ids: frozenset[str]
    generic: bool  # "everything", "the rest", "nothing": yields to clauses naming stems specifically
    scope: frozenset[str]  # about the scene ({"scene"}) or sections ({"chorus"}), not stems
    zero: bool = False  # a quantifier: its word stays in the clause ("nothing behind me")


@dataclass
class _Clause:
    ids: frozenset[str]
    text: str
    generic: bool
    sent: int
    scope: frozenset[str] = frozenset()
    subject: str = "stem"  # "stem" (names stems), "all" (everything / nothing), "scope" (scene or section)


@functools.lru_cache(maxsize=4096)
def _norm_id(sid: str) -> str:
    """A stem id as it reads in normalised text (cached: sessions repeat their ids every call)."""
    return normalize(sid)


@functools.lru_cache(maxsize=4096)
def _id_nouns(sid: str) -> frozenset[int]:
    """Indices of the nouns the words of a stem id name ("taiko_l" -> taiko; "vln1" -> violin)."""
    words = re.sub(r"([a-z])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", sid))
    words = " ".join(re.split(r"[\W_\d]+", words.lower())).strip()
    return frozenset(int(m.lastgroup[1:]) for m in _ID_RX.finditer(words) if m.lastgroup)


def _resolve(i: int, stems: Sequence[tuple[str, str]]) -> frozenset[str]:
    """The stems noun ``i`` selects: by id for an instrument word, else by class, else fallback."""
    noun = _NOUNS[i]
    by_id = frozenset(sid for sid, _ in stems if i in _id_nouns(sid))
    if noun.narrow and by_id:
        return by_id  # "the violins" are vln1 and vln2, not every strings stem
    by_class = frozenset(s for s, c in stems if c in noun.classes) or frozenset(
        s for s, c in stems if c in noun.fallback
    )
    return by_class | frozenset(s for s in by_id if dict(stems)[s] == "other")


def _mentions(text: str, stems: Sequence[tuple[str, str]]) -> list[_Mention]:
    """Subjects (stems by id, id word, class or synonym; the scene; sections) in text order."""
    ids = {k: sid for sid, _ in stems if (k := _norm_id(sid)) and not k.isdigit()}
    cands: list[tuple[int, int, int, frozenset[str] | str]] = []
    if ids:
        # the session's stem ids: the one regex that has to be built per call
        id_rx = re.compile("|".join(rf"(?<!\w){re.escape(k)}(?!\w)" for k in sorted(ids, key=len, reverse=True)))
        cands += [(m.start(), m.end(), 0, frozenset({ids[m.group(0)]})) for m in id_rx.finditer(text)]
    for m in _ALIAS_RX.finditer(text):
        name = m.lastgroup or ""
        if _NOUNS[int(name[1:])].verb and not _DETERMINED.search(text, max(0, m.start() - 40), m.start()):
            continue  # "the riser whooshes over my head": a verb here
        cands.append((m.start(), m.end(), 1, name))
    cands += [
        (m.start(), m.end(), 2, "scope")
        for m in _SCOPE_RX.finditer(text)
        if _SUBJECT_START.search(text, max(0, m.start() - 30), m.start())
    ]
    chosen: list[tuple[int, int, frozenset[str] | str]] = []
    end = -1
    for s, e, _, what in sorted(cands, key=lambda c: (c[0], c[0] - c[1], c[2])):
        if s >= end:  # leftmost, then longest, then ids before synonyms before scopes
            chosen.append((s, e, what))
            end = e
    every = frozenset(sid for sid, _ in stems)
    specific: set[str] = set()
    out: list[_Mention] = []
    for s, e, what in chosen:
        if what == "scope":
            out.append(_Mention(s, e, frozenset(), True, frozenset({section_of(text[s:e]) or _SCENE})))
            continue
        if isinstance(what, str):
            i = int(what[1:])
            if _NOUNS[i].classes[0] in (_ALL, _REST):
                out.append(_Mention(s, e, frozenset({_NOUNS[i].classes[0]}), True, frozenset()))
                continue
            what = _resolve(i, stems)
        specific |= what
        out.append(_Mention(s, e, what, False, frozenset()))
    taken = [(m.start, m.end) for m in out]
    for q in _QUANTIFIER.finditer(text):
        if not any(s <= q.start() < e for s, e in taken):
            who = frozenset({_REST if q.group("els") else _ALL})
            out.append(_Mention(q.start(), q.start(), who, True, frozenset(), zero=True))
    out.sort(key=lambda m: m.start)
    rest = every - specific
    return [m._replace(ids=every if _ALL in m.ids else rest if _REST in m.ids else m.ids) for m in out]


def _split(text: str, rx: re.Pattern[str], offset: int = 0) -> list[tuple[int, str]]:
    """Non-blank pieces of ``text`` between matches of ``rx``, with their start offsets."""
    out, start = [], 0
    for m in rx.finditer(text):
        out.append((start, text[start : m.start()]))
        start = m.end()
    out.append((start, text[start:]))
    return [(offset + s, t) for s, t in out if t.strip()]


def _kind(m: _Mention) -> str:
    return "scope" if m.scope else "all" if m.generic else "stem"


def _subjectless(sent: str, sent_no: int, clauses: list[_Clause], every: frozenset[str]) -> None:
    """A sentence without a subject: a scene-wide exclusion, more about the last subject, or scene words."""
    if _SCENE_NEG.match(sent) and not _PRONOUN.search(sent):
        clauses.append(_Clause(every, sent, True, sent_no, subject="all"))  # "No height."
        return
    one = read_clause(sent)[0] if clauses and not _CONTINUES.match(sent) else None
    if clauses and (one is None or one.places or one.motion is not None or one.avoid or one.max_width is not None):
        clauses[-1].text += " , " + sent  # "They slowly rotate.", "Slowly rotating.", "Keep it out of the height."
    else:  # "Slowly drifting, vast space.": about the scene, no stem
        clauses.append(_Clause(frozenset(), sent, True, sent_no, frozenset({_SCENE}), "scope"))


def _clauses(norm: str, mentions: list[_Mention], every: frozenset[str]) -> list[_Clause]:
    """Group the text into one clause per subject.

    A piece without a subject steers the subject before it in its sentence, else the next one;
    for a sentence without any subject see :func:`_subjectless`. Subjects joined by "and" share
    a clause ("the kick and bass centre").
    """
    clauses: list[_Clause] = []
    for sent_no, (s_off, sent) in enumerate(_split(norm, _SENTENCE)):
        first, pending = len(clauses), []
        if not any(s_off <= m.start < s_off + len(sent) for m in mentions):
            _subjectless(sent, sent_no, clauses, every)
            continue
        for p_off, piece in _split(sent, _COMMA, s_off):
            inside = [m for m in mentions if p_off <= m.start < p_off + len(piece)]
            if not inside:
                if len(clauses) > first:
                    clauses[-1].text += " , " + piece
                else:
                    pending.append(piece)
                continue
            for k, m in enumerate(inside):
                stop = inside[k + 1].start if k + 1 < len(inside) else p_off + len(piece)
                body = norm[m.end : stop]
                prev = inside[k - 1] if k else None
                if (
                    prev is not None
                    and not (m.zero or prev.zero)
                    and _kind(m) == _kind(prev)
                    and _CONNECT.match(norm[prev.end : m.start])
                ):  # "the kick and bass", "the chorus and the drop"
                    c = clauses[-1]
                    c.ids, c.scope = c.ids | m.ids, c.scope | m.scope
                    c.generic = c.generic and m.generic
                    c.text += " " + body
                    continue
                pre = _TRAIL_ARTICLE.sub("", norm[p_off : m.start]) if k == 0 else ""
                text = pre + body if m.zero or _VERB_END.search(pre) else pre + " , " + body
                clauses.append(_Clause(m.ids, " , ".join([*pending, text]), m.generic, sent_no, m.scope, _kind(m)))
                pending = []
        if pending and len(clauses) > first:
            clauses[-1].text += " , " + " , ".join(pending)
    return clauses


def _steers_position(p: Placement) -> bool:
    """Whether a reading would put every stem it names at one place (so they form an ensemble)."""
    moving = p.motion is not None and p.motion.pattern != "static"
    return p.az_deg is not None or p.el_deg is not None or p.arc_deg is not None or moving


def parse_prompt(text: str, stems: Sequence[tuple[str, str]]) -> dict[str, Placement]:
    """Parse a scene-level prompt that names stems by id, id word, class, synonym or instrument.

    Parameters
    ----------
    text : str
        E.g. ``'put the vocals slightly above and the pads far behind; make the hats circle'``.
        Clauses split at sentences, ``;``, commas and each new subject; "everything" and
        "everything else" / "the rest" name all stems / all stems not named elsewhere, and
        yield to clauses that name stems specifically; "nothing" / "anything" and subject-less
        sentences opening with a negation apply to every stem ("nothing behind me").
    stems : sequence of (stem_id, stem_class)
        The stems in the session.

    Returns
    -------
    dict of str to Placement
        One Placement (degrees, metres, width in [0, 1]) per stem the text steers, by id. Stems
        one clause names together carry ``group`` (sorted ids) where the clause gives them a
        position or motion, and ``arc_deg`` (degrees of azimuth centred on ``az_deg``) where
        the phrase names a region; a stem a clause names alone gets a point.
    """
    try:
        stems = [(str(i), str(c)) for i, c in stems]
        norm = normalize(text)
        mentions = _mentions(norm, stems)
        if not mentions and len(stems) == 1:  # with a single stem, the whole prompt is its hint
            p = read_clause(norm)[0]
            return {} if p.is_empty() else {stems[0][0]: p}
        every = frozenset(sid for sid, _ in stems)
        read = [(c, read_clause(c.text)) for c in _clauses(norm, mentions, every) if c.subject != "scope"]
        for (c, (one, _)), (c2, _) in zip(read, read[1:], strict=False):
            # a bare list shares the next clause ("the kick, the snare and the hats: centre"); a
            # clause with words of its own the readers did not know does not ("guitars doubled")
            if one.is_empty() and c.sent == c2.sent and _BARE.match(c.text):
                c2.ids = c2.ids | c.ids
        placed = frozenset().union(
            *(c.ids for c, (one, _) in read if not c.generic and (one.az_deg is not None or one.el_deg is not None))
        )
        result: dict[str, Placement] = {}
        for generic_pass in (True, False):
            for c, (one, many) in read:
                if c.generic != generic_pass:
                    continue
                members = c.ids - placed if c.generic else c.ids  # who this clause still spreads
                if len(members) >= 2 and _steers_position(many):
                    many = dataclasses.replace(many, group=tuple(sorted(members)))
                for sid in sorted(c.ids):
                    p = many if sid in members and len(members) >= 2 else one
                    if not p.is_empty():
                        result[sid] = result[sid].merged(p) if sid in result else p
        return {sid: result[sid] for sid, _ in stems if sid in result}
    except Exception:  # pragma: no cover - a parser bug must not break the planner
        log.exception("could not parse prompt %.80r", text)
        return {}


def scene_clauses(text: str) -> list[tuple[frozenset[str], str]]:
    """The clauses of a prompt about the whole scene or a section, not about named stems.

    Parameters
    ----------
    text : str
        A scene prompt.

    Returns
    -------
    list of (frozenset of str, str)
        Per clause, its scope -- the section names it is about ("make the chorus huge" ->
        ``{"chorus"}``), empty for the whole scene -- and its normalised text. Clauses whose
        subject is a stem noun ("the pads wide") are left out; "everything" clauses and
        sentences without a subject are in.
    """
    norm = normalize(text)
    return [
        (c.scope - {_SCENE}, c.text) for c in _clauses(norm, _mentions(norm, ()), frozenset()) if c.subject != "stem"
    ]
