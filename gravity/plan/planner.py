"""The deterministic planner: the embedded default proposer and the teacher for training.

Placement a mixing engineer would recognise: lead vocal front and close, kick/bass/sub
centred, backing vocals as a left/right pair, pads and ambience wide and high, percussion
around the listener, fx and arps in motion. Style, section and energy shape width, distance,
reverb and motion (intro sparse, drop wide and moving); motion keyframes fall on bar
boundaries. Stems with similar band energy are pushed apart to avoid masking. Stem ``hint``
and request ``prompt`` text steer placement through the phrase parser (:mod:`gravity.plan.hint`,
:mod:`gravity.plan.prompt`; a stem's own hint wins over the prompt).

The planner proposes; :func:`gravity.rules.enforce` makes the proposal obey the hard rules.
Same request + seed -> byte-identical output.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gravity.motion import Motion, angle_between, scene_keyframes, wrap_az
from gravity.defaults import CLASS_PLACEMENT, STYLE_LOUDNESS, STYLE_ROOM
from gravity.request import Request, Stem
from gravity.vocab import family_of

__all__ = ["plan", "read_hints", "SECTION_SPREAD", "SECTION_MOTION"]

log = logging.getLogger(__name__)

# How wide (azimuth spread and source width) a section is, relative to the class default.
SECTION_SPREAD: dict[str, float] = {
    "intro": 0.75,
    "verse": 0.9,
    "pre_chorus": 1.0,
    "chorus": 1.15,
    "post_chorus": 1.1,
    "hook": 1.15,
    "bridge": 1.0,
    "breakdown": 0.85,
    "build": 1.0,
    "drop": 1.25,
    "solo": 1.05,
    "interlude": 0.9,
    "outro": 0.8,
    "full": 1.0,
}
# How much a section moves (0 = nothing moves, 1 = movers move at full rate).
SECTION_MOTION: dict[str, float] = {
    "intro": 0.3,
    "verse": 0.4,
    "pre_chorus": 0.6,
    "chorus": 0.7,
    "post_chorus": 0.7,
    "hook": 0.7,
    "bridge": 0.6,
    "breakdown": 0.6,
    "build": 0.9,
    "drop": 1.0,
    "solo": 0.6,
    "interlude": 0.5,
    "outro": 0.3,
    "full": 0.5,
}
_WET_STYLES = {
    "ambient": 1.5,
    "cinematic": 1.3,
    "classical": 1.3,
    "orchestral": 1.3,
    "experimental": 1.2,
    "club": 0.8,
    "edm": 0.85,
    "techno": 0.8,
    "hiphop": 0.8,
    "podcast": 0.5,
    "lofi": 0.9,
}
_MIN_SEP_DEG = 25.0  # same band, same family (two guitars)
_MIN_SEP_OTHER_DEG = 15.0  # same band, different family (vocal and snare)


def _home(stem: Stem, nth: int, count: int, single_side: float) -> tuple[float, float, float]:
    """Class home for the nth of ``count`` stems of one class.

    Several stems of a pair class mirror left/right and fan out; a lone stem of a wide class
    (pad, strings, ambience) sits centred front or rear and spreads by its width; other lone
    stems of pair classes take ``single_side`` (+1 left / -1 right), alternated across classes
    by the caller so a band does not pile up on one side.
    """
    p = CLASS_PLACEMENT[stem.cls]
    if not p.pair or p.az_deg == 0:
        az = p.az_deg if count == 1 else p.az_deg + (nth - (count - 1) / 2) * 12.0
    elif count == 1:
        az = (0.0 if p.az_deg < 90 else 180.0) if p.width >= 0.6 else single_side * p.az_deg
    else:
        side = 1.0 if nth % 2 == 0 else -1.0
        ring = nth // 2
        az = side * min(175.0, p.az_deg + ring * 25.0)
    return float(az), float(p.el_deg), float(p.dist_m)


def _motion_for(
    stem: Stem, request: Request, rng: np.random.Generator, amount: float, base: tuple[float, float, float]
) -> Motion | None:
    """A motion pattern for mover classes when the section and energy call for it."""
    p = CLASS_PLACEMENT[stem.cls]
    drive = amount * (0.4 + 0.6 * request.energy)
    if not p.mover or drive < 0.35:
        return None
    fast = drive > 0.7
    cls = stem.cls
    if cls in ("arp", "pluck", "bell"):
        return Motion(
            "ping_pong",
            {
                "from_az": base[0],
                "to_az": wrap_az(-base[0]) if abs(base[0]) > 10 else 45.0,
                "period_bars": 1 if fast else 2,
            },
        )
    if cls == "riser":
        return (
            Motion("rise", {"from_el": 0.0, "to_el": 60.0})
            if request.section in ("build", "pre_chorus")
            else Motion("approach", {"from_dist": 8.0, "to_dist": base[2]})
        )
    direction = "ccw" if rng.random() < 0.5 else "cw"
    if cls in ("fx", "vocal_fx", "foley"):
        return Motion("orbit", {"direction": direction, "period_bars": 2 if fast else 4})
    if cls == "percussion":
        return Motion("orbit", {"direction": direction, "period_bars": 4 if fast else 8}) if drive > 0.55 else None
    return None


def _spread_out(objs: list[dict[str, Any]], stems: list[Stem], fixed: list[bool]) -> None:
    """Keep same-band stems apart so they do not mask each other.

    Greedy, most important first (hinted stems never move): each object takes the position
    nearest its home that keeps ``_MIN_SEP_DEG`` from placed same-band objects of its family
    and ``_MIN_SEP_OTHER_DEG`` from the rest (a vocal and a snare may share the front stage
    more closely than two guitars). Centred low end shares the centre by design.
    """
    order = sorted(range(len(objs)), key=lambda i: (not fixed[i], -stems[i].leadness, i))
    placed: list[int] = []
    offsets = np.array(sorted(range(-180, 181), key=lambda d: (abs(d), d)), dtype=float)
    for i in order:
        o = objs[i]
        centred = o["az_deg"] == 0 and o["width"] == 0
        rivals = [
            j
            for j in placed
            if stems[j].dominant_band == stems[i].dominant_band
            and not (centred and objs[j]["az_deg"] == 0 and objs[j]["width"] == 0)
        ]
        if fixed[i] or centred or not rivals:
            placed.append(i)
            continue
        need = np.array(
            [_MIN_SEP_DEG if family_of(stems[j].cls) == family_of(stems[i].cls) else _MIN_SEP_OTHER_DEG for j in rivals]
        )
        r_az = np.array([objs[j]["az_deg"] for j in rivals])
        r_el = np.array([objs[j]["el_deg"] for j in rivals])
        for del_el in (0.0, 12.0, -12.0):
            az = wrap_az(o["az_deg"] + offsets)
            el = np.full_like(az, float(np.clip(o["el_deg"] + del_el, -90, 90)))
            sep = angle_between(az[:, None], el[:, None], r_az[None, :], r_el[None, :])
            ok = np.all(sep >= need[None, :], axis=1) & (np.abs(offsets) <= 60)
            if ok.any():
                k = int(np.argmax(ok))  # offsets are sorted by size: the first hit is the nearest
                o["az_deg"], o["el_deg"] = float(az[k]), float(el[k])
                break
        placed.append(i)


def read_hints(request: Request) -> dict[str, Any]:
    """Stem id -> :class:`gravity.plan.hint.Placement`: what each stem's hint and the scene
    prompt say (the stem's own hint wins field by field); stems the text is silent on are absent.
    """
    if not request.prompt and not any(s.hint for s in request.stems):
        return {}
    # deferred: only needed when there is text (the readers compile their patterns on import)
    from gravity.plan.hint import parse_hint
    from gravity.plan.prompt import parse_prompt

    out: dict[str, Any] = {}
    if request.prompt:
        out.update(parse_prompt(request.prompt, [(s.id, s.cls) for s in request.stems]))
    for s in request.stems:
        if s.hint:
            h = parse_hint(s.hint)
            prev = out.get(s.id)
            out[s.id] = h if prev is None else prev.merged(h)  # the stem's own hint wins
    return out


def plan(request: Request, seed: int = 0) -> dict[str, Any]:
    """Propose a scene for ``request`` (not yet rule-checked: pass it to ``rules.enforce``).

    Parameters
    ----------
    request : Request
        The validated request.
    seed : int
        Seeds the small variations (orbit direction, +-4 degree jitter); same seed, same scene.

    Returns
    -------
    dict
        A scene document (``constraints_applied`` empty: the rule engine fills it).
    """
    rng = np.random.default_rng(seed)
    spread = SECTION_SPREAD.get(request.section, 1.0) * (0.8 + 0.4 * request.energy)
    amount = SECTION_MOTION.get(request.section, 0.5)
    wet = _WET_STYLES.get(request.style, 1.0) * (1.15 if request.section in ("intro", "breakdown", "outro") else 1.0)
    far = (
        1.15
        if request.section in ("intro", "breakdown", "outro", "interlude")
        else (0.9 if request.section == "drop" else 1.0)
    )
    hints = read_hints(request)
    counts: dict[str, int] = {}
    singles = 0  # lone stems of pair classes placed so far (they alternate sides)
    objs: list[dict[str, Any]] = []
    fixed: list[bool] = []
    motions: list[Motion | None] = []
    for s in request.stems:
        nth = counts.get(s.cls, 0)
        counts[s.cls] = nth + 1
        count = sum(1 for x in request.stems if x.cls == s.cls)
        lone = CLASS_PLACEMENT[s.cls].pair and count == 1 and CLASS_PLACEMENT[s.cls].width < 0.6
        az, el, dist = _home(s, nth, count, 1.0 if singles % 2 == 0 else -1.0)
        singles += lone
        p = CLASS_PLACEMENT[s.cls]
        jitter = float(rng.uniform(-4.0, 4.0))
        if az != 0:
            az = float(np.clip(abs(az) * spread + jitter, 5.0, 178.0)) * np.sign(az)
        width = float(np.clip(p.width * spread, 0.0, 1.0)) if p.width > 0 else 0.0
        dist = float(np.clip(dist * far * (1.1 - 0.2 * s.leadness), 0.5, 20.0))
        motion = _motion_for(s, request, rng, amount, (az, el, dist))
        h = hints.get(s.id)
        if h is not None:
            az = h.az_deg if h.az_deg is not None else az
            el = h.el_deg if h.el_deg is not None else el
            dist = h.dist_m if h.dist_m is not None else dist
            width = h.width if h.width is not None else width
            if h.motion is not None:
                motion = h.motion
            elif h.places:
                # The class's motion was planned from the home position (a ping-pong starts at
                # its own azimuth): a stem the user placed holds still unless asked to move.
                motion = None
        if not request.has_height:
            el = 0.0
        objs.append(
            {
                "id": s.id,
                "class": s.cls,
                "az_deg": float(wrap_az(az)),
                "el_deg": float(el),
                "dist_m": dist,
                "width": round(width, 2),
                "gain_db": round(1.0 if s.leadness > 0.85 else (-2.0 if s.leadness < 0.1 else 0.0), 1),
                "reverb_send": round(float(np.clip(p.reverb * wet, 0.0, 1.0)), 2),
                "early_reflections": round(float(np.clip(p.er * (0.8 + 0.4 * wet / 1.5), 0.0, 1.0)), 2),
            }
        )
        fixed.append(h is not None and (h.az_deg is not None or h.el_deg is not None))
        motions.append(motion)
    _spread_out(objs, list(request.stems), fixed)
    for o, m in zip(objs, motions, strict=True):
        base = (o["az_deg"], o["el_deg"], o["dist_m"])
        o["motion"] = scene_keyframes(m, base, request.section_bars, has_height=request.has_height)
        o["az_deg"], o["el_deg"], o["dist_m"] = (o["motion"][0][f] for f in ("az_deg", "el_deg", "dist_m"))
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
