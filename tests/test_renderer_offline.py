"""Offline rendering: real WAV / SOFA files in, one audio file out (issue #3)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import hrtf
from gravity.errors import ValidationError
from gravity.scene import Scene
from renderer import RenderConfig, Renderer, RenderError, load_stems, render_files

FS = 48000


def obj(id_: str, az: float, **kw: Any) -> dict[str, Any]:
    o = {
        "id": id_,
        "class": "other",
        "az_deg": az,
        "el_deg": 0.0,
        "dist_m": 1.5,
        "width": 0.0,
        "gain_db": 0.0,
        "reverb_send": 0.1,
        "early_reflections": 0.2,
    }
    o.update(kw)
    return o


def write_scene(path: Path, *objects: dict[str, Any], target: float = -16.0) -> Path:
    doc = {
        "version": "1.0",
        "bed": {
            "layout": "binaural",
            "room_preset": "studio_small",
            "loudness_target_lufs": target,
        },
        "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 1},
        "objects": list(objects),
    }
    path.write_text(json.dumps(doc))
    return path


def tone(seconds: float, freq: float, rate: int = FS, amp: float = 0.1, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * freq * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.fixture(scope="module")
def model() -> hrtf.HRTFModel:
    return hrtf.load_model(rate=FS)


@pytest.fixture
def stems(tmp_path: Path) -> dict[str, Path]:
    """vox: mono 48 kHz 1.0 s; gtr_l / gtr_r: stereo 44.1 kHz 0.7 s and mono 0.5 s (a group)."""
    rng = np.random.default_rng(0)
    p = {
        "vox": tmp_path / "vox.wav",
        "gtr_l": tmp_path / "gtr_l.wav",
        "gtr_r": tmp_path / "gtr_r.wav",
    }
    sf.write(p["vox"], (0.1 * rng.standard_normal(FS)).astype(np.float32), FS, subtype="PCM_24")
    sf.write(p["gtr_l"], tone(0.7, 440.0, 44100, channels=2), 44100, subtype="FLOAT")
    sf.write(p["gtr_r"], tone(0.5, 660.0, FS), FS, subtype="PCM_16")
    return p


def leftovers(folder: Path, out: Path) -> list[Path]:
    return [f for f in folder.iterdir() if f.name.startswith(f".{out.stem}.")] + ([out] if out.exists() else [])


def test_render_files_writes_a_24_bit_binaural_file(tmp_path, stems):
    scene = write_scene(
        tmp_path / "scene.json",
        obj("vox", 0.0),
        obj(
            "gtr",
            60.0,
            stems=["gtr_l", "gtr_r"],
            width=0.4,
            motion=[
                {"t": 0, "az_deg": 60, "el_deg": 0, "dist_m": 2},
                {"t": 1, "az_deg": -60, "el_deg": 20, "dist_m": 2},
            ],
        ),
    )
    out = tmp_path / "mix.wav"
    rep = render_files(list(stems.values()), scene, out, progress=False)
    info = sf.info(str(out))
    assert (info.channels, info.samplerate, info.subtype) == (2, FS, "PCM_24")
    # Longest stem (1 s) + the studio's reverb tail (0.3 s) + reflections + filters.
    assert 1.3 * FS < info.frames < 1.5 * FS and info.frames == rep.n_samples
    assert rep.objects == ("vox", "gtr") and set(rep.stems) == {"vox", "gtr_l", "gtr_r"}
    assert np.isfinite(rep.loudness_lufs) and rep.true_peak_dbtp <= 0.0 and rep.clipped_samples == 0
    y, _ = sf.read(str(out), dtype="float64")
    assert 20 * np.log10(np.max(np.abs(y))) == pytest.approx(rep.peak_dbfs, abs=0.01)
    assert rep.realtime_factor > 0 and rep.config["fmt"] == "binaural"
    assert leftovers(tmp_path, out) == [out]


def test_offline_equals_streaming_sample_for_sample(tmp_path, stems, model):
    """render_files runs the streaming path: same samples as Renderer.process, any block size."""
    scene_path = write_scene(
        tmp_path / "scene.json",
        obj("vox", 30.0, width=0.5),
        obj(
            "gtr",
            -20.0,
            stems=["gtr_l", "gtr_r"],
            motion=[
                {"t": 0, "az_deg": -20, "el_deg": 0, "dist_m": 1},
                {"t": 1, "az_deg": 160, "el_deg": 0, "dist_m": 3},
            ],
        ),
    )
    out = tmp_path / "f.wav"
    rep = render_files(list(stems.values()), scene_path, out, block=512, subtype="FLOAT", progress=False)
    assert rep.limiter_reduction_db == 0.0
    y_file, _ = sf.read(str(out), dtype="float32", always_2d=True)
    scene = Scene.load(scene_path)
    signals, _, _ = load_stems(list(stems.values()), scene, FS)
    r = Renderer(scene, FS, RenderConfig(), model=model, duration_s=signals.shape[1] / FS)
    total = rep.n_samples + r.latency_samples
    x = np.concatenate([signals, np.zeros((2, total - signals.shape[1]), np.float32)], axis=1)
    y = np.concatenate([r.process(x[:, s : s + 3000]) for s in range(0, total, 3000)], axis=1)[:, r.latency_samples :]
    assert np.array_equal(y_file.T, y)


def test_stems_stream_in_chunks_with_the_same_samples(tmp_path, stems, monkeypatch):
    """render_files decodes stems a chunk at a time (the next one while this one renders):
    tiny chunks, odd blocks and the default give the same file; the input side never holds
    the stems whole (only the output does).
    """
    import tracemalloc

    import renderer.offline

    scene = write_scene(tmp_path / "s.json", obj("vox", 30.0), obj("gtr", -60.0, stems=["gtr_l", "gtr_r"], width=0.3))
    ref = render_files(list(stems.values()), scene, tmp_path / "a.wav", subtype="FLOAT", progress=False)
    monkeypatch.setattr(renderer.offline, "CHUNK_SAMPLES", 1000)  # 500 samples per object
    rep = render_files(list(stems.values()), scene, tmp_path / "b.wav", block=333, subtype="FLOAT", progress=False)
    a, _ = sf.read(str(tmp_path / "a.wav"), dtype="float32")
    b, _ = sf.read(str(tmp_path / "b.wav"), dtype="float32")
    assert rep.n_samples == ref.n_samples and np.array_equal(a, b)
    # Memory: 20 s more of 8 stems is 31 MB more of float32 signals; the render's peak grows by
    # the output alone (2 channels: 8 MB), the stems being read a chunk at a time.
    monkeypatch.undo()
    peaks = []
    for seconds in (10, 30):
        long = []
        for k in range(8):
            long.append(tmp_path / f"long{k}_{seconds}.wav")
            x = 0.1 * np.sin(np.arange(seconds * FS) * (0.01 + k / 100))
            sf.write(long[-1], x.astype(np.float32), FS, subtype="PCM_24")
        objs = (obj(f"long{k}_{seconds}", 20.0 * k - 70.0, reverb_send=0.0) for k in range(8))
        scene8 = write_scene(tmp_path / f"s{seconds}.json", *objs)
        if seconds == 10:  # warm: caches, kernels, the pool
            render_files(long, scene8, tmp_path / "w.wav", block=8192, progress=False)
        tracemalloc.start()
        render_files(long, scene8, tmp_path / "m.wav", block=8192, progress=False)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    more_signals, more_output = 8 * 20 * FS * 4, 2 * 20 * FS * 4
    assert peaks[1] - peaks[0] < more_output + 0.25 * more_signals, (peaks, more_signals)


def test_a_stem_broken_after_its_first_chunk_fails_with_the_readers_line(tmp_path, monkeypatch):
    """The NaN is met mid-render: the error is the whole-file reader's line, nothing is written."""
    import renderer.offline
    from gravity.analysis.reading import StemFileError, read_audio

    p = tmp_path / "late.wav"
    x = (0.1 * np.sin(np.arange(2 * FS) * 0.05)).astype(np.float32)
    x[int(1.5 * FS)] = np.inf
    sf.write(p, x, FS, subtype="FLOAT")
    with pytest.raises(StemFileError) as info:
        read_audio(p)
    monkeypatch.setattr(renderer.offline, "CHUNK_SAMPLES", 8192)
    scene = write_scene(tmp_path / "s.json", obj("late", 0.0))
    with pytest.raises(RenderError) as rinfo:
        render_files([p], scene, tmp_path / "o.wav", block=1024, progress=False)
    assert str(rinfo.value) == str(info.value) and "1 non-finite" in str(info.value)
    assert leftovers(tmp_path, tmp_path / "o.wav") == []


def test_render_loads_neither_scipy_signal_nor_pyloudnorm(tmp_path, stems):
    """A scene without reverb, width or resampling renders with scipy.fft alone: scipy.signal
    (with pyloudnorm, ~0.5 s to import) is loaded only by what needs it.
    """
    import subprocess
    import sys

    scene = write_scene(tmp_path / "s.json", obj("vox", 30.0, reverb_send=0.0))
    code = (
        "import sys; from pathlib import Path; from renderer.offline import render_files; "
        f"render_files([Path({str(stems['vox'])!r})], Path({str(scene)!r}), Path({str(tmp_path / 'o.wav')!r}), "
        "progress=False); print(sorted(m for m in ('scipy.signal', 'pyloudnorm', 'scipy.ndimage') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parent.parent, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[-2] == "[]"


def test_stems_are_mixed_resampled_and_padded(tmp_path, stems):
    scene = Scene.from_dict(
        json.loads(
            write_scene(tmp_path / "s.json", obj("vox", 0.0), obj("gtr", 0.0, stems=["gtr_l", "gtr_r"])).read_text()
        )
    )
    sig, used, unused = load_stems(list(stems.values()), scene, FS)
    assert sig.shape == (2, FS) and unused == ()
    gtr = sig[1]
    # 44.1 kHz stereo 440 Hz (0.7 s) resampled to 48 kHz and summed to mono, plus 660 Hz (0.5 s).
    spec = np.abs(np.fft.rfft(gtr[: FS // 2] * np.hanning(FS // 2)))
    f = np.fft.rfftfreq(FS // 2, 1 / FS)
    peaks = sorted(f[np.argsort(spec)[-2:]])
    assert peaks == pytest.approx([440.0, 660.0], abs=2.0)
    assert np.max(np.abs(gtr[int(0.71 * FS) :])) == 0.0  # zero-padded after the longest member
    assert np.max(np.abs(gtr[int(0.55 * FS) : int(0.65 * FS)])) == pytest.approx(0.1, abs=0.005)  # (L+R)/2


def test_stem_map_and_unused_files(tmp_path, stems):
    scene = write_scene(tmp_path / "s.json", obj("lead", 0.0, reverb_send=0.0, early_reflections=0.0))
    rep = render_files(
        list(stems.values()),
        scene,
        tmp_path / "o.wav",
        stem_map={"lead": "vox.wav"},
        progress=False,
        fmt="stereo",
    )
    assert rep.stems == {"lead": str(stems["vox"])}
    assert set(rep.unused_files) == {str(stems["gtr_l"]), str(stems["gtr_r"])}
    assert rep.channels == 2 and rep.fmt == "stereo"


@pytest.mark.parametrize(("fmt", "channels"), [("foa", 4), ("hoa", 16)])
def test_ambisonic_files(tmp_path, stems, fmt, channels):
    scene = write_scene(tmp_path / "s.json", obj("vox", 90.0))
    rep = render_files([stems["vox"]], scene, tmp_path / "a.wav", fmt=fmt, progress=False, subtype="FLOAT")
    y, _ = sf.read(str(tmp_path / "a.wav"), always_2d=True)
    assert y.shape[1] == channels == rep.channels
    w, yy = y[:, 0], y[:, 1]
    assert np.dot(w, yy) > 0.5 * np.dot(w, w)  # source at +90 (left): Y in phase with W


def test_normalisation_and_limiter(tmp_path, stems, caplog):
    scene = write_scene(tmp_path / "s.json", obj("vox", 0.0), target=-20.0)
    rep = render_files([stems["vox"]], scene, tmp_path / "n.wav", normalize=True, progress=False)
    assert rep.loudness_lufs == pytest.approx(-20.0, abs=0.3)
    assert rep.gain_db == pytest.approx(-20.0 - rep.loudness_before_lufs, abs=1e-9)
    loud = tmp_path / "loud.wav"
    sf.write(loud, (0.9 * np.sign(np.sin(2 * np.pi * 100 * np.arange(FS) / FS))).astype(np.float32), FS)
    scene2 = write_scene(tmp_path / "s2.json", obj("loud", 90.0, dist_m=0.3, gain_db=6.0))
    rep2 = render_files([loud], scene2, tmp_path / "l.wav", progress=False)
    assert rep2.limiter_reduction_db > 0.0 and rep2.peak_dbfs <= -1.0 + 1e-3
    with caplog.at_level(logging.WARNING, logger="renderer"):
        rep3 = render_files([loud], scene2, tmp_path / "c.wav", progress=False, limit_peaks=False)
    assert rep3.clipped_samples > 0 and "exceed full scale" in caplog.text


def test_silent_stems_render_silence(tmp_path):
    p = tmp_path / "quiet.wav"
    sf.write(p, np.zeros(FS // 2, np.float32), FS)
    scene = write_scene(tmp_path / "s.json", obj("quiet", 0.0, reverb_send=0.5, early_reflections=0.5))
    rep = render_files([p], scene, tmp_path / "q.wav", normalize=True, progress=False)
    y, _ = sf.read(str(tmp_path / "q.wav"))
    assert np.all(y == 0.0) and rep.loudness_lufs == float("-inf") and rep.gain_db == 0.0


def test_levels_are_the_written_files_measured_once(tmp_path, stems, monkeypatch):
    """Loudness runs once per render (again only after the limiter acted); the reported levels
    are those of the file as written, by pyloudnorm and scipy's 4x resample_poly.
    """
    import pyloudnorm
    from scipy.signal import resample_poly

    import renderer.loudness

    runs = []
    real = renderer.loudness.k_weighted_sums
    monkeypatch.setattr(renderer.loudness, "k_weighted_sums",
                        lambda *a: runs.append(1) or real(*a))  # fmt: skip
    loud = tmp_path / "loud.wav"
    sf.write(loud, np.sign(tone(1.0, 100.0)).astype(np.float32) * 0.9, FS)
    quiet = write_scene(tmp_path / "q.json", obj("vox", 30.0), target=-23.0)
    hot = write_scene(tmp_path / "h.json", obj("loud", 90.0, dist_m=0.3, gain_db=6.0))
    for scene, stem, normalize, n_runs in (
        (quiet, stems["vox"], False, 1),
        (quiet, stems["vox"], True, 1),  # a gain: same blocks, shifted
        (hot, loud, False, 2),  # the limiter changed the signal: measured again
    ):
        runs.clear()
        out = tmp_path / "o.wav"
        rep = render_files([stem], scene, out, progress=False, normalize=normalize, subtype="FLOAT")
        assert len(runs) == n_runs and (rep.limiter_reduction_db > 0) == (n_runs == 2)
        y, _ = sf.read(str(out), dtype="float64")
        want = pyloudnorm.Meter(FS).integrated_loudness(y)
        if normalize:  # from the shifted blocks: equal up to rounding
            assert rep.loudness_lufs == pytest.approx(want, abs=1e-4)
            assert rep.loudness_lufs == pytest.approx(-23.0, abs=1e-4)
        else:  # measured on these very samples: pyloudnorm's value to the last bit
            assert rep.loudness_lufs == want
        tp = np.max(np.abs(resample_poly(y, 4, 1, axis=0)))
        assert rep.true_peak_dbtp == pytest.approx(20 * np.log10(tp), abs=1e-4)
        assert rep.peak_dbfs == pytest.approx(20 * np.log10(np.max(np.abs(y))), abs=1e-6)


# ------------------------------------------------------------------ errors: clear, and no output


def _expect_error(tmp_path: Path, out: Path, match: str, **kw: Any) -> None:
    with pytest.raises(RenderError, match=match):
        render_files(progress=False, out=out, **kw)
    assert leftovers(tmp_path, out) == []


def test_missing_stem_file(tmp_path, stems):
    # The message is the shared stem reader's, as gravity analyze gives it (was "stem file not found").
    scene = write_scene(tmp_path / "s.json", obj("vox", 0.0))
    _expect_error(
        tmp_path,
        tmp_path / "o.wav",
        "nothere.wav: no such file",
        stems=[stems["vox"], tmp_path / "nothere.wav"],
        scene=scene,
    )


def test_scene_names_a_stem_without_file(tmp_path, stems):
    scene = write_scene(tmp_path / "s.json", obj("vox", 0.0), obj("drums", 90.0))
    _expect_error(
        tmp_path,
        tmp_path / "o.wav",
        "object 'drums' needs stem 'drums'",
        stems=[stems["vox"]],
        scene=scene,
    )


@pytest.mark.usefixtures("stems")  # a folder holding good stems too
def test_unreadable_wav(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    scene = write_scene(tmp_path / "s.json", obj("bad", 0.0))
    # The shared stem reader's message, as gravity analyze gives it (was "unreadable audio file").
    _expect_error(
        tmp_path,
        tmp_path / "o.wav",
        "bad.wav: not an audio file libsndfile can read",
        stems=[bad],
        scene=scene,
    )


def test_non_finite_stem(tmp_path):
    p = tmp_path / "nan.wav"
    x = np.zeros(1000, np.float32)
    x[10] = np.nan
    sf.write(p, x, FS, subtype="FLOAT")
    scene = write_scene(tmp_path / "s.json", obj("nan", 0.0))
    _expect_error(tmp_path, tmp_path / "o.wav", "nan.wav: contains 1 non-finite", stems=[p], scene=scene)


def test_bad_sofa_file(tmp_path, stems):
    sofa = tmp_path / "broken.sofa"
    sofa.write_text("not a SOFA file")
    scene = write_scene(tmp_path / "s.json", obj("vox", 0.0))
    _expect_error(
        tmp_path,
        tmp_path / "o.wav",
        "broken.sofa: bad SOFA file",
        stems=[stems["vox"]],
        scene=scene,
        hrtf_path=sofa,
    )
    _expect_error(
        tmp_path,
        tmp_path / "o.wav",
        "missing.sofa: bad SOFA file",
        stems=[stems["vox"]],
        scene=scene,
        hrtf_path=tmp_path / "missing.sofa",
    )


def test_bad_scene_and_options(tmp_path, stems):
    bad_scene = tmp_path / "bad.json"
    bad_scene.write_text(json.dumps({"version": "1.0", "bed": {"layout": "binaural"}, "objects": [{"id": "vox"}]}))
    with pytest.raises(ValidationError, match="bad.json"):
        render_files([stems["vox"]], bad_scene, tmp_path / "o.wav", progress=False)
    scene = write_scene(tmp_path / "s.json", obj("vox", 0.0))
    _expect_error(tmp_path, tmp_path / "o.wav", "fmt='6.1'", stems=[stems["vox"]], scene=scene, fmt="6.1")
    _expect_error(tmp_path, tmp_path / "nodir" / "o.wav", "does not exist", stems=[stems["vox"]], scene=scene)
    _expect_error(
        tmp_path,
        tmp_path / "o.wav",
        "not among the stem files",
        stems=[stems["vox"]],
        scene=scene,
        stem_map={"vox": "other.wav"},
    )


def test_explicit_hrtf_path_gives_the_embedded_result(tmp_path, stems):
    scene = write_scene(tmp_path / "s.json", obj("vox", 45.0, reverb_send=0.0, early_reflections=0.0))
    a = render_files([stems["vox"]], scene, tmp_path / "a.wav", progress=False, subtype="FLOAT")
    b = render_files(
        [stems["vox"]],
        scene,
        tmp_path / "b.wav",
        progress=False,
        subtype="FLOAT",
        hrtf_path=hrtf.default_sofa_path(),
    )
    ya, _ = sf.read(str(tmp_path / "a.wav"))
    yb, _ = sf.read(str(tmp_path / "b.wav"))
    assert a.n_samples == b.n_samples and np.array_equal(ya, yb)


def test_kernels_compile_once_into_the_user_cache(tmp_path):
    """A fresh process compiles into $GRAVITY_CACHE/numba, the next loads from it; a cache
    folder that cannot be made does not stop rendering.
    """
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np; from renderer import kernels; from renderer.loudness import peaks; "
        "print(peaks(np.ones((1, 64), np.float32))[0], kernels.peak_4x.stats.cache_hits.total(), "
        "kernels.peak_4x.stats.cache_misses.total())"
    )
    env = {**{k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}, "GRAVITY_KERNELS": "jit"}

    def run(cache: Path) -> list[str]:
        r = subprocess.run([sys.executable, "-c", code], env={**env, "GRAVITY_CACHE": str(cache)},
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    cache = tmp_path / "missing" / "cache"
    assert run(cache) == ["1.0", "0", "1"]  # compiled (a cache miss) and saved
    assert list((cache / "numba").rglob("kernels.peak_4x-*.nbi"))
    assert run(cache) == ["1.0", "1", "0"]  # loaded, not compiled
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert run(blocker)[0] == "1.0"  # numba's own cache locations, or none: still renders


def test_the_kernel_warm_up_loads_exactly_what_a_render_calls(tmp_path, stems):
    """``renderer.kernels.warm`` (run by render_files on a pool thread while the scene, stems and
    HRTF tables load) passes the very argument types a render does: a render after it adds no
    compiled version to any kernel (another type would compile a second one, seconds on a new
    install), and it warms every kernel the render calls.
    """
    import os
    import subprocess
    import sys

    moving = obj("vox", 30.0, reverb_send=0.0, early_reflections=0.5)
    moving["motion"] = [{"t": 0.0, "az_deg": 30.0, "el_deg": 0.0, "dist_m": 2.0},
                        {"t": 1.0, "az_deg": -60.0, "el_deg": 20.0, "dist_m": 4.0}]  # fmt: skip
    scene = write_scene(tmp_path / "s.json", moving, obj("gtr_r", 0.0))
    code = (
        "from pathlib import Path; from renderer import kernels; from renderer.offline import render_files\n"
        "ks = {n: getattr(kernels, n) for n in kernels.__all__ if hasattr(getattr(kernels, n), 'signatures')}\n"
        "kernels.warm(); warm = {n: len(k.signatures) for n, k in ks.items()}\n"
        f"render_files([Path({str(stems['vox'])!r}), Path({str(stems['gtr_r'])!r})], Path({str(scene)!r}), "
        f"Path({str(tmp_path / 'o.wav')!r}), progress=False)\n"
        "print(warm, {n: len(k.signatures) for n, k in ks.items()})"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "GRAVITY_KERNELS": "jit"},
                       check=False)  # fmt: skip  # numba's dispatchers (the ahead-of-time build reads them)
    assert r.returncode == 0, r.stderr
    warm, after = (eval(part) for part in r.stdout.strip().split("\n")[-1].replace("} {", "}|{").split("|"))
    assert warm == after, "a render compiled a kernel version the warm-up does not load"
    assert set(warm) == {"filters", "moving_mac", "static_mac", "lagrange_read", "peak_4x", "k_weighted_sums"}
    assert warm.pop("k_weighted_sums") == 2  # float32 mixes; float64 for loudness() of float64 input
    assert all(n == 1 for n in warm.values())
