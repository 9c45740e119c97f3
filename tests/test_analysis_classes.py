"""Stem classes from audio features (gravity.analysis.features, the feature side of
gravity.analysis.classification): measured feature values on hand-built signals, the decision rule,
the shipped table, synthetic archetypes of each family and deliberately ambiguous signals.

The classifier's accuracy on real recordings is measured by ``benchmarks/stem_classes.py`` (the
audio cannot be committed); these tests pin its behaviour on signals built here.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gravity.analysis import analyze_stems, feature_model
from gravity.analysis.classification import CLASS_SD_FLOOR, FEATURE_CLASSES, classify_features, decide
from gravity.analysis.features import FEATURE_NAMES, StemFeatures, compute_features
from gravity.vocab import STEM_CLASSES, family_of

SR = 48000
ROOT = Path(__file__).resolve().parent.parent


def seconds(s: float) -> np.ndarray:
    return np.arange(int(s * SR)) / SR


def harmonic(f0: np.ndarray, amps: list[float]) -> np.ndarray:
    """Partials k * f0 (f0 in Hz per sample) with amplitudes ``amps``."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amps))


def filtered(x: np.ndarray, lo: float = 0.0, hi: float | None = None) -> np.ndarray:
    """Brick-wall high-pass at ``lo`` Hz and a 4th-order-like low-pass at ``hi`` Hz (FFT)."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(len(x), 1 / SR)
    spec[f < lo] = 0
    if hi is not None:
        spec /= np.sqrt(1 + (f / hi) ** 4)
    return np.fft.irfft(spec, len(x))


def place(total_s: float, times: np.ndarray, sound: np.ndarray) -> np.ndarray:
    y = np.zeros(int(total_s * SR))
    for t in times:
        i = int(t * SR)
        s = sound[: len(y) - i]
        y[i : i + len(s)] += s
    return y


def features(x: np.ndarray) -> StemFeatures:
    return compute_features(0.5 * x / np.max(np.abs(x)))[0]


def midi_hz(m: float) -> float:
    return 440.0 * 2 ** ((m - 69) / 12)


# ------------------------------------------------------------------ features: known values


def test_steady_tone_pitch_and_shape() -> None:
    f = features(harmonic(np.full(2 * SR, 220.0), [1, 0.5, 0.3]))
    assert f.pitch_hz == pytest.approx(220.0, rel=0.005)
    assert f.voiced == pytest.approx(1.0, abs=0.02)
    assert f.wobble < 0.01 and f.pitch_range < 0.01 and f.note_rate == 0.0
    assert f.attack_rate == 0.0 and f.decay == 0.0  # no steep attack after the first block
    assert f.flatness < 0.01 and f.sibilance == 0.0
    assert f.level_spread < 0.05


@pytest.mark.parametrize("hz", [60.0, 110.0, 440.0, 900.0])
def test_pitch_is_not_an_octave_off(hz: float) -> None:
    # Strong second and third partials: the autocorrelation peaks at every multiple of the period.
    f = features(harmonic(np.full(2 * SR, hz), [1, 0.9, 0.8, 0.5]))
    assert f.pitch_hz == pytest.approx(hz, rel=0.01)


def test_vibrato_is_wobble() -> None:
    # +-0.5 semitone at 5.5 Hz, pitch frames 42.7 ms apart: the median step is
    # 2 * 0.5 * sin(pi * 5.5 * 0.0427) * median|cos| = 0.475 semitone.
    t = seconds(3)
    f0 = 300.0 * 2 ** (0.5 * np.sin(2 * np.pi * 5.5 * t) / 12)
    f = features(harmonic(f0, [1, 0.3]))
    assert f.wobble == pytest.approx(0.475, abs=0.05)
    assert f.pitch_hz == pytest.approx(300.0, rel=0.02)
    assert f.pitch_range == pytest.approx(2 * 0.5 * 0.95 / 12, abs=0.02)  # 10th-90th percentile, octaves


def test_white_noise() -> None:
    f = features(np.random.default_rng(1).standard_normal(3 * SR))
    # A periodogram's flatness is exp(E log chi2_2 / 2) = exp(-Euler gamma) = 0.561 for white noise.
    assert f.flatness == pytest.approx(math.exp(-0.5772), abs=0.02)
    assert f.voiced < 0.05 and f.pitch_hz == 0.0
    assert f.sibilance > 0.95  # flat and bright in every frame
    assert f.harmonicity < 0.3


def test_decaying_hits_decay_and_attack_rate() -> None:
    # 60 dB/s decay (amplitude tau = 8.686 / 60 s): 12 dB in the 200 ms after each peak -> 0.3.
    hit = harmonic(np.full(SR, 200.0), [1, 0.5]) * np.exp(-seconds(1) * 60 / 8.686)
    f = features(place(8, np.arange(0.0, 8.0, 0.5), hit))
    assert f.decay == pytest.approx(12 / 40, abs=0.04)
    assert f.attack_rate == pytest.approx(2.0, rel=0.1)  # 16 hits (the first one is no rise) over 8 s


def test_sustained_notes_do_not_decay() -> None:
    notes = np.concatenate([np.full(SR // 2, midi_hz(m)) for m in [60, 64, 67, 72] * 2])
    gate = np.tile(np.r_[np.ones(SR // 2 - 480), np.zeros(480)], 8)  # 10 ms gaps: steep attacks
    f = features(harmonic(notes, [1, 0.5, 0.3]) * gate)
    assert f.decay < 0.02  # the level holds after every attack (the 10 ms gap comes 490 ms later)
    assert f.attack_rate == pytest.approx(7 / 4, rel=0.1)
    assert f.note_rate == pytest.approx(8 / 4, abs=0.6)  # a change every 0.5 s of voiced sound


def test_timbre_change_and_mfcc_tilt() -> None:
    t = seconds(4)
    steady = features(harmonic(np.full(len(t), 220.0), [1, 0.5, 0.3]))
    vowels = harmonic(np.full(len(t), 220.0), [1, 0.5, 0.3]) * (np.sin(2 * np.pi * 2 * t) > 0)
    vowels += 0.3 * filtered(np.random.default_rng(2).standard_normal(len(t)), 4000) * (np.sin(2 * np.pi * 2 * t) <= 0)
    moving = features(vowels)
    assert steady.timbre_change < 0.05 < moving.timbre_change
    dark = features(filtered(np.random.default_rng(3).standard_normal(2 * SR), 0, 300))
    bright = features(filtered(np.random.default_rng(3).standard_normal(2 * SR), 3000))
    assert dark.mfcc[0] > bright.mfcc[0]  # MFCC 1 is the spectral tilt: positive when the lows dominate


@pytest.mark.parametrize(
    "x",
    [np.zeros(4800), np.zeros(10), np.r_[1.0, np.zeros(47999)], np.full(4800, 0.5), np.ones(100)],
    ids=["silence", "10 samples", "impulse", "dc", "short dc"],
)
def test_degenerate_signals_give_finite_features(x: np.ndarray) -> None:
    f, onset = compute_features(x)
    v = f.vector()
    assert v.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(v)) and np.all(np.isfinite(onset))
    cls, conf, scores = classify_features(f)
    assert cls == "other" or conf >= 0.5
    assert math.isfinite(conf) and sum(scores.values()) == pytest.approx(1.0)


# ------------------------------------------------------------------ the decision rule and the table


@pytest.mark.parametrize(
    ("p", "duration", "typicality", "want"),
    [
        (0.75, 4.0, 0.0, ("a", 0.75)),
        (0.9, 4.0, 0.0, ("a", 0.8)),  # capped: features alone never say more than 0.8
        (0.75, 1.0, 0.0, ("other", 0.375)),  # 1 s of audio: half as sure
        (0.6, 2.0, 0.0, ("a", 0.6)),
        (0.9, 4.0, 7.0, ("a", 0.8)),  # typical enough: unchanged
        (0.9, 4.0, 16.0, ("other", 0.45)),  # twice as far from its class as the limit: 0.9 * 8 / 16
        (0.45, 4.0, 0.0, ("other", 0.45)),
    ],
)
def test_decide_known_values(p: float, duration: float, typicality: float, want: tuple[str, float]) -> None:
    logits = np.log([p, (1 - p) / 2, (1 - p) / 2]) + 7.0  # any offset: a softmax
    assert decide(logits, ["a", "b", "c"], duration, typicality) == want


def test_shipped_table_matches_the_features() -> None:
    m = feature_model
    n = len(FEATURE_NAMES)
    assert tuple(m.FEATURES) == FEATURE_NAMES
    assert FEATURE_CLASSES == m.CLASSES and len(set(m.CLASSES)) == len(m.CLASSES)
    assert set(m.CLASSES) <= set(STEM_CLASSES) and "other" not in m.CLASSES
    assert len(m.MEAN) == len(m.SCALE) == n and min(m.SCALE) > 0
    assert len(m.BIAS) == len(m.WEIGHTS) == len(m.CLASS_MEAN) == len(m.CLASS_SD) == len(m.CLASSES)
    for rows in (m.WEIGHTS, m.CLASS_MEAN, m.CLASS_SD):
        assert all(len(r) == n and all(math.isfinite(v) for v in r) for r in rows)
    assert min(min(r) for r in m.CLASS_SD) >= CLASS_SD_FLOOR - 1e-9
    assert 0.1 < m.TEMPERATURE < 10
    # The classes that matter for placement are there (issue 18).
    assert {"piano", "guitar", "brass", "woodwind", "strings", "tom", "kick", "bass", "lead_vocal"} <= set(m.CLASSES)


# ------------------------------------------------------------------ archetypes of each family

RNG = np.random.default_rng(0)
NOISE = RNG.standard_normal(8 * SR)


def _kick() -> np.ndarray:
    t = seconds(0.4)
    body = np.sin(2 * np.pi * np.cumsum(50 + 110 * np.exp(-t / 0.03)) / SR) * np.exp(-t / 0.12)
    return place(8, np.arange(0, 8, 0.5), body)


def _hihat() -> np.ndarray:
    burst = filtered(NOISE[: int(0.05 * SR)], 7000) * np.exp(-seconds(0.05) / 0.015)
    return place(8, np.arange(0, 8, 0.25), burst)


def _snare() -> np.ndarray:
    t = seconds(0.4)
    body = (0.6 * filtered(NOISE[: len(t)], 1000, 6000) + 0.5 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t / 0.07)
    return place(8, np.arange(0.5, 8, 1.0), body)


def _toms() -> np.ndarray:
    t = seconds(0.4)
    toms = [
        np.sin(2 * np.pi * np.cumsum(f * (1 + 0.3 * np.exp(-t / 0.05))) / SR) * np.exp(-t / 0.2) for f in (160, 120, 90)
    ]
    y = np.zeros(8 * SR)
    for bar in range(4):
        for j, h in enumerate((1.0, 1.25, 1.5, 1.75)):
            y += place(8, [bar * 2 + h], toms[j % 3])
    return y


def _plucked_bass() -> np.ndarray:
    y = np.zeros(8 * SR)
    t = seconds(0.5)
    for i, m in enumerate([28, 28, 31, 33, 28, 28, 35, 33] * 4):
        note = harmonic(np.full(len(t), midi_hz(m)), [1 / k**1.2 for k in range(1, 20)]) * np.exp(-t / 0.35)
        j = int(i * 0.25 * SR)
        y[j : j + len(t)] = note[: len(y) - j]  # each note cuts the previous one (a bassist's mute)
    return filtered(y, 0, 1500)


def _synth_bass() -> np.ndarray:
    f0 = np.concatenate([np.full(SR // 4, midi_hz(m)) for m in [28, 28, 35, 35, 33, 33, 26, 26] * 4])
    gate = np.tile(np.r_[np.ones(int(0.22 * SR)), np.zeros(SR // 4 - int(0.22 * SR))], 32)
    return filtered(harmonic(f0, [1 / k for k in range(1, 30)]) * gate, 0, 400)


def _piano() -> np.ndarray:
    y = np.zeros(8 * SR)
    t = seconds(1.5)
    for i, m in enumerate([48, 52, 55, 60, 64, 67, 72, 67, 64, 60, 55, 52, 48, 55, 60, 64]):
        f = midi_hz(m)
        tone = sum(
            0.7**k
            * np.sin(2 * np.pi * f * (k + 1) * np.sqrt(1 + 0.0004 * (k + 1) ** 2) * t)
            * np.exp(-t * (1.5 + 0.8 * k))
            for k in range(12)
        )
        y += place(8, [i * 0.5], tone)
    return y


MELODY = [55, 57, 59, 60, 62, 60, 59, 57]


def _strings() -> np.ndarray:
    t = seconds(8)
    f0 = np.concatenate([np.full(SR, midi_hz(m)) for m in MELODY]) * 2 ** (0.25 * np.sin(2 * np.pi * 5.5 * t) / 12)
    return filtered(harmonic(f0, [1 / k for k in range(1, 25)]), 0, 3000) * np.minimum(1, t % 1 / 0.15)


def _brass() -> np.ndarray:
    t = seconds(8)
    f0 = np.concatenate([np.full(SR, midi_hz(m - 12)) for m in MELODY])
    return harmonic(f0, [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.35, 0.3, 0.25, 0.2, 0.15]) * np.minimum(1, t % 1 / 0.05)


def _clarinet() -> np.ndarray:
    t = seconds(8)
    f0 = np.concatenate([np.full(SR, midi_hz(m)) for m in MELODY])
    tone = harmonic(f0, [1, 0.02, 0.5, 0.02, 0.3, 0.02, 0.2, 0.02, 0.1]) * np.minimum(1, t % 1 / 0.06)
    return tone + 0.01 * filtered(NOISE, 0, 4000)


def _pad() -> np.ndarray:
    t = seconds(8)
    saws = sum(
        harmonic(np.full(len(t), f * d), [1 / k for k in range(1, 20)])
        for f in (220, 277.2, 329.6)
        for d in (0.995, 1, 1.005)
    )
    return filtered(saws, 0, 1500) * np.minimum(1, t / 1.5)


def _ambience() -> np.ndarray:
    return filtered(NOISE, 0, 800) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.2 * seconds(8)))


# Measured with the shipped table: the archetypes the features place in their class ...
EXACT = {"kick": (_kick, "kick"), "hihat": (_hihat, "hihat"), "plucked bass": (_plucked_bass, "bass"),
         "ambience": (_ambience, "ambience")}  # fmt: skip
# ... and those they only narrow to a family, or are unsure of (synthetic sounds are far from the
# recordings the table was fitted on; the answer must then be the family's or "other" below 0.5).
LOOSE = {
    "snare": (_snare, "snare"),
    "toms": (_toms, "tom"),
    "synth bass": (_synth_bass, "bass"),
    "piano": (_piano, "piano"),
    "strings": (_strings, "strings"),
    "brass": (_brass, "brass"),
    "clarinet": (_clarinet, "woodwind"),
    "pad": (_pad, "pad"),
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_archetype_gets_its_class(name: str) -> None:
    make, want = EXACT[name]
    cls, conf, scores = classify_features(features(make()))
    assert (cls, max(scores, key=scores.__getitem__)) == (want, want)
    assert 0.5 <= conf <= 0.8


@pytest.mark.parametrize("name", sorted(LOOSE))
def test_archetype_is_never_a_wrong_family(name: str) -> None:
    make, want = LOOSE[name]
    cls, conf, _ = classify_features(features(make()))
    assert cls == want or family_of(cls) == family_of(want) or (cls == "other" and conf < 0.5), (cls, conf)


# ------------------------------------------------------------------ ambiguous signals

AMBIGUOUS = {
    "white noise": lambda: NOISE[: 4 * SR],
    "1 kHz sine": lambda: np.sin(2 * np.pi * 1000 * seconds(4)),
    "chirp 100 Hz-8 kHz": lambda: np.sin(2 * np.pi * np.cumsum(np.geomspace(100, 8000, 4 * SR)) / SR),
    "click train": lambda: place(4, np.arange(0, 4, 0.1), np.ones(48)),
    "AM noise": lambda: NOISE[: 4 * SR] * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * seconds(4))),
    "0.3 s kick": lambda: _kick()[: int(0.3 * SR)],
    "beating sines": lambda: np.sin(2 * np.pi * 440 * seconds(4)) + np.sin(2 * np.pi * 466 * seconds(4)),
    "kick + strings": lambda: _kick() + _strings(),
    "brown noise": lambda: filtered(np.cumsum(NOISE[: 4 * SR]), 20),
    "square wave": lambda: np.sign(np.sin(2 * np.pi * 440 * seconds(4))),
}
# Measured: the noises, tones and clicks are "other"; the glide ("lead_vocal" 0.60), the kick over
# strings ("guitar" 0.79, the strings' family), the brown noise ("bass" 0.61) and the square wave
# ("woodwind" 0.51, a clarinet's odd partials) get a class, but never more than 0.8.
SURELY_OTHER = {"white noise", "1 kHz sine", "click train", "AM noise", "0.3 s kick", "beating sines"}


@pytest.mark.parametrize("name", sorted(AMBIGUOUS))
def test_ambiguous_signals_are_never_confident(name: str) -> None:
    cls, conf, scores = classify_features(features(AMBIGUOUS[name]()))
    assert conf <= 0.8
    if name in SURELY_OTHER:
        assert cls == "other" and conf < 0.5, (cls, conf)
    else:
        assert cls == "other" or conf >= 0.5


# ------------------------------------------------------------------ through analyze_stems and the benchmark


def test_unsure_stem_is_other_in_the_request(tmp_path: Path) -> None:
    sf.write(tmp_path / "track1.wav", 0.3 * NOISE[: 3 * SR], SR, subtype="PCM_24")
    rep = analyze_stems([tmp_path], bpm=120).stems[0]
    assert rep.feature_class == "other" and rep.feature_confidence < 0.5
    assert (rep.stem_class, rep.class_source) == ("other", "fallback")


def test_benchmark_skips_without_its_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("stem_classes_bench", ROOT / "benchmarks" / "stem_classes.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["stem_classes_bench"] = mod
    spec.loader.exec_module(mod)
    assert mod.main(["--dir", str(tmp_path / "absent")]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "stem_classes_manifest.json" in out
