"""The one stem reader (gravity.analysis.reading): the same hostile files give the same answer
through ``gravity analyze``, ``gravity render DIR`` and the renderer's ``load_stems``.

Real files throughout: WAV/FLAC written by libsndfile, a real folder and a real FIFO named
``.wav``; the CLI runs as a user runs it (``python -m gravity``, subprocess).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import soundfile as sf

from gravity.analysis import AnalysisError, analyze_stems, find_stems, reading
from gravity.analysis.reading import MIN_SAMPLE_RATE, StemFileError, downmix, read_audio
from gravity.errors import GravityError
from gravity.scene import Scene
from renderer import RenderError, load_stems, render_files

ROOT = Path(__file__).resolve().parent.parent
SR = 48000


def tone(seconds: float = 1.0, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return amp * np.sin(2 * np.pi * freq * t)


def _nan(p: Path) -> None:
    x = tone()
    x[1000:1010] = np.nan
    sf.write(p, x, SR, subtype="FLOAT")


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _eight(p: Path) -> None:
    """8 channels, a different tone on each (110, 220 ... 880 Hz, amplitude 0.3)."""
    sf.write(p, np.stack([tone(2.0, 110.0 * (k + 1)) for k in range(8)], axis=1), SR)


# name -> (how to make it, a phrase of the reader's one-line answer). eight_ch.wav is accepted
# (downmixed by the channel mean); every other file is rejected, naming the file.
HOSTILE: dict[str, tuple[Callable[[Path], Any], str]] = {
    "eight_ch.wav": (_eight, "8 channels: descriptors from the mono downmix (channel mean)"),
    "nan.wav": (_nan, "contains 10 non-finite (NaN/inf) samples"),
    "rate1.wav": (lambda p: sf.write(p, tone(0.01), 1), "sample rate 1 Hz is too low (need at least 8000 Hz)"),
    "folder.wav": (lambda p: p.mkdir(), "is a folder, not an audio file"),
    "fifo.wav": (_fifo, "is a named pipe (FIFO), not an audio file"),
    "empty.wav": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "text.wav": (lambda p: p.write_text("not audio, just notes\n" * 10), "a text file"),
}
# every file but eight_ch.wav is rejected (the FIFO where the platform has FIFOs)
REJECTED = sorted(n for n in HOSTILE if n != "eight_ch.wav" and (n != "fifo.wav" or hasattr(os, "mkfifo")))


def _make(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        HOSTILE[n][0](folder / n)
    return [folder / n for n in names]


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn``; fail (instead of hanging the suite) if it blocks, e.g. by opening a FIFO."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"blocked for more than {seconds} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


def gravity(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gravity", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def _scene(*ids: str) -> dict[str, Any]:
    return {
        "version": "1.0",
        "bed": {"layout": "binaural", "room_preset": "studio_small", "loudness_target_lufs": -16.0},
        "timing": {"bpm": 120, "time_signature": "4/4", "section_bars": 1},
        "objects": [
            {
                "id": i,
                "class": "other",
                "az_deg": 0.0,
                "el_deg": 0.0,
                "dist_m": 1.5,
                "width": 0.0,
                "gain_db": 0.0,
                "reverb_send": 0.1,
                "early_reflections": 0.2,
            }
            for i in ids
        ],
    }


def _reader_message(path: Path) -> str:
    with pytest.raises(StemFileError) as info:
        _within(10, lambda: read_audio(path))
    assert isinstance(info.value, (GravityError, ValueError))  # one clear CLI line, no traceback
    return str(info.value)


# ---------------------------------------------------------------- in process


@pytest.mark.parametrize("name", REJECTED)
def test_reader_and_renderer_reject_with_the_same_line(tmp_path: Path, name: str) -> None:
    (path,) = _make(tmp_path / "stems", [name])
    msg = _reader_message(path)
    assert msg.startswith(f"{path}: ") and HOSTILE[name][1] in msg and "\n" not in msg
    # analysis of its folder skips it with that line (a folder given by name is a folder of stems) ...
    with pytest.raises(AnalysisError) as info:
        _within(10, lambda: analyze_stems([path.parent]))
    assert str(info.value) == f"no usable stem: {msg}"
    # ... and the renderer, given it directly (render --scene), refuses it with the same line
    scene = Scene.from_dict(_scene(path.stem))
    with pytest.raises(RenderError) as rinfo:
        _within(10, lambda: load_stems([path], scene, SR))
    assert str(rinfo.value) == msg
    out = tmp_path / "out" / "o.wav"
    out.parent.mkdir()
    (tmp_path / "s.json").write_text(json.dumps(_scene(path.stem)))
    with pytest.raises(RenderError, match="^" + re.escape(msg) + "$"):
        _within(10, lambda: render_files([path], tmp_path / "s.json", out, progress=False))
    assert list(out.parent.iterdir()) == []  # nothing left behind, not even a temp file


def test_more_than_two_channels_render_as_the_channel_mean(tmp_path: Path) -> None:
    (path,) = _make(tmp_path, ["eight_ch.wav"])
    audio, rate, notes = read_audio(path)
    assert audio.shape == (2 * SR, 8) and rate == SR and notes == []
    rep = analyze_stems([path]).stems[0]
    assert rep.ok and rep.channels == 8 and any(HOSTILE["eight_ch.wav"][1] in w for w in rep.warnings)
    signals, used, _ = load_stems([path], Scene.from_dict(_scene("eight_ch")), SR)
    want = np.mean(sf.read(path, dtype="float32", always_2d=True)[0], axis=1)
    assert used == {"eight_ch": str(path)} and signals.shape == (1, 2 * SR)
    assert np.array_equal(signals[0], want)  # bit for bit: the channel mean, in float32
    # the 8 tones (110..880 Hz) all survive the mean, each at 1/8 of its amplitude
    spec = np.abs(np.fft.rfft(signals[0])) / (len(want) / 2)
    for k in range(8):
        assert spec[round(110.0 * (k + 1) * 2)] == pytest.approx(0.3 / 8, rel=0.02)


def test_downmix_rule() -> None:
    x = np.array([[1.0, 0.0, -1.0, 2.0], [0.5, 0.5, 0.5, 0.5]], np.float32)
    assert downmix(x).tolist() == [0.5, 0.5] and downmix(x).dtype == np.float32
    assert downmix(x[:, :1]).tolist() == [1.0, 0.5]  # mono unchanged


def test_bounds_are_checked_from_the_header_before_reading(tmp_path: Path) -> None:
    # A real FLAC whose STREAMINFO claims 2**36 - 1 frames x 2 channels (1 TiB as 64-bit floats):
    # rejected from the header (soundfile alone would allocate what the header claims).
    small = tmp_path / "small.flac"
    sf.write(small, np.zeros((4800, 2)), SR)
    b = bytearray(small.read_bytes())
    assert b[:4] == b"fLaC"
    v = int.from_bytes(b[18:26], "big") | ((1 << 36) - 1)  # total samples: the low 36 bits
    b[18:26] = v.to_bytes(8, "big")
    huge = tmp_path / "huge.flac"
    huge.write_bytes(b)
    assert sf.info(str(huge)).frames == (1 << 36) - 1
    msg = _reader_message(huge)
    assert "too large to load (68719476735 frames x 2 channels = 1024.0 GiB" in msg
    scene = Scene.from_dict(_scene("huge"))
    with pytest.raises(RenderError, match="too large to load"):
        load_stems([huge], scene, SR)
    many = tmp_path / "many.wav"
    sf.write(many, np.zeros((10, 65)), SR)
    assert "65 channels; a stem has at most 64" in _reader_message(many)
    fast = tmp_path / "fast.wav"
    sf.write(fast, np.zeros(10), 1_000_000)
    assert "sample rate 1000000 Hz is too high" in _reader_message(fast)
    slow = tmp_path / "slow.wav"
    sf.write(slow, tone(0.1), MIN_SAMPLE_RATE - 1)
    assert "too low" in _reader_message(slow)


def test_file_size_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "big.wav"
    sf.write(p, tone(0.1), SR)
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", p.stat().st_size - 1)  # 4 GiB is too big to write here
    assert "too large for a stem" in _reader_message(p)


def test_renderer_checks_every_given_path_but_reads_only_used_stems(tmp_path: Path) -> None:
    """Up front, every path must be a regular file (a FIFO is refused before anything is read);
    an unused empty file is left alone, as before, and reported unused.
    """
    good = tmp_path / "good.wav"
    sf.write(good, tone(), SR)
    (empty,) = _make(tmp_path, ["empty.wav"])
    scene = Scene.from_dict(_scene("good"))
    signals, _, unused = load_stems([good, empty], scene, SR)
    assert signals.shape == (1, SR) and unused == (str(empty),)
    if hasattr(os, "mkfifo"):
        (fifo,) = _make(tmp_path, ["fifo.wav"])
        with pytest.raises(RenderError) as info:
            _within(10, lambda: load_stems([good, fifo], scene, SR))
        assert str(info.value) == f"{fifo}: is a named pipe (FIFO), not an audio file"


def test_samples_beyond_float32_are_rejected_like_nan(tmp_path: Path) -> None:
    # The renderer works in float32, where 1e39 is infinite: analysis must not accept what the
    # renderer cannot play.
    p = tmp_path / "hot.wav"
    x = tone()
    x[5] = 1e39
    sf.write(p, x, SR, subtype="DOUBLE")
    msg = _reader_message(p)
    assert "1 sample beyond the float32 range" in msg and "re-export the stem" in msg
    with pytest.raises(RenderError) as info:
        load_stems([p], Scene.from_dict(_scene("hot")), SR)
    assert str(info.value) == msg


def test_find_stems_lists_what_is_named_like_audio(tmp_path: Path) -> None:
    _make(tmp_path, REJECTED)
    (tmp_path / ".hidden.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    want = [n for n in REJECTED if n != "fifo.wav" or hasattr(os, "mkfifo")]
    assert [p.name for p in find_stems(tmp_path)] == sorted(want)


@pytest.mark.parametrize(("fmt", "subtype", "channels"), [
    ("wav", "PCM_16", 1), ("wav", "PCM_24", 2), ("wav", "PCM_32", 3), ("wav", "FLOAT", 6), ("wav", "DOUBLE", 1),
    ("wav", "PCM_U8", 2), ("wav", "ULAW", 1), ("flac", "PCM_24", 2), ("aiff", "PCM_16", 1), ("ogg", "VORBIS", 2),
])  # fmt: skip
def test_block_reads_are_the_whole_read_in_float32(tmp_path: Path, fmt: str, subtype: str, channels: int) -> None:
    """open_stem's blocks, whatever their size, are read_audio's samples rounded to float32 and
    downmixed by the same rule, bit for bit (the renderer streams stems; analysis reads them whole).
    """
    rng = np.random.default_rng(channels)
    p = tmp_path / f"s.{fmt}"
    x = np.clip(0.4 * rng.standard_normal((12345, channels)), -1.0, 1.0)
    x[:3] = 1.0  # full scale
    sf.write(p, x if channels > 1 else x[:, 0], SR, subtype=subtype)
    audio, rate, notes = read_audio(p)
    want = downmix(audio.astype(np.float32))
    with reading.open_stem(p) as stream:
        assert (stream.sample_rate, stream.channels, stream.frames, stream.notes) == (rate, channels, len(want), notes)
        got = np.empty(len(want) + 500, np.float32)
        k, size = 0, 1
        while k < len(got):  # sizes 1, 2, 4 ... 4096: block edges everywhere
            n = stream.read(got[k : k + size])
            if n == 0:
                break
            k, size = k + n, min(2 * size, 4096)
        assert stream.frames_read == k == len(want)
    assert np.array_equal(got[:k].view(np.int32), want.view(np.int32))


def test_a_block_with_nan_raises_the_whole_reads_line(tmp_path: Path) -> None:
    (path,) = _make(tmp_path, ["nan.wav"])  # NaN at samples 1000..1009
    msg = _reader_message(path)
    with reading.open_stem(path) as stream:
        buf = np.empty(512, np.float32)
        assert stream.read(buf) == 512  # the first block is clean
        with pytest.raises(StemFileError) as info:
            stream.read(buf)
    assert str(info.value) == msg


# ---------------------------------------------------------------- the real CLI


def _skipped(stderr: str) -> set[str]:
    return {line.strip() for line in stderr.splitlines() if line.startswith("SKIPPED ")}


def test_cli_analyze_and_render_dir_give_the_same_answer(tmp_path: Path) -> None:
    """One folder with every hostile file and one good stem: both commands skip the same files
    with the same lines, accept the 8-channel stem with the same warning, and exit 0.
    """
    stems = tmp_path / "stems"
    _make(stems, [*REJECTED, "eight_ch.wav"])
    sf.write(stems / "pad.wav", tone(2.0, 220.0), SR)
    expected = {f"SKIPPED {_reader_message(stems / n)}" for n in REJECTED}
    a = gravity("analyze", str(stems))
    assert a.returncode == 0, a.stderr
    assert "Traceback" not in a.stderr
    assert _skipped(a.stderr) == expected
    assert {s["id"] for s in json.loads(a.stdout)["stems"]} == {"eight_ch", "pad"}
    out = tmp_path / "out" / "mix.wav"
    out.parent.mkdir()
    r = gravity("render", str(stems), "-o", str(out), "--planner", "planner", "--quiet")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert _skipped(r.stderr) == expected
    warn = f"warning: {HOSTILE['eight_ch.wav'][1]}"
    assert warn in a.stderr and warn in r.stderr
    y, rate = sf.read(out)
    assert rate == SR and y.shape[1] == 2 and np.isfinite(y).all() and np.abs(y).max() > 0.01
    scene = json.loads(out.with_suffix(".scene.json").read_text())
    assert {o["id"] for o in scene["objects"]} == {"eight_ch", "pad"}


def test_cli_rejected_files_only_exit_1_and_leave_nothing(tmp_path: Path) -> None:
    """A folder of only rejected files: both commands exit 1 with the same per-file lines and
    no traceback, and render writes nothing.
    """
    stems = tmp_path / "stems"
    paths = _make(stems, REJECTED)
    lines = [_reader_message(p) for p in paths]
    out = tmp_path / "out" / "mix.wav"
    out.parent.mkdir()
    a = gravity("analyze", str(stems))
    r = gravity("render", str(stems), "-o", str(out), "--planner", "planner", "--quiet")
    for res in (a, r):
        assert res.returncode == 1 and "Traceback" not in res.stderr and res.stdout == ""
        head = f"gravity: error: no usable stems ({len(lines)} files):\n"
        assert head + "\n".join(f"  {m}" for m in lines) in res.stderr
    assert list(out.parent.iterdir()) == []


def test_cli_render_with_a_scene_names_the_bad_stem(tmp_path: Path) -> None:
    """With --scene, render reads the stem itself (load_stems): the NaN file gets the line
    ``gravity analyze`` prints for it, exit 1, no output.
    """
    (nan,) = _make(tmp_path / "stems", ["nan.wav"])
    msg = _reader_message(nan)
    scene = tmp_path / "scene.json"
    scene.write_text(json.dumps(_scene("nan")))
    out = tmp_path / "out" / "mix.wav"
    out.parent.mkdir()
    r = gravity("render", str(nan), "--scene", str(scene), "-o", str(out), "--quiet")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"gravity: error: {msg}\n" in r.stderr
    assert list(out.parent.iterdir()) == []  # gravity analyze prints msg too: see the test above
