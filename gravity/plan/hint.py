"""Phrase readers: one stem's plain-language hint -> :class:`Placement`.

Conventions: azimuth degrees, positive = LEFT, 0 = front, wrapped to (-180, 180]; elevation
degrees, positive up, in [-90, 90]; distance metres in [0.25, 50]; width in [0, 1]. Clock
positions are seen from above with 12 o'clock = front and each hour 30 deg clockwise (towards
the right, negative azimuth): 3 o'clock = -90, 9 o'clock = +90, 10:30 = +45.

The parser is rule based. A clause is normalised (lower case, unicode folded, number words to
digits: :mod:`gravity.plan.normalise`), then readers run in priority order -- negation, motion,
explicit numbers, special phrases, elevation words, distance words, direction words, width
words -- and
every matched span is blanked so a word is used once: "far left" is a direction, "far" alone a
distance. Fragments several readers share live in :mod:`gravity.plan.lexicon`; a scene prompt
is split into clauses for these readers by :mod:`gravity.plan.prompt`.

Value table
-----------
The numbers are the named constants of :mod:`gravity.plan.conventions` (the training-data
grammar uses the same ones). Alternatives are separated by ``;``; a row with "left" holds for
"right" with the negative azimuth. A test reads this table and parses every phrase in it.

=================================================================  =========  =====================  =====
phrases                                                            field      constant               value
=================================================================  =========  =====================  =====
left; left side; hard left; far left; fully left; on the left      az_deg     AZ_HARD                90
wide left; mostly left                                             az_deg     AZ_WIDE                60
half left; somewhat left; left-ish; front left                     az_deg     AZ_HALF                45
left of centre; centre left                                        az_deg     AZ_OFF_CENTRE          30
slightly left; a bit left; a touch left; just left                 az_deg     AZ_SLIGHT              20
front, slightly left                                               az_deg     AZ_SLIGHT              20
left, slightly in front                                            az_deg     AZ_SIDE_FRONT          70
left surround                                                      az_deg     AZ_SURROUND            110
back left; rear surround left; over my left shoulder               az_deg     AZ_BACK_HALF           135
back, slightly left                                                az_deg     AZ_BACK - AZ_SLIGHT    160
front; ahead; centre; middle                                       az_deg     AZ_FRONT               0
back; behind; rear; behind me                                      az_deg     AZ_BACK                180
directly above; zenith; straight up                                el_deg     EL_ZENITH              90
overhead; above my head; ceiling; sky                              el_deg     EL_OVERHEAD            70
very high; high up; up high; way above                             el_deg     EL_VERY_HIGH           60
above; high; up; elevated; raised; above ear level                 el_deg     EL_ABOVE               40
slightly above; a bit higher; over my left shoulder                el_deg     EL_SLIGHT_UP           20
ear level; head height; horizon                                    el_deg     EL_EAR                 0
slightly below; a bit lower                                        el_deg     EL_SLIGHT_DOWN         -15
below; low; down; under; below ear level                           el_deg     EL_BELOW               -25
floor; ground; at my feet                                          el_deg     EL_FLOOR               -30
directly below; beneath me                                         el_deg     EL_NADIR               -70
inside my head                                                     dist_m     DIST_INSIDE            0.3
very close; in my ear; whispering                                  dist_m     DIST_VERY_CLOSE        0.5
close; near; intimate; in your face; upfront                       dist_m     DIST_CLOSE             1.0
mid distance; not too far                                          dist_m     DIST_MID               3.0
far; distant; in the distance; a long way away; background         dist_m     DIST_FAR               8.0
very far; miles away                                               dist_m     DIST_VERY_FAR          15.0
very wide; huge; all around; left and right                        width      WIDTH_HUGE             1.0
wide; broad; spread; big                                           width      WIDTH_WIDE             0.8
slightly wide; a bit wider                                         width      WIDTH_SLIGHTLY_WIDE    0.6
medium width; not too narrow                                       width      WIDTH_MEDIUM           0.5
narrow; tight; point source; mono                                  width      WIDTH_NARROW           0.1
not too wide; not very wide; not that wide; not huge               max_width  MAX_WIDTH_NOT_TOO_WIDE 0.5
not wide; narrow-ish; narrowish; fairly narrow; keep it narrow-ish max_width  MAX_WIDTH_NOT_WIDE     0.35
=================================================================  =========  =====================  =====

Negation and exclusion set :attr:`Placement.avoid` (region names of
:data:`gravity.rules.REGIONS`) and consume the words, so a negated direction never places the
stem there ("not on the left, on the right" is -90 and avoids the left):

=================================================================  =========  =====================  =====
phrases                                                            field      constant               value
=================================================================  =========  =====================  =====
nothing behind me; not behind; keep it out of the rear; no rear    avoid      n/a                    rear
not in front; nothing in front of me                               avoid      n/a                    front
not on the left; don't put anything on the left; away from left    avoid      n/a                    left
nothing above; no height; out of the height; keep it out of height avoid      n/a                    above
keep it off the floor; nothing below; not under me                 avoid      n/a                    below
nothing on the sides; keep it off the sides                        avoid      n/a                    sides
=================================================================  =========  =====================  =====

Several stems named by one phrase (a prompt clause) are an ensemble (:attr:`Placement.group`);
a phrase that names a region rather than a point also gives the azimuth span to spread them over
(:attr:`Placement.arc_deg`, centred on ``az_deg``): "behind me" az 180 arc ``ARC_REAR`` (110),
"in front" az 0 arc ``ARC_FRONT`` (60), "all around me" / "surround me" / "around the listener"
arc ``ARC_AROUND`` (360), "above me" elevation with arc 360, "on each side" / "left and right" /
"either side" az 90 arc ``ARC_SIDES`` (180): a mirrored pair, half the group about +90 and half
about -90. A point ("hard left", "directly behind") keeps the point; the planner fans the group
out a little. One stem alone always gets a point.

Motion: pan, orbit (direction ``"ccw"`` unless stated), ping_pong, rise, fall, approach,
recede, fly_over (front 0 -> back 180 unless stated) and static, with endpoints from "from X
to Y" / "starts X and ends Y" and periods from "every N bars". When both endpoints are stated
the static coordinate is the start ("pans from left to right" -> az +90).
"""

from __future__ import annotations

import logging
import re
import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from gravity.motion import Motion, wrap_az
from gravity.plan import conventions as C
from gravity.plan.lexicon import (
    DIRNUM,
    DIRW,
    DIRWORD,
    END,
    HALF,
    HARD,
    HEAD,
    ME,
    SIDE_AHEAD,
    SLIGHT,
    SPAN,
    UN,
    WIDE,
    N,
    alt,
)
from gravity.plan.normalise import Scan, normalize
from gravity.rules import REGIONS, in_region

__all__ = ["Placement", "parse_hint", "parse_norm", "read_clause"]

log = logging.getLogger(__name__)
_rx = re.compile  # short: the readers compile some eighty patterns

_DIST_RANGE = (0.25, 50.0)  # metres
_PERIOD_RANGE = (0.25, 64.0)  # bars


def _wrap(az: float) -> float:
    """:func:`gravity.motion.wrap_az` for one float, without numpy (the readers run per clause)."""
    az = float(az)
    return az if -180.0 < az <= 180.0 else -((-az + 180.0) % 360.0) + 180.0


_REGION_AXIS = {  # which coordinate decides membership of each REGIONS zone
    name: "el" if all(b[:2] == (-180, 180) for b in boxes) else "az" for name, boxes in REGIONS.items()
}


def _inside(region: str, az: float | None, el: float | None) -> bool:
    """Whether a stated position lies in a REGIONS zone (False when the deciding coordinate is unset)."""
    if (az if _REGION_AXIS[region] == "az" else el) is None:
        return False
    return bool(in_region(region, az or 0.0, el or 0.0))


@dataclass(frozen=True)
class Placement:
    """What a hint says about one stem; ``None`` / ``()`` = the text said nothing about that field.

    Attributes
    ----------
    az_deg : float or None
        Azimuth in degrees, positive = left, in (-180, 180].
    el_deg : float or None
        Elevation in degrees, positive up, in [-90, 90].
    dist_m : float or None
        Distance in metres, in [0.25, 50].
    width : float or None
        Source width in [0, 1] (0.1 point source, 0.8 wide, 1.0 very wide).
    motion : Motion or None
        Named motion pattern; parameters in degrees, metres and bars.
    matched : tuple of str
        The normalised phrase spans that were understood, in text order.
    avoid : tuple of str
        Names of :data:`gravity.rules.REGIONS` zones the stem must stay out of ("nothing behind
        me" -> ``("rear",)``), in text order.
    max_width : float or None
        Upper bound on the width in [0, 1] ("not too wide" 0.5, "not wide" 0.35); a cap, not a
        set point.
    arc_deg : float or None
        For an ensemble named by a region phrase: the azimuth span in degrees, centred on
        ``az_deg``, to spread the group over (110 "behind me", 60 "in front", 360 "all around";
        180 with ``az_deg`` 90 is a mirrored left/right pair). None for a point or one stem.
    group : tuple of str
        The stem ids the phrase named together (sorted), so a planner can spread them as one
        ensemble; empty for a hint of one stem.
    unread : tuple of str
        Placement words of the clause that no reader took ("split hard left and hard right":
        ``("right",)``; "everything but the vocal": ``("but",)``): the reading is a guess, not
        exact, so the model's grammar does not pin it (:attr:`exact`).
    """

    az_deg: float | None = None
    el_deg: float | None = None
    dist_m: float | None = None
    width: float | None = None
    motion: Motion | None = None
    matched: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    max_width: float | None = None
    arc_deg: float | None = None
    group: tuple[str, ...] = ()
    unread: tuple[str, ...] = ()

    @property
    def exact(self) -> bool:
        """True when every placement word of the text was read (the reading may be pinned)."""
        return not self.unread

    @property
    def places(self) -> bool:
        """True when the text gives a position (azimuth, elevation or distance): without a
        motion of its own, such a stem holds still there (planner and hint pins agree).
        """
        return self.az_deg is not None or self.el_deg is not None or self.dist_m is not None

    def is_empty(self) -> bool:
        """True when the text set nothing (``matched`` and ``group`` are bookkeeping, not settings)."""
        return all(
            getattr(self, f.name) in (None, ()) for f in fields(self) if f.name not in ("matched", "group", "unread")
        )

    def merged(self, other: Placement) -> Placement:
        """Field-wise merge where ``other`` is the later / more specific text and wins.

        ``other``'s set fields replace this one's; the matched spans and avoided regions of both
        are kept, except that a position and an exclusion that contradict each other are settled
        for the later text (a stem's own "behind me" beats a scene-wide "nothing behind me", and
        a later "not behind" drops an earlier azimuth of 180). An azimuth of ``other`` without an
        arc is a point: the earlier arc goes.
        """
        vals: dict[str, Any] = {
            f.name: getattr(other, f.name) if getattr(other, f.name) is not None else getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("matched", "avoid", "group", "unread")
        }
        if other.az_deg is not None and other.arc_deg is None:
            vals["arc_deg"] = None
        avoid = [r for r in self.avoid if not _inside(r, other.az_deg, other.el_deg)]
        for r in other.avoid:  # the later exclusion drops an earlier position inside it
            if _REGION_AXIS[r] == "az" and other.az_deg is None and _inside(r, vals["az_deg"], None):
                vals["az_deg"] = vals["arc_deg"] = None
            elif _REGION_AXIS[r] == "el" and other.el_deg is None and _inside(r, None, vals["el_deg"]):
                vals["el_deg"] = None
        cap, width = vals["max_width"], vals["width"]
        if cap is not None and width is not None and width > cap:  # the later of width and cap wins
            if other.width is not None:
                vals["max_width"] = None
            else:
                vals["width"] = cap
        return Placement(
            **vals,
            matched=self.matched + other.matched,
            avoid=tuple(dict.fromkeys([*avoid, *other.avoid])),
            group=other.group or self.group,
            unread=self.unread + other.unread,
        )


# --- motion -------------------------------------------------------------------------------
_NEG = alt("does_?n'?t doesnt does_not do_not don'?t dont never no should_?n'?t should_not won'?t will_not not")
_STATIC = _rx(
    r"\b(?:"
    + alt(
        "static stationary fixed motionless immobile locked(?:_in_place)? "
        "anchored pinned stand(?:s|ing)?_still no_automation"
    )
    + rf"|{_NEG}\s+(?:move|moving|movement|motion|travel|pan)\w*"
    r"(?:\s+(?:a)?round|\s+at\s+all)?"
    r"|stays?\s+(?:put|still|fixed|in\s+place|where\s+(?:it|they)\s+(?:is|are))"
    r"|(?:keep|hold|leave)\s+(?:it\s+|them\s+|everything\s+|things\s+|all\s+)?(?:still|static|in\s+place)"
    r"|(?:no|without(?:\s+any)?)\s+(?:motion|movement|moves|automation|panning)"
    r"|nothing\s+(?:else\s+)?(?:moves|moving|should\s+move|is\s+moving|pans))\b"
)
_FROM_TO = _rx(
    rf"\bfrom\s+(?!{ME}\b)(?P<a>{SPAN})\s+(?:(?:over|across|round|up|down|in)\s+to|towards?|into"
    rf"|to)\s+(?P<b>{SPAN}){END}"
)
_STARTS_ENDS = _rx(
    rf"\bstart(?:s|ing)?\s+(?:off\s+)?(?P<a>{SPAN})\s+(?:and|then)\s+"
    + alt("ends? ending finish(?:es|ing)? moves? moving goes going travels? pans? panning sweeps? drifts? lands?")
    + rf"\s+(?:up\s+)?(?:(?:to|on|at|in|towards?|over)\s+)?(?P<b>{SPAN}){END}"
)
_X_TO_Y = _rx(
    rf"\b(?P<a>{DIRWORD})\s+(?:to|towards|into)\s+(?:the\s+)?(?P<b>{DIRWORD})\b"
    rf"|(?<![\d.])(?P<na>{DIRNUM})\s+(?:to|towards|into)\s+(?P<nb>{DIRNUM})\b"
)
_PAIR = frozenset(
    tuple(p.split("-"))
    for p in ("left-right right-left front-back back-front front-rear rear-front front-behind behind-front").split()
)
_BARE_NUM = _rx(r"^\s*[-+]?\d{1,3}\s*$")
_OVER_HEAD = _rx(rf"\bover(?:head|\s+(?:my|your|the|our)\s+heads?|\s+the\s+top|\s+{ME})\b")
_SIDE2SIDE = _rx(r"\bside\s+to\s+side\b")
_AND_BACK = _rx(r"\band\s+back(?:\s+again)?\b")
_BETWEEN = _rx(
    rf"(?:\bbetween\s+)?(?:the\s+)?\b(?P<a>{DIRW})\s+(?:and|&|to|/)\s+(?:the\s+)?"
    rf"(?P<b>{DIRW})\b"
)
_ENDPOINT = _rx(rf"\b(?P<k>from|to|towards?|into|until|till)\s+(?P<x>{SPAN}){END}")
_UNIT = r"(?P<u>bars?|measures?|beats?)"
_NUM = r"(?P<n>\d{1,3}(?:\.\d{1,3})?)"
_PERIOD = tuple(
    _rx(p)
    for p in (
        rf"\b(?:once\s+)?(?:every|each|per|a)\s+(?P<n>\d{{1,3}}(?:\.\d{{1,3}})?\s+|half\s+(?:a\s+)?"
        rf"|other\s+|second\s+|couple\s+(?:of\s+)?|few\s+)?{_UNIT}\b",
        rf"\b(?:in|over|across|takes|taking)\s+{_NUM}\s+{_UNIT}\b",
        rf"\b{_NUM}\s+{_UNIT}\s+(?:per|each|a|for\s+(?:each|every|one)|cycles?|loops?|periods?|orbits?"
        r"|rotations?|revolutions?)\b(?:\s+"
        + alt("revolution rotation cycle lap turn loop circle orbit pass period swing bounce")
        + r"s?)?",
        rf"\bperiod\s*(?:of\s+|=\s*|:\s*)?{_NUM}(?:\s+{_UNIT})?\b",
        r"\b(?P<k>twice|2\s+times|3\s+times|4\s+times)\s+(?:per|a|every|each)\s+bar\b",
    )
)
_PERIOD_WORDS = {
    "": 1.0,
    "half": 0.5,
    "half a": 0.5,
    "other": 2.0,
    "second": 2.0,
    "couple": 2.0,
    "couple of": 2.0,
    "few": 4.0,
}
_SLOW = _rx(r"\b(?:slow(?:ly)?|lazy|lazily|gentle|leisurely)\b")
_FAST = _rx(r"\b(?:fast|quick(?:ly)?|rapid(?:ly)?|frantic\w*|speedy)\b")
_CCW = _rx(r"\b(?:counter|anti)\s*clockwise\b|\bccw\b|\bwiddershins\b")
_CW = _rx(r"\bclockwise\b|\bcw\b")
_ORBIT_SIDE = _rx(r"\b(?:to(?:wards)?\s+)?(?:the\s+)?(?P<s>left|right)(?:wards?)?\b")
_VERBS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (k, _rx(p))
    for k, p in (
        (
            "fly_over",
            r"\b(?:fl(?:y|ies|ying|ew)\s+(?:right\s+|straight\s+|directly\s+)?over(?:head)?"
            r"|fly\s*over|"
            + alt(
                "pass(?:es|ing)? goes going swoops? swooping sweeps? "
                "sweeping zooms? zooming arcs? arcing whooshe?s? whooshing "
                "travels? moves? moving"
            )
            + rf"\s+(?:right\s+|directly\s+|straight\s+)?over(?:head(?!\s+\d)|\s+{HEAD}"
            r"|\s+the\s+top"
            rf"(?:\s+of\s+{HEAD})?|\s+{ME})?(?!\s+\d))\b",
        ),
        (
            "ping_pong",
            r"\b(?:"
            + alt(
                "ping_?pong\\w* bounc(?:e|es|ing) alternat(?:e|es|ing) "
                "back_and_forth to_and_fro side_to_side sway(?:s|ing)? "
                "oscillat\\w* "
                "wobbl\\w* ricochet\\w* zig_?zag\\w*"
            )
            + r"|swing(?:s|ing)?(?=\s+(?:between|from|left|right|back))|"
            + alt("flips? flipping switch(?:es|ing)? jumps? jumping hops? hopping toggles? toggling")
            + r"\s+between)\b",
        ),
        (
            "orbit",
            r"\b(?:"
            + alt(
                "circl\\w* encircl\\w* orbit\\w* spin\\w* revolv\\w* swirl\\w* "
                "whirl\\w* spiral\\w* twirl\\w* round_and_round full_circles? "
                "(?:does|do|doing)_(?:a_)?360s? merry_go_round carousel"
            )
            + r"|rotat\w*(?!\s+(?:it\s+|them\s+|this\s+)?(?:by\s+)?[-+]?\d)|"
            + alt(
                "loops? goes go going moves? moving travels? travell?ing flies fly flying runs? "
                "running races? racing zips? zooms? drifts? drifting wanders? wandering dances? "
                "dancing walks? walking"
            )
            + r"\s+(?:all\s+)?(?:a)?round)"
            r"(?:\s+(?:all\s+)?(?:a)?round)?(?:\s+(?:me|you|us|(?:my|your)\s+head|the\s+"
            r"(?:listener'?s?(?:\s+head)?|head|room|audience|space|stage|sphere|cent(?:er|re)"
            r"|middle)))?\b",
        ),
        (
            "rise",
            r"\b(?:"
            + alt("ris(?:e|es|ing) rose risen climb(?:s|ing)? ascend(?:s|ing)? lifts lifting soar(?:s|ing)?")
            + "|"
            + alt(
                "goes going go moves moving drifts? drifting sweeps? sweeping travels? glides? "
                "gliding shoots? shooting floats? floating pans? panning"
            )
            + r"\s+up(?:wards?)?)(?:\s+up(?:wards?)?)?\b(?!\s+(?:front|close)\b)",
        ),
        (
            "fall",
            r"\b(?:drop(?=\s+(?:from|to|into|below|low|towards?)\b)|"
            + alt(
                "fall(?:s|ing)? fell drops dropping drop_down sinks? sinking sank "
                "descend(?:s|ing)? lowers lowering dips dipping rains?_down "
                "raining_down"
            )
            + "|"
            + alt(
                "goes going go moves moving drifts? drifting sweeps? sweeping floats? floating "
                "comes coming glides? gliding travels? pans? panning slides? sliding"
            )
            + r"\s+down(?:wards?)?)(?:\s+down(?:wards?)?)?\b",
        ),
        (
            "approach",
            r"\b(?:approach(?:es|ing)?|"
            + alt(
                "comes coming come gets getting get moves moving creeps? creeping draws? "
                "drawing pulls? pulling walks? walking inch(?:es|ing) edg(?:es|ing) zooms? "
                "zooming glides? gliding floats? floating travels? drifts? drifting"
            )
            + r"\s+(?:closer|nearer|in(?:wards?)?(?!\s+(?:a\s+)?circles?)"
            rf"|towards?\s+{ME}|near)"
            r"|(?:comes|coming)\s+at\s+(?:me|you|us)|"
            + alt("clos(?:es|ing)_in draws?_near drawing_near advanc(?:es|ing) nears nearing")
            + r")\b",
        ),
        (
            "recede",
            r"\b(?:"
            + alt("reced(?:e|es|ing) retreat(?:s|ing)? zoom(?:s|ing)?_out")
            + "|"
            + alt(
                "moves? moving go goes going drifts? drifting floats? floating pulls? pulling "
                "fades? fading backs? backing walks? walking travels? glides? gliding flies "
                "flying disappears? disappearing vanish(?:es|ing)? gets getting wanders? "
                "wandering dies dying trails? trailing slips? slipping"
            )
            + r"\s+(?:further\s+|farther\s+)?(?:away|off\b(?!\s+to)|further(?:\s+away)?"
            r"|farther(?:\s+away)?|(?:out\s+)?into\s+the\s+(?:distance|background|horizon))"
            rf"(?:\s+into\s+the\s+(?:distance|background))?(?:\s+from\s+{ME})?)\b",
        ),
        (
            "pan",
            r"\b(?:"
            + alt(
                "pans panning sweeps sweeping swept crosses crossing moves moving "
                "glides "
                "gliding slides sliding drifts drifting travels travell?ing shifts "
                "shifting whooshe?s whooshing zips zipping runs running streaks "
                "migrates migrating flies_(?:by|past) flying_(?:by|past)"
            )
            + r")(?:\s+(?:over|across)(?:\s+the\s+(?:front|stage|field|room|image))?)?\b",
        ),
    )
)
_PAN_NEEDS_TARGET = frozenset(
    "moves moving glides gliding slides sliding drifts drifting travels "
    "travelling traveling shifts shifting runs running migrates "
    "migrating zips zipping".split()
)
_PAN_TARGET = _rx(rf"^[\s\x00]*(?:back\s+)?(?:(?:to|towards?|into)\s+)?(?:the\s+)?(?P<x>{DIRW})\b")
_GRADUAL = _rx(
    r"\b(?:"
    + alt(
        "over_time gradually progressively throughout little_by_little "
        "as_(?:it|the_song)_(?:goes|plays|progresses) "
        "over_the_(?:section|song|chorus|verse|bridge)"
    )
    + r")\b"
)
_IMPERATIVE = tuple(
    (k, _rx(p))
    for k, p in (  # only with _GRADUAL: "lift it up over time"
        ("rise", r"\b(?:lift|raise)(?:\s+(?:it|them))?(?:\s+up)?\b"),
        ("fall", r"\b(?:lower|drop)(?:\s+(?:it|them))?(?:\s+down)?\b"),
        ("approach", r"\bbring(?:\s+(?:it|them))?\s+(?:closer|in|nearer)\b"),
        ("recede", r"\bpush(?:\s+(?:it|them))?\s+(?:away|back|further)\b"),
        ("pan", r"\b(?:pan|move|sweep)\b"),
    )
)
_AXIS = {
    "pan": "az",
    "ping_pong": "az",
    "fly_over": "az",
    "rise": "el",
    "fall": "el",
    "approach": "dist",
    "recede": "dist",
}
_FIELD = {"az": "az_deg", "el": "el_deg", "dist": "dist_m"}


def _period(scan: Scan) -> float | None:
    """Bars per cycle from "every 2 bars", "once per bar", "8 beats per revolution"..."""
    for rx in _PERIOD:
        m = scan.take(scan.find(rx))
        if m is not None:
            g = m.groupdict()
            if g.get("k"):
                return 1.0 / float(g["k"].split()[0].replace("twice", "2"))
            raw = (g.get("n") or "").strip()
            n = _PERIOD_WORDS[raw] if raw in _PERIOD_WORDS else float(raw)
            return n / 4.0 if (g.get("u") or "bar").startswith("beat") else n
    return None


def _endpoint(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _parse_static(Scan(text), out)
    return {k: v for k, v in out.items() if not k.startswith("_")}  # positions only, no region notes


def _ends(scan: Scan, rx: re.Pattern[str]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Both endpoints of "from X to Y", each parsed as a position; consumed only if both parse."""
    m = scan.find(rx)
    if m is None:
        return None
    g = m.groupdict()
    xa, xb = g["a"] or g.get("na") or "", g["b"] or g.get("nb") or ""
    if "degrees" in xb and _BARE_NUM.match(xa):  # "from -90 to 90 degrees"
        xa += " degrees"
    ea, eb = _endpoint(xa), _endpoint(xb)
    if not (ea and eb):
        return None
    scan.take(m)
    return ea, eb


def _infer(a: dict[str, Any], b: dict[str, Any], scan: Scan) -> str | None:
    """Pattern implied by endpoints alone ("from ear level to overhead" -> rise)."""
    if "az_deg" in a and "az_deg" in b:
        if scan.take(scan.find(_OVER_HEAD)):
            return "fly_over"
        if a["az_deg"] != b["az_deg"]:
            return "pan"
    if "el_deg" in a or "el_deg" in b:
        return "rise" if b.get("el_deg", 0.0) > a.get("el_deg", 0.0) else "fall"
    if "dist_m" in a and "dist_m" in b:
        return "approach" if b["dist_m"] < a["dist_m"] else "recede"
    return None


def _find_verb(scan: Scan, have_ends: bool) -> tuple[str | None, re.Match[str] | None]:
    for name, rx in _VERBS:
        vm = scan.find(rx)
        if vm is None:
            continue
        if (
            name == "pan"
            and vm.group(0).split()[0] in _PAN_NEEDS_TARGET
            and not have_ends
            and not _PAN_TARGET.match(scan.work[vm.end() :])
        ):
            continue  # "a moving pad" is no pan; "moves to the left" is
        scan.take(vm)
        return name, vm
    return None, None


def _axis_params(
    verb: str, vm: re.Match[str] | None, a: dict[str, Any], b: dict[str, Any], scan: Scan
) -> dict[str, Any]:
    """from_/to_ parameters on the verb's axis (degrees or metres)."""
    key = _AXIS[verb]
    field = _FIELD[key]
    params = {f"{k}_{key}": e[field] for k, e in (("from", a), ("to", b)) if field in e}
    if not params and verb == "ping_pong":
        bm = scan.find(_BETWEEN)
        if bm is not None:
            ea, eb = _endpoint(bm.group("a")), _endpoint(bm.group("b"))
            if "az_deg" in ea and "az_deg" in eb:
                scan.take(bm)
                return {"from_az": ea["az_deg"], "to_az": eb["az_deg"]}
        if (vm is not None and "side to side" in vm.group(0)) or scan.take(scan.find(_SIDE2SIDE)):
            return dict(zip(("from_az", "to_az"), C.SIDE_TO_SIDE_AZ, strict=True))
        return {}
    if not params and verb == "pan" and vm is not None:  # "pans right"
        tm = _PAN_TARGET.match(scan.work[vm.end() :])
        if tm is not None and "az_deg" in (et := _endpoint(tm.group("x"))):
            scan.take(tm, "x")
            return {"to_az": et["az_deg"]}
    if not params:  # "rises to overhead", "drops from above"
        for em in list(_ENDPOINT.finditer(scan.work)):
            ep = _endpoint(em.group("x"))
            if field in ep:
                scan.take(em)
                params[("from_" if em.group("k") == "from" else "to_") + key] = ep[field]
    if verb == "fly_over":
        if "from_az" in params and "to_az" not in params:
            params["to_az"] = wrap_az(params["from_az"] + C.AZ_BACK)
        params = params or dict(zip(("from_az", "to_az"), C.FLY_OVER_AZ, strict=True))
    return params


def _parse_motion(scan: Scan, out: dict[str, Any]) -> None:
    """Find a motion phrase: set ``out['motion']`` and, with both endpoints stated, the start."""
    if scan.take(scan.find(_STATIC)):
        out["motion"] = Motion("static")
        return
    ends = _ends(scan, _FROM_TO) or _ends(scan, _STARTS_ENDS)
    verb, vm = _find_verb(scan, ends is not None)
    if ends is None and verb in (None, "pan", "ping_pong", "fly_over"):
        m = scan.find(_X_TO_Y)
        pair = m is not None and m.group("a") and (m.group("a").split()[-1], m.group("b").split()[-1])
        if m is not None and (verb is not None or pair in _PAIR):
            ends = _ends(scan, _X_TO_Y)
    a, b = ends or ({}, {})
    if verb == "pan" and ends and scan.take(scan.find(_OVER_HEAD)):
        verb = "fly_over"
    if ends and verb in (None, "pan") and scan.take(scan.find(_AND_BACK)):
        verb = "ping_pong"
    ccw, cw = bool(scan.take(scan.find(_CCW))), bool(scan.take(scan.find(_CW)))
    if verb is None and scan.find(_GRADUAL):
        verb = next((k for k, rx in _IMPERATIVE if scan.take(scan.find(rx))), None)
        scan.take(scan.find(_GRADUAL))
    if verb is None and (ccw or cw):
        verb = "orbit"
    if verb in (None, "pan") and ends and not ("az_deg" in a and "az_deg" in b):
        verb = _infer(a, b, scan) or verb  # "moves from far to near" -> approach
    elif verb is None and ends:
        verb = _infer(a, b, scan)
    if verb is None:
        return
    params: dict[str, Any] = {}
    if verb in _AXIS:
        params = _axis_params(verb, vm, a, b, scan)
        key = _AXIS[verb]
        if f"from_{key}" in params and f"to_{key}" in params and verb != "fly_over":
            out[_FIELD[key]] = params[f"from_{key}"]
    else:  # orbit
        side = None if (ccw or cw) else scan.find(_ORBIT_SIDE)
        if side is not None and scan.gap_before(side.start()):  # "circles to the right"
            scan.take(side)
            cw = cw or (side.group("s") == "right")
        params["direction"] = "cw" if cw and not ccw else "ccw"
    if verb in ("orbit", "ping_pong"):
        period = _period(scan)
        if period is None and scan.take(scan.find(_SLOW)):
            period = C.PERIOD_SLOW_BARS
        if period is None and scan.take(scan.find(_FAST)):
            period = C.PERIOD_FAST_BARS
        if period is not None:
            params["period_bars"] = min(max(period, _PERIOD_RANGE[0]), _PERIOD_RANGE[1])
    out["motion"] = Motion(verb, params)


# --- explicit numbers ---------------------------------------------------------------------
_DN = r"(?P<dn>down(?:wards?)?|below|lower)"
_DIST_NUM = _rx(
    r"(?:\b(?:at|from)\s+(?:a\s+)?distance\s+(?:of\s+)?|\bdist(?:ance)?\s*[:=]?\s*"
    rf"(?:of\s+)?)?(?P<n>{UN})\s*(?P<u>m|metres?|meters?|mtrs?|cm|centimet(?:er|re)s?"
    rf"|ft|feet|foot|yards?|yds?)\b(?:\s+(?:away|off|out|back|from\s+{ME}|distance))?"
)
_DIST_KEY = _rx(rf"\bdist(?:ance)?\s*[:=]?\s*(?:of\s+)?(?P<n>{UN})\b(?!\s*degrees)")
_UNIT_M = {"c": 0.01, "f": 0.3048, "y": 0.9144}  # first letter of the unit -> metres
_PERCENT = _rx(rf"(?P<n>{UN})\s*(?:%|percent)\s+(?:to\s+(?:the\s+)?)?(?P<s>left|right)\b")
_EL_NUM = tuple(
    _rx(p)
    for p in (
        rf"\b(?:el(?:e|ev|evation)?|height|altitude|tilt(?:ed)?(?:\s+up)?)\s*[:=]?\s*(?:of\s+|at\s+"
        rf"|to\s+|by\s+)?(?P<n>{N})(?:\s*degrees)?(?!\s*(?:m|metres?|meters?)\b)(?:\s+{_DN})?",
        r"\b(?:"
        + alt("elevated raised lifted tilted_up angled_up pitched_up up higher")
        + r"|(?P<dn>"
        + alt("lowered tilted_down angled_down down lower dropped")
        + rf"))\s+(?:by\s+)?(?P<n>{UN})\s*degrees",
        rf"(?P<n>{N})\s*degrees\s+(?:(?P<dn>down(?:wards?)?|below|low|lower|beneath|under(?:neath)?"
        r"|of\s+depression)|"
        + alt(
            "up(?:wards?)? above high(?:er)? overhead elevat\\w* "
            "of_(?:elevation|height) in_(?:elevation|height) raised "
            "skywards? vertical(?:ly)?"
        )
        + r")\b",
    )
)
_NOT_UNIT = (
    r"(?!\s*(?:%|percent|m\b|metres?|meters?|feet|ft|bars?|beats?|oclock|bpm|points?|"
    r"times?|stages?|moments?|seconds?|secs?|s\b|ms\b|db\b|hz|khz|k\b|x\b|objects?|stems?|"
    r"tracks?|o\b|minutes?|mins?|am\b|pm\b))"
)
_SIDE = r"(?P<s>left|right)\b"
_REAR = r"(?P<rear>\s+of\s+(?:the\s+)?(?:back|rear|behind))?"
_N5 = r"[-+]?(?:\d{2,3}|[5-9])(?:\.\d{1,4})?"  # a bare number that can be an angle (>= 5)
_AZ_NUM = tuple(
    _rx(p)
    for p in (  # in priority order; see _num_az for the groups
        r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*oclock\b",
        r"(?<![\d.:])(?P<h>\d{1,2}):(?P<m>\d{2})(?![\d:])",
        rf"(?P<n>{N})\s*degrees\s*(?:angle\s+)?(?:(?:off(?:\s+(?:axis|cent(?:er|re)))?|over|out)\s+)?"
        rf"(?:(?:to|towards?|on|at)\s+)?(?:(?:the|my|your)\s+)?{_SIDE}{_REAR}",
        rf"(?<![\d.])(?P<n>{_N5})\s+(?:to\s+(?:the\s+)?)?{_SIDE}{_REAR}",  # "30 to the left"
        rf"(?P<n>{N})\s*degrees\s*(?P<s>l|r)\b",
        rf"\b{_SIDE}\s+(?:by\s+|at\s+)?(?:(?P<n>{UN})\s*degrees|(?<![\d.])(?P<n5>{_N5})(?![\d.:])"
        rf"{_NOT_UNIT})",
        rf"\b(?:az(?:imuth|i)?|angle|bearing|heading|direction|pan(?:ned)?\s+(?:to|at))\s*[:=]?\s*"
        rf"(?:of\s+|at\s+|to\s+)?(?P<n>{N})(?:\s*degrees)?",
        rf"(?<![\w.])(?P<n>{N})\s*degrees\b",
        rf"\b(?P<at>at)\s+(?P<n>{N})\b(?![.:]\d){_NOT_UNIT}",
    )
)


_DIGIT = _rx(r"\d")
_SIDELESS = 7  # _AZ_NUM patterns from here on carry no side of their own ("100 degrees", "at 100")
_SIDE_WORD = _rx(r"\b(?P<s>left|right)(?:\s+(?:hand\s+)?side)?\b")


def _unsigned(raw: str, az: float) -> bool:
    """Whether an angle was written without a sign and read as written ("at 2" is a clock)."""
    return raw[0] != "+" and az == float(raw)


def _side_sign(scan: Scan, out: dict[str, Any]) -> None:
    """An unsigned angle in a clause that names a side takes that side's sign:
    "right side, 100 degrees" is -100 (100 degrees towards the right), not +100.
    """
    if (sm := scan.find(_SIDE_WORD)) is not None:
        scan.take(sm)
        out["az_deg"] = abs(out["az_deg"]) * (1.0 if sm.group("s") == "left" else -1.0)


def _clock_az(h: int, minutes: int = 0) -> float | None:
    return _wrap(-(h * 30.0 + minutes * 0.5)) if 1 <= h <= 12 and 0 <= minutes < 60 else None


def _num_az(m: re.Match[str]) -> float | None:
    """Azimuth in degrees from a clock, signed-degree or side-degree match; None if absurd."""
    g = m.groupdict()
    if g.get("h"):
        return _clock_az(int(g["h"]), int(g.get("m") or 0))
    n = float(g.get("n") or g["n5"])
    if g.get("s"):
        n = abs(n)
        n = (180.0 - n if g.get("rear") else n) * (1.0 if g["s"] in ("l", "left") else -1.0)
    elif g.get("at") and n.is_integer() and 1 <= n <= 12:  # "at 2" is a clock position
        return _clock_az(int(n))
    return _wrap(n) if abs(n) <= 360.0 else None  # "999 degrees" is ignored


def _parse_numbers(scan: Scan, out: dict[str, Any]) -> None:
    if not _DIGIT.search(scan.work):  # every reader here needs a digit; most clauses have none
        return
    for rx in (_DIST_NUM, _DIST_KEY):
        if "dist_m" not in out and (m := scan.take(scan.find(rx))):
            unit = (m.groupdict().get("u") or "m")[0]
            out["dist_m"] = float(m.group("n")) * _UNIT_M.get(unit, 1.0)
    if m := scan.take(scan.find(_PERCENT)):  # "50% left": pan-law percent of a side
        sign = 1.0 if m.group("s") == "left" else -1.0
        out["az_deg"] = min(float(m.group("n")), 100.0) * C.PAN_LAW_DEG_PER_PERCENT * sign
    for rx in _EL_NUM:
        if "el_deg" not in out and (m := scan.take(scan.find(rx))):
            n = float(m.group("n"))
            out["el_deg"] = -abs(n) if m.groupdict().get("dn") else n
    for i, rx in enumerate(_AZ_NUM):
        while "az_deg" not in out and (m := scan.take(scan.find(rx))):
            if (az := _num_az(m)) is not None:
                out["az_deg"] = az
                if i >= _SIDELESS and 0.0 < az < 180.0 and _unsigned(m.group("n"), az):
                    _side_sign(scan, out)


# --- negation and exclusion -------------------------------------------------------------------
# Each zone of gravity.rules.REGIONS with the words that name it after a negation.
_ZONE_WORDS = {
    "left": r"left(?:\s+(?:hand\s+)?side)?",
    "right": r"right(?:\s+(?:hand\s+)?side)?",
    "front": rf"front(?:\s+of\s+{ME})?|ahead(?:\s+of\s+{ME})?",
    "rear": rf"behind(?:\s+(?:{ME}|{HEAD}))?|back(?!\s+(?:and|in\s+the\s+mix))|rear|surrounds",
    "above": rf"above(?:\s+(?:{ME}|{HEAD}))?|overhead|heights?|elevation|ceiling|top|sky|air|up\s+(?:high|top|there)"
    r"|high(?:\s+up)?|up(?!\s+(?:front|close))",
    "below": rf"(?:below|beneath|under(?:neath)?)(?:\s+{ME})?|floor|ground|bottom|down\s+low|low(?!\s+end)|down",
    "sides": r"sides",
}
_NEG_LEAD = (
    r"(?:(?:do(?:es)?\s*n'?t|do(?:es)?\s+not|dont|never|please\s+don'?t|i\s+don'?t\s+want\s+to)\s+"
    r"(?:put|place|pan|send|have|want|position|let|bring|move|go|sit|hear)\w*"
    r"(?:\s+(?:anything|any\s+\w+|it|them|things|stuff|that|this|the\s+\w+)(?:\s+else)?)?"
    r"|(?:keep|stay|kept|keeping|stays|leave)\s+(?:(?:it|them|everything|things|that|this)\s+)?"
    r"(?:out\s+of|away\s+from|clear\s+of|off)"
    r"|nothing(?:\s+else)?(?:\s+(?:is|goes|sits|should\s+(?:be|go|sit)|can\s+(?:be|go)|at\s+all))?"
    r"|none(?:\s+of\s+(?:it|them))?|nowhere(?:\s+near)?"
    r"|no(?:\s+(?:stems?|sounds?|instruments?|tracks?|objects?|elements?))?(?=\s+"
    r"(?:height|heights|rear|surrounds?|elevation|overhead|floor|sides|back)\b)"
    r"|not|never|nor|out\s+of|away\s+from|clear\s+of|off(?=\s+(?:the\s+)?(?:floor|ground|ceiling|sides)\b)"
    r"|avoid(?:s|ing)?|without(?:\s+any)?|instead\s+of|rather\s+than)"
)
_NEGATION = _rx(
    rf"\b{_NEG_LEAD}\s+(?:(?:on|in|at|to|towards?|into|onto|up|from|over)\s+)?(?:(?:the|my|your|our)\s+)?"
    r"(?:" + "|".join(f"(?P<{k}>{v})" for k, v in _ZONE_WORDS.items()) + r")\b"
    rf"(?:\s+{UN}\s*degrees)?"  # "nothing above 30 degrees": the bound, not an azimuth
)
_WIDTH_CAP = (
    (
        C.MAX_WIDTH_NOT_TOO_WIDE,
        _rx(
            r"\bnot\s+(?:too|overly|that|so|very|super|all\s+that|really)\s+(?:wide|broad|big|huge|spread(?:\s+out)?)"
            r"|\bnot\s+(?:huge|massive|enormous)\b"
        ),
    ),
    (
        C.MAX_WIDTH_NOT_WIDE,
        _rx(
            r"\bnot\s+(?:wide|broad|spread(?:\s+out)?)\b|\bnarrow\s*ish\b|\b(?:fairly|quite|rather|somewhat|pretty)"
            r"\s+narrow\b|\bon\s+the\s+narrow\s+side\b"
        ),
    ),
)


def _parse_negation(scan: Scan, out: dict[str, Any]) -> None:
    """Exclusions and caps: "nothing behind me" avoids the rear zone, "not too wide" caps the width.

    The negated words are consumed, so no later reader places the stem where the text said not to.
    """
    avoid = [next(k for k in _ZONE_WORDS if m.group(k)) for m in scan.take_all(_NEGATION)]
    if avoid:
        out["avoid"] = tuple(dict.fromkeys(avoid))
    for cap, rx in _WIDTH_CAP:
        if "max_width" not in out and scan.take(scan.find(rx)):
            out["max_width"] = cap


# --- special phrases ------------------------------------------------------------------------
_OWNER = r"(?:my|your|the(?:\s+listener'?s)?|our)"
_SHOULDER = _rx(
    rf"\b(?P<p>over|above|behind|past|by|on|at|near)\s+{_OWNER}\s+"
    r"(?:(?P<s>left|right)\s+)?shoulders?\b"
)
_EAR = _rx(
    r"\b(?:right\s+)?(?:in|at|into|(?:next|close|near)\s+to|by|near|inside|against|on)\s+"
    rf"{_OWNER}\s+(?:(?P<s>left|right)\s+)?ears?\b"
)
_CENTRE_SIDE = _rx(
    rf"\b(?:(?P<m>{SLIGHT})\s+)?(?:to\s+)?(?:the\s+)?(?:(?P<s1>left|right)\s+"
    r"(?:of\s+)?(?:the\s+)?(?:cent(?:er|re)|middle)|(?:cent(?:er|re)|mid)\s+"
    r"(?P<s2>left|right)|(?P<off>off\s+(?:the\s+)?cent(?:er|re)\s+(?:to\s+)?"
    r"(?:the\s+)?(?P<s3>left|right)))\b"
)
_SURROUND = _rx(
    r"\b(?:(?P<r1>rear|back)\s+)?(?:surround\s+(?P<s1>left|right)|(?P<s2>left|right)"
    r"\s+(?:(?P<r2>rear|back)\s+)?surround)\b"
)
_BOTH_SIDES = _rx(
    r"\b(?:(?:hard|wide|far)\s+)?(?:(?:on|to|at|out\s+to)\s+)?"
    + alt(
        "left_and_right right_and_left both_(?:sides|ears|speakers) either_side each_side "
        "(?:either|each|both)_of_the_sides the_sides l_?/_?r r_?/_?l"
    )
    + r"(?!\w)"
)
# a region rather than a point: a group of stems is spread around the listener
_AROUND = _rx(
    rf"\b(?:all\s+(?:a)?round(?:\s+{ME})?|surround(?:s|ing)?\s+{ME}|(?:a)?round\s+(?:{ME}|{HEAD}|the\s+"
    r"(?:room|audience))|in\s+a\s+(?:ring|circle)\s+(?:a)?round|everywhere)\b"
)
_PUSH_BACK = _rx(
    r"\b(?:(?:push(?:ed|ing)?|set|sits?|sitting|sat|tuck(?:ed)?|further|farther)\s+"
    r"(?:it\s+|them\s+|way\s+|a\s+bit\s+|slightly\s+|a\s+little\s+)?back\b"
    r"(?!\s+(?:to|of|left|right|corner|and\s+(?:to\s+)?(?:the\s+)?(?:left|right))\b)"
    r"|back\s+in\s+the\s+mix|(?:(?:at|in)\s+)?"
    r"(?:the\s+)?back\s+of\s+the\s+(?:room|hall|stage|venue|club|space|church|mix))"
)


def _parse_special(scan: Scan, out: dict[str, Any]) -> None:
    """Fixed phrases that set several fields or would be misread word by word."""
    if m := scan.take(scan.find(_SHOULDER)):
        side = m.group("s")
        out.setdefault("az_deg", C.AZ_BACK if side is None else (C.AZ_BACK_HALF if side == "left" else -C.AZ_BACK_HALF))
        if m.group("p") in ("over", "above"):
            out.setdefault("el_deg", C.EL_SHOULDER)
    if m := scan.take(scan.find(_EAR)):
        out.setdefault("dist_m", C.DIST_VERY_CLOSE)
        if m.group("s"):
            out.setdefault("az_deg", C.AZ_HARD if m.group("s") == "left" else -C.AZ_HARD)
    if m := scan.take(scan.find(_SURROUND)):
        sign = 1.0 if (m.group("s1") or m.group("s2")) == "left" else -1.0
        out.setdefault("az_deg", sign * (C.AZ_BACK_HALF if m.group("r1") or m.group("r2") else C.AZ_SURROUND))
    if m := scan.take(scan.find(_CENTRE_SIDE)):
        sign = 1.0 if (m.group("s1") or m.group("s2") or m.group("s3")) == "left" else -1.0
        out.setdefault("az_deg", sign * (C.AZ_SLIGHT if m.group("m") or m.group("off") else C.AZ_OFF_CENTRE))
    if scan.take(scan.find(_BOTH_SIDES)):
        out["_region"] = "sides"  # one stem on both sides is one wide object (unless a width word says)
    if scan.take(scan.find(_AROUND)):
        out.setdefault("_region", "around")
    if "dist_m" not in out and scan.take(scan.find(_PUSH_BACK)):  # depth, not "behind"
        out["dist_m"] = C.DIST_FAR


# --- elevation, distance and width words ----------------------------------------------------
_PHRASAL = frozenset(
    (
        "turn turned turning set pick picked speed sped fill filled warm build builds building built "
        "line mix mixed open opens hook pump crank light liven brighten beef bulk spice jazz tidy "
        "clean end ends shake make makes come comes show shows tone toned calm settle slow slowed "
        "break breaks wind winds water watered dial dialed dialled bounce bounced cut step steps fade "
        "fades faded sit sits knock knocked bring brings brought louder quieter gain volume level"
    ).split()
)
_PRONOUN = frozenset("it them this that things everything".split())


def _not_phrasal(m: re.Match[str]) -> bool:
    """Reject 'up'/'down' used as a phrasal particle ('turn it up', 'tone it down')."""
    if not m.groupdict().get("ud"):
        return True
    prev = m.string[: m.start("ud")].split()[-2:]
    if prev and prev[-1] in _PRONOUN:
        prev = prev[:-1]
    return not (prev and prev[-1] in _PHRASAL)


_SL = SLIGHT
_BIT = alt("a_(?:little_)?bit a_little slightly a_touch a_tad")
_EYE = r"(?:the\s+)?(?:ear|head|eye)\s*(?:level|height|line)"
_WORD_RULES: tuple[tuple[str, float, re.Pattern[str]], ...] = tuple(
    (f, v, _rx(r"\b(?:" + p + r")\b"))
    for f, v, p in (
        (
            "el_deg",
            C.EL_ZENITH,
            r"(?:directly|straight|right|dead|exactly|immediately|vertically)\s+"
            r"(?:above|over(?:head)?|up)(?:\s+(?:me|you|us|(?:my|your)\s+head|the\s+"
            r"(?:listener|head)))?|" + alt("zenith (?:on_)?top_of_(?:my|your|the)_head straight_above directly_on_top"),
        ),
        (
            "el_deg",
            C.EL_NADIR,
            r"(?:directly|straight|right)\s+(?:below|beneath|under(?:neath)?|down)"
            rf"|nadir|under\s+(?:my|your|the)\s+(?:feet|seat|chair)|beneath\s+{ME}",
        ),
        (
            "el_deg",
            C.EL_OVERHEAD,
            rf"overhead|(?:above|over)\s+{HEAD}|over\s+{ME}|"
            + alt("ceiling roof (?:in_the_)?sky heavens? rafters up_top on_top top_of_the_(?:room|dome|sphere)")
            + r"|(?:from|at)\s+the\s+top(?!\s+of\s+the\s+(?:song|track|section|mix))",
        ),
        (
            "el_deg",
            C.EL_VERY_HIGH,
            r"(?:very|really|way|super|much|far|high|well)\s+(?:up|high|above|higher"
            r"|elevated|raised)|up\s+high|high\s+up|steep(?:ly)?",
        ),
        (
            "el_deg",
            C.EL_SLIGHT_UP,
            rf"{_SL}\s+(?:more\s+)?(?:above|up(?!\s+front)|higher|high|elevated|raised"
            r"|lifted|upwards?)|just\s+above"
            rf"|(?:raised|lifted|elevated|higher|up)\s+{_BIT}"
            rf"|lifted|(?:lift|raise)\s+(?:it\s+|them\s+)?{_BIT}|not\s+too\s+high",
        ),
        (
            "el_deg",
            C.EL_SLIGHT_DOWN,
            rf"{_SL}\s+(?:more\s+)?(?:below|lower|low|down|under|beneath|underneath"
            rf"|downwards?)|just\s+below|(?:lowered|lower|down)\s+{_BIT}"
            r"|not\s+too\s+low",
        ),
        ("el_deg", C.EL_ABOVE, rf"above\s+{_EYE}"),
        ("el_deg", C.EL_BELOW, rf"(?:below|under|beneath)\s+{_EYE}"),
        (
            "el_deg",
            C.EL_EAR,
            r"(?:at\s+|on\s+)?(?:ear|head|eye|listening)\s*(?:level|height)"
            rf"|horizon(?:tal(?:ly)?)?|level\s+with\s+(?:{ME}|my\s+ears)"
            r"|same\s+height|no\s+(?:height|elevation)",
        ),
        (
            "el_deg",
            C.EL_FLOOR,
            r"(?:on\s+|at\s+|near\s+|from\s+)?the\s+(?:floor|ground)|floor|ground"
            r"|at\s+(?:my|your|our)\s+feet|feet|(?:knee|waist)\s+(?:level|height)",
        ),
        (
            "el_deg",
            C.EL_ABOVE,
            r"above|high(?!\s+(?:end|pass|cut|shelf|freq\w*|mids?|energy))|"
            + alt("higher elevated raised upper aloft heights? upwards? hover(?:s|ing)? in_the_air from_above")
            + r"|top(?=\s+(?:front|rear|back|left|right|middle|cent(?:er|re)|side))"
            r"|(?P<ud>up)(?!\s+(?:front|close|to)\b)",
        ),
        (
            "el_deg",
            C.EL_BELOW,
            r"below|beneath|under(?:neath)?|low(?!\s+(?:end|pass|cut|shelf|freq\w*"
            r"|mids?|level|volume))|lower(?!\s+(?:mids?|end|register|octave))|"
            r"downwards?|bottom|from\s+below|underfoot"
            r"|(?P<ud>down)(?!\s+the\s+(?:middle|cent(?:er|re)|line))",
        ),
        (
            "dist_m",
            C.DIST_INSIDE,
            r"(?:inside|in|between)\s+(?:my|your|the\s+listener'?s?)\s+(?:head|ears)"
            r"|in\s*head",
        ),
        (
            "dist_m",
            C.DIST_VERY_CLOSE,
            r"(?:very|really|super|extremely|incredibly|so|ultra|intimately)\s+"
            r"(?:close|near|intimate)(?:\s+up)?|whisper\w*|"
            + alt("face_to_face (?:as_)?close_as_possible up_close_and_personal touching breathing_on"),
        ),
        (
            "dist_m",
            C.DIST_VERY_FAR,
            r"(?:very|really|super|extremely|so|incredibly|way)\s+(?:far|distant)"
            r"(?:\s+(?:away|off))?|miles\s+(?:away|off)|far\s+far\s+away",
        ),
        (
            "dist_m",
            C.DIST_MID,
            r"(?:mid|middle|medium|moderate|average|normal)\s*(?:range\s+)?"
            r"(?:distance|depth|field)|mid\s*field|not\s+(?:too\s+|that\s+|so\s+)?"
            rf"(?:far|close|near)(?:\s+away)?{SIDE_AHEAD}|a\s+few\s+(?:metres|meters"
            r"|steps|feet)(?:\s+(?:away|off))?|some\s+distance|a\s+little\s+(?:way\s+)?"
            rf"(?:off|away)|{_SL}\s+(?:far|distant|further|farther|away)(?:\s+away)?"
            rf"{SIDE_AHEAD}",
        ),
        (
            "dist_m",
            C.DIST_FAR,
            rf"far(?:\s+(?:away|off|out)\b|\b{SIDE_AHEAD})|(?:in\s+the\s+|at\s+a\s+)?"
            r"distance|(?:further|farther)\s+away|a\s+long\s+way\s+(?:away|off)|way\s+(?:back|off|out)"
            r"(?!\s+(?:to|left|right))|deep\s+in\s+the\s+(?:mix|space|distance)|"
            + alt("distant afar faraway remote background"),
        ),
        (
            "dist_m",
            C.DIST_CLOSE,
            r"close(?:\s+up|\s+by)?|near(?:er|by)?|intimate(?:ly)?|up(?=\s+front)|"
            rf"(?:next\s+to|beside)\s+{ME}|in\s+(?:my|your|our)\s+face|"
            + alt("closer up_close by_my_side arm'?s_length within_reach present foreground personal"),
        ),
        (
            "width",
            C.WIDTH_HUGE,
            r"(?:very|really|super|extra|ultra|extremely|massively|incredibly)\s+"
            r"(?:wide|broad|big|spread(?:\s+out)?)|full(?:y)?\s+(?:width|wide|spread)"
            rf"|all\s+around(?:\s+{ME})?|surround(?:ing|s)?\s+{ME}|"
            + alt(
                "huge massive enormous giant gigantic immense as_wide_as_possible "
                "max(?:imum)?_width wall_of_sound everywhere envelop\\w* immersive"
            ),
        ),
        ("width", C.WIDTH_SLIGHTLY_WIDE, rf"{_BIT}\s+(?:wide|wider|spread|broader)"),
        (
            "width",
            C.WIDTH_MEDIUM,
            r"(?:medium|moderate|normal|average)\s+width|somewhat\s+wide"
            r"|not\s+too\s+narrow",
        ),
        (
            "width",
            C.WIDTH_NARROW,
            alt(
                "point(?:_source)? pin_?point(?:ed)? mono narrow(?:er)? "
                "tight(?:er|ly)? focus(?:s)?ed small tiny laser single_point "
                "collapsed"
            ),
        ),
        ("width", C.WIDTH_WIDE, alt("wide(?:r|ly)? broad spread(?:_out)? big large diffuse expansive spacious")),
    )
)

# --- direction words ----------------------------------------------------------------------
_LATERAL = _rx(
    rf"(?:\b(?:(?P<slight>{SLIGHT})|(?P<half>{HALF})|(?P<wide>{WIDE})"
    rf"|(?P<hard>{HARD}))\s+(?:(?:more|further|farther|over|off|out|across|round"
    r"|around)\s+)*)?(?:(?:to|on|at|towards?|in|into|onto|from|toward)\s+)?"
    r"(?:(?:the|my|your|our)\s+)?\b(?P<side>left|right)\b(?:\s+(?:hand\s+)?side)?"
    r"(?P<ish>\s+ish)?(?P<post>\s+(?:just\s+)?"
    + alt("a_(?:little_|tiny_)?bit a_little slightly a_touch a_tad a_smidge")
    + r"\b(?!\s+(?:behind|back|front|forwards?|above|below|up|down|higher|lower|closer"
    r"|further|farther|more)\b))?"
)
_LONGIT = _rx(
    rf"(?:\b(?:(?P<lslight>{SLIGHT})|(?P<lhard>{HARD}))\s+(?:(?:more|further|farther)\s+)?)?"
    r"(?:(?:to|on|at|in|into|towards?|from|toward)\s+)?(?:(?:the|my|your|our)\s+)?\b"
    r"(?:(?P<front>in\s+front(?:\s+of\s+(?:me|you|us|the\s+(?:listener|audience|room"
    r"|stage)))?|(?:up\s+)?front|ahead|forwards?|frontal|facing\s+(?:me|you|us)"
    r"|straight\s+on)|(?P<back>behind(?:\s+(?:me|you|us|the\s+listener|(?:my|your|the)"
    r"\s+head))?|backwards?|back|rear(?:wards?)?))\b"
)
_CENTRE = _rx(
    r"\b(?:cent(?:er|re)(?:e?d)?|middle|mid\s*point|phantom\s+cent(?:er|re))\b"
    r"(?!\s+(?:distance|depth))"
)
_MOD_AZ = {"slight": C.AZ_SLIGHT, "half": C.AZ_HALF, "wide": C.AZ_WIDE, "hard": C.AZ_HARD}


def _parse_direction(scan: Scan, out: dict[str, Any]) -> None:
    """Combine a side (left/right + modifier) with front/back into one azimuth."""
    lat, lon = scan.take(scan.find(_LATERAL)), scan.take(scan.find(_LONGIT))
    centre = scan.take(scan.find(_CENTRE))
    if "az_deg" in out:
        return
    if lat is None:
        if lon is not None or centre is not None:
            out["az_deg"] = C.AZ_BACK if lon is not None and lon.group("back") else C.AZ_FRONT
        if lon is not None and centre is None and not (lon.group("lhard") or lon.group("lslight")):
            out.setdefault("_region", "rear" if lon.group("back") else "front")  # "behind me", not "dead centre"
        return
    sign = 1.0 if lat.group("side") == "left" else -1.0
    mod = next((k for k in _MOD_AZ if lat.group(k)), None)
    mod = mod or ("slight" if lat.group("post") else "half" if lat.group("ish") else None)
    if lon is None:
        out["az_deg"] = sign * _MOD_AZ[mod or "hard"]
        return
    if mod == "slight":  # "front, slightly left": 20 deg off the front/back axis
        off = C.AZ_SLIGHT
    elif lon.group("lslight"):  # "left, slightly in front": 20 deg off the side axis
        off = C.AZ_SIDE_FRONT
    else:
        off = C.AZ_WIDE if mod == "wide" else C.AZ_HALF
    out["az_deg"] = sign * (off if lon.group("front") else C.AZ_BACK - off)


def _parse_static(scan: Scan, out: dict[str, Any]) -> None:
    """Positions, depth and width of one clause (after negation and motion took their words)."""
    _parse_numbers(scan, out)
    _parse_special(scan, out)
    for stage in ("el_deg", "dist_m", "direction", "width"):  # priority order
        if stage == "direction":
            _parse_direction(scan, out)
        for field, value, rx in _WORD_RULES:
            if field == stage and field not in out and scan.take(scan.find(rx, _not_phrasal)):
                out[field] = value
    if out.get("_region") in ("sides", "around") and "width" not in out:
        out["width"], out["_region_width"] = C.WIDTH_HUGE, True


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(float(x), lo), hi)


def _clamp_motion(mo: Motion) -> Motion:
    p: dict[str, Any] = {}
    for k, v in mo.params.items():
        if k.endswith("_az"):
            v = _wrap(v)
        elif k.endswith("_el"):
            v = _clamp(v, -90.0, 90.0)
        elif k.endswith("_dist"):
            v = _clamp(v, *_DIST_RANGE)
        p[k] = v
    return Motion(mo.pattern, p)


_ARC = {"rear": C.ARC_REAR, "front": C.ARC_FRONT, "around": C.ARC_AROUND, "sides": C.ARC_SIDES, "above": C.ARC_AROUND}


# Words that place, exclude or relate: one left in a clause after every reader means the reading
# missed part of what the text says (a second side, an exception or negation, a reference to
# another stem). Height and distance words are not listed: left over, they mostly repeat what was
# read ("down low", "very high up", "on the floor below").
_PLACE_WORD = _rx(
    r"\b(?:"
    + alt(
        "left right front back behind rear not no nothing except but without opposite across "
        "mirror mirrors mirrored each_other other_side"
    )
    + r")\b"
)


def read_clause(text: str) -> tuple[Placement, Placement]:
    """Read one already normalised clause for one stem and for a group of stems.

    Parameters
    ----------
    text : str
        Normalised text (:func:`gravity.plan.normalise.normalize`).

    Returns
    -------
    (Placement, Placement)
        The reading for one stem (a point: ``arc_deg`` None), and for several stems named
        together: where the phrase names a region rather than a point, ``arc_deg`` is the azimuth
        span in degrees to spread them over ("behind me" az 180 arc 110, "in front" az 0 arc 60,
        "all around me" and a group "above me" arc 360, "on each side" az 90 arc 180: a mirrored
        pair), and a width the region phrase alone implied for one stem ("left and right": one
        wide object) is dropped. ``group`` is left for the caller, who knows the stem ids.
    """
    scan = Scan(text)
    out: dict[str, Any] = {}
    _parse_negation(scan, out)
    _parse_motion(scan, out)
    _parse_static(scan, out)
    az, el, dist, width, cap = (out.get(k) for k in ("az_deg", "el_deg", "dist_m", "width", "max_width"))
    one = Placement(
        az_deg=None if az is None else _wrap(az) + 0.0,  # + 0.0 turns -0.0 into 0.0
        el_deg=None if el is None else _clamp(el, -90.0, 90.0) + 0.0,
        dist_m=None if dist is None else _clamp(dist, *_DIST_RANGE),
        width=None if width is None else _clamp(width, 0.0, 1.0),
        motion=None if out.get("motion") is None else _clamp_motion(out["motion"]),
        matched=tuple(s for _, s in sorted(scan.spans) if s),
        avoid=out.get("avoid", ()),
        max_width=cap,
        unread=tuple(m.group(0) for m in _PLACE_WORD.finditer(scan.work)),
    )
    region = out.get("_region")
    if region == "sides" and one.az_deg is not None and abs(one.az_deg) != C.AZ_HARD:
        # "behind me on both sides": the rear pair, "in front either side": the front stage
        region = "rear" if abs(one.az_deg) > C.AZ_HARD else "front"
    if region is None and one.az_deg is None and one.el_deg is not None and C.EL_SLIGHT_UP < one.el_deg < C.EL_ZENITH:
        region = "above"  # "the choir above me": a ring overhead, not one point
    if region is None or one.motion is not None:  # a moving group follows its motion
        return one, one
    many = dataclasses.replace(one, arc_deg=_ARC[region])
    if region == "sides":
        many = dataclasses.replace(many, az_deg=C.AZ_HARD)
    if out.get("_region_width"):  # the width "left and right" implied for one stem
        many = dataclasses.replace(many, width=None)
    return one, many


def parse_norm(text: str) -> Placement:
    """Parse one already normalised clause for one stem (see :func:`read_clause`)."""
    return read_clause(text)[0]


def parse_hint(text: str) -> Placement:
    """Parse one stem's hint, e.g. ``'slightly above, front left, far'``.

    Parameters
    ----------
    text : str
        Free text in any register. Never raises: unknown text gives ``Placement()``.

    Returns
    -------
    Placement
        Azimuth and elevation in degrees, distance in metres, width in [0, 1], motion.
    """
    try:
        return parse_norm(normalize(text))
    except Exception:  # pragma: no cover - a parser bug must not break the planner
        log.exception("could not parse hint %.80r", text)
        return Placement()
