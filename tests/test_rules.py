"""Rule engine: each hard rule enforced and measured, conflicts refused, hostile input survived."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gravity.errors import RuleConflictError
from gravity.motion import angle_between, keyframes_array, path_speed_deg_s, positions_at
from gravity.request import Request
from gravity.rules import check, check_feasible, constraints_applied, enforce
from gravity.schema import check_scene

ROOT = Path(__file__).resolve().parent.parent


def request(stems: list[Any], rules: list[dict] | None = None, **kw: Any) -> Request:
    doc = {
        "target_format": kw.pop("fmt", "7.1.4"),
        "max_objects": kw.pop("max_objects", 16),
        "global": {"bpm": 120, "section_bars": 8},
        "rules": rules or [],
        **kw,
        "stems": [s if isinstance(s, dict) else {"id": s[0], "class": s[1]} for s in stems],
    }
    return Request.from_dict(doc)


def obj(
    oid: str, cls: str, az: float, el: float = 0.0, dist: float = 2.0, motion: list | None = None, **kw: Any
) -> dict:
    o = {
        "id": oid,
        "class": cls,
        "az_deg": az,
        "el_deg": el,
        "dist_m": dist,
        "width": 0.3,
        "gain_db": 0.0,
        "reverb_send": 0.2,
        "early_reflections": 0.2,
        **kw,
    }
    o["motion"] = motion or [
        {"t": 0.0, "az_deg": az, "el_deg": el, "dist_m": dist},
        {"t": 1.0, "az_deg": az, "el_deg": el, "dist_m": dist},
    ]
    return o


def scene(*objs: dict) -> dict:
    return {"version": "1.0", "bed": {"layout": "7.1.4"}, "objects": list(objs)}


def by_id(s: dict, oid: str) -> dict:
    return next(o for o in s["objects"] if o["id"] == oid)


def orbit(az0: float, el: float = 0.0, dist: float = 2.0, turns: int = 1) -> list[dict]:
    n = 4 * turns
    return [
        {"t": i / n, "az_deg": ((az0 + 90 * i + 180) % 360) - 180, "el_deg": el, "dist_m": dist} for i in range(n + 1)
    ]


def test_seed_example_honours_both_seed_rules():
    req = Request.from_dict(json.loads((ROOT / "examples/sample_input.json").read_text()))
    res = enforce(req, json.loads((ROOT / "examples/sample_output.json").read_text()))
    v1, k1 = by_id(res.scene, "v1"), by_id(res.scene, "k1")
    assert (v1["az_deg"], v1["el_deg"], v1["dist_m"]) == (0, 10, 1.6)
    assert (k1["az_deg"], k1["el_deg"], k1["width"]) == (0, 0, 0)
    assert "anchor:lead_vocal@0/10/1.6" in res.scene["constraints_applied"]
    assert "mono_low_end<120Hz" in res.scene["constraints_applied"]
    # the seed output forgot the kick: reported, and placed
    assert any("k1" in v.message for v in res.violations)


def test_anchor_pulls_object_and_keeps_motion_within_tolerance():
    req = request(
        [("v", "lead_vocal")],
        [{"type": "anchor", "track_id": "v", "az_deg": 20, "el_deg": 10, "dist_m": 1.5, "tolerance_deg": 5}],
    )
    res = enforce(req, scene(obj("v", "lead_vocal", -90, motion=orbit(-90))))
    kf = keyframes_array(by_id(res.scene, "v")["motion"])
    pos = positions_at(kf, np.linspace(0, 1, 201))
    assert np.max(angle_between(pos[:, 0], pos[:, 1], 20, 10)) <= 5.1
    assert np.all(kf[:, 3] == 1.5)
    assert not res.compliant and any(v.rule == "rules[0].anchor" for v in res.violations)


def test_anchor_without_elevation_constrains_azimuth_only():
    req = request([("g", "guitar")], [{"type": "anchor", "track_id": "g", "az_deg": 45}])
    res = enforce(req, scene(obj("g", "guitar", -30, el=25)))
    g = by_id(res.scene, "g")
    assert g["az_deg"] == 45 and g["el_deg"] == 25


def test_mono_low_end_by_class_and_by_band_energy():
    stems = [
        ("k", "kick"),
        {"id": "wob", "class": "synth", "band_energy": {"low": 0.8, "mid": 0.15, "high": 0.05}},
        ("p", "pad"),
    ]
    req = request(stems, [{"type": "mono_low_end", "hz_below": 120}])
    res = enforce(
        req,
        scene(
            obj("k", "kick", 40, 20, motion=orbit(40, 20)), obj("wob", "synth", -70, width=0.9), obj("p", "pad", 70, 30)
        ),
    )
    for oid in ("k", "wob"):
        o = by_id(res.scene, oid)
        kf = keyframes_array(o["motion"])
        assert np.all(kf[:, 1:3] == 0) and o["width"] == 0
    assert by_id(res.scene, "p")["az_deg"] == 70  # untouched


def test_budget_groups_least_important_and_drops_no_stem():
    stems = [
        ("v", "lead_vocal"),
        ("k", "kick"),
        ("b", "bass"),
        ("hh", "hihat"),
        ("sh", "percussion"),
        ("cl", "clap"),
        ("pad", "pad"),
        ("fx", "fx"),
    ]
    req = request(stems, [{"type": "mono_low_end", "hz_below": 100}], max_objects=4)
    res = enforce(req, {})
    objs = res.scene["objects"]
    assert len(objs) == 4
    members = sorted(m for o in objs for m in o.get("stems", [o["id"]]))
    assert members == sorted(s[0] for s in stems)
    assert "v" in [o["id"] for o in objs] and "stems" not in by_id(res.scene, "v")  # the lead stays alone
    assert any(v.rule == "budget" for v in res.violations)
    assert check(req, res.scene) == []


def test_budget_rule_tightens_request_budget():
    req = request([("a", "pad"), ("b", "pad"), ("c", "keys")], [{"type": "max_objects", "max": 1}], max_objects=3)
    res = enforce(req, {})
    assert len(res.scene["objects"]) == 1 and res.scene["objects"][0]["stems"] == ["a", "b", "c"]


def test_width_rule_clamps():
    req = request(
        [("p", "pad"), ("v", "lead_vocal")],
        [
            {"type": "width", "track_class": "pad", "min": 0.6, "max": 0.9},
            {"type": "width", "track_id": "v", "max": 0.1},
        ],
    )
    res = enforce(req, scene(obj("p", "pad", 60, width=0.1), obj("v", "lead_vocal", 0, width=0.8)))
    assert by_id(res.scene, "p")["width"] == 0.6 and by_id(res.scene, "v")["width"] == 0.1


def test_avoid_masking_separates_same_band_objects_at_every_moment():
    stems = [("g1", "guitar"), ("g2", "guitar"), ("k", "keys"), ("h", "hihat")]
    req = request(stems, [{"type": "avoid_masking", "min_sep_deg": 40}])
    res = enforce(
        req,
        scene(
            obj("g1", "guitar", 30),
            obj("g2", "guitar", 35, motion=orbit(35)),
            obj("k", "keys", 20),
            obj("h", "hihat", 30),
        ),
    )
    t = np.linspace(0, 1, 257)
    paths = {o["id"]: positions_at(keyframes_array(o["motion"]), t) for o in res.scene["objects"]}
    for a, b in (("g1", "g2"), ("g1", "k"), ("g2", "k")):  # all mid-band
        sep = angle_between(paths[a][:, 0], paths[a][:, 1], paths[b][:, 0], paths[b][:, 1])
        assert sep.min() >= 40 - 0.1, (a, b, sep.min())
    assert by_id(res.scene, "h")["az_deg"] == 30  # high band: free to sit on the guitar


def test_avoid_masking_leaves_centred_low_end_alone_unless_named():
    stems = [("k", "kick"), ("b", "bass")]
    res = enforce(
        request(stems, [{"type": "mono_low_end", "hz_below": 120}, {"type": "avoid_masking", "min_sep_deg": 30}]), {}
    )
    assert all(o["az_deg"] == 0 for o in res.scene["objects"])
    with pytest.raises(RuleConflictError) as err:
        enforce(
            request(
                stems,
                [
                    {"type": "mono_low_end", "hz_below": 120},
                    {"type": "avoid_masking", "ids": ["k", "b"], "min_sep_deg": 30},
                ],
            ),
            {},
        )
    assert "rules[1].avoid_masking" in str(err.value)


@pytest.mark.parametrize(
    ("rule", "ok"),
    [
        ({"region": "rear", "mode": "outside"}, lambda az, _el: abs(az) < 120),
        ({"region": "rear", "mode": "inside"}, lambda az, _el: abs(az) >= 120),
        ({"region": "above", "mode": "inside"}, lambda _az, el: el >= 30),
        ({"region": "sides", "mode": "inside"}, lambda az, _el: 60 <= abs(az) <= 120),
        (
            {"az_min": -20, "az_max": 20, "el_min": 0, "el_max": 10, "mode": "inside"},
            lambda az, el: abs(az) <= 20 and 0 <= el <= 10,
        ),
        ({"az_min": 20, "az_max": -20, "mode": "inside"}, lambda az, _el: abs(az) >= 20),  # wraps through the back
    ],
)
def test_zone(rule, ok):
    req = request([("fx", "fx")], [{"type": "zone", "track_class": "fx", **rule}])
    res = enforce(req, scene(obj("fx", "fx", 170, -30, motion=orbit(170, -30))))
    pos = positions_at(keyframes_array(res.scene["objects"][0]["motion"]), np.linspace(0, 1, 101))
    assert all(ok(az, el) for az, el, _ in pos)


def test_motion_forbid_and_speed_cap():
    req = request(
        [("a", "arp"), ("f", "fx")],
        [
            {"type": "motion", "track_class": "arp", "allow": False},
            {"type": "motion", "track_class": "fx", "max_deg_per_s": 20},
        ],
    )
    res = enforce(req, scene(obj("a", "arp", 60, motion=orbit(60)), obj("f", "fx", 100, motion=orbit(100, turns=4))))
    a, f = (keyframes_array(by_id(res.scene, k)["motion"]) for k in ("a", "f"))
    assert np.all(a[:, 1:] == a[0, 1:])
    speed = path_speed_deg_s(f, req.section_s)
    assert 0 < speed <= 20.2, speed  # slowed down, not frozen


def test_max_elevation_and_flat_formats():
    req = request([("p", "pad")], [{"type": "max_elevation", "max_deg": 15}])
    res = enforce(req, scene(obj("p", "pad", 60, 60)))
    assert res.scene["objects"][0]["el_deg"] <= 15
    flat = enforce(request([("p", "pad")], fmt="5.1"), scene(obj("p", "pad", 60, 45)))
    assert flat.scene["objects"][0]["el_deg"] <= 0 and "max_elevation<=0deg(5.1)" in flat.scene["constraints_applied"]


def test_sanitising_hostile_values_reports_json_paths():
    req = request([("v", "lead_vocal"), ("p", "pad")])
    bad = obj("v", "lead_vocal", math.nan, 400, -3, width=math.inf, gain_db=999)
    bad["motion"] = [{"t": 0.5, "az_deg": 720, "el_deg": 0, "dist_m": 2}, {"t": "x"}]
    res = enforce(req, {"objects": [bad, bad, {"id": "ghost", "az_deg": 0}, 7]})
    assert check_scene(res.scene) == [] and check(req, res.scene) == []
    paths = {v.path for v in res.violations}
    assert {"objects[0].az_deg", "objects[0].width", "objects[0].gain_db", "objects[0].motion"} <= paths
    v = by_id(res.scene, "v")
    assert v["gain_db"] == 12 and v["width"] == 0.1  # clamped; non-finite -> the class default
    assert v["az_deg"] == 0 and v["motion"][0]["t"] == 0 and v["motion"][-1]["t"] == 1  # 720 deg wrapped to 0
    assert sorted(o["id"] for o in res.scene["objects"]) == ["p", "v"]


def test_idempotent_and_compliant_on_second_pass():
    stems = [("v", "lead_vocal"), ("k", "kick"), ("g", "guitar"), ("g2", "guitar"), ("fx", "fx")]
    rules = [
        {"type": "anchor", "track_class": "lead_vocal", "az_deg": 0, "el_deg": 10, "dist_m": 1.6},
        {"type": "mono_low_end", "hz_below": 120},
        {"type": "avoid_masking", "min_sep_deg": 35},
        {"type": "zone", "track_class": "fx", "mode": "outside", "region": "front"},
    ]
    req = request(stems, rules, max_objects=4)
    first = enforce(req, {})
    second = enforce(req, first.scene)
    assert second.scene == first.scene and second.compliant


def test_constraints_applied_lists_every_rule():
    req = request(
        [("p", "pad")],
        [
            {"type": "width", "track_class": "pad", "min": 0.5},
            {"type": "zone", "track_id": "p", "mode": "inside", "region": "above"},
            {"type": "motion", "allow": False},
            {"type": "avoid_masking", "classes": ["pad"], "min_sep_deg": 20},
        ],
    )
    assert constraints_applied(req) == [
        "max_objects<=16",
        "width:pad[0.5,1]",
        "zone:p inside above",
        "motion:all static",
        "avoid_masking:pad>=20deg",
    ]


@pytest.mark.parametrize(
    "rules",
    [
        [
            {"type": "anchor", "track_id": "a", "az_deg": 30, "el_deg": 0},
            {"type": "anchor", "track_id": "b", "az_deg": 30, "el_deg": 0},
            {"type": "avoid_masking", "min_sep_deg": 20},
        ],
        [{"type": "anchor", "track_id": "a", "az_deg": 0, "el_deg": 40}, {"type": "max_elevation", "max_deg": 10}],
        [
            {"type": "anchor", "track_id": "a", "az_deg": 0, "el_deg": 0},
            {"type": "zone", "track_id": "a", "mode": "outside", "region": "front"},
        ],
        [
            {"type": "zone", "track_id": "a", "mode": "inside", "region": "left"},
            {"type": "zone", "track_id": "a", "mode": "inside", "region": "right"},
        ],
        [{"type": "width", "track_id": "a", "min": 0.5}, {"type": "width", "track_class": "pad", "max": 0.2}],
        [
            {"type": "anchor", "track_id": "a", "az_deg": 0, "dist_m": 1},
            {"type": "anchor", "track_class": "pad", "az_deg": 0, "dist_m": 5},
        ],
    ],
)
def test_impossible_rule_sets_are_refused_naming_rules(rules):
    req = request([("a", "pad"), ("b", "pad")], rules)
    assert check_feasible(req)
    with pytest.raises(RuleConflictError) as err:
        enforce(req, {})
    assert "rules[" in str(err.value)


def test_budget_too_small_for_distinct_anchors():
    rules = [
        {"type": "anchor", "track_id": "a", "az_deg": 30, "el_deg": 0},
        {"type": "anchor", "track_id": "b", "az_deg": -30, "el_deg": 0},
    ]
    with pytest.raises(RuleConflictError):
        enforce(request([("a", "pad"), ("b", "keys")], rules, max_objects=1), {})


def test_budget_folds_the_stems_the_text_is_silent_on_first():
    """The user placed the shaker (keep): the budget folds a stem the text is silent on, and the
    object stays where the text put the placed stem.
    """
    stems = [("v", "lead_vocal"), ("hh", "hihat"), ("sh", "percussion"), ("pad", "pad")]
    props = scene(
        obj("v", "lead_vocal", 0.0),
        obj("hh", "hihat", -120.0, 40.0),
        obj("sh", "percussion", 60.0),
        obj("pad", "pad", 100.0),
    )
    req = request(stems, max_objects=3)
    blind = enforce(req, props).scene
    assert by_id(blind, "hh")["stems"] == ["hh", "sh"]  # the least important stem joined the hi-hat
    kept = enforce(req, props, keep={"sh"}).scene  # now the hi-hat is folded, into the shaker's place
    assert (by_id(kept, "sh")["az_deg"], by_id(kept, "sh")["stems"]) == (60.0, ["hh", "sh"])
    assert len(kept["objects"]) == 3 and check(req, kept) == []
    # budget 2: two stems join the shaker or another object; the shaker stays where it was put
    tight = enforce(request(stems, max_objects=2), props, keep={"sh"}).scene
    host = next(o for o in tight["objects"] if "sh" in o.get("stems", [o["id"]]))
    assert (host["id"], host["az_deg"]) == ("sh", 60.0) and len(host["stems"]) > 1


def test_a_mover_that_crosses_a_neighbour_is_turned_not_frozen():
    """avoid_masking 30 deg: a pan from 10 to 60 deg crosses a same-band static object at 0;
    the engine turns the whole path in 15 degree steps until it clears, and it still moves.
    """
    pan = [
        {"t": 0.0, "az_deg": 10.0, "el_deg": 0.0, "dist_m": 2.0},
        {"t": 1.0, "az_deg": 60.0, "el_deg": 0.0, "dist_m": 2.0},
    ]
    req = request([("g1", "guitar"), ("g2", "guitar")], [{"type": "avoid_masking", "min_sep_deg": 30.0}])
    res = enforce(req, scene(obj("g1", "guitar", 0.0), obj("g2", "guitar", 10.0, motion=pan)))
    kf = keyframes_array(by_id(res.scene, "g2")["motion"])
    assert np.ptp(kf[:, 1]) == pytest.approx(50.0)  # the same move
    p = positions_at(kf, np.linspace(0.0, 1.0, 257))
    g1 = by_id(res.scene, "g1")
    assert float(np.min(angle_between(p[:, 0], p[:, 1], g1["az_deg"], g1["el_deg"]))) >= 30.0 - 1e-6
    assert abs(kf[0, 1] - 10.0) <= 30.0  # turned by the smallest step that clears


def test_a_lead_keeps_its_narrow_width_when_the_budget_groups_a_stem_with_it():
    """Budget 1: the backing vocal joins the lead vocal; the object keeps the lead's width (a lead
    is narrow in practice), while two non-lead stems grouped take the wider width.
    """
    props = scene(obj("vox", "lead_vocal", 0.0, width=0.2), obj("bv", "backing_vocal", 30.0, width=0.6))
    res = enforce(request([("vox", "lead_vocal"), ("bv", "backing_vocal")], max_objects=1), props).scene
    assert [(o["id"], o["stems"], o["width"]) for o in res["objects"]] == [("vox", ["vox", "bv"], 0.2)]
    props = scene(obj("k1", "keys", 30.0, width=0.2), obj("k2", "keys", -30.0, width=0.6))
    keys = enforce(request([("k1", "keys"), ("k2", "keys")], max_objects=1), props).scene
    assert keys["objects"][0]["width"] == 0.6
