"""Stem files at the edges (issue 18): too short, truncated, not regular files, one-shot loudness, memory.

The stem reader (:mod:`gravity.analysis.reading`) is the one door for ``gravity analyze`` and
``gravity render``: each class is checked on the reader with exact values, then through both
commands run as a user would (a subprocess): exit 1, the file and the limit named, no traceback,
no new file, the inputs untouched.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from gravity.analysis import analyze_stems
from gravity.analysis.loudness import integrated_loudness, measure_loudness
from gravity.analysis.reading import (
    MIN_STEM_S,
    StemFileError,
    check_stem_path,
    open_stem,
    read_audio,
    truncation_note,
)
from renderer import RenderError, render_files

ROOT = Path(__file__).resolve().parent.parent
FS = 48000
FFMPEG = shutil.which("ffmpeg")


def gravity(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gravity", *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=timeout
    )


def listing(folder: Path) -> dict[str, bytes | None]:
    """Every entry in ``folder`` (hidden ones too): regular files -> bytes, others -> None."""
    return {p.name: (p.read_bytes() if p.is_file() else None) for p in sorted(folder.iterdir())}


def failed_with(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, no traceback, and the error (its first line, then indented lines) holds every needle."""
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.rstrip().splitlines()
    first = max(i for i, line in enumerate(lines) if line.startswith("gravity: error:"))
    assert all(line.startswith("  ") for line in lines[first + 1 :]), r.stderr  # nothing after the error
    error = "\n".join(lines[first:])
    for needle in needles:
        assert needle in error, (needle, error)
    return error


def tone(seconds: float, freq: float = 997.0, amp: float = 0.5, rate: int = FS) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return amp * np.sin(2 * np.pi * freq * t)


def write_scene(path: Path, *ids: str) -> Path:
    objs = [
        {"id": i, "class": "other", "az_deg": 0.0, "el_deg": 0.0, "dist_m": 1.5, "width": 0.0,
         "gain_db": -6.0, "reverb_send": 0.0, "early_reflections": 0.0}
        for i in ids
    ]  # fmt: skip
    doc = {"version": "1.0", "bed": {"layout": "binaural", "room_preset": "studio_small"},
           "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 1}, "objects": objs}  # fmt: skip
    path.write_text(json.dumps(doc))
    return path


def truncate(path: Path, keep_bytes: int) -> None:
    path.write_bytes(path.read_bytes()[:keep_bytes])


# ------------------------------------------------------------------ minimum length


@pytest.mark.parametrize(
    ("frames", "rate", "ok"),
    [(1, FS, False), (479, FS, False), (480, FS, True), (79, 8000, False), (80, 8000, True), (2400, FS, True)],
)
def test_the_minimum_stem_length_is_10_ms_at_any_rate(tmp_path, frames, rate, ok):
    p = tmp_path / "hit.wav"
    sf.write(p, tone(frames / rate, rate=rate), rate, subtype="PCM_24")
    assert MIN_STEM_S == 0.010
    if ok:
        assert read_audio(p)[0].shape == (frames, 1)
        with open_stem(p) as s:
            assert s.frames == frames
        return
    ms = f"{1e3 * frames / rate:.3g} ms"
    want = f"hit.wav: too short for a stem ({frames} sample{'s' * (frames != 1)} = {ms} at {rate} Hz; at least 10 ms)"
    for reader in (read_audio, open_stem):
        with pytest.raises(StemFileError) as info:
            reader(p)
        assert str(info.value) == f"{tmp_path}/{want}"


def _one_sample(p: Path) -> None:
    sf.write(p, np.array([0.5], np.float32), FS)


def _header_only(p: Path) -> None:
    sf.write(p, np.zeros(0, np.float32), FS)


def _cut_to_100_frames(p: Path) -> None:  # the header says 1 s, the file holds 100 frames
    sf.write(p, tone(1.0), FS, subtype="PCM_16")
    truncate(p, 44 + 200)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (_one_sample, "too short for a stem (1 sample = 0.0208 ms at 48000 Hz; at least 10 ms)"),
        (_header_only, "contains no audio frames (WAV PCM_16 header only)"),
        (_cut_to_100_frames, "too short for a stem (100 samples = 2.08 ms at 48000 Hz; at least 10 ms)"),
        (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    ],
)
def test_a_stem_too_short_fails_render_and_analyze_naming_it(tmp_path, make, needle):
    make(tmp_path / "a.wav")
    scene = write_scene(tmp_path / "scene.json", "a")
    before = listing(tmp_path)
    r = gravity("render", tmp_path / "a.wav", "--scene", scene, "-o", tmp_path / "out.wav", "--quiet")
    failed_with(r, f"{tmp_path / 'a.wav'}: {needle}")
    assert r.stderr.count("\n") == 1  # one line, nothing else
    r = gravity("analyze", tmp_path / "a.wav", "-o", tmp_path / "request.json")
    failed_with(r, "no usable stem", f"{tmp_path / 'a.wav'}: {needle}")
    assert listing(tmp_path) == before


# ------------------------------------------------------------------ truncated files


@pytest.mark.parametrize(
    ("fmt", "subtype", "channels", "keep"),
    [
        ("WAV", "PCM_16", 1, 0.5),
        ("WAV", "PCM_24", 2, 0.25),
        ("WAV", "FLOAT", 1, 0.9),
        ("AIFF", "PCM_16", 1, 0.5),
    ],
)
def test_a_truncated_file_is_read_as_far_as_it_goes_with_a_note(tmp_path, fmt, subtype, channels, keep):
    p = tmp_path / f"cut.{fmt.lower()}"
    x = np.stack([tone(1.0)] * channels, axis=1)
    sf.write(p, x, FS, subtype=subtype, format=fmt)
    size = p.stat().st_size
    truncate(p, int(size * keep) + 1)  # +1: a partial frame at the end too
    audio, sr, notes = read_audio(p)
    held = audio.shape[0]
    assert held < FS and np.array_equal(audio, read_audio_prefix(x, subtype, held))
    missing = FS - held
    assert notes == [
        f"truncated: its header states {FS} frames, the file holds {held} "
        f"({missing} frames = {missing / FS:.3g} s missing); read what is there"
    ]
    with open_stem(p) as s:
        assert s.notes == notes and s.frames == held


def read_audio_prefix(x: np.ndarray, subtype: str, n: int) -> np.ndarray:
    """The first n frames of ``x`` as the subtype stores them (PCM rounds, float is exact)."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ref-{os.getpid()}.wav"
    try:
        sf.write(tmp, x[:n], FS, subtype=subtype)
        return sf.read(tmp, dtype="float64", always_2d=True)[0]
    finally:
        tmp.unlink(missing_ok=True)


def test_truncation_notes_only_what_the_header_states():
    info = "data : 96000 (should be 47978)\n"
    assert truncation_note(info, 23989, FS) == (
        "truncated: its header states 48000 frames, the file holds 23989 (24011 frames = 0.5 s missing); "
        "read what is there"
    )
    assert truncation_note("data : 96000\n", 48000, FS) is None  # whole
    assert truncation_note("data : 4294967295 (should be 96000)\n", 48000, FS) is None  # length left unset
    assert truncation_note("data : 0 (should be 96000)\n", 48000, FS) is None  # states less: not cut
    assert truncation_note("  Frames      : 48000\nSSND : 96008 (should be 47981)\n", 23986, FS).startswith(
        "truncated: its header states 48000 frames, the file holds 23986 (24014 frames"
    )


def test_a_truncated_stem_renders_and_analyses_with_a_warning(tmp_path):
    p = tmp_path / "cut.wav"
    sf.write(p, tone(1.0, 220.0, 0.3), FS, subtype="PCM_16")
    truncate(p, 44 + 2 * 36000)  # 0.75 s of the 1 s the header states
    stem = p.read_bytes()
    note = "truncated: its header states 48000 frames, the file holds 36000 (12000 frames = 0.25 s missing)"
    scene = write_scene(tmp_path / "scene.json", "cut")
    r = gravity("render", p, "--scene", scene, "-o", tmp_path / "out.wav", "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"WARNING renderer.offline: {p}: {note}" in r.stderr
    assert sf.info(str(tmp_path / "out.wav")).duration == pytest.approx(0.75, abs=0.1)
    r = gravity("analyze", p, "--bpm", "120")
    assert r.returncode == 0 and f"warning: {note}" in r.stderr, r.stderr
    assert p.read_bytes() == stem


def test_a_flac_cut_short_is_named_as_damaged(tmp_path):
    p = tmp_path / "cut.flac"
    sf.write(p, tone(1.0) * np.linspace(0, 1, FS), FS)
    truncate(p, p.stat().st_size // 2)
    with pytest.raises(StemFileError, match=r"cut.flac: cannot decode its samples \(.*\); a damaged or truncated FLAC"):
        read_audio(p)


# ------------------------------------------------------------------ regular files only


def test_only_regular_files_are_stems(tmp_path):
    os.mkfifo(tmp_path / "fifo.wav")
    (tmp_path / "null.wav").symlink_to("/dev/null")
    (tmp_path / "dir.wav").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock.wav"))
        for name, kind in [
            ("fifo.wav", "is a named pipe (FIFO), not an audio file"),
            ("null.wav", "is a character device, not an audio file"),
            ("dir.wav", "is a folder, not an audio file"),
            ("sock.wav", "is a socket, not an audio file"),
            ("none.wav", "no such file"),
        ]:
            for check in (check_stem_path, read_audio, open_stem):
                with pytest.raises(StemFileError) as info:
                    check(tmp_path / name)
                assert str(info.value) == f"{tmp_path / name}: {kind}"
    finally:
        sock.close()


def test_a_fifo_named_wav_never_hangs_analyze_or_render(tmp_path):
    stems = tmp_path / "stems"
    stems.mkdir()
    sf.write(stems / "kick.wav", tone(1.0, 60.0), FS)
    os.mkfifo(stems / "x.wav")
    scene = write_scene(tmp_path / "scene.json", "x")
    before = listing(tmp_path)
    fifo = f"{stems / 'x.wav'}: is a named pipe (FIFO), not an audio file"
    failed_with(gravity("analyze", stems / "x.wav", timeout=30), "no usable stem", fifo)
    r = gravity("analyze", stems, "--bpm", "120", "-o", tmp_path / "request.json", timeout=30)
    assert r.returncode == 0 and f"SKIPPED {fifo}" in r.stderr, r.stderr
    assert [s["id"] for s in json.loads((tmp_path / "request.json").read_text())["stems"]] == ["kick"]
    (tmp_path / "request.json").unlink()
    r = gravity("render", stems / "x.wav", "--scene", scene, "-o", tmp_path / "out.wav", "--quiet", timeout=30)
    failed_with(r, fifo)
    assert listing(tmp_path) == before


# ------------------------------------------------------------------ loudness of short one-shots


@pytest.mark.parametrize("seconds", [0.3, 0.12, 0.05, 0.01])
def test_a_short_one_shot_has_no_integrated_loudness_but_a_labelled_level(seconds):
    """BS.1770 needs one 400 ms block: shorter audio gets its K-weighted RMS over its own length,
    on the same scale (a 0.5 amplitude 997 Hz sine reads -9.03 at any length), said so.
    """
    long = measure_loudness(tone(2.0), FS)
    assert long.gated and long.lufs == pytest.approx(-9.03, abs=0.06) and long.note == ""
    short = measure_loudness(tone(seconds), FS)
    assert not short.gated and short.duration_s == pytest.approx(seconds)
    assert short.lufs == pytest.approx(long.lufs, abs=0.05)
    assert short.note == (
        f"too short for BS.1770 ({1e3 * seconds:.0f} ms < 400 ms): "
        "loudness is the K-weighted RMS level over the whole file, not integrated loudness"
    )
    # what zero-padding to one block read: 10 log10(0.4 / seconds) dB low (4 to 16 dB here)
    import pyloudnorm

    padded = np.concatenate([tone(seconds), np.zeros(int(0.4 * FS) - len(tone(seconds)))])
    assert pyloudnorm.Meter(FS).integrated_loudness(padded) == pytest.approx(
        long.lufs - 10 * math.log10(0.4 / seconds), abs=0.1
    )
    assert integrated_loudness(tone(seconds), FS) == short.lufs  # the same value for every caller


def test_short_loudness_weights_channels_and_gates_silence():
    x = tone(0.2)
    mono = measure_loudness(x, FS).lufs
    assert measure_loudness(np.stack([x, x], axis=1), FS).lufs == pytest.approx(mono + 3.01, abs=0.01)
    lfe_only = np.zeros((len(x), 6))
    lfe_only[:, 3] = x  # 5.1: the LFE channel weighs 0
    assert measure_loudness(lfe_only, FS).lufs == -math.inf
    surround = np.zeros((len(x), 6))
    surround[:, 4] = x  # a surround channel weighs 1.41 (+1.49 dB)
    assert measure_loudness(surround, FS).lufs == pytest.approx(mono + 10 * math.log10(1.41), abs=0.01)
    assert measure_loudness(np.zeros(4800), FS).lufs == -math.inf
    assert measure_loudness(tone(0.2, amp=1e-5), FS).lufs == -math.inf  # -99 LUFS: below the -70 gate
    assert measure_loudness(np.zeros(0), FS).lufs == -math.inf


@pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed")
def test_against_ffmpeg_ebur128(tmp_path):
    """1 s: both measure BS.1770 alike. 300 ms: ffmpeg prints its -70 floor (no complete block);
    we say the file is too short and give its level, which matches the long file's.
    """

    def ffmpeg_lufs(p: Path) -> float:
        r = subprocess.run(
            [FFMPEG, "-nostats", "-hide_banner", "-i", str(p), "-af", "ebur128", "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        summary = r.stderr[r.stderr.rindex("Integrated loudness:") :]
        return float(summary.split("I:")[1].split("LUFS")[0])

    for seconds in (1.0, 0.3):
        sf.write(tmp_path / f"{seconds}.wav", tone(seconds), FS, subtype="FLOAT")
    res = analyze_stems([tmp_path / "1.0.wav", tmp_path / "0.3.wav"], bpm=120)
    one, short = res.analysed
    assert one.lufs_method == "BS.1770" and one.lufs == pytest.approx(ffmpeg_lufs(tmp_path / "1.0.wav"), abs=0.2)
    assert ffmpeg_lufs(tmp_path / "0.3.wav") == -70.0
    assert short.lufs_method == "K-weighted RMS (too short for BS.1770: 300 ms < 400 ms)"
    assert short.lufs == pytest.approx(one.lufs, abs=0.1)
    assert f"{short.lufs:.1f} LUFS [K-weighted RMS (too short for BS.1770: 300 ms < 400 ms)]" in short.format()
    assert short.to_dict()["lufs_method"] == short.lufs_method


def test_a_render_too_short_for_bs1770_says_so_and_is_not_normalised(tmp_path, caplog):
    sf.write(tmp_path / "hit.wav", tone(0.05, 1000.0, 0.3).astype(np.float32), FS)
    scene = write_scene(tmp_path / "scene.json", "hit")
    with caplog.at_level(logging.WARNING, logger="renderer.offline"):
        rep = render_files([tmp_path / "hit.wav"], scene, tmp_path / "out.wav", progress=False, normalize=True)
    assert rep.duration_s < 0.4 and rep.loudness_lufs == -math.inf and rep.gain_db == 0.0
    assert f"too short for BS.1770 loudness ({1e3 * rep.duration_s:.0f} ms < 400 ms)" in rep.summary()
    assert "not normalised: too short for BS.1770" in caplog.text


# ------------------------------------------------------------------ memory


def _peak_rss(cmd: list[str]) -> int:
    """Peak resident memory of one child process in bytes (``ru_maxrss``, this child alone)."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, err.decode()
    return usage.ru_maxrss * 1024


@pytest.mark.parametrize("stem_rate", [FS, pytest.param(44100, marks=pytest.mark.slow)])
def test_render_memory_grows_with_the_output_not_with_the_stems(tmp_path, stem_rate):
    """16 stems x 30 s against 16 x 3 s: 83 MB more stems as float32 at 48 kHz, 10 MB more output
    (held whole); the peak grows by far less than the stems (they stream, and are resampled
    block by block at 44.1 kHz), measured as a process.
    """
    n, peaks = 16, []
    for seconds in (3, 30):
        d = tmp_path / f"s{seconds}"
        d.mkdir()
        for k in range(n):
            x = tone(seconds, 100.0 + 50 * k, 0.05, rate=stem_rate).astype(np.float32)
            sf.write(d / f"st{k}.wav", x, stem_rate, subtype="PCM_24")
        scene = write_scene(tmp_path / f"scene{seconds}.json", *(f"st{k}" for k in range(n)))
        cmd = [sys.executable, "-m", "gravity", "render", str(d), "--scene", str(scene), "-o", str(tmp_path / "o.wav")]
        peaks.append(_peak_rss([*cmd, "--quiet"]))
    stems_more = n * 27 * FS * 4
    output_more = 2 * 27 * FS * 4
    assert peaks[1] - peaks[0] < output_more + 0.25 * stems_more, (peaks, stems_more)


def test_an_output_beyond_the_memory_bound_is_refused_before_allocating(tmp_path, monkeypatch):
    import renderer.offline

    sf.write(tmp_path / "a.wav", tone(1.0, 440.0, 0.3).astype(np.float32), FS)
    scene = write_scene(tmp_path / "scene.json", "a")
    monkeypatch.setattr(renderer.offline, "MAX_OUTPUT_BYTES", 100_000)  # 0.5 s of stereo float32
    with pytest.raises(RenderError, match=r"out.wav: 0.0 min of 2-channel output needs 0.00 GiB in memory \(at most"):
        render_files([tmp_path / "a.wav"], scene, tmp_path / "out.wav", progress=False)
    assert sorted(os.listdir(tmp_path)) == ["a.wav", "scene.json"]


@pytest.mark.parametrize(("stem_rate", "rate"), [(44100, FS), (96000, FS), (8000, FS), (FS, 44100)])
def test_stems_at_another_rate_are_resampled_block_by_block_to_resample_polys_samples(tmp_path, stem_rate, rate):
    from fractions import Fraction

    from scipy.signal import resample_poly

    from gravity.analysis.reading import downmix
    from renderer.offline import _open_stem, _Resampled

    p = tmp_path / "x.wav"
    sf.write(p, 0.3 * np.random.default_rng(1).standard_normal((stem_rate + 7, 2)), stem_rate, subtype="PCM_24")
    frac = Fraction(rate, stem_rate).limit_denominator(10000)
    whole = resample_poly(downmix(read_audio(p)[0].astype(np.float32)), frac.numerator, frac.denominator)
    for block in (333, 8192, 1 << 16):
        src = _open_stem(p, rate)
        assert isinstance(src, _Resampled) and src.frames == len(whole)
        y = np.empty(((len(whole) + 1000) // block + 1) * block, np.float32)
        for s in range(0, len(y), block):
            src.read(y[s : s + block])
        src.close()
        assert np.array_equal(y[: len(whole)], whole.astype(np.float32)) and not y[len(whole) :].any()
