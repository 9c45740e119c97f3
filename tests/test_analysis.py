"""Tests for gravity.analysis and gravity.analysis.tempo: measured behaviour on the example song,
loudness against ffmpeg's ebur128, hostile files, names, ids, hints and the request.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gravity.analysis import (
    AnalysisError,
    AnalysisResult,
    analyze_stems,
    class_from_name,
    integrated_loudness,
    sanitize_id,
)
from gravity.schema import check_request
from gravity.analysis.tempo import HOP, estimate_tempo
from gravity.vocab import STEM_CLASSES
from helpers import load_make_stems

ROOT = Path(__file__).resolve().parent.parent
SR = 48000
FFMPEG = shutil.which("ffmpeg")
SOX = shutil.which("sox")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg not installed (apt-get install ffmpeg)")
needs_sox = pytest.mark.skipif(SOX is None, reason="sox not installed (apt-get install sox)")


ms = load_make_stems()
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@pytest.fixture(scope="module")
def stems(example_song: Path) -> list[Path]:
    return [example_song / f"{name}.wav" for name in ms.STEM_FILES]  # the session's, in make_stems' order


@pytest.fixture(scope="module")
def result(stems: list[Path]) -> AnalysisResult:
    return analyze_stems([stems[0].parent])  # the folder, as a user would give it


def _by_id(res: AnalysisResult) -> dict[str, dict]:
    return {s["id"]: s for s in res.request["stems"]}


def ffmpeg_lufs(path: Path) -> float:
    """Integrated loudness from ffmpeg's ebur128 summary ("I: -23.0 LUFS")."""
    out = subprocess.run(
        [FFMPEG, "-nostats", "-hide_banner", "-i", str(path), "-af", "ebur128", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    return float(re.findall(r"I:\s+(-?[\d.]+)\s+LUFS", out)[-1])


def tone(seconds: float = 2.0, hz: float = 440.0, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    return amp * np.sin(2 * np.pi * hz * np.arange(int(seconds * sr)) / sr)


# ---------------------------------------------------------------- loudness vs ffmpeg


@needs_ffmpeg
def test_loudness_matches_ffmpeg_on_example_stems(result: AnalysisResult) -> None:
    deltas = {}
    for rep in result.analysed:
        deltas[rep.id] = rep.lufs - ffmpeg_lufs(Path(rep.path))
    print("\nLU delta vs ffmpeg ebur128:", {k: round(v, 3) for k, v in deltas.items()})
    assert max(abs(d) for d in deltas.values()) <= 0.2, deltas


SOX_SIGNALS = {
    "sine1k.wav": "-r 48000 {f} synth 3 sine 1000 vol 0.5",
    "sine100_st_44k.wav": "-r 44100 -c 2 {f} synth 3 sine 100 sine 5000 vol 0.7",
    "pink.wav": "-r 48000 {f} synth 5 pinknoise vol 0.3",
    "white_96k.wav": "-r 96000 -b 24 {f} synth 3 whitenoise vol 0.2",
    "brown.wav": "-r 48000 {f} synth 3 brownnoise vol 0.5",
    "square_fade.wav": "-r 48000 {f} synth 4 square 200 vol 0.3 fade 0.5 4 1",
    "sweep.wav": "-r 48000 {f} synth 4 sine 50:12000 vol 0.4",
    "tremolo.wav": "-r 48000 {f} synth 4 sine 300 tremolo 3 90 vol 0.4",
    "bursts.wav": "-r 48000 {f} synth 0.1 whitenoise vol 0.5 pad 0 0.9 repeat 3",
    "five_one.wav": "-r 48000 -c 6 {f} synth 3 sine 1000 sine 500 sine 200 sine 60 sine 300 sine 2000 vol 0.3",
    "seven_one.wav": (
        "-r 48000 -c 8 {f} synth 3 sine 1000 sine 500 sine 200 sine 60 sine 300 sine 2000 sine 700 sine 900 vol 0.3"
    ),
    "below_gate.wav": "-r 48000 {f} synth 3 sine 1000 vol 0.0001",
}


@pytest.fixture(scope="module")
def sox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sox")
    if SOX:
        for name, args in SOX_SIGNALS.items():
            subprocess.run([SOX, "-n", *args.format(f=d / name).split()], check=True, capture_output=True)
    return d


@needs_ffmpeg
@needs_sox
@pytest.mark.parametrize("name", sorted(SOX_SIGNALS))
def test_loudness_matches_ffmpeg_on_sox_signals(sox_dir: Path, name: str) -> None:
    res = analyze_stems([sox_dir / name], bpm=120)
    ours, theirs = res.analysed[0].lufs, ffmpeg_lufs(sox_dir / name)
    assert abs(ours - theirs) <= 0.2, (name, ours, theirs)


def test_loudness_reference_tone() -> None:
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS; amplitude 0.5 -> -9.03.
    assert integrated_loudness(tone(3, 997, 1.0), SR) == pytest.approx(-3.01, abs=0.06)
    assert integrated_loudness(tone(3, 997, 0.5), SR) == pytest.approx(-9.03, abs=0.06)
    stereo = np.stack([tone(3, 997, 0.5)] * 2, axis=1)
    assert integrated_loudness(stereo, SR) == pytest.approx(-6.02, abs=0.06)


def test_short_and_silent_loudness(tmp_path: Path) -> None:
    # ffmpeg prints -70 LUFS for both: no complete 400 ms block / nothing above the gate. We
    # report silence as -70 too, but a short file's level as its K-weighted RMS over its own
    # length, labelled as such (a zero-padded block would read it 10 log10(400/200) = 3 dB low).
    sf.write(tmp_path / "short.wav", tone(0.2, 1000, 0.5), SR)
    sf.write(tmp_path / "silent.wav", np.zeros(SR), SR)
    res = analyze_stems([tmp_path / "short.wav", tmp_path / "silent.wav"], bpm=100)
    short, silent = res.analysed
    assert short.lufs == pytest.approx(-9.03, abs=0.1)
    assert short.lufs_method == "K-weighted RMS (too short for BS.1770: 200 ms < 400 ms)"
    assert silent.lufs_method == "BS.1770"
    assert any("very short" in w for w in short.warnings)
    assert silent.lufs == -70.0 and silent.silent and silent.leadness == 0.0
    assert any("silent" in w for w in silent.warnings)
    if FFMPEG:
        assert ffmpeg_lufs(tmp_path / "silent.wav") == -70.0


# ---------------------------------------------------------------- the example song


def test_request_validates(result: AnalysisResult) -> None:
    req = result.request
    assert check_request(req) == []
    assert req["max_objects"] == 8 and req["target_format"] == "binaural"
    assert req["global"]["section_bars"] == 8 and req["global"]["time_signature"] == "4/4"
    assert 0.0 <= req["global"]["energy"] <= 1.0
    json.dumps(result.to_dict(), allow_nan=False)  # the report is plain JSON
    assert "tempo 120" in result.summary()


def test_classes_from_names(result: AnalysisResult) -> None:
    got = {s["id"]: s["class"] for s in result.request["stems"]}
    assert got == ms.STEM_FILES
    assert all(r.class_source == "name" and r.class_confidence >= 0.9 for r in result.analysed)


def test_band_energy(result: AnalysisResult) -> None:
    s = _by_id(result)
    for st_ in s.values():
        be = st_["band_energy"]
        assert sum(be.values()) == pytest.approx(1.0, abs=1e-9)
        assert all(0.0 <= v <= 1.0 for v in be.values())
    assert s["kick"]["band_energy"]["low"] > 0.8
    assert s["bass"]["band_energy"]["low"] > 0.6
    assert s["hats"]["band_energy"]["high"] > 0.9
    for mid in ("vox", "pad", "arp"):
        assert max(s[mid]["band_energy"], key=s[mid]["band_energy"].get) == "mid", mid
    assert s["riser"]["band_energy"]["high"] > 0.5


def test_transient_and_leadness(result: AnalysisResult) -> None:
    s = _by_id(result)
    tr = {k: v["transient"] for k, v in s.items()}
    assert min(tr["kick"], tr["snare"], tr["hats"]) > 0.8
    assert tr["arp"] > 0.5
    assert max(tr["pad"], tr["riser"]) < 0.15
    assert tr["pad"] < tr["vox"] < tr["bass"] < tr["arp"] < tr["kick"]
    lead = {k: v["leadness"] for k, v in s.items()}
    assert max(lead, key=lead.get) == "vox"
    assert lead["vox"] > 0.8
    assert lead["hats"] < lead["bass"] and lead["riser"] < lead["bass"]


def test_tempo_120(result: AnalysisResult) -> None:
    assert result.tempo.source == "estimated"
    assert result.tempo.bpm == pytest.approx(120.0, abs=1.0)
    assert result.tempo.confidence > 0.4
    assert result.request["global"]["bpm"] == pytest.approx(120.0, abs=1.0)


@pytest.mark.parametrize("bpm", [92.0, 140.0])
def test_tempo_other_songs(tmp_path: Path, bpm: float) -> None:
    paths = ms.make_stems(tmp_path, bpm=bpm, bars=4, seed=3)
    res = analyze_stems(paths)
    assert res.tempo.bpm == pytest.approx(bpm, abs=1.0), res.tempo


def test_classes_without_names(tmp_path: Path, stems: list[Path]) -> None:
    truth = {}
    for i, p in enumerate(stems, 1):
        shutil.copy(p, tmp_path / f"track{i}.wav")
        truth[f"track{i}"] = ms.STEM_FILES[p.stem]
    res = analyze_stems([tmp_path])
    got = {r.id: r.stem_class for r in res.analysed}
    # Unsure features say "other" (class_source "fallback") rather than a confident wrong class.
    assert all(r.class_source in ("features", "fallback") for r in res.analysed)
    right = {truth[k] for k in got if got[k] == truth[k]}
    print(
        f"\nfeature classifier: {len(right)}/{len(truth)} right; "
        + ", ".join(f"{truth[k]}->{got[k]}" for k in sorted(got))
    )
    assert {"kick", "bass", "hihat", "pad"} <= right
    assert len(right) >= 6
    assert check_request(res.request) == []


def test_user_bpm_hints_and_options(stems: list[Path]) -> None:
    res = analyze_stems(
        stems[:5],
        bpm=128,
        target_format="5.1.4",
        max_objects=3,
        style="club",
        section="drop",
        hints={"KICK": "dead centre", "hihat": "wide, above", "nothing": "x"},
    )
    req = res.request
    assert check_request(req) == []
    assert res.tempo.source == "user" and res.tempo.confidence == 1.0
    assert req["global"]["bpm"] == 128
    assert req["global"]["section_bars"] == round(16 * 128 / 240)
    assert (req["target_format"], req["max_objects"], req["style"], req["section"]) == ("5.1.4", 3, "club", "drop")
    s = _by_id(res)
    assert s["kick"]["hint"] == "dead centre" and s["hats"]["hint"] == "wide, above"
    assert "hint" not in s["bass"]
    assert any("'nothing'" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"target_format": "binaurl"}, "binaural"),
        ({"style": "popp"}, "pop"),
        ({"section": "versee"}, "verse"),
        ({"max_objects": 0}, "max_objects"),
        ({"max_objects": 500}, "max_objects"),
        ({"bpm": 1000}, "bpm"),
        ({"bpm": float("nan")}, "bpm"),
    ],
)
def test_bad_options(kwargs: dict, word: str, stems: list[Path]) -> None:
    with pytest.raises(AnalysisError, match=word):
        analyze_stems(stems[:1], **kwargs)


def test_deterministic(stems: list[Path]) -> None:
    a = analyze_stems(stems[:3])
    b = analyze_stems(stems[:3])
    assert a.request == b.request


# ---------------------------------------------------------------- hostile files


def _write_hostile(d: Path) -> dict[str, str]:
    """File name -> a phrase its report must contain (skipped files: their error)."""
    t = np.arange(2 * SR) / SR
    (d / "empty.wav").write_bytes(b"")
    sf.write(d / "one_sample.wav", np.array([0.5]), SR)
    sf.write(d / "nan.wav", np.full(SR, np.nan), SR, subtype="FLOAT")
    sf.write(d / "header_only.wav", np.zeros((0, 1)), SR)
    (d / "notes.wav").write_text("this is not audio\n" * 20)
    sf.write(d / "rate4k.wav", tone(1.0, 300, 0.3, 4000), 4000)
    sf.write(d / "eight_ch.wav", np.stack([tone(2.0, 100 + 50 * k) for k in range(8)], axis=1), SR)
    sf.write(d / "low_rate.wav", tone(2.0, 440, 0.3, 8000), 8000)
    sf.write(d / "a_wav.mp3", tone(), SR, format="WAV")
    sf.write(d / "silent.wav", np.zeros(2 * SR), SR)
    sf.write(d / "clipped.wav", np.clip(2 * np.sin(2 * np.pi * 60 * t), -1, 1), SR)
    sf.write(d / "dc.wav", tone() + 0.1, SR)
    x = tone()
    x[1000:1010] = np.nan
    sf.write(d / "some_nan.wav", x, SR, subtype="FLOAT")
    sf.write(d / "anti_phase.wav", np.stack([tone(), -tone()], axis=1), SR)
    (d / "empty_folder").mkdir()
    return {
        "empty.wav": "empty file",
        "one_sample.wav": "too short",
        "nan.wav": "NaN",
        "header_only.wav": "no audio frames",
        "notes.wav": "text file",
        "rate4k.wav": "too low",
        "eight_ch.wav": "8 channels",
        "low_rate.wav": "resampled 8000 Hz",
        "a_wav.mp3": "content is WAV",
        "silent.wav": "silent",
        "clipped.wav": "clipped",
        "dc.wav": "DC offset",
        "some_nan.wav": "10 non-finite (NaN/inf) samples",
        "anti_phase.wav": "cancel",
        "empty_folder": "no audio files",
        "missing.wav": "no such file",
    }


# some_nan.wav is skipped: one reader for analysis and renderer rejects any NaN (was: zeroed, then
# the renderer refused the stem analysis had planned for).
SKIPPED = {
    "empty.wav",
    "one_sample.wav",
    "nan.wav",
    "header_only.wav",
    "notes.wav",
    "rate4k.wav",
    "empty_folder",
    "missing.wav",
    "some_nan.wav",
}


def test_hostile_files_are_reported_not_crashed_on(tmp_path: Path, stems: list[Path]) -> None:
    expect = _write_hostile(tmp_path)
    paths = [stems[0]] + [tmp_path / n for n in sorted(expect)]
    res = analyze_stems(paths)
    assert check_request(res.request) == []
    reports = {Path(r.path).name: r for r in res.stems}
    assert set(reports) == {stems[0].name, *expect}
    for name, phrase in expect.items():
        rep = reports[name]
        assert rep.ok == (name not in SKIPPED), name
        text = rep.error if not rep.ok else " | ".join(rep.warnings)
        assert phrase in text, (name, text)
        if not rep.ok:
            assert str(tmp_path / name) in rep.error  # the message names the file
            assert "Traceback" not in rep.error
    assert {s["id"] for s in res.request["stems"]} == {reports[n].id for n in reports if reports[n].ok}
    assert reports["silent.wav"].lufs == -70.0
    assert reports["a_wav.mp3"].lufs == pytest.approx(integrated_loudness(tone(), SR), abs=0.01)
    # anti-phase channels: descriptors fall back to one channel instead of analysing silence
    assert reports["anti_phase.wav"].band_energy["mid"] > 0.9
    assert "SKIPPED" in res.summary()


@pytest.mark.parametrize("name", sorted(SKIPPED))
def test_single_bad_file_raises_analysis_error(tmp_path: Path, name: str) -> None:
    _write_hostile(tmp_path)
    with pytest.raises(AnalysisError) as info:
        analyze_stems([tmp_path / name])
    assert isinstance(info.value, ValueError)
    assert str(tmp_path / name) in str(info.value)


def test_no_stems() -> None:
    with pytest.raises(AnalysisError, match="no stems"):
        analyze_stems([])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 3000),
    channels=st.integers(1, 3),
    rate=st.sampled_from([8000, 22050, 44100, 48000, 96000]),
    kind=st.sampled_from(["noise", "zeros", "huge", "nan", "impulse", "dc"]),
    seed=st.integers(0, 2**16),
)
def test_random_audio_never_tracebacks(tmp_path: Path, n: int, channels: int, rate: int, kind: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, channels))
    if kind == "zeros":
        x[:] = 0.0
    elif kind == "huge":
        x *= 1e6
    elif kind == "nan":
        x[rng.random(x.shape) < 0.5] = np.nan
    elif kind == "impulse":
        x[:] = 0.0
        x[n // 2] = 1.0
    elif kind == "dc":
        x = 0.5 + 0.01 * x
    path = tmp_path / f"rand_{seed}_{n}.wav"
    sf.write(path, x, rate, subtype="FLOAT")
    error = ""
    try:
        res = analyze_stems([path])
    except AnalysisError as exc:
        error = str(exc)
    else:
        assert check_request(res.request) == []
    assert not error or str(path) in error  # a rejection names the file


# ---------------------------------------------------------------- names and ids


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("02 Kick In.wav", "kick"),
        ("BD", "kick"),
        ("Kik", "kick"),
        ("kickdrum", "kick"),
        ("Snare Top", "snare"),
        ("SN_btm", "snare"),
        ("HH", "hihat"),
        ("Hi Hat", "hihat"),
        ("hihats_open", "hihat"),
        ("Perc", "percussion"),
        ("Shaker", "percussion"),
        ("Bass DI", "bass"),
        ("Sub", "sub"),
        ("808", "sub"),
        ("Synth Bass", "bass_synth"),
        ("Lead Vox", "lead_vocal"),
        ("LeadVox", "lead_vocal"),
        ("vocal", "lead_vocal"),
        ("Voc_main", "lead_vocal"),
        ("BV 1", "backing_vocal"),
        ("Backing Vocals", "backing_vocal"),
        ("Choir", "choir"),
        ("Vocal FX", "vocal_fx"),
        ("Pad", "pad"),
        ("Keys", "keys"),
        ("Piano", "piano"),
        ("Gtr L", "guitar"),
        ("Acoustic Guitar", "acoustic_guitar"),
        ("Lead Gtr", "lead_guitar"),
        ("Strings", "strings"),
        ("Brass", "brass"),
        ("Synth", "synth"),
        ("Lead Synth", "synth_lead"),
        ("Arp", "arp"),
        ("Pluck", "pluck"),
        ("FX", "fx"),
        ("Riser", "riser"),
        ("Sweep", "riser"),
        ("Amb", "ambience"),
        ("Atmos", "atmosphere"),
        ("Noise", "noise"),
        ("bassoon", "woodwind"),
        ("Vöx", "lead_vocal"),
        ("lead", "lead_vocal"),
    ],
)
def test_class_from_name(name: str, cls: str) -> None:
    got = class_from_name(name)
    assert got is not None and got[0] == cls, (name, got)
    assert cls in STEM_CLASSES and 0.0 < got[1] <= 1.0


@pytest.mark.parametrize("name", ["track1", "Audio 03", "mixdown_final", "x"])
def test_names_without_class(name: str) -> None:
    assert class_from_name(name) is None


def test_vague_names_are_less_sure() -> None:
    assert class_from_name("lead")[1] < class_from_name("Lead Vox")[1]
    assert class_from_name("kick_snare")[1] < class_from_name("kick")[1]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("kick", "kick"),
        ("01 Lead Vox (final)", "01_Lead_Vox_final"),
        ("Vöx", "Vox"),
        ("_hidden", "hidden"),
        ("...", "stem"),
        ("x" * 100, "x" * 64),
        ("a.b-c_d", "a.b-c_d"),
    ],
)
def test_sanitize_id(raw: str, want: str) -> None:
    assert sanitize_id(raw) == want
    assert ID_RE.match(sanitize_id(raw))


def test_duplicate_ids_are_made_unique(tmp_path: Path) -> None:
    sf.write(tmp_path / "kick.wav", tone(), SR)
    (tmp_path / "b").mkdir()
    sf.write(tmp_path / "b" / "kick.flac", tone(), SR, format="FLAC")
    sf.write(tmp_path / "b" / "kick!.wav", tone(), SR)
    (tmp_path / "b" / "notes.txt").write_text("mix notes")
    res = analyze_stems([tmp_path / "kick.wav", tmp_path / "b"])
    ids = [s["id"] for s in res.request["stems"]]
    assert ids == ["kick", "kick_2", "kick_3"]
    assert check_request(res.request) == []
    assert sum("already taken" in w for w in res.warnings) == 2
    assert any("ignored 1 file(s)" in w and "notes.txt" in w for w in res.warnings)


# ---------------------------------------------------------------- tempo unit


def test_estimate_tempo_on_pulse_train() -> None:
    fr = SR / HOP
    n = int(20 * fr)
    for bpm in (75.0, 100.0, 133.0, 174.0):
        env = np.zeros(n)
        env[np.round(np.arange(0, 20, 60 / bpm) * fr).astype(int)] = 1.0
        est = estimate_tempo([env], SR)
        assert est.bpm == pytest.approx(bpm, abs=1.0), (bpm, est)
        assert est.confidence > 0.5
    noise = np.abs(np.random.default_rng(0).standard_normal(n))
    assert estimate_tempo([noise], SR).confidence < 0.2
    empty = estimate_tempo([np.zeros(n)], SR)
    assert (empty.source, empty.confidence, empty.bpm) == ("default", 0.0, 120.0)
    assert estimate_tempo([], SR).source == "default"
    assert math.isfinite(estimate_tempo([env[:50]], SR).bpm)
