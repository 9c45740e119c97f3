"""Tests for examples/make_stems.py: deterministic, musical, sensible levels, atomic writes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gravity.vocab import STEM_CLASSES
from helpers import load_make_stems

ROOT = Path(__file__).resolve().parent.parent
ms = load_make_stems()


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], float]:
    out = tmp_path_factory.mktemp("stems")
    t0 = time.perf_counter()
    paths = ms.make_stems(out)
    return paths, time.perf_counter() - t0


def test_files_name_their_class(song: tuple[list[Path], float]) -> None:
    paths, seconds = song
    assert [p.name for p in paths] == [f"{n}.wav" for n in ms.STEM_FILES]
    assert len(paths) >= 6
    assert set(ms.STEM_FILES.values()) <= set(STEM_CLASSES)
    assert {"kick", "bass", "lead_vocal", "pad", "hihat"} <= set(ms.STEM_FILES.values())
    assert {"riser", "arp"} & set(ms.STEM_FILES.values())
    assert seconds < 15.0, f"make_stems took {seconds:.1f} s"


def test_format_and_length(song: tuple[list[Path], float]) -> None:
    for p in song[0]:
        info = sf.info(str(p))
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_24", 48000, 1)
        assert info.frames == 8 * 4 * 48000 * 60 // 120  # 8 bars of 4/4 at 120 bpm = 16 s


def test_levels_do_not_clip(song: tuple[list[Path], float]) -> None:
    stems = {p.stem: sf.read(str(p))[0] for p in song[0]}
    for name, x in stems.items():
        peak = np.max(np.abs(x))
        assert 0.05 < peak < 0.9, (name, peak)
        assert np.sqrt(np.mean(x**2)) > 1e-3, f"{name} is (nearly) silent"
    mix = sum(stems.values())
    assert np.max(np.abs(mix)) <= 0.9 + 1e-4  # -1 dBFS with headroom for 24-bit rounding


def test_bass_follows_the_chord_roots(song: tuple[list[Path], float]) -> None:
    x, sr = sf.read(str(song[0][[p.stem for p in song[0]].index("bass")]))
    bar = 2 * sr  # 2 s a bar at 120 bpm
    roots_hz = [440.0 * 2 ** ((m - 69) / 12) for m in ms._ROOTS]  # A2 F2 C3 G2
    for b in range(8):
        seg = x[b * bar : (b + 1) * bar]
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
        f = np.fft.rfftfreq(len(seg), 1 / sr)
        low = f < 200
        peak = f[low][np.argmax(spec[low])]
        assert abs(peak - roots_hz[b % 4]) < 2.0, (b, peak, roots_hz[b % 4])


def test_kick_on_every_beat(song: tuple[list[Path], float]) -> None:
    x, sr = sf.read(str(song[0][0]))
    blk = sr // 100  # 10 ms
    e = np.mean(x[: len(x) // blk * blk].reshape(-1, blk) ** 2, axis=1)
    beats = np.arange(32) * 50  # a beat every 50 blocks (0.5 s)
    assert np.all(e[beats] > 10 * np.median(e))


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path, song: tuple[list[Path], float]) -> None:
    again = ms.make_stems(tmp_path / "again")
    for a, b in zip(song[0], again, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    other = ms.make_stems(tmp_path / "other", seed=1, bars=1)
    short = ms.make_stems(tmp_path / "short", seed=0, bars=1)
    assert any(a.read_bytes() != b.read_bytes() for a, b in zip(other, short, strict=True))


def test_atomic_no_leftovers(tmp_path: Path) -> None:
    ms.make_stems(tmp_path, bars=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.wav" for n in ms.STEM_FILES)


def test_other_tempo_and_rate(tmp_path: Path) -> None:
    paths = ms.make_stems(tmp_path, bars=2, bpm=90, sample_rate=44100)
    info = sf.info(str(paths[0]))
    assert info.samplerate == 44100
    assert info.frames == round(2 * 4 * 60 / 90 * 44100)


@pytest.mark.parametrize("kwargs", [{"bars": 0}, {"bpm": 10}, {"sample_rate": 100}, {"bars": 1.5}])
def test_bad_arguments(kwargs: dict, tmp_path: Path) -> None:
    (field,) = kwargs
    with pytest.raises(ValueError, match=f"^{field}="):  # the message names the argument
        ms.make_stems(tmp_path, **kwargs)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ms.main([str(tmp_path / "cli"), "--bars", "1"]) == 0
    printed = capsys.readouterr().out.split()
    assert [Path(p).name for p in printed] == [f"{n}.wav" for n in ms.STEM_FILES]
    assert ms.main([str(tmp_path / "bad"), "--bars", "0"]) == 1
    assert "bars" in capsys.readouterr().err
