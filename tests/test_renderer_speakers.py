"""Loudspeaker renders (issue 19): layouts, the BS.2127 point-source panner, and what comes out.

The reference is the EBU ADM Renderer (``ear``, its own venv: ``make ear-venv``): its
point-source panner (``ear.core.point_source.configure``) is run by subprocess on the same
directions and its gains are compared per loudspeaker, for the panner alone and for real renders
(``gravity render --format 5.1``, and a 7.1.4 / 9.1.6 render in process). The acceptance bound is
1 dB on every loudspeaker ear gives more than -20 dB re its loudest; the measured agreement is
~1e-13 dB (the same algorithm), which the tests hold too.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from gravity.scene import Scene
from renderer import RenderConfig, Renderer, render_files
from renderer.config import FORMATS, SPEAKER_CHANNELS
from renderer.loudness import loudness
from renderer.offline import write_audio_atomic
from renderer.speakers import LAYOUTS, cartesian, layout, panner
from helpers import ear_tool

ROOT = Path(__file__).resolve().parent.parent
FS = 48000
DRY = RenderConfig(reverb=False, early_reflections=False)
NAMES = ("5.1", "5.1.2", "5.1.4", "7.1", "7.1.2", "7.1.4", "9.1.6", "4+9+0")

# ------------------------------------------------------------------ the reference: ear's panner
#: Run in ear's venv: {"layouts": {name: "0+5+0" | [[label, az, el], ...]}, "dirs": [[az, el]...]}
#: on stdin -> {name: {"names": [...], "gains": [[...]...]}} on stdout (non-LFE channels).
EAR_SCRIPT = """
import json, sys
from ear.core import bs2051, point_source
from ear.core.geom import PolarPosition, cart
from ear.core.layout import Channel, Layout
req = json.load(sys.stdin)
out = {}
for name, spec in req["layouts"].items():
    if isinstance(spec, str):
        lay = bs2051.get_layout(spec).without_lfe
    else:  # a layout BS.2051 does not have (Dolby's 7.1.2, 9.1.6): built from its positions
        lay = Layout(name=name, channels=[Channel(name=n, polar_position=PolarPosition(a, e, 1.0))
                                          for n, a, e in spec])
    psp = point_source.configure(lay)
    out[name] = {"names": lay.channel_names,
                 "gains": [list(psp.handle(cart(a, e, 1.0))) for a, e in req["dirs"][name]]}
json.dump(out, sys.stdout)
"""


def ear_gains(dirs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Ear's point-source gains, (n_dirs, n_speakers) per layout, in our order without the LFE."""
    layouts: dict[str, Any] = {}
    for name in dirs:
        lay = LAYOUTS[name]
        layouts[name] = lay.bs2051 or [[s.name, s.az_deg, s.el_deg] for s in lay.speakers if not s.is_lfe]
    doc = {"layouts": layouts, "dirs": {k: np.asarray(v).tolist() for k, v in dirs.items()}}
    r = subprocess.run(
        [str(ear_tool("python")), "-W", "ignore", "-c", EAR_SCRIPT],
        input=json.dumps(doc), capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = {}
    for name, res in json.loads(r.stdout).items():
        lay = LAYOUTS[name]
        assert tuple(res["names"]) == tuple(lay.channel_names[i] for i in lay.main), (name, res["names"])
        out[name] = np.array(res["gains"])
    return out


def deviation_db(ours: np.ndarray, ref: np.ndarray, floor_db: float = -20.0) -> float:
    """Largest |level difference| in dB over the loudspeakers ``ref`` drives above ``floor_db``
    re its loudest (per direction, the acceptance rule).
    """
    loud = ref > ref.max(axis=-1, keepdims=True) * 10 ** (floor_db / 20)
    return float(np.max(np.abs(20 * np.log10(ours[loud] / ref[loud]))))


def sphere_grid(step: float = 10.0, n_random: int = 200) -> np.ndarray:
    """(az, el) pairs: a ``step``-degree grid (poles included) plus uniform random directions."""
    az, el = np.meshgrid(np.arange(-180.0, 180.0, step), np.arange(-90.0, 90.0 + 1e-9, step))
    rng = np.random.default_rng(19)
    rnd = np.stack([rng.uniform(-180, 180, n_random), np.degrees(np.arcsin(rng.uniform(-1, 1, n_random)))], 1)
    return np.concatenate([np.stack([az.ravel(), el.ravel()], 1), rnd])


@pytest.fixture(scope="module")
def grid_vs_ear() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    dirs = sphere_grid()
    return dirs, ear_gains(dict.fromkeys(NAMES, dirs))


# ------------------------------------------------------------------ layouts
def test_layouts_channel_order_and_counts() -> None:
    assert layout("5.1").channel_names == ("M+030", "M-030", "M+000", "LFE1", "M+110", "M-110")
    assert layout("0+5+0") is layout("5.1")
    assert layout("7.1.4").channel_names == (
        "M+030", "M-030", "M+000", "LFE1", "M+090", "M-090", "M+135", "M-135", "U+045", "U-045", "U+135", "U-135",
    )  # fmt: skip
    l916 = layout("9.1.6")
    assert l916.channel_names[8:10] == ("M+060", "M-060")  # Dolby's wides after the 7.1 bed
    tops = {s.name: (s.az_deg, s.el_deg) for s in l916.speakers if s.name[0] == "U"}
    assert tops == {"U+045": (45, 45), "U-045": (-45, 45), "U+090": (90, 45), "U-090": (-90, 45),
                    "U+135": (135, 45), "U-135": (-135, 45)}  # fmt: skip
    for name, n in SPEAKER_CHANNELS.items():
        assert layout(name).n_channels == n == RenderConfig(fmt=name).n_channels, name  # type: ignore[arg-type]
        assert name in FORMATS
        assert [s.name for s in layout(name).speakers if s.is_lfe] == ["LFE1"]
    with pytest.raises(KeyError, match="unknown loudspeaker layout '6.1'"):
        layout("6.1")


# ------------------------------------------------------------------ the panner, measured
@pytest.mark.parametrize("name", NAMES)
def test_a_source_at_a_loudspeaker_is_on_that_loudspeaker_alone(name: str) -> None:
    lay = layout(name)
    main = [lay.speakers[i] for i in lay.main]
    g = panner(name).gains([s.az_deg for s in main], [s.el_deg for s in main])
    np.testing.assert_allclose(g[:, lay.main], np.eye(len(main)), atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_power_sum_one_gains_positive_lfe_silent(name: str) -> None:
    dirs = sphere_grid(7.5, 500)
    g = panner(name).gains(dirs[:, 0], dirs[:, 1])
    np.testing.assert_allclose(np.sum(g**2, axis=1), 1.0, atol=1e-12)
    assert g.min() >= 0.0
    assert not g[:, [i for i, s in enumerate(layout(name).speakers) if s.is_lfe]].any()


@pytest.mark.parametrize("name", NAMES)
def test_left_is_left_and_the_panner_is_mirror_symmetric(name: str) -> None:
    lay = layout(name)
    mirror = [lay.channel_names.index(n.replace("+", "#").replace("-", "+").replace("#", "-"))
              if n[1] in "+-" and n[2:] not in ("000",) else i for i, n in enumerate(lay.channel_names)]  # fmt: skip
    dirs = sphere_grid(10.0, 100)
    p = panner(name)
    left = p.gains(dirs[:, 0], dirs[:, 1])
    right = p.gains(-dirs[:, 0], dirs[:, 1])
    np.testing.assert_allclose(left[:, mirror], right, atol=1e-12)
    # +az = left: a source at +70 deg sounds only from loudspeakers with positive azimuth
    g = p.gains(70.0, 0.0)
    on = [lay.speakers[i] for i in np.flatnonzero(g > 1e-9)]
    assert on and all(s.az_deg > 0 for s in on), [s.name for s in on]


def test_known_gains_on_5_1() -> None:
    p = panner("5.1")
    # halfway between M+000 and M+030: VBAP's equal pair, -3.01 dB each
    np.testing.assert_allclose(p.gains(15.0, 0.0), [1 / np.sqrt(2), 0, 1 / np.sqrt(2), 0, 0, 0], atol=1e-12)
    # +70 deg: between M+030 and M+110, g ~ (sin 40, sin 40) normalised -> equal by symmetry of the pair
    np.testing.assert_allclose(p.gains(70.0, 0.0), [1 / np.sqrt(2), 0, 0, 0, 1 / np.sqrt(2), 0], atol=1e-12)
    # a layout with no upper layer: up to +30 deg elevation a source pans as at 0 deg (the extra
    # loudspeakers of BS.2127 6.1.3), overhead it is on all five alike
    np.testing.assert_allclose(p.gains(15.0, 25.0), p.gains(15.0, 0.0), atol=1e-12)
    np.testing.assert_allclose(p.gains(0.0, 90.0), [5**-0.5, 5**-0.5, 5**-0.5, 0, 5**-0.5, 5**-0.5], atol=1e-12)


def test_an_elevated_source_reaches_the_upper_layer() -> None:
    lay, p = layout("7.1.4"), panner("7.1.4")
    upper = [i for i, s in enumerate(lay.speakers) if s.name[0] == "U"]
    g = p.gains(20.0, 15.0)
    on = {lay.channel_names[i] for i in np.flatnonzero(g > 1e-9)}
    assert "U+045" in on and on <= {"M+030", "M+000", "U+045", "U-045", "M+090"}, on
    np.testing.assert_allclose(p.gains(45.0, 30.0)[upper], [1, 0, 0, 0], atol=1e-12)
    # overhead: the virtual top loudspeaker's equal-power downmix, 1/2 on each of the four
    np.testing.assert_allclose(p.gains(0.0, 90.0)[upper], [0.5] * 4, atol=1e-12)
    assert np.sum(p.gains(0.0, 0.0)[upper]) == 0.0  # ear level stays in the mid layer
    # 9.1.6 has Dolby's 45-deg tops: a source at 45 deg up, 90 left is on U+090 alone
    l916 = layout("9.1.6")
    np.testing.assert_allclose(panner("9.1.6").gains(90.0, 45.0)[l916.channel_names.index("U+090")], 1.0, atol=1e-12)


# ------------------------------------------------------------------ against the EBU ADM Renderer
@pytest.mark.parametrize("name", NAMES)
def test_gains_match_the_ebu_adm_renderer_over_the_sphere(name: str, grid_vs_ear) -> None:
    dirs, ref = grid_vs_ear
    assert len(dirs) == 36 * 19 + 200  # 884 static directions: a 10-degree grid and 200 random
    ours = panner(name).gains(dirs[:, 0], dirs[:, 1])[:, layout(name).main]
    assert deviation_db(ours, ref[name]) <= 1.0  # the acceptance bound
    # measured: the same algorithm, so the same gains to rounding (~1e-13 dB), quiet ones included
    assert deviation_db(ours, ref[name]) < 1e-9
    np.testing.assert_allclose(ours, ref[name], atol=1e-12)


def _object(oid: str, az: float, el: float, **kw: Any) -> dict[str, Any]:
    o = {"id": oid, "class": "other", "az_deg": az, "el_deg": el, "dist_m": 1.0, "width": 0.0, "gain_db": 0.0,
         "reverb_send": 0.0, "early_reflections": 0.0}  # fmt: skip
    return o | kw


def _scene_doc(*objects: dict[str, Any], layout_: str = "binaural", seconds: float | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": "1.0", "bed": {"layout": layout_, "room_preset": "studio_small"},
                           "objects": list(objects)}  # fmt: skip
    if seconds is not None:  # 4 one-beat bars
        doc["timing"] = {"bpm": 240.0 / seconds, "time_signature": "1/4", "section_bars": 4}
    return doc


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * FS))).astype(np.float32)


def _levels_db(y: np.ndarray, skip: int = 4800) -> np.ndarray:
    """Per-channel RMS in dB re the total power (y: (n, channels) or (channels, n) as written)."""
    rms = np.sqrt(np.mean(y[:, skip:-skip].astype(np.float64) ** 2, axis=1))
    with np.errstate(divide="ignore"):
        return 20 * np.log10(rms / np.sqrt(np.sum(rms**2)))


def test_gravity_render_format_5_1_levels_match_ear(tmp_path: Path) -> None:
    """A static noise object at (+70, 0) and one at (-150, 10) rendered by the command line: per
    loudspeaker RMS within 1 dB of ear's gains (measured: 1e-8 dB: the gains are broadband).
    """
    dirs = np.array([[70.0, 0.0], [-150.0, 10.0]])
    ref = ear_gains({"5.1": dirs})["5.1"]
    for k, (az, el) in enumerate(dirs):
        sf.write(tmp_path / "noise.wav", _noise(2.0, k), FS, subtype="FLOAT")
        (tmp_path / "s.json").write_text(json.dumps(_scene_doc(_object("noise", az, el))))
        out = tmp_path / f"o{k}.wav"
        r = subprocess.run(
            [sys.executable, "-m", "gravity", "render", str(tmp_path / "noise.wav"),
             "--scene", str(tmp_path / "s.json"), "-o", str(out), "--format", "5.1",
             "--no-reverb", "--no-early-reflections", "--quiet"],
            capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr
        y, rate = sf.read(out, always_2d=True)
        assert rate == FS and y.shape[1] == 6
        assert not y[:, 3].any()  # LFE1: no object content
        lv = _levels_db(y.T)[layout("5.1").main]
        ref_db = 20 * np.log10(np.maximum(ref[k], 1e-12))
        loud = ref_db > ref_db.max() - 20
        assert np.max(np.abs(lv[loud] - ref_db[loud])) < 1.0, (lv, ref_db)
        assert np.all(lv[~loud] < -60)  # the others silent (ear: exactly 0 there)
    # the WAV says where its channels go: WAVE_FORMAT_EXTENSIBLE, mask FL FR FC LFE BL BR
    assert _wav_mask(out) == 0x3F


@pytest.mark.parametrize(("name", "az", "el"), [("7.1.4", 100.0, 20.0), ("9.1.6", -60.0, 30.0), ("5.1.4", 150.0, 25.0)])
def test_an_elevated_render_matches_ear(name: str, az: float, el: float) -> None:
    """In process: a static noise object, direct sound only; per-loudspeaker RMS vs ear."""
    ref = ear_gains({name: np.array([[az, el]])})[name][0]
    scene = Scene.from_dict(_scene_doc(_object("n", az, el)))
    r = Renderer(scene, FS, DRY.replace(fmt=name))
    x = _noise(1.0)[None]
    y = np.concatenate([r.process(x), r.process(np.zeros_like(x))], axis=1)[:, r.latency_samples :][:, : x.shape[1]]
    lay = layout(name)
    assert y.shape[0] == lay.n_channels and not y[lay.channel_names.index("LFE1")].any()
    lv = _levels_db(y)[lay.main]
    ref_db = 20 * np.log10(np.maximum(ref, 1e-12))
    loud = ref_db > ref_db.max() - 20
    assert np.max(np.abs(lv[loud] - ref_db[loud])) < 1.0, (lv, ref_db)
    upper = [k for k, i in enumerate(lay.main) if lay.speakers[i].name[0] == "U"]
    assert np.max(lv[upper]) > -12  # the elevated source is heard from the upper layer


# ------------------------------------------------------------------ the renderer around the panner
def test_a_moving_object_follows_from_left_surround_to_right_surround() -> None:
    """Keyframes +110 -> 0 -> -110 over 3 s: the loudest loudspeaker of each second follows."""
    kf = [{"t": t, "az_deg": az, "el_deg": 0.0, "dist_m": 1.0} for t, az in ((0.0, 110.0), (0.5, 0.0), (1.0, -110.0))]
    scene = Scene.from_dict(_scene_doc(_object("n", 110.0, 0.0, motion=kf), seconds=3.0))
    r = Renderer(scene, FS, DRY.replace(fmt="5.1"))
    x = _noise(3.0)[None]
    y = np.concatenate([r.process(x), r.process(np.zeros_like(x))], axis=1)[:, r.latency_samples :][:, : x.shape[1]]
    names = layout("5.1").channel_names
    loudest = [
        names[int(np.argmax(np.sum(y[:, s : s + 4800] ** 2, axis=1)))] for s in (0, 3 * FS // 2 - 2400, 3 * FS - 4800)
    ]
    assert loudest == ["M+110", "M+000", "M-110"]


def test_the_reverb_is_even_on_every_loudspeaker_and_not_in_the_lfe() -> None:
    """An impulse with reverb_send 1: the reverb (wet minus dry render) has energy 1/11 in each
    of the eleven loudspeakers of 7.1.4 (power sum 1, as a panned source), none in the LFE.
    """

    def impulse_response(send: float) -> np.ndarray:
        scene = Scene.from_dict(_scene_doc(_object("n", 30.0, 0.0, reverb_send=send)))
        r = Renderer(scene, FS, RenderConfig(fmt="7.1.4", early_reflections=False))
        x = np.zeros((1, 2 * FS), np.float32)
        x[0, 0] = 1.0
        return np.concatenate([r.process(x), r.process(np.zeros_like(x))], axis=1).astype(np.float64)

    rev = impulse_response(1.0) - impulse_response(0.0)
    lay = layout("7.1.4")
    assert not rev[lay.channel_names.index("LFE1")].any()
    e = np.sum(rev[lay.main] ** 2, axis=1)
    np.testing.assert_allclose(e, 1 / 11, rtol=1e-3)
    # decorrelated: no two loudspeakers carry the same signal (|normalised correlation| < 0.1)
    c = np.corrcoef(rev[lay.main])
    assert np.max(np.abs(c - np.eye(11))) < 0.1


def test_a_wide_object_spreads_over_more_loudspeakers() -> None:
    def powers(width: float) -> np.ndarray:
        scene = Scene.from_dict(_scene_doc(_object("n", 0.0, 0.0, width=width)))
        r = Renderer(scene, FS, DRY.replace(fmt="7.1"))
        x = _noise(1.0)[None]
        y = np.concatenate([r.process(x), r.process(np.zeros_like(x))], axis=1)
        return np.sum(y.astype(np.float64) ** 2, axis=1)

    narrow, wide = powers(0.0), powers(1.0)
    names = layout("7.1").channel_names
    assert np.count_nonzero(narrow > narrow.max() * 1e-6) == 1  # only M+000
    on = {names[i] for i in np.flatnonzero(wide > wide.max() * 0.01)}
    assert {"M+030", "M-030", "M+000"} <= on and "LFE1" not in on  # +-60 deg of spread


def test_block_size_independent_silence_in_silence_out_and_finite() -> None:
    """The streaming contract holds for loudspeakers too: any block size gives the same samples
    (moving, wide, reflections, reverb), silence gives silence, and huge inputs stay finite.
    """
    kf = [
        {"t": t, "az_deg": az, "el_deg": el, "dist_m": d}
        for t, az, el, d in ((0, 0, 0, 2), (0.5, 120, 40, 1), (1, -170, 0, 5))
    ]
    a = _object("a", 0.0, 0.0, width=0.7, reverb_send=0.3, early_reflections=0.5, motion=kf)
    b = _object("b", -40.0, 10.0, dist_m=3.0, reverb_send=0.1, early_reflections=0.3)
    scene = Scene.from_dict(_scene_doc(a, b, seconds=1.0))
    x = np.stack([_noise(1.0, 1), _noise(1.0, 2)])
    cfg = RenderConfig(fmt="9.1.6")
    outs = []
    for block in (100, 1000, 48000):
        r = Renderer(scene, FS, cfg)
        outs.append(np.concatenate([r.process(x[:, s : s + block]) for s in range(0, x.shape[1], block)], axis=1))
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    assert outs[0].shape[0] == 16 and np.any(outs[0])
    r = Renderer(scene, FS, cfg)
    assert not r.process(np.zeros_like(x)).any()
    big = np.full_like(x, 3e38)
    assert np.all(np.isfinite(r.process(big))) and np.all(np.isfinite(r.process(np.zeros_like(x))))


# ------------------------------------------------------------------ loudness, files, CLI default
def test_bs1770_weights_of_loudspeaker_layouts() -> None:
    np.testing.assert_allclose(layout("5.1").bs1770_weights, [1, 1, 1, 0, 1.41, 1.41])
    w = dict(zip(layout("7.1.4").channel_names, layout("7.1.4").bs1770_weights, strict=True))
    assert (w["M+090"], w["M+135"], w["U+045"], w["LFE1"]) == (1.41, 1.0, 1.0, 0.0)
    # a 1 kHz tone in M+110 reads 10 log10(1.41) = 1.49 dB louder than in M+030; in the LFE, -inf
    t = (0.1 * np.sin(2 * np.pi * 1000 * np.arange(2 * FS) / FS)).astype(np.float32)
    y = np.zeros((6, t.size), np.float32)
    y[0] = t
    front = loudness(y, FS, fmt="5.1")[0]
    y[[0, 4]] = y[[4, 0]]
    assert loudness(y, FS, fmt="5.1")[0] - front == pytest.approx(10 * np.log10(1.41), abs=1e-6)
    y[[4, 3]] = y[[3, 4]]
    assert loudness(y, FS, fmt="5.1")[0] == float("-inf")


def _wav_mask(path: Path) -> int | None:
    """The dwChannelMask of a WAVE_FORMAT_EXTENSIBLE file, None for a plain WAV."""
    b = path.read_bytes()[:200]
    i = b.find(b"fmt ")
    if struct.unpack("<H", b[i + 8 : i + 10])[0] != 0xFFFE:
        return None
    return int(struct.unpack("<I", b[i + 28 : i + 32])[0])


@pytest.mark.parametrize(
    ("name", "mask"),
    [("5.1", 0x3F), ("5.1.2", 0x503F), ("5.1.4", 0x2D03F), ("7.1", None), ("7.1.4", None), ("9.1.6", None)],
)
def test_the_wav_channel_mask_where_the_order_allows_one(tmp_path: Path, name: str, mask: int | None) -> None:
    y = np.zeros((layout(name).n_channels, 480), np.float32)
    out = tmp_path / "o.wav"
    write_audio_atomic(out, y, FS, "PCM_24", name)
    assert _wav_mask(out) == mask
    with sf.SoundFile(out) as f:
        assert f.channels == layout(name).n_channels and f.software.startswith("gravity-render")


def test_render_files_writes_every_loudspeaker_format(tmp_path: Path) -> None:
    sf.write(tmp_path / "n.wav", _noise(0.5), FS, subtype="FLOAT")
    scene = Scene.from_dict(_scene_doc(_object("n", 20.0, 40.0, reverb_send=0.3, early_reflections=0.5)))
    for name in ("4+9+0", "7.1.2", "2+5+0"):
        rep = render_files([tmp_path / "n.wav"], scene, tmp_path / f"{name}.wav", fmt=name, progress=False)
        y, _ = sf.read(tmp_path / f"{name}.wav", always_2d=True)
        assert rep.channels == y.shape[1] == layout(name).n_channels
        assert np.isfinite(rep.loudness_lufs) and np.all(np.isfinite(y))
        assert not y[:, layout(name).channel_names.index("LFE1")].any()


def test_without_format_the_scene_target_format_is_rendered(tmp_path: Path) -> None:
    from gravity.cli.render import _default_format, _read_scene

    for target, expected in (("7.1.4", "7.1.4"), ("5.1", "5.1"), ("stereo", "stereo"), ("iamf", "binaural"),
                             ("atmos", "binaural"), ("binaural", "binaural")):  # fmt: skip
        (tmp_path / "s.json").write_text(json.dumps(_scene_doc(_object("n", 0.0, 0.0), layout_=target)))
        assert _default_format(_read_scene(str(tmp_path / "s.json"))) == expected
    assert _default_format(None) == "binaural"  # a planned render: the analysis's target (binaural)
    assert _read_scene(str(tmp_path / "missing.json")) is None  # render_files names the problem
    # and the command: a scene planned for 7.1.4 renders 12 channels without --format
    (tmp_path / "s.json").write_text(json.dumps(_scene_doc(_object("noise", 45.0, 30.0), layout_="7.1.4")))
    sf.write(tmp_path / "noise.wav", _noise(1.0), FS, subtype="FLOAT")
    r = subprocess.run(
        [sys.executable, "-m", "gravity", "render", str(tmp_path / "noise.wav"), "--scene", str(tmp_path / "s.json"),
         "-o", str(tmp_path / "o.wav"), "--no-reverb", "--no-early-reflections", "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    y, _ = sf.read(tmp_path / "o.wav", always_2d=True)
    assert y.shape[1] == 12
    assert int(np.argmax(np.sum(y**2, axis=0))) == layout("7.1.4").channel_names.index("U+045")


def test_cartesian_axes_are_adm_x_right_y_front_z_up() -> None:
    np.testing.assert_allclose(
        cartesian([0, 90, -90, 0], [0, 0, 0, 90]), [[0, 1, 0], [-1, 0, 0], [1, 0, 0], [0, 0, 1]], atol=1e-15
    )
