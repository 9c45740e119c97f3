"""The model's prompt and output format, written once for the runtime and for training.

Prompt: ChatML (SmolLM2 and Qwen2.5 both use it) with a fixed system text (so its KV cache can
be reused between calls) and the request in a compact line format (v3; about half the tokens
of compact JSON: the prompt is most of the work of prompt evaluation and of training)::

    fmt 7.1.4 max 8 style pop section chorus bpm 124 energy 9 time 4/4 bars 8
    rules [{"type":"mono_low_end","hz_below":120}]
    lead_vocal0 lead_vocal -16 31738 | slightly left, close
    kick1 kick -12 98018
    prompt: wide and dreamy

One line per stem: id, class, loudness in LUFS and five digits 0-9 (tenths): transient, low /
mid / high band energy, leadness; then its hint after ``|``. Rules stay compact JSON (their
shapes vary).

Output: few tokens (SmolLM2 spends one token per digit and per space), one line per stem in
request order, no ids, integers only::

    room club_medium
    0 10 16 122 1 s
    0 0 18 001 0 s
    80 25 30 332 0 pp 80 -80 2
    >2

Fields: ``az el dist wre gain motion`` with az in degrees (+ = left, -179..180), el in degrees
(-90..90), dist in decimetres (3..500), ``wre`` three digits for width, reverb send and early
reflections in ninths (0 = 0, 9 = 1), gain in dB (-24..12). Motion is a named pattern that
:func:`gravity.motion.expand` turns into keyframes from bpm and section length: ``s``
(static), ``pan A B``, ``orb cw|ccw BARS``, ``pp A B BARS``, ``rise E1 E2``, ``fall E1 E2``,
``appr D1 D2``, ``rec D1 D2`` (decimetres), ``fly A B``. ``>N`` puts the stem into the object
of the N-th stem (1-based, an earlier one) when the object budget is short.

:func:`grammar` writes a GBNF grammar for one request that bounds every field: the ids in
request order, at most ``budget`` objects, enums and integer ranges (llama-cpp-python's
JSON-schema converter ignores minimum/maximum, so the ranges are spelled out digit by digit).
Given the phrase parser's readings of the hints (``pins``), it also writes what a hint states
exactly (azimuth, elevation, distance, width, motion pattern and the parameters the text
gives) wherever the hard rules allow it: the model writes the rest of the line around them.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from .motion import Motion, expand, keyframes_array, wrap_az
from .request import Request
from .vocab import ROOM_PRESETS

if TYPE_CHECKING:
    from .language import Placement
    from .rules import StemBounds

__all__ = [
    "PROMPT_VERSION", "SYSTEM", "RANGES", "build_prompt", "build_messages", "compact_request",
    "encode_scene", "decode", "DecodeError", "grammar", "int_range", "detect_motion",
]

PROMPT_VERSION = "gravity-prompt-3"

SYSTEM = (
    "You are Gravity, a spatial mix engineer. Place each stem as an audio object around the "
    "listener. Request: a header line, the rules (JSON), one line per stem: id class lufs and "
    "digits 0-9 for transient, low, mid, high, leadness; '| hint'. Answer 'room <preset>', then one "
    "line per stem in order: az el dist wre gain motion. az: degrees, + = left, 0 = front. el: "
    "degrees, + = up. dist: decimetres. wre: width, reverb, reflections as digits 0-9. gain: dB. "
    "motion: s | pan A B | orb cw|ccw BARS | pp A B BARS | rise E1 E2 | fall E1 E2 | appr D1 D2 | "
    "rec D1 D2 | fly A B. '>N': share the object of stem N (budget). Obey every rule; follow hints."
)

# field -> (lo, hi) integer range in output units
RANGES: dict[str, tuple[int, int]] = {
    "az": (-179, 180), "el": (-90, 90), "dm": (3, 500), "ninth": (0, 9), "gain": (-24, 12), "bars": (1, 64),
}
MOTIONS = ("s", "pan", "orb", "pp", "rise", "fall", "appr", "rec", "fly")
_PATTERN_OF = {"pan": "pan", "orb": "orbit", "pp": "ping_pong", "rise": "rise", "fall": "fall",
               "appr": "approach", "rec": "recede", "fly": "fly_over"}


class DecodeError(ValueError):
    """Model output that cannot be read as a scene; the message says where."""


# ----------------------------------------------------------------------------- prompt
def _r(x: float, nd: int = 2) -> float | int:
    v = round(float(x), nd)
    return int(v) if v == int(v) else v


def _tenth(x: float) -> str:
    return str(min(9, max(0, int(round(float(x) * 10)))))


def compact_request(request: Request) -> str:
    """The request in the prompt's line format (see the module docstring): stable and short.

    Numbers are quantised to what placement needs (integer LUFS and bpm, tenths of the 0..1
    descriptors); the rule engine always works on the full request afterwards.
    """
    head = (f"fmt {request.target_format} max {request.budget} style {request.style} section {request.section} "
            f"bpm {round(request.bpm)} energy {_tenth(request.energy)} time {request.time_signature} "
            f"bars {request.section_bars}")
    lines = [head, "rules " + json.dumps([dict(r) for r in request.rules], separators=(",", ":"), ensure_ascii=False)]
    for st in request.stems:
        digits = "".join(_tenth(v) for v in (st.transient, *st.band, st.leadness))
        line = f"{st.id} {st.cls} {round(st.lufs)} {digits}"
        lines.append(f"{line} | {' '.join(st.hint.split())}" if st.hint else line)
    if request.prompt:
        lines.append("prompt: " + " ".join(request.prompt.split()))
    return "\n".join(lines)


def build_messages(request: Request) -> list[dict[str, str]]:
    """System + user chat messages (for tokenizers that apply their own chat template)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": compact_request(request)}]


def build_prompt(request: Request) -> str:
    """The full ChatML prompt text, ending where the assistant's answer starts."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in build_messages(request)) + "<|im_start|>assistant\n"


# ----------------------------------------------------------------------------- encode
def detect_motion(keyframes: np.ndarray, section_bars: int) -> Motion:
    """Name the pattern a keyframe list follows (the inverse of :func:`gravity.motion.expand`).

    Falls back to the closest simple pattern (a pan between the end points) for free-form paths.
    """
    kf = np.asarray(keyframes, dtype=float)
    moves = np.ptp(kf[:, 1:], axis=0) if len(kf) > 1 else np.zeros(3)
    if not moves.any():
        return Motion("static")
    az, el, dist = kf[:, 1], kf[:, 2], kf[:, 3]
    daz = wrap_az(np.diff(az))
    if moves[0] == 0 and moves[1] == 0:
        return Motion("approach" if dist[-1] < dist[0] else "recede", {"from_dist": dist[0], "to_dist": dist[-1]})
    if moves[0] == 0 and moves[2] == 0:
        return Motion("rise" if el[-1] > el[0] else "fall", {"from_el": el[0], "to_el": el[-1]})
    if len(kf) >= 3 and abs(el[-1] - el[0]) < 0.5 and el.max() > el[0] + 30:
        return Motion("fly_over", {"from_az": az[0], "to_az": az[-1]})
    total = float(np.sum(daz))
    if len(daz) >= 2 and np.all(np.sign(daz) == np.sign(daz[0])) and abs(total) > 200:
        period = section_bars * 360.0 / abs(total)
        return Motion("orbit", {"direction": "ccw" if total > 0 else "cw", "period_bars": period})
    if len(kf) >= 3 and np.all(np.isin(np.round(az, 1), np.round(az[:2], 1))) and az[0] != az[1]:
        return Motion("ping_pong", {"from_az": az[0], "to_az": az[1], "period_bars": 2.0 * section_bars / (len(kf) - 1)})
    return Motion("pan", {"from_az": az[0], "to_az": az[-1]})


def _i(x: float, field: str) -> int:
    lo, hi = RANGES[field]
    return int(min(max(round(x), lo), hi))


def _az(x: float) -> int:
    v = round(float(wrap_az(x)))
    return 180 if v <= -180 else v


def _motion_text(m: Motion) -> str:
    p = m.params
    if m.pattern == "static":
        return "s"
    if m.pattern in ("pan", "fly_over"):
        return f"{'pan' if m.pattern == 'pan' else 'fly'} {_az(p['from_az'])} {_az(p['to_az'])}"
    if m.pattern == "orbit":
        return f"orb {p['direction']} {_i(p['period_bars'], 'bars')}"
    if m.pattern == "ping_pong":
        return f"pp {_az(p['from_az'])} {_az(p['to_az'])} {_i(p['period_bars'], 'bars')}"
    if m.pattern in ("rise", "fall"):
        return f"{m.pattern} {_i(p['from_el'], 'el')} {_i(p['to_el'], 'el')}"
    return f"{'appr' if m.pattern == 'approach' else 'rec'} {_i(p['from_dist'] * 10, 'dm')} {_i(p['to_dist'] * 10, 'dm')}"


def encode_scene(scene: Mapping[str, Any], request: Request) -> str:
    """A scene in the model's output format (training targets come from this)."""
    lines = [f"room {scene.get('bed', {}).get('room_preset', 'studio_large')}"]
    host_of = {m: o["id"] for o in scene["objects"] for m in o.get("stems", [o["id"]])}
    objs = {o["id"]: o for o in scene["objects"]}
    first_line: dict[str, int] = {}  # object id -> 1-based index of the stem that opened it
    for n, s in enumerate(request.stems, start=1):
        host = host_of[s.id]
        if host in first_line:
            lines.append(f">{first_line[host]}")
            continue
        first_line[host] = n
        o = objs[host]
        kf = keyframes_array(o.get("motion") or [{"t": 0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}])
        wre = "".join(str(_i(o[k] * 9, "ninth")) for k in ("width", "reverb_send", "early_reflections"))
        lines.append(" ".join([str(_az(kf[0, 1])), str(_i(kf[0, 2], "el")), str(_i(kf[0, 3] * 10, "dm")), wre,
                               str(_i(o["gain_db"], "gain")), _motion_text(detect_motion(kf, request.section_bars))]))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- decode
_INT = r"-?\d+"


def _motion_from(tokens: list[str], line_no: int) -> Motion:
    name, args = tokens[0], tokens[1:]
    need = {"s": 0, "pan": 2, "fly": 2, "orb": 2, "pp": 3, "rise": 2, "fall": 2, "appr": 2, "rec": 2}
    if name not in need or len(args) != need[name]:
        raise DecodeError(f"line {line_no}: motion {' '.join(tokens)!r} is not one of {MOTIONS} with its arguments")
    if name == "s":
        return Motion("static")
    if name == "orb":
        if args[0] not in ("cw", "ccw"):
            raise DecodeError(f"line {line_no}: orbit direction {args[0]!r} is not cw or ccw")
        return Motion("orbit", {"direction": args[0], "period_bars": float(args[1])})
    v = [float(a) for a in args]
    if name in ("pan", "fly"):
        return Motion(_PATTERN_OF[name], {"from_az": v[0], "to_az": v[1]})
    if name == "pp":
        return Motion("ping_pong", {"from_az": v[0], "to_az": v[1], "period_bars": v[2]})
    if name in ("rise", "fall"):
        return Motion(name, {"from_el": v[0], "to_el": v[1]})
    return Motion(_PATTERN_OF[name], {"from_dist": v[0] / 10, "to_dist": v[1] / 10})


def decode(text: str, request: Request) -> dict[str, Any]:
    """Model output -> a scene proposal (keyframes expanded; not yet rule-checked).

    Raises
    ------
    DecodeError
        When a line cannot be read; the rule engine fills stems the text left out.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise DecodeError("empty output")
    room = "studio_large"
    if lines[0].startswith("room "):
        room = lines.pop(0).split()[1]
        if room not in ROOM_PRESETS:
            raise DecodeError(f"line 1: unknown room preset {room!r}")
    if len(lines) > len(request.stems):
        raise DecodeError(f"{len(lines)} stem lines for {len(request.stems)} stems")
    objects: dict[str, dict[str, Any]] = {}
    host_of: dict[str, str] = {}
    for n, (line, stem) in enumerate(zip(lines, request.stems), start=1):
        tok = line.split()
        if len(tok) == 1 and tok[0].startswith(">"):
            ref = tok[0][1:]
            if not ref.isdigit() or not 1 <= int(ref) < n:
                raise DecodeError(f"stem line {n}: {tok[0]!r} must name an earlier stem line (1..{n - 1})")
            host = host_of[request.stems[int(ref) - 1].id]
            host_of[stem.id] = host
            objects[host].setdefault("stems", [host]).append(stem.id)
            continue
        if len(tok) < 6 or not all(re.fullmatch(_INT, t) for t in tok[:5]) or len(tok[3]) != 3:
            raise DecodeError(f"stem line {n}: expected 'az el dist wre gain motion', got {line!r}")
        az, el, dm, g = int(tok[0]), int(tok[1]), int(tok[2]), int(tok[4])
        w, rv, er = (int(c) / 9 for c in tok[3])
        keys = expand(_motion_from(tok[5:], n), (float(az), float(el), dm / 10.0), request.section_bars)
        objects[stem.id] = {"id": stem.id, "class": stem.cls, "az_deg": keys[0]["az_deg"], "el_deg": keys[0]["el_deg"],
                            "dist_m": keys[0]["dist_m"], "width": w, "gain_db": float(g), "reverb_send": rv,
                            "early_reflections": er, "motion": keys}
        host_of[stem.id] = stem.id
    return {"version": "1.0", "bed": {"layout": request.target_format, "room_preset": room},
            "objects": list(objects.values()), "constraints_applied": []}


# ----------------------------------------------------------------------------- grammar
def _same_len(lo: str, hi: str) -> list[str]:
    """GBNF sequences matching every decimal string between lo and hi (same length)."""
    if lo == hi:
        return [f'"{lo}"']
    if len(lo) == 1:
        return [f"[{lo}-{hi}]"]
    if lo[0] == hi[0]:
        return [f'"{lo[0]}" {p}' for p in _same_len(lo[1:], hi[1:])]
    n = len(lo) - 1
    out = [f'"{lo[0]}" {p}' for p in _same_len(lo[1:], "9" * n)]
    if int(hi[0]) - int(lo[0]) > 1:
        out.append(f"[{int(lo[0]) + 1}-{int(hi[0]) - 1}]" + " [0-9]" * n)
    out += [f'"{hi[0]}" {p}' for p in _same_len("0" * n, hi[1:])]
    return out


def _nonneg(lo: int, hi: int) -> list[str]:
    out = []
    for digits in range(len(str(lo)), len(str(hi)) + 1):
        a, b = max(lo, 10 ** (digits - 1) if digits > 1 else 0), min(hi, 10 ** digits - 1)
        if a <= b:
            out += _same_len(str(a), str(b))
    return out


def int_range(lo: int, hi: int) -> str:
    """A GBNF expression matching exactly the integers lo..hi (no leading zeros, no -0)."""
    alts = []
    if hi >= 0:
        alts += _nonneg(max(lo, 0), hi)
    if lo < 0:
        alts += [f'"-" ({p})' for p in _nonneg(max(1, -min(hi, -1)), -lo)]
    return " | ".join(f"({a})" for a in alts)


def _lit(s: str) -> str:
    return json.dumps(s)


def _num(v: Any, field: str, scale: float = 1.0) -> str:
    """A GBNF literal for a known value, else the field's generic rule (the model chooses)."""
    if v is None:
        return field
    return _lit(str(_az(v) if field == "az" else _i(float(v) * scale, field)))


def _motion_pin(m: Motion, az: float | None, dist_m: float | None) -> tuple[str, dict[str, float | None]]:
    """GBNF for a hinted motion and the first-keyframe fields it fixes (None: the model's).

    Parameters the text left out take :func:`gravity.motion.expand`'s defaults, as the planner
    and the training targets do (a rise starts at 0 deg, a ping-pong swings 45 deg either side
    of the hinted azimuth); those that depend on a position the text did not give stay free.
    """
    p, name = m.params, m.pattern
    if name == "static":
        return '"s"', {}
    if name == "orbit":
        return f'"orb " {_lit(p.get("direction", "ccw"))} " " {_num(p.get("period_bars", 4), "bars")}', {}
    if name in ("pan", "fly_over"):
        a = p.get("from_az", az)
        b = p.get("to_az", None if az is None else (-az if az else -90.0))
        return f'"{"pan" if name == "pan" else "fly"} " {_num(a, "az")} " " {_num(b, "az")}', {"az": a}
    if name == "ping_pong":
        a = p.get("from_az", None if az is None else float(wrap_az(az + 45.0)))
        b = p.get("to_az", None if az is None else float(wrap_az(az - 45.0)))
        return f'"pp " {_num(a, "az")} " " {_num(b, "az")} " " {_num(p.get("period_bars", 2), "bars")}', {"az": a}
    if name in ("rise", "fall"):
        lo, hi = (0.0, 45.0) if name == "rise" else (45.0, 0.0)
        a, b = p.get("from_el", lo), p.get("to_el", hi)
        return f'"{name} " {_num(a, "el")} " " {_num(b, "el")}', {"el": a}
    if name == "approach":
        a, b = p.get("from_dist", 8.0), p.get("to_dist", dist_m)
    else:
        a, b = p.get("from_dist", dist_m), p.get("to_dist", 8.0)
    return f'"{"appr" if name == "approach" else "rec"} " {_num(a, "dm", 10)} " " {_num(b, "dm", 10)}', {"dist": a}


def _pin(b: "StemBounds | None", h: "Placement", has_height: bool) -> tuple["StemBounds", str | None]:
    """Stem bounds narrowed to what its hint states, where the hard limits ``b`` allow it
    (a value outside them is dropped: rules beat hints), and the motion to write (None: any)."""
    from .rules import StemBounds

    base = b or StemBounds(directions=(((RANGES["az"],), RANGES["el"]),), dm=RANGES["dm"],
                           width=RANGES["ninth"], static=False, anchored=False)
    motion, start = None, {"az": h.az_deg, "el": h.el_deg, "dist": h.dist_m}
    if not base.static and h.motion is not None:
        motion, moved = _motion_pin(h.motion, h.az_deg, h.dist_m)
        start.update(moved)  # the line holds the first keyframe: where the motion starts
    elif not base.static and h.places:
        motion = '"s"'  # a placed stem holds still unless asked to move (as the planner does)
    az = None if start["az"] is None else _az(start["az"])
    el = None if start["el"] is None or not has_height else _i(start["el"], "el")
    dirs = base.directions
    for a, e in ((az, el), (az, None), (None, el)):  # both if the rules allow, else the one they do
        if a is None and e is None:
            continue
        hit = tuple((((a, a),) if a is not None else azr, (e, e) if e is not None else elr) for azr, elr in base.directions
                    if (a is None or any(lo <= a <= hi for lo, hi in azr)) and (e is None or elr[0] <= e <= elr[1]))
        if hit:
            dirs = hit
            break
    dm, width = base.dm, base.width
    d = None if start["dist"] is None else _i(start["dist"] * 10, "dm")
    if d is not None and dm[0] <= d <= dm[1]:
        dm = (d, d)
    w = None if h.width is None else _i(h.width * 9, "ninth")
    if w is not None and width[0] <= w <= width[1]:
        width = (w, w)
    return dataclasses.replace(base, directions=dirs, dm=dm, width=width), motion


def _bounded_pos(i: int, b: "StemBounds", motion: str | None = None) -> str | None:
    """A ``p<i>`` rule holding stem i's hard limits (None: the generic ``pos`` is as tight);
    ``motion``: GBNF the motion field must match (a hint's), else any the limits allow."""
    def rng(field: str, lo: int, hi: int) -> str:
        return field if (lo, hi) == RANGES[field] else f"({int_range(lo, hi)})"

    def azs(ranges: tuple[tuple[int, int], ...]) -> str:
        return "az" if ranges == (RANGES["az"],) else "(" + " | ".join(f"({int_range(lo, hi)})" for lo, hi in ranges) + ")"

    direction = " | ".join(f'{azs(a)} " " {rng("el", *e)}' for a, e in b.directions)
    parts = [f"({direction})" if len(b.directions) > 1 else direction, rng("dm", *b.dm), rng("ninth", *b.width),
             '"s"' if b.static else (motion or "motion")]
    if parts == ['az " " el', "dm", "ninth", "motion"]:
        return None
    return f'p{i} ::= {parts[0]} " " {parts[1]} " " {parts[2]} ninth ninth " " gain " " {parts[3]}'


def grammar(request: Request, pins: "Mapping[str, Placement] | None" = None) -> str:
    """GBNF for one request: one line per stem, at most ``budget`` objects, every number in range.

    A stem's own line also carries the hard limits :func:`gravity.rules.stem_bounds` turns into
    integer ranges (anchors, ``mono_low_end``, ``max_elevation``, static motion, width), and an
    anchored stem opens its own object, so raw proposals already hold those rules; lines that
    fold into another object (``>N``) and zones are left to the rule engine. ``pins``: stem id
    -> what its hint says (:func:`gravity.planner.read_hints`); each stated value is written
    exactly where those limits allow it.
    """
    from .rules import stem_bounds  # rules imports nothing from here; keep the module light

    n, budget = len(request.stems), request.budget
    bounds = [stem_bounds(request, s) for s in request.stems]
    if budget == 1 and n > 1:  # one object holds every stem: its line carries all their limits
        bounds[0] = stem_bounds(request, request.stems[0], request.stems)
    motions: list[str | None] = [None] * n
    pinned = [False] * n
    for i, s in enumerate(request.stems):
        h = (pins or {}).get(s.id)
        # (a budget of one: every later stem folds into the first line, whose limits are all of theirs)
        if h is not None and not h.is_empty() and (i == 0 or budget > 1 or n == 1):
            bounds[i], motions[i] = _pin(bounds[i], h, request.has_height)
            pinned[i] = True
    bounded = [None if b is None else _bounded_pos(i, b, m) for i, (b, m) in enumerate(zip(bounds, motions))]
    pos = [f"p{i}" if r else "pos" for i, r in enumerate(bounded)]

    def layout(own: list[bool]) -> list[set[int]] | None:
        """For each stem i, the counts k of objects opened before it from which the rest can be
        written (None: no way through when the stems marked ``own`` open their own objects)."""
        ok: list[set[int]] = [set() for _ in range(n + 1)]
        ok[n] = set(range(budget + 1))
        for i in range(n - 1, -1, -1):
            for k in range(1 if i else 0, min(i, budget) + 1):
                if (k < budget and k + 1 in ok[i + 1]) or (i and not own[i] and k in ok[i + 1]):
                    ok[i].add(k)
        return ok if 0 in ok[0] else None

    own = [b is not None and b.anchored for b in bounds]
    # A hinted stem opens its own object too (folded into another it could not be where the
    # text put it): after the anchors, the most important first, as far as the budget allows
    # (the rule engine also folds the least important stems first).
    if layout(own) is not None:
        for i in sorted((i for i in range(n) if pinned[i] and not own[i]), key=lambda i: (-request.stems[i].leadness, i)):
            trial = own[:i] + [True] + own[i + 1:]
            if layout(trial) is not None:
                own = trial
    strict = layout(own)
    may_join = strict is None  # more anchored stems than objects: any stem may fold, the engine decides
    viable = strict or layout([False] * n)
    assert viable is not None  # folding every later stem into the first object always works
    rules = [
        'root ::= "room " room "\\n" l0x0',
        "room ::= " + " | ".join(_lit(r) for r in ROOM_PRESETS),
        *(f"{k} ::= {int_range(*v)}" for k, v in RANGES.items()),
        'pos ::= az " " el " " dm " " ninth ninth ninth " " gain " " motion',
        'motion ::= "s" | "pan " az " " az | "fly " az " " az | "orb " ("cw" | "ccw") " " bars'
        ' | "pp " az " " az " " bars | ("rise " | "fall ") el " " el | ("appr " | "rec ") dm " " dm',
        *(r for r in bounded if r),
    ]
    for i in range(n):
        join = f'">" ({" | ".join(_lit(str(j)) for j in range(1, i + 1))})' if i and (may_join or not own[i]) else None
        for k in sorted(viable[i]):
            last = i + 1 == n
            alts = []  # viable[n] holds every count, so only states that can finish are named
            if k < budget and k + 1 in viable[i + 1]:
                alts.append(f'{pos[i]} "\\n"' + ("" if last else f" l{i + 1}x{k + 1}"))
            if join and k in viable[i + 1]:
                alts.append(f'{join} "\\n"' + ("" if last else f" l{i + 1}x{k}"))
            rules.append(f"l{i}x{k} ::= " + " | ".join(alts))
    return "\n".join(rules) + "\n"
