"""Renderer tests: measured behaviour on the embedded MIT KEMAR set (issue #3).

Every test measures something (levels, delays, errors against references), never "it ran".
ITDs are "right-ear arrival minus left-ear arrival": positive = left ear leads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import scipy.signal as ss

import hrtf
from gravity.motion import positions_at
from gravity.scene import Scene
from helpers import ild_db, lf_itd_s
from hrtf.dsp import fractional_delay
from renderer import (
    FDNReverb,
    FIRBank,
    RenderConfig,
    Renderer,
    Shoebox,
    limit,
    measure,
    sn3d_gains,
    stereo_gains,
)
from renderer.engine import ConvolutionEngine, frame_size
from renderer.kernels import FilterParams, FilterTables
from renderer.formats import diffuse_field_eq
from renderer.sources import (
    DelayLine,
    decorrelation_filters,
    distance_gain,
    spread_directions,
    spread_offsets,
)

FS = 48000
#: Plain HRTF rendering: no equaliser, no air, no room -- compares with the measurements.
DRY = RenderConfig(hrtf_eq="none", air_absorption=False, reverb=False, early_reflections=False)


@pytest.fixture(scope="module")
def model() -> hrtf.HRTFModel:
    return hrtf.load_model(rate=FS)


@pytest.fixture(scope="module")
def measured() -> hrtf.HRIRSet:
    """The raw KEMAR measurements, resampled to the render rate."""
    return hrtf.resample(hrtf.load_sofa(hrtf.default_sofa_path()), FS)


def obj(id_: str, az: float, el: float = 0.0, dist: float = 1.0, **kw: Any) -> dict[str, Any]:
    o = {
        "id": id_,
        "class": "other",
        "az_deg": az,
        "el_deg": el,
        "dist_m": dist,
        "width": 0.0,
        "gain_db": 0.0,
        "reverb_send": 0.0,
        "early_reflections": 0.0,
    }
    o.update(kw)
    return o


def make_scene(
    *objects: dict[str, Any],
    room: str = "studio_small",
    seconds: float | None = None,
    layout: str = "binaural",
) -> Scene:
    doc: dict[str, Any] = {
        "version": "1.0",
        "bed": {"layout": layout, "room_preset": room},
        "objects": list(objects),
    }
    if seconds is not None:
        # k bars of one beat each last `seconds`: bpm = 60 k / seconds, k keeping bpm >= 20.
        k = max(1, math.ceil(seconds / 3.0))
        doc["timing"] = {"bpm": 60.0 * k / seconds, "time_signature": "1/4", "section_bars": k}
    return Scene.from_dict(doc)


def render(
    scene: Scene,
    x: np.ndarray,
    cfg: RenderConfig = DRY,
    model: hrtf.HRTFModel | None = None,
    block: int = 4096,
    tail: int = 0,
    keep_lookahead: bool = False,
) -> np.ndarray:
    """Stream x (objects, n) through a Renderer; output aligned with the input (latency removed).

    With ``keep_lookahead`` only the hop latency is removed: the output then starts
    ``cfg.lookahead`` samples early and includes the band-limited pre-ringing of the
    fractional delays (what an ideal delay puts before the onset).
    """
    r = Renderer(scene, FS, cfg, model=model)
    x = np.atleast_2d(np.asarray(x, np.float32))
    total = x.shape[1] + tail + r.latency_samples
    xp = np.concatenate([x, np.zeros((x.shape[0], total - x.shape[1]), np.float32)], axis=1)
    y = np.concatenate([r.process(xp[:, s : s + block]) for s in range(0, total, block)], axis=1)
    return y[:, r.block_unit :] if keep_lookahead else y[:, r.latency_samples :]


def impulse(n: int = 4096, n_obj: int = 1) -> np.ndarray:
    x = np.zeros((n_obj, n), np.float32)
    x[:, 0] = 1.0
    return x


def noise(n: int, n_obj: int = 1, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal((n_obj, n)) * 0.1).astype(np.float32)


def third_octave_db(ir: np.ndarray, fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    n = 8192
    p = np.abs(np.fft.rfft(ir, n, axis=-1)) ** 2
    f = np.fft.rfftfreq(n, 1.0 / fs)
    fc = 1000.0 * 2.0 ** (np.arange(-16, 13) / 3.0)
    out = [10 * np.log10(p[..., (f >= c / 2 ** (1 / 6)) & (f < c * 2 ** (1 / 6))].mean(-1)) for c in fc]
    return fc, np.stack(out, axis=-1)


def iacc(y: np.ndarray, max_lag_s: float = 1e-3) -> float:
    """Interaural cross-correlation coefficient: max |normalised xcorr| within +-1 ms."""
    a, b = y[0].astype(np.float64), y[1].astype(np.float64)
    c = ss.correlate(a, b, mode="full", method="fft") / np.sqrt(np.sum(a * a) * np.sum(b * b))
    mid = len(b) - 1
    k = int(max_lag_s * FS)
    return float(np.max(np.abs(c[mid - k : mid + k + 1])))


# ------------------------------------------------------------------ HRTF fidelity


MEASURED_DIRS = [
    (90.0, 0.0),
    (-90.0, 0.0),
    (30.0, 0.0),
    (0.0, 0.0),
    (180.0, 0.0),
    (135.0, 20.0),
    (-60.0, -20.0),
    (45.0, 40.0),
    (0.0, 90.0),
]


@pytest.mark.parametrize(("az", "el"), MEASURED_DIRS)
def test_dirac_reproduces_the_hrir_pair(model, measured, az, el):
    """A Dirac at a measured KEMAR direction gives that HRIR pair.

    Exactly the preprocessed model's pair (engine error < -80 dB), and the raw measurement
    (resampled to 48 kHz) within 0.15 dB energy, 0.5 dB RMS / 1.5 dB max in third-octave
    bands 200 Hz-16 kHz and 15 us low-frequency ITD (the minimum-phase + delay model changes
    phase above ~1.5 kHz only, and truncation to 256 taps drops a late measurement echo).
    """
    y = render(make_scene(obj("a", az, el)), impulse(), model=model).astype(np.float64)
    ref = model.full_hrir(az, el).astype(np.float64)
    err = y[:, : ref.shape[1]] - ref
    assert 10 * np.log10(np.sum(err**2) / np.sum(ref**2)) < -80.0
    assert np.sum(y[:, ref.shape[1] :] ** 2) < 1e-8 * np.sum(ref**2)

    az_m = hrtf.wrap_azimuth(measured.az_deg)
    i = np.flatnonzero((np.abs(az_m - hrtf.wrap_azimuth(az)) < 1e-6) & (np.abs(measured.el_deg - el) < 1e-6))
    assert i.size == 1, "test direction must be a measured one"
    hr = measured.ir[i[0]].astype(np.float64)
    energy_db = 10 * np.log10(np.sum(y**2, axis=1) / np.sum(hr**2, axis=1))
    assert np.all(np.abs(energy_db) < 0.15)
    fc, by = third_octave_db(y)
    _, bh = third_octave_db(hr)
    band = (fc >= 200) & (fc <= 16000)
    d = by[:, band] - bh[:, band]
    assert np.all(np.sqrt(np.mean(d**2, axis=1)) < 0.5)
    assert np.all(np.abs(d) < 1.5)
    assert abs(lf_itd_s(y) - lf_itd_s(hr)) < 15e-6


def test_engine_matches_fftconvolve_for_noise(model):
    """Static source, noise input: identical to scipy's fftconvolve with the model's pair
    (filter shifted by its band-limited fractional delay plus the look-ahead).
    """
    x = noise(20000)
    D0 = DRY.lookahead
    y = render(make_scene(obj("a", 50.0, 10.0)), x, model=model, block=777, keep_lookahead=True)
    filt, d = model.lookup(50.0, 10.0)
    h = fractional_delay(filt, d + D0, D0 + model.n_taps + int(np.ceil(model.max_delay)) + 24)
    ref = np.stack([ss.fftconvolve(x[0].astype(np.float64), h[e])[: x.shape[1]] for e in range(2)])
    err = y[:, : x.shape[1]] - ref
    assert 10 * np.log10(np.sum(err**2) / np.sum(ref**2)) < -80.0


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_lateral_source_itd_and_ild(model, side):
    """+90 deg: left ear leads by 0.6-0.7 ms (onset) and is >= 6 dB louder; -90 mirrors it."""
    y = render(make_scene(obj("a", 90.0 * side)), impulse(), model=model)
    onset = hrtf.onset_samples(y.astype(np.float64))  # (2,) samples
    itd_ms = (onset[1] - onset[0]) / FS * 1e3
    assert 0.6 <= side * itd_ms <= 0.7
    assert side * ild_db(y) >= 6.0
    # Low-frequency ITD (cross-correlation below 1.5 kHz) has the same sign and ~0.72 ms.
    assert 0.65e-3 < side * lf_itd_s(y) < 0.78e-3


def test_left_right_mirror_exactly(model):
    yl = render(make_scene(obj("a", 70.0, 15.0)), impulse(), model=model)
    yr = render(make_scene(obj("a", -70.0, 15.0)), impulse(), model=model)
    assert np.allclose(yl, yr[::-1], atol=1e-6 * np.abs(yl).max())


def test_front_and_back_are_distinct(model):
    """Same lateral angle (cone of confusion): the spectra differ, the ITD does not."""
    yf = render(make_scene(obj("a", 30.0)), impulse(), model=model)
    yb = render(make_scene(obj("a", 150.0)), impulse(), model=model)
    assert abs(lf_itd_s(yf) - lf_itd_s(yb)) < 60e-6
    fc, bf = third_octave_db(yf)
    _, bb = third_octave_db(yb)
    band = (fc >= 2000) & (fc <= 16000)
    # Pinna cues: several dB of spectral difference per ear above 2 kHz.
    assert np.all(np.sqrt(np.mean((bf[:, band] - bb[:, band]) ** 2, axis=1)) > 3.0)
    # Behind the head the high band is duller than in front (pinna shadow).
    assert bb[:, fc >= 8000].mean() < bf[:, fc >= 8000].mean() - 2.0


# ------------------------------------------------------------------ distance, width, gain


def test_distance_doubling_is_minus_6_db(model):
    x = noise(48000)
    levels = []
    for d in (1.0, 2.0, 4.0):
        y = render(make_scene(obj("a", 20.0, dist=d)), x, model=model, tail=2000)
        levels.append(10 * np.log10(np.sum(y.astype(np.float64) ** 2)))
    assert levels[0] - levels[1] == pytest.approx(6.02, abs=0.05)
    assert levels[1] - levels[2] == pytest.approx(6.02, abs=0.05)
    # Near clamp: nothing closer than 0.25 m gets louder (schema minimum is 0.25 m).
    assert distance_gain([0.1, 0.25, 0.5, 1.0]) == pytest.approx([4.0, 4.0, 2.0, 1.0])


def test_gain_db_and_air_absorption(model):
    x = noise(48000)
    y0 = render(make_scene(obj("a", 0.0)), x, model=model, tail=2000)
    y6 = render(make_scene(obj("a", 0.0, gain_db=-6.0)), x, model=model, tail=2000)
    assert 20 * np.log10(np.std(y6) / np.std(y0)) == pytest.approx(-6.0, abs=0.01)
    # Air absorption: a source 40 m away loses treble relative to its 1/r level, not bass.
    cfg = DRY.replace(air_absorption=True)
    near = render(make_scene(obj("a", 0.0, dist=1.0)), x, cfg, model=model, tail=2000) / 40.0
    far = render(make_scene(obj("a", 0.0, dist=40.0)), x, cfg, model=model, tail=2000)
    fc, bn = third_octave_db(near)
    _, bf = third_octave_db(far)
    loss = (bn - bf).mean(axis=0)
    assert abs(loss[np.argmin(abs(fc - 500))]) < 0.3
    assert 2.0 < loss[np.argmin(abs(fc - 10000))] < 8.0


def test_width_spreads_without_getting_louder(model):
    """Width > 0: several decorrelated virtual sources -> lower interaural coherence, same level."""
    x = noise(96000, seed=3)
    point = render(make_scene(obj("a", 0.0)), x, model=model)
    wide = render(make_scene(obj("a", 0.0, width=0.8)), x, model=model)
    slight = render(make_scene(obj("a", 0.0, width=0.15)), x, model=model)
    assert iacc(point) > 0.9
    assert iacc(wide) < iacc(point) - 0.3
    # A slightly wide object (0.15, a lead vocal) is only a little less coherent: focused.
    assert iacc(wide) + 0.15 < iacc(slight) < iacc(point) - 0.02
    level_slight = 10 * np.log10(np.sum(slight.astype(np.float64) ** 2) / np.sum(point.astype(np.float64) ** 2))
    assert abs(level_slight) < 2.0
    level = 10 * np.log10(np.sum(wide.astype(np.float64) ** 2) / np.sum(point.astype(np.float64) ** 2))
    assert abs(level) < 1.5
    # Bass stays coherent (mono-compatible): below 150 Hz the ears stay correlated.
    sos = ss.butter(4, 150, "low", fs=FS, output="sos")
    assert iacc(ss.sosfilt(sos, wide, axis=1)) > 0.9


def test_spread_geometry():
    assert spread_offsets(0.0).tolist() == [0.0]
    assert len(spread_offsets(0.3)) == 3 and len(spread_offsets(1.0)) == 5
    assert spread_offsets(1.0, 60.0).max() == pytest.approx(60.0)
    # The spread is a great circle: overhead it still spans +-30 degrees.
    az, el = spread_directions(0.0, 90.0, [30.0])
    assert 90.0 - el[0] == pytest.approx(30.0, abs=1e-9)
    az, el = spread_directions(0.0, 0.0, [30.0, -30.0])
    assert az == pytest.approx([30.0, -30.0])


def test_decorrelation_filters_are_energy_normalised():
    """Coherent bass: the voices' sum has unit power; above the crossover their powers add to 1."""
    h = decorrelation_filters(5, FS, seed=1)
    n = 1 << 15
    spec = np.fft.rfft(h, n)
    f = np.fft.rfftfreq(n, 1 / FS)
    low = (f >= 30) & (f < 100)
    assert 10 * np.log10(np.mean(np.abs(spec[:, low].sum(0)) ** 2)) == pytest.approx(0.0, abs=1.0)
    for lo, hi in ((700, 2000), (2000, 6000), (6000, 16000)):
        band = (f >= lo) & (f < hi)
        assert 10 * np.log10(np.mean(np.sum(np.abs(spec[:, band]) ** 2, axis=0))) == pytest.approx(0.0, abs=1.0)
    # Decorrelated above the crossover: the voices' pairwise correlation (of 2-8 kHz) is small.
    sos = ss.butter(4, [2000, 8000], "band", fs=FS, output="sos")
    hb = ss.sosfilt(sos, np.concatenate([h, np.zeros((5, 4096))], axis=1), axis=1)
    c = np.corrcoef(hb)
    assert np.max(np.abs(c[np.triu_indices(5, 1)])) < 0.35
    assert np.array_equal(h, decorrelation_filters(5, FS, seed=1))  # deterministic


# ------------------------------------------------------------------ room


def test_reverb_send_zero_leaves_no_tail(model):
    x = noise(9600)
    cfg = RenderConfig(hrtf_eq="none")  # room on
    dry = render(
        make_scene(obj("a", 30.0, reverb_send=0.0, early_reflections=0.0), room="hall_large"),
        x,
        cfg,
        model=model,
        tail=48000,
    )
    # After the input and the HRTF filter (< 8 ms) nothing is left but the band-limited
    # delay's ringing (< -100 dB), and after one engine frame the output is exactly zero.
    peak = np.max(np.abs(dry))
    assert np.max(np.abs(dry[:, x.shape[1] + 400 :])) < 1e-5 * peak
    assert np.all(dry[:, x.shape[1] + 1400 :] == 0.0)
    wet = render(
        make_scene(obj("a", 30.0, reverb_send=0.5, early_reflections=0.0), room="hall_large"),
        x,
        cfg,
        model=model,
        tail=48000,
    )
    tail = wet[:, x.shape[1] + 4800 :]
    assert np.sqrt(np.mean(tail.astype(np.float64) ** 2)) > 1e-3


@pytest.mark.parametrize("preset", ["studio_small", "hall_medium"])
def test_fdn_reverb_time_energy_and_decorrelation(preset):
    room = Shoebox.from_preset(preset)
    fdn = FDNReverb(room, FS, 2, binaural_coherence=True, seed=0)
    n = int(FS * (1.6 * room.rt60_s + 0.2))
    x = np.zeros(n, np.float32)
    x[0] = 1.0
    y = np.concatenate([fdn.process(x[s : s + 1000]) for s in range(0, n, 1000)], axis=1).astype(np.float64)
    assert np.sum(y**2, axis=1) == pytest.approx([1.0, 1.0], abs=0.05)
    # Reverberation time in the 1 kHz octave (T20 of the energy decay curve).
    sos = ss.butter(4, [707, 1414], "band", fs=FS, output="sos")
    yb = ss.sosfilt(sos, y, axis=1)
    edc = np.cumsum(np.sum(yb**2, axis=0)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0])
    t5, t25 = np.argmax(edc_db < -5), np.argmax(edc_db < -25)
    assert (t25 - t5) / FS * 3 == pytest.approx(room.rt60_s, rel=0.2)
    # Decorrelated above a few hundred Hz, coherent in the bass (like a diffuse field at the ears).
    hi = ss.sosfilt(ss.butter(4, [1000, 4000], "band", fs=FS, output="sos"), y, axis=1)
    lo = ss.sosfilt(ss.butter(4, 120, "low", fs=FS, output="sos"), y, axis=1)
    assert abs(np.corrcoef(hi)[0, 1]) < 0.3
    assert np.corrcoef(lo)[0, 1] > 0.8


def test_image_sources_geometry():
    room = Shoebox.from_preset("studio_small")  # 5 x 4 x 2.8 m, listener at (2.5, 2, 1.2)
    az, el, d = room.images(0.0, 0.0, 1.0)  # source 1 m in front
    # Source at x = 3.5 m. Back wall (x = 0): image at -3.5, 6 m behind the listener;
    # front wall (x = 5): image at 6.5, 4 m in front.
    assert d[0] == pytest.approx(6.0) and abs(abs(az[0]) - 180.0) < 1e-9
    assert d[1] == pytest.approx(4.0) and az[1] == pytest.approx(0.0)
    assert d[2] == pytest.approx(d[3]) and az[2] == pytest.approx(-az[3])  # side walls mirror
    assert d[4] == pytest.approx(math.hypot(1.0, 2.4)) and el[4] < 0  # floor: below
    assert d[5] == pytest.approx(math.hypot(1.0, 3.2)) and el[5] > 0  # ceiling: above
    # Outdoors only the ground reflects.
    assert Shoebox.from_preset("outdoor").surfaces.tolist() == [4]


def test_early_reflections_arrive_from_their_images(model):
    """With early_reflections, each image adds a copy delayed by its extra path, from its side."""
    cfg = RenderConfig(hrtf_eq="none", air_absorption=False, reverb=False)
    scene = make_scene(obj("a", 0.0, dist=1.0, early_reflections=1.0), room="studio_small")
    y = render(scene, impulse(8192), cfg, model=model).astype(np.float64)
    direct = render(make_scene(obj("a", 0.0, dist=1.0)), impulse(8192), cfg, model=model).astype(np.float64)
    refl = y - direct
    room = Shoebox.from_preset("studio_small")
    _, _, d = room.images(0.0, 0.0, 1.0)
    env = np.abs(ss.hilbert(refl.sum(0)))
    for k in range(6):
        t = (d[k] - 1.0) / 343.0 * FS + 16
        seg = env[int(t) - 8 : int(t) + 48]
        assert seg.max() > 0.05 * (1.0 / d[k]), f"no reflection near {t:.0f} samples for surface {k}"
    # Left / right walls are equidistant: the side reflections arrive together, one per ear.
    t_side = int((d[2] - 1.0) / 343.0 * FS) + 16
    lr = np.sum(refl[:, t_side - 8 : t_side + 200] ** 2, axis=1)
    assert 0.5 < lr[0] / lr[1] < 2.0


# ------------------------------------------------------------------ moving sources


def _sweep_scene(seconds: float) -> Scene:
    motion = [{"t": i / 4, "az_deg": a, "el_deg": 0.0, "dist_m": 1.0} for i, a in enumerate([0, 90, 180, -90, 0])]
    return make_scene(obj("a", 0.0, motion=motion), seconds=seconds)


def test_fast_sweep_matches_per_sample_reference(model):
    """360 deg in 3 s vs a reference that recomputes filter + delay at every output sample.

    The reference uses the same HRTF model and gravity.motion positions at each sample, and
    an ideal band-limited fractional delay. Compared at 6000 random samples plus every
    sample next to a hop boundary: error < -50 dB relative to the signal, and no larger at
    the boundaries than elsewhere (no discontinuity spikes).
    """
    seconds = 3.0
    scene = _sweep_scene(seconds)
    n = int(seconds * FS)
    x = noise(n, seed=7)
    cfg = DRY
    y = render(scene, x, cfg, model=model, block=512)[:, :n].astype(np.float64)
    y = np.concatenate([np.zeros((2, cfg.lookahead)), y], axis=1)[:, :n]  # put the look-ahead back
    H, D0 = cfg.hop, cfg.lookahead
    rng = np.random.default_rng(0)
    boundaries = np.arange(4000 // H + 1, n // H) * H
    near_edge = (boundaries[:, None] + np.arange(-2, 3)).ravel()
    idx = np.unique(np.concatenate([rng.integers(4000, n, 6000), near_edge]))
    pos = positions_at(scene.objects[0].keyframes, idx / (FS * seconds))
    filt, dl = model.lookup(pos[:, 0], pos[:, 1])
    lg = D0 + int(np.ceil(model.max_delay)) + 2 + model.n_taps + 8
    g = fractional_delay(filt, dl + D0, lg)  # (m, 2, lg)
    xp = np.concatenate([np.zeros(lg), x[0].astype(np.float64)])
    win = np.stack([xp[i + lg - np.arange(lg)] for i in idx])  # x[n - k]
    ref = np.einsum("mek,mk->em", g, win)
    err = y[:, idx] - ref
    err_db = 10 * np.log10(np.sum(err**2) / np.sum(ref**2))
    assert err_db < -50.0, f"sweep error {err_db:.1f} dB"
    edge = np.isin(idx, near_edge)
    e_edge = np.sqrt(np.mean(err[:, edge] ** 2))
    e_rest = np.sqrt(np.mean(err[:, ~edge] ** 2))
    assert e_edge <= 1.5 * e_rest
    assert np.max(np.abs(err)) < 10 ** (-40 / 20) * np.max(np.abs(ref))


def test_moving_source_is_click_free_at_block_edges(model):
    """A 1 kHz tone orbiting the head (360 deg in 2 s, 300-sample blocks): smooth filter changes
    only modulate it slowly, so nothing appears above 4 kHz; a click would (broadband).

    The detector's sensitivity is checked on the same output with a step of 1/1000 of the
    amplitude added at one hop boundary.
    """
    seconds = 2.0
    scene = _sweep_scene(seconds)
    n = int(seconds * FS)
    x = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / FS)).astype(np.float32)[None]
    y = render(scene, x, DRY, model=model, block=300)[:, :n].astype(np.float64)
    sos = ss.butter(10, 4000, "high", fs=FS, output="sos")

    def residual_db(sig: np.ndarray) -> float:
        hp = ss.sosfilt(sos, sig, axis=1)[:, 6000 : n - 500]
        return float(20 * np.log10(np.max(np.abs(hp)) / np.max(np.abs(sig))))

    assert residual_db(y) < -80.0
    clicked = y.copy()
    b = 40 * DRY.hop
    clicked[:, b:] += 1e-3 * np.max(np.abs(y))
    assert residual_db(clicked) > -75.0


# ------------------------------------------------------------------ formats


@pytest.mark.usefixtures("model")
def test_foa_source_left_has_positive_y():
    x = noise(24000)
    y = render(
        make_scene(obj("a", 90.0), layout="foa"),
        x,
        RenderConfig(fmt="foa", reverb=False, early_reflections=False, air_absorption=False),
    )
    w, yy, z, xx = (c.astype(np.float64) for c in y)
    assert np.dot(yy, w) / np.dot(w, w) == pytest.approx(1.0, abs=1e-4)  # Y = +W at +90 (SN3D)
    assert abs(np.dot(xx, w)) / np.dot(w, w) < 1e-4 and abs(np.dot(z, w)) / np.dot(w, w) < 1e-4
    g = sn3d_gains(3, [90.0, 0.0, 0.0], [0.0, 0.0, 90.0])
    assert g[0, :4] == pytest.approx([1, 1, 0, 0], abs=1e-12)  # left: W, Y
    assert g[1, :4] == pytest.approx([1, 0, 0, 1], abs=1e-12)  # front: W, X
    assert g[2, :4] == pytest.approx([1, 0, 1, 0], abs=1e-12)  # up: W, Z
    # SN3D: the sum of squares over each order's channels is 1 for any direction.
    d = sn3d_gains(
        3,
        np.random.default_rng(0).uniform(-180, 180, 50),
        np.random.default_rng(1).uniform(-90, 90, 50),
    )
    for deg in range(4):
        assert np.sum(d[:, deg * deg : (deg + 1) ** 2] ** 2, axis=1) == pytest.approx(np.ones(50))


def test_stereo_pan_is_equal_power_and_left_positive():
    g = stereo_gains([90.0, 0.0, -90.0, 30.0, 150.0], 0.0)
    assert g[0] == pytest.approx([1.0, 0.0], abs=1e-12)
    assert g[1] == pytest.approx([math.sqrt(0.5)] * 2)
    assert g[2] == pytest.approx([0.0, 1.0], abs=1e-12)
    assert np.sum(g**2, axis=1) == pytest.approx(np.ones(5))
    assert g[3] == pytest.approx(g[4])  # front/back fold onto the same pan position
    x = noise(24000)
    y = render(
        make_scene(obj("a", 45.0)),
        x,
        RenderConfig(fmt="stereo", reverb=False, early_reflections=False, air_absorption=False),
    )
    assert ild_db(y) > 3.0


@pytest.mark.usefixtures("model")
def test_hoa_order_3_channels():
    x = noise(12000)
    cfg = RenderConfig(fmt="hoa", ambisonic_order=3, air_absorption=False)
    y = render(make_scene(obj("a", 60.0, 20.0, reverb_send=0.2, early_reflections=0.3)), x, cfg)
    assert y.shape[0] == 16 and np.all(np.isfinite(y))
    direct = render(make_scene(obj("a", 60.0, 20.0)), x, cfg.replace(reverb=False, early_reflections=False))
    gains = sn3d_gains(3, 60.0, 20.0)
    ratio = direct[:, :12000].astype(np.float64) @ direct[0, :12000] / np.sum(direct[0, :12000].astype(np.float64) ** 2)
    assert ratio == pytest.approx(gains, abs=1e-4)


def test_diffuse_field_eq_flattens_the_front_and_restores_bass(model):
    h = diffuse_field_eq(model)
    f_l, _ = model.lookup(0.0, 0.0)
    raw = third_octave_db(f_l[0])[1]
    fc, eq = third_octave_db(np.convolve(f_l[0], h))
    band = (fc >= 50) & (fc <= 6300)
    # Raw KEMAR: ~20 dB spread (bass roll-off, ear-canal resonance); equalised: a few dB.
    assert np.ptp(raw[band]) > 15.0
    assert np.ptp(eq[band]) < 6.0
    assert eq[np.argmin(abs(fc - 63))] > raw[np.argmin(abs(fc - 63))] + 15.0


# ------------------------------------------------------------------ robustness and identity


@pytest.mark.parametrize("fmt", ["binaural", "stereo", "foa"])
def test_silence_in_silence_out(model, fmt):
    motion = [
        {"t": 0, "az_deg": 0, "el_deg": 0, "dist_m": 2},
        {"t": 1, "az_deg": 90, "el_deg": 30, "dist_m": 5},
    ]
    scene = make_scene(
        obj("a", 0.0, width=0.5, reverb_send=0.5, early_reflections=0.5, motion=motion),
        obj("b", -30.0, reverb_send=0.3, early_reflections=1.0),
        seconds=1.0,
    )
    y = render(scene, np.zeros((2, 48000), np.float32), RenderConfig(fmt=fmt), model=model, block=1000)
    assert np.all(y == 0.0)


def test_no_nan_ever(model):
    """Non-finite input samples are zeroed and counted; huge inputs stay finite."""
    scene = make_scene(
        obj("a", 10.0, width=0.4, reverb_send=0.5, early_reflections=0.5),
        obj("b", -100.0, dist=30.0),
    )
    r = Renderer(scene, FS, RenderConfig(), model=model)
    x = noise(9600, 2)
    x[0, 100] = np.nan
    x[1, 5000:5010] = np.inf
    x[1, 7000] = -np.inf
    y = np.concatenate([r.process(x[:, s : s + 512]) for s in range(0, 9600, 512)], axis=1)
    assert np.all(np.isfinite(y))
    assert r.nonfinite_samples == 12
    big = np.full((2, 4096), 3e38, np.float32)
    big[1, ::2] *= -1
    assert np.all(np.isfinite(r.process(big)))
    assert np.all(np.isfinite(r.process(np.zeros((2, 48000), np.float32))))  # tails stay finite


def test_output_identical_for_any_block_size(model):
    """Hop-framed processing: every block size and thread count gives bit-identical output
    (moving, wide, room, reverb, propagation delay).
    """
    motion = [
        {"t": 0, "az_deg": 0, "el_deg": 0, "dist_m": 2},
        {"t": 0.5, "az_deg": 90, "el_deg": 20, "dist_m": 1},
        {"t": 1, "az_deg": 170, "el_deg": 0, "dist_m": 5},
    ]
    scene = make_scene(
        obj("a", 0.0, width=0.7, reverb_send=0.3, early_reflections=0.5, motion=motion),
        obj("b", -40.0, dist=3.0, reverb_send=0.1, early_reflections=0.3),
        room="club_small",
        seconds=0.5,
    )
    x = noise(24000, 2)
    x[:, 5000:9000] = 0.0  # silent stretch: the engine skips silent voices
    for fmt, prop in (("binaural", True), ("foa", False)):
        cfg = RenderConfig(fmt=fmt, propagation_delay=prop)
        outs = []
        for block in (1, 100, 256, 1000, 7777, 24000):
            r = Renderer(scene, FS, cfg, model=model)
            outs.append(np.concatenate([r.process(x[:, s : s + block]) for s in range(0, 24000, block)], axis=1))
        # ... and for any number of threads sharing a block's hops.
        for threads in (1, 3):
            r = Renderer(scene, FS, cfg.replace(threads=threads), model=model)
            outs.append(r.process(x))
        for o in outs[1:]:
            assert np.array_equal(o, outs[0])


def test_reset_restarts_identically(model):
    scene = make_scene(
        obj(
            "a",
            0.0,
            reverb_send=0.4,
            early_reflections=0.4,
            motion=[
                {"t": 0, "az_deg": 0, "el_deg": 0, "dist_m": 1},
                {"t": 1, "az_deg": 80, "el_deg": 0, "dist_m": 3},
            ],
        ),
        seconds=0.2,
    )
    r = Renderer(scene, FS, RenderConfig(), model=model)
    x = noise(6000)
    a = r.process(x)
    r.process(noise(3000, seed=5))
    r.reset()
    assert np.array_equal(r.process(x), a)
    # A seek lands on the position of that time.
    r.reset(start_s=0.1)
    start = round(0.1 * FS / r.block_unit) * r.block_unit
    assert r.time_s == pytest.approx(start / FS)
    b = r.process(x)
    fresh = Renderer(scene, FS, RenderConfig(), model=model)
    fresh.process(np.zeros((1, start), np.float32))
    c = fresh.process(x)
    # Silence leaves every state at zero, so a seek equals playing silence up to that point.
    assert np.array_equal(b, c)
    assert not np.array_equal(b, a)  # and the object is elsewhere by then


def test_processor_interface(model):
    r = Renderer(make_scene(obj("a", 0.0), obj("b", 30.0)), FS, model=model)
    assert r.n_inputs == 2 and r.n_channels == 2 and r.latency_samples == 1024 + 16
    assert Renderer(make_scene(obj("a", 0.0)), FS, RenderConfig(static_hop=256), model=model).latency_samples == 272
    y = r(noise(1000, 2), FS)
    assert y.shape == (2, 1000) and y.dtype == np.float32
    with pytest.raises(ValueError, match="44100 Hz"):
        r(noise(1000, 2), 44100)
    with pytest.raises(ValueError, match="one row per scene object"):
        r.process(noise(1000, 3))
    with pytest.raises(ValueError, match="unknown RenderConfig"):
        RenderConfig().replace(colour="red")


# ------------------------------------------------------------------ building blocks


def test_fir_bank_and_delay_line_match_references():
    rng = np.random.default_rng(0)
    h = rng.standard_normal((3, 700))
    x = rng.standard_normal((3, 2560)).astype(np.float32)
    bank = FIRBank(h, 256)
    y = np.concatenate([bank.process(x[:, s : s + 512]) for s in range(0, 2560, 512)], axis=1)
    ref = np.stack([np.convolve(x[k], h[k])[:2560] for k in range(3)])
    assert np.max(np.abs(y - ref)) < 1e-4
    # Integer and fractional delays (a band-limited signal, so cubic Lagrange is accurate).
    sig = ss.resample_poly(rng.standard_normal(1000), 4, 1).astype(np.float32)[None]  # band < fs/8
    line = DelayLine(1, 100.0)
    line.push(sig)
    assert np.array_equal(line.read_integer(np.array([0]), np.array([7]))[0, 7:], sig[0, :-7])
    line = DelayLine(1, 100.0)
    line.push(sig)
    out = line.read_varying(np.array([0]), np.array([[10.5] * 5]))
    ideal = fractional_delay(sig[0].astype(np.float64), 10.5, sig.shape[1])  # band-limited
    err = out[0, 40:-40] - ideal[40:-40]
    assert np.sqrt(np.mean(err**2)) < 5e-3 * np.std(sig)  # cubic Lagrange: ~ -50 dB below fs/8
    # Across pushes of odd sizes (the ring wraps): same samples as one push.
    line2 = DelayLine(1, 100.0)
    parts = []
    for a, b in ((0, 1000), (1000, 1500), (1500, 4000)):
        line2.push(sig[:, a:b])
        parts.append(line2.read_integer(np.array([0]), np.array([57])))
    line3 = DelayLine(1, 100.0)
    line3.push(sig)
    assert np.array_equal(np.concatenate(parts, axis=1), line3.read_integer(np.array([0]), np.array([57])))
    # A block longer than the ring grows it without losing the past.
    long = np.tile(sig, (1, 5))
    line4 = DelayLine(1, 100.0)
    line4.push(long[:, :3000])
    line4.push(long[:, 3000:])
    assert np.array_equal(line4.read_integer(np.array([0]), np.array([90])), long[:, 3000 - 90 : -90])
    # Varying delay: a Doppler-shifted tone has the predicted frequency.
    n = 48000
    tone = np.sin(2 * np.pi * 1000 * np.arange(n) / FS).astype(np.float32)[None]
    line = DelayLine(1, 2000.0)
    tau = np.linspace(10.0, 10.0 + 0.01 * n, 48 + 1)[None]  # delay grows 0.01 sample/sample
    line.push(tone)
    shifted = line.read_varying(np.array([0]), tau)[0, 2000:]
    spec = np.abs(np.fft.rfft(shifted * np.hanning(len(shifted)), 1 << 20))
    f_peak = np.argmax(spec) * FS / (1 << 20)
    assert f_peak == pytest.approx(990.0, abs=0.5)


def test_frame_size_factorisation():
    for hop, m in ((256, 306), (128, 306), (512, 306), (64, 90), (256, 82)):
        n, p, q = frame_size(hop, m)
        assert n >= hop + m and p * q == n // 2 + 1 and n % 2 == 0


def test_engine_crossfade_equals_interpolated_filter():
    """Cross-fading two filters' outputs == filtering with the per-sample interpolated filter."""
    rng = np.random.default_rng(2)
    H, N = 64, 256
    h0, h1 = rng.standard_normal(100), rng.standard_normal(100)
    spec = lambda h: np.fft.rfft(h, N).astype(np.complex64)[None]  # noqa: E731
    # Tables whose grid holds the two filters; the kernel picks row 1 at the hop's end.
    grid = np.stack([spec(h0), spec(h1)])  # (2, 1, B)
    tables = FilterTables(grid, np.ones((1, N // 2 + 1), np.complex64), 129, 1, N)
    eng = ConvolutionEngine(1, 1, H, N, moving=np.array([True]), tables=tables)
    eng.set_filters(np.array([0]), spec(h0)[None])
    x = rng.standard_normal((1, H)).astype(np.float32)
    one = np.ones((1, 1))
    params = FilterParams(
        np.ones((1, 1, 1), np.int32), np.ones((1, 1, 1, 1), np.float32), 0 * one[..., None],
        np.zeros((1, 1), np.int32),
    )  # fmt: skip
    y = eng.process(x, params)
    r = np.arange(H) / H
    ref = [np.dot((1 - r[n]) * h0[: n + 1] + r[n] * h1[: n + 1], x[0, n::-1][:100]) for n in range(H)]
    assert np.max(np.abs(y[0] - ref)) < 1e-5


# ------------------------------------------------------------------ loudness


def test_measure_and_limit():
    t = np.arange(FS * 2) / FS
    tone = (0.5 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    rep = measure(np.stack([tone, tone]), FS)
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS; here -6.02 dBFS in
    # two channels: -3.01 - 6.02 + 3.01 = -6.02 LUFS.
    assert rep.peak_dbfs == pytest.approx(-6.02, abs=0.01)
    assert rep.loudness_lufs == pytest.approx(-6.02, abs=0.1)
    loud = np.stack([tone * 3.0, tone * 3.0])
    out, red = limit(loud, FS, ceiling_dbfs=-1.0)
    assert np.max(np.abs(out)) <= 10 ** (-1 / 20) + 1e-7
    assert red == pytest.approx(20 * np.log10(1.5 / 10 ** (-1 / 20)), abs=0.1)
    quiet, red0 = limit(np.stack([tone, tone]) * 0.5, FS)
    assert red0 == 0.0 and np.array_equal(quiet, np.stack([tone, tone]) * 0.5)
    assert measure(np.zeros((2, 48000), np.float32), FS).loudness_lufs == float("-inf")


def test_true_peak_is_the_4x_oversampled_peak():
    from renderer.loudness import peaks

    # A sine at fs / 4 and 45 degrees: every sample sits at 0.707 of the crest, which falls
    # half-way between samples, so the true peak reads 3.01 dB above the sample peak.
    t = np.arange(FS) / FS
    crest = np.sin(2 * np.pi * (FS / 4) * t + np.pi / 4)[None].astype(np.float32) * 0.5
    pk, tp = peaks(crest)
    assert 20 * np.log10(pk) == pytest.approx(-9.03, abs=0.01)
    assert 20 * np.log10(tp) == pytest.approx(-6.02, abs=0.15)  # the interpolator's ripple
    # Reference: scipy's resample_poly(x, 4, 1), max over the whole signal, in float64 --
    # on noise, a lone spike at the very edge, clicks and lengths shorter than the filter.
    rng = np.random.default_rng(3)
    spike = np.zeros((2, 300), np.float32)
    spike[1, -1] = 0.9
    spike[0, 5:7] = (0.6, -0.6)
    for y in (0.3 * rng.standard_normal((2, 50_000)), spike, rng.standard_normal((1, 7))):
        y = y.astype(np.float32)
        ref = np.max(np.abs(ss.resample_poly(y.astype(np.float64), 4, 1, axis=1)))
        assert peaks(y) == pytest.approx((np.max(np.abs(y)), max(ref, np.max(np.abs(y)))), rel=1e-6)
    assert peaks(np.zeros((2, 0), np.float32)) == (0.0, 0.0)


@pytest.mark.parametrize("rate", [48000, 44100, 96000, 8000])
def test_loudness_is_pyloudnorms_to_the_last_bit(rate):
    """The compiled K-weighting and gating give pyloudnorm's numbers exactly (integrated and
    per block), at any rate, for stereo, mono and 5 channels, float32 and float64 input --
    while loading neither pyloudnorm nor scipy.signal (see the import test in
    test_renderer_offline).
    """
    import pyloudnorm

    from renderer.loudness import k_weighting, loudness

    meter = pyloudnorm.Meter(rate)
    stages = list(meter._filters.values())
    b, a = k_weighting(rate)
    assert np.array_equal(b, [s.b for s in stages]) and np.array_equal(a, [s.a for s in stages])
    rng = np.random.default_rng(rate)
    for seconds, channels in ((0.45, 2), (3.07, 2), (7.3, 1), (2.0, 5)):
        n = int(seconds * rate)
        y = (0.3 * rng.standard_normal((channels, n)) * np.linspace(0.0, 1.0, n) ** 2).astype(np.float32)
        y[:, : n // 3] *= 1e-4  # a quiet start: blocks under the gates
        for sig in (y, y.astype(np.float64) * 1.0000001):
            lufs, blocks = loudness(sig, rate, fmt="5.0")
            assert lufs == meter.integrated_loudness(np.asarray(sig, np.float64).T)
            assert np.array_equal(blocks, np.asarray(meter.blockwise_loudness, np.float64))
    for quiet in (np.zeros((2, rate)), np.ones((2, int(0.4 * rate) - 1))):  # silence; < one block
        lufs, blocks = loudness(quiet, rate)
        assert lufs == float("-inf") and blocks.size == 0


def test_true_peak_interpolator_is_resample_polys():
    from renderer.loudness import fir_4x

    assert np.array_equal(fir_4x(), ss.firwin(81, 1.0 / 4, window=("kaiser", 5.0)) * 4)
