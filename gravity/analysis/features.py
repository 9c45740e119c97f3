"""Per-stem features of a mono signal: spectrum shape, envelope, attacks, pitch and timbre.

Signals are mono, full scale = 1, DC removed, at :data:`ANALYSIS_RATE` Hz (48 kHz); frequencies
in Hz, durations in seconds, the rest 0..1 unless said otherwise. :func:`compute_features` also
returns the onset envelope the tempo estimate uses (:mod:`gravity.analysis.tempo`). How each
feature is measured is described on :class:`StemFeatures`; the ``transient`` recipe in
:mod:`gravity.analysis.stems`.

Everything is measured in one pass over Hann-windowed frames of 2048 samples (hop 512), in
chunks, so memory grows only by a few numbers per frame (a 10-minute stem keeps about 56,000
frames of 16 floats). The features are the usual ones of instrument recognition (Peeters 2004,
"A large set of audio features for sound description"; Eronen & Klapuri 2000): spectral shape
(band energies, centroid, roll-off, flatness, MFCC means), envelope (crest, attack count,
decay after attacks, coverage) and pitch (periodicity, pitch height and range, and how much
the pitch moves within a note, which separates a voice's vibrato and glides from a piano).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from gravity.analysis.tempo import HOP, N_FFT, band_powers, onset_envelope

__all__ = ["StemFeatures", "compute_features", "ANALYSIS_RATE", "BAND_EDGES_HZ", "FEATURE_NAMES", "N_MFCC"]

log = logging.getLogger(__name__)

ANALYSIS_RATE = 48000  # Hz: every stem is resampled to this for the features
BAND_EDGES_HZ = (250.0, 4000.0)  # Hz: low < 250 <= mid < 4000 <= high
N_MFCC = 12  # MFCCs 1..12 (0, the level, is left out)

# Names of StemFeatures.vector(), in order: what the classifier's table is written against.
FEATURE_NAMES: tuple[str, ...] = (
    "low",
    "mid",
    "high",
    "log_centroid",
    "log_rolloff",
    "flatness",
    "transient",
    "harmonicity",
    "voiced",
    "log_pitch",
    "pitch_range",
    "wobble",
    "attack_rate",
    "decay",
    "coverage",
    "rise",
    "level_spread",
    "timbre_change",
    "sibilance",
    "note_rate",
    *(f"mfcc{i}" for i in range(1, N_MFCC + 1)),
)


def _log_unit(hz: float, lo: float = 50.0, hi: float = 10000.0) -> float:
    """A frequency in Hz on a log scale: 0 at ``lo``, 1 at ``hi`` (clipped at -0.2 and 1.2)."""
    return float(np.clip((math.log(max(hz, 1.0)) - math.log(lo)) / (math.log(hi) - math.log(lo)), -0.2, 1.2))


@dataclass(frozen=True)
class StemFeatures:
    """What the analysis measured on a stem's mono 48 kHz signal.

    Attributes
    ----------
    duration_s : float
        Length in seconds.
    band : tuple of float
        (low, mid, high) energy fractions, edges :data:`BAND_EDGES_HZ`; sum 1.
    centroid_hz : float
        Spectral centroid of the long-term spectrum in Hz.
    transient : float
        0..1, see ``transient`` in :mod:`gravity.analysis.stems`.
    harmonicity : float
        0..1: energy-weighted mean, over every 4th STFT frame, of the highest normalised
        autocorrelation at a lag of 1-20 ms (a 50-1000 Hz period), corrected for the window
        (Boersma 1993): about 1 for a periodic tone, near 0 for noise.
    coverage : float
        0..1: fraction of 10 ms blocks within 40 dB of the stem's loud level (its 99th
        percentile block) and above -80 dBFS.
    rise : float
        0..1: how much the stem sweeps up: the mean of the correlations with time of the level
        (dB) and of the spectral centroid (octaves) over its active blocks, clipped at 0.
    rolloff_hz : float
        Frequency in Hz below which 85 % of the long-term spectrum's energy lies.
    flatness : float
        0..1: mean over active frames (within 40 dB of the loudest) of the spectral flatness
        (geometric over arithmetic mean of the power spectrum, 100 Hz - 12 kHz): near 1 for
        white noise, near 0 for a tone.
    voiced : float
        0..1: fraction of the active pitch frames (every 4th frame) whose autocorrelation peak
        reaches 0.6 (periodic enough to carry a pitch).
    pitch_hz : float
        Median pitch of the voiced frames in Hz (50-1000 Hz; 0 when none is voiced), from the
        shortest lag whose autocorrelation is within 10 % of the frame's highest (so not an
        octave below), refined by a parabola.
    pitch_range : float
        Spread of the voiced frames' pitch in octaves (90th minus 10th percentile).
    wobble : float
        0..1: median pitch change between consecutive voiced pitch frames (42.7 ms apart) that
        stay within a semitone (the same note), in hundredths of a semitone: a voice's or a
        violin's vibrato and glides score 0.2-0.5, a piano or a synth near 0.
    attack_rate : float
        Steep attacks (a rise of 6 dB or more per 10 ms that lands near the next 50 ms' peak,
        see ``transient``; attacks closer than 50 ms count once) per second, from the first to the
        last sounding block.
    decay : float
        0..1: median level drop in the 200 ms after each steep attack's peak, over 40 dB: a
        plucked, struck or hit sound falls (0.3-1), a bowed, blown or sung note holds (0).
    mfcc : tuple of float
        Mean over active frames of the mel-frequency cepstral coefficients 1..12 (40 mel bands
        40 Hz - 16 kHz, log10 power floored 60 dB under the frame's strongest band, orthonormal
        DCT-II): the spectral envelope's shape.
    level_spread : float
        Standard deviation of the sounding 10 ms blocks' level in dB, over 20 dB: a steady pad
        about 0.1, drums 0.5 or more.
    timbre_change : float
        Mean over MFCC 1..12 of their standard deviation over active frames (log10 units): how
        much the spectral envelope moves (a voice's vowels and consonants move it most).
    sibilance : float
        0..1: fraction of active frames that are noise-like (flatness above 0.3) and bright
        (centroid above 4 kHz): consonants, breaths, cymbals.
    note_rate : float
        Pitch changes of more than a semitone between consecutive voiced pitch frames, per
        second of voiced sound: how busy a melodic line is.
    """

    duration_s: float
    band: tuple[float, float, float]
    centroid_hz: float
    transient: float
    harmonicity: float
    coverage: float
    rise: float
    rolloff_hz: float = 0.0
    flatness: float = 0.0
    voiced: float = 0.0
    pitch_hz: float = 0.0
    pitch_range: float = 0.0
    wobble: float = 0.0
    attack_rate: float = 0.0
    decay: float = 0.0
    mfcc: tuple[float, ...] = field(default=(0.0,) * N_MFCC)
    level_spread: float = 0.0
    timbre_change: float = 0.0
    sibilance: float = 0.0
    note_rate: float = 0.0

    def vector(self) -> np.ndarray:
        """Feature vector for :func:`gravity.analysis.classification.classify_features`, in the order
        of :data:`FEATURE_NAMES`: frequencies on a log scale (0 = 50 Hz, 1 = 10 kHz; the pitch
        0 = 50 Hz, 1 = 1 kHz), the attack and note rates as ``log(1 + rate) / log(21)``, the rest as
        measured.
        """
        return np.array(
            [
                *self.band,
                _log_unit(self.centroid_hz),
                _log_unit(self.rolloff_hz),
                self.flatness,
                self.transient,
                self.harmonicity,
                self.voiced,
                _log_unit(self.pitch_hz, 50.0, 1000.0) if self.pitch_hz > 0 else 0.0,
                min(self.pitch_range, 3.0),
                self.wobble,
                math.log1p(min(self.attack_rate, 50.0)) / math.log(21.0),
                self.decay,
                self.coverage,
                self.rise,
                min(self.level_spread, 2.0),
                self.timbre_change,
                self.sibilance,
                math.log1p(min(self.note_rate, 50.0)) / math.log(21.0),
                *self.mfcc,
            ]
        )


_WINDOW = np.hanning(N_FFT + 2)[1:-1]  # symmetric Hann without its zero end points
_NFFT_PAD = 2 * N_FFT  # zero-padded FFT: linear (not circular) autocorrelation per frame
_WIN_AC = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, _NFFT_PAD)) ** 2, _NFFT_PAD)[:N_FFT]
_WIN_AC = _WIN_AC / _WIN_AC[0]
_HARM_STRIDE = 4  # harmonicity and pitch are measured on every 4th STFT frame
_VOICED_AC = 0.6  # autocorrelation peak from which a frame carries a pitch
_OCTAVE_GUARD = 0.9  # the shortest lag within 10 % of the best is the period (not a multiple)
_N_MEL = 40
_MEL_RANGE_HZ = (40.0, 16000.0)
# Mel band power floor, 60 dB under the frame's strongest band (as a spectrogram's top_db): the
# bands with next to nothing in them (a pure tone's empty bands) would otherwise swing the MFCCs
# with the window's leakage and rounding noise.
_MEL_FLOOR_REL = 1e-6
_FLAT_RANGE_HZ = (100.0, 12000.0)
_ROLLOFF = 0.85
_DECAY_S, _DECAY_DB = 0.2, 40.0


def _mel_matrix(sample_rate: int) -> np.ndarray:
    """(N_FFT // 2 + 1, 40) triangular mel filters (HTK mel scale) on the FFT bins."""
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    lo, hi = _MEL_RANGE_HZ
    hi = min(hi, sample_rate / 2.0)
    mel = np.linspace(2595.0 * np.log10(1 + lo / 700.0), 2595.0 * np.log10(1 + hi / 700.0), _N_MEL + 2)
    edges = 700.0 * (10 ** (mel / 2595.0) - 1.0)
    m = np.zeros((len(freqs), _N_MEL))
    for k in range(_N_MEL):
        a, b, c = edges[k], edges[k + 1], edges[k + 2]
        m[:, k] = np.clip(np.minimum((freqs - a) / (b - a), (c - freqs) / (c - b)), 0.0, None)
    return m


def _dct_matrix() -> np.ndarray:
    """(40, 12) orthonormal DCT-II rows 1..12: log mel energies -> MFCC 1..12."""
    n = np.arange(_N_MEL)
    k = np.arange(1, N_MFCC + 1)
    return np.sqrt(2.0 / _N_MEL) * np.cos(np.pi / _N_MEL * (n[:, None] + 0.5) * k[None, :])


def _frames(x: np.ndarray, chunk: int = 512) -> Iterable[np.ndarray]:
    """Hann-windowed frames of N_FFT samples every HOP samples (centred), in chunks."""
    xp = np.concatenate([np.zeros(N_FFT // 2), x, np.zeros(N_FFT // 2)])
    n_frames = 1 + max(0, (len(xp) - N_FFT) // HOP)
    view = np.lib.stride_tricks.sliding_window_view(xp, N_FFT)[::HOP][:n_frames]
    for i in range(0, n_frames, chunk):
        yield view[i : i + chunk] * _WINDOW


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _period_lags(norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the period as a fractional index into ``norm``'s lags and its peak value.

    The period is the highest point of the first run of lags within 10 % of the frame's highest
    autocorrelation: a periodic sound peaks at every multiple of its period, and the first of
    them is the period (an octave error would pick a later one).
    """
    n = norm.shape[1]
    best = norm.max(axis=1)
    good = norm >= _OCTAVE_GUARD * best[:, None]
    first = good.argmax(axis=1)
    idx = np.arange(n)[None, :]
    after = (~good) & (idx > first[:, None])
    end = np.where(after.any(axis=1), after.argmax(axis=1), n)
    run = (idx >= first[:, None]) & (idx < end[:, None])
    j = np.where(run, norm, -np.inf).argmax(axis=1)
    rows = np.arange(len(j))
    a = norm[rows, np.clip(j - 1, 0, n - 1)]
    b = norm[rows, j]
    c = norm[rows, np.clip(j + 1, 0, n - 1)]
    den = a - 2.0 * b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.where((j > 0) & (j < n - 1) & (den < 0), 0.5 * (a - c) / den, 0.0)
    return j + np.clip(delta, -0.5, 0.5), b


def compute_features(x: np.ndarray, sample_rate: int = ANALYSIS_RATE) -> tuple[StemFeatures, np.ndarray]:
    """Measure one mono signal.

    Parameters
    ----------
    x : np.ndarray [shape=(samples,)]
        Mono signal, full scale = 1, DC removed, at ``sample_rate``.
    sample_rate : int
        Hz (:func:`gravity.analysis.stems.analyze_stems` always passes :data:`ANALYSIS_RATE`; the
        classifier's table assumes it).

    Returns
    -------
    features : StemFeatures
    onset_env : np.ndarray [shape=(frames,)]
        Onset envelope at ``sample_rate / HOP`` frames per second (for the tempo).
    """
    x = np.asarray(x, dtype=np.float64)
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    band_of = np.searchsorted(np.array(BAND_EDGES_HZ), freqs, side="right")  # 0 low, 1 mid, 2 high
    band_masks = np.stack([band_of == b for b in range(3)], axis=1).astype(float)
    log_f = np.log2(np.maximum(freqs, 1.0))
    mel = _mel_matrix(sample_rate)
    dct = _dct_matrix()
    flat_bins = (freqs >= _FLAT_RANGE_HZ[0]) & (freqs < _FLAT_RANGE_HZ[1])
    spec_sum = np.zeros(len(freqs))
    lag_lo, lag_hi = max(1, int(0.001 * sample_rate)), min(int(0.020 * sample_rate), N_FFT - 1)  # 1-20 ms
    onset_bands, frame_e, frame_cent, frame_flat, frame_mfcc = [], [], [], [], []
    harm_e, harm, harm_lag = [], [], []
    for fr in _frames(x):
        spec = np.fft.rfft(fr, N_FFT)
        p = spec.real**2 + spec.imag**2
        spec_sum += p.sum(axis=0)
        onset_bands.append(band_powers(p, sample_rate))
        e = p.sum(axis=1)
        frame_e.append(e)
        pf = p[:, flat_bins] + 1e-20
        frame_flat.append(np.exp(np.mean(np.log(pf), axis=1)) / np.mean(pf, axis=1))
        me = p @ mel
        me = np.maximum(me, np.maximum(_MEL_FLOOR_REL * me.max(axis=1, keepdims=True), 1e-12))
        frame_mfcc.append((np.log10(me) @ dct).astype(np.float32))
        with np.errstate(invalid="ignore", divide="ignore"):
            frame_cent.append(np.where(e > 0, (p @ log_f) / e, 0.0))
            # Harmonicity and pitch on every 4th frame (they are long-term averages): zero-padded
            # FFT so the autocorrelation is linear, not circular.
            sub = np.fft.rfft(fr[::_HARM_STRIDE], _NFFT_PAD)
            ps = sub.real**2 + sub.imag**2
            ac = np.fft.irfft(ps, _NFFT_PAD)[:, : lag_hi + 1]
            norm = np.nan_to_num(ac[:, lag_lo : lag_hi + 1] / ac[:, :1] / _WIN_AC[lag_lo : lag_hi + 1])
        lag, _ = _period_lags(norm)
        harm.append(np.clip(norm.max(axis=1), 0.0, 1.0))
        harm_lag.append(lag_lo + lag)
        harm_e.append(e[::_HARM_STRIDE])
    e = np.concatenate(frame_e)
    onset = onset_envelope(np.concatenate(onset_bands), sample_rate)
    total = float(spec_sum.sum())
    band = tuple(float(v) for v in (spec_sum @ band_masks) / total) if total > 0 else (0.0, 0.0, 0.0)
    centroid = float(spec_sum @ freqs / total) if total > 0 else 0.0
    rolloff = float(freqs[min(int(np.searchsorted(np.cumsum(spec_sum), _ROLLOFF * total)), len(freqs) - 1)])
    he = np.concatenate(harm_e)
    hv = np.concatenate(harm)
    harmonicity = float(np.sum(hv * he) / he.sum()) if he.sum() > 0 else 0.0

    # 10 ms energy blocks: transient, coverage, rise, attacks and decay.
    blk = int(0.01 * sample_rate)
    nb = max(1, len(x) // blk)
    xb = np.zeros(nb * blk)
    xb[: min(len(x), nb * blk)] = x[: nb * blk]
    eb = np.mean(xb.reshape(nb, blk) ** 2, axis=1)
    c = np.concatenate(([0.0], np.cumsum(eb)))
    i = np.arange(nb)
    lo, hi = np.clip(i - 15, 0, nb), np.clip(i + 16, 0, nb)
    local = (c[hi] - c[lo]) / (hi - lo)
    level = 10.0 * np.log10(eb + 1e-20)  # dB re full scale, floored at -200 dB
    loud = float(np.percentile(level, 99))
    active = (level > loud - 40.0) & (level > -80.0)
    attack_rate = decay = 0.0
    if eb.sum() > 0:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(local > 0, eb / local, 0.0)
        crest = float(np.sum(eb * r) / eb.sum())
        crest_part = float(np.clip(10.0 * math.log10(max(crest, 1e-12)) / 6.0, 0.0, 1.0))
        floored = np.maximum(level, loud - 60.0)
        rises = np.where(active[1:], np.maximum(np.diff(floored), 0.0), 0.0)
        # The peak of the next 50 ms (this block and 4 more) after each rise.
        ahead = np.lib.stride_tricks.sliding_window_view(np.concatenate([floored, np.full(4, -np.inf)]), 5).max(axis=1)[
            1:
        ]
        steep = (rises >= 6.0) & (floored[1:] >= ahead - 6.0)
        steep_part = float(rises[steep].sum() / rises.sum()) if rises.sum() > 0 else 0.0
        transient = float(np.clip(crest_part + (1.0 - crest_part) * 0.6 * steep_part, 0.0, 1.0))
        log.debug("transient: crest %.2f, steep %.2f", crest_part, steep_part)
        attack_rate, decay = _attacks(floored, steep, active, blk / sample_rate)
    else:
        transient = 0.0
    coverage = float(active.mean()) if eb.any() else 0.0
    t = (np.arange(nb) + 0.5) * blk / sample_rate
    level_rise = _corr(t[active], level[active])
    cent = np.concatenate(frame_cent)
    f_act = (e > 0) & (e > 1e-4 * e.max())  # frames within 40 dB of the loudest
    cent_rise = _corr(np.arange(len(cent))[f_act], cent[f_act])
    rise = float(np.clip(0.5 * (level_rise + cent_rise), 0.0, 1.0))
    flat = np.concatenate(frame_flat)
    # The spectral-shape statistics leave out the two frames at each end, whose windows reach into
    # the zero padding (a cut-off tone splatters there); unless that is all there is.
    inner = f_act.copy()
    if len(inner) > 8:
        inner[:2] = inner[-2:] = False
    if not inner.any():
        inner = f_act
    flatness = float(np.mean(flat[inner])) if inner.any() else 0.0
    mfcc_all = np.concatenate(frame_mfcc)
    mfcc = tuple(float(v) for v in mfcc_all[inner].mean(axis=0)) if inner.any() else (0.0,) * N_MFCC
    timbre_change = float(mfcc_all[inner].std(axis=0).mean()) if inner.sum() > 1 else 0.0
    sibilance = float(np.mean((flat[inner] > 0.3) & (cent[inner] > math.log2(4000.0)))) if inner.any() else 0.0
    level_spread = float(np.std(level[active]) / 20.0) if active.sum() > 1 else 0.0
    voiced, pitch, pitch_range, wobble, note_rate = _pitch(
        sample_rate / np.concatenate(harm_lag), hv, (he > 0) & (he > 1e-4 * e.max()), _HARM_STRIDE * HOP / sample_rate
    )
    feats = StemFeatures(
        duration_s=len(x) / sample_rate,
        band=band,  # type: ignore[arg-type]
        centroid_hz=centroid,
        transient=transient,
        harmonicity=harmonicity,
        coverage=coverage,
        rise=rise,
        rolloff_hz=rolloff,
        flatness=float(np.clip(flatness, 0.0, 1.0)),
        voiced=voiced,
        pitch_hz=pitch,
        pitch_range=pitch_range,
        wobble=wobble,
        attack_rate=attack_rate,
        decay=decay,
        mfcc=mfcc,
        level_spread=level_spread,
        timbre_change=timbre_change,
        sibilance=sibilance,
        note_rate=note_rate,
    )
    return feats, onset


def _attacks(floored: np.ndarray, steep: np.ndarray, active: np.ndarray, block_s: float) -> tuple[float, float]:
    """Steep attacks per second (from the first to the last sounding block), and the median drop
    after them over 40 dB.

    ``floored`` is the 10 ms block level in dB (floored 60 dB under the loud level), ``steep[i]``
    marks a steep rise into block ``i + 1``.
    """
    starts = np.flatnonzero(steep & ~np.concatenate(([False], steep[:-1]))) + 1  # first block of each attack
    if len(starts) and active.any():
        keep = [starts[0]]
        for s in starts[1:]:  # attacks closer than 50 ms are one attack (a flam, a double rise)
            if s - keep[-1] >= 5:
                keep.append(s)
        starts = np.array(keep)
    on = np.flatnonzero(active)
    span_s = (on[-1] - on[0] + 1) * block_s if len(on) else block_s  # first to last sounding block
    rate = len(starts) / span_s
    n_after = int(round(_DECAY_S / block_s))
    drops = []
    for s in starts:
        peak = s + int(np.argmax(floored[s : s + 5]))
        after = floored[peak + 1 : peak + 1 + n_after]
        if len(after) >= n_after // 2:
            drops.append(floored[peak] - after.min())
    decay = float(np.clip(np.median(drops) / _DECAY_DB, 0.0, 1.0)) if drops else 0.0
    return float(rate), decay


def _pitch(
    f0: np.ndarray, peak: np.ndarray, active: np.ndarray, frame_s: float
) -> tuple[float, float, float, float, float]:
    """Voiced fraction, median pitch (Hz), pitch range (octaves), within-note wobble (0..1) and
    note changes per voiced second, from pitch frames ``frame_s`` seconds apart.
    """
    voiced = active & (peak >= _VOICED_AC) & np.isfinite(f0)
    n_active = int(active.sum())
    if n_active == 0 or not voiced.any():
        return 0.0, 0.0, 0.0, 0.0, 0.0
    oct_ = np.log2(f0[voiced])
    pitch = float(2.0 ** np.median(oct_))
    spread = float(np.percentile(oct_, 90) - np.percentile(oct_, 10))
    both = voiced[1:] & voiced[:-1]
    step = np.abs(np.diff(np.log2(np.where(voiced, f0, 1.0))))[both] * 12.0  # semitones
    same_note = step[step < 1.0]
    wobble = float(np.median(same_note)) if len(same_note) >= 5 else 0.0
    note_rate = float(np.sum(step >= 1.0)) / (float(voiced.sum()) * frame_s)
    return float(voiced.sum() / n_active), pitch, spread, float(np.clip(wobble, 0.0, 1.0)), note_rate
