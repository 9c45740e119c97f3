"""Scene prompts: one text that steers several stems, named by id or by class / synonym.

:func:`parse_prompt` finds the stems a prompt names (the session's stem ids, stem classes and
their synonyms, "everything", "the rest"), splits the text into one clause per subject and reads
each clause with the hint readers (:mod:`gravity.plan.hint`), so a clause places a stem as a hint
would: azimuth degrees positive = left, elevation degrees up, distance metres, width in [0, 1].
"""

from __future__ import annotations

import logging
import re
from typing import Any, Sequence

from gravity.plan.hint import Placement, parse_norm
from gravity.plan.lexicon import alt
from gravity.plan.normalise import normalize
from gravity.vocab import FAMILIES, STEM_CLASSES

__all__ = ["parse_prompt"]

log = logging.getLogger(__name__)
_rx = re.compile

_DRUMS, _VOCALS = FAMILIES["drums"], FAMILIES["vocal"]
_ALL, _REST = "*all*", "*rest*"
# (pattern, classes, fallback classes used when the session has none of the first)
_ALIASES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        r"everything\s+else|the\s+rest(?:\s+of\s+(?:the\s+)?(?:stems|tracks|mix|band|instruments))?"
        r"|all\s+(?:the\s+)?other\s+(?:stems|tracks|instruments|sounds|parts|elements)|(?:all\s+)?the"
        r"\s+others|remaining\s+(?:stems|tracks|instruments|elements)",
        (_REST,),
        (),
    ),
    (
        r"everything|all\s+(?:the\s+)?(?:stems|tracks|instruments|sounds|elements|parts)|the\s+"
        r"(?:whole|entire|full)\s+(?:mix|band|arrangement|scene)|every\s+(?:stem|track|instrument"
        r"|sound|element)",
        (_ALL,),
        (),
    ),
    (r"all\s+(?:the\s+)?(?:vocals|vox|voices)|every\s+vocal|vocal\s+(?:group|stems)", _VOCALS, ()),
    (r"lead\s+(?:vocals?|vox|voice|singer|vocalist)|main\s+(?:vocals?|vox|voice)", ("lead_vocal",), _VOCALS),
    (
        r"backing\s+(?:vocals?|vox|singers?)|back\s*up\s+(?:vocals?|singers?)|background\s+(?:vocals?"
        r"|vox|singers?)|harmony\s+vocals?|"
        + alt("backings? backups? bgvs? bvs? harmonies harmony doubles ad_?libs? adlibs?"),
        ("backing_vocal",),
        ("choir",),
    ),
    (r"choirs?|choral|gang\s+vocals?", ("choir",), ("backing_vocal",)),
    (r"(?:vocal|vox)\s+(?:fx|effects?|chops?|throws?)|chops", ("vocal_fx",), ("fx",)),
    (r"spoken(?:\s+word)?|narrat(?:ion|or)|voice\s*overs?|dialog(?:ue)?|speech", ("spoken",), ("lead_vocal",)),
    (r"vocals?|vox|voices?|singers?|vocalists?", ("lead_vocal",), _VOCALS),
    (r"lead\s+guitars?|guitar\s+solos?|solo\s+guitars?|lead\s+gtrs?", ("lead_guitar",), ("guitar",)),
    (r"lead\s+synths?|synth\s+(?:leads?|lines?|melod(?:y|ies))|saw\s+leads?", ("synth_lead",), ("synth", "arp")),
    (r"leads?", ("lead_vocal",), ("synth_lead", "lead_guitar")),
    (r"kick\s+drums?|kicks?|bass\s+drums?", ("kick",), ("drum_loop",)),
    (r"snares?(?:\s+drums?)?|rim\s*shots?", ("snare",), ("drum_loop",)),
    (r"(?:hand|finger)\s*claps?|claps?|snaps?", ("clap",), ("snare",)),
    (r"(?:closed\s+|open\s+)?(?:hi\s*hats?|high\s*hats?|hats?|hh)", ("hihat",), ("cymbal", "overheads")),
    (r"cymbals?|crash(?:es)?|rides?|china", ("cymbal",), ("overheads", "hihat")),
    (r"(?:floor\s+|rack\s+)?toms?|tom\s*toms?|tom\s+fills?", ("tom",), ("drum_loop",)),
    (
        alt(
            "percussion percussive percs? shakers? tambourines? tambs? congas? bongos? cowbells? "
            "woodblocks? claves? cajon djembes?"
        ),
        ("percussion",),
        ("drum_loop",),
    ),
    (r"drum\s+(?:loops?|breaks?)|break\s*beats?|top\s+loops?", ("drum_loop",), _DRUMS),
    (r"overheads|ohs|(?:oh|overhead)\s+mics?", ("overheads",), ("cymbal",)),
    (r"room\s+(?:mics?|microphones?)|rooms", ("room_mic",), ("ambience",)),
    (r"drums?|drum\s*kit|kit|drum\s+bus|rhythm\s+section", _DRUMS, ()),
    (r"sub\s*bass(?:es)?|subs?|808s?", ("sub",), ("bass", "bass_synth")),
    (r"synth\s+bass|bass\s+synths?|reese", ("bass_synth",), ("bass", "sub")),
    (
        r"bass\s*lines?|(?:electric\s+|upright\s+|double\s+)?bass(?:\s+guitars?)?|basses",
        ("bass",),
        ("bass_synth", "sub"),
    ),
    (r"(?:synth\s+|string\s+)?pads?", ("pad",), ("atmosphere", "synth")),
    (r"electric\s+pianos?|rhodes|wurli(?:tzer)?|keys|keyboards?|clav(?:inet)?", ("keys",), ("piano", "organ", "synth")),
    (r"(?:grand\s+|upright\s+)?pianos?", ("piano",), ("keys",)),
    (r"organs?|hammond|b3", ("organ",), ("keys",)),
    (r"acoustic\s+(?:guitars?|gtrs?)|acoustics?|nylon\s+guitars?", ("acoustic_guitar",), ("guitar",)),
    (r"guitars|gtrs|all\s+(?:the\s+)?guitars", ("guitar", "acoustic_guitar", "lead_guitar"), ()),
    (r"(?:electric\s+|rhythm\s+)?guitar|gtr", ("guitar",), ("acoustic_guitar", "lead_guitar")),
    (r"strings?(?:\s+section)?|violins?|violas?|cellos?|celli|fiddles?|orchestra", ("strings",), ("pad",)),
    (r"brass(?:\s+section)?|horns?(?:\s+section)?|trumpets?|trombones?|tubas?", ("brass",), ("woodwind",)),
    (r"woodwinds?|winds|flutes?|clarinets?|oboes?|bassoons?|sax(?:ophone)?s?", ("woodwind",), ("brass",)),
    (r"synths", ("synth", "synth_lead"), ("arp", "pluck", "pad")),
    (r"synth(?:esi[sz]er)?s?|stabs?|chords", ("synth",), ("synth_lead", "pad", "keys")),
    (r"arp(?:eggio|eggiator)?s?", ("arp",), ("synth", "pluck")),
    (r"plucks?", ("pluck",), ("arp", "synth")),
    (r"bells?|chimes?|glock(?:enspiel)?s?|celesta|music\s*box|mallets?|marimbas?", ("bell",), ()),
    (r"risers?|uplifters?|swells?|reverse\s+cymbals?", ("riser",), ("fx",)),
    (r"sound\s+effects?|sfx|fx|effects?", ("fx",), ("riser", "vocal_fx", "foley", "noise")),
    (r"ambiences?|room\s+tone|field\s+recordings?|soundscapes?", ("ambience",), ("atmosphere",)),
    (r"atmospheres?|atmospherics|drones?|textures?", ("atmosphere",), ("ambience", "pad")),
    (r"foley|footsteps?", ("foley",), ("fx",)),
    (r"(?:white\s+)?noises?|hiss|crackle", ("noise",), ("fx",)),
    *((c.replace("_", r"(?:_|\s+)") + "s?", (c,), ()) for c in STEM_CLASSES if c != "other"),
)
_ALIAS_RX = _rx("|".join(rf"(?P<a{i}>\b(?:{p})\b)" for i, (p, _, _) in enumerate(_ALIASES)))
_SENTENCE = _rx(r"(?<!\d)[.!?]+(?!\d)|[;\n]+")
_COMMA = _rx(r",|\b(?:but|while|whereas|meanwhile)\b")
_CONNECT = _rx(
    r"^[\s,&/+:-]*(?:(?:and|or|plus|as\s+well\s+as|along\s+with|together\s+with|with"
    r"|both|also|the|my|our|all|of|its|their)\b[\s,&/+:-]*)*$"
)
_TRAIL_ARTICLE = _rx(r"(?:\b(?:the|my|our|all|those|these|of|both)\s*)+$")

_Mention = tuple[int, int, frozenset[str], bool]  # start, end, stem ids, generic ("everything")


def _mentions(text: str, stems: Sequence[tuple[str, str]]) -> list[_Mention]:
    """Stem mentions (by id, class or synonym) in text order, without overlaps."""
    ids = {k: sid for sid, _ in stems if (k := normalize(sid)) and not k.isdigit()}
    cands: list[tuple[int, int, int, frozenset[str] | str]] = []
    if ids:
        # the session's stem ids: the one regex that has to be built per call
        id_rx = re.compile("|".join(rf"(?<!\w){re.escape(k)}(?!\w)" for k in sorted(ids, key=len, reverse=True)))
        cands += [(m.start(), m.end(), 0, frozenset({ids[m.group(0)]})) for m in id_rx.finditer(text)]
    cands += [(m.start(), m.end(), 1, m.lastgroup or "") for m in _ALIAS_RX.finditer(text)]
    chosen, end = [], -1
    for s, e, _, what in sorted(cands, key=lambda c: (c[0], c[0] - c[1], c[2])):
        if s >= end:  # leftmost, then longest, then ids before synonyms
            chosen.append((s, e, what))
            end = e
    every = frozenset(sid for sid, _ in stems)
    specific: set[str] = set()
    resolved: list[tuple[int, int, frozenset[str] | str]] = []
    for s, e, what in chosen:
        if isinstance(what, str):
            _, classes, fallback = _ALIASES[int(what[1:])]
            if classes[0] in (_ALL, _REST):
                resolved.append((s, e, classes[0]))
                continue
            what = frozenset(i for i, c in stems if c in classes) or frozenset(i for i, c in stems if c in fallback)
        specific |= what
        resolved.append((s, e, what))
    return [
        (s, e, w if isinstance(w, frozenset) else every if w == _ALL else every - specific, isinstance(w, str))
        for s, e, w in resolved
    ]


def _split(text: str, rx: re.Pattern[str], offset: int = 0) -> list[tuple[int, str]]:
    """Non-blank pieces of ``text`` between matches of ``rx``, with their start offsets."""
    out, start = [], 0
    for m in rx.finditer(text):
        out.append((start, text[start : m.start()]))
        start = m.end()
    out.append((start, text[start:]))
    return [(offset + s, t) for s, t in out if t.strip()]


def _clauses(norm: str, mentions: list[_Mention]) -> list[list[Any]]:
    """Group the text into [stem ids, clause text, generic, sentence number] per subject.

    A piece without a subject steers the subject before it in its sentence, else the next
    one; a sentence without any subject steers the last subject ("They slowly rotate.").
    """
    groups: list[list[Any]] = []
    for sent_no, (s_off, sent) in enumerate(_split(norm, _SENTENCE)):
        first, pending = len(groups), []
        for p_off, piece in _split(sent, _COMMA, s_off):
            inside = [m for m in mentions if p_off <= m[0] < p_off + len(piece)]
            if not inside:
                if len(groups) > first:
                    groups[-1][1] += " , " + piece
                else:
                    pending.append(piece)
                continue
            for k, (ms, me, ids, generic) in enumerate(inside):
                stop = inside[k + 1][0] if k + 1 < len(inside) else p_off + len(piece)
                body = norm[me:stop]
                if k > 0 and _CONNECT.match(norm[inside[k - 1][1] : ms]):  # "the kick and bass"
                    groups[-1][0] |= ids
                    groups[-1][2] = groups[-1][2] and generic
                    groups[-1][1] += " " + body
                    continue
                pre = _TRAIL_ARTICLE.sub("", norm[p_off:ms]) if k == 0 else ""
                groups.append([ids, " , ".join([*pending, pre, body]), generic, sent_no])
                pending = []
        if pending and groups:
            groups[-1][1] += " , " + " , ".join(pending)
    return groups


def parse_prompt(text: str, stems: Sequence[tuple[str, str]]) -> dict[str, Placement]:
    """Parse a scene-level prompt that names stems by id or by class / synonym.

    Parameters
    ----------
    text : str
        E.g. ``'put the vocals slightly above and the pads far behind; make the hats circle'``.
        Clauses split at sentences, ``;``, commas and each new subject; "everything" and
        "everything else" / "the rest" name all stems / all stems not named elsewhere, and
        yield to clauses that name stems specifically.
    stems : sequence of (stem_id, stem_class)
        The stems in the session.

    Returns
    -------
    dict of str to Placement
        One Placement (degrees, metres, width in [0, 1]) per stem the text steers, by id.
    """
    try:
        stems = [(str(i), str(c)) for i, c in stems]
        norm = normalize(text)
        mentions = _mentions(norm, stems)
        if not mentions:  # with a single stem, the whole prompt is its hint
            p = parse_norm(norm) if len(stems) == 1 else Placement()
            return {} if p.is_empty() else {stems[0][0]: p}
        groups = _clauses(norm, mentions)
        placements = [(g, parse_norm(g[1])) for g in groups]
        for (g, p), (g2, _) in zip(placements, placements[1:], strict=False):
            if p.is_empty() and g[3] == g2[3]:  # "the kick, the snare and the hats: centre"
                g2[0] = g2[0] | g[0]
        result: dict[str, Placement] = {}
        for generic_pass in (True, False):
            for g, p in placements:
                if g[2] == generic_pass and not p.is_empty():
                    for sid in sorted(g[0]):
                        result[sid] = result[sid].merged(p) if sid in result else p
        return {sid: result[sid] for sid, _ in stems if sid in result}
    except Exception:  # pragma: no cover - a parser bug must not break the planner
        log.exception("could not parse prompt %.80r", text)
        return {}
