"""Phrase readers: one stem's plain-language hint -> :class:`Placement`.

Conventions: azimuth degrees, positive = LEFT, 0 = front, wrapped to (-180, 180]; elevation
degrees, positive up, in [-90, 90]; distance metres in [0.25, 50]; width in [0, 1]. Clock
positions are seen from above with 12 o'clock = front and each hour 30 deg clockwise (towards
the right, negative azimuth): 3 o'clock = -90, 9 o'clock = +90, 10:30 = +45.

The parser is rule based. A clause is normalised (lower case, unicode folded, number words to
digits: :mod:`gravity.plan.normalise`), then readers run in priority order -- motion, explicit
numbers, special phrases, elevation words, distance words, direction words, width words -- and
every matched span is blanked so a word is used once: "far left" is a direction, "far" alone a
distance. Fragments several readers share live in :mod:`gravity.plan.lexicon`; a scene prompt
is split into clauses for these readers by :mod:`gravity.plan.prompt`.

Value table
-----------
============================================  ===========================================
phrase                                        value
============================================  ===========================================
left, left side, hard / far / fully left      az +90 (right: -90)
wide left, mostly left                        az +60
half left, somewhat left, left-ish            az +45
left of centre, centre left                   az +30
slightly / a bit / a touch / just left        az +20
front, ahead, centre, middle                  az 0
back, behind, rear                            az 180
front left / back left                        az +45 / +135
front, slightly left / back, slightly left    az +20 / +160
left, slightly in front / slightly behind     az +70 / +110
left surround / rear surround left            az +110 / +135
over my left shoulder                         az +135, el +20
directly above, zenith, straight up           el +90
overhead, above my head, ceiling, sky         el +70
very high, high up, way above                 el +60
above, high, up, elevated, raised             el +40
slightly above, a bit higher                  el +20
ear level, head height, horizon               el 0
slightly below, a bit lower                   el -15
low, below, down, under                       el -25
floor, ground, at my feet                     el -30
directly below, beneath me                    el -70
inside my head                                dist 0.3 m
very close, in my ear, whispering             dist 0.5 m
close, near, intimate, in your face, upfront  dist 1.0 m
mid distance, not too far                     dist 3.0 m
far, distant, in the distance, background     dist 8.0 m
very far, miles away                          dist 15.0 m
very wide, huge, all around, left and right   width 1.0
wide, broad, spread, big                      width 0.8
slightly wide / medium width                  width 0.6 / 0.5
narrow, tight, point source, mono             width 0.1
============================================  ===========================================

Motion: pan, orbit (direction ``"ccw"`` unless stated), ping_pong, rise, fall, approach,
recede, fly_over (front 0 -> back 180 unless stated) and static, with endpoints from "from X
to Y" / "starts X and ends Y" and periods from "every N bars". When both endpoints are stated
the static coordinate is the start ("pans from left to right" -> az +90).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, fields
from typing import Any

from gravity.motion import Motion, wrap_az
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

__all__ = ["Placement", "parse_hint", "parse_norm"]

log = logging.getLogger(__name__)
_rx = re.compile  # short: the readers compile some eighty patterns

_DIST_RANGE = (0.25, 50.0)  # metres
_PERIOD_RANGE = (0.25, 64.0)  # bars


@dataclass(frozen=True)
class Placement:
    """What a hint says about one stem; ``None`` = the text said nothing about that field.

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
    """

    az_deg: float | None = None
    el_deg: float | None = None
    dist_m: float | None = None
    width: float | None = None
    motion: Motion | None = None
    matched: tuple[str, ...] = ()

    @property
    def places(self) -> bool:
        """True when the text gives a position (azimuth, elevation or distance): without a
        motion of its own, such a stem holds still there (planner and hint pins agree).
        """
        return self.az_deg is not None or self.el_deg is not None or self.dist_m is not None

    def is_empty(self) -> bool:
        """True when no field (other than ``matched``) was set."""
        return all(getattr(self, f.name) is None for f in fields(self) if f.name != "matched")

    def merged(self, other: Placement) -> Placement:
        """Field-wise merge: ``other``'s set fields win; the matched spans of both are kept."""
        vals = {
            f.name: getattr(other, f.name) if getattr(other, f.name) is not None else getattr(self, f.name)
            for f in fields(self)
            if f.name != "matched"
        }
        return Placement(**vals, matched=self.matched + other.matched)


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
    r"|keep\s+(?:it\s+|them\s+)?(?:still|in\s+place))\b"
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
    return out


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
            return {"from_az": 90.0, "to_az": -90.0}
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
            params["to_az"] = wrap_az(params["from_az"] + 180.0)
        params = params or {"from_az": 0.0, "to_az": 180.0}
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
            period = 8.0
        if period is None and scan.take(scan.find(_FAST)):
            period = 1.0
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


def _clock_az(h: int, minutes: int = 0) -> float | None:
    return wrap_az(-(h * 30.0 + minutes * 0.5)) if 1 <= h <= 12 and 0 <= minutes < 60 else None


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
    return wrap_az(n) if abs(n) <= 360.0 else None  # "999 degrees" is ignored


def _parse_numbers(scan: Scan, out: dict[str, Any]) -> None:
    for rx in (_DIST_NUM, _DIST_KEY):
        if "dist_m" not in out and (m := scan.take(scan.find(rx))):
            unit = (m.groupdict().get("u") or "m")[0]
            out["dist_m"] = float(m.group("n")) * _UNIT_M.get(unit, 1.0)
    if m := scan.take(scan.find(_PERCENT)):  # "50% left": pan-law percent of a side
        sign = 1.0 if m.group("s") == "left" else -1.0
        out["az_deg"] = min(float(m.group("n")), 100.0) * 0.9 * sign
    for rx in _EL_NUM:
        if "el_deg" not in out and (m := scan.take(scan.find(rx))):
            n = float(m.group("n"))
            out["el_deg"] = -abs(n) if m.groupdict().get("dn") else n
    for rx in _AZ_NUM:
        while "az_deg" not in out and (m := scan.take(scan.find(rx))):
            if (az := _num_az(m)) is not None:
                out["az_deg"] = az


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
_NEGATED = _rx(
    r"\b(?:not|never|nor|away\s+from|instead\s+of|rather\s+than)\s+(?:(?:on|in|at|to"
    r"|towards)\s+)?(?:the\s+)?(?:left|right|front|back|behind|rear)\b"
)
_BOTH_SIDES = _rx(
    r"\b(?:(?:hard|wide|far)\s+)?"
    + alt("left_and_right right_and_left both_(?:sides|ears|speakers) either_side each_side")
    + r"\b"
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
        out.setdefault("az_deg", 180.0 if side is None else (135.0 if side == "left" else -135.0))
        if m.group("p") in ("over", "above"):
            out.setdefault("el_deg", 20.0)
    if m := scan.take(scan.find(_EAR)):
        out.setdefault("dist_m", 0.5)
        if m.group("s"):
            out.setdefault("az_deg", 90.0 if m.group("s") == "left" else -90.0)
    if m := scan.take(scan.find(_SURROUND)):
        sign = 1.0 if (m.group("s1") or m.group("s2")) == "left" else -1.0
        out.setdefault("az_deg", sign * (135.0 if m.group("r1") or m.group("r2") else 110.0))
    if m := scan.take(scan.find(_CENTRE_SIDE)):
        sign = 1.0 if (m.group("s1") or m.group("s2") or m.group("s3")) == "left" else -1.0
        out.setdefault("az_deg", sign * (20.0 if m.group("m") or m.group("off") else 30.0))
    if scan.take(scan.find(_BOTH_SIDES)):
        out.setdefault("width", 1.0)
    while scan.take(scan.find(_NEGATED)):  # "not on the left": drop the negated direction
        pass
    if "dist_m" not in out and scan.take(scan.find(_PUSH_BACK)):  # depth, not "behind"
        out["dist_m"] = 8.0


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
            90.0,
            r"(?:directly|straight|right|dead|exactly|immediately|vertically)\s+"
            r"(?:above|over(?:head)?|up)(?:\s+(?:me|you|us|(?:my|your)\s+head|the\s+"
            r"(?:listener|head)))?|" + alt("zenith (?:on_)?top_of_(?:my|your|the)_head straight_above directly_on_top"),
        ),
        (
            "el_deg",
            -70.0,
            r"(?:directly|straight|right)\s+(?:below|beneath|under(?:neath)?|down)"
            rf"|nadir|under\s+(?:my|your|the)\s+(?:feet|seat|chair)|beneath\s+{ME}",
        ),
        (
            "el_deg",
            70.0,
            rf"overhead|(?:above|over)\s+{HEAD}|over\s+{ME}|"
            + alt("ceiling roof (?:in_the_)?sky heavens? rafters up_top on_top top_of_the_(?:room|dome|sphere)")
            + r"|(?:from|at)\s+the\s+top(?!\s+of\s+the\s+(?:song|track|section|mix))",
        ),
        (
            "el_deg",
            60.0,
            r"(?:very|really|way|super|much|far|high|well)\s+(?:up|high|above|higher"
            r"|elevated|raised)|up\s+high|high\s+up|steep(?:ly)?",
        ),
        (
            "el_deg",
            20.0,
            rf"{_SL}\s+(?:more\s+)?(?:above|up(?!\s+front)|higher|high|elevated|raised"
            r"|lifted|upwards?)|just\s+above"
            rf"|(?:raised|lifted|elevated|higher|up)\s+{_BIT}"
            rf"|lifted|(?:lift|raise)\s+(?:it\s+|them\s+)?{_BIT}|not\s+too\s+high",
        ),
        (
            "el_deg",
            -15.0,
            rf"{_SL}\s+(?:more\s+)?(?:below|lower|low|down|under|beneath|underneath"
            rf"|downwards?)|just\s+below|(?:lowered|lower|down)\s+{_BIT}"
            r"|not\s+too\s+low",
        ),
        ("el_deg", 40.0, rf"above\s+{_EYE}"),
        ("el_deg", -25.0, rf"(?:below|under|beneath)\s+{_EYE}"),
        (
            "el_deg",
            0.0,
            r"(?:at\s+|on\s+)?(?:ear|head|eye|listening)\s*(?:level|height)"
            rf"|horizon(?:tal(?:ly)?)?|level\s+with\s+(?:{ME}|my\s+ears)"
            r"|same\s+height|no\s+(?:height|elevation)",
        ),
        (
            "el_deg",
            -30.0,
            r"(?:on\s+|at\s+|near\s+|from\s+)?the\s+(?:floor|ground)|floor|ground"
            r"|at\s+(?:my|your|our)\s+feet|feet|(?:knee|waist)\s+(?:level|height)",
        ),
        (
            "el_deg",
            40.0,
            r"above|high(?!\s+(?:end|pass|cut|shelf|freq\w*|mids?|energy))|"
            + alt("higher elevated raised upper aloft heights? upwards? hover(?:s|ing)? in_the_air from_above")
            + r"|top(?=\s+(?:front|rear|back|left|right|middle|cent(?:er|re)|side))"
            r"|(?P<ud>up)(?!\s+(?:front|close|to)\b)",
        ),
        (
            "el_deg",
            -25.0,
            r"below|beneath|under(?:neath)?|low(?!\s+(?:end|pass|cut|shelf|freq\w*"
            r"|mids?|level|volume))|lower(?!\s+(?:mids?|end|register|octave))|"
            r"downwards?|bottom|from\s+below|underfoot"
            r"|(?P<ud>down)(?!\s+the\s+(?:middle|cent(?:er|re)|line))",
        ),
        (
            "dist_m",
            0.3,
            r"(?:inside|in|between)\s+(?:my|your|the\s+listener'?s?)\s+(?:head|ears)"
            r"|in\s*head",
        ),
        (
            "dist_m",
            0.5,
            r"(?:very|really|super|extremely|incredibly|so|ultra|intimately)\s+"
            r"(?:close|near|intimate)(?:\s+up)?|whisper\w*|"
            + alt("face_to_face (?:as_)?close_as_possible up_close_and_personal touching breathing_on"),
        ),
        (
            "dist_m",
            15.0,
            r"(?:very|really|super|extremely|so|incredibly|way)\s+(?:far|distant)"
            r"(?:\s+(?:away|off))?|miles\s+(?:away|off)|far\s+far\s+away",
        ),
        (
            "dist_m",
            3.0,
            r"(?:mid|middle|medium|moderate|average|normal)\s*(?:range\s+)?"
            r"(?:distance|depth|field)|mid\s*field|not\s+(?:too\s+|that\s+|so\s+)?"
            rf"(?:far|close|near)(?:\s+away)?{SIDE_AHEAD}|a\s+few\s+(?:metres|meters"
            r"|steps|feet)(?:\s+(?:away|off))?|some\s+distance|a\s+little\s+(?:way\s+)?"
            rf"(?:off|away)|{_SL}\s+(?:far|distant|further|farther|away)(?:\s+away)?"
            rf"{SIDE_AHEAD}",
        ),
        (
            "dist_m",
            8.0,
            rf"far(?:\s+(?:away|off|out)\b|\b{SIDE_AHEAD})|(?:in\s+the\s+|at\s+a\s+)?"
            r"distance|(?:further|farther)\s+away|way\s+(?:back|off|out)"
            r"(?!\s+(?:to|left|right))|deep\s+in\s+the\s+(?:mix|space|distance)|"
            + alt("distant afar faraway remote background"),
        ),
        (
            "dist_m",
            1.0,
            r"close(?:\s+up|\s+by)?|near(?:er|by)?|intimate(?:ly)?|up(?=\s+front)|"
            rf"(?:next\s+to|beside)\s+{ME}|in\s+(?:my|your|our)\s+face|"
            + alt("closer up_close by_my_side arm'?s_length within_reach present foreground personal"),
        ),
        (
            "width",
            1.0,
            r"(?:very|really|super|extra|ultra|extremely|massively|incredibly)\s+"
            r"(?:wide|broad|big|spread(?:\s+out)?)|full(?:y)?\s+(?:width|wide|spread)"
            rf"|all\s+around(?:\s+{ME})?|surround(?:ing|s)?\s+{ME}|"
            + alt(
                "huge massive enormous giant gigantic immense as_wide_as_possible "
                "max(?:imum)?_width wall_of_sound everywhere envelop\\w* immersive"
            ),
        ),
        ("width", 0.6, rf"{_BIT}\s+(?:wide|wider|spread|broader)"),
        (
            "width",
            0.5,
            r"(?:medium|moderate|normal|average)\s+width|somewhat\s+wide"
            r"|not\s+too\s+(?:wide|narrow)",
        ),
        (
            "width",
            0.1,
            alt(
                "point(?:_source)? pin_?point(?:ed)? mono narrow(?:er)? "
                "tight(?:er|ly)? focus(?:s)?ed small tiny laser single_point "
                "collapsed"
            ),
        ),
        ("width", 0.8, alt("wide(?:r|ly)? broad spread(?:_out)? big large diffuse expansive spacious")),
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
    rf"(?:\b(?:(?P<lslight>{SLIGHT})|{HARD})\s+(?:(?:more|further|farther)\s+)?)?"
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
_MOD_AZ = {"slight": 20.0, "half": 45.0, "wide": 60.0, "hard": 90.0}


def _parse_direction(scan: Scan, out: dict[str, Any]) -> None:
    """Combine a side (left/right + modifier) with front/back into one azimuth."""
    lat, lon = scan.take(scan.find(_LATERAL)), scan.take(scan.find(_LONGIT))
    centre = scan.take(scan.find(_CENTRE))
    if "az_deg" in out:
        return
    if lat is None:
        if lon is not None or centre is not None:
            out["az_deg"] = 180.0 if lon is not None and lon.group("back") else 0.0
        return
    sign = 1.0 if lat.group("side") == "left" else -1.0
    mod = next((k for k in _MOD_AZ if lat.group(k)), None)
    mod = mod or ("slight" if lat.group("post") else "half" if lat.group("ish") else None)
    if lon is None:
        out["az_deg"] = sign * _MOD_AZ[mod or "hard"]
        return
    if mod == "slight":  # "front, slightly left": 20 deg off the front/back axis
        off = 20.0
    elif lon.group("lslight"):  # "left, slightly in front": 20 deg off the side axis
        off = 70.0
    else:
        off = 60.0 if mod == "wide" else 45.0
    out["az_deg"] = sign * (off if lon.group("front") else 180.0 - off)


def _parse_static(scan: Scan, out: dict[str, Any]) -> None:
    _parse_numbers(scan, out)
    _parse_special(scan, out)
    for stage in ("el_deg", "dist_m", "direction", "width"):  # priority order
        if stage == "direction":
            _parse_direction(scan, out)
        for field, value, rx in _WORD_RULES:
            if field == stage and field not in out and scan.take(scan.find(rx, _not_phrasal)):
                out[field] = value


def _clamp(x: float, lo: float, hi: float) -> float:
    return min(max(float(x), lo), hi)


def _clamp_motion(mo: Motion) -> Motion:
    p: dict[str, Any] = {}
    for k, v in mo.params.items():
        if k.endswith("_az"):
            v = wrap_az(float(v))
        elif k.endswith("_el"):
            v = _clamp(v, -90.0, 90.0)
        elif k.endswith("_dist"):
            v = _clamp(v, *_DIST_RANGE)
        p[k] = v
    return Motion(mo.pattern, p)


def parse_norm(text: str) -> Placement:
    """Parse one already normalised clause."""
    scan = Scan(text)
    out: dict[str, Any] = {}
    _parse_motion(scan, out)
    _parse_static(scan, out)
    az, el, dist, width = (out.get(k) for k in ("az_deg", "el_deg", "dist_m", "width"))
    return Placement(
        az_deg=None if az is None else float(wrap_az(az)) + 0.0,  # + 0.0 turns -0.0 into 0.0
        el_deg=None if el is None else _clamp(el, -90.0, 90.0) + 0.0,
        dist_m=None if dist is None else _clamp(dist, *_DIST_RANGE),
        width=None if width is None else _clamp(width, 0.0, 1.0),
        motion=None if out.get("motion") is None else _clamp_motion(out["motion"]),
        matched=tuple(s for _, s in sorted(scan.spans) if s),
    )


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
