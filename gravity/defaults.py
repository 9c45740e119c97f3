"""Where a studio puts each stem class: the default placement table.

Used by the planner as its starting point, and by the rule engine to place a stem that a
proposal forgot. Azimuth degrees positive = left, elevation degrees up, distance metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gravity.request import Request, Stem
from gravity.vocab import family_of

__all__ = ["ClassPlacement", "CLASS_PLACEMENT", "STYLE_ROOM", "STYLE_LOUDNESS", "default_object"]


@dataclass(frozen=True)
class ClassPlacement:
    """Home position and treatment of a class.

    az_deg : home azimuth (magnitude for ``pair`` classes, mirrored left/right)
    el_deg, dist_m : elevation in degrees, distance in metres
    width : 0..1; reverb, er : sends 0..1
    pair : spread instances of this class as a left/right pair
    mover : the class is a candidate for motion when energy allows
    """

    az_deg: float
    el_deg: float
    dist_m: float
    width: float
    reverb: float
    er: float
    pair: bool = False
    mover: bool = False


_P = ClassPlacement
CLASS_PLACEMENT: dict[str, ClassPlacement] = {
    "lead_vocal": _P(0, 5, 1.5, 0.1, 0.18, 0.22),
    "spoken": _P(0, 0, 1.2, 0.05, 0.08, 0.15),
    "backing_vocal": _P(35, 8, 2.5, 0.3, 0.3, 0.3, pair=True),
    "choir": _P(50, 20, 5.0, 0.8, 0.45, 0.35, pair=True),
    "vocal_fx": _P(70, 25, 3.0, 0.3, 0.4, 0.3, pair=True, mover=True),
    "kick": _P(0, 0, 1.8, 0.0, 0.04, 0.1),
    "snare": _P(4, 0, 2.0, 0.12, 0.2, 0.3),
    "clap": _P(12, 5, 2.5, 0.2, 0.25, 0.3, pair=True),
    "hihat": _P(22, 10, 2.2, 0.1, 0.12, 0.2, pair=True),
    "cymbal": _P(40, 30, 2.8, 0.4, 0.2, 0.25, pair=True),
    "tom": _P(30, 5, 2.2, 0.2, 0.15, 0.25, pair=True),
    "percussion": _P(110, 15, 3.0, 0.2, 0.25, 0.3, pair=True, mover=True),
    "drum_loop": _P(0, 0, 2.2, 0.4, 0.12, 0.2),
    "overheads": _P(0, 40, 2.5, 0.8, 0.15, 0.25),
    "room_mic": _P(0, 15, 6.0, 1.0, 0.3, 0.4),
    "bass": _P(0, 0, 1.8, 0.0, 0.03, 0.08),
    "sub": _P(0, 0, 2.0, 0.0, 0.0, 0.05),
    "bass_synth": _P(0, 0, 1.9, 0.0, 0.05, 0.1),
    "pad": _P(70, 35, 4.5, 0.85, 0.45, 0.3, pair=True),
    "keys": _P(30, 10, 2.6, 0.35, 0.25, 0.3, pair=True),
    "piano": _P(20, 5, 2.4, 0.5, 0.25, 0.3),
    "organ": _P(45, 15, 3.2, 0.6, 0.3, 0.3, pair=True),
    "guitar": _P(45, 5, 2.4, 0.25, 0.2, 0.3, pair=True),
    "acoustic_guitar": _P(30, 5, 2.0, 0.3, 0.18, 0.3, pair=True),
    "strings": _P(55, 25, 5.0, 0.8, 0.45, 0.35, pair=True),
    "brass": _P(35, 12, 4.0, 0.5, 0.3, 0.3, pair=True),
    "woodwind": _P(25, 12, 3.5, 0.3, 0.3, 0.3, pair=True),
    "synth": _P(60, 20, 3.0, 0.5, 0.3, 0.3, pair=True),
    "synth_lead": _P(15, 10, 2.0, 0.2, 0.22, 0.25),
    "lead_guitar": _P(18, 5, 2.0, 0.2, 0.2, 0.25),
    "arp": _P(80, 25, 3.0, 0.3, 0.3, 0.25, pair=True, mover=True),
    "pluck": _P(65, 15, 2.8, 0.25, 0.28, 0.25, pair=True, mover=True),
    "bell": _P(75, 40, 3.5, 0.2, 0.4, 0.25, pair=True, mover=True),
    "fx": _P(120, 30, 4.0, 0.35, 0.45, 0.3, pair=True, mover=True),
    "riser": _P(0, 20, 4.0, 0.6, 0.4, 0.3, mover=True),
    "ambience": _P(150, 45, 8.0, 1.0, 0.6, 0.2, pair=True),
    "atmosphere": _P(135, 50, 8.0, 1.0, 0.6, 0.2, pair=True),
    "foley": _P(100, 0, 3.0, 0.2, 0.25, 0.3, pair=True, mover=True),
    "noise": _P(140, 30, 6.0, 0.9, 0.5, 0.2, pair=True),
    "other": _P(40, 10, 3.0, 0.3, 0.25, 0.3, pair=True),
}

STYLE_ROOM: dict[str, str] = {
    "club": "club_medium",
    "edm": "club_large",
    "techno": "club_medium",
    "house": "club_medium",
    "classical": "hall_large",
    "orchestral": "hall_large",
    "cinematic": "hall_medium",
    "ambient": "church",
    "jazz": "studio_large",
    "folk": "studio_small",
    "acoustic": "studio_small",
    "podcast": "dry",
    "lofi": "studio_small",
    "metal": "studio_large",
    "rock": "studio_large",
    "live": "hall_medium",
    "hiphop": "studio_small",
    "rnb": "studio_small",
    "pop": "studio_large",
    "experimental": "hall_medium",
}
# Integrated loudness targets in LUFS: streaming-level for beat-driven styles, more
# headroom for dynamic ones (immersive music deliverables sit lower than stereo masters).
STYLE_LOUDNESS: dict[str, float] = {
    **dict.fromkeys(("club", "edm", "techno", "house", "hiphop", "metal", "rock", "pop", "rnb"), -14.0),
    **dict.fromkeys(("lofi", "folk", "acoustic", "jazz", "live", "experimental", "podcast"), -16.0),
    **dict.fromkeys(("ambient", "cinematic", "classical", "orchestral"), -18.0),
}


def _pair_side(stem: Stem, request: Request) -> float:
    """+1 (left) or -1 (right): alternate same-class stems in request order, first one left."""
    same = [s.id for s in request.stems if s.cls == stem.cls]
    return 1.0 if same.index(stem.id) % 2 == 0 else -1.0


def default_object(stem: Stem, request: Request) -> dict[str, Any]:
    """The class's home placement for ``stem`` as a static scene object (no planning)."""
    p = CLASS_PLACEMENT[stem.cls]
    az = p.az_deg * (_pair_side(stem, request) if p.pair else 1.0)
    el = p.el_deg if request.has_height else 0.0
    pos = {"az_deg": float(az), "el_deg": float(el), "dist_m": float(p.dist_m)}
    return {
        "id": stem.id,
        "class": stem.cls,
        **pos,
        "width": p.width,
        "gain_db": 0.0,
        "reverb_send": p.reverb,
        "early_reflections": p.er,
        "motion": [{"t": 0.0, **pos}, {"t": 1.0, **pos}],
    }


def family(stem: Stem) -> str:
    """Family of a stem's class (vocal, drums, bass, harmony, melody, texture, other)."""
    return family_of(stem.cls)
