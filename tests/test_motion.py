"""Motion patterns expand to keyframes that match their definition; positions at time t."""

from __future__ import annotations

import numpy as np
import pytest

from gravity.motion import (
    Motion,
    angle_between,
    detect_motion,
    expand,
    keyframes_array,
    path_speed_deg_s,
    positions_at,
    scene_keyframes,
    section_seconds,
    wrap_az,
)


def kf(motion: Motion, base=(0.0, 0.0, 2.0), bars=8) -> np.ndarray:
    return keyframes_array(expand(motion, base, bars))


def unwrapped_az(k: np.ndarray, n: int = 401) -> np.ndarray:
    return np.unwrap(np.radians(positions_at(k, np.linspace(0, 1, n))[:, 0])) * 180 / np.pi


def test_wrap_and_angles():
    assert wrap_az(-180) == 180 and wrap_az(270) == -90 and wrap_az(180) == 180 and wrap_az(-190) == 170
    assert angle_between(90, 0, -90, 0) == pytest.approx(180)
    assert angle_between(0, 90, 123, 90) == pytest.approx(0, abs=1e-9)
    assert angle_between(10, 0, 10, 0) == 0


def test_section_seconds():
    assert section_seconds(120, "4/4", 8) == 16.0
    assert section_seconds(90, "6/8", 8) == pytest.approx(32.0)


def test_shortest_path_through_the_back():
    k = np.array([[0, 170, 0, 2], [1, -170, 0, 2]], float)
    assert positions_at(k, 0.5)[0] == pytest.approx(180)
    assert np.all(np.abs(positions_at(k, np.linspace(0, 1, 11))[:, 0]) >= 170)


def test_static():
    k = kf(Motion("static"), (30, 10, 3))
    assert np.all(k[:, 1:] == [30, 10, 3]) and k[0, 0] == 0 and k[-1, 0] == 1


@pytest.mark.parametrize(("a", "b"), [(90, -90), (-90, 90), (60, -30), (135, -135)])
def test_pan_goes_from_a_to_b_monotonically(a, b):
    k = kf(Motion("pan", {"from_az": a, "to_az": b}))
    az = unwrapped_az(k)
    assert wrap_az(az[0]) == pytest.approx(a) and wrap_az(az[-1]) == pytest.approx(b)
    d = np.diff(az)
    assert np.all(d <= 1e-9) or np.all(d >= -1e-9)
    if abs(a) == 90 and a == -b:
        assert positions_at(k, 0.5)[0] == pytest.approx(0, abs=1e-6)  # left<->right passes in front
    assert np.max(np.abs(wrap_az(np.diff(k[:, 1])))) < 180  # no ambiguous half-turn between keyframes


@pytest.mark.parametrize(("direction", "sign"), [("ccw", 1), ("cw", -1)])
def test_orbit_direction_and_period_in_bars(direction, sign):
    k = kf(Motion("orbit", {"direction": direction, "period_bars": 4}), (20, 0, 2), bars=8)
    az = unwrapped_az(k)
    assert np.all(sign * np.diff(az) > 0)  # ccw = towards the left = azimuth increasing
    assert sign * (az[-1] - az[0]) == pytest.approx(720, abs=1e-6)  # 8 bars / 4 bars per turn
    assert positions_at(k, 0.5)[0] == pytest.approx(20)  # one revolution after 4 bars
    assert set(np.round(k[:, 0] * 8, 6)) <= set(np.round(np.arange(0, 8.01, 0.5), 6))  # on bar/half-bar lines
    assert np.max(np.abs(wrap_az(np.diff(k[:, 1])))) <= 90


def test_orbit_speed():
    k = kf(Motion("orbit", {"period_bars": 8}), bars=8)
    assert path_speed_deg_s(k, 16.0) == pytest.approx(360 / 16, rel=0.02)


def test_ping_pong_period():
    k = kf(Motion("ping_pong", {"from_az": 45, "to_az": -45, "period_bars": 2}), bars=8)
    t_bar = 1 / 8
    assert positions_at(k, 0)[0] == 45 and positions_at(k, t_bar)[0] == -45 and positions_at(k, 2 * t_bar)[0] == 45
    assert len(k) == 9


@pytest.mark.parametrize(
    ("name", "col", "rising"), [("rise", 2, True), ("fall", 2, False), ("approach", 3, False), ("recede", 3, True)]
)
def test_vertical_and_distance_patterns(name, col, rising):
    k = kf(Motion(name), (30, 0, 2))
    v = positions_at(k, np.linspace(0, 1, 50))[:, col - 1]
    assert np.all(np.diff(v) > 0) if rising else np.all(np.diff(v) < 0)
    assert np.all(k[:, 1] == 30)


def test_fly_over_passes_overhead():
    k = kf(Motion("fly_over", {"from_az": 0, "to_az": 180}), (0, 0, 3))
    p = positions_at(k, np.linspace(0, 1, 101))
    assert (
        p[0, 0] == 0 and p[-1, 0] == 180 and p[50, 1] > 80 and p[0, 1] == 0 and p[-1, 1] == pytest.approx(0, abs=1e-9)
    )


def test_motion_validates_names_and_params():
    with pytest.raises(ValueError, match="unknown motion pattern"):
        Motion("teleport")
    with pytest.raises(ValueError, match="takes"):
        Motion("orbit", {"from_az": 3})


def test_scene_keyframes_round_expand_to_scene_precision():
    base = (33.3333, 12.3456, 2.34567)
    orbit = Motion("orbit", {"direction": "cw", "period_bars": 3})
    full, keys = expand(orbit, base, 8), scene_keyframes(orbit, base, 8)
    assert [k["t"] for k in keys] == [k["t"] for k in full] and len(keys) == 12
    for k, f in zip(keys, full, strict=True):
        assert k["az_deg"] == round(f["az_deg"], 1) and abs(k["az_deg"] - f["az_deg"]) <= 0.05
        assert k["el_deg"] == 12.3 and k["dist_m"] == 2.35
    assert (
        scene_keyframes(None, base)
        == scene_keyframes(Motion("static"), base)
        == [
            {"t": 0.0, "az_deg": 33.3, "el_deg": 12.3, "dist_m": 2.35},
            {"t": 1.0, "az_deg": 33.3, "el_deg": 12.3, "dist_m": 2.35},
        ]
    )


def test_scene_keyframes_without_height_stay_flat():
    fly = Motion("fly_over", {"from_az": 0, "to_az": 180})
    high, flat = scene_keyframes(fly, (0, 0, 3), 8), scene_keyframes(fly, (0, 0, 3), 8, has_height=False)
    assert max(k["el_deg"] for k in high) == 88.0
    assert all(k["el_deg"] == 0.0 for k in flat)
    assert [(k["t"], k["az_deg"], k["dist_m"]) for k in flat] == [(k["t"], k["az_deg"], k["dist_m"]) for k in high]


def test_left_right_moves_pass_through_the_front():
    # keyframes 180 deg apart are ambiguous for the shortest path; a ping-pong or pan between
    # left and right goes through the front (a way-point is inserted), never behind the head
    t = np.linspace(0.0, 1.0, 401)
    for motion in (
        Motion("ping_pong", {"from_az": 90.0, "to_az": -90.0, "period_bars": 2}),
        Motion("ping_pong", {"from_az": 120.0, "to_az": -100.0, "period_bars": 4}),
        Motion("pan", {"from_az": 120.0, "to_az": -120.0}),
        Motion("pan", {"from_az": -90.0, "to_az": 90.0}),
    ):
        k = keyframes_array(expand(motion, (0.0, 10.0, 2.0), 8))
        az = positions_at(k, t)[:, 0]
        assert np.abs(az).max() <= max(abs(motion.params["from_az"]), abs(motion.params["to_az"])) + 1e-9, motion
        assert np.abs(az).min() <= 1.0, motion  # it crosses the front
        assert detect_motion(k, 8) == Motion(motion.pattern, _detected(motion)), motion
    # 160 deg apart is not ambiguous: no way-point, the keyframes alternate as before
    k = kf(Motion("ping_pong", {"from_az": 80.0, "to_az": -80.0, "period_bars": 2}))
    assert set(np.round(k[:, 1], 1)) == {80.0, -80.0}


def _detected(m: Motion) -> dict:
    """The parameters detect_motion reports back (floats, the period in bars)."""
    return {k: float(v) for k, v in m.params.items() if k in ("from_az", "to_az", "period_bars")}
