"""Signal-processing primitives for HRIRs: minimum phase, delays, onsets.

All functions work on the last axis and broadcast over leading axes
(directions, ears). Delays and onsets are fractional sample counts.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "minimum_phase",
    "minimum_phase_spectrum",
    "onset_samples",
    "excess_phase_delay",
    "fractional_delay",
    "fade_out",
]


def next_pow2(n: int) -> int:
    return 1 << max(0, int(n - 1).bit_length())


def minimum_phase_spectrum(mag: ArrayLike, n_fft: int, floor_db: float = -80.0) -> NDArray[np.complex128]:
    """Minimum-phase spectrum with a given magnitude (homomorphic method).

    The real cepstrum of ``log|H|`` is folded onto positive quefrencies,
    which makes the log spectrum analytic, i.e. minimum phase, without
    changing the magnitude.

    Parameters
    ----------
    mag : array_like, shape (..., n_fft // 2 + 1)
        Magnitude on the one-sided ``rfft`` grid (linear).
    n_fft : int
        FFT length the magnitude was computed with. Should be several times
        the response length to keep cepstral aliasing negligible.
    floor_db : float
        Magnitudes more than this many dB below each response's peak are
        raised to it, so log() stays finite and near-zeros (e.g. above the
        original Nyquist after upsampling) do not produce long tails.

    Returns
    -------
    ndarray of complex, shape (..., n_fft // 2 + 1)
        Minimum-phase spectrum; ``irfft`` of it is the filter.
    """
    mag = np.asarray(mag, dtype=np.float64)
    floor = mag.max(axis=-1, keepdims=True) * 10.0 ** (floor_db / 20.0)
    cep = np.fft.irfft(np.log(np.maximum(mag, np.maximum(floor, np.finfo(float).tiny))), n_fft, axis=-1)
    fold = np.zeros(n_fft)
    fold[0] = 1.0
    fold[1 : (n_fft + 1) // 2] = 2.0
    if n_fft % 2 == 0:
        fold[n_fft // 2] = 1.0
    return np.exp(np.fft.rfft(cep * fold, n_fft, axis=-1))


def fade_out(x: ArrayLike, n_fade: int) -> NDArray[np.float64]:
    """Apply a half-Hann fade to the last ``n_fade`` samples.

    Parameters
    ----------
    x : array_like, shape (..., N)
        Signals.
    n_fade : int
        Fade length in samples (0 = none).

    Returns
    -------
    ndarray, shape (..., N)
    """
    y = np.array(x, dtype=np.float64)
    if n_fade > 0:
        # Samples 1..n of a falling half-Hann: never exactly 1 at the start,
        # exactly 0 only past the end, so no sample is dropped abruptly.
        y[..., -n_fade:] *= 0.5 * (1.0 + np.cos(np.pi * np.arange(1, n_fade + 1) / (n_fade + 1)))
    return y


def minimum_phase(
    ir: ArrayLike,
    n_taps: int | None = None,
    *,
    n_fft: int | None = None,
    floor_db: float = -80.0,
    n_fade: int = 0,
) -> NDArray[np.float64]:
    """Minimum-phase version of impulse responses (same magnitude response).

    Parameters
    ----------
    ir : array_like, shape (..., N)
        Impulse responses.
    n_taps : int, optional
        Output length in samples (default N). Truncation keeps the start,
        where a minimum-phase filter concentrates its energy.
    n_fft : int, optional
        FFT length (default: next power of two >= 8 N).
    floor_db : float
        Magnitude floor in dB below each response's peak (see
        :func:`minimum_phase_spectrum`).
    n_fade : int
        Half-Hann fade-out over the last ``n_fade`` output samples, so the
        truncation does not end on a step.

    Returns
    -------
    ndarray, shape (..., n_taps)
        Minimum-phase impulse responses.
    """
    x = np.asarray(ir, dtype=np.float64)
    n = x.shape[-1]
    n_fft = n_fft or next_pow2(8 * n)
    hmin = np.fft.irfft(minimum_phase_spectrum(np.abs(np.fft.rfft(x, n_fft, axis=-1)), n_fft, floor_db), n_fft)
    return fade_out(hmin[..., : n_taps or n], n_fade)


def onset_samples(ir: ArrayLike, threshold_db: float = -20.0, upsample: int = 8) -> NDArray[np.float64]:
    """Onset time: first crossing of a threshold relative to the peak.

    The response is upsampled (polyphase, band-limited) so the crossing is
    found with sub-sample precision, then refined by linear interpolation.

    Parameters
    ----------
    ir : array_like, shape (..., N)
        Impulse responses.
    threshold_db : float
        Threshold in dB relative to each response's absolute peak.
    upsample : int
        Upsampling factor used for the search.

    Returns
    -------
    ndarray, shape (...)
        Onset in (fractional) samples at the input rate.
    """
    from scipy.signal import resample_poly  # here: importing scipy.signal takes ~0.5 s

    x = np.asarray(ir, dtype=np.float64)
    a = np.abs(resample_poly(x, upsample, 1, axis=-1))
    thr = a.max(axis=-1, keepdims=True) * 10.0 ** (threshold_db / 20.0)
    i1 = np.argmax(a >= thr, axis=-1)[..., None]
    i0 = np.maximum(i1 - 1, 0)
    a0 = np.take_along_axis(a, i0, -1)
    a1 = np.take_along_axis(a, i1, -1)
    frac = np.where(i1 > 0, (thr - a0) / np.maximum(a1 - a0, np.finfo(float).tiny), 0.0)
    return ((i0 + np.clip(frac, 0.0, 1.0)) / upsample)[..., 0]


def excess_phase_delay(
    spectrum: ArrayLike,
    min_phase_spectrum: ArrayLike,
    sample_rate: float,
    band_hz: tuple[float, float] = (500.0, 1500.0),
) -> NDArray[np.float64]:
    """Low-frequency group delay of the excess-phase (all-pass) part.

    ``H = H_min * H_ap``; the slope of the unwrapped phase of ``H_ap`` over
    ``band_hz`` (magnitude-weighted least squares) is the pure delay that,
    put in series with ``H_min``, reproduces the original phase in that band
    -- and hence its low-frequency interaural time difference, the dominant
    localisation cue.

    Parameters
    ----------
    spectrum : array_like of complex, shape (..., F)
        One-sided spectrum (``rfft``, length ``n_fft``) of the responses.
    min_phase_spectrum : array_like of complex, shape (..., F)
        Their minimum-phase spectra (same grid).
    sample_rate : float
        Sample rate in Hz.
    band_hz : (float, float)
        Fit band in Hz.

    Returns
    -------
    ndarray, shape (...)
        Delay in (fractional) samples.
    """
    h = np.asarray(spectrum)
    n_bins = h.shape[-1]
    n_fft = 2 * (n_bins - 1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    band = (freqs >= band_hz[0]) & (freqs <= band_hz[1])
    if np.count_nonzero(band) < 3:
        raise ValueError(f"delay band {band_hz} Hz holds fewer than 3 FFT bins")
    stop = int(np.nonzero(band)[0][-1]) + 1
    # Unwrap from DC so the band's phase is continuous with it.
    phase = np.unwrap(np.angle(h[..., :stop] * np.conj(np.asarray(min_phase_spectrum)[..., :stop])), axis=-1)
    phase = phase[..., band[:stop]]
    w = np.abs(h[..., band])
    omega = 2.0 * np.pi * freqs[band] / sample_rate  # radians per sample
    # Weighted linear fit phase = a + b * omega, vectorised over leading axes.
    sw = w.sum(-1)
    mo = (w * omega).sum(-1) / sw
    mp = (w * phase).sum(-1) / sw
    slope = (w * (omega - mo[..., None]) * (phase - mp[..., None])).sum(-1) / (
        (w * (omega - mo[..., None]) ** 2).sum(-1)
    )
    return -slope


def fractional_delay(x: ArrayLike, delay_samples: ArrayLike, n_out: int) -> NDArray[np.float64]:
    """Delay signals by fractional sample counts (band-limited, via FFT).

    Parameters
    ----------
    x : array_like, shape (..., N)
        Signals.
    delay_samples : array_like, shape (...)
        Non-negative delays in samples, broadcast against ``x``'s leading axes.
    n_out : int
        Output length in samples.

    Returns
    -------
    ndarray, shape (..., n_out)
        Delayed signals (exact for integer delays).
    """
    x = np.asarray(x, dtype=np.float64)
    d = np.asarray(delay_samples, dtype=np.float64)
    # Generous zero padding keeps the sinc tails of a fractional shift from
    # wrapping around into the kept part.
    n_fft = next_pow2(n_out + x.shape[-1] + 256)
    k = np.fft.rfftfreq(n_fft)
    spec = np.fft.rfft(x, n_fft, axis=-1) * np.exp(-2j * np.pi * k * d[..., None])
    return np.fft.irfft(spec, n_fft, axis=-1)[..., :n_out]
