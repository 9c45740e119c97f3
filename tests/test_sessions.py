"""The engineer's session set (examples/sessions) and the expectation checker (gravity.expectations).

Three parts: the set itself is valid and covers what issue 16 asks (genres, sections, pairs,
the issue's own phrases); every check kind judged on hand-built scenes with known values (pass
and fail); and the issue's acceptance thresholds measured on the planner.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from gravity.expectations import (
    CHECKS,
    PAIR_CHECKS,
    ExpectationError,
    check_expectations,
    check_pair,
    load_sessions,
    validate_checks,
)
from gravity.request import Request

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "examples" / "sessions"


# ------------------------------------------------------------------ hand-built requests and scenes
def _request(*stems: tuple[str, str], bpm: float = 120.0, bars: int = 8, section: str = "verse") -> Request:
    return Request.from_dict(
        {
            "target_format": "binaural",
            "max_objects": 16,
            "section": section,
            "global": {"bpm": bpm, "section_bars": bars},
            "stems": [{"id": i, "class": c} for i, c in stems],
        }
    )


def _obj(
    oid: str,
    cls: str,
    kf: list[tuple[float, float, float, float]],
    width: float = 0.2,
    reverb: float = 0.2,
    stems: list[str] | None = None,
) -> dict[str, Any]:
    """One scene object; ``kf`` rows are (t, az_deg, el_deg, dist_m)."""
    o: dict[str, Any] = {
        "id": oid,
        "class": cls,
        "az_deg": kf[0][1],
        "el_deg": kf[0][2],
        "dist_m": kf[0][3],
        "width": width,
        "gain_db": 0.0,
        "reverb_send": reverb,
        "early_reflections": 0.2,
        "motion": [{"t": t, "az_deg": a, "el_deg": e, "dist_m": d} for t, a, e, d in kf],
    }
    if stems:
        o["stems"] = stems
    return o


def _at(az: float, el: float = 0.0, dist: float = 2.0) -> list[tuple[float, float, float, float]]:
    return [(0.0, az, el, dist), (1.0, az, el, dist)]


def _scene(*objs: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.0", "bed": {"layout": "binaural"}, "objects": list(objs)}


def _one(req: Request, scene: dict[str, Any], check: dict[str, Any]) -> tuple[bool, str]:
    (r,) = check_expectations(req, scene, [check])
    return r.passed, r.detail


# ------------------------------------------------------------------ the session set
@functools.cache
def _set() -> tuple[dict[str, Any], list[Any]]:
    return load_sessions(SESSIONS)


def test_the_set_covers_genres_sections_and_pairs() -> None:
    sessions, pairs = _set()
    assert len(sessions) >= 30
    assert len({s.genre for s in sessions.values()}) >= 7
    assert len(pairs) >= 8
    common = {"intro", "verse", "pre_chorus", "chorus", "post_chorus", "hook", "bridge", "breakdown", "build", "drop"}
    assert common | {"solo", "outro"} <= {s.request.section for s in sessions.values()}
    assert all(4 <= len(s.request.stems) <= 24 for s in sessions.values())
    n_checks = sum(len(s.expect) for s in sessions.values()) + sum(len(p.expect) for p in pairs)
    assert n_checks >= 250
    assert all(len(s.expect) >= 5 for s in sessions.values())
    rule_types = {r["type"] for s in sessions.values() for r in s.request.rules}
    assert rule_types >= {"anchor", "mono_low_end", "zone", "max_elevation", "motion", "avoid_masking", "max_objects"}


def test_the_set_uses_the_issues_own_words() -> None:
    sessions, _ = _set()
    text = " | ".join(
        [s.request.prompt for s in sessions.values()] + [x.hint for s in sessions.values() for x in s.request.stems]
    )
    for phrase in (
        "make the chorus huge and enveloping",
        "slowly drifting, vast space",
        "nothing behind me",
        "the room mics above me",
        "whooshes flying over my head",
        "right side, 100 degrees, just behind the ear",
        "two backing vocals wide behind me",
        "the orchestra in front",
        "ping-pong the arp left and right",
    ):
        assert phrase in text, phrase
    ids = {x.id for s in sessions.values() for x in s.request.stems}
    assert {"taiko_l", "taiko_r", "vln1", "vln2", "vla", "vc", "cb", "room_mics", "oh_l", "whoosh_01", "808"} <= ids


def test_pairs_hold_the_same_stems_in_two_sections() -> None:
    sessions, pairs = _set()
    for p in pairs:
        a, b = sessions[p.a].request, sessions[p.b].request
        assert [s.id for s in a.stems] == [s.id for s in b.stems]
        assert a.section != b.section and a.style == b.style
        assert any(c["check"] == "bigger" for c in p.expect)


def test_every_check_kind_is_used_by_the_set() -> None:
    sessions, pairs = _set()
    used = {c["check"] for s in sessions.values() for c in s.expect}
    assert used == set(CHECKS)
    assert {c["check"] for p in pairs for c in p.expect} == set(PAIR_CHECKS)


# ------------------------------------------------------------------ hostile input
def test_unknown_check_names_the_file_and_the_check() -> None:
    req = _request(("vox", "lead_vocal"))
    with pytest.raises(ExpectationError, match=r"my_session\.json: expect\[1\].*unknown check 'mirorred'"):
        validate_checks(
            req, [{"check": "anchored", "stem": "vox"}, {"check": "mirorred", "stems": ["vox"]}], "my_session.json"
        )


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"check": "anchored", "stem": "vocals"}, r"stem 'vocals' is not in the request"),
        ({"check": "spread", "stems": ["vox", "gtr"]}, r"stems \['gtr'\] not in the request"),
        ({"check": "position"}, r"missing parameter 'stem'"),
        ({"check": "position", "stem": "vox", "azimuth": [0, 1]}, r"unknown parameter 'azimuth'"),
        ({"check": "position", "stem": "vox", "el": [20, 10]}, r"lo <= hi"),
        ({"check": "region", "stems": "all", "in": "behind"}, r"unknown region 'behind'"),
        ({"check": "region", "stems": "all"}, r'exactly one of "in" and "not_in"'),
        ({"check": "card", "metric": "hugeness"}, r"unknown card metric 'hugeness'"),
        ({"check": "mirrored", "stems": ["vox", "kick", "vox"]}, r"two stem ids"),
        ({"check": "width", "min": 0.2}, r'needs "stem" or "stems"'),
        ({"check": "max_speed", "max": "fast"}, r"must be a number"),
        ({"check": "position", "stem": "vox", "at": 2}, r"time 0\.\.1"),
        ({"check": "el_max", "stem": "vox"}, r'needs "min" or "max"'),
        ({"check": "position", "stem": "vox", "at": 0.5}, r'at least one of "az", "el", "dist"'),
        ({"check": "anchored", "stem": "vox", "stems": ["kick"]}, r"not both"),
        ("anchored", r'"check" name'),
    ],
)
def test_bad_checks_are_refused_with_a_reason(check: Any, message: str) -> None:
    req = _request(("vox", "lead_vocal"), ("kick", "kick"))
    with pytest.raises(ExpectationError, match=message):
        check_expectations(
            req, _scene(_obj("vox", "lead_vocal", _at(0)), _obj("kick", "kick", _at(0))), [check], "s.json"
        )


def test_pair_checks_are_their_own_vocabulary() -> None:
    req = _request(("vox", "lead_vocal"))
    sc = _scene(_obj("vox", "lead_vocal", _at(0)))
    with pytest.raises(ExpectationError, match="unknown check 'anchored'"):
        check_pair(req, sc, req, sc, [{"check": "anchored", "stem": "vox"}], "pairs.json")


def test_load_sessions_names_the_bad_file(tmp_path: Path) -> None:
    good = json.loads((SESSIONS / "rnb_intro.json").read_text())
    (tmp_path / "rnb_intro.json").write_text(json.dumps(good))
    bad = dict(good, name="oops")
    (tmp_path / "oops.json").write_text(json.dumps(dict(bad, expect=[{"check": "anchored", "stem": "vocals"}])))
    with pytest.raises(ExpectationError, match=r"oops\.json: expect\[0\].*'vocals' is not in the request"):
        load_sessions(tmp_path)
    (tmp_path / "oops.json").unlink()
    (tmp_path / "pairs.json").write_text(json.dumps([{"a": "rnb_intro", "b": "rnb_outro", "expect": []}]))
    with pytest.raises(ExpectationError, match=r"pairs\.json \[0\]: no session named \['rnb_outro'\]"):
        load_sessions(tmp_path)


# ------------------------------------------------------------------ each check kind, known values
def test_position_ranges_wrap_and_at() -> None:
    req = _request(("gtr", "guitar"), ("fx", "fx"))
    sc = _scene(_obj("gtr", "guitar", _at(30, 10, 2.5)), _obj("fx", "fx", [(0, 0, 0, 2), (1, 90, 0, 2)]))
    assert _one(req, sc, {"check": "position", "stem": "gtr", "az": [20, 40], "el": [5, 15], "dist": [2, 3]}) == (
        True,
        "az 30.0..30.0, el 10.0..10.0, dist 2.5..2.5",
    )
    assert not _one(req, sc, {"check": "position", "stem": "gtr", "az": [-10, 10]})[0]
    assert not _one(req, sc, {"check": "position", "stem": "gtr", "dist": [0.5, 2]})[0]
    # a range from 20 counter-clockwise to -160 covers the left and the rear: 30 is in, -30 not
    assert _one(req, sc, {"check": "position", "stem": "gtr", "az": [20, -160]})[0]
    # the pan 0 -> 90: judged over the whole path unless "at"
    assert _one(req, sc, {"check": "position", "stem": "fx", "az": [-5, 5], "at": 0.0})[0]
    ok, detail = _one(req, sc, {"check": "position", "stem": "fx", "az": [-5, 5]})
    assert not ok and detail == "az 0.0..90.0"
    assert _one(req, sc, {"check": "position", "stem": "fx", "az": [40, 50], "at": 0.5}) == (True, "az 45.0..45.0")


def test_position_rear_range_through_180() -> None:
    req = _request(("a", "ambience"), ("b", "ambience"))
    sc = _scene(_obj("a", "ambience", _at(170)), _obj("b", "ambience", _at(100)))
    assert _one(req, sc, {"check": "position", "stem": "a", "az": [150, -150]})[0]
    assert not _one(req, sc, {"check": "position", "stem": "b", "az": [150, -150]})[0]


def test_anchored_front_static_narrow() -> None:
    req = _request(("v1", "lead_vocal"), ("v2", "lead_vocal"), ("v3", "lead_vocal"), ("v4", "lead_vocal"))
    sc = _scene(
        _obj("v1", "lead_vocal", _at(0, 5, 1.5), width=0.1),
        _obj("v2", "lead_vocal", _at(15, 5, 1.5), width=0.1),
        _obj("v3", "lead_vocal", [(0, 0, 5, 1.5), (1, 10, 5, 1.5)], width=0.1),
        _obj("v4", "lead_vocal", _at(-8, 5, 1.5), width=0.5),
    )
    assert _one(req, sc, {"check": "anchored", "stem": "v1"}) == (True, "all within")
    assert _one(req, sc, {"check": "anchored", "stem": "v2"}) == (False, "v2 |az| 15.0")
    assert _one(req, sc, {"check": "anchored", "stem": "v3"}) == (False, "v3 moves")
    assert _one(req, sc, {"check": "anchored", "stem": "v4"}) == (False, "v4 width 0.5")
    assert _one(req, sc, {"check": "anchored", "stem": "v2", "tol": 20})[0]


def test_centred_low_end() -> None:
    req = _request(("kick", "kick"), ("bass", "bass"), ("sub", "sub"), ("808", "sub"))
    sc = _scene(
        _obj("kick", "kick", _at(0), width=0.0),
        _obj("bass", "bass", _at(4), width=0.1),
        _obj("sub", "sub", _at(6), width=0.0),
        _obj("808", "sub", _at(0, 12), width=0.0),
    )
    assert _one(req, sc, {"check": "centred", "stems": ["kick", "bass"]})[0]
    assert _one(req, sc, {"check": "centred", "stems": ["kick", "sub", "808"]}) == (
        False,
        "sub |az| 6.0; 808 el 12.0..12.0",
    )


def test_mirrored_pairs() -> None:
    req = _request(*[(f"b{i}", "backing_vocal") for i in range(8)])
    sc = _scene(
        _obj("b0", "backing_vocal", _at(35)),
        _obj("b1", "backing_vocal", _at(-35)),
        _obj("b2", "backing_vocal", _at(180)),
        _obj("b3", "backing_vocal", _at(180)),
        _obj("b4", "backing_vocal", _at(35)),
        _obj("b5", "backing_vocal", _at(-60)),
        _obj("b6", "backing_vocal", _at(150)),
        _obj("b7", "backing_vocal", _at(-150)),
    )
    assert _one(req, sc, {"check": "mirrored", "stems": ["b0", "b1"]}) == (True, "az 35.0 / -35.0 (asymmetry 0.0)")
    assert not _one(req, sc, {"check": "mirrored", "stems": ["b2", "b3"]})[0]  # both at 180: one point
    assert _one(req, sc, {"check": "mirrored", "stems": ["b4", "b5"], "tol": 20}) == (
        False,
        "az 35.0 / -60.0 (asymmetry 25.0)",
    )
    assert not _one(req, sc, {"check": "mirrored", "stems": ["b0", "b1"], "min_abs_az": 40})[0]
    assert _one(req, sc, {"check": "mirrored", "stems": ["b6", "b7"], "min_abs_az": 120, "max_abs_az": 165})[0]
    assert not _one(req, sc, {"check": "mirrored", "stems": ["b6", "b7"], "max_abs_az": 140})[0]


def test_spread_over_the_path_and_folded_stems() -> None:
    req = _request(("g1", "guitar"), ("g2", "guitar"), ("g3", "guitar"), ("g4", "guitar"), ("g5", "guitar"))
    sc = _scene(
        _obj("g1", "guitar", _at(40)),
        _obj("g2", "guitar", _at(-40)),
        _obj("g3", "guitar", [(0, 30, 0, 2), (1, -30, 0, 2)]),  # pans 30 -> -30: 10 deg from g1 at t = 0
        _obj("grp", "guitar", _at(90), stems=["g4", "g5"]),
    )
    assert _one(req, sc, {"check": "spread", "stems": ["g1", "g2", "g4"], "min_sep_deg": 45}) == (
        True,
        "closest g1~g4 50.0 deg",
    )
    ok, detail = _one(req, sc, {"check": "spread", "stems": ["g1", "g3"], "min_sep_deg": 15})
    assert not ok and detail == "closest g1~g3 10.0 deg"
    assert _one(req, sc, {"check": "spread", "stems": ["g4", "g5"]}) == (False, "closest g4~g5 share an object")


def test_order_left_to_right() -> None:
    req = _request(("vln1", "strings"), ("vln2", "strings"), ("vla", "strings"), ("vc", "strings"))
    sc = _scene(*[_obj(s, "strings", _at(a)) for s, a in (("vln1", 60), ("vln2", 20), ("vla", -20), ("vc", -60))])
    assert _one(req, sc, {"check": "order", "stems": ["vln1", "vln2", "vla", "vc"]})[0]
    ok, detail = _one(req, sc, {"check": "order", "stems": ["vln2", "vln1", "vla"]})
    assert not ok and detail == "az vln2 20.0 > vln1 60.0 > vla -20.0"


def test_region_uses_the_rule_engines_zones() -> None:
    req = _request(("a", "ambience"), ("b", "ambience"), ("c", "ambience"))
    sc = _scene(
        _obj("a", "ambience", _at(150)), _obj("b", "ambience", _at(119.95)), _obj("c", "ambience", _at(100, 40))
    )
    assert _one(req, sc, {"check": "region", "stems": ["a", "b"], "in": "rear"})[0]  # 0.1 deg quantisation slack
    assert _one(req, sc, {"check": "region", "stems": ["c"], "in": "rear"}) == (False, "outside: c at (100.0, 40.0)")
    assert _one(req, sc, {"check": "region", "stems": "all", "not_in": "rear"}) == (False, "inside: a at (150.0, 0.0)")
    assert _one(req, sc, {"check": "region", "stems": ["c"], "in": "above"})[0]
    assert _one(req, sc, {"check": "region", "stems": ["c"], "in": "left"})[0]


def test_static_moving_and_path_diameter() -> None:
    req = _request(("a", "arp"), ("p", "pad"))
    sc = _scene(_obj("a", "arp", [(0, 0, 0, 2), (1, 90, 0, 2)]), _obj("p", "pad", _at(30)))
    assert _one(req, sc, {"check": "static", "stems": ["p"]}) == (True, "all static")
    assert _one(req, sc, {"check": "static", "stems": "all"}) == (False, "moving: a")
    assert _one(req, sc, {"check": "moving", "stem": "a", "min_deg": 60}) == (True, "path spans 90.0 deg")
    assert not _one(req, sc, {"check": "moving", "stem": "a", "min_deg": 100})[0]
    assert _one(req, sc, {"check": "moving", "stem": "p"}) == (False, "path spans 0.0 deg")


def test_max_speed_with_exceptions() -> None:
    # 1 bar of 4/4 at 120 bpm = 2 s; 60 -> -60 -> 60 (through the front): 120 deg per second
    req = _request(("arp", "arp"), ("fx", "fx"), bars=1)
    sc = _scene(
        _obj("arp", "arp", [(0, 60, 0, 2), (0.5, -60, 0, 2), (1, 60, 0, 2)]),
        _obj("fx", "fx", [(0, 0, 0, 2), (1, 40, 0, 2)]),
    )
    ok, detail = _one(req, sc, {"check": "max_speed", "max": 60})
    assert not ok and detail == "fastest arp 120.0 deg/s"
    assert _one(req, sc, {"check": "max_speed", "max": 60, "except": ["arp"]}) == (True, "fastest fx 20.0 deg/s")
    assert _one(req, sc, {"check": "max_speed", "stem": "fx", "max": 19})[0] is False


def test_path_front_catches_a_ping_pong_through_the_rear() -> None:
    req = _request(("rear", "arp"), ("front", "arp"))
    sc = _scene(
        _obj("rear", "arp", [(0, 90, 0, 2), (0.5, -90, 0, 2), (1, 90, 0, 2)]),  # 180 apart: shortest path = rear
        _obj("front", "arp", [(0, 90, 0, 2), (0.25, 0, 0, 2), (0.5, -90, 0, 2), (0.75, 0, 0, 2), (1, 90, 0, 2)]),
    )
    assert _one(req, sc, {"check": "path_front", "stem": "rear", "max_abs_az": 100}) == (False, "max |az| 180.0")
    assert _one(req, sc, {"check": "path_front", "stem": "front", "max_abs_az": 100}) == (True, "max |az| 90.0")


def test_elevation_width_reverb_ranges() -> None:
    req = _request(("w", "fx"), ("room", "room_mic"), ("gtr", "guitar"))
    sc = _scene(
        _obj("w", "fx", [(0, 0, 0, 3), (0.5, 0, 60, 3), (1, 180, 0, 3)], width=0.3, reverb=0.5),
        _obj("room", "room_mic", _at(0, 35, 6), width=1.0, reverb=0.4),
        _obj("gtr", "guitar", _at(45, 5), width=0.25, reverb=0.2),
    )
    assert _one(req, sc, {"check": "el_max", "stem": "w", "min": 45}) == (True, "w max el 60.0")
    assert _one(req, sc, {"check": "el_min", "stem": "w", "min": 25}) == (False, "w min el 0.0")
    assert _one(req, sc, {"check": "el_min", "stems": ["room"], "min": 25})[0]
    assert _one(req, sc, {"check": "el_max", "stems": ["gtr", "room"], "max": 15}) == (False, "room max el 35.0")
    assert _one(req, sc, {"check": "width", "stem": "room", "min": 0.6})[0]
    assert _one(req, sc, {"check": "width", "stems": "all", "max": 0.5}) == (False, "room width 1.00")
    assert _one(req, sc, {"check": "reverb", "stem": "gtr", "max": 0.15}) == (False, "gtr reverb 0.20")


def test_wetter_means_farther_and_more_reverb() -> None:
    req = _request(("pad", "pad"), ("vox", "lead_vocal"), ("strings", "strings"), ("a", "pad"), ("b", "pad"))
    sc = _scene(
        _obj("pad", "pad", _at(60, 20, 5.0), reverb=0.5),
        _obj("vox", "lead_vocal", _at(0, 5, 1.5), reverb=0.15),
        _obj("strings", "strings", _at(-60, 20, 1.0), reverb=0.6),  # wetter but nearer
        _obj("ab", "pad", _at(90), stems=["a", "b"]),
    )
    assert _one(req, sc, {"check": "wetter", "stems": ["pad", "vox"]}) == (
        True,
        "reverb 0.50 vs 0.15, dist 5.00 vs 1.50 m",
    )
    assert not _one(req, sc, {"check": "wetter", "stems": ["vox", "pad"]})[0]
    assert not _one(req, sc, {"check": "wetter", "stems": ["strings", "vox"]})[0]
    assert not _one(req, sc, {"check": "wetter", "stems": ["a", "b"]})[0]


def test_card_metric_bounds() -> None:
    req = _request(("a", "pad"), ("b", "pad"))
    sc = _scene(_obj("a", "pad", _at(150)), _obj("b", "pad", _at(-150)))
    assert _one(req, sc, {"check": "card", "metric": "n_objects", "max": 2}) == (True, "n_objects 2.000")
    assert _one(req, sc, {"check": "card", "metric": "rear_share", "min": 1.0})[0]
    assert not _one(req, sc, {"check": "card", "metric": "front30_share", "min": 0.1})[0]


def test_a_grouped_stem_is_judged_at_its_object() -> None:
    req = _request(("bgv_l", "backing_vocal"), ("bgv_r", "backing_vocal"))
    sc = _scene(_obj("bgvs", "backing_vocal", _at(-30, 10), stems=["bgv_l", "bgv_r"]))
    assert _one(req, sc, {"check": "position", "stem": "bgv_l", "az": [-35, -25], "el": [5, 15]})[0]
    assert not _one(req, sc, {"check": "mirrored", "stems": ["bgv_l", "bgv_r"]})[0]


def _verse_and_chorus() -> tuple[Request, dict[str, Any], Request, dict[str, Any]]:
    stems = (("vox", "lead_vocal"), ("bgv_l", "backing_vocal"), ("bgv_r", "backing_vocal"), ("pad", "pad"))
    verse = _scene(
        _obj("vox", "lead_vocal", _at(0, 5, 1.5), width=0.1),
        _obj("bgv_l", "backing_vocal", _at(20)),
        _obj("bgv_r", "backing_vocal", _at(-20)),
        _obj("pad", "pad", _at(10, 10), width=0.3),
    )
    chorus = _scene(
        _obj("vox", "lead_vocal", _at(0, 5, 1.5), width=0.1),
        _obj("bgv_l", "backing_vocal", _at(70)),
        _obj("bgv_r", "backing_vocal", _at(-70)),
        _obj("pad", "pad", _at(180, 40), width=0.9),
    )
    return _request(*stems), verse, _request(*stems, section="chorus"), chorus


def test_pair_checks_on_a_verse_and_its_chorus() -> None:
    ra, a, rb, b = _verse_and_chorus()
    checks = [
        {"check": "bigger"},
        {"check": "wider", "stem": "pad"},
        {"check": "wider", "stems": ["bgv_l", "bgv_r"]},
        {"check": "more", "metric": "rear_share"},
        {"check": "more", "metric": "height_share"},
        {"check": "more", "metric": "front30_share"},
    ]
    res = check_pair(ra, a, rb, b, checks)
    assert [r.passed for r in res] == [True, True, True, True, True, False]
    assert res[1].detail == "width 0.30 -> 0.90"
    assert res[2].detail == "span 40.0 -> 140.0 deg"
    assert res[3].detail == "rear_share 0.000 -> 0.250"
    # the same scenes the other way round: not bigger
    assert not check_pair(rb, b, ra, a, [{"check": "bigger"}])[0].passed


# ------------------------------------------------------------------ acceptance on the planner (issue 16)
def _benchmark() -> Any:
    """``benchmarks/scene_quality.py`` as a module (its summary is what the README reports)."""
    if "scene_quality" not in sys.modules:
        spec = importlib.util.spec_from_file_location("scene_quality", ROOT / "benchmarks" / "scene_quality.py")
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules["scene_quality"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["scene_quality"]


@functools.cache
def _planned() -> dict[str, Any]:
    bench = _benchmark()
    sessions, pairs = _set()
    scenes = bench.propose([s.request for s in sessions.values()])
    out: dict[str, Any] = bench.judge(sessions, pairs, scenes)
    return out


def test_planner_stacks_no_same_band_pairs() -> None:
    out = _planned()
    stacked = {n: j.card.pair_issues for n, j in out["judged"].items() if j.card.stacked_pairs}
    assert out["summary"]["stacked_pairs_total"] == 0, stacked


def test_planner_anchors_lead_and_low_end_everywhere() -> None:
    out = _planned()
    issues = {n: j.card.anchor_issues for n, j in out["judged"].items() if not j.card.anchors_ok}
    assert out["summary"]["anchored_pct"] == 100.0, issues


def test_planner_leaves_the_exact_centre_to_lead_and_low_end() -> None:
    assert _planned()["summary"]["zero_az_share_mean"] <= 0.10


def test_planner_opens_choruses_and_drops() -> None:
    s = _planned()["summary"]
    assert s["front30_big_mean"] <= 0.55
    assert s["coverage_motion_big_mean"] >= 0.55


def test_planner_makes_every_contrast_pair_bigger() -> None:
    out = _planned()
    assert [p["b"] for p in out["pairs"] if not p["contrast"].bigger] == []


def test_planner_keeps_motion_under_60_deg_s_unless_asked() -> None:
    assert _planned()["summary"]["over_speed_unasked"] == []


def test_planner_meets_90_percent_of_the_written_expectations() -> None:
    out = _planned()
    failed = [f"{n}: {r.line()}" for n, j in out["judged"].items() for r in j.results if not r.passed]
    assert out["summary"]["expectations_pct"] >= 90.0, "\n".join(failed)


def test_benchmark_judges_the_whole_set_without_a_planner() -> None:
    """The benchmark's judging and report on rule-engine default scenes (``enforce`` of an empty
    proposal: every stem at its class's home position), independent of the planner's state.
    """
    from gravity.rules import enforce

    bench = _benchmark()
    sessions, pairs = _set()
    scenes = [enforce(s.request, {}).scene for s in sessions.values()]
    out = bench.judge(sessions, pairs, scenes)
    s = out["summary"]
    assert (s["sessions"], s["pairs"], s["expectations"], s["big_sessions"]) == (37, 9, 330, 15)
    assert s["expectations_met"] == sum(r.passed for j in out["judged"].values() for r in j.results) + sum(
        r.passed for p in out["pairs"] for r in p["results"]
    )
    assert s["max_speed_deg_s"] == 0.0  # home positions never move
    text = bench.report(out)
    assert all(name in text for name in sessions) and "expectations met" in text
    doc = bench.to_json(out)
    assert len(doc["sessions"]) == 37 and doc["summary"] == s
