"""What the text forbids holds for any proposal (gravity.plan.limits): zones and width caps."""

from __future__ import annotations

import numpy as np

from gravity.motion import keyframes_array, positions_at
from gravity.plan.limits import apply_text_limits, escape
from gravity.plan.planner import read_hints
from gravity.request import Request
from gravity.rules import in_region


def request(prompt: str) -> Request:
    stems = [{"id": i, "class": c} for i, c in (("v", "lead_vocal"), ("pad", "pad"), ("gtr", "guitar"))]
    return Request.from_dict({"target_format": "7.1.4", "max_objects": 8, "stems": stems, "prompt": prompt})


def obj(oid: str, cls: str, az: float, el: float, width: float = 0.5, motion: list | None = None) -> dict:
    kf = motion or [{"t": t, "az_deg": az, "el_deg": el, "dist_m": 3.0} for t in (0.0, 1.0)]
    return {"id": oid, "class": cls, "az_deg": az, "el_deg": el, "dist_m": 3.0, "width": width, "motion": kf}


def test_escape_goes_the_shortest_way_out_with_a_margin():
    az, el = escape(170.0, 10.0, ("rear",))
    assert not in_region("rear", az, el, grow=4.9) and abs(az) <= 115.0 and az > 0  # stays on its side
    assert escape(45.0, 60.0, ("above",)) == (
        45.0,
        20.0,
    )  # straight down, clear of the zone (30) by its margin, on the 5-deg grid
    assert escape(30.0, 0.0, ("rear",)) == (30.0, 0.0)  # outside already: unchanged


def test_a_models_scene_keeps_what_the_text_forbids():
    req = request("nothing behind me; keep the pads out of the height, not too wide")
    hints = read_hints(req)
    orbit = [{"t": t, "az_deg": a, "el_deg": 50.0, "dist_m": 3.0} for t, a in ((0.0, 0.0), (0.5, 180.0), (1.0, 0.0))]
    prop = {
        "objects": [
            obj("v", "lead_vocal", 0, 5),
            obj("pad", "pad", 150, 45, width=1.0),
            obj("gtr", "guitar", -170, 0, motion=None),
        ]
    }
    prop["objects"][2]["motion"] = [dict(k) for k in orbit]
    out = apply_text_limits(prop, hints)
    pad, gtr = out["objects"][1], out["objects"][2]
    assert pad["width"] == 0.5 and pad["el_deg"] < 30 and abs(pad["az_deg"]) < 120
    path = positions_at(keyframes_array(gtr["motion"]), np.linspace(0, 1, 5))  # at the keyframes
    assert not in_region("rear", path[:, 0], path[:, 1]).any()
    assert out["objects"][0] == prop["objects"][0] and prop["objects"][1]["az_deg"] == 150  # a copy; others untouched
    assert apply_text_limits("garbage", hints) == "garbage"  # malformed: left for the rule engine
