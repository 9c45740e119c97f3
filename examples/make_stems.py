"""Synthesise a short, deterministic multi-stem song for demos and tests.

The song: ``bars`` bars of 4/4 in A minor over the progression Am - F - C - G (one chord a bar,
repeated), with eight mono stems whose file names name their class:

============  ============  ==========================================================
file          class         sound
============  ============  ==========================================================
kick.wav      kick          sine with a fast pitch drop (160 -> 48 Hz) and a click, every beat
snare.wav     snare         two damped tones (185/330 Hz) + band-passed noise, beats 2 and 4
hats.wav      hihat         high-passed (7 kHz) noise bursts on 16ths, accented off-beat 8ths
bass.wav      bass          PolyBLEP saw low-passed at 500 Hz, chord roots on 8ths
pad.wav       pad           3 detuned saws per chord tone, 0.8 s attack, low-passed at 1.8 kHz
vox.wav       lead_vocal    glottal source (additive, -6 dB/oct) through 5 soprano formants,
                            vibrato 5.5 Hz, portamento, vowels a/o/e/i/u, breath noise and
                            an "s" before every third note; a sung melody (E4-C5)
arp.wav       arp           plucked additive synth (upper partials decay faster), 16ths
riser.wav     riser         noise swept up from 200 Hz to 10 kHz over the last 2 bars
============  ============  ==========================================================

Only numpy and soundfile: filters are analog prototypes applied in the frequency domain
(:func:`_fft_filter`), so there are no per-sample Python loops. The same seed gives
byte-identical 24-bit WAV files; every file is written atomically (temporary file, then
``os.replace``). Peak levels are fixed per stem and the sum of all stems peaks below -1 dBFS.

Usage::

    python examples/make_stems.py OUT_DIR [--seed 0] [--bars 8] [--bpm 120]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf

__all__ = ["make_stems", "render_stems", "STEM_FILES", "main"]

log = logging.getLogger("gravity.examples")

# File name -> the class it is meant to be (gravity.vocab.STEM_CLASSES).
STEM_FILES: dict[str, str] = {
    "kick": "kick",
    "snare": "snare",
    "hats": "hihat",
    "bass": "bass",
    "pad": "pad",
    "vox": "lead_vocal",
    "arp": "arp",
    "riser": "riser",
}

# Peak level (linear, full scale = 1) each stem is scaled to before writing.
_PEAKS: dict[str, float] = {
    "kick": 0.50,
    "snare": 0.55,
    "hats": 0.22,
    "bass": 0.38,
    "pad": 0.16,
    "vox": 0.34,
    "arp": 0.24,
    "riser": 0.18,
}
_MIX_PEAK_MAX = 0.89  # -1 dBFS: the summed stems never exceed this

# A minor: Am F C G. Pad voicings (MIDI notes, kept around C4-A4 so the pad sits in the mids),
# bass roots (MIDI, octave 1-2) and arp tones (one octave above the pad voicing).
_CHORDS: tuple[tuple[int, int, int], ...] = ((60, 64, 69), (60, 65, 69), (60, 64, 67), (59, 62, 67))
_ROOTS: tuple[int, ...] = (45, 41, 48, 43)
# Melody over 4 bars: (bar, start beat, length in beats, MIDI note, vowel).
_MELODY: tuple[tuple[int, float, float, int, str], ...] = (
    (0, 0.0, 1.0, 64, "a"),
    (0, 1.0, 1.0, 69, "o"),
    (0, 2.0, 0.5, 67, "e"),
    (0, 2.5, 1.5, 64, "a"),
    (1, 1.0, 1.0, 69, "i"),
    (1, 2.0, 1.0, 72, "a"),
    (1, 3.0, 1.0, 69, "o"),
    (2, 0.0, 1.5, 67, "e"),
    (2, 1.5, 0.5, 64, "a"),
    (2, 2.0, 1.0, 67, "u"),
    (2, 3.0, 1.0, 72, "a"),
    (3, 0.0, 1.0, 71, "o"),
    (3, 1.0, 0.5, 69, "a"),
    (3, 1.5, 0.5, 67, "e"),
    (3, 2.0, 2.0, 69, "a"),
)
# Soprano formants per vowel: (centre Hz, -3 dB bandwidth Hz, gain dB) for 5 resonators.
_VOWELS: dict[str, tuple[tuple[float, float, float], ...]] = {
    "a": ((800, 80, 0), (1150, 90, -6), (2900, 120, -32), (3900, 130, -20), (4950, 140, -50)),
    "e": ((350, 60, 0), (2000, 100, -20), (2800, 120, -15), (3600, 150, -40), (4950, 200, -56)),
    "i": ((270, 60, 0), (2140, 90, -12), (2950, 100, -26), (3900, 120, -26), (4950, 120, -44)),
    "o": ((450, 70, 0), (800, 80, -11), (2830, 100, -22), (3800, 130, -22), (4950, 135, -50)),
    "u": ((325, 50, 0), (700, 60, -16), (2700, 170, -35), (3800, 180, -40), (4950, 200, -60)),
}


def _midi_hz(note: float | np.ndarray) -> float | np.ndarray:
    """MIDI note number -> frequency in Hz (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=float) - 69.0) / 12.0)


# ---------------------------------------------------------------- filters (frequency domain)


def _lp2(f: np.ndarray, fc: float) -> np.ndarray:
    """Second-order Butterworth low-pass (analog prototype) at frequencies ``f`` Hz."""
    s = 1j * f / fc
    return 1.0 / (s * s + np.sqrt(2.0) * s + 1.0)


def _hp2(f: np.ndarray, fc: float) -> np.ndarray:
    """Second-order Butterworth high-pass (analog prototype) at frequencies ``f`` Hz."""
    s = 1j * f / fc
    return s * s / (s * s + np.sqrt(2.0) * s + 1.0)


def _resonator(f: np.ndarray, fc: float, bw: float) -> np.ndarray:
    """Two-pole band-pass with unity gain at ``fc`` Hz and -3 dB bandwidth ``bw`` Hz."""
    jbw = 1j * f * bw
    return jbw / (fc * fc - f * f + jbw)


def _fft_filter(
    x: np.ndarray, sample_rate: int, response: Callable[[np.ndarray], np.ndarray], tail_s: float = 0.5
) -> np.ndarray:
    """Filter ``x`` by a frequency response (a function of frequency in Hz).

    The signal is zero-padded by ``tail_s`` seconds (at least) so the filter's ring-out does not
    wrap round onto the start; the output has the input's length.
    """
    n = len(x)
    nfft = 1 << int(np.ceil(np.log2(n + int(tail_s * sample_rate))))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
    return np.fft.irfft(np.fft.rfft(x, nfft) * response(freqs), nfft)[:n]


# ---------------------------------------------------------------- oscillators and envelopes


def _saw(freq_hz: np.ndarray, sample_rate: int, phase0: float = 0.0) -> np.ndarray:
    """Band-limited (PolyBLEP) sawtooth in [-1, 1] following ``freq_hz`` (one value a sample)."""
    dt = np.asarray(freq_hz, dtype=float) / sample_rate
    dt = np.broadcast_to(dt, dt.shape)
    t = (phase0 + np.cumsum(dt)) % 1.0
    y = 2.0 * t - 1.0
    lo = t < dt
    x = t[lo] / dt[lo]
    y[lo] -= x + x - x * x - 1.0
    hi = t > 1.0 - dt
    x = (t[hi] - 1.0) / dt[hi]
    y[hi] -= x * x + x + x + 1.0
    return y


def _box_smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` samples (edges use the available samples)."""
    if width <= 1:
        return x.copy()
    c = np.concatenate(([0.0], np.cumsum(x)))
    n = len(x)
    i = np.arange(n)
    lo = np.clip(i - width // 2, 0, n)
    hi = np.clip(i - width // 2 + width, 0, n)
    return (c[hi] - c[lo]) / (hi - lo)


def _add(track: np.ndarray, start: int, sound: np.ndarray) -> None:
    """Mix ``sound`` into ``track`` from sample ``start``, cutting what runs past the end."""
    if start >= len(track):
        return
    m = min(len(sound), len(track) - start)
    track[start : start + m] += sound[:m]


# ---------------------------------------------------------------- the instruments


class _Song:
    """Timing of the song: bars of 4/4 at ``bpm``, ``sample_rate`` Hz."""

    def __init__(self, bars: int, bpm: float, sample_rate: int) -> None:
        self.bars, self.bpm, self.sr = bars, bpm, sample_rate
        self.beat_s = 60.0 / bpm
        self.n = int(round(bars * 4 * self.beat_s * sample_rate))

    def at(self, bar: int, beat: float) -> int:
        """Sample index of ``beat`` (quarter notes) in ``bar``."""
        return int(round((bar * 4 + beat) * self.beat_s * self.sr))


def _kick(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    tt = np.arange(int(0.45 * sr)) / sr
    f = 48.0 + 112.0 * np.exp(-tt / 0.03)
    body = np.sin(2 * np.pi * np.cumsum(f) / sr) * np.exp(-tt / 0.1)
    click_len = int(0.01 * sr)
    click = np.zeros_like(tt)
    click[:click_len] = rng.standard_normal(click_len) * np.exp(-tt[:click_len] / 0.003)
    click = _fft_filter(click, sr, lambda fr: _resonator(fr, 3000.0, 4000.0), tail_s=0.05)
    hit = body + 0.6 * click
    track = np.zeros(song.n)
    for bar in range(song.bars):
        for beat in range(4):
            _add(track, song.at(bar, beat), hit * (1.0 if beat % 2 == 0 else 0.92))
    return _fft_filter(track, sr, lambda fr: _lp2(fr, 6000.0))


def _snare(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    tt = np.arange(int(0.3 * sr)) / sr
    tone = (np.sin(2 * np.pi * 185 * tt) + 0.5 * np.sin(2 * np.pi * 330 * tt)) * np.exp(-tt / 0.045)
    tones = np.zeros(song.n)
    noise = np.zeros(song.n)
    for bar in range(song.bars):
        for beat in (1, 3):
            start = song.at(bar, beat)
            _add(tones, start, tone)
            _add(noise, start, rng.standard_normal(len(tt)) * np.exp(-tt / 0.07))
    noise = _fft_filter(noise, sr, lambda fr: _hp2(fr, 1200.0) * _lp2(fr, 9000.0))
    return 0.5 * tones + noise


def _hats(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    track = np.zeros(song.n)
    for bar in range(song.bars):
        for step in range(16):
            if step % 4 == 2:  # off-beat 8th: accented, open
                vel, decay = 1.0, 0.09
            elif step % 4 == 0:  # on the beat
                vel, decay = 0.55, 0.03
            else:  # 16ths in between
                vel, decay = 0.35, 0.02
            vel *= 1.0 + 0.1 * (rng.random() - 0.5)
            length = int(6 * decay * sr)
            tt = np.arange(length) / sr
            _add(track, song.at(bar, step / 4), vel * rng.standard_normal(length) * np.exp(-tt / decay))
    return _fft_filter(track, sr, lambda fr: _hp2(fr, 7000.0) ** 2)


def _bass(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    freq = np.full(song.n, _midi_hz(_ROOTS[0]))
    env = np.zeros(song.n)
    note_len = int(0.5 * song.beat_s * sr)  # an 8th
    tt = np.arange(note_len) / sr
    # pluck: 4 ms attack, decay to 55 %, 15 ms release at the end of the 8th
    shape = np.minimum(tt / 0.004, 1.0) * (0.55 + 0.45 * np.exp(-tt / 0.08))
    shape *= np.clip((tt[-1] - tt) / 0.015, 0.0, 1.0)
    for bar in range(song.bars):
        root = _ROOTS[bar % 4]
        for step in range(8):
            start = song.at(bar, step / 2)
            note = root + (12 if step in (3, 7) else 0)
            m = min(note_len, song.n - start)
            freq[start : start + m] = _midi_hz(note)
            env[start : start + m] = shape[:m] * (1.0 if step % 2 == 0 else 0.8)
    y = _saw(freq, sr, rng.random()) * env
    return _fft_filter(y, sr, lambda fr: _lp2(fr, 500.0) * _hp2(fr, 30.0))


def _pad(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    bar_n = song.at(1, 0)
    rel = int(0.6 * sr)
    tt = np.arange(bar_n + rel) / sr
    env = np.minimum(tt / 0.8, 1.0)
    env[bar_n:] *= np.exp(-(tt[bar_n:] - tt[bar_n]) / 0.15)
    track = np.zeros(song.n)
    for bar in range(song.bars):
        voice = np.zeros(len(tt))
        for note in _CHORDS[bar % 4]:
            for cents in (-9.0, 0.0, 8.0):
                f = np.full(len(tt), _midi_hz(note + cents / 100.0))
                voice += _saw(f, sr, rng.random())
        _add(track, song.at(bar, 0), voice * env / 9.0)
    lfo = 1.0 + 0.08 * np.sin(2 * np.pi * 0.25 * np.arange(song.n) / sr)
    return _fft_filter(track * lfo, sr, lambda fr: _lp2(fr, 1800.0) * _hp2(fr, 120.0))


def _vox(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr, n = song.sr, song.n
    semis = np.full(n, np.nan)
    env = np.zeros(n)
    vowel_of = np.full(n, -1)
    vowels = list(_VOWELS)
    onset = np.zeros(n)  # seconds since the note began (vibrato fades in)
    starts: list[int] = []
    for bar in range(song.bars):
        for mbar, beat, length, note, vowel in _MELODY:
            if mbar != bar % 4:
                continue
            start = song.at(bar, beat)
            stop = min(song.at(bar, beat + length) - int(0.03 * sr), n)
            if start >= stop:
                continue
            tt = np.arange(stop - start) / sr
            a = np.minimum(tt / 0.04, 1.0) * np.clip((tt[-1] - tt) / 0.08, 0.0, 1.0)
            semis[start:stop] = note
            env[start:stop] = np.maximum(env[start:stop], a)
            vowel_of[start:stop] = vowels.index(vowel)
            onset[start:stop] = tt
            starts.append(start)
    # hold the last pitch through rests, glide 45 ms between notes (linear in semitones)
    idx = np.where(np.isnan(semis), 0, np.arange(n))
    np.maximum.accumulate(idx, out=idx)
    first = np.flatnonzero(~np.isnan(semis))
    semis = semis[idx] if first.size else np.full(n, 69.0)
    semis[: first[0] if first.size else n] = semis[first[0]] if first.size else 69.0
    semis = _box_smooth(semis, int(0.045 * sr))
    t = np.arange(n) / sr
    vib_depth = 0.35 * np.clip((onset - 0.15) / 0.3, 0.0, 1.0)  # semitones
    drift = _box_smooth(rng.standard_normal(n), int(0.05 * sr)) * 0.6  # slow pitch jitter
    f0 = _midi_hz(semis + vib_depth * np.sin(2 * np.pi * 5.5 * t) + drift * 0.1)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    source = np.zeros(n)
    for k in range(1, int(9000 / f0.min()) + 1):
        source += np.where(k * f0 < 9000.0, k**-1.0, 0.0) * np.sin(k * phase)
    source += 0.02 * rng.standard_normal(n)  # breath
    source *= env
    out = np.zeros(n)
    for v, name in enumerate(vowels):
        weight = _box_smooth((vowel_of == v).astype(float), int(0.03 * sr))
        if not weight.any():
            continue
        formants = _VOWELS[name]

        def response(fr: np.ndarray, formants=formants) -> np.ndarray:
            return sum(10 ** (g / 20) * _resonator(fr, fc, bw) for fc, bw, g in formants)

        out += weight * _fft_filter(source, sr, response)
    # Air (breath noise above 4.5 kHz following the voice) and an "s" before every third note.
    voiced_rms = float(np.sqrt(np.mean(out[env > 0.5] ** 2))) if (env > 0.5).any() else 0.0
    hiss = _fft_filter(rng.standard_normal(n), sr, lambda fr: _hp2(fr, 4500.0))
    hiss /= max(float(np.sqrt(np.mean(hiss**2))), 1e-12)
    out += hiss * env * 0.1 * voiced_rms
    s_len = int(0.07 * sr)
    ess = _fft_filter(rng.standard_normal(s_len), sr, lambda fr: _resonator(fr, 7000.0, 3500.0), tail_s=0.02)
    ess *= np.hanning(s_len) * 0.5 * voiced_rms / max(float(np.sqrt(np.mean(ess**2))), 1e-12)
    for start in starts[::3]:
        _add(out, max(0, start - s_len + int(0.01 * sr)), ess)
    return out


def _arp(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    tt = np.arange(int(0.35 * sr)) / sr
    track = np.zeros(song.n)
    first_bar = 2 if song.bars >= 4 else 0
    for bar in range(first_bar, song.bars):
        chord = _CHORDS[bar % 4]
        tones = (chord[0] + 12, chord[1] + 12, chord[2] + 12, chord[0] + 24)
        for step in range(16):
            f = float(_midi_hz(tones[step % 4]))
            note = np.zeros(len(tt))
            for k in range(1, 13):
                if k * f >= 0.45 * sr:
                    break
                note += np.sin(2 * np.pi * k * f * tt + rng.random()) / k * np.exp(-tt * (9.0 + 4.0 * k))
            vel = 1.0 if step % 4 == 0 else 0.7
            _add(track, song.at(bar, step / 4), vel * note * np.minimum(tt / 0.002, 1.0))
    return _fft_filter(track, sr, lambda fr: _hp2(fr, 200.0))


def _riser(song: _Song, rng: np.random.Generator) -> np.ndarray:
    sr = song.sr
    span = min(2, song.bars)
    start = song.at(song.bars - span, 0)
    m = song.n - start
    tau = np.arange(m) / m  # 0 -> 1 over the riser
    noise = rng.standard_normal(m)
    centres = 200.0 * 2.0 ** (np.arange(19) / 3.0)  # 200 Hz .. 12.8 kHz, third octaves
    sweep = np.log2(200.0) + (np.log2(10000.0) - np.log2(200.0)) * tau**1.5
    y = np.zeros(m)
    for fc in centres:
        band = _fft_filter(noise, sr, lambda fr, fc=fc: _resonator(fr, fc, fc * 0.25), tail_s=0.1)
        y += band * np.exp(-0.5 * ((np.log2(fc) - sweep) / 0.6) ** 2)
    y *= tau**2 * np.clip((m - np.arange(m)) / (0.01 * sr), 0.0, 1.0)
    track = np.zeros(song.n)
    track[start:] = y
    return track


_INSTRUMENTS: dict[str, Callable[[_Song, np.random.Generator], np.ndarray]] = {
    "kick": _kick,
    "snare": _snare,
    "hats": _hats,
    "bass": _bass,
    "pad": _pad,
    "vox": _vox,
    "arp": _arp,
    "riser": _riser,
}


def render_stems(
    *, seed: int = 0, bars: int = 8, bpm: float = 120.0, sample_rate: int = 48000
) -> dict[str, np.ndarray]:
    """Synthesise the stems in memory.

    Parameters
    ----------
    seed : int
        Seed of the random generator (noise, phases, velocities).
    bars : int >= 1
        Song length in bars of 4/4.
    bpm : float, 20..300
        Tempo in beats per minute.
    sample_rate : int >= 8000
        Sample rate in Hz.

    Returns
    -------
    dict of str to np.ndarray [shape=(samples,), float64]
        Stem name (see :data:`STEM_FILES`) -> mono signal in [-1, 1]; ``bars * 4 * 60 / bpm``
        seconds long.
    """
    if int(bars) != bars or bars < 1:
        raise ValueError(f"bars={bars!r} must be a positive integer")
    if not 20.0 <= float(bpm) <= 300.0:
        raise ValueError(f"bpm={bpm!r} must be within 20..300")
    if int(sample_rate) != sample_rate or sample_rate < 8000:
        raise ValueError(f"sample_rate={sample_rate!r} must be an integer >= 8000 Hz")
    song = _Song(int(bars), float(bpm), int(sample_rate))
    stems: dict[str, np.ndarray] = {}
    for k, (name, make) in enumerate(_INSTRUMENTS.items()):
        # One generator per stem, so changing one instrument leaves the others' noise alone.
        rng = np.random.default_rng([int(seed), k])
        y = make(song, rng)
        fade = min(len(y), int(0.005 * song.sr))
        y[len(y) - fade :] *= np.linspace(1.0, 0.0, fade)
        peak = float(np.max(np.abs(y)))
        stems[name] = y * (_PEAKS[name] / peak) if peak > 0 else y
    mix_peak = float(np.max(np.abs(sum(stems.values()))))
    if mix_peak > _MIX_PEAK_MAX:
        stems = {k: v * (_MIX_PEAK_MAX / mix_peak) for k, v in stems.items()}
    return stems


def _write_atomic(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write a 24-bit WAV through a temporary file in the same folder, then rename it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        sf.write(tmp, audio, sample_rate, format="WAV", subtype="PCM_24")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def make_stems(
    out_dir: str | os.PathLike[str], *, seed: int = 0, bars: int = 8, bpm: float = 120.0, sample_rate: int = 48000
) -> list[Path]:
    """Write the example song's stems as 24-bit mono WAV files.

    Parameters
    ----------
    out_dir : path
        Folder to write into (created when missing).
    seed, bars, bpm, sample_rate
        See :func:`render_stems`; ``bpm`` in beats per minute, ``sample_rate`` in Hz.

    Returns
    -------
    list of Path
        The written files, in the order of :data:`STEM_FILES` (``kick.wav`` ... ``riser.wav``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stems = render_stems(seed=seed, bars=bars, bpm=bpm, sample_rate=sample_rate)
    paths = []
    for name, audio in stems.items():
        path = out / f"{name}.wav"
        _write_atomic(path, audio, sample_rate)
        log.info(
            "wrote %s (%s, peak %.1f dBFS)",
            path,
            STEM_FILES[name],
            20 * np.log10(max(float(np.max(np.abs(audio))), 1e-12)),
        )
        paths.append(path)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python examples/make_stems.py OUT_DIR [--seed N] [--bars N] [--bpm X]``."""
    p = argparse.ArgumentParser(description="Write the deterministic example stems (24-bit WAV).")
    p.add_argument("out_dir", type=Path, help="folder to write kick.wav, bass.wav ... into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--bars", type=int, default=8, help="length in bars of 4/4 (default 8)")
    p.add_argument("--bpm", type=float, default=120.0, help="tempo in beats per minute (default 120)")
    p.add_argument("--sample-rate", type=int, default=48000, help="sample rate in Hz (default 48000)")
    args = p.parse_args(argv)
    try:
        paths = make_stems(args.out_dir, seed=args.seed, bars=args.bars, bpm=args.bpm, sample_rate=args.sample_rate)
    except (ValueError, OSError) as exc:
        print(f"make_stems: error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
