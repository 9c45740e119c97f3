"""ADM BW64 export (issue 19): ``renderer.adm``, ``renderer.bw64``, ``renderer.export``, ``gravity export``.

The reference reader is the EBU ADM Renderer (``ear-render``, ITU-R BS.2127) from its own venv
(``make ear-venv``): it must accept every exported file in ``--strict`` mode with nothing on
stderr, and place each object on the loudspeakers ITU-R BS.2051 puts there. Its output channel
order is read from ``ear.core.bs2051`` itself. Stems are deterministic noise; every ear-render
run is one or two seconds of audio (1.5 to 2 s a run; the file takes about 12 s on 2 cores).
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import subprocess
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from gravity.scene import Scene
from renderer.adm import FIRST_BLOCK_S, MAX_STEP_DEG, TICKS_PER_S, adm_time, build_adm, object_blocks
from renderer.bw64 import MAX_RIFF_BYTES, Bw64Writer, ChnaEntry
from renderer.config import RenderConfig
from renderer.errors import RenderError
from renderer.export import export_files
from renderer.offline import load_stems, render_files
from helpers import FS, ear_tool

NS = {"a": "urn:ebu:metadata-schema:ebuCore_2016"}
# attrs 21.4 (ear's pin) on Python 3.11 warns once at import time about code-object
# introspection: the reference venv's own matter, not the file's, so only that line is silenced.
EAR_ENV = {**os.environ, "PYTHONWARNINGS": "ignore:Running interpreter:RuntimeWarning"}


# ------------------------------------------------------------------ materials
def obj(oid: str, az: float, el: float = 0.0, dist: float = 1.0, **kw: Any) -> dict[str, Any]:
    """A scene object at (az, el, dist) with no width, 0 dB, no sends (keywords override)."""
    return {"id": oid, "class": "other", "az_deg": az, "el_deg": el, "dist_m": dist, "width": 0.0,
            "gain_db": 0.0, "reverb_send": 0.0, "early_reflections": 0.0, **kw}  # fmt: skip


def write_scene(path: Path, objects: list[dict[str, Any]], bars: int = 1) -> Path:
    """A scene of ``bars`` bars of 4/4 at 120 bpm (2 s a bar)."""
    doc = {"version": "1.0", "bed": {"layout": "binaural", "room_preset": "studio_small"},
           "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": bars}, "objects": objects}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def noise(seconds: float, seed: int, level: float = 0.1, window: tuple[float, float] | None = None) -> np.ndarray:
    """White noise (RMS ``level``), silent outside ``window`` (seconds) when given."""
    x = level * np.random.default_rng(seed).standard_normal(round(seconds * FS))
    if window is not None:
        t = np.arange(len(x)) / FS
        x[(t < window[0]) | (t >= window[1])] = 0.0
    return x.astype(np.float32)


def write_stems(folder: Path, stems: dict[str, np.ndarray], rate: int = FS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, x in stems.items():
        sf.write(folder / f"{name}.wav", x, rate, subtype="FLOAT")
        paths.append(folder / f"{name}.wav")
    return paths


def ear_render(path: Path, layout: str) -> np.ndarray:
    """``ear-render --strict -s layout``: accepts the file with an empty stderr; output (n, channels)."""
    out = path.with_name(f"{path.stem}.{layout}.ear.wav")
    r = subprocess.run([str(ear_tool("ear-render")), "--strict", "-s", layout, str(path), str(out)],
                       capture_output=True, text=True, env=EAR_ENV, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no warning of any kind (timing, references, overload)
    y, fs = sf.read(out, dtype="float64", always_2d=True)
    assert fs == FS
    return y


@cache
def ear_channels(layout: str) -> tuple[str, ...]:
    """ear-render's output channels for ``layout``, in order, from ``ear.core.bs2051`` itself."""
    code = f"from ear.core import bs2051; print(' '.join(c.name for c in bs2051.get_layout({layout!r}).channels))"
    r = subprocess.run([str(ear_tool("python")), "-c", code], capture_output=True, text=True, env=EAR_ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    return tuple(r.stdout.split())


def rms_db(y: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Per-channel RMS in dB over t0..t1 seconds of y (n, channels)."""
    seg = y[round(t0 * FS) : round(t1 * FS)]
    return 10.0 * np.log10(np.mean(seg**2, axis=0) + 1e-30)


def loudest(y: np.ndarray, layout: str, t0: float, t1: float) -> tuple[str, float]:
    """(name of the loudest loudspeaker over t0..t1, its margin in dB over the next)."""
    db = rms_db(y, t0, t1)
    order = np.argsort(db)[::-1]
    return ear_channels(layout)[order[0]], float(db[order[0]] - db[order[1]])


def axml(path: Path) -> ET.Element:
    """The parsed ``axml`` chunk of a RIFF/BW64 file (read with struct, not with our writer)."""
    data = path.read_bytes()
    pos = 12
    while pos < len(data):
        ckid, size = struct.unpack("<4sI", data[pos : pos + 8])
        if ckid == b"axml":
            return ET.fromstring(data[pos + 8 : pos + 8 + size])
        pos += 8 + size + (size & 1)
    raise AssertionError(f"{path}: no axml chunk")


# ------------------------------------------------------------------ static objects, two layouts
# one object at a time: object k's stem sounds only in its quarter second, so each window is a
# single static object; the elevated one is last
STATIC = [("front_left", 30.0, 0.0), ("surround_right", -110.0, 0.0), ("back_left", 135.0, 0.0),
          ("high_left", 45.0, 30.0)]  # fmt: skip
EXPECTED = {  # the loudspeaker BS.2051 puts nearest, per layout (0+5+0 has no upper layer)
    "0+5+0": ("M+030", "M-110", "M+110", "M+030"),
    "4+5+0": ("M+030", "M-110", "M+110", "U+030"),
}


@pytest.fixture(scope="module")
def static_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("static")
    stems = {name: noise(1.0, k, window=(0.25 * k, 0.25 * (k + 1))) for k, (name, _, _) in enumerate(STATIC)}
    paths = write_stems(d / "stems", stems)
    scene = write_scene(d / "scene.json", [obj(name, az, el) for name, az, el in STATIC])
    report = export_files(paths, scene, d / "mix.wav")
    return {"dir": d, "out": d / "mix.wav", "report": report, "stems": stems, "scene": scene, "paths": paths}


@pytest.mark.parametrize("layout", ["0+5+0", "4+5+0"])
def test_ear_places_each_static_object_on_the_bs2051_loudspeaker_nearest_it(static_export, layout):
    y = ear_render(static_export["out"], layout)
    assert y.shape == (FS, len(ear_channels(layout)))  # every sample, no more: ear removes its delay
    for k, want in enumerate(EXPECTED[layout]):
        name, margin = loudest(y, layout, 0.25 * k + 0.02, 0.25 * (k + 1) - 0.02)
        assert name == want, (STATIC[k], layout, rms_db(y, 0.25 * k, 0.25 * (k + 1)))
        assert margin > 6.0, (STATIC[k], layout, margin)
    # BS.2127's panner keeps power: at the reference distance (1 m) with 0 dB the loudspeakers
    # together play the stem's level (-20 dB RMS noise); the LFE gets nothing
    for k in range(len(STATIC)):
        total = 10 * np.log10(np.sum(10 ** (rms_db(y, 0.25 * k + 0.02, 0.25 * (k + 1) - 0.02) / 10)))
        assert total == pytest.approx(-20.0, abs=0.15)
    assert np.max(np.abs(y[:, ear_channels(layout).index("LFE1")])) == 0.0


@pytest.mark.parametrize("layout", ["0+5+0", "4+5+0"])
def test_gravity_loudspeaker_render_matches_ear_on_the_exported_file(static_export, layout):
    """The round trip a studio makes: our ADM export rendered by the EBU ADM Renderer, against
    ``gravity render --format`` of the same stems and scene: every loudspeaker's level within
    1 dB wherever it plays within 20 dB of the loudest, for each static object, and the LFE
    silent in both.
    """
    y_ear = ear_render(static_export["out"], layout)
    ours = static_export["dir"] / f"ours.{layout}.wav"
    render_files(static_export["paths"], static_export["scene"], ours, fmt=layout, progress=False,
                 config=RenderConfig(reverb=False, early_reflections=False))  # fmt: skip
    y_ours, fs = sf.read(ours, dtype="float64", always_2d=True)
    assert fs == FS and y_ours.shape[1] == y_ear.shape[1]
    for k in range(len(STATIC)):
        a = rms_db(y_ear, 0.25 * k + 0.02, 0.25 * (k + 1) - 0.02)
        b = rms_db(y_ours, 0.25 * k + 0.02, 0.25 * (k + 1) - 0.02)
        on = a > a.max() - 20.0
        assert np.array_equal(on, b > b.max() - 20.0), (STATIC[k], layout, a, b)
        assert np.max(np.abs(a[on] - b[on])) < 1.0, (STATIC[k], layout, a, b)
    lfe = ear_channels(layout).index("LFE1")
    assert np.max(np.abs(y_ours[:, lfe])) == 0.0


def test_export_tracks_are_the_stems_samples_and_the_file_says_what_it_holds(static_export):
    out, rep = static_export["out"], static_export["report"]
    x, fs = sf.read(out, dtype="float64", always_2d=True)
    assert (fs, x.shape, rep.n_samples, rep.bits) == (FS, (FS, 4), FS, 24)
    for k, s in enumerate(static_export["stems"].values()):  # 24-bit PCM: within half a step
        assert np.max(np.abs(x[:, k] - s)) <= 0.5 / 2**23 + 1e-12
    assert rep.tracks == tuple((n, n) for n, _, _ in STATIC) and not rep.bw64 and rep.clipped_samples == 0
    assert rep.file_bytes == out.stat().st_size
    assert sf.info(str(out)).format == "WAV"  # a plain RIFF WAVE under 4 GiB: every reader opens it
    assert [n for n in os.listdir(out.parent) if n.startswith(".")] == []  # no temp file left


def test_adm_structure_ids_and_references(tmp_path):
    """The documented IDs: one object per scene object, one track/channel per member stem."""
    paths = write_stems(tmp_path, {"a": noise(0.5, 1), "b": noise(0.5, 2), "c": noise(0.5, 3)})
    scene = write_scene(tmp_path / "s.json", [obj("lead", 0.0, stems=["a"]), obj("pads", 60.0, stems=["b", "c"])])
    export_files(paths, scene, tmp_path / "o.wav")
    afx = axml(tmp_path / "o.wav").find("a:coreMetadata/a:format/a:audioFormatExtended", NS)
    assert afx is not None and afx.get("version") == "ITU-R_BS.2076-2"

    def ids(tag: str, attr: str) -> list[str]:
        return [e.get(attr, "") for e in afx.findall(f"a:{tag}", NS)]

    def refs(tag: str, attr: str, ref: str) -> dict[str, list[str]]:
        return {e.get(attr, ""): [r.text or "" for r in e.findall(f"a:{ref}", NS)] for e in afx.findall(f"a:{tag}", NS)}

    assert refs("audioProgramme", "audioProgrammeID", "audioContentIDRef") == {"APR_1001": ["ACO_1001"]}
    assert refs("audioContent", "audioContentID", "audioObjectIDRef") == {"ACO_1001": ["AO_1001", "AO_1002"]}
    assert refs("audioObject", "audioObjectID", "audioPackFormatIDRef") == {
        "AO_1001": ["AP_00031001"], "AO_1002": ["AP_00031002"]}  # fmt: skip
    assert refs("audioObject", "audioObjectID", "audioTrackUIDRef") == {
        "AO_1001": ["ATU_00000001"], "AO_1002": ["ATU_00000002", "ATU_00000003"]}  # fmt: skip
    assert refs("audioPackFormat", "audioPackFormatID", "audioChannelFormatIDRef") == {
        "AP_00031001": ["AC_00031001"], "AP_00031002": ["AC_00031002", "AC_00031003"]}  # fmt: skip
    for tag in ("audioPackFormat", "audioChannelFormat"):
        assert {(e.get("typeLabel"), e.get("typeDefinition")) for e in afx.findall(f"a:{tag}", NS)} == {
            ("0003", "Objects")}  # fmt: skip
    assert ids("audioChannelFormat", "audioChannelFormatName") == ["a", "b", "c"]
    assert refs("audioStreamFormat", "audioStreamFormatID", "audioTrackFormatIDRef") == {
        f"AS_0001100{i}": [f"AT_0001100{i}_01"] for i in (1, 2, 3)}  # fmt: skip
    assert refs("audioTrackFormat", "audioTrackFormatID", "audioStreamFormatIDRef") == {
        f"AT_0001100{i}_01": [f"AS_0001100{i}"] for i in (1, 2, 3)}  # fmt: skip
    assert {e.get("formatDefinition") for e in afx.findall("a:audioStreamFormat", NS)} == {"PCM"}
    uids = {e.get("UID"): (e.get("sampleRate"), e.get("bitDepth")) for e in afx.findall("a:audioTrackUID", NS)}
    assert uids == {f"ATU_0000000{i}": ("48000", "24") for i in (1, 2, 3)}
    block = afx.find("a:audioChannelFormat/a:audioBlockFormat", NS)
    assert block is not None and block.get("audioBlockFormatID") == "AB_00031001_00000001"
    assert block.findtext("a:cartesian", namespaces=NS) == "0"
    # chna: track i carries ATU i, its track format and its object's pack (read with struct)
    data = (tmp_path / "o.wav").read_bytes()
    at = data.index(b"chna")
    n_tracks, n_uids = struct.unpack("<HH", data[at + 8 : at + 12])
    rows = [struct.unpack("<H12s14s11sx", data[at + 12 + 40 * i : at + 52 + 40 * i]) for i in range(n_uids)]
    assert (n_tracks, n_uids) == (3, 3)
    assert [(i, u.decode(), t.decode(), p.decode()) for i, u, t, p in rows] == [
        (1, "ATU_00000001", "AT_00011001_01", "AP_00031001"),
        (2, "ATU_00000002", "AT_00011002_01", "AP_00031002"),
        (3, "ATU_00000003", "AT_00011003_01", "AP_00031002"),
    ]


# ------------------------------------------------------------------ motion
# +30 -> 0 -> -30 -> -110 degrees over one bar (2 s): the loudspeakers M+030, M+000, M-030, M-110
PAN = [
    {"t": t, "az_deg": az, "el_deg": 0.0, "dist_m": 1.0}
    for t, az in ((0.0, 30.0), (0.25, 0.0), (0.5, -30.0), (1.0, -110.0))
]


def test_ear_follows_a_moving_object_along_its_keyframes(tmp_path):
    paths = write_stems(tmp_path, {"mover": noise(2.0, 7)})
    scene = write_scene(tmp_path / "s.json", [obj("mover", 30.0, motion=PAN)])
    export_files(paths, scene, tmp_path / "o.wav")
    y = ear_render(tmp_path / "o.wav", "0+5+0")
    assert y.shape == (2 * FS, 6)
    # at each keyframe (seconds = t x 2 s) the object is on a loudspeaker
    for t, want in ((0.0, "M+030"), (0.5, "M+000"), (1.0, "M-030"), (2.0, "M-110")):
        name, margin = loudest(y, "0+5+0", max(0.0, t - 0.02), min(2.0, t + 0.02))
        assert name == want and margin > 10.0, (t, name, margin)
    # half-way between keyframes it glides, not jumps: at 0.25 s (+15 degrees) M+030 and M+000
    # share it equally, at 0.75 s (-15) M+000 and M-030 (BS.2127 VBAP: equal gains mid-pair)
    names = ear_channels("0+5+0")
    for t, pair in ((0.25, ("M+030", "M+000")), (0.75, ("M+000", "M-030"))):
        db = rms_db(y, t - 0.01, t + 0.01)
        assert abs(db[names.index(pair[0])] - db[names.index(pair[1])]) < 1.0, (t, db)
    # the level holds along the path (power-preserving panner, 5-degree blocks): the loudspeakers'
    # total over each 0.1 s is the stem's own level there, within 0.15 dB
    x = noise(2.0, 7).astype(np.float64)[:, None]
    gains = [10 * np.log10(np.sum(10 ** (rms_db(y, s, s + 0.1) / 10))) - rms_db(x, s, s + 0.1)[0]
             for s in np.arange(0.0, 1.9, 0.1)]  # fmt: skip
    assert np.max(np.abs(gains)) < 0.15, gains


def test_motion_blocks_follow_positions_at_on_the_render_time_base():
    scene = Scene.from_dict(json.loads(json.dumps({"version": "1.0", "bed": {"layout": "binaural"},
        "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 1},
        "objects": [obj("m", 30.0, motion=PAN)]})))  # fmt: skip
    o = scene.objects[0]
    end = 2 * TICKS_PER_S
    blocks = object_blocks(o, 2.0, end)
    # contiguous from 0 to the end, exact on the 10-microsecond grid
    assert blocks[0].rtime == 0 and blocks[-1].rtime + blocks[-1].duration == end
    assert all(a.rtime + a.duration == b.rtime for a, b in zip(blocks[:-1], blocks[1:], strict=True))
    # the first block holds the start (jump), the others glide to the path's position at their end
    assert blocks[0].jump and blocks[0].duration == round(FIRST_BLOCK_S * TICKS_PER_S) and blocks[0].azimuth == 30.0
    assert not any(b.jump for b in blocks[1:])
    ends = np.array([b.rtime + b.duration for b in blocks[1:]]) / TICKS_PER_S
    want = o.position_at(ends / 2.0)
    got = np.array([(b.azimuth, b.elevation) for b in blocks[1:]])
    assert np.allclose(got, want[:, :2], atol=1e-9)
    # every keyframe time is a block boundary, and no block moves more than MAX_STEP_DEG
    bounds = {b.rtime for b in blocks}
    assert {50_000, 100_000} <= bounds  # 0.5 s and 1.0 s
    az = np.array([blocks[0].azimuth] + [b.azimuth for b in blocks[1:]])
    assert np.max(np.abs(np.diff(az))) <= MAX_STEP_DEG + 1e-3  # + the 10-microsecond grid's rounding
    assert len(blocks) == 1 + 6 + 6 + 16  # 30, 30 and 80 degrees in 5-degree steps, plus the first
    # a static object is one block over the whole file
    static = Scene.from_dict({**scene.raw, "objects": [obj("s", -110.0)]}).objects[0]
    assert [(b.rtime, b.duration, b.azimuth) for b in object_blocks(static, 2.0, end)] == [(0, end, -110.0)]


def test_block_values_distance_gain_width_and_times():
    """Gain = object gain x Gravity's 1/r; distance normalised to reference_distance_m; width =
    the renderer's full spread in degrees.
    """
    doc = {"version": "1.0", "bed": {"layout": "binaural"}, "objects": [
        obj("near", 0.0, dist=0.5, gain_db=-6.0, width=0.5), obj("far", 90.0, 20.0, dist=4.0, width=1.0)]}  # fmt: skip
    near, far = Scene.from_dict(doc).objects
    (b,) = object_blocks(near, 1.0, 100_000)
    assert b.distance == pytest.approx(0.5) and b.gain == pytest.approx(10 ** (-6 / 20) * 2.0) and b.width == 60.0
    (b,) = object_blocks(far, 1.0, 100_000)
    assert (b.azimuth, b.elevation, b.distance, b.width) == (90.0, 20.0, 1.0, 120.0)
    assert b.gain == pytest.approx(0.25)  # 4 m: -12.04 dB
    cfg = RenderConfig(reference_distance_m=2.0, max_spread_deg=30.0)
    (b,) = object_blocks(far, 1.0, 100_000, cfg)
    assert (b.distance, b.width, b.gain) == (1.0, 60.0, pytest.approx(0.5))
    assert adm_time(0) == "00:00:00.00000" and adm_time(366_012_345) == "01:01:00.12345"
    # the programme ends at the first grid time at or after the last sample: 1 s + 1 sample
    adm = build_adm(Scene.from_dict(doc), FS + 1, FS)
    assert adm.end == 100_003 and adm.blocks[0][-1].rtime + adm.blocks[0][-1].duration == 100_003


# ------------------------------------------------------------------ grouped stems
def test_grouped_stems_are_tracks_of_one_object_and_render_as_their_sum(tmp_path):
    b, c = noise(1.0, 11), noise(1.0, 12, level=0.05)
    paths = write_stems(tmp_path / "stems", {"b": b, "c": c, "bc": b + c})
    group = write_scene(tmp_path / "g.json", [obj("pair", -110.0, dist=2.0, gain_db=-3.0, stems=["b", "c"])])
    summed = write_scene(tmp_path / "s.json", [obj("pair", -110.0, dist=2.0, gain_db=-3.0, stems=["bc"])])
    rg = export_files(paths[:2], group, tmp_path / "g.wav")
    export_files(paths[2:], summed, tmp_path / "s.wav")
    assert rg.tracks == (("pair", "b"), ("pair", "c")) and rg.objects == ("pair",)
    yg, ys = ear_render(tmp_path / "g.wav", "4+5+0"), ear_render(tmp_path / "s.wav", "4+5+0")
    # panning is linear: the two tracks at one position render as their sum (float32 sums, 24 bit)
    assert np.max(np.abs(yg - ys)) < 4 / 2**23
    assert loudest(yg, "4+5+0", 0.0, 1.0)[0] == "M-110"
    # gain -3 dB and 2 m (-6.02 dB) travel in the block gain: the loudspeakers' total level
    total = 10 * np.log10(np.sum(np.mean(yg**2, axis=0)))
    assert total == pytest.approx(10 * np.log10(np.mean((b + c).astype(np.float64) ** 2)) - 9.02, abs=0.05)


# ------------------------------------------------------------------ stems and objects, as gravity render
def test_an_object_without_a_stem_fails_as_render_does_and_leaves_nothing(tmp_path):
    paths = write_stems(tmp_path / "stems", {"a": noise(0.5, 1)})
    scene = write_scene(tmp_path / "s.json", [obj("a", 0.0), obj("ghost", 30.0)])
    with pytest.raises(RenderError) as exported:
        export_files(paths, scene, tmp_path / "o.wav")
    with pytest.raises(RenderError) as rendered:
        render_files(paths, scene, tmp_path / "r.wav", fmt="stereo", progress=False)
    assert str(exported.value) == str(rendered.value)
    assert "object 'ghost' needs stem 'ghost'" in str(exported.value)
    assert sorted(os.listdir(tmp_path)) == ["s.json", "stems"]


def test_a_stem_without_an_object_is_said_and_left_out(tmp_path, caplog):
    paths = write_stems(tmp_path / "stems", {"a": noise(0.5, 1), "extra": noise(0.7, 2)})
    scene = write_scene(tmp_path / "s.json", [obj("a", 0.0)])
    with caplog.at_level(logging.WARNING):
        rep = export_files(paths, scene, tmp_path / "o.wav")
    assert rep.unused_files == (str(paths[1]),) and rep.tracks == (("a", "a"),)
    assert any("extra.wav: no scene object uses this stem" in r.getMessage() for r in caplog.records)
    # as in a render, the unused stem still sets nothing: the file is as long as the stems used
    assert sf.info(str(tmp_path / "o.wav")).frames == round(0.5 * FS)


def test_stems_at_another_rate_are_read_as_render_reads_them(tmp_path):
    """A 44.1 kHz stereo stem: resampled and downmixed by the render's reader, to the sample."""
    x = np.stack([noise(0.5, 3), noise(0.5, 4)], axis=1)[: round(0.5 * 44100)]
    sf.write(tmp_path / "v.wav", x, 44100, subtype="FLOAT")
    scene = write_scene(tmp_path / "s.json", [obj("v", 0.0)])
    export_files([tmp_path / "v.wav"], scene, tmp_path / "o.wav", bits=32)
    got, fs = sf.read(tmp_path / "o.wav", dtype="float64")
    want = load_stems([tmp_path / "v.wav"], Scene.load(tmp_path / "s.json"), FS)[0][0]
    assert fs == FS and got.shape == want.shape == (round(0.5 * FS),)
    assert np.max(np.abs(got - want)) <= 0.5 / 2**31 + 1e-12


def test_samples_beyond_full_scale_are_clipped_counted_and_said(tmp_path, caplog):
    x = np.array([0.5, 1.5, -2.0, 0.25] * 240, np.float32)
    paths = write_stems(tmp_path, {"hot": x})
    scene = write_scene(tmp_path / "s.json", [obj("hot", 0.0)])
    with caplog.at_level(logging.WARNING):
        rep = export_files(paths, scene, tmp_path / "o.wav", bits=16)
    assert rep.clipped_samples == 480 and rep.peak_dbfs == pytest.approx(20 * np.log10(2.0))
    assert any("480 samples exceed full scale" in r.getMessage() for r in caplog.records)
    y, _ = sf.read(tmp_path / "o.wav", dtype="int16")
    assert y[:4].tolist() == [16384, 32767, -32768, 8192]


# ------------------------------------------------------------------ BW64 / ds64
def test_a_file_over_4_gib_gets_the_bw64_header_with_ds64_sizes():
    """The header alone (written before any sample): 40 tracks x 24 bit x 10 h is 155 GiB."""
    n = 10 * 3600 * FS
    buf = io.BytesIO()
    chna = [ChnaEntry(1, "ATU_00000001", "AT_00011001_01", "AP_00031001")]
    w = Bw64Writer(buf, channels=40, rate=FS, bits=24, n_frames=n, chna=chna, axml=b"<x/>")
    head = buf.getvalue()
    assert w.bw64 and head[:4] == b"BW64" and head[4:8] == b"\xff\xff\xff\xff" and head[8:12] == b"WAVE"
    assert head[12:16] == b"ds64" and struct.unpack("<I", head[16:20]) == (28,)
    riff, data, dummy, table = struct.unpack("<QQQI", head[20:48])
    assert data == n * 40 * 3 and table == 0 and dummy == 0
    assert riff == w.file_bytes - 8 and riff > MAX_RIFF_BYTES
    assert head[-8:] == b"data\xff\xff\xff\xff"  # the real size is the ds64's
    assert len(head) + data == w.file_bytes
    small = Bw64Writer(io.BytesIO(), channels=40, rate=FS, bits=24, n_frames=FS, chna=chna, axml=b"<x/>")
    assert not small.bw64


def test_ear_reads_the_bw64_form_as_the_riff_form(static_export, tmp_path):
    d = static_export
    rep = export_files(d["paths"], d["scene"], tmp_path / "mix.wav", force_bw64=True)
    data = (tmp_path / "mix.wav").read_bytes()
    assert rep.bw64 and data[:4] == b"BW64" and data[12:16] == b"ds64" and len(data) == rep.file_bytes
    riff = d["out"].read_bytes()  # the same chunks after the first 48 bytes (JUNK <-> ds64)
    assert riff[:4] == b"RIFF" and riff[12:16] == b"JUNK" and riff[48:] .replace(
        b"data" + struct.pack("<I", 4 * 3 * FS), b"data\xff\xff\xff\xff") == data[48:]  # fmt: skip
    assert np.array_equal(ear_render(tmp_path / "mix.wav", "0+5+0"), ear_render(d["out"], "0+5+0"))


# ------------------------------------------------------------------ the command line
def test_gravity_export_and_render_format_adm_write_the_same_file(static_export, tmp_path, capsys):
    from gravity.cli import main

    d = static_export
    (tmp_path / "e").mkdir()
    (tmp_path / "r").mkdir()
    stems = [str(p) for p in d["paths"]]
    assert main(["export", *stems, "--scene", str(d["scene"]), "-o", str(tmp_path / "e" / "mix.wav"), "--quiet"]) == 0
    assert "ADM BW64, 4 tracks for 4 objects" in capsys.readouterr().err
    argv = ["render", *stems, "--scene", str(d["scene"]), "-o", str(tmp_path / "r" / "mix.wav"), "--format", "adm"]
    assert main([*argv, "--quiet"]) == 0
    exported = (tmp_path / "e" / "mix.wav").read_bytes()
    assert exported == (tmp_path / "r" / "mix.wav").read_bytes() == d["out"].read_bytes()
    # a folder of stems holding an export: the export is known for Gravity's own file and skipped
    folder = tmp_path / "stems"
    folder.mkdir()
    for p in d["paths"]:
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "mix.wav").write_bytes(exported)
    assert main(["export", str(folder), "--scene", str(d["scene"]), "-o", str(tmp_path / "mix.wav"), "--quiet"]) == 0
    assert f"note: {folder / 'mix.wav'}: skipped, written by gravity-render" in capsys.readouterr().err
    assert (tmp_path / "mix.wav").read_bytes() == exported


def test_gravity_export_errors_are_one_line_and_write_nothing(static_export, tmp_path, capsys):
    from gravity.cli import main

    d = static_export
    stems = [str(p) for p in d["paths"]]
    cases = [
        (["-o", str(tmp_path / "mix.flac")], "mix.flac: an ADM BW64 file is a WAVE file; name it .wav"),
        (["-o", stems[0]], "refusing to overwrite an input (name another output, or pass --force"),
        (["-o", str(tmp_path / "no" / "mix.wav")], "output folder"),
    ]
    for extra, needle in cases:
        assert main(["export", *stems, "--scene", str(d["scene"]), *extra]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("gravity: error: ") and needle in err, err
    assert main(["export", stems[0], "--scene", str(d["scene"]), "-o", str(tmp_path / "mix.wav")]) == 1
    assert "object 'surround_right' needs stem 'surround_right'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:  # a usage error: argparse's one line, exit 2
        main(["export", *stems, "--scene", str(d["scene"]), "-o", str(tmp_path / "m.wav"), "--bits", "8"])
    assert usage.value.code == 2
    assert os.listdir(tmp_path) == []
