"""What happens to a source on its way to the listener: distance, air, width, delay.

* :func:`distance_gain`: 1/r law with a reference distance and a near clamp.
* :func:`air_coefficient`: one-pole low-pass coefficient whose cutoff falls with distance.
* :func:`spread_directions` + :func:`decorrelation_filters`: a wide object becomes several
  virtual sources across its width, fed with decorrelated copies of its signal and
  energy-normalised, so it sounds wide, not louder.
* :class:`DelayLine`: time-varying fractional delays (cubic Lagrange) for propagation and
  reflection delays of moving sources (Doppler included).

Units: distances in metres, angles in degrees (+az = left), delays in samples, gains linear.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hrtf import minimum_phase

from . import fft as sfft  # scipy's pocketfft, without scipy.fft's import
from .kernels import lagrange_read

__all__ = [
    "distance_gain",
    "air_coefficient",
    "spread_offsets",
    "spread_directions",
    "decorrelation_filters",
    "DelayLine",
]


def distance_gain(dist_m: ArrayLike, reference_m: float = 1.0, near_clamp_m: float = 0.25) -> NDArray[np.float64]:
    """Inverse-distance gain.

    Parameters
    ----------
    dist_m : array_like
        Distances in metres.
    reference_m : float
        Distance in metres with gain 1 (0 dB).
    near_clamp_m : float
        Distances below this are treated as this (at most ``reference / near_clamp``, +12 dB
        for the defaults).

    Returns
    -------
    ndarray
        Linear gains: halving per doubling of distance (-6.02 dB).
    """
    return reference_m / np.maximum(np.asarray(dist_m, np.float64), near_clamp_m)


def air_coefficient(dist_m: ArrayLike, sample_rate: float, cutoff_1m_hz: float = 44700.0) -> NDArray[np.float64]:
    """Pole ``a`` of the air-absorption low-pass ``(1 - a) / (1 - a z^-1)``.

    The cutoff is ``cutoff_1m_hz / sqrt(r)``: air absorbs roughly in proportion to f^2 per
    metre (about 0.15 dB/m at 10 kHz, ISO 9613-1 at 20 degC / 50 % RH), so the -3 dB point
    falls as 1/sqrt(distance). Gives about -1.2 dB at 10 kHz for 10 m and -5 dB for 50 m;
    within 1-2 m it is inaudible.

    Parameters
    ----------
    dist_m : array_like
        Distances in metres.
    sample_rate : float
        Sample rate in Hz.
    cutoff_1m_hz : float
        Cutoff in Hz at 1 m.

    Returns
    -------
    ndarray
        Pole in [0, 1); 0 = no filtering.
    """
    fc = cutoff_1m_hz / np.sqrt(np.maximum(np.asarray(dist_m, np.float64), 1e-3))
    return np.exp(-2.0 * np.pi * fc / sample_rate)


def spread_offsets(width: float, max_spread_deg: float = 60.0) -> NDArray[np.float64]:
    """Angular offsets of the virtual sources of an object.

    Parameters
    ----------
    width : float
        Object width 0..1 (0 = point).
    max_spread_deg : float
        Half-angle in degrees at width 1.

    Returns
    -------
    ndarray, shape (V,)
        Offsets in degrees along the horizontal tangent, centre first: ``[0]`` for a point,
        3 sources up to half-angles of 30 degrees, 5 beyond (so neighbours stay <= 30 degrees
        apart and the spread reads as continuous).
    """
    half = float(np.clip(width, 0.0, 1.0)) * max_spread_deg
    if half <= 0.0:
        return np.zeros(1)
    n_side = 1 if half <= 30.0 else 2
    side = half * np.arange(1, n_side + 1) / n_side
    return np.concatenate([[0.0], np.stack([side, -side], axis=1).ravel()])


def spread_directions(
    az_deg: ArrayLike, el_deg: ArrayLike, offset_deg: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Directions rotated by great-circle offsets along the horizontal tangent.

    The virtual sources of a wide object lie on the great circle through the object that is
    tangent to its ring of constant elevation, so the spread is ``2 * half-angle`` wide at
    any elevation (a plain azimuth offset would shrink to nothing overhead).

    Parameters
    ----------
    az_deg, el_deg : array_like
        Object directions in degrees.
    offset_deg : array_like
        Offsets in degrees (+ = towards +az, i.e. left for a frontal object); broadcast
        together with the directions to shape S.

    Returns
    -------
    az_deg, el_deg : ndarray, shape S
    """
    az, el, b = np.broadcast_arrays(*(np.radians(np.asarray(a, float)) for a in (az_deg, el_deg, offset_deg)))
    u = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], -1)
    t = np.stack([-np.sin(az), np.cos(az), np.zeros_like(az)], -1)
    v = np.cos(b)[..., None] * u + np.sin(b)[..., None] * t
    out_az = np.degrees(np.arctan2(v[..., 1], v[..., 0]))
    out_el = np.degrees(np.arcsin(np.clip(v[..., 2], -1.0, 1.0)))
    return out_az, out_el


def decorrelation_filters(
    n_voices: int,
    sample_rate: float,
    *,
    crossover_hz: float = 250.0,
    decay_ms: float = 20.0,
    n_taps: int = 1024,
    amount: float = 1.0,
    seed: int = 0,
) -> NDArray[np.float64]:
    """Decorrelation filters for the virtual sources of one wide object.

    Voice 0 (the centre) is the plain signal; voice v > 0 is
    ``LP + HP * noise_v`` where LP/HP is a complementary split at ``crossover_hz`` (second
    order Butterworth low-pass and its exact complement ``delta - LP``) and ``noise_v`` a
    seeded, exponentially decaying unit-energy noise burst (-60 dB after ``decay_ms``). So the
    voices start together (no precedence shift), stay coherent in the bass (mono-compatible
    low end) and are decorrelated above the crossover.

    Energy: the filters are then jointly scaled by a minimum-phase correction ``1 / sqrt(P)``
    with ``P(f)`` (1/3-octave smoothed) blending the power of their sum (where they add
    coherently: the bass, and the coherent share of the highs) and the sum of their powers
    (where they are heard as decorrelated sources), weighted by the coherent share
    ``|LP|^2 + (1 - |LP|^2)(1 - amount^2)``. A wide object is as loud as a point one.

    Parameters
    ----------
    n_voices : int
        Number of virtual sources V (1 returns a unit impulse).
    sample_rate : float
        Sample rate in Hz.
    crossover_hz : float
        Coherent below this frequency in Hz.
    decay_ms : float
        Decay of the noise bursts (-60 dB) in ms; longer decorrelates better and smears
        transients more.
    n_taps : int
        Filter length in samples.
    amount : float
        0..1: how decorrelated the side voices are above the crossover. Their high band is
        ``sqrt(1 - amount^2) * delta + amount * noise_v`` (unit energy): a slightly wide
        object stays mostly coherent (a focused, slightly blurred image), a wide one becomes
        diffuse.
    seed : int
        Random seed (deterministic output).

    Returns
    -------
    ndarray, shape (V, n_taps)
    """
    h = np.zeros((n_voices, n_taps))
    h[:, 0] = 1.0
    if n_voices == 1:
        return h
    rng = np.random.default_rng(seed)
    t = np.arange(n_taps) / sample_rate
    env = 10.0 ** (-3.0 * t / (decay_ms * 1e-3))
    from scipy import signal  # only for wide objects: scipy.signal takes ~0.5 s to import

    b, a = signal.butter(2, crossover_hz, btype="low", fs=sample_rate)
    imp = np.zeros(n_taps)
    imp[0] = 1.0
    lp = signal.lfilter(b, a, imp)
    hp = imp - lp
    # Noise bursts made exactly orthogonal to each other and to the centre's impulse (QR of
    # the stacked sequences), so no pair is correlated by chance.
    bursts = rng.standard_normal((n_voices - 1, n_taps)) * env
    basis = np.vstack([np.eye(1, n_taps), bursts])
    q, _ = np.linalg.qr(basis.T)
    for v in range(1, n_voices):
        noise = q[:, v] * np.sign(q[1:, v] @ bursts[v - 1, 1:])  # keep each burst's own shape
        a = float(np.clip(amount, 0.0, 1.0))
        mix = a * noise
        mix[0] += np.sqrt(1.0 - a * a)
        h[v] = lp + np.convolve(hp, mix)[:n_taps]
    # Joint power normalisation, smoothed to 1/3 octave, applied minimum-phase. In the bass the
    # voices add coherently (normalise the power of their sum); above the crossover they are
    # heard as separate, decorrelated sources (normalise the sum of their powers). The two are
    # blended with the low-pass's power response |LP|^2.
    n_fft = 8 * n_taps
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    spec = sfft.rfft(h, n_fft, axis=-1)
    lp2 = np.abs(sfft.rfft(lp, n_fft)) ** 2
    # Coherent share: all of the low band, and (1 - amount^2) of the high band.
    c = lp2 + (1.0 - lp2) * (1.0 - float(np.clip(amount, 0.0, 1.0)) ** 2)
    p = c * np.abs(spec.sum(0)) ** 2 + (1.0 - c) * np.sum(np.abs(spec) ** 2, axis=0)
    ps = np.empty_like(p)
    csum = np.concatenate([[0.0], np.cumsum(p)])
    fq = np.maximum(f, f[1])
    lo = np.searchsorted(f, fq / 2 ** (1 / 6))
    hi = np.maximum(np.searchsorted(f, fq * 2 ** (1 / 6), side="right"), lo + 1)
    ps[:] = (csum[hi] - csum[lo]) / (hi - lo)
    corr = np.fft.irfft(1.0 / np.sqrt(np.maximum(ps, 1e-12)), n_fft)
    corr_min = minimum_phase(np.roll(corr, n_fft // 2), n_taps // 2, n_fft=n_fft, n_fade=n_taps // 16)
    return np.stack([np.convolve(hv, corr_min)[:n_taps] for hv in h])


class DelayLine:
    """Delayed reads of mono signals: integer delays, or time-varying fractional ones.

    One ring buffer holds the recent past of every input signal; voices read from it (no
    copies of the history per block). Time-varying delays use cubic Lagrange interpolation
    with ``tau`` given at hop boundaries and interpolated linearly per sample, so a moving
    source gets a smooth delay (its Doppler shift) without steps; its error is about -50 dB
    for content below fs/8 (and grows towards Nyquist, as for any 4-point interpolator).
    Fractional delays must be >= 2 samples (the interpolator reads one sample ahead of the
    integer position); callers subtract 2 from those voices' filter look-ahead.

    Parameters
    ----------
    n_inputs : int
        Number of input signals.
    max_delay : float
        Largest delay in samples.
    """

    MIN_DELAY = 2.0

    def __init__(self, n_inputs: int, max_delay: float) -> None:
        self.n_inputs = n_inputs
        self.n_hist = int(np.ceil(max_delay)) + 4
        # A linear buffer (no modular indexing in the hot path): the past n_hist samples are
        # moved to the front when the next block would not fit (amortised: rarely).
        self._buf = np.zeros((n_inputs, self.n_hist + max(65536, 4 * self.n_hist)), np.float32)
        self._end = self.n_hist  # column after the newest sample
        self._n_last = 0  # length of the last push

    def reset(self) -> None:
        """Clear the history."""
        self._buf[:] = 0.0
        self._end = self.n_hist
        self._n_last = 0

    def push(self, x: NDArray[np.float32]) -> None:
        """Append a block of new samples (shape (n_inputs, n)); the reads refer to it."""
        n = x.shape[1]
        if self._end + n > self._buf.shape[1]:
            keep = self._buf[:, self._end - self.n_hist : self._end].copy()
            if self.n_hist + n > self._buf.shape[1]:
                self._buf = np.zeros((self.n_inputs, self.n_hist + 2 * n), np.float32)
            self._buf[:, : self.n_hist] = keep
            self._end = self.n_hist
        self._buf[:, self._end : self._end + n] = x
        self._end += n
        self._n_last = n

    def read_integer(self, inputs: NDArray[np.intp], delay: NDArray[np.intp]) -> NDArray[np.float32]:
        """Read the last block delayed by whole samples.

        Parameters
        ----------
        inputs : ndarray of int, shape (V,)
            Input signal of each voice.
        delay : ndarray of int, shape (V,)
            Delays in samples, 0 <= delay <= max_delay.

        Returns
        -------
        ndarray of float32, shape (V, n)
        """
        n = self._n_last
        d = np.clip(np.asarray(delay, np.intp), 0, self.n_hist - 4)
        out = np.empty((len(d), n), np.float32)
        start = self._end - n - d
        for k, (src, s0) in enumerate(zip(inputs, start, strict=True)):
            out[k] = self._buf[src, s0 : s0 + n]
        return out

    def read_varying(self, inputs: NDArray[np.intp], tau: NDArray[np.float64]) -> NDArray[np.float32]:
        """Read the last block delayed by time-varying fractional delays (cubic Lagrange).

        Parameters
        ----------
        inputs : ndarray of int, shape (V,)
            Input signal of each voice.
        tau : ndarray of float, shape (V, J + 1)
            Delays in samples at the J + 1 hop boundaries of the block (first = its start),
            clipped to [2, max_delay].

        Returns
        -------
        ndarray of float32, shape (V, n)
        """
        n = self._n_last
        V = len(inputs)
        if V == 0 or n == 0:
            return np.zeros((V, n), np.float32)
        J = tau.shape[1] - 1
        tau = np.clip(np.asarray(tau, np.float64), self.MIN_DELAY, self.n_hist - 4)
        out = np.empty((V, n), np.float32)
        lagrange_read(self._buf, np.asarray(inputs, np.intp), self._end - n, tau, n // J, out)
        return out
