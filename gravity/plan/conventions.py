"""The phrase parser's conventions: what each plain-language placement word means in numbers.

One table, used by the phrase readers (:mod:`gravity.plan.hint`), the ensemble readers
(:mod:`gravity.plan.prompt`) and the training-data phrase grammar (``training/data.py``), so the
text a model is trained on and the text the parser reads agree. The phrases behind each value are
listed in the value table of :mod:`gravity.plan.hint` (a test parses every phrase of that table and
checks it against these constants).

Units: azimuth degrees, positive = LEFT, 0 = front (a side value is the left one; the right is
its mirror, the negative); elevation degrees, positive up; distance metres; width 0..1 (the
renderer spreads a width-w object over +-60*w degrees); arcs in degrees of azimuth; periods in
bars. Values follow published placement practice where there is one (a 60-degree front stage
for "in front", surrounds at 110 degrees as in ITU-R BS.775, rear corners at 135) and round
numbers otherwise.
"""

from __future__ import annotations

__all__ = [
    "ARC_AROUND",
    "ARC_FRONT",
    "ARC_REAR",
    "ARC_SIDES",
    "AZ_BACK",
    "AZ_BACK_HALF",
    "AZ_FRONT",
    "AZ_HALF",
    "AZ_HARD",
    "AZ_OFF_CENTRE",
    "AZ_SIDE_FRONT",
    "AZ_SLIGHT",
    "AZ_SURROUND",
    "AZ_WIDE",
    "DIST_CLOSE",
    "DIST_FAR",
    "DIST_INSIDE",
    "DIST_MID",
    "DIST_VERY_CLOSE",
    "DIST_VERY_FAR",
    "EL_ABOVE",
    "EL_BELOW",
    "EL_EAR",
    "EL_FLOOR",
    "EL_NADIR",
    "EL_OVERHEAD",
    "EL_SHOULDER",
    "EL_SLIGHT_DOWN",
    "EL_SLIGHT_UP",
    "EL_VERY_HIGH",
    "EL_ZENITH",
    "FLY_OVER_AZ",
    "MAX_WIDTH_NOT_TOO_WIDE",
    "MAX_WIDTH_NOT_WIDE",
    "PAN_LAW_DEG_PER_PERCENT",
    "PERIOD_FAST_BARS",
    "PERIOD_SLOW_BARS",
    "SIDE_TO_SIDE_AZ",
    "VALUES",
    "WIDTH_HUGE",
    "WIDTH_MEDIUM",
    "WIDTH_NARROW",
    "WIDTH_SLIGHTLY_WIDE",
    "WIDTH_WIDE",
]

# --- azimuth, degrees (+ = left; the right-hand phrase is the mirror) -------------------------
AZ_HARD = 90.0  # "left", "hard left", "left side"
AZ_WIDE = 60.0  # "wide left", "mostly left"
AZ_HALF = 45.0  # "half left", "left-ish", "front left" (45 off the front axis)
AZ_OFF_CENTRE = 30.0  # "left of centre", "centre left"
AZ_SLIGHT = 20.0  # "slightly left"; "front, slightly left" is 20 off the front axis
AZ_SIDE_FRONT = 70.0  # "left, slightly in front": 20 off the side axis
AZ_SURROUND = 110.0  # "left surround" (ITU-R BS.775 surround position)
AZ_BACK_HALF = 135.0  # "back left", "rear surround left", "over my left shoulder"
AZ_FRONT = 0.0  # "front", "centre", "ahead"
AZ_BACK = 180.0  # "behind", "back", "rear"
PAN_LAW_DEG_PER_PERCENT = 0.9  # "50% left" = 45 degrees: 100 % is hard left (90)

# --- elevation, degrees (+ = up) ----------------------------------------------------------
EL_ZENITH = 90.0  # "directly above", "zenith"
EL_OVERHEAD = 70.0  # "overhead", "above my head", "ceiling"
EL_VERY_HIGH = 60.0  # "very high", "up high", "way above"
EL_ABOVE = 40.0  # "above", "high", "up", "elevated"; also "above ear level"
EL_SLIGHT_UP = 20.0  # "slightly above", "a bit higher"
EL_SHOULDER = 20.0  # "over my left shoulder": a little above the ear
EL_EAR = 0.0  # "ear level", "horizon"
EL_SLIGHT_DOWN = -15.0  # "slightly below", "a bit lower"
EL_BELOW = -25.0  # "below", "low", "down"; also "below ear level"
EL_FLOOR = -30.0  # "floor", "ground", "at my feet"
EL_NADIR = -70.0  # "directly below", "beneath me"

# --- distance, metres ---------------------------------------------------------------------
DIST_INSIDE = 0.3  # "inside my head"
DIST_VERY_CLOSE = 0.5  # "very close", "in my ear", "whispering"
DIST_CLOSE = 1.0  # "close", "near", "intimate", "in your face", "upfront"
DIST_MID = 3.0  # "mid distance", "not too far"
DIST_FAR = 8.0  # "far", "distant", "in the distance", "back in the mix"
DIST_VERY_FAR = 15.0  # "very far", "miles away"

# --- width, 0..1 (the renderer spreads a width-w object over +-60*w degrees) -------------
WIDTH_HUGE = 1.0  # "very wide", "huge", "all around", "left and right" (one stem)
WIDTH_WIDE = 0.8  # "wide", "broad", "spread"
WIDTH_SLIGHTLY_WIDE = 0.6  # "a bit wider"
WIDTH_MEDIUM = 0.5  # "medium width", "not too narrow"
WIDTH_NARROW = 0.1  # "narrow", "tight", "point source", "mono"
# caps (Placement.max_width), not set points: the text bounds the width and leaves the value
# to the planner
MAX_WIDTH_NOT_TOO_WIDE = 0.5  # "not too wide", "not very wide", "not huge": at most medium
MAX_WIDTH_NOT_WIDE = 0.35  # "not wide", "narrow-ish", "fairly narrow": below medium

# --- ensembles: azimuth span (degrees) a phrase naming a region gives a group of stems -------
ARC_REAR = 110.0  # "behind me": rear-left (+125) to rear-right (-125) around 180
ARC_FRONT = 60.0  # "in front": the front stage, +-30 (the stereo loudspeaker angle)
ARC_AROUND = 360.0  # "all around me", "surround me", and a group "above me" (a ring)
ARC_SIDES = 180.0  # "on each side", "left and right": a mirrored pair about +-90 (az_deg 90)

# --- motion -------------------------------------------------------------------------------
FLY_OVER_AZ = (0.0, 180.0)  # "flies over": front to back unless stated
SIDE_TO_SIDE_AZ = (90.0, -90.0)  # "side to side": left to right
PERIOD_SLOW_BARS = 8.0  # "slowly circles"
PERIOD_FAST_BARS = 1.0  # "circles fast"

VALUES: dict[str, float] = {k: v for k, v in globals().items() if k.isupper() and isinstance(v, float)}
"""Every scalar convention by name (for documentation and the test that ties the table to it)."""
