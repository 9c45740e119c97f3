"""Tests for gravity.plot: geometry, what is drawn where, the raster and SVG, atomic saving, robustness."""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import gravity.plot as gp
from gravity.motion import Motion, expand, keyframes_array, positions_at, wrap_az
from gravity.plot import (
    DPI,
    FAMILY_COLORS,
    FIGSIZE_IN,
    PATH_SAMPLES,
    Box,
    Circle,
    Line,
    Plot,
    Text,
    elevation_view_xy,
    plot_scene,
    radial_scale,
    top_view_xy,
    width_to_marker_area,
)
from gravity.vocab import STEM_CLASSES, family_of

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PT = DPI / 72.0  # pixels per point


# ----------------------------------------------------------------------------- fixtures


def obj(oid: str, cls: str, az: float, el: float, dist: float, width: float = 0.2, **extra: Any) -> dict[str, Any]:
    o: dict[str, Any] = {
        "id": oid,
        "class": cls,
        "az_deg": az,
        "el_deg": el,
        "dist_m": dist,
        "width": width,
        "gain_db": 0.0,
        "reverb_send": 0.2,
        "early_reflections": 0.2,
    }
    o.update(extra)
    return o


def scene_of(objects: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "version": "1.0",
        "bed": {"layout": "7.1.4", "loudness_target_lufs": -14, "room_preset": "club_medium"},
        "objects": objects,
    }
    s.update(extra)
    return s


def rich_scene() -> dict[str, Any]:
    """12 objects: groups, an orbit, a pan, a rise, a fly-over and an elevated pad pair."""
    return scene_of(
        [
            obj("v1", "lead_vocal", 0, 10, 1.6, 0.15, motion=expand(Motion("static"), (0, 10, 1.6))),
            obj("bv", "backing_vocal", 0, 5, 2.5, 0.6, stems=["bv1", "bv2", "bv3", "bv4"]),
            obj("kick", "kick", 0, 0, 2.0, 0.05),
            obj("bass", "bass", 0, -5, 2.2, 0.1),
            obj("drums", "drum_loop", 0, 0, 3.0, 0.5, stems=["snare", "hats", "perc"]),
            obj("pad_L", "pad", 60, 35, 3.5, 0.7),
            obj("pad_R", "pad", -60, 35, 3.5, 0.7),
            obj(
                "arp",
                "arp",
                90,
                15,
                2.5,
                0.2,
                motion=expand(Motion("orbit", {"direction": "cw", "period_bars": 4}), (90, 15, 2.5), 8),
            ),
            obj(
                "gtr",
                "guitar",
                90,
                0,
                3.0,
                0.3,
                motion=expand(Motion("pan", {"from_az": 90, "to_az": -90}), (90, 0, 3.0)),
            ),
            obj(
                "riser",
                "riser",
                150,
                -10,
                6.0,
                0.4,
                motion=expand(Motion("rise", {"from_el": -10, "to_el": 60}), (150, -10, 6.0)),
            ),
            obj("amb", "ambience", 180, 20, 12.0, 1.0),
            obj(
                "fly",
                "fx",
                0,
                0,
                4.0,
                0.1,
                motion=expand(Motion("fly_over", {"from_az": 0, "to_az": 180}), (0, 0, 4.0)),
            ),
        ],
        timing={"bpm": 128, "time_signature": "4/4", "section_bars": 8, "section": "drop"},
        constraints_applied=["anchor:lead_vocal@0/10/1.6", "mono_low_end<120Hz"],
    )


def many_scene(n: int = 64, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return scene_of(
        [
            obj(
                f"stem_{i:02d}",
                STEM_CLASSES[i % len(STEM_CLASSES)],
                float(rng.uniform(-179, 180)),
                float(rng.uniform(-30, 60)),
                float(rng.uniform(0.5, 20)),
                float(rng.uniform(0, 1)),
            )
            for i in range(n)
        ]
    )


def markers(plot: Plot, panel: str) -> list[Circle]:
    found = [c for c in plot.find("objects", panel=panel) if isinstance(c, Circle)]
    assert found, panel
    return found


def line(plot: Plot, gid: str) -> Line:
    found = [ln for ln in plot.find(gid) if isinstance(ln, Line)]
    assert len(found) == 1, gid
    return found[0]


def texts(plot: Plot, prefix: str, panel: str | None = None) -> dict[str, str]:
    return {t.gid or "": t.text for t in plot.find(prefix=prefix, panel=panel) if isinstance(t, Text)}


def points(ln: Line) -> np.ndarray:
    return np.array(ln.points, dtype=float)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


# ----------------------------------------------------------------------------- geometry


def test_top_view_xy_directions() -> None:
    x, y = top_view_xy(90, 0, 2.0)  # hard left
    assert x < 0 and abs(y) < 1e-12
    x, y = top_view_xy(-90, 0, 2.0)  # hard right
    assert x > 0 and abs(y) < 1e-12
    x, y = top_view_xy(0, 0, 2.0)  # front = up
    assert y > 0 and abs(x) < 1e-12
    x, y = top_view_xy(180, 0, 2.0)  # back = down
    assert y < 0 and abs(x) < 1e-12
    x, y = top_view_xy(45, 0, 2.0)  # front-left = up-left
    assert x < 0 and y > 0 and abs(abs(x) - y) < 1e-12
    # Radius is the radial scale of the horizontal distance.
    x, y = top_view_xy(30, 60, 4.0)
    assert np.hypot(x, y) == pytest.approx(radial_scale(4.0 * np.cos(np.radians(60))))
    assert top_view_xy(0, 90, 5.0) == pytest.approx((0.0, 0.0), abs=1e-12)  # overhead -> centre


def test_top_view_xy_vectorised_and_radial_scale() -> None:
    az = np.array([0.0, 90.0, -90.0, 180.0])
    x, y = top_view_xy(az, np.zeros(4), np.full(4, 3.0))
    assert x.shape == y.shape == (4,)
    np.testing.assert_allclose(np.hypot(x, y), 2.0)  # log2(1 + 3) = 2
    assert radial_scale(0.0) == 0.0 and radial_scale(1.0) == pytest.approx(1.0)
    d = np.array([0.25, 0.5, 1, 2, 5, 10, 20, 50])
    r = radial_scale(d)
    assert np.all(np.diff(r) > 0)
    # Both near and far read: 0.5 m is visibly off the centre, 50 m is not 100x further out.
    assert r[1] > 0.5 and r[-1] / r[1] < 10


def test_elevation_view_xy_wraps_azimuth() -> None:
    assert elevation_view_xy(-180, 10) == (180.0, 10.0)
    x, y = elevation_view_xy([190, -45], [0, -20])
    np.testing.assert_allclose(x, [-170, -45])
    np.testing.assert_allclose(y, [0, -20])


def test_width_to_marker_area_in_pixels() -> None:
    s = width_to_marker_area(np.linspace(0, 1, 11))
    assert np.all(np.diff(s) > 0)
    assert width_to_marker_area(-1) == width_to_marker_area(0)
    assert width_to_marker_area(2) == width_to_marker_area(1)
    # Diameters 7 pt and 26 pt at 100 dpi: 9.72 px and 36.11 px.
    assert math.sqrt(width_to_marker_area(0.0) / math.pi) * 2 == pytest.approx(7 * PT)
    assert math.sqrt(width_to_marker_area(1.0) / math.pi) * 2 == pytest.approx(36.11, abs=0.01)


def test_panel_maps_data_to_page_pixels() -> None:
    plot = plot_scene(scene_of([obj("a", "keys", 0, 0, 2.0)]))
    top = plot.panels["top_view"]
    x0, y0, x1, y1 = top.box
    assert x1 - x0 == pytest.approx(y1 - y0)  # equal aspect: rings are circles
    assert top.to_px(0.0, 0.0) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2))
    elv = plot.panels["elevation_view"]
    ex0, ey0, ex1, ey1 = elv.box
    assert elv.to_px(180.0, 90.0) == pytest.approx((ex0, ey0))  # back-left, straight up: top-left
    assert elv.to_px(-180.0, -90.0) == pytest.approx((ex1, ey1))
    assert elv.to_px(0.0, 0.0) == pytest.approx(((ex0 + ex1) / 2, (ey0 + ey1) / 2))


# ----------------------------------------------------------------------------- what is drawn


def test_markers_match_geometry_in_both_views() -> None:
    scene = rich_scene()
    plot = plot_scene(scene)
    o = scene["objects"]
    az = np.array([v["az_deg"] for v in o], float)
    el = np.array([v["el_deg"] for v in o], float)
    dist = np.array([v["dist_m"] for v in o], float)

    top = markers(plot, "top_view")
    want = np.column_stack(plot.panels["top_view"].to_px(*top_view_xy(az, el, dist)))
    np.testing.assert_allclose([m.center for m in top], want)
    np.testing.assert_allclose([m.radius for m in top], np.sqrt(width_to_marker_area([v["width"] for v in o]) / np.pi))
    assert [m.fill for m in top] == [FAMILY_COLORS[family_of(v["class"])] for v in o]

    elv = markers(plot, "elevation_view")
    want = np.column_stack(plot.panels["elevation_view"].to_px(wrap_az(az), el))
    np.testing.assert_allclose([m.center for m in elv], want)


def test_left_is_left_on_the_page_in_both_views() -> None:
    scene = scene_of(
        [
            obj("left", "keys", 90, 0, 2.0),
            obj("right", "keys", -90, 0, 2.0),
            obj("front", "keys", 0, 0, 2.0),
            obj("back", "keys", 180, 0, 2.0),
            obj("up", "keys", 0, 60, 2.0),
            obj("down", "keys", 0, -40, 2.0),
        ]
    )
    plot = plot_scene(scene)
    px = np.array([m.center for m in markers(plot, "top_view")])
    head = plot.panels["top_view"].to_px(0.0, 0.0)
    left, right, front, back = px[0], px[1], px[2], px[3]
    assert left[0] < head[0] < right[0]  # left of the page / right of the page
    assert front[1] < head[1] < back[1]  # page y grows downwards: front is up
    px = np.array([m.center for m in markers(plot, "elevation_view")])
    assert px[0, 0] < px[2, 0] < px[1, 0]  # left ... front ... right
    assert px[4, 1] < px[2, 1] < px[5, 1]  # up above ear level above down


def test_pan_path_goes_left_to_right_through_the_front() -> None:
    kf = expand(Motion("pan", {"from_az": 90, "to_az": -90}), (90, 0, 3.0))
    plot = plot_scene(scene_of([obj("gtr", "guitar", 90, 0, 3.0, motion=kf)]))
    top = plot.panels["top_view"]
    cx, cy = top.to_px(0.0, 0.0)
    k = (top.box[2] - top.box[0]) / (top.xlim[1] - top.xlim[0])  # pixels per radial unit
    p = points(line(plot, "path:gtr"))
    assert len(p) == PATH_SAMPLES
    assert p[0, 0] < cx - k and p[-1, 0] > cx + k  # starts on the left of the page, ends on the right
    assert np.all(np.diff(p[:, 0]) > 0)  # sweeps steadily left -> right
    assert np.all(p[:, 1] < cy + 1e-6)  # never behind the listener (below the head on the page)
    mid = np.argmin(np.abs(p[:, 0] - cx))
    assert cy - p[mid, 1] == pytest.approx(radial_scale(3.0) * k, rel=1e-3)  # passes straight in front
    # The path is the motion module's, not a re-interpolation.
    q = positions_at(keyframes_array(kf), np.linspace(0, 1, PATH_SAMPLES))
    np.testing.assert_allclose(p, np.column_stack(top.to_px(*top_view_xy(q[:, 0], q[:, 1], q[:, 2]))))
    # Elevation map: azimuth decreases from +90 (left of the page) to -90 (right of the page).
    ep = points(line(plot, "epath:gtr"))
    elv = plot.panels["elevation_view"]
    assert ep[0, 0] == pytest.approx(elv.to_px(90, 0)[0]) and ep[-1, 0] == pytest.approx(elv.to_px(-90, 0)[0])
    # A hollow marker marks t = 0 where the path starts; arrow heads point along it (rightwards).
    (t0,) = plot.find("path:gtr:t0")
    assert isinstance(t0, Circle) and t0.fill == "#ffffff" and t0.edge == FAMILY_COLORS["harmony"]
    assert t0.center == pytest.approx(tuple(p[0]))
    arrows = plot.find("path:gtr:arrow")
    assert len(arrows) == 2  # 180 degrees of travel
    for a in arrows:
        tri = np.array(a.points)  # type: ignore[union-attr]
        assert tri[0, 0] > tri[1:, 0].mean()  # the tip is right of the base on a left-to-right sweep


def test_orbit_path_breaks_at_the_back_on_the_elevation_map() -> None:
    kf = expand(Motion("orbit", {"direction": "ccw", "period_bars": 4}), (0, 20, 2.0), 8)
    plot = plot_scene(scene_of([obj("arp", "arp", 0, 20, 2.0, motion=kf)]))
    ex = points(line(plot, "epath:arp"))[:, 0]
    assert np.isnan(ex).sum() >= 2  # two turns -> at least two wraps through +-180
    finite = ~np.isnan(ex[:-1]) & ~np.isnan(ex[1:])
    width = plot.panels["elevation_view"].box[2] - plot.panels["elevation_view"].box[0]
    assert np.all(np.abs(np.diff(ex)[finite]) < width / 2)  # no line drawn across the whole map
    # Top view: a closed circle at constant radius.
    top = plot.panels["top_view"]
    k = (top.box[2] - top.box[0]) / (top.xlim[1] - top.xlim[0])
    p = points(line(plot, "path:arp")) - np.array(top.to_px(0.0, 0.0))
    np.testing.assert_allclose(np.hypot(p[:, 0], p[:, 1]), radial_scale(2.0 * np.cos(np.radians(20))) * k)


def test_static_motion_draws_no_path() -> None:
    kf = expand(Motion("static"), (30, 0, 2.0))
    plot = plot_scene(scene_of([obj("s", "keys", 30, 0, 2.0, motion=kf)]))
    assert plot.find(prefix="path:") == [] and plot.find(prefix="epath:") == []


def test_labels_groups_and_info_box() -> None:
    plot = plot_scene(rich_scene())
    top_labels = texts(plot, "label:", "top_view")
    assert len(top_labels) == 12
    assert top_labels["label:bv"].startswith("bv (4)")  # member count of a group
    assert top_labels["label:drums"].startswith("drums (3)")
    assert "↑35°" in top_labels["label:pad_L"]  # elevation shown in the top view
    assert top_labels["label:kick"] == "kick"
    # On the elevation map kick, drums and fly share (az 0, el 0): one label lists all three.
    el_labels = texts(plot, "elabel:", "elevation_view")
    assert el_labels["elabel:kick,drums,fly"] == "kick, drums (3), fly"
    assert sum(len(g.split(":")[1].split(",")) for g in el_labels) == 12
    info = "\n".join(texts(plot, "info").values())
    for needle in (
        "7.1.4",
        "club_medium",
        "128 bpm",
        "8 bars",
        "15.0 s",
        "drop",
        "anchor:lead_vocal@0/10/1.6",
        "mono_low_end<120Hz",
        "-14 LUFS",
    ):
        assert needle in info, needle
    legend = [t.text for t in plot.find("legend") if isinstance(t, Text)]
    assert legend[0] == "colour = stem family (classes present)"
    assert "vocal: backing_vocal, lead_vocal" in legend and "texture: ambience, fx, riser" in legend
    for fam in ("vocal", "drums", "bass", "harmony", "melody", "texture"):
        assert any(t.startswith(f"{fam}: ") for t in legend), fam
    assert {"width 0", "width 0.5", "width 1", "position at t = 0", "n stems (group)"} <= set(legend)


def test_labels_sit_off_their_markers_and_off_each_other() -> None:
    plot = plot_scene(rich_scene())
    for panel, prefix in (("top_view", "label-box:"), ("elevation_view", "elabel-box:")):
        boxes = [b for b in plot.find(prefix=prefix, panel=panel) if isinstance(b, Box)]
        discs = markers(plot, panel)
        for b in boxes:
            for m in discs:  # no label box covers a marker's centre
                assert not (b.x0 < m.center[0] < b.x1 and b.y0 < m.center[1] < b.y1), (b.gid, m.center)


def test_title_default_and_custom() -> None:
    plot = plot_scene(rich_scene())
    assert plot.title == "Gravity scene — drop · 12 objects"
    assert [t.text for t in plot.find("title")] == [plot.title]  # type: ignore[union-attr]
    assert plot_scene(rich_scene(), title="My mix").title == "My mix"


# ----------------------------------------------------------------------------- robustness


def test_empty_scene(tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    plot = plot_scene({"version": "1.0", "bed": {"layout": "stereo"}, "objects": []}, out)
    assert png_size(out) == (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))
    assert plot.find("objects") == []
    assert [t.text for t in plot.find("empty", panel="top_view")] == ["no objects"]  # type: ignore[union-attr]


def test_64_objects_labels_legible_and_not_overlapping(tmp_path: Path) -> None:
    plot = plot_scene(many_scene(64), tmp_path / "many.png")
    for panel, prefix in (("top_view", "label"), ("elevation_view", "elabel")):
        labels = [t for t in plot.find(prefix=prefix + ":", panel=panel) if isinstance(t, Text)]
        assert len(labels) == 64
        assert all(5.0 * PT <= t.size <= 9.0 * PT for t in labels)
        boxes = [
            (b.x0, b.y0, b.x1, b.y1) for b in plot.find(prefix=prefix + "-box:", panel=panel) if isinstance(b, Box)
        ]
        assert len(boxes) == 64
        for x0, y0, x1, y1 in boxes:  # on the page
            assert 0 <= x0 and x1 <= 1600 and 0 <= y0 and y1 <= 900
        overlaps = [
            (i, j)
            for i in range(64)
            for j in range(i + 1, 64)
            if min(boxes[i][2], boxes[j][2]) > max(boxes[i][0], boxes[j][0])
            and min(boxes[i][3], boxes[j][3]) > max(boxes[i][1], boxes[j][1])
        ]
        assert overlaps == [], panel


def test_64_colocated_objects_share_one_label() -> None:
    plot = plot_scene(scene_of([obj(f"s{i}", "pad", 0, 0, 2.0) for i in range(64)]))
    labels = texts(plot, "label:", "top_view")
    assert list(labels) == ["label:" + ",".join(f"s{i}" for i in range(64))]
    (text,) = labels.values()
    assert text.startswith("s0, s1, s2") and "+53 more" in text


def test_object_without_required_field_raises_clearly() -> None:
    bad = obj("x", "keys", 0, 0, 1.0)
    del bad["az_deg"]
    with pytest.raises(ValueError, match="az_deg"):
        plot_scene(scene_of([bad]))


def test_minimal_scene_without_optional_fields() -> None:
    plot = plot_scene(
        {
            "version": "1.0",
            "bed": {"layout": "binaural"},
            "objects": [{"id": "a", "class": "pad", "az_deg": 180, "el_deg": -90, "dist_m": 50, "width": 1}],
        }
    )
    info = "\n".join(texts(plot, "info").values())
    assert "binaural" in info and "timing   (none)" in info


def test_hostile_stem_names_draw(tmp_path: Path) -> None:
    names = [
        "שירה ראשית",  # right-to-left, outside the font subset: missing-glyph boxes
        "🎤🔥 vocal",  # emoji
        "x" * 1000,
        "tab\tnew\nline\x00nul",
        "lone \ud800 surrogate",
        "Ñandú ελληνικά кириллица",  # in the subset
    ]
    scene = scene_of([obj(n, "lead_vocal", 30 * i, 0, 2.0) for i, n in enumerate(names)])
    plot = plot_scene(scene, tmp_path / "hostile.png")
    plot.save(tmp_path / "hostile.svg")
    img = Image.open(tmp_path / "hostile.png")
    assert img.size == (1600, 900)
    labels = texts(plot, "label:", "top_view")
    assert ("label:" + "x" * 1000) in labels  # the gid keeps the id ...
    assert labels["label:" + "x" * 1000] == "x" * 31 + "…"  # ... the page shows it cut
    assert labels["label:tab\tnew\nline\x00nul"] == "tab�new line�nul"  # one line, no control characters
    assert labels["label:Ñandú ελληνικά кириллица"] == "Ñandú ελληνικά кириллица"
    # Outside the shipped fonts: a visible box per character, not an invisible label.
    assert labels["label:🎤🔥 vocal"] == "□□ vocal"
    assert labels["label:שירה ראשית"] == "□□□□ □□□□□"
    ET.parse(tmp_path / "hostile.svg")  # still well-formed XML


def test_gravity_plot_does_not_import_matplotlib(tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    code = (
        "import sys; from gravity.cli import main; "
        f"rc = main(['plot', 'examples/sample_output.json', '-o', {str(out)!r}]); "
        "assert rc == 0, rc; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    assert png_size(out) == (1600, 900)


# ----------------------------------------------------------------------------- the raster and SVG


def test_png_written_with_expected_size_and_no_temp_files(tmp_path: Path) -> None:
    scene = json.loads((REPO / "examples" / "sample_output.json").read_text())
    out = tmp_path / "scene.png"
    plot = plot_scene(scene, out)
    assert isinstance(plot, Plot) and plot.size == (1600, 900)
    assert png_size(out) == (1600, 900) == (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.png"]
    img = Image.open(out)
    assert img.mode == "RGB" and img.size == (1600, 900)
    # Our PNG writer round-trips: the file holds exactly the raster.
    assert np.array_equal(np.asarray(img), np.asarray(plot.to_image()))
    assert img.info.get("dpi") == pytest.approx((DPI, DPI), abs=0.1)


def test_markers_have_their_family_colour_at_the_predicted_pixels(tmp_path: Path) -> None:
    # A lone lead vocal (az 0, el 10, 1.6 m) and a kick hard left: red and blue discs exactly
    # where the geometry puts them, drawn at 0.85 opacity over white.
    scene = scene_of([obj("v1", "lead_vocal", 0, 10, 1.6, 0.15), obj("k", "kick", 90, 0, 2.0, 0.3)])
    out = tmp_path / "two.png"
    plot = plot_scene(scene, out)
    img = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    assert img.shape == (900, 1600, 3)

    def seen(color: str) -> np.ndarray:
        return 0.85 * rgb(color) + 0.15 * 255

    top = plot.panels["top_view"]
    x, y = top.to_px(*top_view_xy(0.0, 10.0, 1.6))
    # Known value: 1.6 m at 10 deg is 1.576 m across -> radius log2(2.576) = 1.365 units, up from the head.
    k = (top.box[2] - top.box[0]) / (top.xlim[1] - top.xlim[0])
    assert (x, y) == pytest.approx((381.8, 459.0 - 1.365 * k), abs=0.1)
    elv = plot.panels["elevation_view"]
    for (px, py), family in (
        ((x, y), "vocal"),
        (top.to_px(*top_view_xy(90.0, 0.0, 2.0)), "drums"),
        (elv.to_px(0.0, 10.0), "vocal"),
        (elv.to_px(90.0, 0.0), "drums"),
    ):
        # 3 px up and right of the centre: inside the disc (radius >= 4.9 px), off the grid
        # lines that run through the centres here (they show through the 0.85 opacity).
        np.testing.assert_allclose(img[round(py) - 3, round(px) + 3], seen(FAMILY_COLORS[family]), atol=3)
    # The page itself is white where nothing is drawn (far right of the title row).
    np.testing.assert_allclose(img[20, 1500], [255, 255, 255])


def test_svg_is_xml_with_one_circle_per_object_in_each_view(tmp_path: Path) -> None:
    scene = rich_scene()
    out = tmp_path / "rich.svg"
    plot = plot_scene(scene, out)
    root = ET.parse(out).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("width") == "1600" and root.get("height") == "900"
    discs = [c for c in root.iter(f"{ns}circle") if c.get("data-gid") == "objects"]
    assert len(discs) == 2 * len(scene["objects"])
    want = [m.center for m in plot.find("objects")]  # type: ignore[union-attr]
    got = [(float(c.get("cx", "nan")), float(c.get("cy", "nan"))) for c in discs]
    np.testing.assert_allclose(got, want, atol=0.006)
    label = [t for t in root.iter(f"{ns}text") if t.get("data-gid") == "label:kick"]
    assert len(label) == 1 and "".join(label[0].itertext()) == "kick"
    assert [p.get("data-gid") for p in root.iter(f"{ns}path") if (p.get("data-gid") or "").startswith("path:")] == [
        "path:arp",
        "path:gtr",
        "path:riser",
        "path:fly",
    ]


def test_dashes_cut_a_line_into_on_off_pieces() -> None:
    pieces = gp._dashes([(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)], 4.0, 3.0)
    # 20 px of line: on 0-4, off 4-7, on 7-11 (round the corner), off 11-14, on 14-18, off 18-20.
    assert [[tuple(map(float, p)) for p in piece] for piece in pieces] == [
        [(0.0, 0.0), (4.0, 0.0)],
        [(7.0, 0.0), (10.0, 0.0), (10.0, 1.0)],
        [(10.0, 4.0), (10.0, 8.0)],
    ]


# ----------------------------------------------------------------------------- saving


@pytest.mark.parametrize(
    ("name", "magic"), [("s.svg", b"<svg"), ("s.pdf", b"%PDF"), ("s.PNG", PNG_SIGNATURE), ("noext", PNG_SIGNATURE)]
)
def test_format_from_extension(tmp_path: Path, name: str, magic: bytes) -> None:
    plot_scene(rich_scene(), tmp_path / name)
    data = (tmp_path / name).read_bytes()
    assert magic in data[:2048]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_pdf_is_a_16_by_9_inch_page(tmp_path: Path) -> None:
    plot_scene(rich_scene(), tmp_path / "s.pdf")
    data = (tmp_path / "s.pdf").read_bytes()
    assert b"/MediaBox [ 0 0 1152.0 648.0 ]" in data  # 16 x 9 inches in PDF points


def test_unsupported_extension_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot save a scene plot as '\.bmpx'"):
        plot_scene(rich_scene(), tmp_path / "scene.bmpx")
    assert list(tmp_path.iterdir()) == []


def test_missing_directory_raises_clearly_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "scene.png"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        plot_scene(rich_scene(), target)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "scene.png"
    out.write_bytes(b"previous")
    plot = plot_scene(rich_scene())
    real_write = Path.write_bytes

    def broken_write(self: Path, data: bytes) -> int:
        real_write(self, data[:100])  # some bytes reach the temp file ...
        raise OSError("disk full")  # ... then the write fails

    monkeypatch.setattr(Path, "write_bytes", broken_write)
    with pytest.raises(OSError, match="disk full"):
        plot.save(out)
    assert out.read_bytes() == b"previous"  # old file untouched, no partial file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.png"]


def test_overwrite_replaces_file_and_keeps_mode(tmp_path: Path) -> None:
    out = tmp_path / "scene.png"
    out.write_bytes(b"old")
    os.chmod(out, 0o640)
    plot_scene(rich_scene(), out)
    assert png_size(out) == (1600, 900)
    assert (out.stat().st_mode & 0o777) == 0o640
    new = tmp_path / "new.png"
    plot_scene(rich_scene(), str(new))  # str paths work too
    assert (new.stat().st_mode & 0o777) == 0o644
