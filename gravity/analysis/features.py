"""Per-stem features of a mono signal: band energies, centroid, transient, harmonicity, coverage, rise.

Signals are mono, full scale = 1, DC removed, at :data:`ANALYSIS_RATE` Hz (48 kHz); frequencies
in Hz, durations in seconds, the rest 0..1. :func:`compute_features` also returns the onset
envelope the tempo estimate uses (:mod:`gravity.analysis.tempo`). How each feature is measured is
described on :class:`StemFeatures`; the ``transient`` recipe in :mod:`gravity.analysis.stems`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from gravity.analysis.tempo import HOP, N_FFT, band_powers, onset_envelope

__all__ = ["StemFeatures", "compute_features", "ANALYSIS_RATE", "BAND_EDGES_HZ"]

log = logging.getLogger(__name__)

ANALYSIS_RATE = 48000  # Hz: every stem is resampled to this for the features
BAND_EDGES_HZ = (250.0, 4000.0)  # Hz: low < 250 <= mid < 4000 <= high


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
    """

    duration_s: float
    band: tuple[float, float, float]
    centroid_hz: float
    transient: float
    harmonicity: float
    coverage: float
    rise: float

    def vector(self) -> np.ndarray:
        """Feature vector for :func:`gravity.analysis.classification.classify_features`: low, mid,
        high, transient, harmonicity, log-centroid (0 = 50 Hz, 1 = 10 kHz), coverage, rise.
        """
        cn = (math.log(max(self.centroid_hz, 50.0)) - math.log(50.0)) / (math.log(10000.0) - math.log(50.0))
        return np.array([*self.band, self.transient, self.harmonicity, min(cn, 1.2), self.coverage, self.rise])


_WINDOW = np.hanning(N_FFT + 2)[1:-1]  # symmetric Hann without its zero end points
_NFFT_PAD = 2 * N_FFT  # zero-padded FFT: linear (not circular) autocorrelation per frame
_WIN_AC = np.fft.irfft(np.abs(np.fft.rfft(_WINDOW, _NFFT_PAD)) ** 2, _NFFT_PAD)[:N_FFT]
_WIN_AC = _WIN_AC / _WIN_AC[0]
_HARM_STRIDE = 4  # harmonicity is measured on every 4th STFT frame


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


def compute_features(x: np.ndarray, sample_rate: int = ANALYSIS_RATE) -> tuple[StemFeatures, np.ndarray]:
    """Measure one mono signal.

    Parameters
    ----------
    x : np.ndarray [shape=(samples,)]
        Mono signal, full scale = 1, DC removed, at ``sample_rate``.
    sample_rate : int
        Hz (:func:`gravity.analysis.stems.analyze_stems` always passes :data:`ANALYSIS_RATE`; the
        classifier's prototypes assume it).

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
    spec_sum = np.zeros(len(freqs))
    lag_lo, lag_hi = max(1, int(0.001 * sample_rate)), min(int(0.020 * sample_rate), N_FFT - 1)  # 1-20 ms
    onset_bands, frame_e, frame_cent, harm_e, harm = [], [], [], [], []
    for fr in _frames(x):
        spec = np.fft.rfft(fr, N_FFT)
        p = spec.real**2 + spec.imag**2
        spec_sum += p.sum(axis=0)
        onset_bands.append(band_powers(p, sample_rate))
        e = p.sum(axis=1)
        frame_e.append(e)
        with np.errstate(invalid="ignore", divide="ignore"):
            frame_cent.append(np.where(e > 0, (p @ log_f) / e, 0.0))
            # Harmonicity on every 4th frame (it is a long-term average): zero-padded FFT so the
            # autocorrelation is linear, not circular.
            sub = np.fft.rfft(fr[::_HARM_STRIDE], _NFFT_PAD)
            ps = sub.real**2 + sub.imag**2
            ac = np.fft.irfft(ps, _NFFT_PAD)[:, : lag_hi + 1]
            norm = ac[:, lag_lo : lag_hi + 1] / ac[:, :1] / _WIN_AC[lag_lo : lag_hi + 1]
        harm.append(np.clip(np.nan_to_num(norm.max(axis=1)), 0.0, 1.0))
        harm_e.append(e[::_HARM_STRIDE])
    e = np.concatenate(frame_e)
    onset = onset_envelope(np.concatenate(onset_bands), sample_rate)
    total = float(spec_sum.sum())
    band = tuple(float(v) for v in (spec_sum @ band_masks) / total) if total > 0 else (0.0, 0.0, 0.0)
    centroid = float(spec_sum @ freqs / total) if total > 0 else 0.0
    he = np.concatenate(harm_e)
    harmonicity = float(np.sum(np.concatenate(harm) * he) / he.sum()) if he.sum() > 0 else 0.0

    # 10 ms energy blocks: transient, coverage, rise.
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
    else:
        transient = crest_part = steep_part = 0.0
    coverage = float(active.mean()) if eb.any() else 0.0
    t = (np.arange(nb) + 0.5) * blk / sample_rate
    level_rise = _corr(t[active], level[active])
    cent = np.concatenate(frame_cent)
    f_act = (e > 0) & (e > 1e-4 * e.max())  # frames within 40 dB of the loudest
    cent_rise = _corr(np.arange(len(cent))[f_act], cent[f_act])
    rise = float(np.clip(0.5 * (level_rise + cent_rise), 0.0, 1.0))
    feats = StemFeatures(
        duration_s=len(x) / sample_rate,
        band=band,  # type: ignore[arg-type]
        centroid_hz=centroid,
        transient=transient,
        harmonicity=harmonicity,
        coverage=coverage,
        rise=rise,
    )
    return feats, onset
