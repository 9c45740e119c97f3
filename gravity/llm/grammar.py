"""The GBNF grammar that bounds one request's answer (the format of :mod:`gravity.llm.format`).

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
from typing import TYPE_CHECKING, Any, Mapping

from gravity.llm.format import RANGES, quantize, quantize_az
from gravity.motion import Motion, wrap_az
from gravity.request import Request
from gravity.vocab import ROOM_PRESETS
from gravity.rules import StemBounds, stem_bounds

if TYPE_CHECKING:
    from gravity.plan import Placement

__all__ = ["grammar", "int_range"]


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
        a, b = max(lo, 10 ** (digits - 1) if digits > 1 else 0), min(hi, 10**digits - 1)
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
    return _lit(str(quantize_az(v) if field == "az" else quantize(float(v) * scale, field)))


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
    ga, gb = _num(a, "dm", 10), _num(b, "dm", 10)
    # the free end moves: an approach ends nearer than it starts, a recede starts nearer than it
    # ends (the model wrote "rec 80 80", a still "recede", where the text gave no distance)
    lo = RANGES["dm"][0]
    if name == "approach" and b is None and a is not None and quantize(a * 10, "dm") > lo:
        gb = f"({int_range(lo, quantize(a * 10, 'dm') - 1)})"
    if name == "recede" and a is None and b is not None and quantize(b * 10, "dm") > lo:
        ga = f"({int_range(lo, quantize(b * 10, 'dm') - 1)})"
    return f'"{"appr" if name == "approach" else "rec"} " {ga} " " {gb}', {"dist": a}


def _pin(b: "StemBounds | None", h: "Placement", has_height: bool) -> tuple["StemBounds", str | None]:
    """Stem bounds narrowed to what its hint states, where the hard limits ``b`` allow it
    (a value outside them is dropped: rules beat hints), and the motion to write (None: any).
    """
    from gravity.rules import StemBounds

    base = b or StemBounds(
        directions=(((RANGES["az"],), RANGES["el"]),),
        dm=RANGES["dm"],
        width=RANGES["ninth"],
        static=False,
        anchored=False,
    )
    motion, start = None, {"az": h.az_deg, "el": h.el_deg, "dist": h.dist_m}
    if not base.static and h.motion is not None:
        from gravity.plan.planner import ends_at  # the planner's and the teacher's ends

        asked = ends_at(h.motion, h.el_deg if has_height else None, h.dist_m)
        motion, moved = _motion_pin(asked, h.az_deg, h.dist_m)
        start.update(moved)  # the line holds the first keyframe: where the motion starts
    elif not base.static and h.places:
        motion = '"s"'  # a placed stem holds still unless asked to move (as the planner does)
    az = None if start["az"] is None else quantize_az(start["az"])
    el = None if start["el"] is None or not has_height else quantize(start["el"], "el")
    dirs = base.directions
    for a, e in ((az, el), (az, None), (None, el)):  # both if the rules allow, else the one they do
        if a is None and e is None:
            continue
        hit = tuple(
            (((a, a),) if a is not None else azr, (e, e) if e is not None else elr)
            for azr, elr in base.directions
            if (a is None or any(lo <= a <= hi for lo, hi in azr)) and (e is None or elr[0] <= e <= elr[1])
        )
        if hit:
            dirs = hit
            break
    dm, width = base.dm, base.width
    d = None if start["dist"] is None else quantize(start["dist"] * 10, "dm")
    if d is not None and dm[0] <= d <= dm[1]:
        dm = (d, d)
    w = None if h.width is None else quantize(h.width * 9, "ninth")
    if w is not None and width[0] <= w <= width[1]:
        width = (w, w)
    return dataclasses.replace(base, directions=dirs, dm=dm, width=width), motion


def _bounded_pos(i: int, b: "StemBounds", motion: str | None = None) -> str | None:
    """A ``p<i>`` rule holding stem i's hard limits (None: the generic ``pos`` is as tight);
    ``motion``: GBNF the motion field must match (a hint's), else any the limits allow.
    """

    def rng(field: str, lo: int, hi: int) -> str:
        return field if (lo, hi) == RANGES[field] else f"({int_range(lo, hi)})"

    def azs(ranges: tuple[tuple[int, int], ...]) -> str:
        return (
            "az" if ranges == (RANGES["az"],) else "(" + " | ".join(f"({int_range(lo, hi)})" for lo, hi in ranges) + ")"
        )

    direction = " | ".join(f'{azs(a)} " " {rng("el", *e)}' for a, e in b.directions)
    parts = [
        f"({direction})" if len(b.directions) > 1 else direction,
        rng("dm", *b.dm),
        rng("ninth", *b.width),
        '"s"' if b.static else (motion or "motion"),
    ]
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

    n, budget = len(request.stems), request.budget
    bounds = [stem_bounds(request, s) for s in request.stems]
    if budget == 1 and n > 1:  # one object holds every stem: its line carries all their limits
        bounds[0] = stem_bounds(request, request.stems[0], request.stems)
    motions: list[str | None] = [None] * n
    pinned = [False] * n
    for i, s in enumerate(request.stems):
        h = (pins or {}).get(s.id)
        # (a budget of one: every later stem folds into the first line, whose limits are all of theirs)
        if h is not None and (h.arc_deg is not None or len(h.group) > 1):
            # a phrase naming several stems gives the group's centre, not each stem's place:
            # pinning it would stack the ensemble on one point (the planner spreads it)
            h = dataclasses.replace(h, az_deg=None, arc_deg=None)
        # only what places, moves or sizes a stem pins it ("nothing behind me" alone does not)
        says = h is not None and (h.places or h.motion is not None or h.width is not None)
        if says and (i == 0 or budget > 1 or n == 1):
            assert h is not None
            bounds[i], motions[i] = _pin(bounds[i], h, request.has_height)
            pinned[i] = True
    bounded = [
        None if b is None else _bounded_pos(i, b, m) for i, (b, m) in enumerate(zip(bounds, motions, strict=True))
    ]
    pos = [f"p{i}" if r else "pos" for i, r in enumerate(bounded)]

    def layout(own: list[bool]) -> list[set[int]] | None:
        """For each stem i, the counts k of objects opened before it from which the rest can be
        written (None: no way through when the stems marked ``own`` open their own objects).
        """
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
        for i in sorted(
            (i for i in range(n) if pinned[i] and not own[i]), key=lambda i: (-request.stems[i].leadness, i)
        ):
            trial = own[:i] + [True] + own[i + 1 :]
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
