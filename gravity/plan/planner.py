"""The deterministic planner: the embedded default proposer and the teacher for training.

Placement follows published immersive-music practice, written down as data in
:mod:`gravity.plan.templates` (genre templates, section shapes, each class's focused and open
stage): lead and low end anchored front-centre, ensembles spread as pairs, rear pairs and
seating charts, height for high and ambient material and never for the low band, depth
coherent with reverb, sections that contrast (verse focused, chorus and drop open), and a few
musical moves under a speed cap. Stem ``hint`` and request ``prompt`` text steer it through the
phrase parser (a stem's own hint wins over the prompt; a phrase that names several stems
spreads them over what it names); the hard rules win over everything (:func:`gravity.rules.enforce`
runs after the planner).

Same request + seed -> byte-identical output.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from gravity.defaults import CLASS_PLACEMENT, STYLE_LOUDNESS, STYLE_ROOM
from gravity.motion import Motion, angle_between, expand, keyframes_array, path_speed_deg_s, positions_at, wrap_az
from gravity.motion import scene_keyframes
from gravity.request import Request, Stem
from gravity.rules import in_region, pinned_low
from gravity.vocab import LEAD_CLASSES, LOW_CLASSES, family_of

from .limits import escape
from .templates import SECTION_SHAPE, GenreTemplate, SectionShape, goes_around, stage_of, template_for

__all__ = ["plan", "read_hints", "text_placed", "ends_at", "SPEED_CAP_DEG_S", "MIN_SEP_DEG"]

log = logging.getLogger(__name__)

#: Default ceiling on planned angular speed, degrees per second (text or a rule may ask more).
SPEED_CAP_DEG_S = 60.0
#: Least angle between two objects sharing a dominant band: same family / other families.
MIN_SEP_DEG = (25.0, 15.0)

_ANCHOR_AT: dict[str, tuple[float, float]] = {  # az, el: classes that never leave the centre
    "lead_vocal": (0.0, 5.0),
    "spoken": (0.0, 0.0),
    "kick": (0.0, 0.0),
    "bass": (0.0, 0.0),
    "sub": (0.0, 0.0),
    "bass_synth": (0.0, 0.0),
    "snare": (3.0, -10.0),  # just below the voice: centred yet apart
}
# Classes that may move on their own, most eligible first (percussion and pads never orbit by
# default: continuous motion of rhythm or harmony distracts; Dolby: "a little goes a long way").
_MOVERS = ("riser", "fx", "arp", "vocal_fx", "pluck", "bell", "foley")
# Classes that drift when the text asks for slow, floating motion.
_DRIFTERS = ("atmosphere", "ambience", "pad", "noise", "fx")
# Orchestra seating: instrument words in stem ids -> seat order within the class (American
# seating, seen from the podium: first seat leftmost).
_SEATS: dict[str, tuple[tuple[str, ...], ...]] = {
    "strings": (
        ("violin1", "vln1", "vn1", "vl1", "violins1", "violini"),
        ("violin2", "vln2", "vn2", "vl2", "violins2", "violinii"),
        ("violin", "vln", "vn", "violins", "fiddle"),
        ("viola", "vla", "va", "violas"),
        ("cello", "vc", "vlc", "celli", "cellos", "vcl"),
        ("contrabass", "cb", "db", "bass", "basses", "doublebass", "kb"),
    ),
    "brass": (
        ("horn", "horns", "hn", "hrn", "frenchhorn"),
        ("trumpet", "trumpets", "tpt", "tp"),
        ("trombone", "trombones", "tbn", "tb"),
        ("tuba", "tubas", "tba"),
    ),
    "woodwind": (
        ("piccolo", "picc", "flute", "flutes", "fl"),
        ("oboe", "oboes", "ob", "englishhorn"),
        ("clarinet", "clarinets", "cl", "cla"),
        ("bassoon", "bassoons", "bsn", "fg"),
    ),
}


@dataclass(frozen=True)
class _Row:
    """A row of an orchestra's stage (risers behind the strings).

    dist_m : stage distance of the row, metres (orchestral sessions)
    rise_deg : elevation added to the class's own when the class is seated by itself
    lift_deg : elevation above the front row when a phrase seats several sections together
    """

    dist_m: float
    rise_deg: float
    lift_deg: float


# Front row first: strings, then winds, brass and percussion; the choir at the back, above.
_ROWS: dict[str, _Row] = {
    "strings": _Row(5.0, 0.0, 0.0),
    "woodwind": _Row(6.0, 5.0, 8.0),
    "brass": _Row(7.0, 8.0, 14.0),
    "percussion": _Row(7.5, 6.0, 6.0),
    "choir": _Row(8.0, 20.0, 25.0),
}
_ROW_ORDER = tuple(_ROWS)
# Classes that may fill the rear of an open section, first choice first.
_REAR_FILL = (
    "pad",
    "atmosphere",
    "ambience",
    "noise",
    "fx",
    "vocal_fx",
    "choir",
    "strings",
    "synth",
    "arp",
    "pluck",
    "bell",
    "percussion",
    "room_mic",
    "other",
)
_SUSTAINED = frozenset({"strings", "pad", "choir", "backing_vocal", "organ", "synth", "brass", "woodwind"})
_ID_WORD = re.compile(r"[a-z]+|\d+")


@dataclass(frozen=True)
class _Mood:
    """Scene-wide words as numbers (see :mod:`gravity.plan.scene_words`): each -1 .. +1."""

    envelop: float = 0.0
    distance: float = 0.0
    wet: float = 0.0
    motion: float = 0.0


def _words(stem_id: str) -> list[str]:
    """Words of a stem id: "vln1" -> ["vln", "1"]; "Taiko_L" -> ["taiko", "l"]."""
    return _ID_WORD.findall(re.sub(r"([a-z])([A-Z])", r"\1 \2", stem_id).lower())


def _side_of(stem_id: str) -> float:
    """+1 / -1 when a stem id names its side ("gtr_l", "bgv_right"), else 0."""
    w = set(_words(stem_id))
    left, right = bool(w & {"l", "left", "lt", "lft"}), bool(w & {"r", "right", "rt", "rgt"})
    return 1.0 if left and not right else (-1.0 if right and not left else 0.0)


def _seat(stem: Stem) -> int:
    """Seat order of a stem within its class from the instrument words in its id (99 unknown)."""
    rows = _SEATS.get(stem.cls)
    if not rows:
        return 99
    w = _words(stem.id)
    joined = {"".join(w[i : i + 2]) for i in range(len(w))} | set(w)  # "vln", "1" -> "vln1"
    for k, names in enumerate(rows):
        if joined & set(names):
            return k
    return 99


def _stage_key(stem: Stem) -> str:
    """The stage a stem takes: its class, or "double" for the lead's doubles ("vox_dbl_l")."""
    if stem.cls == "backing_vocal" and set(_words(stem.id)) & {"dbl", "double", "doubles", "dt", "dub"}:
        return "double"
    return stem.cls


def _lerp(a: float, b: float, x: float) -> float:
    return a + (b - a) * x


def read_hints(request: Request) -> dict[str, Any]:
    """Stem id -> :class:`gravity.plan.hint.Placement`: what each stem's hint and the scene
    prompt say (the stem's own hint wins field by field); stems the text is silent on are absent.
    """
    return dict(_read_text(request)[0])  # a copy: the reading itself is shared


def text_placed(request: Request) -> frozenset[str]:
    """Ids of the stems the text gives a place, a path, a width or a region to avoid: the
    rule engine's budget grouping (``enforce(..., keep=)``) folds the other stems first.
    """
    fields = ("az_deg", "el_deg", "dist_m", "width", "motion", "max_width")
    return frozenset(
        sid for sid, h in _read_text(request)[0].items() if any(getattr(h, f) is not None for f in fields) or h.avoid
    )


def _read_text(request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
    """(merged placements, the stems' own hint placements), both by stem id (shared, read-only)."""
    if not request.prompt and not any(s.hint for s in request.stems):
        return {}, {}
    return _parse_text(request.prompt, tuple((s.id, s.cls, s.hint) for s in request.stems))


@functools.lru_cache(maxsize=256)
def _parse_text(prompt: str, stems: tuple[tuple[str, str, str], ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The phrase readers on one request's text, memoised on it.

    The model's pins, the text's limits on its candidates, the planner and the critic read the
    same text once. Placements are frozen; callers must not change the dicts.
    """
    # deferred: only needed when there is text (the readers compile their patterns on import)
    from gravity.plan.hint import parse_hint
    from gravity.plan.prompt import parse_prompt

    out: dict[str, Any] = {}
    own: dict[str, Any] = {}
    if prompt:
        out.update(parse_prompt(prompt, [(i, c) for i, c, _ in stems]))
    for sid, _, hint in stems:
        if hint:
            h = own[sid] = parse_hint(hint)
            prev = out.get(sid)
            out[sid] = h if prev is None else prev.merged(h)  # the stem's own hint wins
    return out, own


def _mood(request: Request) -> _Mood:
    """The prompt's scene-wide words (huge, intimate, vast, drifting...) for this section."""
    if not request.prompt:
        return _Mood()
    from gravity.plan.scene_words import parse_scene_words

    w = parse_scene_words(request.prompt, request.section)
    return _Mood(w.envelop, w.distance, w.wet, w.motion)


# --- positions ------------------------------------------------------------------------------
def _lead_id(request: Request) -> str | None:
    """The instrument stem anchored as the lead when there is no voice (see ``Request.lead_ids``)."""
    if any(s.cls in LEAD_CLASSES for s in request.stems):
        return None
    return next(iter(request.lead_ids), None)


def _slots(members: list[Stem]) -> list[int]:
    """Pair slot of each stem of one class: even slots left, odd right; ids that name a side
    ("gtr_l") take a slot on that side; the rest fill in request order.
    """
    n = len(members)
    free = list(range(n))
    out: dict[int, int] = {}
    for want in (1.0, -1.0):
        for i, s in enumerate(members):
            if _side_of(s.id) == want:
                pick = next((k for k in free if (k % 2 == 0) == (want > 0)), None)
                if pick is not None:
                    out[i] = pick
                    free.remove(pick)
    for i in range(n):
        if i not in out:
            out[i] = free.pop(0)
    return [out[i] for i in range(n)]


def _class_positions(
    cls: str, members: list[Stem], tpl: GenreTemplate, openness: float, lone_side: float
) -> list[tuple[float, float, float]]:
    """(az, el, width) for every stem of one class before text, separation and motion."""
    st = stage_of(cls, tpl)
    o = openness if not tpl.stage or goes_around(cls) else 0.7 * openness
    # height comes early as a section opens, the sides and rear later
    az_c, el_c = _lerp(st.az_focus, st.az_open, o), _lerp(st.el_focus, st.el_open, float(np.sqrt(o)))
    w_c = _lerp(st.width_focus, st.width_open, o)
    if tpl.stage and not goes_around(cls):
        az_c = min(az_c, 70.0)  # heard from the audience: the ensemble stays on the stage
        if cls in _SUSTAINED:  # ...whose sustained parts rise into the hall's height as the song opens
            el_c += 30.0 * max(0.0, o - 0.25)
    n = len(members)
    if n == 1:
        if w_c >= 0.8 and az_c >= 100.0:
            return [(180.0, el_c, w_c)]  # one wide texture: behind, spread by its width
        return [(lone_side * az_c, el_c, w_c)]
    if cls in _SEATS and n >= 3:
        # A section of the orchestra: seats across the stage in seating order, left to right.
        order = sorted(range(n), key=lambda i: (_seat(members[i]), i))
        half = max(az_c, 45.0)
        out: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)] * n
        for rank, i in enumerate(order):
            out[i] = (half - 2.0 * half * (rank + 0.5) / n, el_c, min(w_c, 0.5))
        return out
    out = []
    for k in _slots(members):
        side, ring = (1.0 if k % 2 == 0 else -1.0), k // 2
        if ring == 0:
            az = az_c
        elif ring == 1 and st.rear_pair and o >= 0.6 and not tpl.stage:
            az = float(np.clip(180.0 - 0.6 * az_c, 115.0, 165.0))  # a front-rear pair in a chorus
        else:
            az = min(175.0, az_c + 22.0 * ring)
        out.append((side * az, el_c + (5.0 if ring else 0.0), w_c))
    return out


def _arrange_groups(
    request: Request,
    hints: dict[str, Any],
    own: dict[str, Any],
    pos: dict[str, list[float]],
    pinned: frozenset[str],
) -> set[str]:
    """Spread the stems a phrase named together over what the phrase named; returns their ids.

    ``arc_deg`` >= 359: a ring around the listener; 180 with a side azimuth: mirrored pairs
    ("each side"); another arc: evenly across it, in seating order; a point: a small fan. A
    motion the phrase gives the whole group is fanned the same way (see :func:`_fan_motion`).
    """
    placed: set[str] = set()
    done: set[tuple[str, ...]] = set()
    for h in hints.values():
        group = tuple(getattr(h, "group", ()) or ())
        if len(group) < 2 or group in done or h.az_deg is None:
            continue
        done.add(group)
        members = [
            s
            for s in request.stems
            if s.id in group and s.id not in pinned and not (s.id in own and own[s.id].az_deg is not None)
        ]
        if not members:
            continue
        members.sort(key=lambda s: (_seat(s), request.stems.index(s)))
        n, arc, c = len(members), getattr(h, "arc_deg", None), float(h.az_deg)
        if arc is not None and arc < 179.0:
            _seat_rows(members, c, float(arc), h.el_deg, pos)
            placed.update(s.id for s in members)
            continue
        for k, s in enumerate(members):
            if arc is None:
                az = c + (k - (n - 1) / 2.0) * 10.0
            elif arc >= 359.0:
                az = c + 180.0 - 360.0 * (k + 0.5) / n
            elif abs(arc - 180.0) < 1.0 and abs(abs(c) - 90.0) < 1.0:
                az = (1.0 if k % 2 == 0 else -1.0) * (90.0 + 15.0 * (k // 2) * (1 if k // 4 % 2 == 0 else -1))
            else:
                az = c + arc / 2.0 - arc * (k + 0.5) / n
            pos[s.id][0] = float(wrap_az(az))
            if h.el_deg is not None:
                pos[s.id][1] = float(h.el_deg)
            placed.add(s.id)
    return placed


def _seat_rows(members: list[Stem], c: float, arc: float, el: float | None, pos: dict[str, list[float]]) -> None:
    """Seat a group over an arc (degrees, centred on azimuth ``c``), at least 15 degrees apart
    where the arc allows (up to 120). A group holding several orchestra sections sits in rows:
    strings in front, then winds, brass and percussion, choir above; each row a little higher.
    """
    rows: dict[str, list[Stem]] = {}
    orchestral = len({s.cls for s in members} & set(_ROW_ORDER)) >= 2
    for s in members:
        rows.setdefault(s.cls if orchestral and s.cls in _ROW_ORDER else "", []).append(s)
    base = el if el is not None else min(pos[s.id][1] for s in members)
    for key, row in rows.items():
        k_row = _ROW_ORDER.index(key) if key in _ROW_ORDER else 0
        span = min(max(arc, 20.0 * len(row)), 120.0) * (1.0 if k_row == 0 else 0.8)
        for k, s in enumerate(row):
            az = c + span / 2.0 - span * (k + 0.5) / len(row)
            # the centre seat of an odd row moves a few degrees right: only the lead owns 0
            pos[s.id][0] = float(wrap_az(az if abs(az) > 1.0 else az - 4.0))
            e = base + (_ROWS[key].lift_deg if key in _ROWS else 0.0)
            pos[s.id][1] = min(e, 8.0) if s.dominant_band == "low" else e


def _partners(objs: list[dict[str, Any]], stems: list[Stem]) -> dict[int, int]:
    """Mirrored pairs: two stems of one stage at (az, el) and (-az, el), both ways."""
    out: dict[int, int] = {}
    for i, a in enumerate(objs):
        for j in range(i + 1, len(objs)):
            b = objs[j]
            if (
                i not in out
                and j not in out
                and _stage_key(stems[i]) == _stage_key(stems[j])
                and a["az_deg"] != 0
                and abs(a["az_deg"] + b["az_deg"]) < 0.5
                and abs(a["el_deg"] - b["el_deg"]) < 0.5
            ):
                out[i], out[j] = j, i
    return out


def _fill_rear(
    objs: list[dict[str, Any]],
    stems: list[Stem],
    fixed: list[bool],
    avoid: list[tuple[str, ...]],
    keep: frozenset[str] | set[str],
    share: float,
) -> None:
    """A drop fills the sphere: move lone side objects (textures first) into the rear until
    ``share`` of the objects are there (|az| > 110); pairs keep their sides, anchors their place.
    """
    in_rear = sum(abs(o["az_deg"]) > 110.0 for o in objs)
    want = int(np.ceil(share * len(objs)))
    partner = _partners(objs, stems)
    cands = sorted(
        (
            i
            for i, o in enumerate(objs)
            if 60.0 <= abs(o["az_deg"]) <= 110.0
            and i not in partner
            and not fixed[i]
            and "rear" not in avoid[i]
            and stems[i].id not in keep
            and stems[i].cls in _REAR_FILL
            and stems[i].cls not in LOW_CLASSES
        ),
        key=lambda i: (_REAR_FILL.index(stems[i].cls), i),
    )
    for i in cands[: max(0, want - in_rear)]:
        az = objs[i]["az_deg"]
        objs[i]["az_deg"] = float(np.sign(az)) * (180.0 - 0.5 * (180.0 - abs(az)))


def _separate(objs: list[dict[str, Any]], stems: list[Stem], fixed: list[bool], avoid: list[tuple[str, ...]]) -> None:
    """Keep same-band stems apart so they do not mask each other (spatial release from masking).

    Greedy, placed stems first, then by importance: each object takes the position nearest its
    home that keeps :data:`MIN_SEP_DEG` from the placed objects of its band (more within a
    family: two guitars), searching azimuth first, then elevation. Centred low end shares the
    centre by design; mirrored partners move together only through their own search.
    """
    order = sorted(range(len(objs)), key=lambda i: (not fixed[i], -stems[i].leadness, i))
    partner = _partners(objs, stems)
    placed: list[int] = []
    d_az, d_el = _offsets()
    for i in order:
        o = objs[i]
        centred = stems[i].cls in LOW_CLASSES or (o["az_deg"] == 0 and o["width"] == 0)
        rivals = [
            j
            for j in placed
            if stems[j].dominant_band == stems[i].dominant_band
            and not (centred and (stems[j].cls in LOW_CLASSES or (objs[j]["az_deg"] == 0 and objs[j]["width"] == 0)))
        ]
        if fixed[i] or centred or not rivals:
            placed.append(i)
            continue
        same = [family_of(stems[j].cls) == family_of(stems[i].cls) for j in rivals]
        need = np.where(same, MIN_SEP_DEG[0], MIN_SEP_DEG[1])
        r_az = np.array([objs[j]["az_deg"] for j in rivals])
        r_el = np.array([objs[j]["el_deg"] for j in rivals])
        el_hi = 8.0 if stems[i].dominant_band == "low" else 80.0  # the low band stays down (Lee, AES 9325)
        az = wrap_az(o["az_deg"] + d_az)
        el = np.clip(o["el_deg"] + d_el, -30.0, max(el_hi, o["el_deg"]))
        sep = angle_between(az[:, None], el[:, None], r_az[None, :], r_el[None, :])
        ok = np.all(sep >= need[None, :], axis=1) & (np.abs(wrap_az(az)) <= 178.0)
        for r in avoid[i]:
            ok &= ~in_region(r, az, el)
        if ok.any():
            # the nearest free direction (displacement measured on the sphere, ties: azimuth first)
            # ...preferring to move outwards: crowding the centre is the front collapse to avoid
            inward = np.maximum(0.0, abs(o["az_deg"]) - np.abs(az))
            cost = angle_between(o["az_deg"], o["el_deg"], az, el) + 0.5 * inward + 0.01 * np.abs(d_el)
            k = int(np.argmin(np.where(ok, cost, np.inf)))
            o["az_deg"], o["el_deg"] = float(az[k]), float(el[k])
            j = partner.get(i)
            if j is not None and j not in placed and not fixed[j]:
                # the partner starts its own search from the mirror image, so pairs stay mirrored
                objs[j]["az_deg"], objs[j]["el_deg"] = -o["az_deg"], o["el_deg"]
        placed.append(i)


@functools.cache
def _offsets() -> tuple[np.ndarray, np.ndarray]:
    """Candidate moves for the separation search: azimuth -90..90 by 2, elevation -16..24 by 4 (degrees)."""
    a, e = np.meshgrid(np.arange(-90.0, 91.0, 2.0), np.arange(-16.0, 25.0, 4.0))
    return a.ravel(), e.ravel()


# --- motion ---------------------------------------------------------------------------------
def _capped(motion: Motion, base: tuple[float, float, float], request: Request, cap: float) -> Motion | None:
    """The motion with the shortest musical period (1, 2, 4, ... bars) that stays under ``cap``
    degrees per second; None when even the slowest (the whole section) is too fast.
    """
    if motion.pattern not in ("orbit", "ping_pong"):
        kf = keyframes_array(expand(motion, base, request.section_bars))
        return motion if path_speed_deg_s(kf, request.section_s) <= cap else None
    for bars in (1, 2, 4, 8, 16, 32, 64):
        if bars > 2 * request.section_bars:
            break
        m = Motion(motion.pattern, {**motion.params, "period_bars": bars})
        if path_speed_deg_s(keyframes_array(expand(m, base, request.section_bars)), request.section_s) <= cap:
            return m
    return None


def _motion_for(
    stem: Stem, request: Request, base: tuple[float, float, float], drift: bool, rng: np.random.Generator
) -> Motion | None:
    """The musical move of a mover class in this section (before the speed cap)."""
    cls, (az, _, dist) = stem.cls, base
    if drift:
        return Motion("orbit", {"direction": "ccw" if az >= 0 else "cw", "period_bars": 4})
    if cls == "riser":
        if request.section in ("build", "pre_chorus"):
            return Motion("rise", {"from_el": 0.0, "to_el": 60.0})
        return Motion("approach", {"from_dist": 8.0, "to_dist": dist})
    if cls in ("arp", "pluck", "bell", "vocal_fx"):
        to = wrap_az(-az) if abs(az) > 10 else 45.0
        return Motion("ping_pong", {"from_az": az, "to_az": to, "period_bars": 2})
    if cls == "fx" and request.section in ("drop", "chorus", "hook", "post_chorus"):
        return Motion("orbit", {"direction": "ccw" if rng.random() < 0.5 else "cw", "period_bars": 4})
    if cls in ("fx", "foley"):
        return Motion("pan", {"from_az": az, "to_az": wrap_az(180.0 - az) if abs(az) < 170 else 90.0})
    return None


def _steered(h: Any) -> bool:
    """Whether the text placed a stem or gave it a motion (then the planner does not move it)."""
    return h is not None and (h.places or h.motion is not None)


def _plan_motion(
    request: Request,
    tpl: GenreTemplate,
    shape: SectionShape,
    mood: _Mood,
    objs: list[dict[str, Any]],
    hints: dict[str, Any],
    lead: str | None,
    rng: np.random.Generator,
) -> list[Motion | None]:
    """Motion per object: the text's, else a few capped musical moves of the template's movers."""
    stems = list(request.stems)
    out: list[Motion | None] = [None] * len(objs)
    cap = min(SPEED_CAP_DEG_S, tpl.speed_cap * (0.5 if mood.motion < -0.2 else 1.0))
    drifting = -0.8 < mood.motion < -0.2  # "slowly drifting, floating"
    n_movers = round(tpl.movers * shape.motion * (1.0 + max(mood.motion, 0.0)))
    if mood.motion <= -0.8:
        n_movers = 0
    if drifting:
        n_movers, cap = max(n_movers, 2), min(cap, 15.0)
    rank = _DRIFTERS if drifting else _MOVERS
    cands = sorted(
        (i for i, s in enumerate(stems) if s.cls in rank and s.id != lead and not _steered(hints.get(s.id))),
        key=lambda i: (rank.index(stems[i].cls), i),
    )
    for i in cands[:n_movers]:
        o = objs[i]
        base = (o["az_deg"], o["el_deg"], o["dist_m"])
        m = _motion_for(stems[i], request, base, drifting, rng)
        out[i] = None if m is None or cap <= 0 else _capped(m, base, request, cap)
    for i, s in enumerate(stems):
        h = hints.get(s.id)
        if h is None:
            continue
        if h.motion is not None:
            base = (objs[i]["az_deg"], objs[i]["el_deg"], objs[i]["dist_m"])
            m = _fan_motion(h.motion, s.id, tuple(getattr(h, "group", ()) or ()), base)
            m = ends_at(m, h.el_deg, h.dist_m, base[2])
            if "period_bars" not in m.params and m.pattern in ("orbit", "ping_pong"):
                m = _capped(m, base, request, SPEED_CAP_DEG_S) or m  # asked to move: the cap picks the period
            out[i] = m
    return out


def ends_at(m: Motion, el: float | None, dist: float | None, home_dist: float | None = None) -> Motion:
    """A vertical or depth move that passes where the text also put the stem: "up high, rising"
    rises to up high, "overhead, falling" falls from overhead, "far away, moving away" recedes
    to far away, "close, approaching" approaches to close (degrees, metres). The asked value is
    one end; the other lies 45 degrees away, or in depth at max(8 m, twice as far) from a place
    nearer than 6 m and at a third of the distance from a farther one (the default ends, 8 m
    and home, are still or backwards for a home at 8 m or beyond). ``home_dist`` (metres) stands
    in for an unasked distance; None leaves such a depth move as it is. The planner, the training
    teacher and the model's grammar pins (:mod:`gravity.llm.grammar`) all use this.
    """
    if m.params:  # the text gave the ends itself
        return m
    if m.pattern in ("rise", "fall") and el is not None:
        lo, hi = (el - 45.0, el) if el >= 20.0 else (el, el + 45.0)
        lo, hi = max(lo, -40.0), min(hi, 90.0)
        return Motion(m.pattern, {"from_el": lo, "to_el": hi} if m.pattern == "rise" else {"from_el": hi, "to_el": lo})
    d = dist if dist is not None else home_dist
    if m.pattern in ("approach", "recede") and d is not None:
        near, far = (d, max(8.0, 2.0 * d)) if d < 6.0 else (max(1.0, d / 3.0), d)
        return Motion(
            m.pattern,
            {"from_dist": far, "to_dist": near} if m.pattern == "approach" else {"from_dist": near, "to_dist": far},
        )
    return m


def _fan_motion(m: Motion, stem_id: str, group: tuple[str, ...], base: tuple[float, float, float]) -> Motion:
    """One motion a phrase gave several stems ("whooshes flying over my head"), fanned so the
    stems do not travel as one: member k of n starts and ends (k - (n-1)/2) * 30 degrees apart.
    """
    if len(group) < 2 or stem_id not in group or m.pattern not in ("fly_over", "pan", "ping_pong"):
        return m
    off = (group.index(stem_id) - (len(group) - 1) / 2.0) * 30.0
    a = float(m.params.get("from_az", base[0]))
    b = float(m.params.get("to_az", 180.0 if m.pattern == "fly_over" else -a if a else -90.0))
    sign = 1.0 if m.pattern != "fly_over" else -1.0  # a fly-over's two ends spread the other way
    return Motion(m.pattern, {**m.params, "from_az": float(wrap_az(a + off)), "to_az": float(wrap_az(b + sign * off))})


def _keep_paths_apart(objs: list[dict[str, Any]], stems: list[Stem], movers: list[int]) -> None:
    """Lift or lower a planned mover whose path passes within 15 degrees of a same-band object."""
    t = np.linspace(0.0, 1.0, 33)
    paths = [positions_at(keyframes_array(o["motion"]), t) for o in objs]
    for i in movers:
        base_el = objs[i]["el_deg"]
        for d_el in (0.0, 12.0, -12.0, 24.0):
            p = paths[i] + np.array([0.0, d_el, 0.0])
            close = any(
                float(np.min(angle_between(p[:, 0], p[:, 1], paths[j][:, 0], paths[j][:, 1]))) < MIN_SEP_DEG[1]
                for j in range(len(objs))
                if j != i and stems[j].dominant_band == stems[i].dominant_band
            )
            if not close:
                break
        else:
            continue
        if d_el:
            el = float(np.clip(base_el + d_el, -30.0, 80.0))
            for k in objs[i]["motion"]:
                k["el_deg"] = round(float(np.clip(k["el_deg"] + (el - base_el), -90.0, 90.0)), 1)
            objs[i]["el_deg"] = objs[i]["motion"][0]["el_deg"]
            paths[i] = positions_at(keyframes_array(objs[i]["motion"]), t)


# --- the planner ----------------------------------------------------------------------------
def plan(request: Request, seed: int = 0) -> dict[str, Any]:
    """Propose a scene for ``request`` (not yet rule-checked: pass it to ``rules.enforce``).

    Parameters
    ----------
    request : Request
        The validated request.
    seed : int
        Seeds the small variations (+-3 degree jitter per class, orbit direction); same seed,
        same scene.

    Returns
    -------
    dict
        A scene document (``constraints_applied`` empty: the rule engine fills it).
    """
    rng = np.random.default_rng(seed)
    _, tpl = template_for(request.style)
    shape = SECTION_SHAPE.get(request.section, SECTION_SHAPE["full"])
    hints, own = _read_text(request)
    mood = _mood(request)
    openness = float(
        np.clip(shape.openness + tpl.openness + 0.3 * (request.energy - 0.5) + 0.4 * mood.envelop, 0.0, 1.0)
    )
    far = shape.far * (1.0 + 0.45 * mood.distance)
    wet = shape.wet * tpl.wet * (1.0 + 0.4 * mood.wet + 0.2 * mood.distance)
    lead = _lead_id(request)
    stems = list(request.stems)

    # Home positions: anchors at the centre, every other class as a stage / pair / seating.
    pos: dict[str, list[float]] = {}
    by_class: dict[str, list[Stem]] = {}
    pinned = pinned_low(request)  # the rules will centre these: plan the others around them
    orchestral = len({s.cls for s in stems} & set(_ROW_ORDER)) >= 3
    for s in stems:
        by_class.setdefault("pinned" if s.id in pinned else _stage_key(s), []).append(s)
    lone = 0
    for cls, members in by_class.items():
        jitter = float(rng.uniform(-3.0, 3.0))
        if lead is not None and any(s.id == lead for s in members):
            pos[lead] = [0.0, 5.0, 0.2]  # the lead instrument of a song without a voice
            members = [s for s in members if s.id != lead]
            if not members:
                continue
        if cls == "pinned":
            for s in members:
                pos[s.id] = [0.0, 0.0, 0.0]
            continue
        if cls in _ANCHOR_AT:
            az0, el0 = _ANCHOR_AT[cls]
            n = len(members)
            for k, s in enumerate(members):
                fan = 0.0 if cls in LOW_CLASSES else (k - (n - 1) / 2.0) * 12.0
                pos[s.id] = [az0 + fan, el0, CLASS_PLACEMENT[cls].width if cls not in LOW_CLASSES else 0.0]
            continue
        # a lone stem takes the emptier side (pairs fill both), so the band does not lean
        n_left = sum(p[0] > 0 for p in pos.values())
        n_right = sum(p[0] < 0 for p in pos.values())
        side = (1.0 if lone % 2 == 0 else -1.0) if n_left == n_right else (1.0 if n_left < n_right else -1.0)
        lone += len(members) == 1
        for s, (az, el, w) in zip(members, _class_positions(cls, members, tpl, openness, side), strict=True):
            row_el = _ROWS[cls].rise_deg if cls in _ROWS and (orchestral or len(members) >= 3) else 0.0
            el = el * tpl.height + row_el
            if s.dominant_band == "low":
                el = min(el, 8.0)  # low frequencies do not localise up high (Lee, AES 9325)
            az = float(np.sign(az)) * float(np.clip(abs(az) + jitter, 5.0, 178.0)) if az else 0.0
            # an orchestra sits in rows: the rows behind the strings are farther (and so wetter)
            home = _ROWS[cls].dist_m if orchestral and cls in _ROWS else CLASS_PLACEMENT[s.cls].dist_m
            pos[s.id] = [az, el, w, home]

    texted = _arrange_groups(request, hints, own, pos, pinned)
    objs: list[dict[str, Any]] = []
    fixed: list[bool] = []
    avoid: list[tuple[str, ...]] = []
    for s in stems:
        p = CLASS_PLACEMENT[s.cls]
        az, el, width = pos[s.id][:3]
        home = pos[s.id][3] if len(pos[s.id]) > 3 else p.dist_m
        dist = float(np.clip(home * far * (1.1 - 0.2 * s.leadness), 0.5, 20.0))
        h = hints.get(s.id)
        placed = s.id in texted
        if h is not None:
            if s.id not in texted or (s.id in own and own[s.id].az_deg is not None):
                az = h.az_deg if h.az_deg is not None else az
            el = h.el_deg if h.el_deg is not None else el
            dist = h.dist_m if h.dist_m is not None else dist
            width = h.width if h.width is not None else width
            placed = placed or h.az_deg is not None or h.el_deg is not None
        if h is not None and getattr(h, "max_width", None) is not None:
            width = min(width, float(h.max_width))
        a = tuple(getattr(h, "avoid", ()) or ()) if h is not None else ()
        if a:
            az, el = escape(float(az), float(el), a)
        if not request.has_height:
            el = 0.0
        # Depth coherent with reverb: the send grows with distance for every class (farther is
        # wetter), except the low end, which stays as dry as its class says.
        send = p.reverb * wet if s.cls in LOW_CLASSES else wet * (0.24 * float(np.log2(1.0 + dist)) - 0.14)
        objs.append(
            {
                "id": s.id,
                "class": s.cls,
                "az_deg": float(wrap_az(az)),
                "el_deg": float(el),
                "dist_m": dist,
                "width": round(float(np.clip(width, 0.0, 1.0)), 2),
                "gain_db": round(1.0 if s.leadness > 0.85 else (-2.0 if s.leadness < 0.1 else 0.0), 1),
                "reverb_send": round(float(np.clip(send, 0.02 if s.cls not in LOW_CLASSES else 0.0, 1.0)), 2),
                "early_reflections": round(float(np.clip(p.er * (0.8 + 0.4 * wet / 1.5), 0.0, 1.0)), 2),
            }
        )
        fixed.append(placed)
        avoid.append(a)
    if openness >= 0.75 and not tpl.stage:
        _fill_rear(objs, stems, fixed, avoid, pinned | {lead or ""} | request.lead_ids, 0.25 * openness)
    _separate(objs, stems, fixed, avoid)
    motions = _plan_motion(request, tpl, shape, mood, objs, hints, lead, rng)
    for o, m in zip(objs, motions, strict=True):
        base = (o["az_deg"], o["el_deg"], o["dist_m"])
        o["motion"] = scene_keyframes(m, base, request.section_bars, has_height=request.has_height)
        o["az_deg"], o["el_deg"], o["dist_m"] = (o["motion"][0][f] for f in ("az_deg", "el_deg", "dist_m"))
    if request.has_height:
        planned = [i for i, m in enumerate(motions) if m is not None and not _steered(hints.get(stems[i].id))]
        _keep_paths_apart(objs, stems, planned)
    return {
        "version": "1.0",
        "bed": {
            "layout": request.target_format,
            "loudness_target_lufs": STYLE_LOUDNESS.get(request.style, -14.0),
            "room_preset": STYLE_ROOM.get(request.style, "studio_large"),
        },
        "objects": objs,
        "constraints_applied": [],
    }
