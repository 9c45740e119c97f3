"""The model's input and output format, written once for the runtime and for training.

("prompt" in Gravity means the user's text only; this module writes the *model input*.)

Model input: ChatML (SmolLM2 and Qwen2.5 both use it) with a fixed system text (so its KV cache can
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

The GBNF grammar that bounds an answer is :mod:`gravity.llm.grammar`.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from gravity.errors import GravityError
from gravity.motion import Motion, detect_motion, expand, keyframes_array, wrap_az
from gravity.request import Request
from gravity.vocab import ROOM_PRESETS

__all__ = [
    "FORMAT_VERSION",
    "SYSTEM",
    "RANGES",
    "MOTIONS",
    "model_input",
    "PROMPT_HEAD",
    "input_messages",
    "compact_request",
    "encode_scene",
    "parse_answer",
    "AnswerError",
    "quantize",
    "quantize_az",
]

FORMAT_VERSION = "gravity-prompt-3"  # the id training manifests record; the value predates the rename

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
    "az": (-179, 180),
    "el": (-90, 90),
    "dm": (3, 500),
    "ninth": (0, 9),
    "gain": (-24, 12),
    "bars": (1, 64),
}
MOTIONS = ("s", "pan", "orb", "pp", "rise", "fall", "appr", "rec", "fly")
_PATTERN_OF = {
    "pan": "pan",
    "orb": "orbit",
    "pp": "ping_pong",
    "rise": "rise",
    "fall": "fall",
    "appr": "approach",
    "rec": "recede",
    "fly": "fly_over",
}


class AnswerError(GravityError, ValueError):
    """Model output that cannot be read as a scene; the message says where."""


# ----------------------------------------------------------------------------- input
def _r(x: float, nd: int = 2) -> float | int:
    v = round(float(x), nd)
    return int(v) if v == int(v) else v


def _tenth(x: float) -> str:
    return str(min(9, max(0, int(round(float(x) * 10)))))


def compact_request(request: Request) -> str:
    """The request in the model input's line format (see the module docstring): stable and short.

    Numbers are quantised to what placement needs (integer LUFS and bpm, tenths of the 0..1
    descriptors); the rule engine always works on the full request afterwards.
    """
    head = (
        f"fmt {request.target_format} max {request.budget} style {request.style} section {request.section} "
        f"bpm {round(request.bpm)} energy {_tenth(request.energy)} time {request.time_signature} "
        f"bars {request.section_bars}"
    )
    lines = [head, "rules " + json.dumps([dict(r) for r in request.rules], separators=(",", ":"), ensure_ascii=False)]
    for st in request.stems:
        digits = "".join(_tenth(v) for v in (st.transient, *st.band, st.leadness))
        line = f"{st.id} {st.cls} {round(st.lufs)} {digits}"
        lines.append(f"{line} | {' '.join(st.hint.split())}" if st.hint else line)
    if request.prompt:
        lines.append("prompt: " + " ".join(request.prompt.split()))
    return "\n".join(lines)


def input_messages(request: Request) -> list[dict[str, str]]:
    """System + user chat messages (for tokenizers that apply their own chat template)."""
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": compact_request(request)}]


#: The text every prompt starts with (system message, then the user turn's opening): its keys
#: and values are cached on disk by the runtime (:meth:`gravity.llm.decoding.Decoder.load_prefix`).
PROMPT_HEAD = f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n"


def model_input(request: Request) -> str:
    """The full ChatML prompt text, ending where the assistant's answer starts."""
    return (
        "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in input_messages(request))
        + "<|im_start|>assistant\n"
    )


# ----------------------------------------------------------------------------- encode
def quantize(x: float, field: str) -> int:
    """``x`` rounded and clamped to the integer range of an output field (see :data:`RANGES`)."""
    lo, hi = RANGES[field]
    return int(min(max(round(x), lo), hi))


def quantize_az(x: float) -> int:
    """Azimuth in degrees as the answer writes it: an integer in -179..180."""
    v = round(float(wrap_az(x)))
    return 180 if v <= -180 else v


def _motion_text(m: Motion) -> str:
    p = m.params
    if m.pattern == "static":
        return "s"
    if m.pattern in ("pan", "fly_over"):
        return f"{'pan' if m.pattern == 'pan' else 'fly'} {quantize_az(p['from_az'])} {quantize_az(p['to_az'])}"
    if m.pattern == "orbit":
        return f"orb {p['direction']} {quantize(p['period_bars'], 'bars')}"
    if m.pattern == "ping_pong":
        return f"pp {quantize_az(p['from_az'])} {quantize_az(p['to_az'])} {quantize(p['period_bars'], 'bars')}"
    if m.pattern in ("rise", "fall"):
        return f"{m.pattern} {quantize(p['from_el'], 'el')} {quantize(p['to_el'], 'el')}"
    word = "appr" if m.pattern == "approach" else "rec"
    return f"{word} {quantize(p['from_dist'] * 10, 'dm')} {quantize(p['to_dist'] * 10, 'dm')}"


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
        kf = keyframes_array(
            o.get("motion") or [{"t": 0, "az_deg": o["az_deg"], "el_deg": o["el_deg"], "dist_m": o["dist_m"]}]
        )
        wre = "".join(str(quantize(o[k] * 9, "ninth")) for k in ("width", "reverb_send", "early_reflections"))
        lines.append(
            " ".join(
                [
                    str(quantize_az(kf[0, 1])),
                    str(quantize(kf[0, 2], "el")),
                    str(quantize(kf[0, 3] * 10, "dm")),
                    wre,
                    str(quantize(o["gain_db"], "gain")),
                    _motion_text(detect_motion(kf, request.section_bars)),
                ]
            )
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- answer
_INT = r"-?\d+"


def _motion_from(tokens: list[str], line_no: int) -> Motion:
    name, args = tokens[0], tokens[1:]
    need = {"s": 0, "pan": 2, "fly": 2, "orb": 2, "pp": 3, "rise": 2, "fall": 2, "appr": 2, "rec": 2}
    if name not in need or len(args) != need[name]:
        raise AnswerError(f"line {line_no}: motion {' '.join(tokens)!r} is not one of {MOTIONS} with its arguments")
    if name == "s":
        return Motion("static")
    if name == "orb":
        if args[0] not in ("cw", "ccw"):
            raise AnswerError(f"line {line_no}: orbit direction {args[0]!r} is not cw or ccw")
        return Motion("orbit", {"direction": args[0], "period_bars": float(args[1])})
    v = [float(a) for a in args]
    if name in ("pan", "fly"):
        return Motion(_PATTERN_OF[name], {"from_az": v[0], "to_az": v[1]})
    if name == "pp":
        return Motion("ping_pong", {"from_az": v[0], "to_az": v[1], "period_bars": v[2]})
    if name in ("rise", "fall"):
        return Motion(name, {"from_el": v[0], "to_el": v[1]})
    return Motion(_PATTERN_OF[name], {"from_dist": v[0] / 10, "to_dist": v[1] / 10})


def parse_answer(text: str, request: Request) -> dict[str, Any]:
    """Model output -> a scene proposal (keyframes expanded; not yet rule-checked).

    Raises
    ------
    AnswerError
        When a line cannot be read; the rule engine fills stems the text left out.
    """
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise AnswerError("empty output")
    room = "studio_large"
    if lines[0].startswith("room "):
        room = lines.pop(0).split()[1]
        if room not in ROOM_PRESETS:
            raise AnswerError(f"line 1: unknown room preset {room!r}")
    if len(lines) > len(request.stems):
        raise AnswerError(f"{len(lines)} stem lines for {len(request.stems)} stems")
    objects: dict[str, dict[str, Any]] = {}
    host_of: dict[str, str] = {}
    for n, (line, stem) in enumerate(zip(lines, request.stems, strict=False), start=1):
        tok = line.split()
        if len(tok) == 1 and tok[0].startswith(">"):
            ref = tok[0][1:]
            if not ref.isdigit() or not 1 <= int(ref) < n:
                raise AnswerError(f"stem line {n}: {tok[0]!r} must name an earlier stem line (1..{n - 1})")
            host = host_of[request.stems[int(ref) - 1].id]
            host_of[stem.id] = host
            objects[host].setdefault("stems", [host]).append(stem.id)
            continue
        if len(tok) < 6 or not all(re.fullmatch(_INT, t) for t in tok[:5]) or len(tok[3]) != 3:
            raise AnswerError(f"stem line {n}: expected 'az el dist wre gain motion', got {line!r}")
        az, el, dm, g = int(tok[0]), int(tok[1]), int(tok[2]), int(tok[4])
        w, rv, er = (int(c) / 9 for c in tok[3])
        keys = expand(_motion_from(tok[5:], n), (float(az), float(el), dm / 10.0), request.section_bars)
        objects[stem.id] = {
            "id": stem.id,
            "class": stem.cls,
            "az_deg": keys[0]["az_deg"],
            "el_deg": keys[0]["el_deg"],
            "dist_m": keys[0]["dist_m"],
            "width": w,
            "gain_db": float(g),
            "reverb_send": rv,
            "early_reflections": er,
            "motion": keys,
        }
        host_of[stem.id] = stem.id
    return {
        "version": "1.0",
        "bed": {"layout": request.target_format, "room_preset": room},
        "objects": list(objects.values()),
        "constraints_applied": [],
    }
