"""Peak and loudness measurement, loudness normalisation and a safety limiter.

Integrated loudness follows ITU-R BS.1770-4 (K-weighting, gating) through ``pyloudnorm``.
Binaural and stereo are measured as a stereo pair; Ambisonics (AmbiX) by its omnidirectional
W channel (the level of the sound field; a decoder's output level depends on the layout).
True peak is estimated by 4x polyphase oversampling (BS.1770-4 Annex 2).

Units: LUFS, dBFS (sample peak), dBTP (true peak), dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyloudnorm
from numpy.typing import NDArray
from scipy import ndimage, signal

__all__ = ["LoudnessReport", "measure", "normalisation_gain_db", "limit"]


@dataclass(frozen=True)
class LoudnessReport:
    """Levels of a signal.

    Attributes
    ----------
    peak_dbfs : float
        Sample peak in dBFS (-inf for silence).
    true_peak_dbtp : float
        4x-oversampled peak in dBTP.
    loudness_lufs : float
        Integrated loudness in LUFS (-inf for silence or signals shorter than one 400 ms
        gating block).
    """

    peak_dbfs: float
    true_peak_dbtp: float
    loudness_lufs: float


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else float("-inf")


def measure(y: NDArray[np.floating], sample_rate: int, *, fmt: str = "binaural") -> LoudnessReport:
    """Measure peak, true peak and integrated loudness.

    Parameters
    ----------
    y : ndarray, shape (channels, n)
        Signal, nominal full scale +-1.
    sample_rate : int
        Sample rate in Hz.
    fmt : str
        Output format; ``"foa"`` / ``"hoa"`` measure loudness on channel 0 (W) only.

    Returns
    -------
    LoudnessReport
    """
    y = np.asarray(y, np.float64)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    tp = 0.0
    if y.size:
        # Oversample in chunks so long renders do not need 4x the memory at once.
        step = 1 << 20
        for s in range(0, y.shape[1], step):
            seg = y[:, max(0, s - 64) : s + step + 64]
            tp = max(tp, float(np.max(np.abs(signal.resample_poly(seg, 4, 1, axis=1)))))
        tp = max(tp, peak)
    lufs = float("-inf")
    meas = y[:1] if fmt in ("foa", "hoa") else y
    if meas.shape[1] >= int(0.4 * sample_rate) and peak > 0:
        with np.errstate(divide="ignore"):
            lufs = float(pyloudnorm.Meter(sample_rate).integrated_loudness(meas.T))
    return LoudnessReport(peak_dbfs=_db(peak), true_peak_dbtp=_db(tp), loudness_lufs=lufs)


def normalisation_gain_db(report: LoudnessReport, target_lufs: float) -> float:
    """Gain in dB that brings the integrated loudness to ``target_lufs`` (0 if unmeasurable)."""
    if not math.isfinite(report.loudness_lufs):
        return 0.0
    return float(target_lufs - report.loudness_lufs)


def limit(
    y: NDArray[np.float32],
    sample_rate: int,
    *,
    ceiling_dbfs: float = -1.0,
    lookahead_ms: float = 2.0,
    release_db_per_s: float = 60.0,
) -> tuple[NDArray[np.float32], float]:
    """Offline safety limiter: no sample above the ceiling, smooth gain, untouched below it.

    The gain needed per sample, ``min(1, ceiling / |x|)`` (linked over channels), is held over
    +-``lookahead_ms`` (sliding minimum), released at most ``release_db_per_s`` (a running
    minimum of ``gain_db - rate * t``), then smoothed by a moving average over the same window
    -- an average of values that are all at or below the needed gain, so peaks stay under the
    ceiling while the gain moves without clicks.

    Parameters
    ----------
    y : ndarray of float32, shape (channels, n)
        Signal.
    sample_rate : int
        Sample rate in Hz.
    ceiling_dbfs : float
        Largest allowed sample magnitude in dBFS.
    lookahead_ms : float
        Attack / look-ahead window in milliseconds.
    release_db_per_s : float
        Release rate in dB per second.

    Returns
    -------
    y : ndarray of float32, shape (channels, n)
        Limited signal.
    max_reduction_db : float
        Largest gain reduction applied, in dB (0 if the signal was already below the ceiling).
    """
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    mag = np.max(np.abs(y), axis=0).astype(np.float64) if y.size else np.zeros(0)
    if mag.size == 0 or mag.max() <= ceiling:
        return y, 0.0
    need = np.minimum(1.0, ceiling / np.maximum(mag, 1e-30))
    a = max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))
    held = ndimage.minimum_filter1d(need, size=2 * a + 1, mode="nearest")
    held_db = 20.0 * np.log10(held)
    rate = release_db_per_s / sample_rate
    t = np.arange(len(held_db)) * rate
    released_db = np.minimum.accumulate(held_db - t) + t
    gain = 10.0 ** (np.minimum(released_db, 0.0) / 20.0)
    kernel = np.full(2 * a + 1, 1.0 / (2 * a + 1))
    smooth = np.convolve(np.pad(gain, a, mode="edge"), kernel, mode="valid")
    out = (y * smooth[None, :]).astype(np.float32)
    # Guard against rounding right at the ceiling.
    np.clip(out, -ceiling, ceiling, out=out)
    return out, float(-20.0 * np.log10(smooth.min()))
