"""Peak and loudness measurement, loudness normalisation and a safety limiter.

Integrated loudness follows ITU-R BS.1770-4 (K-weighting, gating) exactly as ``pyloudnorm``
computes it -- the same filter coefficients, the same float64 filter recursion
(``scipy.signal.lfilter``'s) and the same sums, so the values are pyloudnorm's to the last bit
(tested) -- with the filter and the block energies in a compiled kernel
(:func:`renderer.kernels.k_weighted_sums`) that never stores the filtered signal: ~20 ms for a
minute of stereo instead of ~0.15 s, and neither pyloudnorm nor ``scipy.signal`` (~0.5 s to
import) is loaded. Binaural and stereo are measured as a stereo pair; Ambisonics (AmbiX) by its
omnidirectional W channel (the level of the sound field; a decoder's output level depends on
the layout). :func:`loudness` also returns the loudness of every 400 ms gating block, so the
loudness of the same signal scaled by a gain is :func:`gated_loudness` of the shifted blocks: a
render normalised by a gain is measured once, not twice.

True peak is the largest magnitude of the 4x-oversampled signal (BS.1770-4 Annex 2), with
the interpolator of ``scipy.signal.resample_poly(x, 4, 1)`` (Kaiser-windowed sinc, 81 taps,
i.e. 21 samples per phase), run by a compiled kernel (:func:`renderer.kernels.peak_4x`) that
never stores the oversampled signal: ~50 ms for a minute of stereo instead of ~0.7 s.

Units: LUFS, dBFS (sample peak), dBTP (true peak), dB.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import NDArray

from .config import SPEAKER_CHANNELS
from .kernels import k_weighted_sums, peak_4x

__all__ = [
    "LoudnessReport", "fir_4x", "gated_loudness", "k_weighting", "limit", "loudness", "measure",
    "normalisation_gain_db", "peaks",
]  # fmt: skip

#: BS.1770-4 absolute gate in LUFS.
ABSOLUTE_GATE_LUFS = -70.0


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


#: ``scipy.signal.firwin(81, 1 / 4, window=("kaiser", 5.0)) * 4``, the interpolator of
#: ``resample_poly(x, 4, 1)`` (half_len = 10 * 4, cutoff 1 / 4), as float64 to the last bit
#: (tested); symmetric, so its first 41 taps. Stored: scipy.signal takes ~0.5 s to import.
_FIR_4X_HALF = (
    -1.4319646207876959e-18, -0.001130597579184462, -0.0021031678617178763,
    -0.0019016679348927714, 3.709041094023897e-18, 0.002926514108961888, 0.005018530923471822,
    0.004252319066855107, -6.989122304361602e-18, -0.005932051843783716, -0.009790833971198894,
    -0.008026125461265495, 1.1214237028997423e-17, 0.010605090076805452, 0.017115155028976117,
    0.013753959070631754, -1.6183952382363033e-17, -0.017579165251157446, -0.027983277010958117,
    -0.02221988556769976, 2.1564830647503023e-17, 0.02786691635952088, 0.044051484099836266,
    0.034795254750361125, -2.6922559134588193e-17, -0.04342308644211485, -0.06868853498568138,
    -0.05442549106878252, 3.1772982945983186e-17, 0.06897233879817498, 0.11058973007292547,
    0.08928334853204617, -3.564465655764782e-17, -0.12013435015454692, -0.20188442282305535,
    -0.17397774297154053, 3.8143133424221195e-17, 0.2965428196043752, 0.6334760868798734,
    0.8996325710102085, 1.000636565089112,
)  # fmt: skip


def fir_4x() -> NDArray[np.float64]:
    """The 81-tap 4x interpolator of ``scipy.signal.resample_poly(x, 4, 1)`` (see above)."""
    half = np.asarray(_FIR_4X_HALF)
    return np.concatenate([half, half[-2::-1]])


@cache
def _taps_4x() -> tuple[NDArray[np.float32], int]:
    """resample_poly(x, 4, 1)'s interpolator as 4 phases of 21 taps, and its look-ahead."""
    half = 10 * 4  # resample_poly: half_len = 10 * max(up, down), cutoff 1 / max(up, down)
    h = fir_4x()
    taps = np.zeros((4, (2 * half) // 4 + 1), np.float32)
    for p in range(4):  # output 4 i + p = sum_k h[p + 4 k] x[i + 10 - k]
        taps[p, : len(h[p::4])] = h[p::4]
    return taps, half // 4


def peaks(y: NDArray[np.floating]) -> tuple[float, float]:
    """Sample peak and true peak (4x oversampled), both linear (full scale = 1).

    Parameters
    ----------
    y : ndarray, shape (channels, n)
        Signal, nominal full scale +-1 (computed in float32).

    Returns
    -------
    peak, true_peak : float
        ``max |y|`` and the largest magnitude of the 4x-oversampled signal (never below the
        sample peak).
    """
    y = np.ascontiguousarray(y, np.float32)
    if y.size == 0:
        return 0.0, 0.0
    taps, lead = _taps_4x()
    peak, top = peak_4x(y.reshape(-1, y.shape[-1]), taps, lead)
    return peak, max(peak, top)


#: BS.1770-4 gating: 400 ms blocks, 75 % overlap; channel weights L, R, C, Ls, Rs (pyloudnorm's).
BLOCK_S, OVERLAP = 0.400, 0.75
_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)


@cache
def k_weighting(sample_rate: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """BS.1770 K-weighting as two biquads, ``b, a`` of shape (2, 3): a high shelf (+4 dB above
    ~1.5 kHz), then a high pass (38 Hz), designed by pyloudnorm's formulas (RBJ cookbook) in the
    same float64 operations, so the coefficients are pyloudnorm's (tested).
    """
    stages = []
    for G, Q, fc, kind in ((4.0, 1 / np.sqrt(2), 1500.0, "high_shelf"), (0.0, 0.5, 38.0, "high_pass")):
        A = 10 ** (G / 40.0)
        w0 = 2.0 * np.pi * (fc / sample_rate)
        alpha = np.sin(w0) / (2.0 * Q)
        if kind == "high_shelf":
            b0 = A * ((A + 1) + (A - 1) * np.cos(w0) + 2 * np.sqrt(A) * alpha)
            b1 = -2 * A * ((A - 1) + (A + 1) * np.cos(w0))
            b2 = A * ((A + 1) + (A - 1) * np.cos(w0) - 2 * np.sqrt(A) * alpha)
            a0 = (A + 1) - (A - 1) * np.cos(w0) + 2 * np.sqrt(A) * alpha
            a1 = 2 * ((A - 1) - (A + 1) * np.cos(w0))
            a2 = (A + 1) - (A - 1) * np.cos(w0) - 2 * np.sqrt(A) * alpha
        else:
            b0 = (1 + np.cos(w0)) / 2
            b1 = -(1 + np.cos(w0))
            b2 = (1 + np.cos(w0)) / 2
            a0 = 1 + alpha
            a1 = -2 * np.cos(w0)
            a2 = 1 - alpha
        stages.append((np.array([b0, b1, b2]) / a0, np.array([a0, a1, a2]) / a0))
    return np.stack([b for b, _ in stages]), np.stack([a for _, a in stages])


def loudness(y: NDArray[np.floating], sample_rate: int, *, fmt: str = "binaural") -> tuple[float, NDArray[np.float64]]:
    """Integrated loudness (BS.1770-4, pyloudnorm's arithmetic) and the loudness of its blocks.

    Parameters
    ----------
    y : ndarray, shape (channels, n)
        Signal, nominal full scale +-1 (up to 5 channels: L, R, C, Ls, Rs; a loudspeaker
        format's channels in its order).
    sample_rate : int
        Sample rate in Hz.
    fmt : str
        Output format; ``"foa"`` / ``"hoa"`` measure channel 0 (W) only; a loudspeaker layout
        (``5.1``, ``7.1.4``...) weighs its channels by BS.1770-4 Table 3 (1.41 at 60..120 deg
        azimuth below 30 deg elevation, LFE excluded, 1.0 elsewhere).

    Returns
    -------
    lufs : float
        Integrated loudness in LUFS (-inf for silence or less than one 400 ms block).
    blocks_lufs : ndarray of float64, shape (n_blocks,)
        Loudness of every 400 ms block (75 % overlap) in LUFS, before gating (empty when
        ``lufs`` is -inf for lack of a block).
    """
    meas = np.ascontiguousarray(y[:1] if fmt in ("foa", "hoa") else y)
    if meas.dtype not in (np.float32, np.float64):
        meas = meas.astype(np.float64)
    n_ch, n = meas.shape
    G: tuple[float, ...] = _CHANNEL_GAINS
    if fmt in SPEAKER_CHANNELS:
        from .speakers import layout  # loudspeaker layouts: their own BS.1770 weights

        G = tuple(float(g) for g in layout(fmt).bs1770_weights)
    if n_ch > len(G):
        raise ValueError(f"loudness of {n_ch} channels: at most {len(G)} (L, R, C, Ls, Rs)")
    if n < BLOCK_S * sample_rate or not np.any(meas):
        return float("-inf"), np.zeros(0)
    # From here on, pyloudnorm's Meter.integrated_loudness, operation for operation.
    step = 1.0 - OVERLAP
    T = n / sample_rate
    n_blocks = int(np.round((T - BLOCK_S) / (BLOCK_S * step))) + 1
    j = np.arange(n_blocks)
    lo = (BLOCK_S * (j * step) * sample_rate).astype(np.int64)
    hi = (BLOCK_S * (j * step + 1) * sample_rate).astype(np.int64)
    b, a = k_weighting(sample_rate)
    z = (1.0 / (BLOCK_S * sample_rate)) * k_weighted_sums(meas, b, a, lo, hi)  # mean squares
    s = G[0] * z[0]
    for i in range(1, n_ch):
        s = s + G[i] * z[i]
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.simplefilter("ignore", category=RuntimeWarning)  # log10(0), mean of no blocks
        blocks = [-0.691 + 10.0 * np.log10(v) for v in s]
        above = [k for k, l_k in enumerate(blocks) if l_k >= ABSOLUTE_GATE_LUFS]
        z_avg = [np.mean([z[i, k] for k in above]) for i in range(n_ch)]
        gamma_r = -0.691 + 10.0 * np.log10(np.sum([G[i] * z_avg[i] for i in range(n_ch)])) - 10.0
        kept = [k for k, l_k in enumerate(blocks) if l_k > gamma_r and l_k > ABSOLUTE_GATE_LUFS]
        z_kept = np.nan_to_num(np.array([np.mean([z[i, k] for k in kept]) for i in range(n_ch)]))
        lufs = float(-0.691 + 10.0 * np.log10(np.sum([G[i] * z_kept[i] for i in range(n_ch)])))
    return lufs, np.asarray(blocks, np.float64)


def gated_loudness(blocks_lufs: NDArray[np.float64], gain_db: float = 0.0) -> float:
    """Integrated loudness in LUFS from block loudness, for the signal scaled by ``gain_db``.

    K-weighting is linear, so scaling a signal by ``gain_db`` shifts every block's loudness
    by ``gain_db``; the BS.1770-4 gates (absolute -70 LUFS, relative -10 LU) then run on the
    shifted blocks exactly as ``pyloudnorm`` runs them. -inf when every block is gated out.
    """
    lj = np.asarray(blocks_lufs, np.float64) + gain_db
    z = 10.0 ** ((lj + 0.691) / 10.0)  # the blocks' weighted mean squares
    above = lj >= ABSOLUTE_GATE_LUFS
    if not above.any():
        return float("-inf")
    rel = -0.691 + 10.0 * math.log10(float(np.mean(z[above]))) - 10.0
    keep = (lj > rel) & (lj > ABSOLUTE_GATE_LUFS)
    if not keep.any():
        return float("-inf")
    return -0.691 + 10.0 * math.log10(float(np.mean(z[keep])))


def measure(
    y: NDArray[np.floating],
    sample_rate: int,
    *,
    fmt: str = "binaural",
    loudness_lufs: float | None = None,
) -> LoudnessReport:
    """Measure peak, true peak and integrated loudness.

    Parameters
    ----------
    y : ndarray, shape (channels, n)
        Signal, nominal full scale +-1.
    sample_rate : int
        Sample rate in Hz.
    fmt : str
        Output format; ``"foa"`` / ``"hoa"`` measure loudness on channel 0 (W) only.
    loudness_lufs : float, optional
        The signal's integrated loudness when already known (e.g. from
        :func:`gated_loudness`): then only the peaks are measured.

    Returns
    -------
    LoudnessReport
    """
    peak, tp = peaks(y)
    lufs = loudness(y, sample_rate, fmt=fmt)[0] if loudness_lufs is None else loudness_lufs
    return LoudnessReport(peak_dbfs=_db(peak), true_peak_dbtp=_db(tp), loudness_lufs=lufs)


def normalisation_gain_db(loudness_lufs: float, target_lufs: float) -> float:
    """Gain in dB that brings ``loudness_lufs`` to ``target_lufs`` (0 if unmeasurable)."""
    if not math.isfinite(loudness_lufs):
        return 0.0
    return float(target_lufs - loudness_lufs)


#: Samples the limiter works on at a time: its memory beyond the signal is one gain curve
#: (float64, 8 bytes a sample) and a few arrays of this many samples.
LIMIT_CHUNK = 1 << 18


def limit(
    y: NDArray[np.floating],
    sample_rate: int,
    *,
    ceiling_dbfs: float = -1.0,
    lookahead_ms: float = 2.0,
    release_db_per_s: float = 60.0,
    inplace: bool = False,
) -> tuple[NDArray[np.float32], float]:
    """Offline safety limiter: no sample above the ceiling, smooth gain, untouched below it.

    The gain needed per sample, ``min(1, ceiling / |x|)`` (linked over channels), is held over
    +-``lookahead_ms`` (sliding minimum), released at most ``release_db_per_s`` (a running
    minimum of ``gain_db - rate * t``), then smoothed by a moving average over the same window
    -- an average of values that are all at or below the needed gain, so peaks stay under the
    ceiling while the gain moves without clicks.

    Memory: the signal is worked on :data:`LIMIT_CHUNK` samples at a time (each chunk's window
    reaches +-lookahead into its neighbours, and the running minimum is carried over), so
    beyond the signal only the gain curve is held: 8 bytes a sample (230 MB for 10 minutes at
    48 kHz), not the dozen signal-long arrays a whole-signal computation makes.

    Parameters
    ----------
    y : ndarray, shape (channels, n)
        Signal, nominal full scale +-1.
    sample_rate : int
        Sample rate in Hz.
    ceiling_dbfs : float
        Largest allowed sample magnitude in dBFS.
    lookahead_ms : float
        Attack / look-ahead window in milliseconds.
    release_db_per_s : float
        Release rate in dB per second.
    inplace : bool
        Scale ``y`` itself (it must then be float32) instead of a copy: no second signal in memory.

    Returns
    -------
    y : ndarray of float32, shape (channels, n)
        Limited signal (``y`` itself when untouched or ``inplace``).
    max_reduction_db : float
        Largest gain reduction applied, in dB (0 if the signal was already below the ceiling).
    """
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    if y.size == 0 or max(-float(y.min()), float(y.max())) <= ceiling:  # no |y| temporary
        return y, 0.0
    from scipy import ndimage  # only when peaks need limiting: ~0.2 s to import

    if inplace and y.dtype != np.float32:
        raise ValueError(f"limit(inplace=True) needs float32 samples, not {y.dtype}")
    out = y if inplace else np.array(y, dtype=np.float32)
    n = y.shape[-1]
    a = max(1, int(round(lookahead_ms * 1e-3 * sample_rate)))
    rate = release_db_per_s / sample_rate
    gain = np.empty(n)  # the released gain in dB, then linear
    low = math.inf  # running minimum of held_db - t over the chunks done
    for s in range(0, n, LIMIT_CHUNK):
        e = min(n, s + LIMIT_CHUNK)
        w0, w1 = max(0, s - a), min(n, e + a)  # the held minimum reaches a samples either side
        mag = np.max(np.abs(out[:, w0:w1]), axis=0).astype(np.float64)
        need = np.minimum(1.0, ceiling / np.maximum(mag, 1e-30))
        held = ndimage.minimum_filter1d(need, size=2 * a + 1, mode="nearest")[s - w0 : s - w0 + e - s]
        t = np.arange(s, e) * rate
        run = np.minimum.accumulate(20.0 * np.log10(held) - t)
        np.minimum(run, low, out=run)
        low = float(run[-1])
        gain[s:e] = np.minimum(run + t, 0.0)
    gain /= 20.0
    np.power(10.0, gain, out=gain)  # in place: no second signal-long array
    kernel = np.full(2 * a + 1, 1.0 / (2 * a + 1))
    smallest = 1.0
    for s in range(0, n, LIMIT_CHUNK):
        e = min(n, s + LIMIT_CHUNK)
        padded = gain[np.clip(np.arange(s - a, e + a), 0, n - 1)]  # the edges held, as np.pad "edge"
        smooth = np.convolve(padded, kernel, mode="valid")
        smallest = min(smallest, float(smooth.min()))
        block = out[:, s:e]
        np.multiply(block, smooth[None, :], out=block, casting="same_kind")
        np.clip(block, -ceiling, ceiling, out=block)  # rounding right at the ceiling
    return out, float(-20.0 * np.log10(smallest))
