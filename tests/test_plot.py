"""Tests for gravity.plot: geometry, what is drawn where, atomic saving, robustness."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from gravity.motion import Motion, expand, keyframes_array, positions_at, wrap_az
from gravity.plot import (
    DPI,
    FAMILY_COLORS,
    FIGSIZE_IN,
    PATH_SAMPLES,
    elevation_view_xy,
    plot_scene,
    radial_scale,
    save_figure,
    top_view_xy,
    width_to_marker_area,
)
from gravity.vocab import STEM_CLASSES, family_of

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def axes(fig: Figure, label: str) -> Any:
    found = [a for a in fig.axes if a.get_label() == label]
    assert len(found) == 1, [a.get_label() for a in fig.axes]
    return found[0]


def markers(ax: Any) -> Any:
    found = [c for c in ax.collections if c.get_gid() == "objects"]
    assert len(found) == 1
    return found[0]


def line(ax: Any, gid: str) -> Any:
    found = [ln for ln in ax.lines if ln.get_gid() == gid]
    assert len(found) == 1, gid
    return found[0]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


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


def test_width_to_marker_area_monotonic() -> None:
    s = width_to_marker_area(np.linspace(0, 1, 11))
    assert np.all(np.diff(s) > 0)
    assert width_to_marker_area(-1) == width_to_marker_area(0)
    assert width_to_marker_area(2) == width_to_marker_area(1)


# ----------------------------------------------------------------------------- what is drawn


def test_markers_match_geometry_in_both_views() -> None:
    scene = rich_scene()
    fig = plot_scene(scene)
    o = scene["objects"]
    az = np.array([v["az_deg"] for v in o], float)
    el = np.array([v["el_deg"] for v in o], float)
    dist = np.array([v["dist_m"] for v in o], float)

    top = markers(axes(fig, "top_view"))
    np.testing.assert_allclose(top.get_offsets(), np.column_stack(top_view_xy(az, el, dist)))
    np.testing.assert_allclose(top.get_sizes(), width_to_marker_area([v["width"] for v in o]))
    colours = [to_rgba(FAMILY_COLORS[family_of(v["class"])])[:3] for v in o]
    np.testing.assert_allclose(top.get_facecolors()[:, :3], colours)

    elv = markers(axes(fig, "elevation_view"))
    np.testing.assert_allclose(elv.get_offsets(), np.column_stack([wrap_az(az), el]))


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
    fig = plot_scene(scene)
    fig.canvas.draw()
    ax = axes(fig, "top_view")
    px = ax.transData.transform(markers(ax).get_offsets())
    head = ax.transData.transform((0.0, 0.0))
    left, right, front, back = px[0], px[1], px[2], px[3]
    assert left[0] < head[0] < right[0]  # left of the page / right of the page
    assert front[1] > head[1] > back[1]  # display y grows upwards: front is up
    ax = axes(fig, "elevation_view")
    px = ax.transData.transform(markers(ax).get_offsets())
    assert px[0, 0] < px[2, 0] < px[1, 0]  # left ... front ... right
    assert px[4, 1] > px[2, 1] > px[5, 1]  # up above ear level above down


def test_pan_path_goes_left_to_right_through_the_front() -> None:
    kf = expand(Motion("pan", {"from_az": 90, "to_az": -90}), (90, 0, 3.0))
    scene = scene_of([obj("gtr", "guitar", 90, 0, 3.0, motion=kf)])
    fig = plot_scene(scene)
    path = line(axes(fig, "top_view"), "path:gtr")
    x, y = np.asarray(path.get_xdata(), float), np.asarray(path.get_ydata(), float)
    assert len(x) == PATH_SAMPLES
    assert x[0] < -1.0 and x[-1] > 1.0  # starts on the left of the page, ends on the right
    assert np.all(np.diff(x) > 0)  # sweeps steadily left -> right
    assert np.all(y > -1e-9)  # never behind the listener
    mid = np.argmin(np.abs(x))
    assert y[mid] == pytest.approx(radial_scale(3.0), rel=1e-3)  # passes straight in front
    # The path is the motion module's, not a re-interpolation.
    p = positions_at(keyframes_array(kf), np.linspace(0, 1, PATH_SAMPLES))
    np.testing.assert_allclose(np.column_stack([x, y]), np.column_stack(top_view_xy(p[:, 0], p[:, 1], p[:, 2])))
    # Elevation map: azimuth decreases from +90 (left of the page) to -90 (right of the page).
    epath = line(axes(fig, "elevation_view"), "epath:gtr")
    ex = np.asarray(epath.get_xdata(), float)
    assert ex[0] == pytest.approx(90) and ex[-1] == pytest.approx(-90)
    # A hollow marker marks t = 0 where the path starts.
    t0 = line(axes(fig, "top_view"), "path:gtr:t0")
    assert (t0.get_xdata()[0], t0.get_ydata()[0]) == pytest.approx((x[0], y[0]))


def test_orbit_path_breaks_at_the_back_on_the_elevation_map() -> None:
    kf = expand(Motion("orbit", {"direction": "ccw", "period_bars": 4}), (0, 20, 2.0), 8)
    fig = plot_scene(scene_of([obj("arp", "arp", 0, 20, 2.0, motion=kf)]))
    ex = np.asarray(line(axes(fig, "elevation_view"), "epath:arp").get_xdata(), float)
    assert np.isnan(ex).sum() >= 2  # two turns -> at least two wraps through +-180
    finite = ~np.isnan(ex[:-1]) & ~np.isnan(ex[1:])
    assert np.all(np.abs(np.diff(ex)[finite]) < 180)  # no line drawn across the whole map
    # Top view: a closed circle at constant radius.
    top = line(axes(fig, "top_view"), "path:arp")
    r = np.hypot(top.get_xdata(), top.get_ydata())
    np.testing.assert_allclose(r, radial_scale(2.0 * np.cos(np.radians(20))))


def test_static_motion_draws_no_path() -> None:
    kf = expand(Motion("static"), (30, 0, 2.0))
    fig = plot_scene(scene_of([obj("s", "keys", 30, 0, 2.0, motion=kf)]))
    gids = [ln.get_gid() for ax in fig.axes for ln in ax.lines]
    assert not any(g and "path:" in g for g in gids)


def test_labels_groups_and_info_box() -> None:
    fig = plot_scene(rich_scene())
    top_labels = {
        a.get_gid(): a.get_text() for a in axes(fig, "top_view").texts if (a.get_gid() or "").startswith("label:")
    }
    assert len(top_labels) == 12
    assert top_labels["label:bv"].startswith("bv (4)")  # member count of a group
    assert top_labels["label:drums"].startswith("drums (3)")
    assert "↑35°" in top_labels["label:pad_L"]  # elevation shown in the top view
    assert top_labels["label:kick"] == "kick"
    # On the elevation map kick, drums and fly share (az 0, el 0): one label lists all three.
    el_labels = {
        a.get_gid(): a.get_text()
        for a in axes(fig, "elevation_view").texts
        if (a.get_gid() or "").startswith("elabel:")
    }
    assert el_labels["elabel:kick,drums,fly"] == "kick, drums (3), fly"
    assert sum(len(g.split(":")[1].split(",")) for g in el_labels) == 12
    info = "\n".join(t.get_text() for t in axes(fig, "info").texts)
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
    legend_text = " ".join(
        t.get_text() for leg in axes(fig, "legend").get_children() if hasattr(leg, "get_texts") for t in leg.get_texts()
    )
    for fam in ("vocal", "drums", "bass", "harmony", "melody", "texture"):
        assert fam in legend_text


def test_title_default_and_custom() -> None:
    fig = plot_scene(rich_scene())
    assert "drop" in fig._suptitle.get_text() and "12 objects" in fig._suptitle.get_text()
    fig = plot_scene(rich_scene(), title="My mix")
    assert fig._suptitle.get_text() == "My mix"


# ----------------------------------------------------------------------------- robustness


def test_empty_scene(tmp_path: Path) -> None:
    out = tmp_path / "empty.png"
    fig = plot_scene({"version": "1.0", "bed": {"layout": "stereo"}, "objects": []}, out)
    assert png_size(out) == (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))
    assert not [c for c in axes(fig, "top_view").collections if c.get_gid() == "objects"]
    assert any(t.get_text() == "no objects" for t in axes(fig, "top_view").texts)


def test_64_objects_labels_legible_and_not_overlapping(tmp_path: Path) -> None:
    scene = many_scene(64)
    fig = plot_scene(scene, tmp_path / "many.png")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    fig_box = fig.bbox
    for ax_label, prefix in (("top_view", "label:"), ("elevation_view", "elabel:")):
        ax = axes(fig, ax_label)
        labels = [t for t in ax.texts if (t.get_gid() or "").startswith(prefix)]
        assert len(labels) == 64
        assert all(5.0 <= t.get_fontsize() <= 9.0 for t in labels)
        boxes = [t.get_window_extent(renderer) for t in labels]
        for b in boxes:  # on the page
            assert fig_box.x0 <= b.x0 and b.x1 <= fig_box.x1
            assert fig_box.y0 <= b.y0 and b.y1 <= fig_box.y1
        overlaps = [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j])]
        assert overlaps == [], ax_label


def test_64_colocated_objects_share_one_label() -> None:
    fig = plot_scene(scene_of([obj(f"s{i}", "pad", 0, 0, 2.0) for i in range(64)]))
    labels = [t for t in axes(fig, "top_view").texts if (t.get_gid() or "").startswith("label:")]
    assert len(labels) == 1
    assert labels[0].get_gid() == "label:" + ",".join(f"s{i}" for i in range(64))
    assert labels[0].get_text().startswith("s0, s1, s2") and "+53 more" in labels[0].get_text()


def test_object_without_required_field_raises_clearly() -> None:
    bad = obj("x", "keys", 0, 0, 1.0)
    del bad["az_deg"]
    with pytest.raises(ValueError, match="az_deg"):
        plot_scene(scene_of([bad]))


def test_minimal_scene_without_optional_fields() -> None:
    fig = plot_scene(
        {
            "version": "1.0",
            "bed": {"layout": "binaural"},
            "objects": [{"id": "a", "class": "pad", "az_deg": 180, "el_deg": -90, "dist_m": 50, "width": 1}],
        }
    )
    info = "\n".join(t.get_text() for t in axes(fig, "info").texts)
    assert "binaural" in info and "timing   (none)" in info


def test_no_pyplot_and_agg_canvas() -> None:
    code = (
        "import json, sys; from gravity.plot import plot_scene; "
        "fig = plot_scene(json.load(open('examples/sample_output.json'))); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'; "
        "print(type(fig.canvas).__name__)"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("MPLBACKEND", None)
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "FigureCanvasAgg"


# ----------------------------------------------------------------------------- saving


def test_png_written_with_expected_size_and_no_temp_files(tmp_path: Path) -> None:
    scene = json.loads((REPO / "examples" / "sample_output.json").read_text())
    out = tmp_path / "scene.png"
    fig = plot_scene(scene, out)
    assert isinstance(fig, Figure)
    assert png_size(out) == (1600, 900) == (round(FIGSIZE_IN[0] * DPI), round(FIGSIZE_IN[1] * DPI))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.png"]


def test_png_has_content(tmp_path: Path) -> None:
    pytest.importorskip("PIL")
    from PIL import Image

    out = tmp_path / "rich.png"
    plot_scene(rich_scene(), out)
    img = np.asarray(Image.open(out).convert("RGB"), dtype=float)
    assert img.shape == (900, 1600, 3)
    assert img.std() > 10  # not a blank page
    # The family colours appear (markers drawn): vocal red somewhere on the page.
    red = np.array(to_rgba(FAMILY_COLORS["vocal"])[:3]) * 255
    assert (np.abs(img - red).sum(-1) < 60).sum() > 20


@pytest.mark.parametrize(
    ("name", "magic"), [("s.svg", b"<svg"), ("s.pdf", b"%PDF"), ("s.PNG", PNG_SIGNATURE), ("noext", PNG_SIGNATURE)]
)
def test_format_from_extension(tmp_path: Path, name: str, magic: bytes) -> None:
    plot_scene(rich_scene(), tmp_path / name)
    data = (tmp_path / name).read_bytes()
    assert magic in data[:2048]
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_unsupported_extension_raises_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot save"):
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
    fig = plot_scene(rich_scene())

    def broken_savefig(_self: Figure, fname: Any, *_args: Any, **_kwargs: Any) -> None:
        Path(fname).write_bytes(PNG_SIGNATURE + b"partial")  # some bytes reach the temp file ...
        raise OSError("disk full")  # ... then the write fails

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, out)
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
