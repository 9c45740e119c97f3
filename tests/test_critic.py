"""The scene critic: every metric measured on hand-built scenes with known values, purity,
determinism, speed (printed) and the ``gravity critique`` command.
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import gravity.critic as critic_mod
from gravity.cli import main
from gravity.critic import WEIGHTS, Card, contrast, critique
from gravity.motion import Motion, angle_between, expand, keyframes_array, path_speed_deg_s, positions_at, wrap_az
from gravity.request import Request
from gravity.scene import Scene

ROOT = Path(__file__).resolve().parent.parent


# ----------------------------------------------------------------------------- builders
def request(stems: list[Any], rules: list[dict] | None = None, **kw: Any) -> Request:
    """A 7.1.4 request at 120 bpm, 8 bars of 4/4 (16 s); stems as (id, class[, hint]) or dicts."""
    doc = {
        "target_format": kw.pop("fmt", "7.1.4"),
        "max_objects": 24,
        "section": kw.pop("section", "verse"),
        "global": {"bpm": 120, "section_bars": 8},
        "rules": rules or [],
        **kw,
        "stems": [
            s if isinstance(s, dict) else {"id": s[0], "class": s[1], **({"hint": s[2]} if len(s) > 2 else {})}
            for s in stems
        ],
    }
    return Request.from_dict(doc)


def obj(
    oid: str,
    cls: str,
    az: float,
    el: float = 0.0,
    dist: float = 2.0,
    width: float = 0.0,
    reverb: float = 0.2,
    motion: list[dict] | None = None,
    stems: list[str] | None = None,
) -> dict:
    """A schema-valid scene object; static unless ``motion`` keyframes are given."""
    return {
        "id": oid,
        "class": cls,
        "stems": stems or [oid],
        "az_deg": az,
        "el_deg": el,
        "dist_m": dist,
        "width": width,
        "gain_db": 0.0,
        "reverb_send": reverb,
        "early_reflections": 0.2,
        "motion": motion
        or [
            {"t": 0.0, "az_deg": az, "el_deg": el, "dist_m": dist},
            {"t": 1.0, "az_deg": az, "el_deg": el, "dist_m": dist},
        ],
    }


def scene(*objs: dict) -> dict:
    return {"version": "1.0", "bed": {"layout": "7.1.4"}, "objects": list(objs)}


def orbit(az0: float, period_bars: float, el: float = 0.0, dist: float = 3.0) -> list[dict]:
    return expand(Motion("orbit", {"period_bars": period_bars}), (az0, el, dist), section_bars=8)


def pairs(*az_el: tuple[float, float], cls: str = "guitar") -> tuple[Request, dict]:
    """``len(az_el)`` objects of one class (same band) at the given directions."""
    ids = [f"{cls}{i}" for i in range(len(az_el))]
    return request([(i, cls) for i in ids]), scene(
        *(obj(i, cls, az, el) for i, (az, el) in zip(ids, az_el, strict=True))
    )


def dense_coverage(points: list[tuple[float, float]]) -> float:
    """Reference coverage, independent of the critic's lattice: area-weighted share of a 0.5 x
    0.25 degree azimuth/elevation grid over el >= -10 within 30 deg of any point.
    """
    az = np.radians(np.arange(-180.0, 180.0, 0.5) + 0.25)
    el = np.radians(np.arange(-10.0, 90.0, 0.25) + 0.125)
    a, e = np.meshgrid(az, el)
    grid = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1)
    p = np.radians(np.array(points, dtype=float))
    pts = np.stack([np.cos(p[:, 1]) * np.cos(p[:, 0]), np.cos(p[:, 1]) * np.sin(p[:, 0]), np.sin(p[:, 1])], -1)
    near = (grid @ pts.T >= math.cos(math.radians(30.0))).any(-1)
    return float((np.cos(e) * near).sum() / np.cos(e).sum())


# ----------------------------------------------------------------------------- separation
@pytest.mark.parametrize(
    ("gap", "stacked", "crowded"), [(2.0, 1, 1), (2.9, 1, 1), (3.1, 0, 1), (10.0, 0, 1), (14.9, 0, 1), (20.0, 0, 0)]
)
def test_same_band_pairs_by_angle(gap: float, stacked: int, crowded: int) -> None:
    card = critique(*pairs((30.0, 0.0), (30.0 + gap, 0.0)))
    assert (card.stacked_pairs, card.crowded_pairs) == (stacked, crowded)


def test_pairs_use_the_great_circle_angle() -> None:
    # 20 deg of azimuth at el 80 is 3.47 deg of arc: not stacked, crowded
    card = critique(*pairs((0.0, 80.0), (20.0, 80.0)))
    assert (card.stacked_pairs, card.crowded_pairs) == (0, 1)
    assert card.pair_issues == ("guitar0~guitar1 3.5 deg",)


def test_different_bands_are_not_pairs() -> None:
    req = request([("gtr", "guitar"), ("hat", "hihat")])  # mid and high
    card = critique(req, scene(obj("gtr", "guitar", 30.0), obj("hat", "hihat", 31.0)))
    assert (card.stacked_pairs, card.crowded_pairs) == (0, 0)


def test_centred_low_end_shares_the_centre_but_other_stacks_count() -> None:
    req = request([("kick", "kick"), ("bass", "bass"), ("sub", "sub")])
    card = critique(req, scene(obj("kick", "kick", 0.0), obj("bass", "bass", 0.0), obj("sub", "sub", 2.0, 1.0)))
    assert (card.stacked_pairs, card.crowded_pairs) == (0, 0)
    # a bass off the centre is no longer "by design"
    card = critique(req, scene(obj("kick", "kick", 0.0), obj("bass", "bass", 4.0), obj("sub", "sub", 30.0)))
    assert (card.stacked_pairs, card.crowded_pairs) == (0, 1)
    # two mid-band pads on the centre are stacked
    card = critique(*pairs((0.0, 0.0), (0.0, 0.0), cls="pad"))
    assert (card.stacked_pairs, card.crowded_pairs) == (1, 1)


def test_pairs_over_the_whole_motion_path() -> None:
    # the synth starts 90 deg away but its orbit passes through the guitar at t = 0.25: a
    # crossing that lasts an instant is not masking (it must last >= 1/8 of the section)
    req = request([("gtr", "guitar"), ("syn", "synth")])
    moving = obj("syn", "synth", 0.0, motion=orbit(0.0, 8.0))
    card = critique(req, scene(obj("gtr", "guitar", 90.0), moving))
    assert (card.stacked_pairs, card.crowded_pairs) == (0, 0)
    # a pan that ends on the guitar and stays there for the last quarter is stacked
    pan = [
        {"t": 0.0, "az_deg": 0.0, "el_deg": 0.0, "dist_m": 2.0},
        {"t": 0.75, "az_deg": 90.0, "el_deg": 0.0, "dist_m": 2.0},
        {"t": 1.0, "az_deg": 90.0, "el_deg": 0.0, "dist_m": 2.0},
    ]
    card = critique(req, scene(obj("gtr", "guitar", 90.0), obj("syn", "synth", 0.0, motion=pan)))
    assert (card.stacked_pairs, card.crowded_pairs) == (1, 1)


def test_an_objects_band_is_that_of_its_summed_stems() -> None:
    # hihat (0, .15, .85) + pad (.2, .6, .2) = (.2, .75, 1.05): a high object, stacked with a cymbal
    req = request([("hat", "hihat"), ("pad", "pad"), ("cym", "cymbal")])
    grouped = obj("hat", "hihat", 40.0, stems=["hat", "pad"])
    card = critique(req, scene(grouped, obj("cym", "cymbal", 41.0)))
    assert card.stacked_pairs == 1


# ----------------------------------------------------------------------------- front collapse
def test_front30_and_zero_azimuth_shares() -> None:
    req = request([("vox", "lead_vocal"), ("kick", "kick"), ("pad", "pad"), ("gtr", "guitar"), ("str", "strings")])
    s = scene(
        obj("vox", "lead_vocal", 0.0),
        obj("kick", "kick", 0.0),
        obj("pad", "pad", 0.0, 30.0),
        obj("gtr", "guitar", 20.0),
        obj("str", "strings", 90.0),
    )
    card = critique(req, s)
    assert card.front30_share == pytest.approx(4 / 5)
    assert card.zero_az_share == pytest.approx(1 / 3)  # pad of (pad, gtr, str); lead and kick own the centre


def test_front30_is_time_averaged() -> None:
    # a pan 0 -> 90 is within 30 deg for t <= 1/3: 11 of the 33 sample times
    pan = [
        {"t": 0.0, "az_deg": 0.0, "el_deg": 0.0, "dist_m": 2.0},
        {"t": 1.0, "az_deg": 90.0, "el_deg": 0.0, "dist_m": 2.0},
    ]
    card = critique(request([("fx", "fx")]), scene(obj("fx", "fx", 0.0, motion=pan)))
    assert card.front30_share == pytest.approx(11 / 33)


@pytest.mark.parametrize(
    ("dirs", "expected"),
    [
        ([(0.0, 0.0), (90.0, 0.0), (180.0, 0.0), (-90.0, 0.0)], 1.0),
        ([(90.0, 0.0), (-90.0, 0.0), (0.0, 90.0), (0.0, -90.0)], 1.0),
        ([(30.0, 10.0), (30.0, 10.0)], 0.0),
        ([(0.0, 0.0), (90.0, 0.0)], 1.0 - math.sqrt(0.5)),
    ],
)
def test_spread_index(dirs: list[tuple[float, float]], expected: float) -> None:
    card = critique(*pairs(*dirs, cls="pad"))
    assert card.spread_index == pytest.approx(expected, abs=1e-9)


# ----------------------------------------------------------------------------- coverage
def test_coverage_of_one_point_overhead_is_the_cap_area() -> None:
    # a 30 deg cap over the zenith: (1 - cos 30) / (1 - sin -10) of the upper sphere = 0.1142
    card = critique(*pairs((0.0, 90.0)))
    cap = (1.0 - math.cos(math.radians(30.0))) / (1.0 - math.sin(math.radians(-10.0)))
    assert card.coverage_static == pytest.approx(cap, abs=0.01)
    assert card.coverage_motion == card.coverage_static


@pytest.mark.parametrize("n", [4, 8])
def test_coverage_of_a_ring(n: int) -> None:
    dirs = [(360.0 * k / n - 180.0 + 1e-9, 0.0) for k in range(n)]
    card = critique(*pairs(*dirs, cls="pad"))
    assert card.coverage_static == pytest.approx(dense_coverage(dirs), abs=0.01)  # 0.325 / 0.536


def test_coverage_counts_the_spread_of_a_wide_object() -> None:
    # width 1: +-60 deg along the horizon; reference: the continuous arc
    req = request([("pad", "pad")])
    card = critique(req, scene(obj("pad", "pad", 0.0, width=1.0)))
    arc = [(float(a), 0.0) for a in np.arange(-60.0, 60.01, 0.5)]
    assert card.coverage_static == pytest.approx(dense_coverage(arc), abs=0.012)  # 0.273
    point = critique(req, scene(obj("pad", "pad", 0.0))).coverage_static
    assert point == pytest.approx(dense_coverage([(0.0, 0.0)]), abs=0.01)  # 0.081


def test_coverage_spread_follows_the_tangent_overhead() -> None:
    # at el 80 a +-60 deg spread along the tangent still spans 120 deg of arc, not 20
    req = request([("pad", "pad")])
    wide = critique(req, scene(obj("pad", "pad", 0.0, 80.0, width=1.0))).coverage_static
    point = critique(req, scene(obj("pad", "pad", 0.0, 80.0))).coverage_static
    assert wide > 2.5 * point


def test_coverage_over_motion_is_the_union_over_the_path() -> None:
    # a full orbit on the horizon sweeps the band -30..30 deg (within the el >= -10 cap: 0.574)
    card = critique(request([("fx", "fx")]), scene(obj("fx", "fx", 0.0, motion=orbit(0.0, 8.0))))
    band = (math.sin(math.radians(30.0)) - math.sin(math.radians(-10.0))) / (1.0 - math.sin(math.radians(-10.0)))
    assert card.coverage_motion == pytest.approx(band, abs=0.015)
    assert card.coverage_static == pytest.approx(dense_coverage([(0.0, 0.0)]), abs=0.01)


# ----------------------------------------------------------------------------- shares
def test_rear_height_and_width_shares() -> None:
    req = request([(f"p{i}", "pad") for i in range(4)])
    s = scene(
        obj("p0", "pad", 150.0, width=0.2),
        obj("p1", "pad", -115.0, width=0.4),
        obj("p2", "pad", 100.0, 30.0, width=0.6),
        obj("p3", "pad", 0.0, 24.9, width=0.8),
    )
    card = critique(req, s)
    assert (card.rear_share, card.height_share, card.mean_width) == pytest.approx((0.5, 0.25, 0.5))


# ----------------------------------------------------------------------------- anchors
def test_anchored_lead_and_low_end_pass() -> None:
    req = request([("vox", "lead_vocal"), ("kick", "kick"), ("bass", "bass")])
    s = scene(obj("vox", "lead_vocal", 0.0, 10.0, width=0.1), obj("kick", "kick", 0.0), obj("bass", "bass", 0.0))
    card = critique(req, s)
    assert card.anchors_ok and card.anchor_issues == ()


@pytest.mark.parametrize(
    ("o", "issue"),
    [
        (obj("vox", "lead_vocal", 20.0), "lead vox 20 deg from front"),
        (obj("vox", "lead_vocal", 0.0, 13.0), "lead vox 13 deg from front"),
        (obj("vox", "lead_vocal", 0.0, width=0.5), "lead vox width 0.5"),
        (obj("vox", "lead_vocal", 0.0, motion=orbit(0.0, 8.0)), "lead vox moves"),
        (obj("bass", "bass", 10.0), "low bass 10 deg from centre"),
        (obj("bass", "bass", 0.0, width=0.3), "low bass width 0.3"),
        (obj("bass", "bass", 0.0, 16.0), "low bass at el 16"),
        (obj("snare", "snare", 150.0), "key snare at |az| 150"),
    ],
)
def test_anchor_issues(o: dict, issue: str) -> None:
    req = request([("vox", "lead_vocal"), ("bass", "bass"), ("snare", "snare")])
    rest = [
        x
        for x in (obj("vox", "lead_vocal", 0.0), obj("bass", "bass", 0.0), obj("snare", "snare", 5.0))
        if x["id"] != o["id"]
    ]
    card = critique(req, scene(o, *rest))
    assert not card.anchors_ok
    assert any(i.startswith(issue) for i in card.anchor_issues), card.anchor_issues


def test_what_the_text_or_a_rule_asked_is_not_an_anchor_issue() -> None:
    req = request([("vox", "lead_vocal", "slightly left"), ("snare", "snare", "behind me")])
    card = critique(req, scene(obj("vox", "lead_vocal", 20.0), obj("snare", "snare", 180.0)))
    assert card.anchors_ok, card.anchor_issues
    ruled = request([("snare", "snare")], [{"type": "zone", "track_id": "snare", "mode": "inside", "region": "rear"}])
    assert critique(ruled, scene(obj("snare", "snare", 150.0))).anchors_ok


def test_the_lead_without_a_vocal_is_the_solo_lead() -> None:
    solo = request([{"id": "lead", "class": "synth_lead", "leadness": 0.9}, ("gtr", "guitar")])
    assert not critique(solo, scene(obj("lead", "synth_lead", 40.0), obj("gtr", "guitar", -40.0))).anchors_ok
    minor = request([{"id": "lead", "class": "synth_lead", "leadness": 0.5}, ("gtr", "guitar")])
    assert critique(minor, scene(obj("lead", "synth_lead", 40.0), obj("gtr", "guitar", -40.0))).anchors_ok


def test_toms_are_not_low_end_to_centre() -> None:
    # a tom's low and mid bands tie: it is not the low end mono_low_end centres
    req = request([("tom", "tom")])
    assert critique(req, scene(obj("tom", "tom", 40.0, width=0.3))).anchors_ok


# ----------------------------------------------------------------------------- height
def test_low_band_material_stays_down() -> None:
    low_pad = {"id": "pad", "class": "pad", "band_energy": {"low": 0.7, "mid": 0.2, "high": 0.1}}
    req = request([low_pad, ("hat", "hihat")])
    card = critique(req, scene(obj("pad", "pad", 60.0, 25.0), obj("hat", "hihat", 30.0, 40.0)))
    assert not card.height_ok and card.height_issues == ("low pad at el 25 (practice < 20)",)
    assert card.anchors_ok  # a pad is not the low end to centre
    assert card.height_band_order == pytest.approx(40.0 - 25.0)
    ok = critique(req, scene(obj("pad", "pad", 60.0, 19.0), obj("hat", "hihat", 30.0, 40.0)))
    assert ok.height_ok and ok.height_band_order == pytest.approx(21.0)


def test_height_band_order_is_zero_without_both_bands() -> None:
    assert critique(*pairs((0.0, 40.0), (90.0, 10.0), cls="hihat")).height_band_order == 0.0


# ----------------------------------------------------------------------------- depth
@pytest.mark.parametrize(
    ("reverb", "expected"),
    [((0.1, 0.2, 0.3, 0.4), 1.0), ((0.4, 0.3, 0.2, 0.1), -1.0), ((0.1, 0.3, 0.2, 0.4), 0.8), ((0.2,) * 4, 0.0)],
)
def test_depth_rank_correlation(reverb: tuple[float, ...], expected: float) -> None:
    req = request([(f"p{i}", "pad") for i in range(4)])
    s = scene(*(obj(f"p{i}", "pad", 90.0 * i - 135.0, dist=1.0 + i, reverb=r) for i, r in enumerate(reverb)))
    assert critique(req, s).depth_corr == pytest.approx(expected)


def test_depth_needs_three_objects() -> None:
    req = request([("a", "pad"), ("b", "pad")])
    assert (
        critique(
            req, scene(obj("a", "pad", 90.0, dist=1.0, reverb=0.1), obj("b", "pad", -90.0, dist=5.0, reverb=0.5))
        ).depth_corr
        == 0.0
    )


# ----------------------------------------------------------------------------- motion
@pytest.mark.parametrize(
    ("period_bars", "el", "speed"),
    [(4.0, 0.0, 45.0), (8.0, 0.0, 22.5), (4.0, 30.0, 45.0 * math.cos(math.radians(30.0)))],
)
def test_orbit_speed(period_bars: float, el: float, speed: float) -> None:
    # 120 bpm 4/4: a bar is 2 s, so an orbit of P bars turns 360 / (2 P) deg/s (times cos el of arc)
    card = critique(request([("fx", "fx")]), scene(obj("fx", "fx", 90.0, el, motion=orbit(90.0, period_bars, el))))
    assert card.max_speed_deg_s == pytest.approx(speed, rel=0.02)
    assert (card.moving, card.key_moving, card.motion_ok) == (1, 0, True)


def test_too_fast_unless_asked() -> None:
    fast = scene(obj("fx", "fx", 90.0, motion=orbit(90.0, 1.0)))  # 180 deg/s
    card = critique(request([("fx", "fx")]), fast)
    assert card.max_speed_deg_s == pytest.approx(180.0, rel=0.02)
    assert not card.motion_ok and card.motion_issues == ("fx 180 deg/s (cap 60)",)
    assert critique(request([("fx", "fx", "orbits around me once every bar")]), fast).motion_ok
    rule = {"type": "motion", "track_id": "fx", "max_deg_per_s": 200}
    assert critique(request([("fx", "fx")], [rule]), fast).motion_ok


def test_key_elements_stay_still() -> None:
    pan = [
        {"t": 0.0, "az_deg": 0.0, "el_deg": 0.0, "dist_m": 2.0},
        {"t": 1.0, "az_deg": 10.0, "el_deg": 0.0, "dist_m": 2.0},
    ]
    card = critique(request([("kick", "kick")]), scene(obj("kick", "kick", 0.0, motion=pan)))
    assert (card.moving, card.key_moving, card.motion_ok) == (1, 1, False)
    assert "key kick moves unasked" in card.motion_issues


def test_vectorised_speed_equals_the_segment_loop() -> None:
    # gravity.motion.path_speed_deg_s takes every segment at once; the loop it replaced, here
    def looped(kf: np.ndarray, section_s: float, substeps: int = 8) -> float:
        peak = 0.0
        for (t0, *_), (t1, *_) in zip(kf[:-1], kf[1:], strict=True):
            if t1 <= t0:
                continue
            ts = np.linspace(t0, t1, substeps + 1)
            p = positions_at(kf, ts)
            ang = angle_between(p[:-1, 0], p[:-1, 1], p[1:, 0], p[1:, 1])
            peak = max(peak, float(np.max(ang / (np.diff(ts) * section_s))))
        return peak

    kfs = [
        expand(Motion("orbit", {"period_bars": 2}), (30.0, 10.0, 3.0), 8),
        expand(Motion("ping_pong", {"from_az": 90.0, "to_az": -90.0, "period_bars": 1}), (90.0, 0.0, 3.0), 8),
        expand(Motion("fly_over"), (0.0, 0.0, 3.0), 8),
        expand(Motion("rise"), (45.0, 0.0, 3.0), 8),
    ]
    for kf in kfs:
        k = keyframes_array(kf)
        assert path_speed_deg_s(k, 16.0) == pytest.approx(looped(k, 16.0), rel=1e-9)


# ----------------------------------------------------------------------------- adherence
def test_nothing_asked_is_full_adherence() -> None:
    card = critique(*pairs((30.0, 0.0)))
    assert (card.adherence, card.adherence_issues) == (1.0, ())


@pytest.mark.parametrize(("az", "expected"), [(-90.0, 0.0), (90.0, 1.0), (71.0, 1.0), (69.0, 0.0)])
def test_hard_left_hint(az: float, expected: float) -> None:
    card = critique(request([("gtr", "guitar", "hard left")]), scene(obj("gtr", "guitar", az)))
    assert card.adherence == expected
    assert card.rank_key == (card.adherence, card.score)


def test_adherence_per_field() -> None:
    req = request([("pad", "pad", "slightly above, far away")])  # el 20, 8 m
    assert critique(req, scene(obj("pad", "pad", 60.0, 20.0, dist=8.0))).adherence == 1.0
    half = critique(req, scene(obj("pad", "pad", 60.0, 20.0, dist=2.0)))
    assert half.adherence == 0.5 and half.adherence_issues == ("pad: asked 8 m, is 2 m",)
    assert critique(req, scene(obj("pad", "pad", 60.0, 0.0, dist=5.4))).adherence == 0.5  # 8 / 5.4 < 1.5


def test_motion_adherence() -> None:
    req = request([("fx", "fx", "orbits around me")])
    assert critique(req, scene(obj("fx", "fx", 90.0, motion=orbit(90.0, 4.0)))).adherence == 1.0
    still = critique(req, scene(obj("fx", "fx", 90.0)))
    assert still.adherence == 0.0 and still.adherence_issues == ("fx: asked orbit, is static",)
    assert critique(request([("fx", "fx", "stays still")]), scene(obj("fx", "fx", 90.0))).adherence == 1.0


def test_a_rule_overrides_the_hint_and_is_not_held_against_the_scene() -> None:
    mono = [{"type": "mono_low_end", "hz_below": 120}]
    req = request([("bass", "bass", "hard left")], mono)
    assert critique(req, scene(obj("bass", "bass", 0.0))).adherence == 1.0


def test_a_grouped_stem_is_judged_at_its_object() -> None:
    req = request([("g1", "guitar", "hard left"), ("g2", "guitar")])
    assert critique(req, scene(obj("g1", "guitar", 90.0, stems=["g1", "g2"]))).adherence == 1.0
    assert critique(req, scene(obj("g1", "guitar", -90.0, stems=["g1", "g2"]))).adherence == 0.0


def _placement(**kw: Any) -> SimpleNamespace:
    base = {"az_deg": None, "el_deg": None, "dist_m": None, "width": None, "motion": None}
    return SimpleNamespace(**{**base, **kw})


def test_avoid_regions_max_width_and_arcs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The phrase parser's newer fields (read with getattr), fed directly."""
    req = request([("a", "pad"), ("b", "pad")])
    hints = {"a": _placement(avoid=("rear",), max_width=0.5), "b": _placement(az_deg=180.0, arc_deg=110.0)}
    monkeypatch.setattr(critic_mod, "_hints", lambda _request: hints)
    good = critique(req, scene(obj("a", "pad", 90.0, width=0.5), obj("b", "pad", -130.0)))
    assert good.adherence == 1.0, good.adherence_issues
    bad = critique(req, scene(obj("a", "pad", 150.0, width=0.6), obj("b", "pad", -90.0)))
    assert bad.adherence == 0.0
    assert bad.adherence_issues == (
        "a: asked to avoid rear, is there",
        "a: asked width <= 0.5, is 0.6",
        "b: asked az +180, is -90",
    )
    # "each side": az 90 with a 180 deg arc is a mirrored pair, so -90 is on the phrase
    hints["b"] = _placement(az_deg=90.0, arc_deg=180.0)
    assert critique(req, scene(obj("a", "pad", 90.0), obj("b", "pad", -90.0))).adherence == 1.0


def test_avoid_checks_the_whole_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(critic_mod, "_hints", lambda _request: {"fx": _placement(avoid=("rear",))})
    card = critique(request([("fx", "fx")]), scene(obj("fx", "fx", 90.0, motion=orbit(90.0, 8.0))))
    assert card.adherence == 0.0


# ----------------------------------------------------------------------------- score, contrast
def verse_and_chorus() -> tuple[Request, dict, Request, dict]:
    stems = [("vox", "lead_vocal"), ("gtr1", "guitar"), ("gtr2", "guitar"), ("pad", "pad"), ("bv", "backing_vocal")]
    verse = scene(
        obj("vox", "lead_vocal", 0.0, width=0.1),
        obj("gtr1", "guitar", 30.0, width=0.2),
        obj("gtr2", "guitar", -30.0, width=0.2),
        obj("pad", "pad", 0.0, 20.0, width=0.4),
        obj("bv", "backing_vocal", 15.0, 5.0, width=0.2),
    )
    chorus = scene(
        obj("vox", "lead_vocal", 0.0, width=0.1),
        obj("gtr1", "guitar", 70.0, width=0.4),
        obj("gtr2", "guitar", -70.0, width=0.4),
        obj("pad", "pad", 180.0, 35.0, width=0.9),
        obj("bv", "backing_vocal", 130.0, 10.0, width=0.4),
    )
    return request(stems), verse, request(stems, section="chorus"), chorus


def test_contrast_chorus_bigger_than_verse() -> None:
    rv, verse, rc, chorus = verse_and_chorus()
    a, b = critique(rv, verse), critique(rc, chorus)
    c = contrast(a, b)
    assert c.bigger
    assert c.d_width == pytest.approx(0.22)
    assert c.d_rear == pytest.approx(0.4) and c.d_height == pytest.approx(0.2) and c.d_front30 == pytest.approx(-0.8)
    assert c.d_coverage > 0.15
    assert not contrast(b, a).bigger
    assert not contrast(a, a).bigger  # the same scene twice is no contrast


def test_score_weights_and_ranking() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)
    rv, verse, _, _ = verse_and_chorus()
    good = critique(rv, verse)
    stacked = copy.deepcopy(verse)
    stacked["objects"][2] = obj("gtr2", "guitar", 30.0, width=0.2)  # on top of gtr1
    worse = critique(rv, stacked)
    assert 0.0 <= worse.score < good.score <= 1.0
    assert dict(good.parts)["separation"] == 1.0 and dict(worse.parts)["separation"] == 0.5
    assert worse.score == pytest.approx(sum(WEIGHTS[k] * v for k, v in worse.parts))


# ----------------------------------------------------------------------------- contract
def test_pure_and_deterministic() -> None:
    rv, verse, _, _ = verse_and_chorus()
    s = copy.deepcopy(verse)
    s["objects"][3]["motion"] = orbit(0.0, 4.0, 20.0)
    before_scene, before_req = copy.deepcopy(s), copy.deepcopy(dict(rv.raw))
    cards = [critique(rv, s) for _ in range(3)]
    assert s == before_scene and dict(rv.raw) == before_req
    assert cards[0] == cards[1] == cards[2]
    assert critique(rv, Scene.from_dict(s)).to_dict() == cards[0].to_dict()


def test_to_dict_and_summary() -> None:
    rv, verse, _, _ = verse_and_chorus()
    card = critique(rv, verse)
    d = card.to_dict()
    assert list(d)[:4] == ["score", "parts", "n_objects", "stacked_pairs"]
    assert list(d["parts"]) == list(WEIGHTS)
    assert all(round(v, 3) == v for v in d.values() if isinstance(v, float))
    assert json.loads(json.dumps(d)) == d
    line = card.summary()
    assert "\n" not in line and line.startswith(f"critic {card.score:.2f} | stacked 0 crowded ")
    assert line.endswith("| adherence 1.00") and "anchors ok" in line
    nums = card.numbers()
    assert nums["anchors_ok"] == 1.0 and nums["part_separation"] == 1.0 and "anchor_issues" not in nums


def test_empty_scene() -> None:
    card = critique(request([("a", "pad")]), scene())
    assert card.n_objects == 0 and card.coverage_static == 0.0 and 0.0 <= card.score <= 1.0


def big_scene() -> tuple[Request, dict]:
    """24 stems, 5 of them moving (two orbits, a ping-pong, a rise, an approach), some wide."""
    classes = [
        "lead_vocal", "backing_vocal", "backing_vocal", "kick", "snare", "hihat", "bass", "pad", "pad", "guitar",
        "guitar", "keys", "piano", "strings", "strings", "brass", "synth", "arp", "pluck", "fx", "riser",
        "ambience", "percussion", "tom",
    ]  # fmt: skip
    ids = [f"s{i}_{c}" for i, c in enumerate(classes)]
    req = request(
        [(i, c) for i, c in zip(ids, classes, strict=True)], [{"type": "mono_low_end", "hz_below": 120}], section="drop"
    )
    objs = []
    for n, (i, c) in enumerate(zip(ids, classes, strict=True)):
        az, el = (0.0, 0.0) if c in ("lead_vocal", "kick", "bass") else (wrap_az(15.0 * n * 7), 10.0 * (n % 5))
        motion = None
        if c in ("fx", "percussion"):
            motion = orbit(az, 4.0, el)
        elif c == "arp":
            motion = expand(
                Motion("ping_pong", {"from_az": 60.0, "to_az": -60.0, "period_bars": 1}), (60.0, el, 3.0), 8
            )
        elif c == "riser":
            motion = expand(Motion("rise"), (az, 0.0, 4.0), 8)
        elif c == "ambience":
            motion = expand(Motion("approach"), (az, el, 3.0), 8)
        k0 = motion[0] if motion else {"az_deg": az, "el_deg": el, "dist_m": 2.0 + n % 4}
        objs.append(
            obj(
                i,
                c,
                k0["az_deg"],
                k0["el_deg"],
                k0["dist_m"],
                width=0.1 * (n % 8),
                reverb=0.05 * (n % 9),
                motion=motion,
            )
        )
    return req, scene(*objs)


def test_speed_for_24_stems_benchmark() -> None:
    req, s = big_scene()
    card = critique(req, s)
    assert card.n_objects == 24 and card.moving == 5
    assert critique(req, Scene.from_dict(s)) == card
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        critique(req, s)
        times.append(time.perf_counter() - t0)
    print(f"\ncritique, 24 stems, 5 moving: median {np.median(times) * 1e3:.2f} ms (budget 5 ms); {card.summary()}")


# ----------------------------------------------------------------------------- CLI
def write(tmp_path: Path, name: str, doc: Any) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return str(p)


def cli_files(tmp_path: Path) -> tuple[str, str, str, str]:
    rv, verse, rc, chorus = verse_and_chorus()
    return (
        write(tmp_path, "verse.json", verse),
        write(tmp_path, "req.json", dict(rv.raw)),
        write(tmp_path, "chorus.json", chorus),
        write(tmp_path, "req2.json", dict(rc.raw)),
    )


def test_cli_prints_the_card(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verse, req, _, _ = cli_files(tmp_path)
    assert main(["critique", verse, "--request", req]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{verse}: critic ")
    assert any(line.split()[:3] == ["stacked", "pairs", "0"] for line in out)
    assert any("Lee AES 9325" in line for line in out)


def test_cli_json_and_contrast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verse, req, chorus, req2 = cli_files(tmp_path)
    assert main(["critique", verse, "--request", req, "--json", "--against", chorus, "--request2", req2]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["card", "against", "contrast"] and doc["contrast"]["bigger"] is True
    assert doc["card"]["stacked_pairs"] == 0 and doc["card"]["anchors_ok"] is True
    assert main(["critique", verse, "--request", req, "--against", chorus]) == 0
    assert capsys.readouterr().out.rstrip().splitlines()[-1].startswith("contrast bigger | cover +")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "nope.json: $: cannot read file"),
        ("broken", "broken.json: $: invalid JSON"),
        ("not_a_scene", "req.json: $: 'bed' is a required property"),
        ("foreign_stem", "objects[0].stems: stem 'vox' is not in the request"),
    ],
)
def test_cli_bad_input_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, message: str
) -> None:
    verse, req, _, _ = cli_files(tmp_path)
    (tmp_path / "broken.json").write_text("{")
    scene_path = {
        "missing": str(tmp_path / "nope.json"),
        "broken": str(tmp_path / "broken.json"),
        "not_a_scene": req,
        "foreign_stem": verse,
    }[case]
    req_path = write(tmp_path, "other.json", dict(request([("x", "pad")]).raw)) if case == "foreign_stem" else req
    assert main(["critique", scene_path, "--request", req_path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gravity: error: ") and message in err, err


def test_cli_request2_needs_against(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    verse, req, _, req2 = cli_files(tmp_path)
    assert main(["critique", verse, "--request", req, "--request2", req2]) == 2
    assert "--request2 needs --against" in capsys.readouterr().err


def test_scene_logs_the_summary(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level("INFO", logger="gravity"):
        assert main(["-v", "scene", str(ROOT / "examples/sample_input.json"), "--planner", "planner"]) == 0
    capsys.readouterr()
    assert any(r.getMessage().startswith("critic ") and "| adherence " in r.getMessage() for r in caplog.records)


def test_card_fields_are_documented() -> None:
    doc = Card.__doc__ or ""
    for name in Card.__dataclass_fields__:
        assert name in doc, name


def test_critique_help_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from gravity.cli import build_parser; build_parser(['critique', '--help']); "
        "print(sorted(m for m in ('numpy', 'gravity.critic', 'gravity.plan') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert r.stdout.strip() == "[]"


def test_motion_is_judged_as_it_plays_in_this_section_and_layout() -> None:
    """An 8-bar ping-pong in a 4-bar section is one sweep (a pan); a rise in a flat 5.1 stays
    level: the scene that plays the asked move as it can is not held to the name.
    """
    four_bars = {"global": {"bpm": 120, "section_bars": 4}}
    req = request([("sn", "snare", "ping-pong between the back and front left every 8 bars")], **four_bars)
    sweep = keyframes_array(
        expand(Motion("ping_pong", {"from_az": 180.0, "to_az": 45.0, "period_bars": 8}), (180.0, 0.0, 2.0), 4)
    )
    mv = [{"t": float(t), "az_deg": float(a), "el_deg": float(e), "dist_m": float(d)} for t, a, e, d in sweep]
    card = critique(req, scene(obj("sn", "snare", 180.0, motion=mv)))
    assert card.adherence == 1.0, card.adherence_issues
    flat = request([("gtr", "guitar", "rising up, behind")], fmt="5.1")
    assert critique(flat, scene(obj("gtr", "guitar", 180.0))).adherence == 1.0
    still = critique(request([("gtr", "guitar", "rising up, behind")]), scene(obj("gtr", "guitar", 180.0)))
    assert still.adherence_issues == ("gtr: asked rise, is static",)


def test_an_asked_height_or_distance_with_a_move_is_where_the_path_passes() -> None:
    """A rise asked "up high" is met where it ends up high, an approach asked "mid distance"
    where it ends at 3 m; a rise that never gets there is not.
    """
    req = request([("keys", "keys", "up high, rising up")])  # el 60
    rise = [
        {"t": 0.0, "az_deg": 30.0, "el_deg": 15.0, "dist_m": 2.0},
        {"t": 1.0, "az_deg": 30.0, "el_deg": 60.0, "dist_m": 2.0},
    ]
    assert critique(req, scene(obj("keys", "keys", 30.0, 15.0, motion=rise))).adherence == 1.0
    low = [{**k, "el_deg": k["el_deg"] - 25.0} for k in rise]  # tops out at 35, 25 short
    assert critique(req, scene(obj("keys", "keys", 30.0, 0.0, motion=low))).adherence == 0.5
    near = request([("hh", "hihat", "mid distance, approaching")])  # 3 m
    appr = [
        {"t": 0.0, "az_deg": 30.0, "el_deg": 0.0, "dist_m": 8.0},
        {"t": 1.0, "az_deg": 30.0, "el_deg": 0.0, "dist_m": 3.0},
    ]
    assert critique(near, scene(obj("hh", "hihat", 30.0, dist=8.0, motion=appr))).adherence == 1.0


def test_a_stem_grouped_with_an_anchored_stem_follows_the_anchor() -> None:
    """The budget put the snare in the lead vocal's object and an anchor rule centres that
    object: the snare's "at 2 o'clock" lost to a hard rule, not to the scene.
    """
    anchor = [{"type": "anchor", "track_class": "lead_vocal", "az_deg": 0, "el_deg": 0}]
    req = request([("vox", "lead_vocal"), ("sn", "snare", "at 2 o'clock")], anchor)
    assert critique(req, scene(obj("vox", "lead_vocal", 0.0, stems=["vox", "sn"]))).adherence == 1.0
