"""Compositional scene language for the training data: one clause, several stems, per-stem labels.

The phrase grammar of :mod:`training.data` renders one label into one stem's phrase; the phrase
parser (:mod:`gravity.plan.prompt`) reads most of those. This module writes the sentences a
producer says about *several* stems at once, which the parser cannot assign, each with the
:class:`training.data.Label` of every stem whose place the sentence implies:

========== ======================================================= ===============================
kind       example (train pool)                                    labels
========== ======================================================= ===============================
shared     "the pad at 2 o'clock, the arp forward left, the pair   each its own azimuth, the
           of them overhead"                                       shared height / distance
split      "the gtr1 and the gtr2 panned hard to opposite sides"   first named +v, second -v
opposite   "the keys wide on the left with the pad facing it from  b mirrors a: -az (a side), or
           the other side"                                         a + 180 (a front / back)
flank      "the keys and the arp flanking the singer"              lead az +-40 (+-30 "tight")
body       "have the gtr2 an inch from my nose"                    az / el / dist of a body word
except     "everything goes behind me except the vocal"            the others over the region
                                                                   (the planner's arithmetic);
                                                                   the excepted stem its home
only       "leave the pad as the only thing up high"               the region's value for it
negated    "keep the synth well away from the left"                the opposite region's centre
motion     "the arp and the pluck keep swapping sides"             one shared pattern (ping_pong
                                                                   ends swapped, a chase starts
                                                                   half a lap apart)
========== ======================================================= ===============================

Values are :mod:`gravity.plan.conventions`' (azimuth degrees, + = LEFT; elevation degrees, + up;
distance metres). House conventions where the words leave a choice: of a pair split "to
opposite sides" the first named (or the first in request order for a plural noun) goes left, as
the planner seats even slots left; "flanking the vocal" is the lead's azimuth +-40 (+-30 "tight");
a region phrase spreads a group as :mod:`gravity.plan.planner` spreads a group the parser reads
(the rear over 110 degrees, the front over 60, a side as a 10-degree fan), so scene language the
parser can and cannot read teaches one layout; "well away from / well clear of" a region is
the opposite region's centre (left <-> right, front -> behind), while a plain "not behind"
stays a planner decision (:mod:`training.data`'s scene clauses); the stem excepted from a region
gets its class home in the region's coordinate (azimuth 0 for a centred class, its home distance
or height), and only a stem whose home lies outside the region is excepted (the parser reads
"everything except the pad behind me" as "the pad behind me": only a label overrides that);
"only X up high" is written only when no other stem lives up high (the planner reads no
exclusion into it); an approach / recede is :func:`gravity.plan.planner.ends_at`'s move for
"far away" (8 m -> 2.67 m and back).

Like :mod:`training.data`, the wording comes in two disjoint pools, ``train`` and ``heldout``
(tuples ``(train, heldout)``), and none of them renders the hand-written acceptance set
``training/eval_sets/scene_language.jsonl`` or a six-word run of it (a test checks).

Teacher consistency: at run time the model's grammar pins what the phrase parser reads
*exactly* and :func:`training.data.teacher_scene` keeps that reading, so a clause whose exact
reading contradicts one of its labels (azimuth off by more than 10 degrees, elevation, distance
or motion differing, a label inside a region the reading avoids, a group the parser spreads
itself) would give targets that contradict the pins: :func:`compose_clause` rejects it (on the
clause alone) and :func:`add_to_request` rejects it inside the request's whole text, drawing
again (rejection sampling from the row's own generator, so rows stay pure functions).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from gravity.defaults import CLASS_PLACEMENT
from gravity.motion import Motion, wrap_az
from gravity.plan import conventions as C
from gravity.rules import in_region
from training.data import Label, _direction, _distance, _elevation, _hinted_ok, _mention, _pick, _pool

__all__ = ["KINDS", "Composed", "compose_clause", "add_to_request", "conflicts", "reading_class", "pool_phrases"]

log = logging.getLogger(__name__)

_TRIES = 8  # draws per clause before giving up (a kind whose stems are missing draws again)
_AZ_TOL = 10.0  # degrees: an exact reading further than this from a label contradicts it
_EL_TOL = 10.0  # degrees
_DIST_TOL = 0.2  # relative: 1.0 m vs 1.2 m is the same "close"
_FLANK = (40.0, 30.0)  # degrees either side of the lead: default, "tight"
_FAN_DEG = 10.0  # the planner's fan for a group at one point (degrees between members)

Pair = tuple[Any, Any]  # (train variants, held-out variants)


class Composed(NamedTuple):
    """One clause: its text, the label of every stem it places, its kind and the stems it
    says are *not* somewhere (``excluded``: an exact reading there would contradict the text).
    """

    text: str
    labels: dict[str, Label]
    kind: str
    excluded: dict[str, Label] = {}


# ----------------------------------------------------------------------------- vocabulary
_PLURAL: dict[str, tuple[str, tuple[str, ...]]] = {
    # class -> (plural noun, the classes the parser reads that noun as): the noun is used only
    # when the two stems are the request's only stems of those classes
    "guitar": ("guitars", ("guitar", "acoustic_guitar", "lead_guitar")),
    "backing_vocal": ("backing vocals", ("backing_vocal",)),
    "synth": ("synths", ("synth", "synth_lead")),
    "keys": ("keyboards", ("keys",)),
    "strings": ("string parts", ("strings",)),
}
_PLURAL_T: Pair = (("the {p}", "the two {p}"), ("both {p}", "the pair of {p}"))

_SHARED_T: dict[int, Pair] = {
    2: (
        (
            "{a} {da}, {b} {db}, the pair of them {m}",
            "{a} {da}, {b} {db}, and each of them {m}",
            "{a} goes {da} while {b} goes {db}, with the two of them {m}",
            "{a} {da} plus {b} {db}, both sitting {m}",
        ),
        ("{a} {da}, {b} {db}, both of them {m}", "{a} {da} with {b} {db}, the two together {m}"),
    ),
    3: (
        ("{a} {da}, {b} {db}, {c} {dc}, all three {m}", "{a} {da} with {b} {db} plus {c} {dc}, every one of them {m}"),
        ("{a} {da}, {b} {db}, {c} {dc}, the three of them {m}",),
    ),
}
_SPLIT_AMT: tuple[tuple[float, Pair], ...] = (
    (C.AZ_HARD, (("hard", "all the way"), ("completely", "as far as possible"))),
    (C.AZ_WIDE, (("wide",), ("well out",))),
    (C.AZ_HALF, (("halfway",), ("part of the way",))),
    (C.AZ_SLIGHT, (("slightly",), ("a fraction",))),
)
_SPLIT_T: Pair = (
    (
        "{ab} panned {amt} to opposite sides",
        "send {ab} {amt} to opposite sides",
        "{ab} mirrored {amt} across the stage",
        "{ab} split {amt} across the stereo image",
    ),
    ("{ab} sitting {amt} on opposing sides", "{ab} divided {amt} between the two sides", "pan {ab} {amt} apart"),
)
_OPPOSITE_T: Pair = (
    (
        "{a} {da}, {b} mirroring it on the other side",
        "{a} {da}, {b} over on the other side from it",
        "{a} {da} with {b} facing it from the other side",
        "put {a} {da}, then {b} directly across from it",
    ),
    ("{a} {da}, {b} opposite to it", "{a} {da}, with {b} as its mirror image"),
)
_FLANK_T: tuple[Pair, Pair] = (  # (default, tight)
    (
        ("{ab} flanking {L}", "{ab} guarding {L} on its two sides", "{L} in the middle, {ab} framing it"),
        ("{ab} bracketing {L}", "{L} sandwiched between {ab}"),
    ),
    (("{ab} tucked in tight around {L}", "{ab} hugging {L} closely"), ("{ab} huddled close around {L}",)),
)
_LEAD_NAMES: Pair = (("the singer", "the lead"), ("the main vocal", "the voice"))

# (phrase, az, el, dist); "{s}" = side word, the right-hand azimuth is the mirror
_Body = tuple[str, float | None, float | None, float | None]
_BODY: tuple[tuple[_Body, ...], tuple[_Body, ...]] = (
    (
        ("just over my {s} shoulder", C.AZ_BACK_HALF, C.EL_SHOULDER, None),
        ("an arm's length to my {s}", C.AZ_HARD, None, C.DIST_CLOSE),
        ("brushing my {s} ear", C.AZ_HARD, None, C.DIST_VERY_CLOSE),
        ("inches from my face", C.AZ_FRONT, None, C.DIST_VERY_CLOSE),
        ("an inch from my nose", C.AZ_FRONT, None, C.DIST_VERY_CLOSE),
        ("at the back of my neck", C.AZ_BACK, None, C.DIST_VERY_CLOSE),
        ("down by my knees", None, C.EL_FLOOR, None),
        ("sunk below the skyline", None, C.EL_FLOOR, None),
        ("sitting on top of my head", None, C.EL_ZENITH, None),
    ),
    (
        ("just behind my {s} shoulder", C.AZ_BACK_HALF, C.EL_SHOULDER, None),
        ("within reach on my {s}", C.AZ_HARD, None, C.DIST_CLOSE),
        ("tickling my {s} ear", C.AZ_HARD, None, C.DIST_VERY_CLOSE),
        ("a breath away from my face", C.AZ_FRONT, None, C.DIST_VERY_CLOSE),
        ("on the nape of my neck", C.AZ_BACK, None, C.DIST_VERY_CLOSE),
        ("around my ankles", None, C.EL_FLOOR, None),
        ("perched on the crown of my head", None, C.EL_ZENITH, None),
    ),
)
_BODY_T: Pair = (("{a} {p}", "put {a} {p}", "have {a} {p}"), ("I want {a} {p}", "{a} should be {p}"))
_BODY_PAIR_T: Pair = (  # the second stem mirrors a shoulder
    ("{a} just over my {s} shoulder, {b} over the other one",),
    ("{a} just behind my {s} shoulder, {b} at the other one",),
)

# A region: (name, field, value, spread, train phrases, held-out phrases); spread: "rear" /
# "front" arcs (ARC_REAR / ARC_FRONT), "fan" (a point), "" (a height or a distance: the value)
_Region = tuple[str, str, float, str, tuple[str, ...], tuple[str, ...]]
_REGIONS: tuple[_Region, ...] = (
    ("rear", "az_deg", C.AZ_BACK, "rear", ("behind me", "at the back", "round the back"), ("in the rear",)),
    ("left", "az_deg", C.AZ_HARD, "fan", ("on my left", "out to the left"), ("off to the left",)),
    ("right", "az_deg", -C.AZ_HARD, "fan", ("on my right", "out to the right"), ("off to the right",)),
    ("far", "dist_m", C.DIST_FAR, "", ("far away", "way back in the distance"), ("a long way off",)),
    ("high", "el_deg", C.EL_VERY_HIGH, "", ("up high", "high up above me"), ("way up top",)),
)
# the region comes before the excepted stem: "everything except the pad behind me" is read
# by the phrase parser as "the pad behind me", exactly, so no label could override it
_EXCEPT_T: Pair = (
    ("everything goes {r} except {x}", "put it all {r} except {x}", "send everything {r} except {x}"),
    ("except for {x}, the whole lot {r}", "the whole lot {r}, except for {x}"),
)
_ONLY_T: Pair = (
    ("leave {x} as the only thing {r}", "only {x} {r}, nothing else"),
    ("{x} alone sits {r}", "no other part {r}, just {x}"),
)
# strong negation: (region avoided, the opposite centre, train phrases, held-out phrases)
_NEGATED: tuple[tuple[str, float, tuple[str, ...], tuple[str, ...]], ...] = (
    ("left", -C.AZ_HARD, ("the left", "my left side"), ("my left", "the left-hand side")),
    ("right", C.AZ_HARD, ("the right", "my right side"), ("my right", "the right-hand side")),
    ("front", C.AZ_BACK, ("the front", "the front of the room"), ("the front of the stage",)),
)
_NEGATED_T: Pair = (
    ("keep {x} well away from {R}", "{x} kept well clear of {R}"),
    ("{x} must steer clear of {R}", "{x} should keep well out of {R}"),
)
# shared motion: (pattern, stems (1, 2) or (2,), needs height, train phrases, held-out phrases)
_MOTION: tuple[tuple[str, tuple[int, ...], bool, tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "chase",
        (2,),
        False,
        ("chasing one another in circles{per}", "circling after each other{per}"),
        ("going round and round after each other{per}",),
    ),
    (
        "swap",
        (2,),
        False,
        ("keep swapping sides{per}", "switching sides with each other{per}"),
        ("changing places with each other{per}",),
    ),
    (
        "approach",
        (1, 2),
        False,
        ("gradually homing in on me", "drawing in on me from a long way back"),
        ("travelling in at me from way out",),
    ),
    (
        "recede",
        (1, 2),
        False,
        ("wandering off into the distance", "slipping away from me into the distance"),
        ("ebbing away out of earshot",),
    ),
    (
        "static",
        (1, 2),
        False,
        ("not budging an inch", "rooted to the spot"),
        ("frozen dead still", "never shifting at all"),
    ),
    ("rise", (1, 2), True, ("floating up towards the ceiling",), ("lifting off skywards",)),
    ("fall", (1, 2), True, ("sinking towards the floor",), ("dropping earthwards",)),
)
_MOTION_T: dict[int, Pair] = {
    1: (("{a} {p}",), ("{a}, {p}",)),
    2: (("{ab} {p}", "{a} and {b} both {p}"), ("{ab}, both {p}",)),
}
_PER: Pair = ((" every {n} bars",), (" each {n} bars",))

KINDS = ("shared", "split", "opposite", "flank", "body", "except", "only", "negated", "motion")
# draw weights: a flank needs a lead vocal and an exception a centre-home stem in a small
# request, so they are drawn more often to come out about as often as the rest
_WEIGHT = {"flank": 2.5, "except": 2.5}


def pool_phrases(pool: str) -> list[str]:
    """Every template and phrase of one pool (``"train"`` or ``"heldout"``), for the checks that
    the pools are disjoint and hold no acceptance-set wording.
    """
    k = 0 if pool == "train" else 1
    pairs: list[Pair] = [
        _PLURAL_T,
        *_SHARED_T.values(),
        *(w for _, w in _SPLIT_AMT),
        _SPLIT_T,
        _OPPOSITE_T,
        *_FLANK_T,
        _LEAD_NAMES,
        _BODY_T,
        _BODY_PAIR_T,
        _EXCEPT_T,
        _ONLY_T,
        _NEGATED_T,
        *_MOTION_T.values(),
        _PER,
        ((tuple(b[0] for b in _BODY[0]),), (tuple(b[0] for b in _BODY[1]),)),
        *(((r[4],), (r[5],)) for r in _REGIONS),
        *(((n[2],), (n[3],)) for n in _NEGATED),
        *(((m[3],), (m[4],)) for m in _MOTION),
    ]
    out: list[str] = []
    for pair in pairs:
        for x in pair[k]:
            out.extend(x if isinstance(x, tuple) else (x,))
    return out


# ----------------------------------------------------------------------------- helpers
class _Ctx(NamedTuple):
    rng: np.random.Generator
    pool: str
    stems: list[dict[str, Any]]
    free: list[dict[str, Any]]  # stems a label may be given to
    has_height: bool
    known: Mapping[str, Label]  # labels the request already carries (hints, other clauses)


def _name(ctx: _Ctx, stem: dict[str, Any]) -> str:
    """A stem as the text names it: its id when its class repeats, else a noun (mostly with "the")."""
    m = str(_mention(ctx.rng, stem, ctx.stems))
    return m if ctx.rng.random() < 0.2 else f"the {m}"


def _draw(ctx: _Ctx, k: int) -> list[dict[str, Any]] | None:
    """``k`` distinct free stems in request order (None: fewer are free)."""
    if len(ctx.free) < k:
        return None
    idx = sorted(int(i) for i in ctx.rng.choice(len(ctx.free), k, replace=False))
    return [ctx.free[i] for i in idx]


def _pair_name(ctx: _Ctx, a: dict[str, Any], b: dict[str, Any]) -> str:
    """Two stems as one phrase: a plural noun for the request's only two stems of a class
    (left-to-right in request order), else "A and B".
    """
    plural = _PLURAL.get(a["class"]) if a["class"] == b["class"] else None
    if plural is not None and ctx.rng.random() < 0.5:
        noun, covers = plural
        if sum(s["class"] in covers for s in ctx.stems) == 2:
            return str(_pick(ctx.rng, _pool(_PLURAL_T, ctx.pool))).format(p=noun)
    return f"{_name(ctx, a)} and {_name(ctx, b)}"


def _fan(centre: float, spread: str, n: int) -> list[float]:
    """Azimuths (degrees) for ``n`` stems sent to one region, as the planner spreads a group the
    parser reads there (``gravity.plan.planner._arrange_groups``): an arc in seats at least 20
    degrees apart (rear 110, front 60, up to 120), or a 10-degree fan about a point.
    """
    if spread in ("rear", "front"):
        arc = C.ARC_REAR if spread == "rear" else C.ARC_FRONT
        span = min(max(arc, 20.0 * n), 120.0)
        return [float(wrap_az(centre + span / 2.0 - span * (k + 0.5) / n)) for k in range(n)]
    return [float(wrap_az(centre + (k - (n - 1) / 2.0) * _FAN_DEG)) for k in range(n)]


def _label(
    ctx: _Ctx, az: float | None = None, el: float | None = None, dist: float | None = None, motion: Motion | None = None
) -> Label:
    """A label; elevation is dropped for layouts without height."""
    return Label(None if az is None else float(wrap_az(az)), el if ctx.has_height else None, dist, motion)


def _side(ctx: _Ctx) -> tuple[str, float]:
    """A side word and its sign (+1 left)."""
    return ("left", 1.0) if ctx.rng.random() < 0.5 else ("right", -1.0)


def _mirror(az: float) -> float:
    """The place across the listener from ``az`` (degrees): the other side for a side, front <-> back."""
    return float(wrap_az(az + 180.0)) if abs(az) < 1.0 or abs(az) > 179.0 else float(wrap_az(-az))


# ----------------------------------------------------------------------------- kinds
def _shared(ctx: _Ctx) -> Composed | None:
    n = 3 if len(ctx.free) >= 3 and ctx.rng.random() < 0.3 else 2
    stems = _draw(ctx, n)
    if stems is None:
        return None
    dirs: list[tuple[str, float]] = []
    while len(dirs) < n:
        text, az = _direction(ctx.rng, ctx.pool)
        if all(abs(wrap_az(az - a)) >= 30.0 for _, a in dirs):
            dirs.append((text, az))
    if ctx.has_height and ctx.rng.random() < 0.6:
        mod, el = _elevation(ctx.rng, ctx.pool)
        labels = [_label(ctx, az, el=el) for _, az in dirs]
    else:
        mod, dist = _distance(ctx.rng, ctx.pool)
        labels = [_label(ctx, az, dist=dist) for _, az in dirs]
    keys = ("a", "b", "c")
    fill = {keys[i]: _name(ctx, s) for i, s in enumerate(stems)}
    fill.update({f"d{keys[i]}": d for i, (d, _) in enumerate(dirs)})
    text = str(_pick(ctx.rng, _pool(_SHARED_T[n], ctx.pool))).format(m=mod, **fill)
    return Composed(text, {s["id"]: lab for s, lab in zip(stems, labels, strict=True)}, "shared")


def _split(ctx: _Ctx) -> Composed | None:
    stems = _draw(ctx, 2)
    if stems is None:
        return None
    value, words = _pick(ctx.rng, _SPLIT_AMT)
    amt = _pick(ctx.rng, _pool(words, ctx.pool))
    text = str(_pick(ctx.rng, _pool(_SPLIT_T, ctx.pool))).format(ab=_pair_name(ctx, *stems), amt=amt)
    return Composed(text, {stems[0]["id"]: _label(ctx, value), stems[1]["id"]: _label(ctx, -value)}, "split")


def _opposite(ctx: _Ctx) -> Composed | None:
    stems = _draw(ctx, 2)
    if stems is None:
        return None
    if ctx.rng.random() < 0.5:
        stems.reverse()  # the stem placed first needs not come first in the request
    da, az = _direction(ctx.rng, ctx.pool)
    a, b = (_name(ctx, s) for s in stems)
    text = str(_pick(ctx.rng, _pool(_OPPOSITE_T, ctx.pool))).format(a=a, b=b, da=da)
    return Composed(text, {stems[0]["id"]: _label(ctx, az), stems[1]["id"]: _label(ctx, _mirror(az))}, "opposite")


def _flank(ctx: _Ctx) -> Composed | None:
    lead = next((s for s in ctx.stems if s["class"] == "lead_vocal"), None)
    if lead is None:
        return None
    known = ctx.known.get(lead["id"])
    centre = 0.0 if known is None or known.az_deg is None else float(known.az_deg)
    if abs(centre) > 30.0:  # flanking a lead the text put out to a side: not a front stage any more
        return None
    free = [s for s in ctx.free if s["id"] != lead["id"]]
    stems = _draw(ctx._replace(free=free), 2)
    if stems is None:
        return None
    tight = ctx.rng.random() < 0.35
    off = _FLANK[1] if tight else _FLANK[0]
    name = _pick(ctx.rng, _pool(_LEAD_NAMES, ctx.pool)) if ctx.rng.random() < 0.4 else _name(ctx, lead)
    text = str(_pick(ctx.rng, _pool(_FLANK_T[int(tight)], ctx.pool))).format(ab=_pair_name(ctx, *stems), L=name)
    labels = {stems[0]["id"]: _label(ctx, centre + off), stems[1]["id"]: _label(ctx, centre - off)}
    return Composed(text, labels, "flank")


def _body(ctx: _Ctx) -> Composed | None:
    if len(ctx.free) >= 2 and ctx.rng.random() < 0.25:  # a shoulder each
        stems = _draw(ctx, 2)
        assert stems is not None
        s, sign = _side(ctx)
        a, b = (_name(ctx, x) for x in stems)
        text = str(_pick(ctx.rng, _pool(_BODY_PAIR_T, ctx.pool))).format(a=a, b=b, s=s)
        labels = {
            stems[0]["id"]: _label(ctx, sign * C.AZ_BACK_HALF, el=C.EL_SHOULDER),
            stems[1]["id"]: _label(ctx, -sign * C.AZ_BACK_HALF, el=C.EL_SHOULDER),
        }
        return Composed(text, labels, "body")
    one = _draw(ctx, 1)
    if one is None:
        return None
    phrase, az, el, dist = _pick(ctx.rng, _pool(_BODY, ctx.pool))
    if az is None and dist is None and not ctx.has_height:
        return None  # a height alone says nothing on a flat layout
    s, sign = _side(ctx)
    if "{s}" in phrase and az is not None:
        az = sign * az
    text = str(_pick(ctx.rng, _pool(_BODY_T, ctx.pool))).format(a=_name(ctx, one[0]), p=phrase.format(s=s))
    return Composed(text, {one[0]["id"]: _label(ctx, az, el, dist)}, "body")


def _region(ctx: _Ctx) -> tuple[_Region, str]:
    regions = [r for r in _REGIONS if ctx.has_height or r[1] != "el_deg"]
    reg = _pick(ctx.rng, regions)
    return reg, str(_pick(ctx.rng, _pool((reg[4], reg[5]), ctx.pool)))


def _region_labels(ctx: _Ctx, reg: _Region, stems: Sequence[dict[str, Any]]) -> dict[str, Label]:
    _, f, value, spread, _, _ = reg
    if f == "az_deg":
        return {s["id"]: _label(ctx, az) for s, az in zip(stems, _fan(value, spread, len(stems)), strict=True)}
    if f == "el_deg":
        return {s["id"]: _label(ctx, el=value) for s in stems}
    return {s["id"]: _label(ctx, dist=value) for s in stems}


def _outside(reg: _Region) -> Label:
    """What a stem kept out of the region must not be read as (its value)."""
    _, f, value, _, _, _ = reg
    return Label(
        az_deg=value if f == "az_deg" else None,
        el_deg=value if f == "el_deg" else None,
        dist_m=value if f == "dist_m" else None,
    )


def _home_outside(cls: str, reg: _Region) -> Label | None:
    """The excepted stem's usual place in the region's coordinate, when its home lies outside
    the region (a centred class for a direction, a near one for "far", a low one for "high").
    """
    home = CLASS_PLACEMENT[cls]
    if reg[1] == "az_deg":
        return Label(az_deg=0.0) if home.az_deg == 0 and not home.pair else None
    if reg[1] == "dist_m":
        return Label(dist_m=home.dist_m) if home.dist_m < 6.0 else None
    return Label(el_deg=home.el_deg) if home.el_deg < 30.0 else None


def _home_in(cls: str, reg: _Region) -> bool:
    """Whether a class's home (either side, for a pair class) lies in the region."""
    home = CLASS_PLACEMENT[cls]
    if reg[1] == "az_deg":
        sides = (home.az_deg, -home.az_deg) if home.pair else (home.az_deg,)
        return any(bool(in_region(reg[0], az, 0.0)) for az in sides)
    if reg[1] == "dist_m":
        return home.dist_m >= 6.0
    return home.el_deg >= 30.0


def _except(ctx: _Ctx) -> Composed | None:
    # "everything" covers every stem; those with a label of their own (a hint) keep it, as the
    # runtime merges a stem's own hint over the prompt; at most four are labelled here
    if not 2 <= len(ctx.stems) <= 6:
        return None
    reg, r = _region(ctx)
    # the excepted stem stays at home, and says so in its label: the phrase parser puts it in
    # the region ("everything except the pad behind me" -> the pad behind), which only a label
    # of its own overrides, so only a stem with a home outside the region can be excepted
    homes = {s["id"]: h for s in ctx.free if (h := _home_outside(s["class"], reg)) is not None}
    if not homes:
        return None
    x = _pick(ctx.rng, [s for s in ctx.stems if s["id"] in homes])
    covered = [s for s in ctx.free if s["id"] != x["id"]]
    if not 1 <= len(covered) <= 4:
        return None
    labels = _region_labels(ctx, reg, covered)
    h = homes[x["id"]]
    labels[x["id"]] = _label(ctx, h.az_deg, h.el_deg, h.dist_m)
    text = str(_pick(ctx.rng, _pool(_EXCEPT_T, ctx.pool))).format(x=_name(ctx, x), r=r)
    return Composed(text, labels, "except")


def _only(ctx: _Ctx) -> Composed | None:
    one = _draw(ctx, 1)
    if one is None:
        return None
    reg, r = _region(ctx)
    # "the only thing up high": every other stem must live outside the region, or the planner
    # (which reads no exclusion into these words) would put one there against the text
    if any(_home_in(s["class"], reg) for s in ctx.stems if s["id"] != one[0]["id"]):
        return None
    reg = (*reg[:3], "fan", *reg[4:])  # one stem: the region's centre
    text = str(_pick(ctx.rng, _pool(_ONLY_T, ctx.pool))).format(x=_name(ctx, one[0]), r=r)
    others = {s["id"]: _outside(reg) for s in ctx.stems if s["id"] != one[0]["id"]}
    return Composed(text, _region_labels(ctx, reg, one), "only", others)


def _negated(ctx: _Ctx) -> Composed | None:
    stems = _draw(ctx, 2 if len(ctx.free) >= 2 and ctx.rng.random() < 0.3 else 1)
    if stems is None:
        return None
    region, target, tr, ho = _pick(ctx.rng, _NEGATED)
    phrase = _pick(ctx.rng, _pool((tr, ho), ctx.pool))
    x = _pair_name(ctx, *stems) if len(stems) == 2 else _name(ctx, stems[0])
    text = str(_pick(ctx.rng, _pool(_NEGATED_T, ctx.pool))).format(x=x, R=phrase)
    azs = _fan(target, "fan", len(stems))
    return Composed(text, {s["id"]: _label(ctx, az) for s, az in zip(stems, azs, strict=True)}, "negated")


def _motion_kind(ctx: _Ctx) -> Composed | None:
    from gravity.plan.planner import ends_at

    name, counts, height, tr, ho = _pick(ctx.rng, _MOTION)
    if height and not ctx.has_height:
        return None
    stems = _draw(ctx, int(_pick(ctx.rng, counts)))
    if stems is None:
        return None
    per, n = "", None
    if name in ("chase", "swap") and ctx.rng.random() < 0.4:
        n = float(_pick(ctx.rng, (1, 2, 4, 8)))
        per = str(_pick(ctx.rng, _pool(_PER, ctx.pool))).format(n=int(n))
    phrase = str(_pick(ctx.rng, _pool((tr, ho), ctx.pool))).format(per=per)
    labels: dict[str, Label] = {}
    for k, s in enumerate(stems):
        sign = 1.0 if k == 0 else -1.0  # the first named starts on the left
        if name == "chase":  # half a lap apart, one direction
            m = Motion("orbit", {} if n is None else {"period_bars": n})
            labels[s["id"]] = _label(ctx, sign * C.AZ_HARD, motion=m)
        elif name == "swap":
            params = {"from_az": sign * C.AZ_HARD, "to_az": -sign * C.AZ_HARD}
            m = Motion("ping_pong", params if n is None else {**params, "period_bars": n})
            labels[s["id"]] = _label(ctx, sign * C.AZ_HARD, motion=m)
        elif name in ("approach", "recede"):  # "from afar" / "into the distance": the far end is far
            m = ends_at(Motion(name), None, C.DIST_FAR)
            labels[s["id"]] = _label(ctx, motion=Motion(name, {k: round(float(v), 2) for k, v in m.params.items()}))
        else:
            labels[s["id"]] = _label(ctx, motion=Motion(name))
    if len(stems) == 2:
        frame = _pick(ctx.rng, _pool(_MOTION_T[2], ctx.pool))
        text = str(frame).format(ab=_pair_name(ctx, *stems), a=_name(ctx, stems[0]), b=_name(ctx, stems[1]), p=phrase)
    else:
        text = str(_pick(ctx.rng, _pool(_MOTION_T[1], ctx.pool))).format(a=_name(ctx, stems[0]), p=phrase)
    return Composed(text, labels, "motion")


_KIND_FN: dict[str, Callable[[_Ctx], Composed | None]] = {
    "shared": _shared,
    "split": _split,
    "opposite": _opposite,
    "flank": _flank,
    "body": _body,
    "except": _except,
    "only": _only,
    "negated": _negated,
    "motion": _motion_kind,
}


# ----------------------------------------------------------------------------- consistency
def _off_az(a: float, b: float) -> float:
    return abs(float(wrap_az(a - b)))


def _motion_conflicts(read: Motion, lab: Motion) -> bool:
    """Whether a motion the parser read contradicts a label's: another pattern, or a parameter
    both give that differs (azimuth / elevation 10 degrees, distance 20 %, period, direction).
    """
    if read.pattern != lab.pattern:
        return True
    for k in set(read.params) & set(lab.params):
        a, b = read.params[k], lab.params[k]
        if k.endswith("_az"):
            bad = _off_az(float(a), float(b)) > _AZ_TOL
        elif k.endswith("_el"):
            bad = abs(float(a) - float(b)) > _EL_TOL
        elif k.endswith("_dist"):
            bad = abs(float(a) - float(b)) > _DIST_TOL * float(b)
        else:
            bad = a != b
        if bad:
            return True
    return False


def conflicts(p: Any, lab: Label) -> bool:
    """Whether the phrase parser's reading ``p`` (a :class:`gravity.plan.hint.Placement` or None)
    is exact and contradicts label ``lab``: the runtime would pin (and the teacher keep) a value
    other than the label's.

    A group reading with an azimuth counts as a contradiction of any label azimuth: the planner
    spreads such a group itself (which member goes where is its choice), so only a reading
    without an azimuth leaves the label's azimuth to the target.
    """
    if p is None or not p.exact:
        return False
    if lab.az_deg is not None and p.az_deg is not None:
        if p.arc_deg is not None or len(p.group) > 1 or _off_az(p.az_deg, lab.az_deg) > _AZ_TOL:
            return True
    if lab.el_deg is not None and p.el_deg is not None and abs(p.el_deg - lab.el_deg) > _EL_TOL:
        return True
    if lab.dist_m is not None and p.dist_m is not None and abs(p.dist_m - lab.dist_m) > _DIST_TOL * lab.dist_m:
        return True
    if lab.motion is not None and p.motion is not None and _motion_conflicts(p.motion, lab.motion):
        return True
    if lab.motion is None and p.motion is not None and p.motion.pattern != "static" and _places(lab):
        return True  # a place the text holds still, read as a move ("goes over to the left": a fly-over)
    for region in p.avoid:  # a label inside a region the reading keeps the stem out of
        if lab.az_deg is not None or lab.el_deg is not None:
            if bool(in_region(region, lab.az_deg or 0.0, lab.el_deg or 0.0)) and _decides(region, lab):
                return True
    return False


def _places(lab: Label) -> bool:
    return lab.az_deg is not None or lab.el_deg is not None or lab.dist_m is not None


def _decides(region: str, lab: Label) -> bool:
    """Whether the label sets the coordinate that decides membership of ``region`` (height
    regions by elevation, the others by azimuth).
    """
    return (lab.el_deg if region in ("above", "below") else lab.az_deg) is not None


def _agrees_outside(p: Any, out: Label) -> bool:
    """False when a reading puts an unlabelled stem where the text says it is not (``out``'s
    values: within 60 degrees of its azimuth, 30 degrees or higher for a height, 6 m or
    farther for a distance). Exact or not: the planner follows both for a stem without a label.
    """
    if p is None:
        return True
    if out.az_deg is not None and p.az_deg is not None and _off_az(p.az_deg, out.az_deg) <= 60.0:
        return False
    if out.el_deg is not None and p.el_deg is not None and p.el_deg >= 30.0:
        return False
    return not (out.dist_m is not None and p.dist_m is not None and p.dist_m >= 6.0)


def reading_class(p: Any, lab: Label) -> str:
    """How the phrase parser reads one labelled stem: ``"right"`` (exact, every labelled field
    read and agreeing), ``"partial"`` (exact and agreeing, some labelled fields left to the
    label), ``"inexact"`` (a guess: words left unread, the runtime does not pin it), ``"missed"``
    (none of the labelled fields read) or ``"conflict"`` (exact and contradicting: rejected).
    """
    fields = [f for f in ("az_deg", "el_deg", "dist_m", "motion") if getattr(lab, f) is not None]
    read = [f for f in fields if p is not None and getattr(p, f) is not None]
    if not read:
        return "missed"
    if not p.exact:
        return "inexact"
    if conflicts(p, lab):
        return "conflict"
    return "right" if len(read) == len(fields) else "partial"


def _consistent(readings: Mapping[str, Any], c: Composed) -> bool:
    return not any(conflicts(readings.get(sid), lab) for sid, lab in c.labels.items()) and all(
        _agrees_outside(readings.get(sid), out) for sid, out in c.excluded.items() if sid not in c.labels
    )


def _pick_kind(rng: np.random.Generator, kinds: Sequence[str]) -> str:
    w = np.array([_WEIGHT.get(k, 1.0) for k in kinds])
    return str(kinds[int(rng.choice(len(kinds), p=w / w.sum()))])


# ----------------------------------------------------------------------------- entry points
def compose_clause(
    rng: np.random.Generator,
    pool: str,
    stems: Sequence[dict[str, Any]],
    has_height: bool = True,
    *,
    free: Sequence[str] | None = None,
    known: Mapping[str, Label] | None = None,
    kinds: Sequence[str] = KINDS,
) -> Composed | None:
    """One compositional clause about 1-4 of ``stems`` and the label of each stem it places.

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness.
    pool : {"train", "heldout"}
        Which half of the wording to draw from.
    stems : sequence of dict
        The request's stems (``id``, ``class``); all of them may be named.
    has_height : bool
        False for flat layouts: no elevation in any label, no height-only clause.
    free : sequence of str, optional
        Ids that may get a label (default: every stem); the others are only named.
    known : mapping, optional
        Labels the request already carries (a lead's azimuth for "flanking the vocal").
    kinds : sequence of str
        The kinds to draw from (:data:`KINDS`).

    Returns
    -------
    Composed or None
        Text, labels (azimuth / elevation degrees, distance metres, motion), kind and the stems
        the text keeps out of a place; None when no clause was found in a few draws (too few
        free stems, or every draw read by the phrase parser exactly and differently).
    """
    from gravity.plan.prompt import parse_prompt

    stem_list = list(stems)
    ok = set(free) if free is not None else {s["id"] for s in stem_list}
    ctx = _Ctx(rng, pool, stem_list, [s for s in stem_list if s["id"] in ok], has_height, known or {})
    pairs = [(s["id"], s["class"]) for s in stem_list]
    for _ in range(_TRIES):
        c = _KIND_FN[_pick_kind(rng, kinds)](ctx)
        if c is not None and _consistent(parse_prompt(c.text, pairs), c):
            return c
    return None


def add_to_request(
    rng: np.random.Generator,
    pool: str,
    doc: dict[str, Any],
    clauses: list[str],
    join: str,
    labels: dict[str, Label],
    texts: dict[str, str],
) -> str | None:
    """Add one compositional clause to a request document being drawn (the data generator's hook).

    The clause goes at a random place among the prompt's ``clauses`` (joined with ``join``);
    only stems without a label and without a rule that pins or bounds them (anchors, elevation
    caps, zones, motion rules, a mono low end) get one. The whole text is read as the runtime
    reads it (:func:`gravity.plan.planner.read_hints`); a clause that makes any label's exact
    reading contradict it is drawn again (up to 4 times). On success ``doc["prompt"]``,
    ``clauses``, ``labels`` and ``texts`` (each new stem -> the clause) are updated.

    Returns
    -------
    str or None
        The clause's kind, or None when none was added.
    """
    from gravity.plan.planner import read_hints
    from gravity.request import Request
    from gravity.rules import pinned_low

    request = Request.from_dict(doc)
    low = pinned_low(request)
    free = [
        s["id"] for s in doc["stems"] if s["id"] not in labels and s["id"] not in low and _hinted_ok(s, doc["rules"])
    ]
    if not free:
        return None
    before = {sid for sid, p in read_hints(request).items() if sid in labels and conflicts(p, labels[sid])}
    for _ in range(4):
        c = compose_clause(rng, pool, doc["stems"], request.has_height, free=free, known=labels)
        if c is None:
            return None
        at = int(rng.integers(len(clauses) + 1))
        parts = [*clauses[:at], c.text, *clauses[at:]]
        trial = dict(doc, prompt=join.join(parts))
        readings = read_hints(Request.from_dict(trial))
        new_conflict = any(conflicts(readings.get(sid), lab) for sid, lab in labels.items() if sid not in before)
        if new_conflict or not _consistent(readings, c):
            continue
        doc["prompt"] = trial["prompt"]
        clauses[:] = parts
        labels.update(c.labels)
        texts.update(dict.fromkeys(c.labels, c.text))
        return c.kind
    log.debug("no compositional clause fits the prompt %.80r", doc.get("prompt", ""))
    return None
